# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The archive manifest, ``<archive>.json``: the one place that builds, writes, reads and checks it.

droot_export writes it last, next to the archive; droot_fetch trusts an archive only when the
manifest exists and its sha256 matches the bytes read (docs/architecture.md, "Manifest").
"""

from __future__ import annotations

import datetime
import json
import re
from urllib.parse import urlsplit

from ansible_collections.droot.core.plugins.module_utils._internal import store
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

# The manifest's own format, not config.json's (imageconfig.FORMAT_VERSION), though both are 1.
FORMAT_VERSION = 1
# The most a manifest may be. Export allowed 4 MiB and fetch 1 MiB; the larger is kept, so that
# every manifest either side accepted before is still accepted by both.
LIMIT = 4 << 20
SHA256 = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


def archive_name(url):
    """The file name an archive location ends in (a URL's query string is not part of it); the
    manifest's ``archive`` field."""
    path = urlsplit(url).path if "://" in url else url
    return path.rstrip("/").rsplit("/", 1)[-1]


def document(dest, sha256, info, tar_size, compression, image_id, config, now=None):
    """The manifest of the archive written to ``dest`` (``info`` its store.ObjectInfo); ``tar_size``
    (the uncompressed tar stream's bytes) bounds what a fetch unpacks."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {
        "format": FORMAT_VERSION,
        "archive": archive_name(dest),
        "sha256": sha256,
        "size": info.size,
        "tar_size": tar_size,
        "etag": info.etag,
        "compression": compression,
        "image_id": image_id,
        "config": config,
        "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write(dest, manifest, opts, on_pending=None):
    """Write ``manifest`` next to the archive ``dest``, whole or not at all."""
    with store.open_writer(store.manifest_location(dest), opts, on_pending=on_pending) as writer:
        writer.write(json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n")
        writer.commit()


def read_bytes(src, opts):
    """The manifest next to the archive ``src`` as bytes, or None when there is none."""
    return store.read_bytes(store.manifest_location(src), opts, LIMIT)


def parse(data, location, src, error=DrootError):
    """The manifest ``data`` read from ``location`` as a dict with a lower-case sha256; it must
    describe the archive ``src``. Anything else raises ``error`` with the step ``manifest``."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise error("the manifest %s is not valid JSON (%s): export the archive again" % (location, exc),
                    step="manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise error("the manifest %s has an unknown format: export the archive again with this "
                    "collection's droot_export" % location, step="manifest")
    sha = manifest.get("sha256")
    if not isinstance(sha, str) or not SHA256.match(sha):
        raise error("the manifest %s has no valid sha256: export the archive again" % location,
                    step="manifest")
    manifest["sha256"] = SHA256.match(sha).group(1).lower()
    # tar_size came after format 1's first release: a manifest without it is still valid.
    tar_size = manifest.get("tar_size")
    if tar_size is not None and (not isinstance(tar_size, int) or isinstance(tar_size, bool) or tar_size < 0):
        raise error("the manifest %s has an invalid tar_size %r: export the archive again" % (location, tar_size),
                    step="manifest")
    name = manifest.get("archive")
    if name and name != archive_name(src):
        raise error("the manifest %s describes %s, not %s: export the archive again"
                    % (location, name, src), step="manifest")
    return manifest


def read(src, opts, error=DrootError):
    """The manifest next to the archive ``src``, checked by ``parse``, or None when there is none."""
    data = read_bytes(src, opts)
    if data is None:
        return None
    return parse(data, store.manifest_location(src), src, error)


def current(data, archive_info, dest, image_id, compression):
    """The manifest ``data`` when it vouches for the archive now at ``dest``, else None.

    Current means: valid (``parse``), naming this archive, the same image id and compression,
    and the archive's size and ETag (S3's, or the local file's mtime-size) as recorded when
    written. A manifest without ``tar_size`` (an older droot_export's) is not current, so the
    archive is exported again and fetches get the tight bound it gives.
    """
    if data is None or archive_info is None:
        return None
    try:
        manifest = parse(data, store.manifest_location(dest), dest)
    except DrootError:
        return None
    expected = {"archive": archive_name(dest), "image_id": image_id, "compression": compression,
                "size": archive_info.size}
    if any(manifest.get(key) != value for key, value in expected.items()):
        return None
    if manifest.get("tar_size") is None:
        return None
    if manifest.get("etag") and manifest["etag"] != archive_info.etag:
        return None
    return manifest
