# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jail's mounts, made on descriptors only, and taking mounts down safely.

No mount step resolves a path after checking it. Sources (the root, user binds, host devices and
files) are opened by the caller on the host and cloned as detached mount trees (open_tree) whose
attributes - read-only, nosuid, nodev, noexec, propagation - are set (mount_setattr) before
anything can see them; new file systems are created detached (fsopen, fsmount); each is then
attached (move_mount) onto a target that safepath opened inside the root. A rename inside the
root, by a jail already running there, can neither redirect a mount nor leave one with the wrong
flags.

In the jail's own mount namespace (the default) these mounts live and die with the jail. With
the host's namespaces (``namespaces: host``), they are made in the host's table below the root:
the root gets a private bind of itself first, and what this run mounted is recorded by mount id
so that exactly that is taken down again.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from ansible_collections.droot.core.plugins.module_utils._internal import libc, mountinfo, procs, safepath
from ansible_collections.droot.core.plugins.module_utils._internal.common import AtomicFile, DrootError, run_file

ATTR_RDONLY = 0x1
ATTR_NOSUID = 0x2
ATTR_NODEV = 0x4
ATTR_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))
# Read-only, as in Docker: kernel tunables, magic SysRq, IRQ affinity, PCI, file system tunables.
PROC_READ_ONLY = ("bus", "fs", "irq", "sys", "sysrq-trigger")
# Masked, as in Docker (plus kallsyms): files get /dev/null, directories an empty read-only tmpfs.
MASKED = ("proc/acpi", "proc/asound", "proc/kallsyms", "proc/kcore", "proc/keys", "proc/latency_stats",
          "proc/sched_debug", "proc/scsi", "proc/timer_list", "proc/timer_stats", "sys/firmware",
          "sys/devices/virtual/powercap")
API_ATTRS = ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC


class MountError(DrootError):
    pass


# ---------------------------------------------------------------------------------------------
# The kernel's mount API on descriptors

class Tree(int):
    """A detached mount tree's descriptor, with the attributes it must carry.

    Where the kernel has mount_setattr (Linux 5.12) they are set before the tree is attached;
    before 5.12 they are set right after, by a remount through /proc/self/fd of the attached
    tree's own descriptor - still never a path. In the jail's own mount namespace nothing can see
    the tree in between.
    """

    def __new__(cls, fd, attrs=0, recursive=False, propagation=0):
        tree = super().__new__(cls, fd)
        tree.pending = (attrs, recursive, propagation) if attrs or propagation else None
        return tree


def _setattr_on_detached():
    """mount_setattr exists (Linux 5.12); DROOT_MOUNT_SETATTR=0 takes the older kernels' way, for tests."""
    if os.environ.get("DROOT_MOUNT_SETATTR") == "0":
        return False
    try:
        libc.mount_setattr(-1, "", 0)
    except OSError as error:
        return error.errno != errno.ENOSYS
    return True


def clone_tree(fd, attrs, recursive=False, propagation=MS_PRIVATE):
    """A detached copy of what ``fd`` shows, with its attributes set before it is attached anywhere."""
    tree = Tree(libc.open_tree(fd, "", libc.OPEN_TREE_CLONE | libc.AT_EMPTY_PATH | os.O_CLOEXEC
                               | (libc.AT_RECURSIVE if recursive else 0)), attrs, recursive, propagation)
    if _SETATTR_ON_DETACHED:
        try:
            set_attributes(tree, attrs, recursive, propagation)
        except BaseException:
            os.close(tree)
            raise
        tree.pending = None
    return tree


def set_attributes(mount_fd, attrs, recursive=False, propagation=0):
    """Add ``attrs`` (and set ``propagation``) on the mount behind ``mount_fd``, and below it if ``recursive``."""
    if _SETATTR_ON_DETACHED:
        libc.mount_setattr(mount_fd, "", libc.AT_EMPTY_PATH | (libc.AT_RECURSIVE if recursive else 0),
                           attr_set=attrs, propagation=propagation)
        return
    targets = [mount_fd] + (_submounts(mount_fd) if recursive else [])
    try:
        for fd in targets:
            if attrs:
                libc.mount(None, safepath.fd_path(fd), None, MS_REMOUNT | MS_BIND | _current_flags(fd)
                           | _ms_of_attrs(attrs))
        if propagation:
            libc.mount(None, safepath.fd_path(mount_fd), None, propagation | (MS_REC if recursive else 0))
    finally:
        for fd in targets[1:]:
            os.close(fd)


# statvfs's f_flag bits of per-mount flags -> mount(2)'s, which a bind remount must repeat to keep them
_ST_TO_MS = {0x1: 0x1, 0x2: 0x2, 0x4: 0x4, 0x8: 0x8, 0x400: 0x400, 0x800: 0x800, 0x1000: 0x200000}


def _ms_of_attrs(attrs):
    return attrs & (ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC)  # the same bits in both


def _current_flags(fd):
    f_flag = os.fstatvfs(fd).f_flag
    return sum(ms for st, ms in _ST_TO_MS.items() if f_flag & st)


def _submounts(mount_fd):
    """Descriptors of every mount below the one behind ``mount_fd``, each opened without a symlink and checked by id."""
    table = mountinfo.read_table()
    top = _mount_by_id(libc.mount_id(mount_fd), table)
    below, ids = [], {top.mount_id}
    while True:
        found = [entry for entry in table if entry.parent_id in ids and entry.mount_id not in ids]
        if not found:
            break
        ids.update(entry.mount_id for entry in found)
        below.extend(found)
    fds = []
    try:
        for entry in below:
            fd = safepath.open_below_strict(mount_fd, os.path.relpath(entry.mount_point, top.mount_point))
            fds.append(fd)
            if libc.mount_id(fd) != entry.mount_id:
                raise MountError("%s changed while its flags were set; try again" % entry.mount_point)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def new_filesystem(fstype, attrs, options=()):
    """A detached new instance of ``fstype``; ``options`` are (key, value) pairs, value None for a flag."""
    context = libc.fsopen(fstype)
    try:
        for key, value in options:
            if value is None:
                libc.fsconfig(context, libc.FSCONFIG_SET_FLAG, key)
            else:
                libc.fsconfig(context, libc.FSCONFIG_SET_STRING, key, value)
        libc.fsconfig(context, libc.FSCONFIG_CMD_CREATE)
        return Tree(libc.fsmount(context, attrs))
    finally:
        os.close(context)


def attach(tree, target_fd):
    """Mount the detached ``tree`` onto exactly the object behind ``target_fd``; then its late attributes."""
    libc.move_mount(tree, "", target_fd, "", libc.MOVE_MOUNT_F_EMPTY_PATH | libc.MOVE_MOUNT_T_EMPTY_PATH)
    pending = getattr(tree, "pending", None)
    if pending:
        set_attributes(tree, *pending)
        tree.pending = None


def mount_api_missing():
    """A one-line reason when this kernel lacks the mount API (open_tree is Linux 5.2), else None."""
    try:
        libc.open_tree(-1, "", 0)
    except OSError as error:
        if error.errno == errno.ENOSYS:
            return "this kernel lacks open_tree(2) and the new mount API: Linux 5.2 or newer is needed"
    return None


_SETATTR_ON_DETACHED = _setattr_on_detached()


# ---------------------------------------------------------------------------------------------
# Host sources, opened and cloned before the jail is entered

def open_host(path, kind):
    """An O_PATH descriptor of a host path that must be a directory, a regular file or a char device.

    Opened without following any symlink on the way (the caller named a canonical path).
    """
    fd = safepath.open_host_strict(path)
    mode = os.fstat(fd).st_mode
    if not {"dir": stat.S_ISDIR, "file": stat.S_ISREG, "char": stat.S_ISCHR}[kind](mode):
        os.close(fd)
        what = {"dir": "directory", "file": "regular file", "char": "character device"}[kind]
        raise MountError("%s on the host is not a %s" % (path, what))
    return fd


class Sources:
    """Detached mount trees of everything the jail takes from the host, attributes already set.

    Made in the caller's mount namespace, before the jail's is created, and attached there;
    closed by the caller once the jail runs (a detached tree is dissolved with its last fd).
    """

    def __init__(self):
        self.fds = []

    def clone(self, fd, attrs, recursive=False, propagation=MS_PRIVATE):
        tree = clone_tree(fd, attrs, recursive, propagation)
        self.fds.append(tree)
        return tree

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass  # attached, and closed by the jail's init already
        self.fds = []


# ---------------------------------------------------------------------------------------------
# The jail's mount set

class JailMounts:
    """Builds the jail's view of the root on descriptors; the jail sequence calls its steps in order.

    ``table`` is a MountSet in the host's namespaces (it records and reuses), None in the jail's own.
    """

    def __init__(self, table=None):
        self.table = table
        self.root_fd = None
        self.mounted = []  # paths inside the root, outermost first

    def _made(self, inside, fd):
        self.mounted.append(inside)
        if self.table is not None:
            self.table.record(inside, libc.mount_id(fd))

    def _attach_new(self, inside, tree, directory=True):
        target = safepath.create_mountpoint(self.root_fd, inside, directory)
        try:
            attach(tree, target)
        finally:
            os.close(target)
        self._made(inside, tree)

    def bind_root(self, root_tree, target_fd):
        """The root's own mount, private and nodev: pivot_root needs one, and every jail mount sits on it.

        Attached onto a shared mount (a root that is an administrator's shared mount), a tree joins
        its peer group: it is made private again before anything is mounted on it.
        """
        attach(root_tree, target_fd)
        self.root_fd = root_tree
        self._made("/", root_tree)
        set_attributes(root_tree, 0, propagation=MS_PRIVATE)

    def reuse_root(self, root_fd):
        """Host namespaces, a jail of this root already mounted: its API file systems stay as they are."""
        self.root_fd = root_fd

    def proc(self):
        proc = new_filesystem("proc", API_ATTRS)
        try:
            self._attach_new("/proc", proc)
            for name in PROC_READ_ONLY:
                self._read_only(proc, name)
        finally:
            os.close(proc)

    def _read_only(self, parent_fd, name):
        try:
            target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        except FileNotFoundError:
            return
        try:
            tree = clone_tree(target, ATTR_RDONLY | API_ATTRS, recursive=True)
            try:
                attach(tree, target)
                self._made("/proc/" + name, tree)
            finally:
                os.close(tree)
        finally:
            os.close(target)

    def sys(self):
        sysfs = new_filesystem("sysfs", ATTR_RDONLY | API_ATTRS)
        try:
            self._attach_new("/sys", sysfs)
        finally:
            os.close(sysfs)

    def dev(self, devices):
        """A tmpfs with the host's devices bound onto empty files: never the image's device nodes."""
        tmpfs = new_filesystem("tmpfs", ATTR_NOSUID | ATTR_NOEXEC, (("mode", "755"), ("size", "64k")))
        try:
            self._attach_new("/dev", tmpfs)
            for name, tree in devices:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                                 dir_fd=tmpfs))
                target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tmpfs)
                try:
                    attach(tree, target)
                finally:
                    os.close(target)
                self._made("/dev/" + name, tree)
            for name, link in DEV_LINKS:
                os.symlink(link, name, dir_fd=tmpfs)
        finally:
            os.close(tmpfs)

    def devpts(self, tty_gid):
        devpts = new_filesystem("devpts", ATTR_NOSUID | ATTR_NOEXEC,
                                (("newinstance", None), ("ptmxmode", "0666"), ("mode", "0620"), ("gid", str(tty_gid))))
        try:
            self._attach_new("/dev/pts", devpts)
        finally:
            os.close(devpts)

    def shm(self, size):
        tmpfs = new_filesystem("tmpfs", API_ATTRS, (("mode", "1777"), ("size", size)))
        try:
            self._attach_new("/dev/shm", tmpfs)
        finally:
            os.close(tmpfs)

    def mask(self):
        """Docker's masked paths, where this kernel has them: /dev/null over files, an empty tmpfs over directories."""
        null = safepath.open_in_root(self.root_fd, "/dev/null", os.O_PATH | os.O_NOFOLLOW)
        try:
            for path in MASKED:
                parent, name = os.path.split(path)
                try:
                    parent_fd = safepath.open_in_root(self.root_fd, parent, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
                except FileNotFoundError:
                    continue
                try:
                    self._mask(parent_fd, name, "/" + path, null)
                finally:
                    os.close(parent_fd)
        finally:
            os.close(null)

    def _mask(self, parent_fd, name, inside, null):
        try:
            target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        except FileNotFoundError:
            return
        try:
            if stat.S_ISDIR(os.fstat(target).st_mode):
                tree = new_filesystem("tmpfs", ATTR_RDONLY | API_ATTRS)
            else:  # a device node: no nodev here, reading it must give an empty file as in Docker
                tree = clone_tree(null, ATTR_RDONLY | ATTR_NOSUID | ATTR_NOEXEC)
            try:
                attach(tree, target)
                self._made(inside, tree)
            finally:
                os.close(tree)
        finally:
            os.close(target)

    def bind(self, dest, tree, source_fd, directory):
        """A user bind (or a host file bound in place of copying it) from its prepared ``tree``."""
        target = safepath.create_mountpoint(self.root_fd, dest, directory)
        try:
            if self.table is not None and self.table.bound(target, source_fd, dest):
                return
            attach(tree, target)
        finally:
            os.close(target)
        self._made(dest, tree)


class MountSet:
    """Mounts made in the host's namespaces for one run, by mount id, so exactly these come down again."""

    def __init__(self, root):
        self.root = root
        self.created = []  # (path inside the root, mount id)

    def record(self, inside, mount_id):
        self.created.append((inside, mount_id))
        if inside == "/":
            _write_root_record(self.root, _mount_by_id(mount_id))

    def bound(self, target_fd, source_fd, dest):
        """True when ``dest`` already shows the bind's source (a kept mount set); an error for another source."""
        here, source = os.fstat(target_fd), os.fstat(source_fd)
        if (here.st_dev, here.st_ino) == (source.st_dev, source.st_ino):
            return True
        if _is_mount_root(target_fd):
            raise MountError("%s is already mounted inside the root from another source; run droot_umount "
                             "on the root first" % dest)
        return False

    def take_down(self):
        """Unmount what this set mounted, newest first; mounts it reused stay.

        Found by mount id, at the place mountinfo shows it now: a jail may be renaming its
        parents, so a path that vanished before the unmount reached it is read again. Never
        lazily: a mount a leftover process still uses stays, and is returned.
        """
        kept = []
        for inside, mount_id in reversed(self.created):
            if self._unmount(mount_id) == errno.EBUSY:
                kept.append(os.path.normpath(self.root + inside))
            elif inside == "/":
                _remove_root_record(self.root)
        self.created = []
        return kept

    @staticmethod
    def _unmount(mount_id, attempts=50):
        for attempt in range(attempts):
            current = _mount_by_id(mount_id)
            if current is None:
                return None
            try:
                unmount_path(current.mount_point)
                return None
            except safepath.UnsafePath:
                pass  # a symlink on the way: the tree changed since mountinfo was read
            except OSError as error:
                if error.errno == errno.EBUSY:
                    return error.errno
                if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EINVAL):
                    raise MountError("cannot unmount %s: %s" % (current.mount_point, error.strerror),
                                     step="take-down")
            time.sleep(0.002 * attempt)
        raise MountError("cannot unmount %s: something keeps moving it; stop the jails of the root and run "
                         "droot_umount" % current.mount_point, step="take-down")


def _is_mount_root(fd):
    """True when ``fd`` is the root of a mount (something is mounted there)."""
    entry = _mount_by_id(libc.mount_id(fd))
    return entry is not None and entry.mount_point == os.readlink(safepath.fd_path(fd))


def _mount_by_id(mount_id, table=None):
    for entry in table if table is not None else mountinfo.read_table():
        if entry.mount_id == mount_id:
            return entry
    return None


# The private bind of a root onto itself that droot made in the host's namespaces, by mount id
# and parent mount id (ids are reused once free): droot_umount takes it down, and never a mount at
# the root that droot did not make.
def _root_record(root):
    return run_file(root, ".mounts")


def _write_root_record(root, entry):
    path = _root_record(root)
    with AtomicFile(path, "%s.%d.tmp" % (path, os.getpid()), mode=0o600) as writer:
        writer.write(b"%d %d\n" % (entry.mount_id, entry.parent_id))
        writer.commit()


def _remove_root_record(root):
    try:
        os.unlink(_root_record(root))
    except FileNotFoundError:
        pass


def recorded_root_mount(root):
    """(mount id, parent mount id) of droot's own mount at ``root``, or None."""
    try:
        with open(_root_record(root), encoding="ascii") as handle:
            mount_id, parent_id = handle.read().split()
        return int(mount_id), int(parent_id)
    except (OSError, ValueError):
        return None


def kept_mount_set(root):
    """A mount set that droot made for this root in the host's namespaces is still there."""
    current = mountinfo.mount_at(root)
    return current is not None and recorded_root_mount(root) == (current.mount_id, current.parent_id)


def _is_legacy_root_bind(entry, table):
    """0.1.0's private nodev bind of a root onto itself, which it left unrecorded."""
    parent = _mount_by_id(entry.parent_id, table)
    if parent is None or parent.device != entry.device or "nodev" not in entry.options.split(","):
        return False
    if any(tag.startswith(("shared:", "master:")) for tag in entry.optional):
        return False
    relative = os.path.relpath(entry.mount_point, parent.mount_point)
    return os.path.normpath(os.path.join(parent.root, relative)) == entry.root


def droot_mounts(path, table=None):
    """Mounts to take down for ``path``, deepest first: everything below it, and at it only droot's own."""
    top = os.path.normpath(os.path.abspath(path))
    table = mountinfo.read_table() if table is None else table
    recorded = recorded_root_mount(top)
    found = []
    for entry in mountinfo.mounts_under(top, table):
        if entry.mount_point != top or (entry.mount_id, entry.parent_id) == recorded or (
                recorded is None and _is_legacy_root_bind(entry, table)):
            found.append(entry)
    return found


def unmount_path(path, extra_flags=0):
    """umount2 with UMOUNT_NOFOLLOW on a canonical path reached without following any symlink."""
    parent, name = os.path.split(path)
    parent_fd = safepath.open_host_dir_strict(parent)
    try:
        libc.umount2(os.path.join(safepath.fd_path(parent_fd), name), UMOUNT_NOFOLLOW | extra_flags)
    finally:
        os.close(parent_fd)


def _busy_error(top, mount_point, done):
    users = procs.users_of(top)
    return MountError(
        "%s is busy%s; stop them (droot_run state=stopped) or set lazy=true to detach"
        % (mount_point, ": used by processes " + procs.describe(users) if users else ""),
        step="unmount", unmounted=done)


def unmount_tree(path, lazy=False, attempts=5):
    """Unmount droot_mounts(path), deepest first, until nothing is left.

    While a process uses the tree, nothing is unmounted and the error names the processes:
    pulling a bind from under a running program is worse than failing. ``lazy`` detaches
    (MNT_DETACH) what stays busy instead. Returns the mount points unmounted.
    """
    top = os.path.realpath(path)
    if top == "/":
        raise MountError("refusing to unmount everything under the host's /: name the root of a jail",
                         step="unmount")
    done = []
    if not lazy and droot_mounts(top) and procs.users_of(top):
        raise _busy_error(top, top, done)
    for attempt in range(attempts):
        remaining = droot_mounts(top)
        if not remaining:
            return done
        busy = []
        for entry in remaining:
            try:
                unmount_path(entry.mount_point)
                done.append(entry.mount_point)
                if recorded_root_mount(entry.mount_point) == (entry.mount_id, entry.parent_id):
                    _remove_root_record(entry.mount_point)
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
    if droot_mounts(top):
        raise MountError("mounts under %s keep coming back; something is mounting there" % top, step="unmount")
    return done
