# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open and create paths inside a root as a process chrooted there would see them.

An image is untrusted: its /var/log may be a symlink to /etc, and a plain ``open(root +
"/var/log/x")`` on the host would follow it onto the host's /etc. Here every path is walked one
component at a time from a descriptor of the root, with O_NOFOLLOW; a symlink is read and its
target resolved again from the root (absolute) or from its directory (relative), and ``..``
never climbs above the root. The effect is openat2(RESOLVE_IN_ROOT) without needing a 5.6
kernel, and it is race-free: each step opens relative to a descriptor already held, so a
component swapped for a symlink meanwhile is seen as a symlink, never followed by the kernel.

What the module reads or writes inside a root as root (the image's passwd, config, copied files)
is opened with ``cross_mounts=False``: a path that leads onto another mount (a bind of a host
directory, say) is refused, like openat2's RESOLVE_NO_XDEV, so an image symlink cannot make the
module read or overwrite a host file.
"""

from __future__ import annotations

import errno
import os
import stat

from ansible_collections.droot.core.plugins.module_utils._internal import libc
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(DrootError):
    pass


def open_root(root):
    """A descriptor of the root directory that every lookup starts from."""
    return os.open(root, _DIR_FLAGS)


def _components(path):
    return [part for part in path.split("/") if part not in ("", ".")]


class _Walk:
    """The directories from the root down to the current one, as held descriptors."""

    def __init__(self, root_fd, cross_mounts=True):
        self.fds = [os.dup(root_fd)]
        self.names = []
        self.mount = None if cross_mounts else libc.mount_id(root_fd)

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    @property
    def fd(self):
        return self.fds[-1]

    @property
    def path(self):
        return "/" + "/".join(self.names)

    def to_root(self):
        while len(self.fds) > 1:
            self.up()

    def up(self):
        if len(self.fds) > 1:
            os.close(self.fds.pop())
            self.names.pop()

    def down(self, name):
        self.fds.append(os.open(name, _DIR_FLAGS, dir_fd=self.fd))
        self.names.append(name)
        self.check_mount(self.fds[-1])

    def check_mount(self, fd):
        if self.mount is not None and libc.mount_id(fd) != self.mount:
            raise UnsafePath("%s inside the root is on another mount (a bind?); refusing to cross it" % self.path)


def _lstat(name, dir_fd):
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def _walk_to_parent(root_fd, path, make_parents, dir_mode, cross_mounts=True):
    """Walk all but the last component of ``path``; return (walk, last name or None).

    Symlinks met on the way are followed inside the root. ``make_parents`` creates missing
    directories as the walk goes.
    """
    walk = _Walk(root_fd, cross_mounts)
    todo = list(reversed(_components(path)))
    hops = 0
    try:
        while len(todo) > 1:
            name = todo.pop()
            if name == "..":
                walk.up()
                continue
            info = _lstat(name, walk.fd)
            if info is None:
                if not make_parents:
                    raise FileNotFoundError(errno.ENOENT, "no such directory inside the root",
                                            os.path.join(walk.path, name))
                try:
                    os.mkdir(name, dir_mode, dir_fd=walk.fd)
                except FileExistsError:
                    pass  # created meanwhile: look at it again
                todo.append(name)
                continue
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise UnsafePath("too many levels of symbolic links in %s inside the root" % path)
                target = os.readlink(name, dir_fd=walk.fd)
                if target.startswith("/"):
                    walk.to_root()
                todo.extend(reversed(_components(target)))
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafePath("%s is not a directory inside the root" % os.path.join(walk.path, name))
            walk.down(name)
        if todo and todo[0] == "..":
            walk.up()
            todo = []
        return walk, (todo[0] if todo else None)
    except BaseException:
        walk.close()
        raise


def open_in_root(root_fd, path, flags, mode=0o644, make_parents=False, dir_mode=0o755, make_dir=False,
                 cross_mounts=True):
    """Open ``path`` as seen from inside the root; the result can never be outside it.

    A final symlink is followed inside the root unless ``flags`` has O_NOFOLLOW. With
    ``make_dir``, a missing final component is created as a directory. Without
    ``cross_mounts``, a path onto another mount than the root's is refused. Returns a
    descriptor; the caller closes it.
    """
    hops = 0
    while True:
        walk, name = _walk_to_parent(root_fd, path, make_parents, dir_mode, cross_mounts)
        try:
            if name is None:
                return os.open(".", flags | os.O_CLOEXEC, dir_fd=walk.fd)
            info = _lstat(name, walk.fd)
            if info is not None and stat.S_ISLNK(info.st_mode) and not flags & os.O_NOFOLLOW:
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise UnsafePath("too many levels of symbolic links in %s inside the root" % path)
                target = os.readlink(name, dir_fd=walk.fd)
                path = target if target.startswith("/") else os.path.join(walk.path, target)
                continue
            if info is None and make_dir:
                try:
                    os.mkdir(name, dir_mode, dir_fd=walk.fd)
                except FileExistsError:
                    continue  # created meanwhile: look at it again
            # O_NOFOLLOW: if a symlink appeared since the lstat, fail rather than follow it.
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=walk.fd)
            try:
                walk.check_mount(fd)
            except BaseException:
                os.close(fd)
                raise
            return fd
        finally:
            walk.close()


def makedirs_in_root(root_fd, path, mode=0o755):
    """Create ``path`` and its parents inside the root; return an O_PATH descriptor of it."""
    return open_in_root(root_fd, path, _DIR_FLAGS & ~os.O_NOFOLLOW, make_parents=True, dir_mode=mode, make_dir=True)


def create_mountpoint(root_fd, path, directory):
    """Make sure ``path`` exists inside the root as a directory or a file to mount onto.

    Returns an O_PATH descriptor; mount onto ``/proc/self/fd/N`` so that the mount lands on
    exactly the object checked here, whatever the image does to the path meanwhile.
    """
    try:
        fd = open_in_root(root_fd, path, os.O_PATH)
    except FileNotFoundError:
        if directory:
            fd = makedirs_in_root(root_fd, path)
        else:
            os.close(open_regular(root_fd, path, os.O_RDONLY | os.O_CREAT, 0o644))
            fd = open_in_root(root_fd, path, os.O_PATH)
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode) != bool(directory):
        os.close(fd)
        raise UnsafePath(
            "%s inside the root is a %s but the mount needs a %s"
            % (path, "directory" if stat.S_ISDIR(info.st_mode) else "file",
               "directory" if directory else "file")
        )
    return fd


def open_regular(root_fd, path, flags, mode=0o644):
    """Open a regular file of the root's own mount; anything else (a device node, a FIFO) is refused.

    The type is checked on an O_PATH descriptor and the file reopened through it, so an image
    cannot make the host open its device node or block on its FIFO, even by swapping the path.
    With O_CREAT a missing file is created (parents too) exclusively, so it is regular. A path
    onto another mount is refused (``cross_mounts=False``).
    """
    if flags & os.O_CREAT:
        try:
            return open_in_root(root_fd, path, (flags & ~os.O_TRUNC) | os.O_EXCL, mode, make_parents=True,
                                cross_mounts=False)
        except FileExistsError:
            pass
    path_fd = open_in_root(root_fd, path, os.O_PATH, cross_mounts=False)
    try:
        if not stat.S_ISREG(os.fstat(path_fd).st_mode):
            raise UnsafePath("%s inside the root is not a regular file" % path)
        # O_NONBLOCK: a jail's lease on the file (F_SETLEASE) would hold the open for lease-break-time
        try:
            return os.open(fd_path(path_fd), (flags & ~(os.O_CREAT | os.O_EXCL)) | os.O_NONBLOCK | os.O_CLOEXEC)
        except BlockingIOError:
            raise UnsafePath("%s inside the root is leased by a process (F_SETLEASE), as a jail of this root can "
                             "do: stop the jail that holds it, then run again" % path)
    finally:
        os.close(path_fd)


def read_in_root(root_fd, path, limit=1 << 20):
    """The bytes of a regular file inside the root, or None when it does not exist."""
    try:
        fd = open_regular(root_fd, path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafePath("%s inside the root is larger than %d bytes" % (path, limit))
    return data


def write_in_root(root_fd, path, data, mode=0o644):
    """Replace the contents of a regular file inside the root (parents created as needed)."""
    fd = open_regular(root_fd, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def fd_path(fd):
    """The magic link through which mount(2) reaches exactly the object behind ``fd``."""
    return "/proc/self/fd/%d" % fd


def open_below_strict(top_fd, relative, flags=os.O_PATH | os.O_NOFOLLOW):
    """A descriptor of ``relative`` below ``top_fd``, every component opened without following a symlink."""
    fd = os.dup(top_fd)
    try:
        for name in _components(relative):
            if name == "..":
                raise UnsafePath("%s is not a canonical path below where it starts" % relative)
            next_fd = os.open(name, flags | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def first_symlink(path):
    """The first component of an absolute host path that is a symlink, or None."""
    current = "/"
    for name in _components(path):
        current = os.path.join(current, name)
        if os.path.islink(current):
            return current
    return None


def open_host_strict(path):
    """An O_PATH descriptor of an absolute host path none of whose components is a symlink.

    For sources a jail gets (binds, copied files): a jail that can write a directory on the way
    could have planted a symlink there to redirect a later task onto any host file.
    """
    parent, name = os.path.split(os.path.normpath(path))
    dir_fd = open_host_dir_strict(parent)
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    if stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePath("%s is a symlink" % path)
    return fd


def open_host_dir_strict(path, create=False):
    """Open a host directory by an absolute path that must contain no symlink at all.

    The mount table names mount points by canonical paths; a symlink on the way means someone
    (a jailed process, say) changed the tree since, and following it could reach a host mount.
    With ``create``, missing directories are made (0755) as the walk goes.
    """
    fd = os.open("/", _DIR_FLAGS)
    try:
        for name in _components(path):
            if name == "..":
                raise UnsafePath("%s is not a canonical path" % path)
            if create:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd
