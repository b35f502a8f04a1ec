# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel interfaces that Python's os module lacks, through ctypes: one place for them.

Every function raises OSError with the errno on failure, like the os module does. System calls
without a C library wrapper go through syscall(2) with the number of the running architecture;
where the kernel lacks one, the call fails with ENOSYS, which callers test for.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)

# Numbers of the calls without a glibc wrapper. Calls added since Linux 5.1 have one number on
# every architecture; older ones differ.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "keyctl": 250},
    "aarch64": {"pivot_root": 41, "keyctl": 219},
}.get(platform.machine(), {})
_SYSCALLS.update({"open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
                  "mount_setattr": 442, "landlock_create_ruleset": 444, "landlock_add_rule": 445,
                  "landlock_restrict_self": 446})

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
SYNC_FILE_RANGE_WRITE = 2

KEYCTL_JOIN_SESSION_KEYRING = 1
PR_SET_NAME = 15
PR_SET_DUMPABLE = 4


class MountAttr(ctypes.Structure):
    """struct mount_attr of mount_setattr(2)."""

    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result, *filenames):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), *filenames)
    return result


def _encode(value):
    return None if value is None else os.fsencode(value)


def _syscall(name, *args):
    number = _SYSCALLS.get(name)
    if number is None:
        raise OSError(38, "%s is not known on %s" % (name, platform.machine()))  # ENOSYS
    return _check(_libc.syscall(ctypes.c_long(number), *args))


_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
# Wrappers that older C libraries lack: None there, and the functions below raise ENOSYS.
_renameat2 = getattr(_libc, "renameat2", None)
if _renameat2 is not None:
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_syncfs = getattr(_libc, "syncfs", None)
_sync_file_range = getattr(_libc, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]


def mount(source, target, fstype, flags, data=None):
    _check(_libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)), target)


def umount2(target, flags=0):
    _check(_libc.umount2(_encode(target), flags), target)


def unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)))


def setns(fd, nstype):
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)))


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5))


def set_name(name):
    """The process name that ps and /proc/PID/comm show (15 bytes at most)."""
    buffer = ctypes.create_string_buffer(name.encode()[:15])
    _check(_libc.prctl(PR_SET_NAME, ctypes.cast(buffer, ctypes.c_void_p).value, 0, 0, 0))


def renameat2(old, new, flags):
    """renameat2(2) on two paths; OSError(ENOSYS) where the C library lacks it."""
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if _renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), old, None, new)


def syncfs(fd):
    """syncfs(2): flush the file system holding ``fd``; OSError(ENOSYS) where the C library lacks it."""
    if _syncfs is None:
        raise OSError(errno.ENOSYS, "syncfs is not available")
    _check(_syncfs(fd))


def sync_file_range(fd, offset, nbytes, flags):
    """sync_file_range(2); OSError(ENOSYS) where the C library lacks it."""
    if _sync_file_range is None:
        raise OSError(errno.ENOSYS, "sync_file_range is not available")
    _check(_sync_file_range(fd, offset, nbytes, flags))


def pivot_root(new_root, put_old):
    _syscall("pivot_root", ctypes.c_char_p(_encode(new_root)), ctypes.c_char_p(_encode(put_old)))


def join_new_session_keyring():
    """A new anonymous session keyring: the jail does not share the caller's."""
    _syscall("keyctl", ctypes.c_int(KEYCTL_JOIN_SESSION_KEYRING), ctypes.c_void_p(None))


def open_tree(dirfd, path, flags):
    return _syscall("open_tree", ctypes.c_int(dirfd), ctypes.c_char_p(_encode(path)), ctypes.c_uint(flags))


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags):
    _syscall("move_mount", ctypes.c_int(from_dirfd), ctypes.c_char_p(_encode(from_path)),
             ctypes.c_int(to_dirfd), ctypes.c_char_p(_encode(to_path)), ctypes.c_uint(flags))


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0):
    attr = MountAttr(attr_set, attr_clr, propagation, 0)
    _syscall("mount_setattr", ctypes.c_int(dirfd), ctypes.c_char_p(_encode(path)), ctypes.c_uint(flags),
             ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))


def fsopen(fstype):
    return _syscall("fsopen", ctypes.c_char_p(_encode(fstype)), ctypes.c_uint(FSOPEN_CLOEXEC))


def fsconfig(fs_fd, command, key=None, value=None):
    _syscall("fsconfig", ctypes.c_int(fs_fd), ctypes.c_uint(command), ctypes.c_char_p(_encode(key)),
             ctypes.c_char_p(_encode(value)), ctypes.c_int(0))


def fsmount(fs_fd, attr_flags):
    return _syscall("fsmount", ctypes.c_int(fs_fd), ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attr_flags))


def landlock_create_ruleset(attr, size, flags=0):
    """``attr`` a ctypes structure, or None with LANDLOCK_CREATE_RULESET_VERSION (1) to ask the ABI."""
    return _syscall("landlock_create_ruleset", ctypes.byref(attr) if attr is not None else ctypes.c_void_p(None),
                    ctypes.c_size_t(size), ctypes.c_uint32(flags))


def landlock_add_rule(ruleset_fd, rule_type, rule):
    _syscall("landlock_add_rule", ctypes.c_int(ruleset_fd), ctypes.c_int(rule_type), ctypes.byref(rule),
             ctypes.c_uint32(0))


def landlock_restrict_self(ruleset_fd):
    _syscall("landlock_restrict_self", ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))


def mount_id(fd):
    """The id of the mount that ``fd`` is on, as /proc/self/mountinfo numbers mounts."""
    with open("/proc/self/fdinfo/%d" % fd, encoding="ascii") as handle:
        for line in handle:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise OSError(2, "no mnt_id in /proc/self/fdinfo/%d: is /proc mounted?" % fd)
