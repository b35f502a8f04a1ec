# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import releases

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="mounts need root")


def make_tree(path, marker):
    os.makedirs(os.path.join(path, "etc"), exist_ok=True)
    with open(os.path.join(path, "etc", "marker"), "w", encoding="utf-8") as handle:
        handle.write(marker)
    return path


def marker(path):
    with open(os.path.join(path, "etc", "marker"), encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture
def mount_tmpfs():
    mounted = []

    def mount(path):
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path], check=True)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", path], check=False)


def no_exchange(monkeypatch):
    """Make renameat2 behave as on a file system without RENAME_EXCHANGE."""
    real = releases.renameat2

    def fake(old, new, flags):
        if flags == releases.RENAME_EXCHANGE:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(old, new, flags)

    monkeypatch.setattr(releases, "renameat2", fake)


# -- switching ---------------------------------------------------------------------------------


def test_exchange_swaps_directories(tmp_path):
    a = make_tree(str(tmp_path / "a"), "A")
    b = make_tree(str(tmp_path / "b"), "B")
    releases.renameat2(a, b, releases.RENAME_EXCHANGE)
    assert (marker(a), marker(b)) == ("B", "A")


def test_put_into_missing_and_present_target(tmp_path):
    switcher = releases.Switcher(str(tmp_path / "switch.json"))
    target = str(tmp_path / "root")
    assert switcher.put(make_tree(str(tmp_path / "new1"), "1"), target, str(tmp_path / "aside")) is None
    assert marker(target) == "1"
    new2 = make_tree(str(tmp_path / "new2"), "2")
    old = switcher.put(new2, target, str(tmp_path / "aside"))
    assert old == new2 and marker(old) == "1" and marker(target) == "2"


def test_fallback_switch_without_exchange(tmp_path, monkeypatch):
    no_exchange(monkeypatch)
    switcher = releases.Switcher(str(tmp_path / "switch.json"))
    target = make_tree(str(tmp_path / "root"), "old")
    old = switcher.put(make_tree(str(tmp_path / "new"), "new"), target, str(tmp_path / "aside"))
    assert old == str(tmp_path / "aside") and marker(old) == "old" and marker(target) == "new"
    assert not os.path.exists(tmp_path / "switch.json")


def test_fallback_crash_between_renames_is_completed(tmp_path, monkeypatch):
    """Killed after moving dest aside: the next run puts the new tree in place."""
    no_exchange(monkeypatch)
    switcher = releases.Switcher(str(tmp_path / "switch.json"))
    target = make_tree(str(tmp_path / "root"), "old")
    new = make_tree(str(tmp_path / "new"), "new")
    real_rename = os.rename

    def crash_before_new_is_moved(src, dst, **dir_fds):
        if src == new:
            raise KeyboardInterrupt("simulated kill")
        real_rename(src, dst, **dir_fds)

    monkeypatch.setattr(releases.os, "rename", crash_before_new_is_moved)
    with pytest.raises(KeyboardInterrupt):
        switcher.put(new, target, str(tmp_path / "aside"))
    monkeypatch.setattr(releases.os, "rename", real_rename)
    assert not os.path.exists(target), "the crash window of the fallback: dest is missing"
    assert "completed" in switcher.recover()
    assert marker(target) == "new" and marker(str(tmp_path / "aside")) == "old"
    assert not os.path.exists(tmp_path / "switch.json")


def test_recover_restores_old_tree_when_new_is_gone(tmp_path):
    switcher = releases.Switcher(str(tmp_path / "switch.json"))
    aside = make_tree(str(tmp_path / "aside"), "old")
    releases.write_json(switcher.journal_path, {"target": str(tmp_path / "root"), "new": str(tmp_path / "gone"),
                                                "aside": aside})
    assert "restored" in switcher.recover()
    assert marker(str(tmp_path / "root")) == "old"


def test_recover_without_journal_is_a_no_op(tmp_path):
    assert releases.Switcher(str(tmp_path / "switch.json")).recover() is None


# -- deleting ----------------------------------------------------------------------------------


def test_remove_tree_never_follows_symlinks(tmp_path):
    outside = make_tree(str(tmp_path / "outside"), "keep me")
    tree = make_tree(str(tmp_path / "tree"), "x")
    os.symlink(outside, os.path.join(tree, "to-outside"))
    os.symlink(os.path.join(outside, "etc"), os.path.join(tree, "etc", "nested-link"))
    os.makedirs(os.path.join(tree, "ro", "deep", "er"))
    os.chmod(os.path.join(tree, "ro"), 0o500)
    releases.remove_tree(tree)
    assert not os.path.lexists(tree)
    assert marker(outside) == "keep me"


@needs_root
def test_remove_tree_refuses_a_mounted_tree(tmp_path, mount_tmpfs):
    tree = make_tree(str(tmp_path / "tree"), "x")
    data = mount_tmpfs(os.path.join(tree, "data"))
    make_tree(data, "host data")
    with pytest.raises(releases.BusyError, match="mounted"):
        releases.remove_tree(tree)
    assert marker(data) == "host data" and marker(tree) == "x"


@needs_root
def test_remove_tree_stops_at_a_mount_made_after_the_check(tmp_path, mount_tmpfs, monkeypatch):
    """Even when the busy check missed it, deletion never walks into another mount."""
    tree = make_tree(str(tmp_path / "tree"), "x")
    data = mount_tmpfs(os.path.join(tree, "a", "b", "data"))
    make_tree(data, "host data")
    monkeypatch.setattr(releases, "busy_reasons", lambda path: [])
    with pytest.raises(releases.BusyError, match="mount point below it"):
        releases.remove_tree(tree)
    assert marker(data) == "host data"


def test_remove_tree_refuses_while_a_process_uses_it(tmp_path):
    tree = make_tree(str(tmp_path / "tree"), "x")
    sleeper = subprocess.Popen(["sleep", "60"], cwd=tree)
    try:
        time.sleep(0.2)
        with pytest.raises(releases.BusyError) as caught:
            releases.remove_tree(tree)
        assert str(sleeper.pid) in str(caught.value) and "cwd" in str(caught.value)
        assert marker(tree) == "x"
    finally:
        sleeper.kill()
        sleeper.wait()
    releases.remove_tree(tree)
    assert not os.path.exists(tree)


# -- releases layout ---------------------------------------------------------------------------


def add_release(executor, release_id, activate=True):
    """Install (and switch to) a release whose marker is its id, as a fetch does."""
    staging = make_tree(executor.target.new_staging(), release_id)
    executor.install(staging, release_id, {"sha256": release_id * 4}, "fail")
    if activate:
        executor.switch(release_id)
    return executor.target.path_of(release_id)


@pytest.fixture
def target(tmp_path):
    target = releases.ReleasesTarget(str(tmp_path / "app"))
    target._make_dirs()
    return target


@pytest.fixture
def executor(target):
    return releases.Executor(target, target.load_state(), dry_run=False)


def test_activate_and_previous(target, executor):
    for name in ("r1", "r2", "r3"):
        add_release(executor, name)
    assert target.current(executor.state) == executor.current == "r3"
    assert os.readlink(target.current_link) == "releases/r3"
    assert marker(target.current_link) == "r3"
    assert executor.previous() == "r2"
    executor.switch("r1")
    assert executor.previous() == "r3"
    assert executor.state["history"] == ["r2", "r3", "r1"]


def test_prune_keeps_current_previous_and_newest(target, executor):
    for name in ("r1", "r2", "r3", "r4", "r5"):
        add_release(executor, name)
    add_release(executor, "never-active", activate=False)
    executor.prune(3)
    assert sorted(executor.removed) == ["never-active", "r1", "r2"] and executor.kept_busy == []
    assert target.releases(target.load_state()) == ["r3", "r4", "r5"]
    again = releases.Executor(target, executor.state, dry_run=False)
    again.prune(1)
    assert again.removed == ["r3"], "keep=1 still keeps the previous release"
    assert target.releases(target.load_state()) == ["r4", "r5"]
    assert "r3" not in executor.state["releases"]


def test_prune_after_rollback_keeps_the_rolled_back_release(target, executor):
    for name in ("r1", "r2", "r3"):
        add_release(executor, name)
    executor.switch("r2")
    executor.prune(1)
    assert executor.removed == ["r1"]
    assert target.current(executor.state) == "r2" and executor.previous() == "r3"


def test_rollbacks_walk_back_instead_of_returning(executor):
    for name in ("r1", "r2", "r3"):
        add_release(executor, name)
    executor.switch("r2", rolled_back_from="r3")
    assert executor.previous() == "r1", "r3 was rolled back from: it is not the previous release"
    executor.switch("r1", rolled_back_from="r2")
    assert executor.previous() is None
    assert executor.state["rolled_back"] == ["r3", "r2"]


def test_activating_a_rolled_back_release_clears_its_mark(executor):
    for name in ("r1", "r2"):
        add_release(executor, name)
    executor.switch("r1", rolled_back_from="r2")
    executor.switch("r2")
    assert executor.state["rolled_back"] == [] and executor.previous() == "r1"


def test_a_failed_release_is_skipped_after_the_restore(executor):
    """deploy r3 over r2, r3 fails and r2 is put back: going back from r2 means r1, never r3."""
    for name in ("r1", "r2", "r3"):
        add_release(executor, name)
    executor.switch("r2", rolled_back_from="r3")
    assert executor.state["history"] == ["r1", "r3", "r2"]
    assert executor.previous() == "r1"


def test_previous_and_ranked_count_only_releases_on_disk():
    state = {"history": ["r1", "r2", "r3", "r4"], "rolled_back": ["r4"]}
    assert releases.previous_of(state, "r3", {"r1", "r3", "r4"}) == "r1"
    assert releases.ranked(state, {"r1", "r3", "r4", "fresh"}) == ["r3", "r1", "fresh", "r4"]


def test_rolled_back_releases_do_not_take_keep_slots(target, executor):
    for name in ("r1", "r2", "r3", "r4"):
        add_release(executor, name)
    executor.switch("r3", rolled_back_from="r4")
    assert executor.ranked() == ["r3", "r2", "r1", "r4"]
    assert executor.prune_candidates(3) == ["r4"]
    executor.prune(3)
    assert executor.removed == ["r4"] and executor.kept_busy == []
    assert target.releases(target.load_state()) == ["r1", "r2", "r3"], "the good releases keep their places"
    assert all("r4" not in executor.state[key] for key in ("history", "rolled_back", "releases"))


def test_a_rolled_back_release_stays_while_there_is_room(target, executor):
    for name in ("r1", "r2"):
        add_release(executor, name)
    executor.switch("r1", rolled_back_from="r2")
    executor.prune(3)
    assert (executor.removed, executor.kept_busy) == ([], [])
    assert target.releases(target.load_state()) == ["r1", "r2"]


def test_prune_spares_the_release_of_the_task(target, executor):
    """A release fetched without switching is never activated yet: it ranks last, but stays."""
    for name in ("r1", "r2", "r3"):
        add_release(executor, name)
    add_release(executor, "fresh", activate=False)
    assert executor.prune_candidates(2, protect=["fresh"]) == ["r1"]
    executor.prune(2, protect=["fresh"])
    assert executor.removed == ["r1"]
    assert target.releases(target.load_state()) == ["fresh", "r2", "r3"]


def test_check_mode_prune_counts_the_release_it_would_fetch(target, executor):
    for name in ("r1", "r2", "r3"):
        add_release(executor, name)
    dry = releases.Executor(target, executor.state, dry_run=True)
    dry.install(None, "new", {"sha256": None}, "fail")
    dry.switch("new")
    dry.prune(3, protect=["new"])
    assert (dry.removed, dry.kept_busy) == (["r1"], [])
    assert target.releases(target.load_state()) == ["r1", "r2", "r3"]


def test_keep_zero_keeps_everything(executor):
    for name in ("r1", "r2", "r3", "r4"):
        add_release(executor, name)
    executor.prune(0)
    assert (executor.removed, executor.kept_busy) == ([], [])


@needs_root
def test_prune_never_deletes_through_a_bind_mount(target, executor, tmp_path):
    old = add_release(executor, "r1")
    host_data = make_tree(str(tmp_path / "host-data"), "precious")
    os.makedirs(os.path.join(old, "srv"))
    subprocess.run(["mount", "--bind", host_data, os.path.join(old, "srv")], check=True)
    try:
        for name in ("r2", "r3", "r4"):
            add_release(executor, name)
        executor.prune(1)
        assert executor.kept_busy == ["r1"] and executor.removed == ["r2"]
        assert marker(host_data) == "precious" and marker(os.path.join(old, "srv")) == "precious"
    finally:
        subprocess.run(["umount", os.path.join(old, "srv")], check=True)
    again = releases.Executor(target, executor.state, dry_run=False)
    again.prune(1)
    assert again.removed == ["r1"] and again.kept_busy == []
    assert marker(host_data) == "precious"


def test_installing_an_existing_release_exchanges_it(target, executor):
    add_release(executor, "r1")
    executor.install(make_tree(target.new_staging(), "r1 re-exported"), "r1", {"sha256": None}, "fail")
    assert marker(target.current_link) == "r1 re-exported"
    assert not os.listdir(target.staging_dir)


def test_readers_never_see_current_missing(target, executor, tmp_path):
    """Switch current back and forth while another process keeps reading through it."""
    add_release(executor, "blue")
    add_release(executor, "green")
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", """
import os, sys
path, stop = sys.argv[1], sys.argv[2]
reads = missing = 0
while not os.path.exists(stop):
    try:
        with open(path) as handle:
            handle.read()
        reads += 1
    except OSError:
        missing += 1
print(reads, missing)
""", os.path.join(target.current_link, "etc", "marker"), str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        for switch in range(3000):
            target.activate("blue" if switch % 2 else "green")
    finally:
        stop.touch()
        out = reader.communicate(timeout=30)[0]
    reads, missing = map(int, out.split())
    assert reads > 100
    assert missing == 0


def test_current_that_is_not_ours_is_refused(target):
    os.symlink("/etc", target.current_link)
    with pytest.raises(releases.ReleaseError, match="not to releases/<id>"):
        target.current(target.load_state())


def test_lock_waits_then_fails_clearly(target):
    with target.locked(1):
        started = time.monotonic()
        with pytest.raises(releases.ReleaseError) as caught:
            with target.locked(0.3):
                pass
        assert time.monotonic() - started >= 0.3
    assert "pid %d" % os.getpid() in str(caught.value) and "lock_timeout" in str(caught.value)
    with target.locked(0.1):
        pass


def test_recover_cleans_what_a_killed_run_left(target, executor):
    add_release(executor, "r1")
    make_tree(target.new_staging(), "half")
    os.symlink("releases/r1", os.path.join(target.dest, ".current.tmp-123-abc"))
    target.recover()
    assert os.listdir(target.staging_dir) == []
    assert not os.path.lexists(os.path.join(target.dest, ".current.tmp-123-abc"))
    assert marker(target.current_link) == "r1"


# -- replace layout ----------------------------------------------------------------------------


@pytest.fixture
def replace(tmp_path):
    """A real run's executor on a replace dest, its directories made."""
    target = releases.ReplaceTarget(str(tmp_path / "root"))
    target._make_dirs()
    return releases.Executor(target, target.load_state(), dry_run=False)


def test_replace_layout_swaps_and_deletes_old(tmp_path, replace):
    target = replace.target
    for name in ("one", "two"):
        replace.install(make_tree(target.new_staging(), name), name, {"sha256": None}, "fail")
        assert replace.kept_old is None
    assert marker(target.dest) == "two" and replace.state["current"] == replace.current == "two"
    assert replace.result("two")["releases"] == ["two"]
    assert os.listdir(target.staging_dir) == [] and os.listdir(target.old_dir) == []
    assert target.state_dir == str(tmp_path / ".root.droot")


def test_replace_layout_fallback(replace, monkeypatch):
    no_exchange(monkeypatch)
    target = replace.target
    for name in ("one", "two"):
        replace.install(make_tree(target.new_staging(), name), name, {"sha256": None}, "fail")
    assert marker(target.dest) == "two"
    assert os.listdir(target.old_dir) == []


def test_replace_busy_dest_fails_or_is_kept(replace):
    target = replace.target
    replace.install(make_tree(target.new_staging(), "one"), "one", {"sha256": None}, "fail")
    sleeper = subprocess.Popen(["sleep", "60"], cwd=target.dest)
    try:
        time.sleep(0.2)
        staging = make_tree(target.new_staging(), "two")
        with pytest.raises(releases.BusyError, match="if_busy: keep"):
            replace.install(staging, "two", {"sha256": None}, if_busy="fail")
        assert marker(target.dest) == "one" and replace.current == "one"
        replace.install(staging, "two", {"sha256": None}, if_busy="keep")
        kept = replace.kept_old
        assert marker(target.dest) == "two"
        assert os.path.dirname(kept) == target.old_dir and marker(kept) == "one"
        assert os.readlink("/proc/%d/cwd" % sleeper.pid) == kept
    finally:
        sleeper.kill()
        sleeper.wait()
    target.recover()
    assert os.listdir(target.old_dir) == []


def test_replace_holds_one_release_that_is_never_switched_away_or_removed(replace):
    replace.install(make_tree(replace.target.new_staging(), "one"), "one", {"sha256": None}, "fail")
    with pytest.raises(releases.ReleaseError, match="cannot switch to two: fetch that release with src instead"):
        replace.target.check_activate("two", "one")
    with pytest.raises(releases.ReleaseError, match="which cannot be removed: remove .* yourself"):
        replace.target.delete("one")
    assert marker(replace.target.dest) == "one"


@pytest.mark.parametrize("value", ["", ".hidden", "a/b", "..", "x" * 129, "sp ace"])
def test_bad_release_names(value):
    with pytest.raises(releases.ReleaseError):
        releases.check_release_id(value)


def test_release_id_from_image_id():
    assert releases.release_id_from_image_id("sha256:" + "0123456789ab" * 5 + "cdef") == "0123456789ab"
    with pytest.raises(releases.ReleaseError):
        releases.release_id_from_image_id("sha256:not-hex")


def test_missing_parents_of_dest_are_created(tmp_path):
    target = releases.ReleasesTarget(str(tmp_path / "srv" / "containers" / "app"))
    with target.locked(1):
        assert os.path.isdir(target.releases_dir) and os.path.isdir(target.staging_dir)


def test_missing_parents_of_a_replace_dest_are_created(tmp_path):
    target = releases.ReplaceTarget(str(tmp_path / "srv" / "roots" / "app"))
    assert not os.path.exists(tmp_path / "srv")
    with target.locked(1):
        target.install(make_tree(target.new_staging(), "one"), "one", target.load_state(), "fail")
    assert marker(target.dest) == "one"
    assert os.stat(tmp_path / "srv" / "roots").st_mode & 0o777 == 0o755


def mode_of(path):
    return os.stat(path).st_mode & 0o7777


@pytest.mark.parametrize("layout", ["releases", "replace"])
def test_private_directories_are_made_0700(tmp_path, layout):
    target = releases.open_target(str(tmp_path / "app"), layout)
    with target.locked(1):
        made = {path: mode_of(path) for path in target.private_dirs()}
    assert made == dict.fromkeys(target.private_dirs(), 0o700)
    assert (os.path.join(str(tmp_path / "app"), "releases") in made) is (layout == "releases")
    assert target.warnings == [] and target.corrected == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another owner needs root")
def test_private_directories_found_wider_are_corrected_with_a_warning(tmp_path):
    target = releases.ReleasesTarget(str(tmp_path / "app"))
    with target.locked(1):
        pass
    # As droot_fetch 0.1.0 left them, and one another user could have made.
    os.chmod(target.releases_dir, 0o755)
    os.chmod(target.staging_dir, 0o770)
    os.chown(target.old_dir, 4321, 4321)
    assert [found[0] for found in target.too_open()] == [target.releases_dir, target.staging_dir, target.old_dir]
    warned = []
    again = releases.ReleasesTarget(str(tmp_path / "app"), warn=warned.append)
    with again.locked(1):
        pass
    assert again.corrected == [target.releases_dir, target.staging_dir, target.old_dir]
    assert warned[0] == ("%s was mode 0755, owner uid 0: corrected to 0700, owner uid 0, so that host users cannot "
                         "run the setuid and capability binaries of the trees in it" % target.releases_dir)
    assert "%s was mode 0770" % target.staging_dir in warned[1]
    assert "%s was mode 0700, owner uid 4321: corrected" % target.old_dir in warned[2]
    assert again.warnings == []
    for path in target.private_dirs():
        assert (mode_of(path), os.stat(path).st_uid) == (0o700, 0)
    assert target.too_open() == []
    third = releases.ReleasesTarget(str(tmp_path / "app"))
    with third.locked(1):
        pass
    assert third.corrected == [] and third.warnings == []


def test_a_private_directory_that_is_a_symlink_is_refused(tmp_path):
    target = releases.ReleasesTarget(str(tmp_path / "app"))
    os.makedirs(target.dest)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    os.symlink(str(elsewhere), target.releases_dir)
    with pytest.raises(releases.ReleaseError, match="releases exists and is not a directory: move it away"):
        target._make_dirs()
    assert os.path.islink(target.releases_dir) and mode_of(elsewhere) == 0o755


# -- a failed run leaves nothing it made -------------------------------------------------------


def everything(path):
    return sorted(os.path.relpath(os.path.join(top, name), str(path))
                  for top, dirs, files in os.walk(str(path)) for name in dirs + files)


@pytest.mark.parametrize("layout", ["releases", "replace"])
def test_a_failed_first_run_removes_what_it_made_parents_included(tmp_path, layout):
    (tmp_path / "srv").mkdir()
    target = releases.open_target(str(tmp_path / "srv" / "roots" / "app"), layout)
    with pytest.raises(RuntimeError):
        with target.locked(1):
            make_tree(target.new_staging(), "half")
            target.discard(os.path.join(target.staging_dir, os.listdir(target.staging_dir)[0]))
            raise RuntimeError("the download failed")
    assert everything(tmp_path) == ["srv"]


def test_a_failed_run_keeps_what_was_there_before(tmp_path):
    dest = tmp_path / "app"
    dest.mkdir()
    target = releases.open_target(str(dest), "releases")
    with pytest.raises(RuntimeError):
        with target.locked(1):
            raise RuntimeError("failed")
    assert everything(tmp_path) == ["app"]
    with target.locked(1):
        executor = releases.Executor(target, target.load_state(), dry_run=False)
        add_release(executor, "r1")
        executor.commit()
    made = everything(tmp_path)
    with pytest.raises(RuntimeError):
        with target.locked(1):
            raise RuntimeError("failed")
    assert everything(tmp_path) == made


def test_a_failed_run_keeps_the_lock_file_another_run_waits_on(tmp_path):
    target = releases.open_target(str(tmp_path / "app"), "releases")
    with pytest.raises(RuntimeError):
        with target.locked(1):
            waiter = subprocess.Popen(["flock", target.lock_path, "true"])
            deadline = time.monotonic() + 5
            while not releases.procs.users_of(target.lock_path) and time.monotonic() < deadline:
                time.sleep(0.02)
            lock = os.stat(target.lock_path)
            raise RuntimeError("failed")
    assert waiter.wait(5) == 0
    # The waiter locked the file that is still at the lock's path; only what it does not need went.
    assert os.stat(target.lock_path).st_ino == lock.st_ino
    assert everything(tmp_path) == ["app", "app/.droot", "app/.droot/lock"]


def test_a_run_whose_lock_file_was_removed_while_it_waited_locks_again(tmp_path):
    target = releases.open_target(str(tmp_path / "app"), "releases")
    with target.locked(1):
        pass
    # Another run holds the lock, fails and removes the skeleton with the lock file it holds.
    failing = subprocess.Popen([sys.executable, "-c", """
import fcntl, os, shutil, sys, time
fd = os.open(sys.argv[1] + "/.droot/lock", os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(0.5)
shutil.rmtree(sys.argv[1])
""", target.dest], stdout=subprocess.PIPE)
    assert failing.stdout.readline() == b"locked\n"
    with target.locked(5):
        assert os.path.isdir(target.staging_dir)
        with open(target.lock_path, "rb") as handle:
            assert handle.read() == b"%d\n" % os.getpid()
    assert failing.wait(5) == 0


@needs_root
def test_adopting_what_a_file_system_of_its_own_holds_fails_with_dest_as_it_was(tmp_path, mount_tmpfs):
    dest = mount_tmpfs(str(tmp_path / "app"))
    make_tree(dest, "mine")
    target = releases.open_target(dest, "releases")
    target.check_foreign(adopt=True)
    with target.locked(1):
        staging = make_tree(target.new_staging(), "r1")
        with pytest.raises(releases.ReleaseError, match=r"cannot move .*/app/etc out of dest .* \(Invalid cross-device "
                                                        r"link\): dest is a file system of its own"):
            target.install(staging, "r1", target.load_state(), "fail")
    assert sorted(os.listdir(dest)) == [".droot", "etc"] and marker(dest) == "mine"
    assert [name for name in os.listdir(str(tmp_path)) if ".droot-adopted-" in name] == []
