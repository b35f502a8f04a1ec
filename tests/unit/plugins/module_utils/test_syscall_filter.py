"""The seccomp filter, loaded for real in a forked child: what it allows and refuses."""
from __future__ import annotations

import ctypes
import errno
import os
import platform

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import syscall_filter
from ansible_collections.droot.core.tests.unit.plugins.module_utils.forked import in_child

pytestmark = [
    pytest.mark.skipif(syscall_filter.SECCOMP.module is None, reason="needs libseccomp's binding"),
    pytest.mark.skipif(platform.machine() != "x86_64", reason="system call numbers of x86_64"),
]

# x86_64 numbers
SYS = {"chmod": 90, "open": 2, "mknod": 133, "socket": 41, "keyctl": 250, "fchmodat2": 452, "openat2": 437,
       "unshare": 272, "open_tree_attr": 467}


def _in_filtered_child(kept, calls):
    """Load the filter for ``kept`` in a child, make ``calls`` [(name, args)], return their errno names."""
    def filtered():
        syscall_filter.build(kept).load()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        results = []
        for name, args in calls:
            value = libc.syscall(ctypes.c_long(SYS[name]), *[ctypes.c_long(a) if isinstance(a, int) else a
                                                             for a in args])
            results.append(errno.errorcode.get(ctypes.get_errno(), "?") if value < 0 else "ok")
            if value >= 0 and name in ("open", "socket"):
                os.close(value)
        return results

    return in_child(filtered)


def test_no_setuid_or_setgid_file_can_be_made(tmp_path):
    plain, made = str(tmp_path / "plain").encode(), str(tmp_path / "made").encode()
    open(plain, "w").close()
    results = _in_filtered_child(set(), [
        ("chmod", [plain, 0o755]),
        ("chmod", [plain, 0o4755]),
        ("chmod", [plain, 0o2755]),
        ("chmod", [plain, 0x100000000 | 0o4755]),
        ("fchmodat2", [-100, plain, 0o4755, 0]),
        ("open", [made, os.O_CREAT | os.O_WRONLY, 0o4755]),
        ("open", [made, os.O_CREAT | os.O_WRONLY, 0o644]),
        ("open", [plain, os.O_RDONLY, 0o4755]),
        ("mknod", [str(tmp_path / "node").encode(), 0o100000 | 0o4755, 0]),
    ])
    assert results == ["ok", "EPERM", "EPERM", "EPERM", "EPERM", "EPERM", "ok", "ok", "EPERM"]


def test_refusals_and_unknown_calls():
    results = _in_filtered_child({"chown"}, [
        ("socket", [40, 1, 0]),                 # AF_VSOCK
        ("socket", [0x100000000 | 40, 1, 0]),   # the kernel reads the low 32 bits
        ("socket", [1, 1, 0]),                  # AF_UNIX
        ("keyctl", [0, -3]),
        ("unshare", [0x10000000]),              # CLONE_NEWUSER
        ("openat2", [-100, b"/", 0, 0]),
        ("open_tree_attr", [-1, 0, 0, 0, 0]),   # newer than the library: as on an older kernel
    ])
    assert results == ["EPERM", "EPERM", "ok", "EPERM", "EPERM", "ENOSYS", "ENOSYS"]


def test_a_kept_capability_allows_its_calls():
    assert "mount" in syscall_filter.refused({"chown"})
    assert "mount" not in syscall_filter.refused({"sys_admin"})
    assert "keyctl" in syscall_filter.refused({"sys_admin"})  # keyrings are not namespaced: no one
    results = _in_filtered_child({"sys_admin"}, [("unshare", [0])])
    assert results == ["ok"]
