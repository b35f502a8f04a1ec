# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""droot_fetch's logic: read the manifest, plan, then download -> unpack -> install -> switch -> prune.

The fetch is decided (``plan_fetch``) before anything is written or downloaded; installing,
switching and pruning go through releases.Executor, which check mode runs dry: one path for both.
A release already on the host, found by the archive's sha256 or the image id in its manifest, is
used without touching the archive.
"""

from __future__ import annotations

import os

from ansible_collections.droot.core.plugins.module_utils._internal import (
    archive, manifest, releaser, releases, store, unpack)
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

# max_unpacked_bytes without the option: the manifest's tar_size plus this share and slack, or,
# without it, this multiple of the archive's size, never less than the floor.
TAR_SIZE_MARGIN = 100
TAR_SIZE_SLACK = unpack.MIB
ARCHIVE_SIZE_MULTIPLE = 20
ARCHIVE_SIZE_FLOOR = 64 * unpack.MIB
# The limit options, each at least its minimum.
LIMIT_OPTIONS = (("max_pax_bytes_per_member", 1), ("max_pax_bytes_per_archive", 1), ("max_unpacked_bytes", 1),
                 ("min_free_space", 0), ("max_entries", 1), ("max_path_depth", 1))


class FetchError(DrootError):
    """A failure of droot_fetch with a one-line message naming the fix."""


def parse_checksum(value):
    """The checksum option (``sha256:HEX`` or ``HEX``) as lower-case hex, or None when unset."""
    if value is None:
        return None
    match = manifest.SHA256.match(value.strip())
    if not match:
        raise FetchError("checksum %r is not a sha256: give sha256:<64 hex digits>" % value, step="options")
    return match.group(1).lower()


def read_manifest(src, opts):
    """The manifest next to ``src`` as a dict, or None when there is none (manifest.read)."""
    return manifest.read(src, opts, error=FetchError)


class Plan:
    """What the task does, decided before anything is written or downloaded."""

    def __init__(self):
        self.release = None           # the release fetched, switched to or kept; None: named after the download
        self.action = "none"          # "none", "switch" (to a release on disk) or "fetch"
        self.sha256 = None            # the expected sha256, when known
        self.size = None
        self.object = None
        self.manifest = None
        self.unexported = False       # check mode: no archive at src yet, a run would download it


def find_object(src, opts, check_mode=False):
    """The archive's metadata. In check mode None when it is not there yet: the export before this
    task did not run in check mode either, and a run would download what it writes."""
    info = store.stat(src, opts)
    if info is None and not check_mode:
        raise FetchError("there is no archive at %s: check src, or export the image first" % src, step="download")
    return info


def plan_fetch(params, executor, opts, check_mode=False):
    """A fetch from ``src``; a release already on the host is used without touching the archive."""
    plan = Plan()
    current = executor.current
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
    looked_up = plan.sha256 is None
    if looked_up:
        # Neither manifest nor checksum: only the object's ETag and size tell an archive fetched before.
        plan.object = find_object(src, opts, check_mode)

    def same(info):
        """Whether a recorded release holds this archive's tree: the same bytes, or the same image
        (an image exported again is the same tree in other bytes)."""
        if not info:
            return False
        if plan.sha256 is not None:
            return info.get("sha256") == plan.sha256 or (image_id is not None and info.get("image_id") == image_id)
        return (plan.object is not None and info.get("source") == src and plan.object.etag is not None
                and info.get("etag") == plan.object.etag and info.get("size") == plan.object.size)

    recorded = executor.state["releases"]
    if current is not None and plan.release in (None, current) and same(recorded.get(current)):
        plan.release = current
        return plan
    for release_id in [plan.release] if plan.release is not None else sorted(recorded):
        if executor.exists(release_id) and same(recorded.get(release_id)):
            plan.release = release_id
            plan.action = "switch"
            return plan
    if not looked_up:
        plan.object = find_object(src, opts, check_mode)
    plan.action = "fetch"
    if plan.object is None:
        plan.unexported = True
        return plan
    if plan.size is not None and plan.object.size is not None and plan.size != plan.object.size:
        raise FetchError("%s is %d bytes but its manifest says %d: the archive was changed or is being "
                         "rewritten; export it again" % (src, plan.object.size, plan.size), step="manifest")
    return plan


def unpacked_limit(params, plan):
    """max_unpacked_bytes and where it comes from: the option, the manifest's tar_size, a multiple
    of the archive's size, or (None) nothing when the size is unknown."""
    if params["max_unpacked_bytes"] is not None:
        return params["max_unpacked_bytes"], "as the task sets it"
    tar_size = (plan.manifest or {}).get("tar_size")
    if tar_size is not None:
        return (tar_size + tar_size // TAR_SIZE_MARGIN + TAR_SIZE_SLACK,
                "by default the manifest's tar_size of %d bytes plus 1%% and 1 MiB" % tar_size)
    size = plan.object.size if plan.object is not None else None
    if size is None:
        return None, None
    return (max(ARCHIVE_SIZE_MULTIPLE * size, ARCHIVE_SIZE_FLOOR),
            "by default, without a tar_size in a manifest, %d times the archive's %d bytes, at least 64 MiB"
            % (ARCHIVE_SIZE_MULTIPLE, size))


def limits(params, plan):
    """The unpack.Limits of a fetch."""
    unpacked, origin = unpacked_limit(params, plan)
    return unpack.Limits(pax_member=params["max_pax_bytes_per_member"], pax_archive=params["max_pax_bytes_per_archive"],
                         unpacked=unpacked, unpacked_origin=origin, entries=params["max_entries"],
                         depth=params["max_path_depth"], min_free=params["min_free_space"])


def download(params, target, plan, opts):
    """Stream the archive into a new staging directory; returns (staging, sha256, size, stats)."""
    src = params["src"]
    holder = {}
    bounds = limits(params, plan)
    # releases/ is root's only; a replace dest lies where host users may reach it.
    allow_privileged = target.private_roots or params["allow_privileged_files"]

    def open_stream():
        raw, info = store.open_reader(src, opts)
        holder["raw"] = unpack.HashingReader(raw)
        holder["info"] = info
        return archive.decompressing_reader(holder["raw"])

    staging = target.new_staging()
    reader = unpack.ReadAhead(open_stream)
    try:
        try:
            stats = unpack.unpack(reader, staging, allow_devices=params["allow_devices"], limits=bounds,
                                  allow_privileged=allow_privileged, same_owner=params["keep_owners"])
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


def deprecated_state(params):
    """The droot_release state that droot_fetch without src (or with rollback) stands for, or None."""
    if params["rollback"]:
        return "rolled_back"
    if params["src"]:
        return None
    return "switched" if params["release"] else "pruned"


def check_options(params):
    if params["keep_owners"] and os.geteuid() != 0:
        raise FetchError("droot_fetch runs as uid %d, not as root, so it cannot give the files the owners the archive "
                         "gives them: add become: true to the task, or set keep_owners: false to unpack every file "
                         "as this user" % os.geteuid(), step="privileges")
    fetching = deprecated_state(params) is None
    if params["adopt"] and not fetching:
        raise FetchError("adopt needs src: a fetch adopts dest as it unpacks a release there", step="options")
    releases.layout_class(params["layout"]).check_request(fetching, params["rollback"], params["switch"])
    if params["keep"] < 0:
        raise FetchError("keep must be 0 (keep all) or more", step="options")
    for name, least in LIMIT_OPTIONS:
        if params[name] is not None and params[name] < least:
            raise FetchError("%s must be %d or more" % (name, least), step="options")
    if params["release"] is not None:
        releases.check_release_id(params["release"])


class Fetcher:
    """One droot_fetch task: ``run()`` returns the module result; ``warn`` takes warnings and
    ``deprecate`` the deprecation of the forms without src."""

    def __init__(self, params, check_mode=False, diff=False, warn=None, deprecate=None):
        check_options(params)  # bad options fail before the module checks for boto3
        self.params = params
        self.check_mode = check_mode
        self.diff = diff
        self.warn = warn
        self.deprecate = deprecate

    def reads_s3(self):
        """Whether the task reads an s3:// src (a rollback never reads src)."""
        return (self.params["src"] or "").startswith("s3://") and not self.params["rollback"]

    def run(self):
        params = self.params
        target = releases.open_target(params["dest"], params["layout"], self.warn)
        # Before anything is made in a dest that is not droot's, and again under the lock.
        target.check_foreign(params["adopt"])
        if self.check_mode:
            return self.execute(target)
        with target.locked(params["lock_timeout"]):
            target.check_foreign(params["adopt"])
            target.recover()
            return self.execute(target)

    def execute(self, target):
        """The task on ``target``: carried out, or in check mode run dry through the same steps."""
        params = self.params
        executor = releases.Executor(target, target.load_state(), dry_run=self.check_mode)
        state = deprecated_state(params)
        if state is not None:
            if self.deprecate:
                self.deprecate("droot_fetch without src, or with rollback, is deprecated: use droot.core.droot_release "
                               "with state=%s" % state)
            release = releaser.apply(executor, state, params["release"], params["keep"], params["switch"])
            return self.report(executor, release, Plan())
        plan = plan_fetch(params, executor, store.S3Options.from_params(params), self.check_mode)
        stats = None
        if plan.action == "fetch":
            stats = self.fetch(target, executor, plan)
        if params["switch"]:
            executor.switch(plan.release)
        executor.prune(params["keep"], protect=[plan.release] if plan.release else [])
        return self.report(executor, plan.release, plan, stats)

    def fetch(self, target, executor, plan):
        """Download and install the release (in check mode only record it); returns the unpack stats."""
        params = self.params
        self.warn_unpacking(target)
        if plan.unexported:
            target.notes.append("there is no archive at %s yet: a run downloads it once it is there" % params["src"])
        info = dict(sha256=plan.sha256, size=plan.size if plan.size is not None else getattr(plan.object, "size", None),
                    source=params["src"], etag=getattr(plan.object, "etag", None),
                    image_id=(plan.manifest or {}).get("image_id"))
        if self.check_mode:
            executor.install(None, plan.release, info, params["if_busy"])
            return None
        staging, sha256, size, stats = download(params, target, plan, store.S3Options.from_params(params))
        if stats["skipped_devices"]:
            target.warn("skipped the %d device nodes under /dev in the archive: the jail mounts a /dev of its "
                        "own; set allow_devices: true to keep them" % stats["skipped_devices"])
        plan.release = plan.release or sha256[:12]
        info.update(sha256=sha256, size=size)
        try:
            executor.install(staging, plan.release, info, params["if_busy"])
        except BaseException:
            if os.path.lexists(staging):
                target.discard(staging)
            raise
        return stats

    def warn_unpacking(self, target):
        """keep_owners=false: say whose the files are (the same in check mode, before a run)."""
        if not self.params["keep_owners"]:
            target.warn("keep_owners is false: every file unpacked belongs to uid %d, whatever its owner in the archive, "
                        "so the root is fit only for that user" % os.geteuid())

    def report(self, executor, release, plan, stats=None):
        """The result: the task's release, the active release before and after, the releases left."""
        executor.commit()
        result = executor.result(release)
        fetching = plan.action == "fetch"
        info = executor.state["releases"].get(release or "") or {}
        result.update(downloaded=fetching, kept_old=executor.kept_old, adopted=executor.adopted,
                      sha256=result["sha256"] or (plan.sha256 if fetching else None),
                      archive_size=info.get("size", plan.size if fetching else None))
        if stats is not None:
            result["stats"] = stats
        if result["changed"] and self.diff:
            # Only a release fetched and switched to may be current without a name yet (a dry run's).
            result["diff"] = executor.diff("(named after the archive's sha256)" if fetching and self.params["switch"]
                                           else None)
        return result
