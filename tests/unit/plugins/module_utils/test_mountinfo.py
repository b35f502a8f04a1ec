from __future__ import annotations

from ansible_collections.droot.core.plugins.module_utils._internal import mountinfo

TABLE = """\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
100 27 254:0 /x/app /x/app rw,nodev,relatime - ext4 /dev/vda rw
101 100 0:50 / /x/app/proc rw,nosuid,nodev,noexec,relatime - proc proc rw
102 101 0:50 /sys /x/app/proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
103 27 254:0 /x/app2 /x/app2 rw,relatime - ext4 /dev/vda rw
104 27 254:0 /srv/my\\040data /x/my\\040app/data rw,relatime master:3 - ext4 /dev/vda rw
105 100 254:0 /data /x/app/data rw,relatime - ext4 /dev/vda rw
106 105 254:0 /data2 /x/app/data rw,relatime - ext4 /dev/vda rw
"""


def table():
    return mountinfo.parse(TABLE)


def test_parse_fields_and_optional_tags():
    mount = table()[0]
    assert mount.mount_point == "/"
    assert mount.optional == ("shared:1",)
    assert mount.fstype == "ext4"
    assert mount.source == "/dev/vda"
    assert table()[1].optional == ()


def test_octal_escapes_are_undone():
    mount = table()[5]
    assert mount.mount_point == "/x/my app/data"
    assert mount.root == "/srv/my data"
    assert mountinfo.unescape(r"a\011b\012c\134d") == "a\tb\nc\\d"


def test_sibling_with_common_prefix_is_not_under():
    points = [m.mount_point for m in mountinfo.mounts_under("/x/app", table())]
    assert "/x/app2" not in points
    assert set(points) == {"/x/app", "/x/app/proc", "/x/app/proc/sys", "/x/app/data"}


def test_deepest_first_and_stacked_top_first():
    found = mountinfo.mounts_under("/x/app", table())
    assert found[0].mount_point == "/x/app/proc/sys"
    data = [m.mount_id for m in found if m.mount_point == "/x/app/data"]
    assert data == [106, 105]
    assert found[-1].mount_point == "/x/app"


def test_trailing_slash_and_root():
    assert len(mountinfo.mounts_under("/x/app/", table())) == 5
    assert len(mountinfo.mounts_under("/", table())) == len(table())


def test_mount_at_returns_topmost():
    assert mountinfo.mount_at("/x/app/data", table()).mount_id == 106
    assert mountinfo.mount_at("/nowhere", table()) is None


def test_is_within():
    assert mountinfo.is_within("/a/b", "/a")
    assert mountinfo.is_within("/a", "/a")
    assert not mountinfo.is_within("/ab", "/a")
