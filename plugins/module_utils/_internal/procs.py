# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which live processes use a directory tree: their root, cwd, open files or mapped files.

A process in a jail with its own mount namespace has pivoted into its root: /proc shows its root
and paths as the jail sees them ("/"), not as host paths. Its root is recognised by identity
instead: the root directory's device and inode.
"""

from __future__ import annotations

import errno
import os
import signal
from collections import namedtuple

from ansible_collections.droot.core.plugins.module_utils._internal.mountinfo import is_within

ProcessUse = namedtuple("ProcessUse", "pid comm how")

PROC = "/proc"
_HOST_MOUNT_NAMESPACE = os.readlink("/proc/self/ns/mnt")


def _link(pid, name):
    try:
        return os.readlink(os.path.join(PROC, pid, name))
    except OSError:
        return None


def _comm(pid):
    try:
        with open(os.path.join(PROC, pid, "comm"), encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def _identity(path):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _in_host_mount_namespace(pid):
    """Paths a process of another mount namespace shows are its own to choose: only identities count there."""
    return _link(pid, "ns/mnt") == _HOST_MOUNT_NAMESPACE


def _rooted_in(pid, top, top_identity):
    """True when the root of ``pid`` is ``top`` or below it (a chroot), or is ``top`` itself (a pivot)."""
    root = _link(pid, "root")
    if root is None:
        return False
    if _identity(os.path.join(PROC, pid, "root")) == top_identity:
        return True
    return is_within(root, top) and _in_host_mount_namespace(pid)


def _uses(pid, top, top_identity):
    """Yield how the process ``pid`` uses ``top``: root, cwd, fd, map."""
    if _rooted_in(pid, top, top_identity):
        yield "root"
    if not _in_host_mount_namespace(pid):
        return  # its cwd, files and maps are named as its namespace sees them
    cwd = _link(pid, "cwd")
    if cwd is not None and is_within(cwd, top):
        yield "cwd"
    try:
        fds = os.listdir(os.path.join(PROC, pid, "fd"))
    except OSError:
        fds = []
    for fd in fds:
        target = _link(pid, os.path.join("fd", fd))
        if target is not None and is_within(target, top):
            yield "fd"
            break
    try:
        with open(os.path.join(PROC, pid, "maps"), encoding="utf-8", errors="replace") as handle:
            maps = handle.read()
    except OSError:
        maps = ""
    # one substring search over the whole file first: most processes map nothing under top
    if top in maps:
        fields = (line.split(None, 5) for line in maps.splitlines())
        if any(len(parts) == 6 and is_within(parts[5], top) for parts in fields):
            yield "map"


def users_of(path, exclude_self=True):
    """Live processes whose root, cwd, open files or mapped files are at or under ``path``.

    Paths in /proc are as seen from this process's root; a jailed process's root shows as the
    host path of its jail, which is what makes this usable on droot roots.
    """
    top = os.path.realpath(path)
    top_identity = _identity(top)
    me = str(os.getpid())
    found = []
    for pid in os.listdir(PROC):
        if not pid.isdigit() or (exclude_self and pid == me):
            continue
        how = list(_uses(pid, top, top_identity))
        if how:
            found.append(ProcessUse(int(pid), _comm(pid), tuple(how)))
    return found


def pids_in_root(path):
    """PIDs whose root directory is ``path`` (or below it): the processes of that jail."""
    top = os.path.realpath(path)
    top_identity = _identity(top)
    return [int(pid) for pid in os.listdir(PROC) if pid.isdigit() and _rooted_in(pid, top, top_identity)]


def is_host_root(path):
    """True when ``path`` is the host's / itself."""
    return _identity(path) == _identity("/")


def is_running(pid):
    """True for a live process; False when it is gone or a zombie (which has no root any more)."""
    return _link(str(pid), "root") is not None


def namespace_pid(pid):
    """The pid of ``pid`` in its own PID namespace (1 for a jail's init), or None if it is gone."""
    try:
        with open(os.path.join(PROC, str(pid), "status"), encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        return None
    return int(pid)  # kernels before 4.1 show no NSpid: no namespaces either


def describe(uses):
    """A short list for an error message: ``1234 (nginx: root,cwd)``."""
    return ", ".join("%d (%s: %s)" % (use.pid, use.comm, ",".join(use.how)) for use in uses)


def pid_namespace(pid):
    """The PID namespace of ``pid`` as its /proc link names it (``pid:[4026531836]``), or None."""
    return _link(str(pid), "ns/pid")


def open_pidfd(pid):
    """A pidfd of ``pid``, or None on a kernel before 5.3; ProcessLookupError when it is gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise
    except (AttributeError, OSError):
        return None


PIDFD_SIGNAL_PROCESS_GROUP = 4  # Linux 6.9


def _signal_group(pid, pidfd, signum):
    """The process group of ``pid``: through its pidfd where the kernel can, so a reused pid is never hit."""
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signum, None, PIDFD_SIGNAL_PROCESS_GROUP)
            return
    except OSError as error:
        if error.errno != errno.EINVAL:  # EINVAL: a kernel before 6.9
            raise
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def signal_rooted(pid, root, signum, group=False):
    """Signal ``pid`` (and its process group with ``group``) only if it is still rooted in ``root``.

    The pid is pinned with a pidfd before the check, so a pid reused meanwhile is never hit.
    False when the process is gone or is no longer the jail's.
    """
    top = os.path.realpath(root)
    try:
        pidfd = open_pidfd(pid)  # None: check, then signal by pid
    except ProcessLookupError:
        return False
    try:
        if not _rooted_in(str(pid), top, _identity(top)):
            return False
        if group:
            _signal_group(pid, pidfd, signum)
        if pidfd is None:
            os.kill(pid, signum)
        else:
            signal.pidfd_send_signal(pidfd, signum)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def parent_pid(pid):
    """The parent of ``pid`` (field 4 of /proc/PID/stat), or None if it is gone."""
    try:
        with open(os.path.join(PROC, str(pid), "stat"), encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def real_ids(pid):
    """``(uid, gid)`` of ``pid`` (the real ids of /proc/PID/status), or None if it is gone."""
    ids = {}
    try:
        with open(os.path.join(PROC, str(pid), "status"), encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(("Uid:", "Gid:")):
                    ids[line[:3]] = int(line.split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return (ids["Uid"], ids["Gid"]) if len(ids) == 2 else None


def command_line(pid):
    """The arguments of ``pid`` as it was started (its own to rewrite), or None if it is gone."""
    try:
        with open(os.path.join(PROC, str(pid), "cmdline"), "rb") as handle:
            data = handle.read(1 << 16)
    except OSError:
        return None
    return [arg.decode("utf-8", "replace") for arg in data.rstrip(b"\0").split(b"\0")] if data else []
