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
    links to anything but an earlier file of the archive, device nodes outside C(/dev) (unless
    O(allow_devices); those under C(/dev) are skipped, see there), duplicate members, overlong names,
    sparse files, data that is no tar archive, and truncated or corrupt archives. A refused archive
    fails the task, staging is removed and O(dest) is left as it was.
  - Setuid and setgid files and file capabilities give their privileges to whoever runs them, inside
    the jail or not. So that host users cannot run them, C(dest/releases), the bookkeeping directory
    and the staging directory in it are mode 0700 and owned by root; one found wider (version 0.1.0
    made C(releases) 0755) is corrected with a warning, which is a change. Each release's own root
    directory keeps the archive's mode, which the jail needs. With O(layout=replace) the root lies in a
    directory that droot does not own, where host users may reach it, so such files are refused there
    unless O(allow_privileged_files=true).
  - What an archive may make the task spend is bounded, each bound an option - the bytes of pax and
    GNU long-name headers held in memory (O(max_pax_bytes_per_member), O(max_pax_bytes_per_archive)),
    the bytes unpacked (O(max_unpacked_bytes), by default from the manifest's C(tar_size)), the free
    space left on the file system of O(dest) (O(min_free_space), checked as the archive is unpacked),
    the number of entries (O(max_entries)) and the depth of their paths (O(max_path_depth)). An
    archive over a bound is refused with an error naming the option, before the bytes over it are
    written; staging is removed and O(dest) is left as it was.
  - Nothing is switched until the whole archive was read and verified, and the file system was
    synced.
  - A release already on the host is not downloaded again. With O(layout=releases), when the
    manifest's image id (or the sha256) names a release that is on disk and was recorded as fetched
    from that image, only the manifest is read - the archive is neither downloaded nor looked at,
    even when its bytes differ (the same image exported again, with other settings or by another
    engine, need not give the same bytes), and the task switches to that release unless it is active
    already or O(switch=false).
  - With O(layout=releases) the task unpacks the release into C(dest/releases/<id>), switches C(current) to it
    (unless O(switch=false)) and prunes to O(keep) releases, so that one task deploys; switching between the
    releases on disk, rolling back, pruning and removing are M(droot.core.droot_release)'s, and
    M(droot.core.droot_info) lists them. Both go through the same bookkeeping and the same code as this module.
  - The activation history in the bookkeeping directory (never file mtimes) gives the previous release;
    releases rolled back from rank after all others for O(keep) (see M(droot.core.droot_release)).
  - Deprecated - the forms without O(src) (O(release) alone to switch, O(rollback=true), O(keep) alone to prune)
    still work as M(droot.core.droot_release) with C(state=switched), C(rolled_back) and C(pruned), with a
    deprecation warning; they will be removed in 0.3.0.
  - The parent directories of O(dest) are created when missing (mode 0755). A task that fails removes
    the directories it created (the parents of O(dest) included), so a failed first fetch leaves
    nothing behind.
  - A O(dest) that droot never managed (no bookkeeping) is refused when it holds anything - with
    O(layout=replace) it would be deleted; with O(layout=releases) anything but droot's own entries
    (and a C(lost+found)) - unless O(adopt=true).
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
      - When there is no archive at O(src) yet (the export before the task did not run in check mode
        either), reports the download as a change, with a line in RV(notes), instead of failing.
      - Warns about a private directory that a run would correct to 0700, and reports it as a change.
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
      - Required with O(layout=replace). Omitting it with O(layout=releases) is deprecated (see
        M(droot.core.droot_release)).
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
      - Deprecated - with O(rollback=true), the release to switch to instead of the previous one; without
        O(src), the release on disk to switch to (M(droot.core.droot_release) C(state=switched)).
      - 1 to 128 letters, digits, C(.), C(_), C(+) or C(-), starting with a letter or digit.
    type: str
  rollback:
    description:
      - Deprecated, use M(droot.core.droot_release) C(state=rolled_back) - switch C(current) back to the
        previous release (or to O(release)) without downloading anything, marking the release it leaves
        as rolled back. Needs O(layout=releases).
    type: bool
    default: false
  switch:
    description:
      - Whether to point C(current) at the release the task fetched or selected.
      - With V(false) the release is unpacked and recorded (or checked, when on disk already) but
        C(current) stays where it is; RV(release) and RV(path) name the release and RV(current) the
        release still active. A later M(droot.core.droot_release) task switches to it.
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
      - Applied after a fetch from O(src), as M(droot.core.droot_release) C(state=pruned) applies it (and, deprecated,
        on its own when neither O(src), O(release) nor O(rollback) is given).
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
      - Create the character and block device nodes found in the archive.
      - By default the nodes under C(/dev) are skipped, counted in RV(stats) and in a warning - an image
        imported from a debootstrap or mmdebstrap tarball carries C(/dev/null) and friends, and
        M(droot.core.droot_run) mounts a C(/dev) of its own over them. A device node anywhere else (or a hard
        link to one from outside C(/dev)) is refused.
      - With O(layout=replace), host users can reach these nodes with the modes the archive gives them.
    type: bool
    default: false
  adopt:
    description:
      - Take over a O(dest) that droot never managed and that holds files. Without it such a O(dest) is
        refused, as C(mv -T) refuses a non-empty target.
      - Once the archive is unpacked and verified, and before the switch, what O(dest) held is moved to
        C(<dest>.droot-adopted-<UTC time>) beside it (RV(adopted)), which droot never deletes or prunes -
        with O(layout=replace) the directory O(dest) itself, with O(layout=releases) every entry that is
        not droot's (O(dest) keeps its mode and owner, and the new directory gets them too). A task that
        fails before that moves nothing.
      - Needs O(src). Makes no difference for a O(dest) that droot manages or that is empty.
    type: bool
    default: false
  keep_owners:
    description:
      - "Give each file the numeric owner and group the archive gives it. That needs root, so by default the
        task fails at once when it does not run as root - add C(become: true)."
      - V(false) unpacks every file as the user that runs the task, for a user who unpacks a root for
        itself without root, with a warning; the archive's owners are lost, and setting file capabilities
        and device nodes still needs root.
    type: bool
    default: true
  allow_privileged_files:
    description:
      - With O(layout=replace), unpack setuid and setgid files and files with capabilities
        (C(security.capability)) from the archive. By default such an archive is refused - the root lies
        in a directory droot does not own, so any host user who can reach it could run a setuid-root
        binary of the image outside the jail and get root. Set this only when every host user may have
        those privileges (or the parent directories of O(dest) keep them out).
      - With O(layout=releases) these files are always kept - C(dest/releases) is root's only.
    type: bool
    default: false
  max_pax_bytes_per_member:
    description:
      - The most bytes of pax extended headers and GNU long-name headers one member may come with,
        global pax records included. These headers are held in memory until their member.
    type: int
    default: 1048576
  max_pax_bytes_per_archive:
    description:
      - The most bytes of pax extended headers and GNU long-name headers in the whole archive; the records
        of a global pax header count again for every member they apply to.
    type: int
    default: 268435456
  max_unpacked_bytes:
    description:
      - The most bytes the archive may unpack to, counted as its uncompressed tar stream (the files' data
        and 512-byte headers); trailing data counts too.
      - By default the C(tar_size) that M(droot.core.droot_export) records in the manifest, plus 1% and
        1 MiB. For an archive without a manifest or with a manifest of an older droot_export that lacks
        C(tar_size), 20 times the archive's size, at least 64 MiB (67108864). When that size is unknown too
        (an C(https://) server that sends no length), only O(min_free_space) bounds it.
    type: int
  min_free_space:
    description:
      - Bytes to leave free on the file system of O(dest). The free space is read as the archive is
        unpacked, and an entry that would use it is refused before it is written. Only the space
        unprivileged users may use counts, so blocks the file system reserves for root stay untouched too.
      - By default 1% of the file system's size.
    type: int
  max_entries:
    description:
      - The most entries (files, directories, links and other nodes) the archive may create, the
        directories it only implies included. The extraction keeps about 200 bytes of memory per entry
        (more with long names), so the default bounds that to about 100 MB.
    type: int
    default: 500000
  max_path_depth:
    description:
      - The most path components a member's path may have.
    type: int
    default: 128
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
  - module: droot.core.droot_release
  - module: droot.core.droot_info
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
  droot.core.droot_release:
    dest: /var/containers/app
    state: switched
    release: "{{ fetched.release }}"
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
  returned: success
  type: list
  elements: str
rolled_back:
  description: Releases on disk that a rollback switched away from; they are never chosen as the previous release.
  returned: success
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
adopted:
  description:
    - With O(adopt=true), where what O(dest) held before droot managed it was moved (in check mode, where a run
      would move it); droot never deletes or prunes it. Null when nothing was adopted.
  returned: success
  type: str
  sample: /var/containers/app.droot-adopted-20240101T120000Z
stats:
  description:
    - What was extracted - members, files, dirs, symlinks, hardlinks, other (fifos and device nodes), bytes, and
      skipped_devices, the device nodes under C(/dev) left out (see O(allow_devices)).
  returned: when downloaded
  type: dict
  sample: {members: 1204, files: 980, dirs: 160, symlinks: 60, hardlinks: 4, other: 0, bytes: 69206016,
           skipped_devices: 0}
notes:
  description: Recovery done, trees left in place or adopted, and in check mode a missing archive, one line each.
  returned: success
  type: list
  elements: str
step:
  description: The step that failed, for example C(options), C(privileges), C(dest), C(lock), C(manifest), C(download),
    C(unpack) or C(verify); C(release) for a fault of O(dest)'s releases or bookkeeping that no other step names.
  returned: failure
  type: str
  sample: unpack
code:
  description:
    - The error code of the store when reading O(src) failed - S3's, a string such as C(AccessDenied); for an
      C(https://) O(src), the HTTP status, a number.
  returned: on failure, when the store gave one
  type: raw
  sample: AccessDenied
uid:
  description: Owner id of RV(path) (Ansible's file facts about RV(path), added when it exists).
  returned: when RV(path) exists
  type: int
gid:
  description: Group id of RV(path).
  returned: when RV(path) exists
  type: int
owner:
  description: Owner name of RV(path).
  returned: when RV(path) exists
  type: str
group:
  description: Group name of RV(path).
  returned: when RV(path) exists
  type: str
mode:
  description: Permissions of RV(path), in octal.
  returned: when RV(path) exists
  type: str
  sample: "0755"
state:
  description: The kind of RV(path), C(directory).
  returned: when RV(path) exists
  type: str
size:
  description: The size of the directory RV(path) itself, not of the archive (that is RV(archive_size)).
  returned: when RV(path) exists
  type: int
secontext:
  description: The SELinux context of RV(path).
  returned: when RV(path) exists and SELinux is enabled
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.droot.core.plugins.module_utils._internal import fetcher, store
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, fail_from_error


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
        allow_privileged_files=dict(type="bool", default=False),
        adopt=dict(type="bool", default=False),
        keep_owners=dict(type="bool", default=True),
        max_pax_bytes_per_member=dict(type="int", default=1048576),
        max_pax_bytes_per_archive=dict(type="int", default=268435456),
        max_unpacked_bytes=dict(type="int"),
        min_free_space=dict(type="int"),
        max_entries=dict(type="int", default=500000),
        max_path_depth=dict(type="int", default=128),
        lock_timeout=dict(type="int", default=300),
    )
    argument_spec.update(store.S3_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        fetch = fetcher.Fetcher(module.params, check_mode=module.check_mode, diff=module._diff, warn=module.warn,
                                deprecate=lambda msg: module.deprecate(msg, version="0.3.0", collection_name="droot.core"))
        if fetch.reads_s3():
            store.BOTO3.require(module, reason="to read s3:// locations")
        result = fetch.run()
    except DrootError as exc:
        fail_from_error(module, exc)
    except OSError as exc:
        module.fail_json(msg="%s%s: %s" % (exc.filename or "", " -> %s" % exc.filename2 if exc.filename2 else "",
                                           exc.strerror or exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
