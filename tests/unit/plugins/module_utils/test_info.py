# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

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
