"""The jail's mount steps, on a real root in a mount namespace of the test's own (needs root)."""
from __future__ import annotations

import os

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import jail, libc, mountinfo, mounts
from ansible_collections.droot.core.tests.unit.plugins.module_utils.forked import in_child

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")

SPIED = ("mount", "umount2", "open_tree", "move_mount", "mount_setattr", "fsopen", "fsconfig", "fsmount")


@pytest.fixture
def root(tmp_path):
    top = tmp_path / "root"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (top / "etc" / "group").write_text("root:x:0:\ntty:x:5:\n")
    source = tmp_path / "data"
    source.mkdir()
    (source / "file").write_text("host data")
    return str(top), str(source)


def test_mount_steps_take_descriptors_only(root, monkeypatch):
    """Every mount call of the set-up acts on descriptors: no path is resolved after its check.

    The one call with a path is the new namespace's own "/" made private, before anything is mounted.
    """
    top, source = root
    calls = []
    for name in SPIED:
        real = getattr(libc, name)

        def spy(*args, _name=name, _real=real, **kwargs):
            calls.append([_name] + [arg if isinstance(arg, (int, str)) or arg is None else repr(arg) for arg in args])
            return _real(*args, **kwargs)
        monkeypatch.setattr(libc, name, spy)
    real_top, root_fd = jail.open_root(top)
    the_plan = jail.plan(real_top, root_fd, {"command": ["true"], "image_config": False, "seccomp": False,
                                             "binds": [{"src": source, "dest": "/data", "readonly": True}],
                                             "copy_files": True})
    os.close(root_fd)

    def set_up():
        prepared = jail.Prepared(the_plan)
        the_jail = jail._Jail(the_plan, prepared, (0, 1, 2), os.open(os.devnull, os.O_WRONLY), None)
        jail._run_steps(the_jail, jail.SETUP_STEPS)
        # the jail's root is attached over the namespace's "/": its mounts are those below its mount
        table, ids = mountinfo.read_table(), {libc.mount_id(the_jail.mounts.root_fd)}
        for entry in table:
            if entry.parent_id in ids:
                ids.add(entry.mount_id)
        inside = {entry.mount_point: entry.options for entry in table if entry.mount_id in ids}
        data = os.open("data/file", os.O_RDONLY, dir_fd=the_jail.mounts.root_fd)
        return {"calls": calls, "mounts": the_jail.mounts.mounted, "options": inside,
                "data": os.read(data, 100).decode()}

    result = in_child(set_up)
    paths = [call for call in result["calls"] if call[0] == "mount"]
    assert paths == [["mount", None, "/", None, mounts.MS_REC | mounts.MS_PRIVATE]]
    assert not [call for call in result["calls"] if call[0] == "umount2"]
    for name, *args in result["calls"]:
        if name == "move_mount":
            assert args[1] == "" and args[3] == ""
            assert args[4] == libc.MOVE_MOUNT_F_EMPTY_PATH | libc.MOVE_MOUNT_T_EMPTY_PATH
        elif name in ("open_tree", "mount_setattr") and args[0] != -1:  # -1: the probe for the mount API
            assert args[1] == "" and args[2] & libc.AT_EMPTY_PATH
    assert result["mounts"][:2] == ["/", "/proc"]
    assert {"/data", "/etc/hosts", "/etc/resolv.conf", "/proc/sys", "/dev/pts"} <= set(result["mounts"])
    options = result["options"]
    assert options["/"].startswith("rw,nodev")
    assert options["/data"].startswith("ro,nosuid,nodev")
    assert options["/etc/hosts"].startswith("ro,nosuid,nodev,noexec")
    assert options["/proc/sys"].startswith("ro,nosuid,nodev,noexec")
    assert options["/sys"].startswith("ro,")
    assert result["data"] == "host data"
    assert not mountinfo.mounts_under(top), "nothing of the jail may show in the test's own namespace"


def _table(*lines):
    return mountinfo.parse("\n".join(lines))


ROOT_FS = "1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw"


def test_droot_mounts_keeps_an_administrators_mount_at_the_root(monkeypatch):
    monkeypatch.setattr(mounts, "recorded_root_mount", lambda root: None)
    table = _table(ROOT_FS,
                   "20 1 8:2 / /srv/app rw,relatime shared:5 - ext4 /dev/sdb1 rw",
                   "21 20 0:5 / /srv/app/proc rw,nosuid,nodev,noexec - proc proc rw")
    assert [entry.mount_id for entry in mounts.droot_mounts("/srv/app", table)] == [21]


def test_droot_mounts_takes_the_recorded_self_bind(monkeypatch):
    monkeypatch.setattr(mounts, "recorded_root_mount", lambda root: (30, 20))
    table = _table(ROOT_FS,
                   "20 1 8:2 / /srv/app rw,relatime shared:5 - ext4 /dev/sdb1 rw",
                   "30 20 8:2 / /srv/app rw,nodev,relatime - ext4 /dev/sdb1 rw",
                   "31 30 0:5 / /srv/app/proc rw,nosuid,nodev,noexec - proc proc rw")
    assert [entry.mount_id for entry in mounts.droot_mounts("/srv/app", table)] == [31, 30]
    monkeypatch.setattr(mounts, "recorded_root_mount", lambda root: (30, 1))  # an id reused elsewhere
    assert [entry.mount_id for entry in mounts.droot_mounts("/srv/app", table)] == [31]


def test_droot_mounts_recognises_0_1_0_self_binds(monkeypatch):
    monkeypatch.setattr(mounts, "recorded_root_mount", lambda root: None)
    legacy = _table(ROOT_FS, "40 1 8:1 /var/c/app /var/c/app rw,nodev,relatime - ext4 /dev/sda1 rw")
    assert [entry.mount_id for entry in mounts.droot_mounts("/var/c/app", legacy)] == [40]
    shared_peer = _table(ROOT_FS, "40 1 8:1 /var/c/app /var/c/app rw,nodev,relatime shared:7 - ext4 /dev/sda1 rw")
    assert mounts.droot_mounts("/var/c/app", shared_peer) == []


def test_unmount_tree_refuses_the_hosts_root():
    with pytest.raises(mounts.MountError, match="refusing to unmount everything under the host's /"):
        mounts.unmount_tree("/")


def test_before_linux_5_12_flags_are_set_on_the_attached_descriptor(root, monkeypatch):
    """Without mount_setattr, a bind's flags go on through /proc/self/fd of the attached tree, recursively."""
    top, source = root
    os.mkdir(os.path.join(source, "sub"))
    calls = []
    real_mount = libc.mount

    def spy(*args):
        calls.append(args)
        return real_mount(*args)

    real_top, root_fd = jail.open_root(top)
    the_plan = jail.plan(real_top, root_fd, {"command": ["true"], "image_config": False, "seccomp": False,
                                             "binds": [{"src": source, "dest": "/data", "readonly": True}]})
    os.close(root_fd)

    def set_up():
        monkeypatch.setattr(mounts, "_SETATTR_ON_DETACHED", False)
        monkeypatch.setattr(libc, "mount", spy)
        # a submount in the bind's source: the recursive bind must make it read-only too
        libc.unshare(libc.CLONE_NEWNS)
        real_mount(None, "/", None, mounts.MS_REC | mounts.MS_PRIVATE)
        real_mount("tmpfs", os.path.join(source, "sub"), "tmpfs", 0)
        prepared = jail.Prepared(the_plan)
        the_jail = jail._Jail(the_plan, prepared, (0, 1, 2), os.open(os.devnull, os.O_WRONLY), None)
        jail._run_steps(the_jail, jail.SETUP_STEPS)
        flags = {}
        for inside in ("data", "data/sub", "proc/sys", "dev/null"):
            fd = os.open(inside, os.O_PATH, dir_fd=the_jail.mounts.root_fd)
            flags[inside] = os.fstatvfs(fd).f_flag & 0xF
            os.close(fd)
        return {"targets": [call[1] for call in calls], "flags": flags}

    result = in_child(set_up)
    assert result["targets"][0] == "/"
    assert all(target.startswith("/proc/self/fd/") for target in result["targets"][1:])
    assert len(result["targets"]) > 10
    ro_nosuid_nodev = 0x1 | 0x2 | 0x4
    assert result["flags"]["data"] & ro_nosuid_nodev == ro_nosuid_nodev
    assert result["flags"]["data/sub"] & ro_nosuid_nodev == ro_nosuid_nodev
    assert result["flags"]["proc/sys"] & 0x1
    assert result["flags"]["dev/null"] & 0xA == 0xA  # nosuid, noexec
