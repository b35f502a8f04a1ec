# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small release archives for the droot_fetch tests, zstd-compressed, with a manifest.

    make_archive.py OUT.tar.zst MARKER [--no-manifest | --old-manifest] [--files N] [--file-size BYTES]
                    [--from-tar TAR]

The tree has etc/marker (MARKER), bin/app, srv/ and var/tmp/; --files adds N incompressible files
under data/ (a slow archive to interrupt); --from-tar takes the tar TAR instead. The manifest
(OUT.json, as droot_export writes it, tar_size included; without it with --old-manifest, as
droot_export 0.1.0 wrote it) gets an image id derived from MARKER, so the release is named after it.
"""

import argparse
import hashlib
import io
import json
import os
import tarfile

import zstandard


def build(marker, files, file_size):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data=None, mode=0o644):
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        for directory in ("etc", "bin", "srv", "var", "var/tmp", "data"):
            add(directory, mode=0o755)
        add("etc/marker", marker.encode() + b"\n")
        add("bin/app", b"#!/bin/sh\necho " + marker.encode() + b"\n", 0o755)
        for index in range(files):
            add("data/f%06d" % index, os.urandom(file_size))
    return out.getvalue()


def write_manifest(out, sha, size, marker, tar_size):
    """OUT.json for an archive of ``size`` bytes, as droot_export writes it (without tar_size when None)."""
    image_id = "sha256:" + hashlib.sha256(marker.encode()).hexdigest()
    manifest = {"format": 1, "archive": os.path.basename(out), "sha256": sha, "size": size,
                "compression": "zstd", "image_id": image_id, "config": {}, "created": "2024-01-01T00:00:00Z"}
    if tar_size is not None:
        manifest["tar_size"] = tar_size
    with open(out + ".json", "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("marker")
    parser.add_argument("--no-manifest", action="store_true")
    parser.add_argument("--old-manifest", action="store_true")
    parser.add_argument("--files", type=int, default=0)
    parser.add_argument("--file-size", type=int, default=4096)
    parser.add_argument("--from-tar")
    args = parser.parse_args()
    if args.from_tar:
        with open(args.from_tar, "rb") as handle:
            tar = handle.read()
    else:
        tar = build(args.marker, args.files, args.file_size)
    data = zstandard.ZstdCompressor(level=1).compress(tar)
    with open(args.out, "wb") as handle:
        handle.write(data)
    sha = hashlib.sha256(data).hexdigest()
    if not args.no_manifest:
        write_manifest(args.out, sha, len(data), args.marker, None if args.old_manifest else len(tar))
    image_id = hashlib.sha256(args.marker.encode()).hexdigest()
    print(json.dumps({"sha256": sha, "release": image_id[:12], "size": len(data)}))


if __name__ == "__main__":
    main()
