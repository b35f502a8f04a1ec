# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import sys

from ansible_collections.droot.core.plugins.module_utils._internal import info


def blocks(path):
    return os.lstat(path).st_blocks * 512


def test_disk_usage_counts_each_inode_once_and_never_follows_a_symlink(tmp_path):
    release = tmp_path / "release"
    (release / "a" / "b").mkdir(parents=True)
    (release / "a" / "data").write_bytes(os.urandom(200000))
    os.link(release / "a" / "data", release / "a" / "b" / "same")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(os.urandom(400000))
    os.symlink(str(outside), release / "a" / "to-outside")
    expected = sum(blocks(release / name) for name in ("", "a", "a/b", "a/data", "a/to-outside"))
    assert info.disk_usage(str(release)) == expected
    assert info.disk_usage(str(tmp_path / "missing")) is None


def test_describe_python_lists_the_libraries_it_cannot_import_in_the_order_given():
    described = info.describe_python(["json", "droot_no_such_library", "zipfile", "droot_no_such.child", "bad..name"])
    assert described["missing_libraries"] == ["droot_no_such_library", "droot_no_such.child", "bad..name"]
    assert described["executable"] == sys.executable
    assert "droot_no_such_library" not in sys.modules
