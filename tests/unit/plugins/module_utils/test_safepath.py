"""Resolution inside a root: the image's symlinks never lead out of it (real temp dirs, no root)."""
from __future__ import annotations

import os

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import safepath


@pytest.fixture
def tree(tmp_path):
    host = tmp_path / "host"
    root = tmp_path / "root"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "shadow").write_text("host secret")
    (root / "etc").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "etc" / "hosts").write_text("in root")
    os.symlink(str(host / "etc"), str(root / "var" / "log"))  # absolute, pointing at the host
    os.symlink("../../../../..", str(root / "etc" / "up"))      # relative, climbing out
    os.symlink("loop2", str(root / "loop1"))
    os.symlink("loop1", str(root / "loop2"))
    fd = safepath.open_root(str(root))
    yield host, root, fd
    os.close(fd)


def test_absolute_symlink_resolves_inside(tree):
    host, root, fd = tree
    safepath.write_in_root(fd, "/var/log/shadow", b"written")
    assert (host / "etc" / "shadow").read_text() == "host secret"
    assert (root / str(host).lstrip("/") / "etc" / "shadow").read_bytes() == b"written"


def test_dotdot_stops_at_the_root(tree):
    _host, root, fd = tree
    assert safepath.read_in_root(fd, "/etc/up/etc/hosts") == b"in root"
    assert safepath.read_in_root(fd, "/../../../etc/hosts") == b"in root"


def test_mountpoint_through_symlink_lands_inside(tree):
    host, root, fd = tree
    mountpoint = safepath.create_mountpoint(fd, "/var/log/app", True)
    try:
        target = os.readlink(safepath.fd_path(mountpoint))
    finally:
        os.close(mountpoint)
    assert target.startswith(str(root) + "/")
    assert not (host / "etc" / "app").exists()


def test_final_symlink_to_missing_dir_is_created_inside(tree):
    host, root, fd = tree
    os.symlink(str(host / "newdir"), str(root / "evil"))
    mountpoint = safepath.create_mountpoint(fd, "/evil", True)
    os.close(mountpoint)
    assert not (host / "newdir").exists()
    assert (root / str(host).lstrip("/") / "newdir").is_dir()


def test_symlink_loop_is_an_error(tree):
    _host, _root, fd = tree
    with pytest.raises(safepath.UnsafePath, match="too many levels"):
        safepath.read_in_root(fd, "/loop1/x")


def test_missing_file_reads_as_none(tree):
    _host, _root, fd = tree
    assert safepath.read_in_root(fd, "/no/such/file") is None


def test_special_files_are_refused(tree):
    _host, root, fd = tree
    os.mkfifo(str(root / "etc" / "fifo"))
    with pytest.raises(safepath.UnsafePath, match="not a regular file"):
        safepath.write_in_root(fd, "/etc/fifo", b"x")
    with pytest.raises(safepath.UnsafePath, match="not a regular file"):
        safepath.read_in_root(fd, "/etc")


def test_file_mountpoint_over_directory_is_refused(tree):
    _host, _root, fd = tree
    with pytest.raises(safepath.UnsafePath, match="is a directory but the mount needs a file"):
        safepath.create_mountpoint(fd, "/etc", False)


def test_size_limit(tree):
    _host, _root, fd = tree
    with pytest.raises(safepath.UnsafePath, match="larger than"):
        safepath.read_in_root(fd, "/etc/hosts", limit=3)


def test_strict_host_walk_refuses_symlinks(tree):
    host, root, _fd = tree
    os.close(safepath.open_host_dir_strict(str(root / "etc")))
    with pytest.raises(OSError):
        safepath.open_host_dir_strict(str(root / "var" / "log"))
