# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""droot_fetch's logic: read the manifest, plan, then download -> unpack -> switch -> prune.

Everything is decided (``plan_task``) before anything is written or downloaded, so that check
mode reports from the same plan a run carries out. A release already on the host, found by the
archive's sha256 or the image id in its manifest, is used without touching the archive.
"""

from __future__ import annotations

import os

from ansible_collections.droot.core.plugins.module_utils._internal import archive, manifest, releases, store, unpack
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
        self.rolled_back_from = None  # the release a rollback leaves, marked as rolled back
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


def require_release(target, release_id, step):
    if not target.exists(release_id):
        raise FetchError("release %s does not exist in %s: available are %s"
                         % (release_id, target.releases_dir, ", ".join(target.releases()) or "none"), step=step)


def plan_fetch(params, target, state, current, opts, check_mode=False):
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


def plan_task(params, target, state, current, opts, check_mode=False):
    """The plan of each mode: a fetch (src), a rollback, a switch to a release on disk (release
    without src), or only keep (neither)."""
    if params["src"] and not params["rollback"]:
        return plan_fetch(params, target, state, current, opts, check_mode)
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
    allow_privileged = target.layout == "releases" or params["allow_privileged_files"]

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


def describe(release, path, sha256):
    if release is None:
        return "(none)\n"
    return "release: %s\npath: %s\nsha256: %s\n" % (release, path, sha256 or "unknown")


def prunes(params):
    """keep applies after a fetch and on its own; a rollback or a switch by name deletes nothing."""
    return params["layout"] == "releases" and not params["rollback"] and (params["src"] or not params["release"])


def check_options(params):
    if params["keep_owners"] and os.geteuid() != 0:
        raise FetchError("droot_fetch runs as uid %d, not as root, so it cannot give the files the owners the archive "
                         "gives them: add become: true to the task, or set keep_owners: false to unpack every file "
                         "as this user" % os.geteuid(), step="privileges")
    if params["adopt"] and (not params["src"] or params["rollback"]):
        raise FetchError("adopt needs src: a fetch adopts dest as it unpacks a release there", step="options")
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
    for name, least in LIMIT_OPTIONS:
        if params[name] is not None and params[name] < least:
            raise FetchError("%s must be %d or more" % (name, least), step="options")
    if params["release"] is not None:
        releases.check_release_id(params["release"])


class Fetcher:
    """One droot_fetch task: ``run()`` returns the module result; ``warn`` takes warnings."""

    def __init__(self, params, check_mode=False, diff=False, warn=None):
        check_options(params)  # bad options fail before the module checks for boto3
        self.params = params
        self.check_mode = check_mode
        self.diff = diff
        self.warn = warn

    def reads_s3(self):
        """Whether the task reads an s3:// src (a rollback never reads src)."""
        return (self.params["src"] or "").startswith("s3://") and not self.params["rollback"]

    def run(self):
        params = self.params
        opts = store.S3Options.from_params(params)
        target = releases.open_target(params["dest"], params["layout"], self.warn)
        # Before anything is made in a dest that is not droot's, and again under the lock.
        target.check_foreign(params["adopt"])
        if self.check_mode:
            return self.plan_only(target, opts)
        with target.locked(params["lock_timeout"]):
            target.check_foreign(params["adopt"])
            target.recover()
            state = target.load_state()
            before = target.current()
            plan = plan_task(params, target, state, before, opts)
            result = dict(changed=bool(target.corrected), downloaded=False, removed=[], kept_busy=[], kept_old=None,
                          adopted=None)
            if plan.action == "fetch":
                self.warn_unpacking(target)
                staging, sha256, size, stats = download(params, target, plan, opts)
                if stats["skipped_devices"]:
                    target.warn("skipped the %d device nodes under /dev in the archive: the jail mounts a /dev of its "
                                "own; set allow_devices: true to keep them" % stats["skipped_devices"])
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
                result.update(changed=True, downloaded=True, stats=stats, adopted=target.adopted)
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
            return self.report(target, state, plan, before, after, result)

    def plan_only(self, target, opts):
        """Check mode: decide without locking, writing or downloading; report what a run would do."""
        params = self.params
        state = target.load_state()
        before = target.current()
        plan = plan_task(params, target, state, before, opts, check_mode=True)
        after = before
        fetching = plan.action == "fetch"
        if plan.unexported:
            target.notes.append("there is no archive at %s yet: a run downloads it once it is there" % params["src"])
        if fetching:
            self.warn_unpacking(target)
        too_open = target.too_open()
        for path, mode, uid in too_open:
            target.warn("%s is mode %04o, owner uid %d: a run corrects it to 0700, %s"
                        % (path, mode, uid, releases.PRIVATE_WHY))
        result = dict(changed=fetching or bool(too_open), downloaded=fetching, removed=[], kept_busy=[], kept_old=None,
                      adopted=None)
        if target.adopting:
            result["adopted"] = target.adoption_path()
            target.notes.append("a run moves what %s holds, which droot did not put there, to %s"
                                % (target.dest, result["adopted"]))
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
        return self.report(target, state, plan, before, after, result, would_fetch=new)

    def warn_unpacking(self, target):
        """keep_owners=false: say whose the files are (the same in check mode, before a run)."""
        if not self.params["keep_owners"]:
            target.warn("keep_owners is false: every file unpacked belongs to uid %d, whatever its owner in the archive, "
                        "so the root is fit only for that user" % os.geteuid())

    def report(self, target, state, plan, before, after, result, would_fetch=()):
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
        if result["changed"] and self.diff:
            after_name = after
            if after is None and fetching and self.params["switch"]:
                after_name = "(named after the archive's sha256)"
            result["diff"] = dict(
                before=describe(before, path_of(before), state["releases"].get(before or "", {}).get("sha256")),
                after=describe(after_name, path_of(after),
                               sha256 if after == release else state["releases"].get(after or "", {}).get("sha256")))
        return result
