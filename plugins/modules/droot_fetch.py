#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: droot_fetch
short_description: Download, verify and unpack a root filesystem archive, and switch to it atomically
version_added: 0.1.0
description:
  - The host side of "Ship" - replaces C(aws s3 cp s3://.../app.tar.gz - | tar -xpzf - -C /tmp/app;
    mv -T /tmp/app /var/containers/app) and release rotation with capze or ansistrano.
  - Streams the archive from O(src) through decompression (zstd, gzip or none, detected from the
    bytes) into a staging directory on the file system of O(dest); the archive is never stored
    whole on disk or in memory. Download, checksum and decompression run in a thread ahead of the
    extraction.
  - The manifest that M(droot.core.droot_export) writes next to the archive (C(<src>.json)) gives the
    expected sha256, size and image id; the archive is accepted only when the bytes read match it.
    Without a manifest, O(checksum) can give the sha256; a plain C(docker export | gzip) archive
    without either is accepted as it is.
  - Extraction keeps numeric owners, permission bits including setuid, setgid and sticky, symlinks,
    hard links, mtimes and extended attributes including file capabilities (C(security.capability)).
    It refuses absolute and C(..) member paths, members written through an earlier symlink, hard
    links to anything but an earlier file of the archive, device nodes (unless O(allow_devices)),
    duplicate members, overlong names, sparse files, and truncated or corrupt archives. A refused
    archive fails the task, staging is removed and O(dest) is left as it was.
  - Nothing is switched until the whole archive was read and verified, and the file system was
    synced.
  - A release already on the host is not downloaded again. With O(layout=releases), when the
    manifest's image id (or the sha256) names a release that is on disk and was recorded as fetched
    from that image, only the manifest is read - the archive is neither downloaded nor looked at,
    even when its bytes differ (the same image exported again, with other settings or by another
    engine, need not give the same bytes), and the task switches to that release unless it is active
    already or O(switch=false).
  - Modes, with O(layout=releases) - O(src) fetches (and switches to) a release; O(rollback=true)
    switches back to the previous release (or to O(release)); O(release) without O(src) switches to
    that release on disk; with neither O(src), O(release) nor O(rollback), the task only applies
    O(keep). O(switch=false) leaves C(current) where it is in every mode, so that the caller can
    stop the running release first and switch afterwards with O(release).
  - The activation history in the bookkeeping directory (never file mtimes) gives the previous
    release - the most recently active release that still exists, skipping releases that a rollback
    switched away from. A rollback marks the release it leaves as rolled back, so a second rollback
    walks further back instead of returning to it; activating a marked release again (a switch with
    O(release), a fetch of it) clears its mark.
  - The parent directories of O(dest) are created when missing (mode 0755).
  - Runs hold a lock per O(dest) (flock); a staging directory left by a killed run is removed by the
    next run.
  - A tree is never deleted while anything is mounted under it or a live process has its root, its
    working directory, an open file or a mapped file in it.
author:
  - droot.core contributors (@droot-core)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - droot.core.s3
requirements:
  - zstandard (for zstd archives)
  - Linux
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
    details:
      - Reads the manifest and, when it would download, the object's metadata to report whether a
        fetch, a switch or a prune would happen (RV(downloaded), RV(removed)); downloads nothing.
  diff_mode:
    support: full
    details: Shows the active release before and after.
  idempotent:
    description: A second run with the same inputs changes nothing and downloads nothing.
    support: full
    details:
      - When the active release came from the same archive (same sha256, or same ETag and size without a
        checksum) or from the same image (same image id in the manifest), nothing is downloaded and
        C(changed=false).
options:
  src:
    description:
      - The archive - C(s3://BUCKET/KEY), a local path or C(file:///PATH), or an C(https://) URL.
      - Its manifest is looked up at C(<src>.json).
      - Required with O(layout=replace). With O(layout=releases), omit it to switch to a release on disk
        (O(release), O(rollback)) or only to prune (O(keep)).
    type: str
  dest:
    description:
      - With O(layout=releases), the directory holding C(releases/<id>), the C(current) symlink and the
        bookkeeping directory C(.droot).
      - With O(layout=replace), the root directory itself; the bookkeeping directory is
        C(.<name>.droot) beside it.
    type: path
    required: true
  layout:
    description:
      - C(releases) - unpack to C(dest/releases/<id>) and switch the C(dest/current) symlink by renaming
        a temporary symlink over it, so it always exists. Old releases are pruned by O(keep); a
        rollback needs no download.
      - C(replace) - O(dest) is the root and is replaced as a whole with renameat2(RENAME_EXCHANGE), so
        it always names a complete tree. Where the file system cannot exchange, two renames are used
        (dest aside, staging into place) with a journal, and a run after a crash completes the switch;
        between the two renames O(dest) is briefly missing. The old tree is deleted afterwards.
    type: str
    choices: [releases, replace]
    default: releases
  release:
    description:
      - The release name. Defaults to the first 12 hex digits of the manifest's image id (the same on
        every host), else of O(checksum), else of the archive's sha256 (known after the download).
      - With O(rollback=true), the release to switch to instead of the previous one.
      - Without O(src) and O(rollback), the release on disk to switch to (or, with O(switch=false), only
        to check and report); a switch with O(release) marks nothing as rolled back.
      - 1 to 128 letters, digits, C(.), C(_), C(+) or C(-), starting with a letter or digit.
    type: str
  rollback:
    description:
      - Switch C(current) back to the previous release (or to O(release)) without downloading
        anything. Needs O(layout=releases).
      - The release switched away from is kept on disk and marked as rolled back - it is skipped when
        the previous release is chosen and ranks after the releases that were not rolled back for
        O(keep).
    type: bool
    default: false
  switch:
    description:
      - Whether to point C(current) at the release the task fetched or selected.
      - With V(false) the release is unpacked and recorded (or checked, when on disk already) but
        C(current) stays where it is; RV(release) and RV(path) name the release and RV(current) the
        release still active. A later task switches with O(release) (or O(rollback=true) to mark the
        release it leaves as rolled back).
      - V(false) needs O(layout=releases).
    type: bool
    default: true
  checksum:
    description:
      - The expected sha256 of the archive as it is stored (compressed), as C(sha256:HEX) or C(HEX).
      - Needed only for archives without a manifest; when both exist they must agree.
    type: str
  keep:
    description:
      - How many releases to keep with O(layout=releases), counting the active one; C(0) keeps all.
      - Applied after a fetch from O(src), and on its own when neither O(src), O(release) nor
        O(rollback) is given; a rollback or a switch with O(release) deletes nothing.
      - Releases are ranked most recently active first; releases rolled back from rank after all
        others, so they never take the place of a good release, and releases never activated rank
        last in their group.
      - The active and the previous release are never deleted, nor the release of the task, nor a
        release with something mounted under it or used by a live process (reported in
        RV(kept_busy)). Releases that failed to unpack never become releases, so they do not count.
    type: int
    default: 3
  if_busy:
    description:
      - With O(layout=replace), what to do when something is mounted under O(dest) or a live process
        uses it.
      - C(fail) - fail before changing anything.
      - C(keep) - switch anyway and keep the old tree in the bookkeeping directory (RV(kept_old)); a
        later run deletes it once it is free.
    type: str
    choices: [fail, keep]
    default: fail
  allow_devices:
    description:
      - Create character and block device nodes found in the archive. Images built on the usual base
        images have none (C(/dev) is mounted at run time), so by default an archive with device nodes is
        refused; an image imported from a debootstrap or mmdebstrap tarball may carry C(/dev/null) and
        friends, and needs this.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another run on the same O(dest) to finish before failing.
    type: int
    default: 300
notes:
  - Extended attributes are read from pax C(SCHILY.xattr.*) records (GNU tar, Docker, Go); POSIX ACLs
    stored as C(SCHILY.acl.*) are not applied.
  - A symlink in the archive is created as it is, whatever it points to (even in a loop); it is never
    followed while extracting, so only members written through it are refused.
seealso:
  - module: droot.core.droot_export
  - module: droot.core.droot_run
"""

EXAMPLES = r"""
- name: Fetch the release the manifest names and switch to it, keeping 5
  droot.core.droot_fetch:
    src: s3://releases/app.tar.zst
    dest: /var/containers/app
    keep: 5
    endpoint_url: http://127.0.0.1:5000

- name: Replace a root in place, as the seed pipeline did with mv -T
  droot.core.droot_fetch:
    src: /srv/archives/app.tar.gz
    checksum: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    dest: /var/containers/app
    layout: replace

- name: Unpack a release without switching to it, to stop the running one first
  droot.core.droot_fetch:
    src: s3://releases/app.tar.zst
    dest: /var/containers/app
    switch: false
    keep: 0
  register: fetched

- name: Switch to it once the old one is stopped
  droot.core.droot_fetch:
    dest: /var/containers/app
    release: "{{ fetched.release }}"

- name: Roll back to the previous release, marking the one it leaves as rolled back
  droot.core.droot_fetch:
    dest: /var/containers/app
    rollback: true

- name: Only prune, keeping 3 releases
  droot.core.droot_fetch:
    dest: /var/containers/app
    keep: 3
"""

RETURN = r"""
release:
  description:
    - The release the task fetched, switched to or selected - the active one after the task unless
      O(switch=false); when only pruning, the active release (null when there is none).
  returned: success
  type: str
  sample: 3f2a9c81d0e4
path:
  description: The directory of RV(release) (C(dest/releases/<id>), or O(dest) with O(layout=replace)).
  returned: success
  type: str
  sample: /var/containers/app/releases/3f2a9c81d0e4
previous:
  description: The release that was active before the task (null when there was none).
  returned: success
  type: str
current:
  description: The release active after the task (with O(switch=false), the one still active).
  returned: success
  type: str
  sample: 0c1d2e3f4a5b
releases:
  description:
    - The releases on disk after the task, in the order O(keep) ranks them - most recently active
      first, releases rolled back from after the others.
  returned: with O(layout=releases)
  type: list
  elements: str
rolled_back:
  description: Releases on disk that a rollback switched away from; they are never chosen as the previous release.
  returned: with O(layout=releases)
  type: list
  elements: str
sha256:
  description:
    - sha256 of the archive the release was unpacked from (null for a release with no record). For a release
      found on the host by its image id, that of the archive fetched then, not of O(src).
  returned: success
  type: str
archive_size:
  description: Size of the archive in bytes (the key C(size) is taken by Ansible's file facts about RV(path)).
  returned: success
  type: int
downloaded:
  description: Whether the archive was downloaded by this task; in check mode, whether it would be.
  returned: success
  type: bool
removed:
  description: Releases deleted by O(keep).
  returned: success
  type: list
  elements: str
kept_busy:
  description: Releases beyond O(keep) that were not deleted because something is mounted under them or a process uses them.
  returned: success
  type: list
  elements: str
kept_old:
  description: With O(layout=replace) and O(if_busy=keep), where the busy old tree was kept (null when it was deleted).
  returned: success
  type: str
stats:
  description: What was extracted - members, files, dirs, symlinks, hardlinks, other, bytes.
  returned: when downloaded
  type: dict
notes:
  description: Recovery done and trees left in place, one line each.
  returned: success
  type: list
  elements: str
"""

import json
import re
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.droot.core.plugins.module_utils import archive, releases, store, unpack
from ansible_collections.droot.core.plugins.module_utils.common import DrootError, fail_from_error

MANIFEST_LIMIT = 1 << 20
SHA256 = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


class FetchError(DrootError):
    pass


def parse_checksum(value):
    if value is None:
        return None
    match = SHA256.match(value.strip())
    if not match:
        raise FetchError("checksum %r is not a sha256: give sha256:<64 hex digits>" % value, step="options")
    return match.group(1).lower()


def archive_name(src):
    """The file name an archive location ends in (a URL's query string is not part of it)."""
    path = urlsplit(src).path if "://" in src else src
    return path.rstrip("/").rsplit("/", 1)[-1]


def read_manifest(src, opts):
    """The manifest next to ``src`` as a dict, or None when there is none."""
    location = store.manifest_location(src)
    data = store.read_bytes(location, opts, MANIFEST_LIMIT)
    if data is None:
        return None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise FetchError("the manifest %s is not valid JSON (%s): export the archive again" % (location, exc),
                         step="manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != 1:
        raise FetchError("the manifest %s has an unknown format: export the archive again with this "
                         "collection's droot_export" % location, step="manifest")
    sha = manifest.get("sha256")
    if not isinstance(sha, str) or not SHA256.match(sha):
        raise FetchError("the manifest %s has no valid sha256: export the archive again" % location,
                         step="manifest")
    manifest["sha256"] = SHA256.match(sha).group(1).lower()
    name = manifest.get("archive")
    if name and name != archive_name(src):
        raise FetchError("the manifest %s describes %s, not %s: export the archive again"
                         % (location, name, src), step="manifest")
    return manifest


class Plan:
    """What the task does, decided before anything is written or downloaded."""

    def __init__(self):
        self.release = None           # the release fetched, switched to or kept; None: named after the download
        self.action = "none"          # "none", "switch" (to a release on disk) or "fetch"
        self.rolled_back_from = None  # the release a rollback leaves, marked as rolled back
        self.sha256 = None            # the expected sha256, when known
        self.size = None
        self.object = None
        self.manifest = None


def require_object(src, opts):
    info = store.stat(src, opts)
    if info is None:
        raise FetchError("there is no archive at %s: check src, or export the image first" % src, step="download")
    return info


def require_release(target, release_id, step):
    if not target.exists(release_id):
        raise FetchError("release %s does not exist in %s: available are %s"
                         % (release_id, target.releases_dir, ", ".join(target.releases()) or "none"), step=step)


def plan_fetch(params, target, state, current, opts):
    """A fetch from ``src``; a release already on the host is used without touching the archive."""
    plan = Plan()
    src = params["src"]
    plan.manifest = read_manifest(src, opts)
    checksum = parse_checksum(params["checksum"])
    image_id = None
    if plan.manifest is not None:
        plan.sha256 = plan.manifest["sha256"]
        plan.size = plan.manifest.get("size")
        image_id = plan.manifest.get("image_id") or None
        if checksum is not None and checksum != plan.sha256:
            raise FetchError("checksum %s does not match the manifest's sha256 %s: fix the checksum option"
                             % (checksum, plan.sha256), step="manifest")
    else:
        plan.sha256 = checksum
    plan.release = params["release"]
    if plan.release is None and image_id is not None:
        plan.release = releases.release_id_from_image_id(image_id)
    if plan.release is None and plan.sha256 is not None:
        plan.release = plan.sha256[:12]
    if plan.release is not None:
        releases.check_release_id(plan.release)
    if plan.sha256 is None:
        # Neither manifest nor checksum: only the object's ETag and size tell an archive fetched before.
        plan.object = require_object(src, opts)

    def same(info):
        """Whether a recorded release holds this archive's tree: the same bytes, or the same image
        (an image exported again is the same tree in other bytes)."""
        if not info:
            return False
        if plan.sha256 is not None:
            return info.get("sha256") == plan.sha256 or (image_id is not None and info.get("image_id") == image_id)
        return (info.get("source") == src and plan.object.etag is not None
                and info.get("etag") == plan.object.etag and info.get("size") == plan.object.size)

    recorded = state["releases"]
    if current is not None and plan.release in (None, current) and same(recorded.get(current)):
        plan.release = current
        return plan
    if target.layout == "releases":
        candidates = [plan.release] if plan.release is not None else sorted(recorded)
        for release_id in candidates:
            if target.exists(release_id) and same(recorded.get(release_id)):
                plan.release = release_id
                plan.action = "switch"
                return plan
    if plan.object is None:
        plan.object = require_object(src, opts)
    if plan.size is not None and plan.object.size is not None and plan.size != plan.object.size:
        raise FetchError("%s is %d bytes but its manifest says %d: the archive was changed or is being "
                         "rewritten; export it again" % (src, plan.object.size, plan.size), step="manifest")
    plan.action = "fetch"
    return plan


def plan_task(params, target, state, current, opts):
    """The plan of each mode: a fetch (src), a rollback, a switch to a release on disk (release
    without src), or only keep (neither)."""
    if params["src"] and not params["rollback"]:
        return plan_fetch(params, target, state, current, opts)
    plan = Plan()
    if params["rollback"]:
        plan.release = params["release"] or target.previous(state, current)
        if plan.release is None:
            skipped = [r for r in state["rolled_back"] if target.exists(r) and r != current]
            raise FetchError("there is no previous release to roll back to in %s%s" % (
                target.releases_dir, (" (releases rolled back from are skipped: %s; name one with release)"
                                      % ", ".join(skipped)) if skipped else ""), step="rollback")
        require_release(target, plan.release, "rollback")
        plan.rolled_back_from = current
    elif params["release"]:
        plan.release = params["release"]
        require_release(target, plan.release, "switch")
    else:
        plan.release = current
    if plan.release != current:
        plan.action = "switch"
    return plan


def download(params, target, plan, opts):
    """Stream the archive into a new staging directory; returns (staging, sha256, size, stats)."""
    src = params["src"]
    holder = {}

    def open_stream():
        raw, info = store.open_reader(src, opts)
        holder["raw"] = unpack.HashingReader(raw)
        holder["info"] = info
        return archive.decompressing_reader(holder["raw"])

    staging = target.new_staging()
    reader = unpack.ReadAhead(open_stream)
    try:
        try:
            stats = unpack.unpack(reader, staging, allow_devices=params["allow_devices"])
        except unpack.SourceError as exc:
            raise FetchError("download of %s failed: %s; check the endpoint and run again"
                             % (src, exc.cause), step="download")
        hashing = holder["raw"]
        sha256 = hashing.sha256.hexdigest()
        if plan.sha256 is not None and sha256 != plan.sha256:
            raise FetchError("checksum mismatch for %s: its sha256 is %s, %s says %s; the archive was "
                             "changed or damaged, export it again"
                             % (src, sha256, "the manifest" if plan.manifest else "checksum", plan.sha256),
                             step="verify")
        expected_size = plan.size if plan.size is not None else holder["info"].size
        if expected_size is not None and hashing.size != expected_size:
            raise FetchError("%s is truncated: read %d of %d bytes; run again"
                             % (src, hashing.size, expected_size), step="verify")
        # The switch must never point at data still in the page cache only.
        releases.syncfs(staging)
    except BaseException:
        reader.close()
        try:
            target.discard(staging)
        except OSError as exc:
            target.notes.append("could not remove staging %s: %s" % (staging, exc))
        raise
    reader.close()
    return staging, sha256, hashing.size, stats


def describe(release, path, sha256):
    if release is None:
        return "(none)\n"
    return "release: %s\npath: %s\nsha256: %s\n" % (release, path, sha256 or "unknown")


def prunes(params):
    """keep applies after a fetch and on its own; a rollback or a switch by name deletes nothing."""
    return params["layout"] == "releases" and not params["rollback"] and (params["src"] or not params["release"])


def check_options(params):
    if params["rollback"] and params["layout"] != "releases":
        raise FetchError("rollback needs layout releases: a replace layout keeps no old trees", step="options")
    if params["layout"] == "replace" and not params["src"]:
        raise FetchError("src is required with layout replace: without it droot_fetch switches between or "
                         "prunes releases, which needs layout releases", step="options")
    if params["layout"] == "replace" and not params["switch"]:
        raise FetchError("switch=false needs layout releases: with layout replace dest is the root itself",
                         step="options")
    if params["keep"] < 0:
        raise FetchError("keep must be 0 (keep all) or more", step="options")
    if params["release"] is not None:
        releases.check_release_id(params["release"])


def run(module):
    params = module.params
    check_options(params)
    if (params["src"] or "").startswith("s3://") and not params["rollback"]:
        store.BOTO3.require(module, reason="to read s3:// locations")
    opts = store.S3Options.from_params(params)
    target = releases.open_target(params["dest"], params["layout"])
    if module.check_mode:
        return plan_only(module, target, opts)
    with target.locked(params["lock_timeout"]):
        target.recover()
        state = target.load_state()
        before = target.current()
        plan = plan_task(params, target, state, before, opts)
        result = dict(changed=False, downloaded=False, removed=[], kept_busy=[], kept_old=None)
        if plan.action == "fetch":
            staging, sha256, size, stats = download(params, target, plan, opts)
            plan.release = plan.release or sha256[:12]
            releases.check_release_id(plan.release)
            info = dict(sha256=sha256, size=size, source=params["src"], etag=plan.object.etag,
                        image_id=(plan.manifest or {}).get("image_id"))
            if target.layout == "releases":
                target.install(staging, plan.release)
                state["releases"][plan.release] = info
            else:
                result["kept_old"] = target.install(staging, plan.release, state, params["if_busy"])
                state["releases"] = {plan.release: info}
            result.update(changed=True, downloaded=True, stats=stats)
        switching = plan.action != "none" and params["switch"] and target.layout == "releases"
        if switching:
            target.activate(state, plan.release, plan.rolled_back_from)
            result["changed"] = True
        if prunes(params):
            result["removed"], result["kept_busy"] = target.prune(state, params["keep"], protect=[plan.release])
            result["changed"] = result["changed"] or bool(result["removed"])
        if result["changed"]:
            target.save_state(state)
        after = target.current()
        return report(module, target, state, plan, before, after, result)


def plan_only(module, target, opts):
    """Check mode: decide without locking, writing or downloading; report what a run would do."""
    params = module.params
    state = target.load_state()
    before = target.current()
    plan = plan_task(params, target, state, before, opts)
    after = before
    fetching = plan.action == "fetch"
    result = dict(changed=fetching, downloaded=fetching, removed=[], kept_busy=[], kept_old=None)
    if fetching and target.layout == "replace":
        after = plan.release
    new = [plan.release] if fetching and plan.release else []
    if target.layout == "releases":
        if plan.action != "none" and params["switch"]:
            after = plan.release
            releases.record_activation(state, plan.release, plan.rolled_back_from)
            result["changed"] = True
        if prunes(params):
            result["removed"], result["kept_busy"] = target.would_prune(
                state, params["keep"], protect=[plan.release], current=after, extra=new)
            result["changed"] = result["changed"] or bool(result["removed"])
            for release_id in result["removed"]:
                releases.forget(state, release_id)
    return report(module, target, state, plan, before, after, result, would_fetch=new)


def report(module, target, state, plan, before, after, result, would_fetch=()):
    """The result: the task's release, the active release before and after, the releases left."""
    release = plan.release
    fetching = plan.action == "fetch"
    info = state["releases"].get(release or "", {})
    sha256 = info.get("sha256") or (plan.sha256 if fetching else None)
    if target.layout == "releases":
        def path_of(release_id):
            return target.path_of(release_id) if release_id else None
        on_disk = target.ranked(state, would_fetch)
        result.update(releases=[r for r in on_disk if r not in result["removed"]],
                      rolled_back=[r for r in state["rolled_back"] if r in on_disk])
    else:
        def path_of(release_id):
            return target.dest if release_id else None
    result.update(release=release, path=path_of(release), previous=before, current=after, sha256=sha256,
                  archive_size=info.get("size", plan.size if fetching else None), notes=target.notes)
    if result["changed"] and module._diff:
        after_name = after
        if after is None and fetching and module.params["switch"]:
            after_name = "(named after the archive's sha256)"
        result["diff"] = dict(
            before=describe(before, path_of(before), state["releases"].get(before or "", {}).get("sha256")),
            after=describe(after_name, path_of(after),
                           sha256 if after == release else state["releases"].get(after or "", {}).get("sha256")))
    return result


def main():
    argument_spec = dict(
        src=dict(type="str"),
        dest=dict(type="path", required=True),
        layout=dict(type="str", choices=["releases", "replace"], default="releases"),
        release=dict(type="str"),
        rollback=dict(type="bool", default=False),
        switch=dict(type="bool", default=True),
        checksum=dict(type="str"),
        keep=dict(type="int", default=3),
        if_busy=dict(type="str", choices=["fail", "keep"], default="fail"),
        allow_devices=dict(type="bool", default=False),
        lock_timeout=dict(type="int", default=300),
    )
    argument_spec.update(store.S3_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        module.exit_json(**run(module))
    except DrootError as exc:
        fail_from_error(module, exc)
    except OSError as exc:
        module.fail_json(msg="%s%s: %s" % (exc.filename or "", " -> %s" % exc.filename2 if exc.filename2 else "",
                                           exc.strerror or exc))


if __name__ == "__main__":
    main()
