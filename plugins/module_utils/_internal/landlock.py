# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Landlock: the jail's file access confined to its root, whatever descriptor leads elsewhere.

The jail shares the host's network namespace, and with it the abstract unix sockets: a host
process could hand the jail a descriptor of a host directory, and a jailed root would open
anything through it. Landlock checks every open, creation, removal, rename and execution against
where the object lies: beneath the jail's root (binds, /proc and /dev included), or refused. From
ABI 6 (Linux 6.12) the jail may also not connect to abstract sockets or signal processes outside
its own Landlock domain. Landlock does not cover a file's owner, mode or times: see the README.
"""

from __future__ import annotations

import ctypes
import errno
import os

from ansible_collections.droot.core.plugins.module_utils._internal import libc

RULE_PATH_BENEATH = 1
CREATE_RULESET_VERSION = 1
# LANDLOCK_ACCESS_FS_*: 13 rights in ABI 1, then REFER (2), TRUNCATE (3), IOCTL_DEV (5).
_FS_RIGHTS = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi():
    """The Landlock ABI of this kernel; 0 when it has none, or it is not enabled (lsm=)."""
    try:
        return libc.landlock_create_ruleset(None, 0, CREATE_RULESET_VERSION)
    except OSError as error:
        if error.errno in (errno.ENOSYS, errno.EOPNOTSUPP):
            return 0
        raise


def confine_to_root(version):
    """Landlock this process (after it entered its root): files beneath "/" only; scopes from ABI 6."""
    rights = (1 << _FS_RIGHTS.get(version, max(_FS_RIGHTS.values()))) - 1
    attr = _RulesetAttr(rights, 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if version >= 6 else 0)
    size = 8 if version < 4 else (16 if version < 6 else 24)  # the struct grew with the ABI
    ruleset = libc.landlock_create_ruleset(attr, size)
    try:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            libc.landlock_add_rule(ruleset, RULE_PATH_BENEATH, _PathBeneath(rights, root))
        finally:
            os.close(root)
        libc.landlock_restrict_self(ruleset)
    finally:
        os.close(ruleset)
