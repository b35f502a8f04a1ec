# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small archives that would exhaust droot_fetch's memory, or fill the file system of dest,
without its limits. Streamed through zstd: never held whole in memory.

    make_bomb.py pax-flood OUT.tar.zst [--headers N]
        N consecutive pax headers of 1 MiB each, every record a new key, then one member
        (1024 by default: 1 GiB of records that droot_fetch 0.1.0 held in a growing dict)
    make_bomb.py huge-file OUT.tar.zst [--size BYTES]
        one file of BYTES zero bytes (1 GiB by default)
    make_bomb.py many-files OUT.tar.zst [--files N] [--size BYTES]
        N files of BYTES zero bytes each (128 of 1 MiB by default)

    --manifest MARKER    also write OUT.json as droot_export does, with the real tar_size
    --old-manifest       the manifest without tar_size, as droot_export 0.1.0 wrote it

Prints {"size", "tar_size", "sha256", "release"}.
"""

import argparse
import hashlib
import json

import zstandard

from make_archive import write_manifest

BLOCK = 512
MIB = 1 << 20


def header(name, size=0, typeflag=b"0", mode=0o644):
    """A ustar header block."""
    block = bytearray(BLOCK)
    for offset, value in ((0, name), (100, b"%07o\0" % mode), (108, b"0000000\0"), (116, b"0000000\0"),
                          (124, b"%011o\0" % size), (136, b"%011o\0" % 1700000000), (148, b" " * 8),
                          (156, typeflag), (257, b"ustar\x0000")):
        block[offset:offset + len(value)] = value
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def pax_records(index, size):
    """``size`` bytes of pax records "LEN key=value\\n", each key new."""
    records = []
    length = 0
    number = 0
    while size - length > 1100:
        record = b" flood.%d.%d=%s\n" % (index, number, b"v" * 1000)
        record = b"%d%s" % (len(record) + 4, record)
        records.append(record)
        length += len(record)
        number += 1
    tail = size - length
    record = b" flood.%d.end=%s\n" % (index, b"v" * (tail - 30))
    record = b"%d%s" % (len(record) + len(str(len(record) + 4)), record)
    records.append(record)
    data = b"".join(records)
    assert len(data) <= size, (len(data), size)
    return data


def zeros(writer, size):
    chunk = bytes(MIB)
    while size > 0:
        writer.write(chunk[:min(size, MIB)])
        size -= MIB


class Output:
    """The tar stream, counted, through zstd into OUT, hashed."""

    def __init__(self, path):
        self.handle = open(path, "wb")
        self.sha = hashlib.sha256()
        self.size = 0
        self.tar_size = 0
        self.compressor = zstandard.ZstdCompressor(level=3).stream_writer(self, closefd=False)

    def write(self, data):  # called by zstd with compressed bytes
        self.sha.update(data)
        self.size += len(data)
        self.handle.write(data)
        return len(data)

    def tar(self, data):
        self.tar_size += len(data)
        self.compressor.write(data)

    def close(self):
        self.compressor.close()
        self.handle.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["pax-flood", "huge-file", "many-files"])
    parser.add_argument("out")
    parser.add_argument("--headers", type=int, default=1024)
    parser.add_argument("--size", type=int)
    parser.add_argument("--files", type=int, default=128)
    parser.add_argument("--manifest")
    parser.add_argument("--old-manifest", action="store_true")
    args = parser.parse_args()
    out = Output(args.out)
    if args.kind == "pax-flood":
        for index in range(args.headers):
            data = pax_records(index, MIB - BLOCK)
            out.tar(header(b"PaxHeader", len(data), b"x") + data + bytes(-len(data) % BLOCK))
        out.tar(header(b"after-the-flood", 1) + b"x" + bytes(BLOCK - 1))
    elif args.kind == "huge-file":
        size = args.size or 1 << 30
        out.tar(header(b"huge", size))
        out.tar_size += size
        zeros(out.compressor, size)
        out.tar(bytes(-size % BLOCK))
    else:
        size = args.size or MIB
        for index in range(args.files):
            out.tar(header(b"file-%04d" % index, size))
            out.tar_size += size
            zeros(out.compressor, size)
            out.tar(bytes(-size % BLOCK))
    out.tar(bytes(2 * BLOCK))
    out.close()
    sha = out.sha.hexdigest()
    if args.manifest:
        write_manifest(args.out, sha, out.size, args.manifest, None if args.old_manifest else out.tar_size)
    release = hashlib.sha256(args.manifest.encode()).hexdigest()[:12] if args.manifest else sha[:12]
    print(json.dumps({"size": out.size, "tar_size": out.tar_size, "sha256": sha, "release": release}))


if __name__ == "__main__":
    main()
