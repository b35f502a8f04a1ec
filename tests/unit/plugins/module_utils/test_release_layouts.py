# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layout interface, the state format migration, and the Executor's dry run against a real run."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import releaser, releases
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

LAYOUTS = (releases.ReleasesTarget, releases.ReplaceTarget)


def releases_dest(path, *release_ids):
    """A releases dest where each release was fetched and switched to in turn."""
    target = releases.ReleasesTarget(path)
    with target.locked(5):
        executor = releases.Executor(target, target.load_state(), dry_run=False)
        for release_id in release_ids:
            staging = target.new_staging()
            with open(os.path.join(staging, "marker"), "w", encoding="utf-8") as handle:
                handle.write(release_id)
            executor.install(staging, release_id, {"sha256": release_id * 4}, "fail")
            executor.switch(release_id)
        executor.commit()
    return target


def snapshot(dest):
    """Every path under ``dest`` (with where each symlink points) and the bytes of state.json."""
    tree = []
    for top, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = os.path.join(top, name)
            tree.append((os.path.relpath(path, dest), os.readlink(path) if os.path.islink(path) else None))
    with open(os.path.join(dest, ".droot", "state.json"), "rb") as handle:
        return sorted(tree), handle.read()


# -- one interface ------------------------------------------------------------------------------


def test_both_layouts_implement_the_interface_with_the_same_signatures():
    shared = set(dir(releases._Target))
    interface = sorted({name for layout in LAYOUTS for name, value in vars(layout).items()
                        if not name.startswith("_") and name not in shared
                        and (inspect.isfunction(value) or isinstance(value, classmethod))})
    missing = {"current", "path_of", "releases", "check_request", "check_install", "install", "record_install",
               "check_activate", "activate", "delete"} - set(interface)
    assert not missing, "not defined on the layouts themselves: %s" % ", ".join(sorted(missing))
    for name in interface:
        defined = [vars(layout).get(name) for layout in LAYOUTS]
        assert None not in defined, "%s is not defined on both layouts" % name
        assert len({type(value) for value in defined}) == 1, "%s is a classmethod on one layout only" % name
        releases_sig, replace_sig = (inspect.signature(getattr(layout, name)) for layout in LAYOUTS)
        assert releases_sig == replace_sig, "%s%s differs from %s%s" % (name, releases_sig, name, replace_sig)
    assert all("private_roots" in vars(layout) for layout in LAYOUTS)


# -- state format ---------------------------------------------------------------------------------


FORMAT_1 = {"format": 1, "history": ["r1"], "rolled_back": [], "releases": {
    release_id: {"sha256": release_id * 32, "size": 10, "source": "/%s.tar" % release_id, "etag": None,
                 "image_id": None} for release_id in ("r1", "r2")}}


def test_a_state_of_droot_0_1_0_is_read_and_written_as_format_2_by_the_next_change(tmp_path):
    dest = tmp_path / "app"
    for release_id in ("r1", "r2"):
        (dest / "releases" / release_id).mkdir(parents=True)
    os.symlink("releases/r1", str(dest / "current"))
    (dest / ".droot").mkdir()
    (dest / ".droot" / "state.json").write_text(json.dumps(FORMAT_1))
    target = releases.ReleasesTarget(str(dest))
    state = target.load_state()
    assert target.migrated_from == 1
    assert {r: (info["fetched"], info["activated"]) for r, info in state["releases"].items()} == {
        "r1": (None, None), "r2": (None, None)}
    with target.locked(5):
        executor = releases.Executor(target, state, dry_run=False)
        executor.switch("r2")
        executor.commit()
    written = json.loads((dest / ".droot" / "state.json").read_text())
    assert written["format"] == releases.STATE_FORMAT == 2
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", written["releases"]["r2"]["activated"])
    assert written["releases"]["r1"]["activated"] is None and written["history"] == ["r1", "r2"]
    assert executor.notes == ["migrated the bookkeeping from format 1 (droot.core 0.1.0) to format 2"]


def test_a_state_of_a_newer_format_is_refused_naming_the_upgrade(tmp_path):
    target = releases_dest(str(tmp_path / "app"), "r1")
    with open(target.state_path, "w", encoding="utf-8") as handle:
        json.dump(dict(FORMAT_1, format=3), handle)
    with pytest.raises(releases.ReleaseError, match="has format 3, which this version of droot.core .* cannot read: "
                                                    "it was written by a newer version; upgrade the collection"
                       ) as caught:
        target.load_state()
    assert caught.value.step == "state"


# -- a dry run decides as a run does ----------------------------------------------------------------


def test_a_dry_run_gives_the_result_of_a_run_and_changes_nothing(tmp_path):
    real = releases_dest(str(tmp_path / "real"), "r1", "r2", "r3")
    shutil.copytree(real.dest, str(tmp_path / "dry"), symlinks=True)
    dry = releases.ReleasesTarget(str(tmp_path / "dry"))
    before = snapshot(dry.dest)

    def operations(target, dry_run):
        executor = releases.Executor(target, target.load_state(), dry_run)
        staging = None if dry_run else target.new_staging()
        executor.install(staging, "r4", {"sha256": "4" * 64}, "fail")
        executor.switch("r4")
        executor.switch(executor.previous(), rolled_back_from=executor.current, step="rollback")
        executor.prune(3)
        executor.remove("r1")
        executor.commit()
        result = executor.result("r3")
        assert result.pop("path") == target.path_of("r3")
        return result

    with real.locked(5):
        ran = operations(real, dry_run=False)
    assert ran == dict(changed=True, release="r3", previous="r3", current="r3", releases=["r3", "r2"],
                       removed=["r4", "r1"], kept_busy=[], rolled_back=[], sha256="r3" * 4, notes=[])
    assert operations(dry, dry_run=True) == ran
    assert snapshot(dry.dest) == before
    assert real.releases(real.load_state()) == ["r2", "r3"]


# -- droot_release's refusals ----------------------------------------------------------------------


@pytest.fixture
def busy_dest(tmp_path):
    """r1, r2, r3 fetched in turn (r3 current, r2 previous), a process working in r1."""
    target = releases_dest(str(tmp_path / "app"), "r1", "r2", "r3")
    sleeper = subprocess.Popen(["sleep", "30"], cwd=target.path_of("r1"))
    yield target
    sleeper.kill()
    sleeper.wait()


@pytest.mark.parametrize("check_mode", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("state, release, step, fix", [
    ("absent", "r3", "remove", "is the current release of .*: switch to another release first$"),
    ("absent", "r2", "remove", "is the previous release of .*: switch to another release first, or roll back "
                               "past it$"),
    ("absent", "r1", "remove", r"releases/r1 is used by \d+ \(sleep: cwd\): it was left in place; stop what uses it"),
    ("switched", "r9", "switch", "release r9 does not exist in .*: available are r1, r2, r3$"),
    ("rolled_back", "r9", "rollback", "release r9 does not exist in .*: available are r1, r2, r3$"),
], ids=["absent-current", "absent-previous", "absent-busy", "switched-missing", "rolled_back-missing"])
def test_a_refusal_names_the_fix_in_one_line_and_deletes_nothing(busy_dest, check_mode, state, release, step, fix):
    before = snapshot(busy_dest.dest)
    with pytest.raises(DrootError) as caught:
        releaser.run(dict(dest=busy_dest.dest, state=state, release=release, keep=3, lock_timeout=5),
                     check_mode=check_mode)
    assert caught.value.step == step
    assert "\n" not in str(caught.value) and re.search(fix, caught.value.msg), caught.value.msg
    assert snapshot(busy_dest.dest) == before
