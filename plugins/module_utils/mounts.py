# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jail's mount set, and taking every mount under a path down safely.

There is no mount namespace: the jail's mounts live in the host's table, below the root only.
The root is first bind-mounted onto itself and made private, so nothing mounted below it
propagates to the host's peers, and the host's "/" is never touched. User binds are then made
recursive slaves: host mounts under the source still appear inside, but nothing goes back, and
unmounting the bind never reaches the source's own submounts.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import time
from collections import namedtuple

from ansible_collections.droot.core.plugins.module_utils import mountinfo, procs, safepath
from ansible_collections.droot.core.plugins.module_utils.common import DrootError

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

# per-mount options in mountinfo -> the flags a bind remount must repeat to keep them
_OPTION_FLAGS = {
    "ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME,
}

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))
# Writable through proc with host namespaces: kernel tunables, magic SysRq, IRQ affinity, PCI.
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus")

Bind = namedtuple("Bind", "src dest readonly")


class MountError(DrootError):
    pass


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _encode(value):
    return None if value is None else os.fsencode(value)


def mount(source, target, fstype, flags, data=None):
    if _libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def umount(target, flags=0):
    if _libc.umount2(_encode(target), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def flags_from_options(options):
    flags = 0
    for option in options.split(","):
        flags |= _OPTION_FLAGS.get(option, 0)
    return flags


def remount_bind(path, add_flags):
    """Add flags to the bind mount at ``path``, repeating the ones it has (a remount resets them)."""
    current = mountinfo.mount_at(path)
    keep = flags_from_options(current.options) if current else 0
    mount(None, path, None, MS_BIND | MS_REMOUNT | keep | add_flags)


class MountSet:
    """Mounts made for one run, recorded so that exactly these are taken down again."""

    def __init__(self, root):
        self.root = root
        self.created = []
        self.reused = []

    def _record(self, fd):
        """The host path of the mount point behind ``fd``, as mountinfo names it."""
        return os.readlink(safepath.fd_path(fd))

    def mounted(self, path, predicate=None):
        current = mountinfo.mount_at(path)
        if current is not None and (predicate is None or predicate(current)):
            self.reused.append(path)
            return True
        return False

    def _mount_at(self, root_fd, dest, directory, source, fstype, flags, data=None, reuse=None):
        """Mount onto ``dest`` inside the root unless ``reuse`` says what is there will do."""
        fd = safepath.create_mountpoint(root_fd, dest, directory)
        try:
            path = self._record(fd)
            if self.mounted(path, reuse):
                return path, False
            mount(source, safepath.fd_path(fd), fstype, flags, data)
        finally:
            os.close(fd)
        self.created.append(path)
        return path, True

    def bind_root(self):
        """Bind the root onto itself, private and nodev: the parent of every jail mount."""
        if self.mounted(self.root):
            return
        mount(self.root, self.root, None, MS_BIND)
        self.created.append(self.root)
        mount(None, self.root, None, MS_PRIVATE)
        remount_bind(self.root, MS_NODEV)

    def proc(self, root_fd):
        path, fresh = self._mount_at(root_fd, "/proc", True, "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV,
                                     reuse=lambda m: m.fstype == "proc")
        for name in PROC_READ_ONLY:
            target = os.path.join(path, name)
            if not os.path.lexists(target) or (not fresh and self.mounted(target)):
                continue
            mount(target, target, None, MS_BIND | MS_REC)
            self.created.append(target)
            remount_bind(target, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

    def sys(self, root_fd):
        self._mount_at(root_fd, "/sys", True, "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       reuse=lambda m: m.fstype == "sysfs")

    def dev(self, root_fd):
        path, fresh = self._mount_at(root_fd, "/dev", True, "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC,
                                     data="mode=755,size=64k", reuse=lambda m: m.fstype == "tmpfs")
        if not fresh:
            return
        # populate the fresh tmpfs through a descriptor of it, never through the image's paths
        dev_fd = safepath.open_in_root(root_fd, "/dev", os.O_PATH | os.O_DIRECTORY)
        try:
            for name in DEVICES:
                host = os.path.join("/dev", name)
                if not os.path.exists(host):
                    continue
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=dev_fd))
                target = os.path.join(path, name)
                mount(host, os.path.join(safepath.fd_path(dev_fd), name), None, MS_BIND)
                self.created.append(target)
                remount_bind(target, MS_NOSUID | MS_NOEXEC)
            for name, link in DEV_LINKS:
                os.symlink(link, name, dir_fd=dev_fd)
        finally:
            os.close(dev_fd)

    def devpts(self, root_fd, tty_gid):
        self._mount_at(root_fd, "/dev/pts", True, "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                       data="newinstance,ptmxmode=0666,mode=0620,gid=%d" % tty_gid,
                       reuse=lambda m: m.fstype == "devpts")

    def shm(self, root_fd):
        self._mount_at(root_fd, "/dev/shm", True, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       data="mode=1777", reuse=lambda m: m.fstype == "tmpfs")

    def bind(self, root_fd, bind):
        """A user bind: recursive, slave, nosuid and nodev, read-only on request."""
        source = os.stat(bind.src)

        def same_source(_mount):
            current = os.stat(path)
            if (current.st_dev, current.st_ino) != (source.st_dev, source.st_ino):
                raise MountError(
                    "%s is already mounted inside the root from another source; run droot_umount "
                    "on the root first" % bind.dest)
            return True

        fd = safepath.create_mountpoint(root_fd, bind.dest, stat.S_ISDIR(source.st_mode))
        try:
            path = self._record(fd)
            if self.mounted(path, same_source):
                return
            mount(bind.src, safepath.fd_path(fd), None, MS_BIND | MS_REC)
        finally:
            os.close(fd)
        self.created.append(path)
        mount(None, path, None, MS_SLAVE | MS_REC)
        extra = MS_NOSUID | MS_NODEV | (MS_RDONLY if bind.readonly else 0)
        # the bind and every mount it brought along, top first, so none stays writable
        for sub in reversed(mountinfo.mounts_under(path)):
            remount_bind(sub.mount_point, extra)

    def take_down(self):
        """Unmount what this set mounted, newest first; mounts it reused stay.

        Never lazily: a mount a leftover process still uses stays, and is returned, so the
        caller can say so instead of hiding it.
        """
        kept = []
        for path in reversed(self.created):
            if mountinfo.mount_at(path) is None:
                continue
            try:
                unmount_path(path)
            except OSError as error:
                if error.errno != errno.EBUSY:
                    raise
                kept.append(path)
        self.created = []
        return kept


def unmount_path(path, extra_flags=0):
    """umount2 with UMOUNT_NOFOLLOW on a canonical path reached without following any symlink."""
    parent, name = os.path.split(path)
    parent_fd = safepath.open_host_dir_strict(parent)
    try:
        umount(os.path.join(safepath.fd_path(parent_fd), name), UMOUNT_NOFOLLOW | extra_flags)
    finally:
        os.close(parent_fd)


def _busy_error(top, mount_point, done):
    users = procs.users_of(top)
    return MountError(
        "%s is busy%s; stop them (droot_run state=stopped) or set lazy=true to detach"
        % (mount_point, ": used by processes " + procs.describe(users) if users else ""),
        step="unmount", unmounted=done)


def unmount_tree(path, lazy=False, attempts=5):
    """Unmount everything at or below ``path``, deepest first, until nothing is left.

    While a process uses the tree, nothing is unmounted and the error names the processes:
    pulling a bind from under a running program is worse than failing. ``lazy`` detaches
    (MNT_DETACH) what stays busy instead. Returns the mount points unmounted.
    """
    top = os.path.realpath(path)
    done = []
    if not lazy and mountinfo.mounts_under(top) and procs.users_of(top):
        raise _busy_error(top, top, done)
    for attempt in range(attempts):
        remaining = mountinfo.mounts_under(top)
        if not remaining:
            return done
        busy = []
        for entry in remaining:
            try:
                unmount_path(entry.mount_point)
                done.append(entry.mount_point)
            except OSError as error:
                if error.errno == errno.EINVAL and mountinfo.mount_at(entry.mount_point) is None:
                    continue  # went with its parent
                if error.errno != errno.EBUSY:
                    raise MountError("cannot unmount %s: %s" % (entry.mount_point, error.strerror),
                                     step="unmount")
                busy.append(entry.mount_point)
        if busy and attempt == attempts - 1:
            if not lazy:
                raise _busy_error(top, busy[0], done)
            for mount_point in busy:
                unmount_path(mount_point, MNT_DETACH)
                done.append(mount_point)
        elif busy:
            time.sleep(0.1 * (attempt + 1))
    if mountinfo.mounts_under(top):
        raise MountError("mounts under %s keep coming back; something is mounting there" % top, step="unmount")
    return done
