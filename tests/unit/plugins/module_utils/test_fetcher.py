# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import fetcher, manifest, releases, store
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
IMAGE_ID = "sha256:" + "ab" * 32
IMAGE_RELEASE = "abababababab"


def params(**overrides):
    """droot_fetch's options with the defaults of its argument_spec."""
    values = dict(src=None, dest="/nonexistent", layout="releases", release=None, rollback=False, switch=True,
                  checksum=None, keep=3, if_busy="fail", allow_devices=False, allow_privileged_files=False,
                  max_pax_bytes_per_member=1048576, max_pax_bytes_per_archive=268435456, max_unpacked_bytes=None,
                  min_free_space=None, max_entries=500000, max_path_depth=128, lock_timeout=5, adopt=False,
                  keep_owners=True)
    values.update(dict.fromkeys(store.S3Options.FIELDS))
    values.update(overrides)
    return values


def tar_gz(name=b"etc/marker", content=b"v1"):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        member = tarfile.TarInfo(name.decode())
        member.size = len(content)
        tar.addfile(member, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def publish(directory, data, manifest=None, name="app.tar.gz"):
    """Write an archive (and its manifest, when given) as droot_export leaves them; returns its path."""
    src = str(directory / name)
    with open(src, "wb") as handle:
        handle.write(data)
    if manifest is not None:
        with open(store.manifest_location(src), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle)
    return src


def manifest_for(data, name="app.tar.gz", **fields):
    document = dict(format=1, archive=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                    image_id=IMAGE_ID)
    document.update(fields)
    return document


@pytest.fixture
def target(tmp_path):
    """An empty releases dest, its directories made as a locked run makes them."""
    made = releases.open_target(str(tmp_path / "app"), "releases")
    with made.locked(5):
        pass
    return made


def add_release(target, release_id, state, info=None, activate=False):
    os.makedirs(target.path_of(release_id))
    if info is not None:
        state["releases"][release_id] = info
    if activate:
        target.activate(release_id)
        releases.record_activation(state, release_id)


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (None, None),
    (DIGEST, DIGEST),
    ("sha256:" + DIGEST.upper(), DIGEST),
    ("  %s\n" % DIGEST, DIGEST),
])
def test_parse_checksum_accepts_hex_with_or_without_prefix(value, expected):
    assert fetcher.parse_checksum(value) == expected


@pytest.mark.parametrize("value", ["", "md5:" + DIGEST, DIGEST[:-1], DIGEST + "0", "sha256:" + "g" * 64])
def test_parse_checksum_refuses_what_is_not_a_sha256(value):
    with pytest.raises(fetcher.FetchError, match="is not a sha256: give sha256:<64 hex digits>") as caught:
        fetcher.parse_checksum(value)
    assert caught.value.step == "options"


@pytest.mark.parametrize("overrides, message", [
    (dict(rollback=True, layout="replace", src="/a.tar"), "rollback needs layout releases"),
    (dict(layout="replace"), "src is required with layout replace"),
    (dict(layout="replace", src="/a.tar", switch=False), "switch=false needs layout releases"),
    (dict(keep=-1), "keep must be 0"),
    (dict(release="../escape"), "release name '../escape' is not valid"),
])
def test_bad_options_fail_when_the_task_is_made(overrides, message):
    with pytest.raises(DrootError, match=message):
        fetcher.Fetcher(params(**overrides))


@pytest.mark.parametrize("overrides, reads", [
    (dict(src="s3://bucket/app.tar.zst"), True),
    (dict(src="s3://bucket/app.tar.zst", rollback=True), False),
    (dict(src="/srv/app.tar.zst"), False),
    (dict(), False),
])
def test_only_a_task_that_reads_an_s3_src_needs_boto3(overrides, reads):
    assert fetcher.Fetcher(params(**overrides)).reads_s3() is reads


@pytest.mark.parametrize("fetch, overrides, removed", [
    (True, dict(), ["r1", "r2"]),
    (True, dict(release="v2"), ["r1", "r2"]),
    (False, dict(), ["r1"]),
    (False, dict(release="r1"), []),
    (False, dict(rollback=True), []),
])
def test_keep_applies_after_a_fetch_and_alone_never_after_a_switch(tmp_path, target, fetch, overrides, removed):
    state = target.load_state()
    for release_id in ("r1", "r2", "r3"):
        add_release(target, release_id, state, activate=True)
    target.save_state(state)
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data)) if fetch else None
    result = fetcher.Fetcher(params(src=src, dest=target.dest, keep=1, **overrides)).run()
    assert sorted(result["removed"]) == removed


def test_keep_after_a_fetch_with_layout_replace_removes_nothing(tmp_path):
    dest = str(tmp_path / "root")
    for content in (b"v1", b"v2"):
        data = tar_gz(content=content)
        src = publish(tmp_path, data, name=content.decode() + ".tar.gz")
        result = fetcher.Fetcher(params(src=src, dest=dest, layout="replace", keep=1)).run()
    assert (result["removed"], result["releases"]) == ([], [result["release"]])


# --- manifest ------------------------------------------------------------------------------


@pytest.mark.parametrize("src, name", [
    ("/srv/archives/app.tar.zst", "app.tar.zst"),
    ("file:///srv/archives/app.tar.zst", "app.tar.zst"),
    ("s3://bucket/dir/app.tar.gz", "app.tar.gz"),
    ("https://example.org/dl/app.tar?X-Amz-Signature=abc/def", "app.tar"),
    ("relative.tar", "relative.tar"),
])
def test_archive_name_is_the_last_path_component(src, name):
    assert manifest.archive_name(src) == name


def test_parse_manifest_normalises_the_sha256_and_keeps_the_rest():
    document = dict(format=1, archive="app.tar.zst", sha256="sha256:" + DIGEST.upper(), size=7, image_id=IMAGE_ID)
    parsed = manifest.parse(json.dumps(document).encode(), "s3://b/app.tar.zst.json", "s3://b/app.tar.zst",
                            fetcher.FetchError)
    assert parsed == dict(document, sha256=DIGEST)


def test_parse_manifest_without_an_archive_name_accepts_any_src():
    parsed = manifest.parse(json.dumps(dict(format=1, sha256=DIGEST)).encode(), "/x.json", "/renamed.tar",
                            fetcher.FetchError)
    assert parsed["sha256"] == DIGEST


@pytest.mark.parametrize("data, message", [
    (b"{not json", "is not valid JSON"),
    (b"\xff\xfe", "is not valid JSON"),
    (b"[1]", "has an unknown format"),
    (json.dumps(dict(format=2, sha256=DIGEST)).encode(), "has an unknown format"),
    (json.dumps(dict(format=1)).encode(), "has no valid sha256"),
    (json.dumps(dict(format=1, sha256=DIGEST[:40])).encode(), "has no valid sha256"),
    (json.dumps(dict(format=1, sha256=DIGEST, archive="other.tar.zst")).encode(),
     "describes other.tar.zst, not /srv/app.tar.zst"),
])
def test_parse_manifest_refuses_what_it_cannot_trust(data, message):
    with pytest.raises(fetcher.FetchError, match=message) as caught:
        manifest.parse(data, "/srv/app.tar.zst.json", "/srv/app.tar.zst", fetcher.FetchError)
    assert caught.value.step == "manifest"
    assert "/srv/app.tar.zst.json" in str(caught.value) and "export the archive again" in str(caught.value)


def test_read_manifest_reads_the_file_next_to_the_archive(tmp_path):
    data = b"archive bytes"
    src = publish(tmp_path, data, manifest_for(data))
    assert fetcher.read_manifest(src, None)["sha256"] == hashlib.sha256(data).hexdigest()
    assert fetcher.read_manifest(publish(tmp_path, data, name="plain.tar.gz"), None) is None


# --- planning ------------------------------------------------------------------------------


def plan(target, **overrides):
    executor = releases.Executor(target, target.load_state(), dry_run=True)
    return fetcher.plan_fetch(params(dest=target.dest, **overrides), executor, None)


def test_a_new_archive_is_fetched_under_the_manifest_image_id(tmp_path, target):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    planned = plan(target, src=src)
    assert (planned.action, planned.release, planned.sha256) == ("fetch", IMAGE_RELEASE, hashlib.sha256(data).hexdigest())
    assert planned.object.size == len(data)


def test_without_manifest_the_release_is_named_after_checksum_or_after_the_download(tmp_path, target):
    src = publish(tmp_path, b"plain docker export | gzip")
    assert plan(target, src=src, checksum=DIGEST).release == DIGEST[:12]
    unnamed = plan(target, src=src)
    assert (unnamed.action, unnamed.release, unnamed.sha256) == ("fetch", None, None)


def test_the_release_option_names_the_fetched_release(tmp_path, target):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    assert plan(target, src=src, release="v2").release == "v2"


def test_the_active_release_of_the_same_image_needs_nothing(tmp_path, target):
    data = tar_gz()
    # Re-exported: other bytes, same image id.
    src = publish(tmp_path, data, manifest_for(data))
    state = target.load_state()
    add_release(target, IMAGE_RELEASE, state, dict(sha256="0" * 64, image_id=IMAGE_ID), activate=True)
    target.save_state(state)
    os.unlink(src)  # the archive is not looked at: only its manifest
    planned = plan(target, src=src)
    assert (planned.action, planned.release) == ("none", IMAGE_RELEASE)


def test_a_release_on_disk_with_the_same_bytes_is_switched_to_without_download(tmp_path, target):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data, image_id=None))
    sha256 = hashlib.sha256(data).hexdigest()
    state = target.load_state()
    add_release(target, sha256[:12], state, dict(sha256=sha256))
    add_release(target, "other", state, dict(sha256="1" * 64), activate=True)
    target.save_state(state)
    planned = plan(target, src=src)
    assert (planned.action, planned.release, planned.object) == ("switch", sha256[:12], None)


def test_a_recorded_release_that_is_gone_from_disk_is_fetched_again(tmp_path, target):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    state = target.load_state()
    state["releases"][IMAGE_RELEASE] = dict(sha256=hashlib.sha256(data).hexdigest(), image_id=IMAGE_ID)
    target.save_state(state)
    assert plan(target, src=src).action == "fetch"


def test_without_checksum_the_same_source_etag_and_size_is_the_same_archive(tmp_path, target):
    src = publish(tmp_path, b"plain docker export | gzip")
    info = store.stat(src)
    state = target.load_state()
    add_release(target, "r1", state, dict(source=src, etag=info.etag, size=info.size))
    add_release(target, "r2", state, dict(source=src, etag="older", size=info.size), activate=True)
    target.save_state(state)
    planned = plan(target, src=src)
    assert (planned.action, planned.release) == ("switch", "r1")
    publish(tmp_path, b"rewritten, a new archive")
    assert plan(target, src=src).action == "fetch"


def test_checksum_that_contradicts_the_manifest_fails(tmp_path, target):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    message = "checksum %s does not match the manifest's sha256 %s: fix the checksum option" % (
        DIGEST, hashlib.sha256(data).hexdigest())
    with pytest.raises(fetcher.FetchError, match=message) as caught:
        plan(target, src=src, checksum=DIGEST)
    assert caught.value.step == "manifest"


def test_an_archive_of_another_size_than_its_manifest_fails_before_download(tmp_path, target):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data, size=len(data) + 1))
    with pytest.raises(fetcher.FetchError, match=r"is %d bytes but its manifest says %d" % (len(data), len(data) + 1)):
        plan(target, src=src)


def test_a_missing_archive_fails_with_the_fix(tmp_path, target):
    with pytest.raises(fetcher.FetchError, match="there is no archive at .*: check src, or export the image first"):
        plan(target, src=str(tmp_path / "missing.tar.gz"))


def test_rollback_goes_to_the_previous_release_and_marks_the_one_it_leaves(target):
    state = target.load_state()
    for release_id in ("r1", "r2", "r3"):
        add_release(target, release_id, state, activate=True)
    state["rolled_back"].append("r2")
    target.save_state(state)
    deprecations = []
    result = fetcher.Fetcher(params(dest=target.dest, rollback=True), check_mode=True,
                             deprecate=deprecations.append).run()
    assert (result["changed"], result["release"], result["previous"], result["current"]) == (True, "r1", "r3", "r1")
    assert result["rolled_back"] == ["r2", "r3"]
    assert deprecations == ["droot_fetch without src, or with rollback, is deprecated: use droot.core.droot_release "
                            "with state=rolled_back"]


def test_rollback_without_a_previous_release_names_the_skipped_ones(target):
    state = target.load_state()
    for release_id in ("r1", "r2"):
        add_release(target, release_id, state, activate=True)
    state["rolled_back"].append("r1")
    target.save_state(state)
    with pytest.raises(DrootError, match=r"^rollback: there is no previous release to roll back to in %s \(releases "
                                         r"rolled back from are skipped: r1; name one with release\)$"
                       % re.escape(target.dest)):
        fetcher.Fetcher(params(dest=target.dest, rollback=True)).run()


def test_a_switch_by_name_needs_the_release_on_disk(target):
    state = target.load_state()
    add_release(target, "r1", state, activate=True)
    add_release(target, "r2", state)
    target.save_state(state)

    def run(**overrides):
        return fetcher.Fetcher(params(dest=target.dest, **overrides), check_mode=True).run()

    with pytest.raises(DrootError, match="release r9 does not exist in .*: available are r1, r2") as caught:
        run(release="r9")
    assert caught.value.step == "switch"
    switched = run(release="r2")
    assert (switched["changed"], switched["current"]) == (True, "r2")
    assert run(release="r1")["changed"] is False
    only_keep = run()
    assert (only_keep["changed"], only_keep["release"]) == (False, "r1")


# --- download and check mode -------------------------------------------------------------------


def test_a_checksum_mismatch_leaves_no_staging_behind(tmp_path, target):
    src = publish(tmp_path, tar_gz())
    planned = plan(target, src=src, checksum=DIGEST)
    with pytest.raises(fetcher.FetchError, match="checksum mismatch for .*checksum says %s" % DIGEST) as caught:
        fetcher.download(params(src=src), target, planned, None)
    assert caught.value.step == "verify"
    assert os.listdir(target.staging_dir) == []
    assert target.releases(target.load_state()) == []


def test_check_mode_reports_the_fetch_and_writes_nothing(tmp_path):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    dest = tmp_path / "app"
    result = fetcher.Fetcher(params(src=src, dest=str(dest)), check_mode=True, diff=True).run()
    assert result["changed"] is True and result["downloaded"] is True
    assert (result["release"], result["previous"], result["current"]) == (IMAGE_RELEASE, None, IMAGE_RELEASE)
    assert result["releases"] == [IMAGE_RELEASE]
    assert result["diff"]["after"].startswith("release: %s\n" % IMAGE_RELEASE)
    assert not dest.exists()


def test_check_mode_before_the_archive_is_exported_reports_the_download(tmp_path):
    # The export before this task did not run in check mode either: neither archive nor manifest.
    src = str(tmp_path / "app.tar.gz")
    dest = tmp_path / "app"
    for overrides, release in ((dict(), None), (dict(release="v2"), "v2")):
        result = fetcher.Fetcher(params(src=src, dest=str(dest), **overrides), check_mode=True, diff=True).run()
        assert (result["changed"], result["downloaded"], result["release"]) == (True, True, release)
        assert result["notes"] == ["there is no archive at %s yet: a run downloads it once it is there" % src]
    assert not dest.exists()
    with pytest.raises(fetcher.FetchError, match="there is no archive at "):
        fetcher.Fetcher(params(src=src, dest=str(dest))).run()


def test_the_diff_names_release_path_and_sha256(target):
    state = target.load_state()
    add_release(target, "r1", state, dict(sha256=None))
    executor = releases.Executor(target, state, dry_run=True)
    assert executor.diff() == dict(before="(none)\n", after="(none)\n")
    executor.switch("r1")
    assert executor.diff()["after"] == "release: r1\npath: %s\nsha256: unknown\n" % target.path_of("r1")


def test_a_fetch_without_switch_leaves_the_diff_at_the_active_release(tmp_path):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    for check_mode in (True, False):
        result = fetcher.Fetcher(params(src=src, dest=str(tmp_path / "app"), switch=False), check_mode=check_mode,
                                 diff=True).run()
        assert (result["changed"], result["diff"]) == (True, dict(before="(none)\n", after="(none)\n"))


# --- limits ------------------------------------------------------------------------------------


def test_parse_manifest_takes_a_tar_size_and_refuses_a_bad_one():
    document = dict(format=1, sha256=DIGEST, tar_size=10240)
    assert manifest.parse(json.dumps(document).encode(), "/a.json", "/a", fetcher.FetchError)["tar_size"] == 10240
    for bad in (-1, "10240", True, 1.5):
        with pytest.raises(fetcher.FetchError, match="the manifest /a.json has an invalid tar_size .*: export the "
                                                     "archive again"):
            manifest.parse(json.dumps(dict(document, tar_size=bad)).encode(), "/a.json", "/a", fetcher.FetchError)


@pytest.mark.parametrize("name, least", fetcher.LIMIT_OPTIONS)
def test_limit_options_have_a_minimum(name, least):
    fetcher.check_options(params(**{name: least}))
    with pytest.raises(fetcher.FetchError, match="^options: %s must be %d or more$" % (name, least)):
        fetcher.Fetcher(params(**{name: least - 1}))


def test_the_unpacked_limit_comes_from_the_option_the_manifest_or_the_archive_size():
    planned = fetcher.Plan()
    planned.object = store.ObjectInfo(1 << 20, None, None)
    planned.manifest = dict(tar_size=300 << 20)
    assert fetcher.unpacked_limit(params(max_unpacked_bytes=5), planned) == (5, "as the task sets it")
    assert fetcher.unpacked_limit(params(), planned) == (
        (300 << 20) + (3 << 20) + (1 << 20), "by default the manifest's tar_size of 314572800 bytes plus 1% and 1 MiB")
    # A manifest of droot_export 0.1.0 has no tar_size; neither has the lack of a manifest.
    for document in (dict(sha256=DIGEST), None):
        planned.manifest = document
        assert fetcher.unpacked_limit(params(), planned) == (
            64 << 20,
            "by default, without a tar_size in a manifest, 20 times the archive's 1048576 bytes, at least 64 MiB")
    planned.object = store.ObjectInfo(10 << 20, None, None)
    assert fetcher.unpacked_limit(params(), planned)[0] == 200 << 20
    planned.object = store.ObjectInfo(None, None, None)
    assert fetcher.unpacked_limit(params(), planned) == (None, None)


def test_limits_carry_every_option():
    planned = fetcher.Plan()
    planned.manifest = dict(tar_size=0)
    bounds = fetcher.limits(params(max_pax_bytes_per_member=1, max_pax_bytes_per_archive=2, min_free_space=3,
                                   max_entries=4, max_path_depth=5), planned)
    assert (bounds.pax_member, bounds.pax_archive, bounds.min_free, bounds.entries, bounds.depth, bounds.unpacked) == (
        1, 2, 3, 4, 5, 1 << 20)


def tar_of(*members):
    """A gzip archive of (name, data, mode) files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content, mode in members:
            member = tarfile.TarInfo(name)
            member.size = len(content)
            member.mode = mode
            tar.addfile(member, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def test_an_archive_past_a_limit_leaves_no_staging_and_the_release_active(tmp_path):
    dest = str(tmp_path / "app")
    good = tar_of(("etc/marker", b"good", 0o644))
    fetcher.Fetcher(params(src=publish(tmp_path, good, manifest_for(good, name="good.tar.gz", image_id=None),
                                       name="good.tar.gz"),
                           dest=dest)).run()
    big = tar_of(("etc/marker", b"big", 0o644), ("data", os.urandom(2 << 20), 0o644))
    # The manifest says 10 bytes: the limit is 10 bytes plus 1 MiB.
    src = publish(tmp_path, big, manifest_for(big, name="big.tar.gz", image_id=None, tar_size=10), name="big.tar.gz")
    with pytest.raises(DrootError, match=r"the archive unpacks to more than 1048586 bytes, the max_unpacked_bytes "
                                         r"limit \(by default the manifest's tar_size of 10 bytes plus 1% and 1 MiB\)"
                       ) as caught:
        fetcher.Fetcher(params(src=src, dest=dest)).run()
    assert caught.value.step == "unpack"
    target = releases.open_target(dest, "releases")
    assert os.listdir(target.staging_dir) == []
    assert target.releases(target.load_state()) == [hashlib.sha256(good).hexdigest()[:12]]
    with open(os.path.join(dest, "current", "etc", "marker"), "rb") as handle:
        assert handle.read() == b"good"


def test_only_a_replace_root_refuses_privileged_files_by_default(tmp_path):
    data = tar_of(("etc/marker", b"suid", 0o644), ("bin/su", b"#!/bin/sh\n", 0o4755))
    src = publish(tmp_path, data)
    in_releases = fetcher.Fetcher(params(src=src, dest=str(tmp_path / "releases"))).run()
    assert os.stat(os.path.join(in_releases["path"], "bin", "su")).st_mode & 0o7777 == 0o4755
    dest = str(tmp_path / "root")
    with pytest.raises(DrootError, match="archive member 'bin/su' is a setuid file, and dest is reachable by host "
                                         "users") as caught:
        fetcher.Fetcher(params(src=src, dest=dest, layout="replace")).run()
    assert "set allow_privileged_files: true" in str(caught.value)
    # The failed first fetch leaves no bookkeeping directory either.
    assert sorted(os.listdir(tmp_path)) == ["app.tar.gz", "releases"]
    fetcher.Fetcher(params(src=src, dest=dest, layout="replace", allow_privileged_files=True)).run()
    assert os.stat(os.path.join(dest, "bin", "su")).st_mode & 0o7777 == 0o4755


def test_a_too_open_releases_directory_is_a_change_with_a_warning_in_both_modes(tmp_path):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    dest = str(tmp_path / "app")
    fetcher.Fetcher(params(src=src, dest=dest)).run()
    os.chmod(os.path.join(dest, "releases"), 0o755)
    warned = []
    checked = fetcher.Fetcher(params(src=src, dest=dest), check_mode=True, warn=warned.append).run()
    assert checked["changed"] and not checked["downloaded"]
    assert warned == ["%s/releases is mode 0755, owner uid %d: a run corrects it to 0700, so that host users cannot "
                      "run the setuid and capability binaries of the trees in it" % (dest, os.geteuid())]
    assert os.stat(os.path.join(dest, "releases")).st_mode & 0o777 == 0o755
    warned = []
    ran = fetcher.Fetcher(params(src=src, dest=dest), warn=warned.append).run()
    assert ran["changed"] and not ran["downloaded"] and len(warned) == 1 and "corrected to 0700" in warned[0]
    assert os.stat(os.path.join(dest, "releases")).st_mode & 0o777 == 0o700
    again = fetcher.Fetcher(params(src=src, dest=dest), warn=warned.append).run()
    assert not again["changed"] and len(warned) == 1


# --- a dest droot never managed -------------------------------------------------------------------


def user_tree(path):
    os.makedirs(os.path.join(path, "data"))
    with open(os.path.join(path, "data", "notes.txt"), "w", encoding="utf-8") as handle:
        handle.write("mine")
    return path


def tree_of(path):
    return sorted(os.path.relpath(os.path.join(top, name), path)
                  for top, dirs, files in os.walk(path) for name in dirs + files)


def test_replace_over_a_directory_droot_did_not_make_is_refused_then_adopted(tmp_path):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    dest = user_tree(str(tmp_path / "root"))
    for check_mode in (True, False):
        with pytest.raises(DrootError, match=r"^dest: dest %s is a directory that droot did not make, and it holds "
                                             r"files \('data'\) that layout replace would delete: choose an empty or "
                                             r"new dest, or set adopt: true to move it to %s.droot-adopted-<UTC time> "
                                             r"first$" % (dest, dest)):
            fetcher.Fetcher(params(src=src, dest=dest, layout="replace"), check_mode=check_mode).run()
    assert sorted(os.listdir(tmp_path)) == ["app.tar.gz", "app.tar.gz.json", "root"]
    checked = fetcher.Fetcher(params(src=src, dest=dest, layout="replace", adopt=True), check_mode=True).run()
    assert checked["changed"] and checked["adopted"].startswith(dest + ".droot-adopted-")
    assert tree_of(dest) == ["data", "data/notes.txt"]
    result = fetcher.Fetcher(params(src=src, dest=dest, layout="replace", adopt=True)).run()
    adopted = result["adopted"]
    assert re.match(r"^%s\.droot-adopted-\d{8}T\d{6}Z$" % re.escape(dest), adopted)
    assert tree_of(adopted) == ["data", "data/notes.txt"] and tree_of(dest) == ["etc", "etc/marker"]
    assert ("moved what %s held before droot managed it to %s, which droot never deletes" % (dest, adopted)
            in result["notes"])
    # droot manages dest now: the next archive replaces it without adopt, and the adopted tree stays.
    other = tar_gz(content=b"v2")
    src2 = publish(tmp_path, other, manifest_for(other, name="v2.tar.gz", image_id="sha256:" + "cd" * 32),
                   name="v2.tar.gz")
    again = fetcher.Fetcher(params(src=src2, dest=dest, layout="replace")).run()
    assert again["changed"] and again["adopted"] is None
    assert tree_of(adopted) == ["data", "data/notes.txt"]


def test_replace_over_an_empty_directory_needs_no_adopt(tmp_path):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    os.mkdir(tmp_path / "root")
    result = fetcher.Fetcher(params(src=src, dest=str(tmp_path / "root"), layout="replace")).run()
    assert result["changed"] and result["adopted"] is None
    assert not [name for name in os.listdir(tmp_path) if ".droot-adopted-" in name]


def test_releases_into_a_directory_with_files_droot_did_not_put_there(tmp_path):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    dest = user_tree(str(tmp_path / "app"))
    # Entries droot's names have, but droot did not make: a releases directory of the user's, a current.
    os.makedirs(os.path.join(dest, "releases", "abababababab"))
    os.chmod(os.path.join(dest, "releases"), 0o755)
    os.symlink("/etc", os.path.join(dest, "current"))
    with pytest.raises(DrootError, match=r"^dest: dest %s holds files that droot did not put there \('current', "
                                         r"'data', 'releases'\): choose an empty or new dest, or set adopt: true to "
                                         r"move them to %s.droot-adopted-<UTC time> first$" % (dest, dest)):
        fetcher.Fetcher(params(src=src, dest=dest)).run()
    assert tree_of(dest) == ["current", "data", "data/notes.txt", "releases", "releases/abababababab"]
    with pytest.raises(DrootError, match="adopt needs src"):
        fetcher.Fetcher(params(dest=dest, adopt=True))
    warned = []
    checked = fetcher.Fetcher(params(src=src, dest=dest, adopt=True), check_mode=True, warn=warned.append).run()
    assert (checked["changed"], checked["releases"], checked["previous"], warned) == (True, [IMAGE_RELEASE], None, [])
    result = fetcher.Fetcher(params(src=src, dest=dest, adopt=True), warn=warned.append).run()
    adopted = result["adopted"]
    assert tree_of(adopted) == ["current", "data", "data/notes.txt", "releases", "releases/abababababab"]
    assert os.stat(os.path.join(adopted, "releases")).st_mode & 0o777 == 0o755
    assert os.stat(adopted).st_mode & 0o777 == os.stat(dest).st_mode & 0o777
    assert sorted(os.listdir(dest)) == [".droot", "current", "releases"]
    assert (result["release"], result["releases"], warned) == (IMAGE_RELEASE, [IMAGE_RELEASE], [])


@pytest.mark.parametrize("entries", [["lost+found"], [".droot", "releases"]], ids=["new-file-system", "old-skeleton"])
def test_a_releases_dest_with_only_droot_own_entries_needs_no_adopt(tmp_path, entries):
    data = tar_gz()
    src = publish(tmp_path, data, manifest_for(data))
    dest = str(tmp_path / "app")
    for name in entries:
        os.makedirs(os.path.join(dest, name))
    result = fetcher.Fetcher(params(src=src, dest=dest)).run()
    assert result["changed"] and result["adopted"] is None and result["release"] == IMAGE_RELEASE


# --- not root, device nodes ---------------------------------------------------------------------


def test_not_root_fails_at_once_naming_become_unless_keep_owners_is_false(tmp_path, monkeypatch):
    monkeypatch.setattr(fetcher.os, "geteuid", lambda: 1000)
    for check_mode in (True, False):
        with pytest.raises(DrootError, match=r"^privileges: droot_fetch runs as uid 1000, not as root, so it cannot "
                                             r"give the files the owners the archive gives them: add become: true to "
                                             r"the task, or set keep_owners: false to unpack every file as this user$"):
            fetcher.Fetcher(params(src="s3://bucket/app.tar.zst", dest=str(tmp_path / "app")), check_mode=check_mode)
    fetcher.Fetcher(params(src="s3://bucket/app.tar.zst", dest=str(tmp_path / "app"), keep_owners=False))


def test_keep_owners_false_unpacks_as_the_user_and_warns(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        member = tarfile.TarInfo("etc/marker")
        member.uid = member.gid = 4321
        member.size = 2
        tar.addfile(member, io.BytesIO(b"v1"))
    data = gzip.compress(raw.getvalue(), mtime=0)
    src = publish(tmp_path, data, manifest_for(data))
    warned = []
    result = fetcher.Fetcher(params(src=src, dest=str(tmp_path / "app"), keep_owners=False), warn=warned.append).run()
    assert os.stat(os.path.join(result["path"], "etc", "marker")).st_uid == os.geteuid()
    assert warned == ["keep_owners is false: every file unpacked belongs to uid %d, whatever its owner in the archive, "
                      "so the root is fit only for that user" % os.geteuid()]
    kept = fetcher.Fetcher(params(src=src, dest=str(tmp_path / "kept"))).run()
    assert os.stat(os.path.join(kept["path"], "etc", "marker")).st_uid == 4321


def test_device_nodes_under_dev_are_skipped_with_a_warning(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, kind in (("dev", tarfile.DIRTYPE), ("dev/null", tarfile.CHRTYPE), ("dev/zero", tarfile.CHRTYPE)):
            member = tarfile.TarInfo(name)
            member.type = kind
            member.devmajor, member.devminor = 1, 3
            tar.addfile(member)
    data = gzip.compress(raw.getvalue(), mtime=0)
    src = publish(tmp_path, data, manifest_for(data))
    warned = []
    result = fetcher.Fetcher(params(src=src, dest=str(tmp_path / "app")), warn=warned.append).run()
    assert (result["stats"]["skipped_devices"], os.listdir(os.path.join(result["path"], "dev"))) == (2, [])
    assert warned == ["skipped the 2 device nodes under /dev in the archive: the jail mounts a /dev of its own; set "
                      "allow_devices: true to keep them"]
