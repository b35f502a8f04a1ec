from __future__ import annotations

import os

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import safepath, users
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
app:x:4321:4321:app:/home/app:/bin/sh
broken:line
svc:x:900:950::/srv:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
app:x:4321:
extra:x:5555:app,svc
svcgrp:x:950:
other:x:6000:svc
"""


@pytest.fixture
def root_fd(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    fd = safepath.open_root(str(tmp_path))
    yield fd
    os.close(fd)


def test_name_resolves_from_the_roots_files(root_fd):
    identity = users.resolve(root_fd, "app")
    assert (identity.uid, identity.gid, identity.groups) == (4321, 4321, (4321, 5555))
    assert identity.home == "/home/app"


def test_default_is_root(root_fd):
    identity = users.resolve(root_fd)
    assert (identity.uid, identity.gid, identity.name) == (0, 0, "root")


def test_numeric_uid_without_entry_gets_gid_0_like_docker(root_fd):
    identity = users.resolve(root_fd, "7001")
    assert (identity.uid, identity.gid, identity.groups, identity.name) == (7001, 0, (0,), None)


def test_numeric_uid_with_entry_uses_it(root_fd):
    identity = users.resolve(root_fd, "900")
    assert (identity.name, identity.gid, identity.groups) == ("svc", 950, (950, 5555, 6000))


def test_group_by_name_and_number(root_fd):
    assert users.resolve(root_fd, "app", "extra").gid == 5555
    assert users.resolve(root_fd, "app", "123").gid == 123
    assert users.resolve(root_fd, "app", "extra").groups == (5555,)


def test_unknown_names_fail_with_the_fix(root_fd):
    with pytest.raises(DrootError, match="user 'nobody' is not in the root's /etc/passwd"):
        users.resolve(root_fd, "nobody")
    with pytest.raises(DrootError, match="group 'nogroup' is not in the root's /etc/group"):
        users.resolve(root_fd, "app", "nogroup")


def test_out_of_range_id(root_fd):
    with pytest.raises(DrootError, match="out of range"):
        users.resolve(root_fd, "4294967295")


def test_passwd_symlinked_out_of_the_root_is_read_inside(tmp_path):
    host = tmp_path / "host"
    root = tmp_path / "root"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "passwd").write_text("hostonly:x:1:1::/:/bin/sh\n")
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "real-passwd").write_text("inroot:x:2:2::/:/bin/sh\n")
    # absolute link: a host open() would read host/etc/passwd through it
    os.symlink(str(host / "etc" / "passwd"), str(root / "etc" / "passwd"))
    fd = safepath.open_root(str(root))
    try:
        with pytest.raises(DrootError):
            users.resolve(fd, "hostonly")
    finally:
        os.close(fd)


def test_split_user_spec():
    assert users.split_user_spec("app:extra") == ("app", "extra")
    assert users.split_user_spec("1000") == ("1000", None)
    assert users.split_user_spec("") == (None, None)
