from __future__ import annotations

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import caps
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError


def test_names_in_any_spelling():
    assert caps.parse(["CAP_NET_BIND_SERVICE", "net_bind_service", "Net_Bind_Service"], top=40) == (10,)


def test_default_set_is_upstream_without_dac_read_search():
    kept = caps.parse(caps.DEFAULT_KEPT, top=40)
    assert caps.mask(kept) == "00000000000004cb"
    assert 2 not in kept


@pytest.mark.parametrize("name", ["SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "MKNOD",
                                  "SYS_BOOT", "NET_ADMIN", "NET_RAW", "BPF", "PERFMON", "SYS_TIME", "IPC_OWNER",
                                  "SYSLOG", "LINUX_IMMUTABLE", "SETFCAP", "sys_resource"])
def test_dangerous_refused_unless_allowed(name):
    with pytest.raises(DrootError, match="allow_dangerous_capabilities"):
        caps.parse([name], top=40)
    assert caps.parse([name], allowed_dangerous=[name.upper()], top=40)


def test_safe_set_needs_no_flag_in_own_namespaces():
    assert caps.parse(caps.SAFE, top=40) == tuple(sorted(caps.NAMES.index(name) for name in caps.SAFE))


@pytest.mark.parametrize("name", ["KILL", "cap_sys_chroot"])
def test_kill_and_chroot_need_the_flag_in_host_namespaces(name):
    with pytest.raises(DrootError, match=r"\(namespaces=host\); to keep it anyway"):
        caps.parse([name], top=40, host_namespaces=True)
    assert caps.parse([name], allowed_dangerous=[name], top=40, host_namespaces=True)


def test_default_depends_on_the_user():
    assert caps.default_for(0) == caps.DEFAULT_KEPT
    assert caps.default_for(33) == ()


def test_unknown_and_beyond_the_kernel():
    with pytest.raises(DrootError, match="unknown capability 'CAP_FLY'"):
        caps.parse(["CAP_FLY"], top=40)
    with pytest.raises(DrootError, match="unknown capability 'bpf'"):
        caps.parse(["bpf"], top=38)


def test_unknown_name_in_allow_list():
    with pytest.raises(DrootError, match="allow_dangerous_capabilities"):
        caps.parse([], allowed_dangerous=["sys_fly"], top=40)


def test_names_of_and_empty():
    assert caps.names_of([10, 0]) == ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]
    assert caps.parse([], top=40) == ()
    assert caps.mask(()) == "0000000000000000"


def test_last_cap_reads_the_kernel(tmp_path):
    path = tmp_path / "cap_last_cap"
    path.write_text("37\n")
    assert caps.last_cap(str(path)) == 37
