# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile and broken archives that droot_fetch must refuse.

Every file an archive tries to plant outside its tree is named DROOT-EVIL-*, aimed at the
directory given as ESCAPE (absolute paths, symlinks) or reached with enough '..' to get to
the file system root, so a test can look for it afterwards.

    hostile_corpus.py OUTDIR ESCAPE   writes OUTDIR/<case>.<ext> and OUTDIR/index.json

index.json lists {"name", "file", "expect"}: ``expect`` is a fragment of the one-line error.
The unit tests import ``cases()`` directly.
"""

import gzip
import hashlib
import json
import os
import sys

BLOCK = 512
DEEP = b"../" * 40


def header(name, typeflag=b"0", size=0, mode=0o644, uid=0, gid=0, mtime=1700000000, linkname=b"",
           devmajor=0, devminor=0, magic=b"ustar\x0000", checksum_delta=0):
    """One ustar header block, fields written exactly as given."""
    block = bytearray(BLOCK)

    def put(offset, value):
        block[offset:offset + len(value)] = value

    put(0, name[:100])
    put(100, b"%07o\0" % mode)
    put(108, b"%07o\0" % uid)
    put(116, b"%07o\0" % gid)
    put(124, b"%011o\0" % size)
    put(136, b"%011o\0" % mtime)
    put(148, b" " * 8)
    put(156, typeflag)
    put(157, linkname[:100])
    put(257, magic)
    put(265, b"root")
    put(297, b"root")
    put(329, b"%07o\0" % devmajor)
    put(337, b"%07o\0" % devminor)
    put(148, b"%06o\0 " % (sum(block) + checksum_delta))
    return bytes(block)


def pad(data):
    return data + b"\0" * (-len(data) % BLOCK)


def member(name, data=b"", typeflag=b"0", **fields):
    size = len(data) if typeflag in (b"0", b"x", b"g", b"L", b"K") else 0
    return header(name, typeflag, size=size, **fields) + pad(data)


def pax(records, name=b"PaxHeader", typeflag=b"x"):
    """A pax extended header (typeflag g: a global one)."""
    body = b""
    for key, value in records:
        record = b" %s=%s\n" % (key, value)
        length = len(record)
        length += len(str(length + len(str(length))))
        body += b"%d%s" % (length, record)
    return member(name, body, typeflag)


def directory(name, mode=0o755):
    return member(name, typeflag=b"5", mode=mode)


def symlink(name, target):
    return member(name, typeflag=b"2", linkname=target, mode=0o777)


def hardlink(name, target):
    return member(name, typeflag=b"1", linkname=target)


def end():
    return b"\0" * (2 * BLOCK)


def gz(data):
    return gzip.compress(data, mtime=0)


def zstd(data):
    import zstandard
    return zstandard.ZstdCompressor(level=3).compress(data)


def benign():
    """A small valid archive: the base that broken cases damage."""
    return (directory(b"etc/") + member(b"etc/hostname", b"droot\n")
            + member(b"bin/tool", os.urandom(200000), mode=0o755) + end())


def cases(escape):
    """(name, data, extension, expected error fragment, manifest or None)."""
    escape = os.fsencode(escape).rstrip(b"/")
    evil = b"DROOT-EVIL"
    ok = benign()
    truncated_data = ok[:BLOCK * 3 + 1000]
    # Cut right after a complete member: no end-of-archive blocks, every header intact.
    truncated_header = ok[:len(ok) - 2 * BLOCK]
    bad_gzip = bytearray(gz(ok))
    for index in range(40, 80):
        bad_gzip[index] ^= 0x5a
    bad_zstd = bytearray(zstd(ok))
    for index in range(30, 60):
        bad_zstd[index] ^= 0xa5
    result = [
        ("traversal", member(DEEP + evil + b"-traversal", b"x") + end(), "tar", "climbs out of the root"),
        ("traversal-inner", directory(b"a/") + member(b"a/../../" + evil + b"-inner", b"x") + end(), "tar",
         "climbs out of the root"),
        ("absolute", member(escape + b"/" + evil + b"-absolute", b"x") + end(), "tar", "absolute path"),
        ("pax-absolute", pax([(b"path", escape + b"/" + evil + b"-pax")]) + member(b"harmless", b"x") + end(),
         "tar.gz", "absolute path"),
        ("gnu-longname-traversal", member(b"././@LongLink", DEEP + evil + b"-longname\0", b"L")
         + member(b"harmless", b"x") + end(), "tar", "climbs out of the root"),
        ("symlink-write-absolute", symlink(b"etc", escape) + member(b"etc/" + evil + b"-symlink", b"x") + end(),
         "tar.gz", "written through the symlink"),
        ("symlink-write-relative", directory(b"a/") + symlink(b"a/up", DEEP)
         + member(b"a/up/" + evil + b"-relative", b"x") + end(), "tar", "written through the symlink"),
        ("symlink-loop-write", symlink(b"loop1", b"loop2") + symlink(b"loop2", b"loop1")
         + member(b"loop1/" + evil + b"-loop", b"x") + end(), "tar.zst", "written through the symlink"),
        ("symlink-dir-replaced", directory(b"lib/") + symlink(b"lib", escape) + member(b"lib/" + evil, b"x")
         + end(), "tar", "appears twice"),
        ("hardlink-outside", hardlink(b"passwd", DEEP + b"etc/passwd") + end(), "tar", "climbs out of the root"),
        ("hardlink-absolute", hardlink(b"passwd", b"/etc/passwd") + end(), "tar", "absolute path"),
        ("hardlink-not-member", hardlink(b"shadow", b"etc/shadow") + end(), "tar", "not an earlier file"),
        ("hardlink-through-symlink", symlink(b"hostetc", escape) + hardlink(b"stolen", b"hostetc/secret")
         + end(), "tar", "not an earlier file"),
        # Nodes under /dev are skipped (the jail mounts its own); anywhere else they are refused.
        ("device-char", directory(b"usr/") + member(b"usr/mem", typeflag=b"3", devmajor=1, devminor=1) + end(),
         "tar", "device node"),
        ("device-linked-out-of-dev", directory(b"dev/") + member(b"dev/mem", typeflag=b"3", devmajor=1, devminor=1)
         + hardlink(b"mem", b"dev/mem") + end(), "tar", "device node"),
        ("device-block", member(b"sda", typeflag=b"4", devmajor=8, devminor=0) + end(), "tar.gz", "device node"),
        ("duplicate-file", member(b"app", b"one") + member(b"app", b"two") + end(), "tar", "appears twice"),
        ("duplicate-dir-then-file", directory(b"data/") + member(b"data", b"x") + end(), "tar", "appears twice"),
        ("overlong-component", pax([(b"path", b"n" * 300)]) + member(b"short", b"x") + end(), "tar",
         "name limit"),
        ("overlong-path", pax([(b"path", (b"d" * 200 + b"/") * 25)]) + member(b"short", b"x") + end(), "tar",
         "path limit"),
        ("pax-flood", pax([(b"flood.1", b"v" * 600000)]) + pax([(b"flood.2", b"v" * 600000)])
         + member(b"after-the-flood", b"x") + end(), "tar.zst", "max_pax_bytes_per_member"),
        ("too-deep", pax([(b"path", b"d/" * 128 + b"f")]) + member(b"short", b"x") + end(), "tar",
         "max_path_depth"),
        ("sparse", member(b"sparse", typeflag=b"S") + end(), "tar", "sparse"),
        ("xattr-namespace", pax([(b"SCHILY.xattr.bogus.attr", b"1")]) + member(b"f", b"x") + end(), "tar",
         "extended attribute"),
        ("truncated-data", truncated_data, "tar.gz", "truncated"),
        ("truncated-no-end", truncated_header, "tar.zst", "truncated"),
        ("truncated-gzip-frame", gz(ok)[:-1000], "tar.gz", "truncated"),
        ("bad-header-checksum", header(b"x", checksum_delta=7) + end(), "tar", "checksum"),
        ("bad-gzip-frame", bytes(bad_gzip), "tar.gz", "corrupt"),
        ("bad-zstd-frame", bytes(bad_zstd), "tar.zst", "corrupt"),
        ("not-a-tar", b"PK\x03\x04" + os.urandom(4000), "tar", "not a tar archive"),
        ("empty", b"", "tar", "empty"),
    ]
    out = []
    for name, data, extension, expect in result:
        if extension == "tar.gz" and not data.startswith(b"\x1f\x8b"):
            data = gz(data)
        elif extension == "tar.zst" and not data.startswith(b"\x28\xb5\x2f\xfd"):
            data = zstd(data)
        out.append((name, data, extension, expect, None))
    # A valid archive whose manifest gives another sha256: found only by hashing every byte.
    data = zstd(ok)
    wrong = hashlib.sha256(data + b"x").hexdigest()
    out.append(("checksum-mismatch", data, "tar.zst", "checksum mismatch",
                {"format": 1, "archive": "checksum-mismatch.tar.zst", "sha256": wrong, "size": len(data),
                 "compression": "zstd", "image_id": "sha256:" + "ab" * 32, "config": {},
                 "created": "2024-01-01T00:00:00Z"}))
    return out


def write(outdir, escape):
    os.makedirs(outdir, exist_ok=True)
    index = []
    for name, data, extension, expect, manifest in cases(escape):
        filename = "%s.%s" % (name, extension)
        with open(os.path.join(outdir, filename), "wb") as handle:
            handle.write(data)
        if manifest is not None:
            with open(os.path.join(outdir, filename + ".json"), "w", encoding="utf-8") as handle:
                json.dump(manifest, handle)
        index.append({"name": name, "file": filename, "expect": expect, "manifest": manifest is not None})
    with open(os.path.join(outdir, "index.json"), "w", encoding="utf-8") as handle:
        json.dump(index, handle, indent=1)
    return index


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(json.dumps(write(sys.argv[1], sys.argv[2])))
