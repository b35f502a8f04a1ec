# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import archive

# Mixed content: incompressible, long runs and text, so every block type appears.
PAYLOAD = os.urandom(300000) + b"\0" * 3000000 + b"droot " * 200000


def compress(data, compression, level=None, write=65536):
    out = io.BytesIO()
    writer = archive.compressing_writer(out, compression, level=level)
    for start in range(0, len(data), write):
        writer.write(data[start:start + write])
    writer.close()
    assert not out.closed, "close() must leave the underlying file open"
    return out.getvalue()


def read_all(blob, size=10240):
    reader = archive.decompressing_reader(io.BytesIO(blob))
    return b"".join(iter(lambda: reader.read(size), b""))


@pytest.mark.parametrize("compression", archive.COMPRESSIONS)
def test_round_trip(compression):
    blob = compress(PAYLOAD, compression)
    assert archive.detect_compression(blob[:6]) == compression
    assert read_all(blob) == PAYLOAD


@pytest.mark.parametrize("compression, tool", [("zstd", "zstd"), ("gzip", "gzip")])
def test_output_reads_with_the_command_line_tool(compression, tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed" % tool)
    blob = compress(PAYLOAD, compression)
    assert subprocess.run([tool, "-dc"], input=blob, stdout=subprocess.PIPE, check=True).stdout == PAYLOAD


def test_gzip_output_matches_the_gzip_module():
    assert gzip.decompress(compress(PAYLOAD, "gzip", level=1)) == PAYLOAD


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_concatenated_frames_read_as_one_stream(compression):
    blob = compress(b"first", compression) + compress(PAYLOAD, compression)
    assert read_all(blob) == b"first" + PAYLOAD


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
@pytest.mark.parametrize("cut", [10, 0.5, -3])
def test_truncated_input_raises(compression, cut):
    blob = compress(PAYLOAD, compression)
    end = int(len(blob) * cut) if isinstance(cut, float) else (cut if cut > 0 else len(blob) + cut)
    with pytest.raises(archive.ArchiveError, match="truncated"):
        read_all(blob[:end])


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_corrupt_input_raises(compression):
    blob = bytearray(compress(PAYLOAD, compression))
    # Flip a byte inside the incompressible part, where only a checksum can notice.
    blob[len(blob) // 3] ^= 0xFF
    with pytest.raises(archive.ArchiveError, match="corrupt"):
        read_all(bytes(blob))


def test_zstd_read_memory_is_bounded_for_highly_compressible_input():
    blob = compress(b"\0" * (64 << 20), "zstd")
    assert len(blob) < 1 << 20
    reader = archive.decompressing_reader(io.BytesIO(blob))
    # Each read returns at most what was asked for, so a 64 MiB run never sits in memory at once.
    assert len(reader.read(4096)) == 4096
    assert sum(len(chunk) for chunk in iter(lambda: reader.read(1 << 20), b"")) == (64 << 20) - 4096


@pytest.mark.parametrize("head, name", [(b"\xfd7zXZ\x00", "xz"), (b"BZh91AY", "bzip2")])
def test_unsupported_compression_is_named(head, name):
    with pytest.raises(archive.ArchiveError, match=name):
        archive.detect_compression(head)


def test_plain_tar_is_none():
    assert archive.detect_compression(b"bin/\0\0") == "none"
    assert archive.detect_compression(b"") == "none"


def test_level_out_of_range_is_refused():
    with pytest.raises(archive.ArchiveError, match="1 to 22"):
        archive.compressing_writer(io.BytesIO(), "zstd", level=30)
    with pytest.raises(archive.ArchiveError, match="1 to 9"):
        archive.compressing_writer(io.BytesIO(), "gzip", level=0)


def test_unknown_compression_is_refused():
    with pytest.raises(archive.ArchiveError, match="zstd, gzip, none"):
        archive.compressing_writer(io.BytesIO(), "lzma")


def make_tar(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("as_chunks", [False, True])
def test_prepend_entries_puts_members_first_and_keeps_the_original(as_chunks):
    original = make_tar([("bin/app", b"x" * 1000), ("etc/hostname", b"")])
    stream = [original[i:i + 700] for i in range(0, len(original), 700)] if as_chunks else io.BytesIO(original)
    entries = [
        archive.TarEntry(".drootenv", b"A=1\n"),
        archive.TarEntry(".droot"),
        archive.TarEntry(".droot/config.json", b"{}", mode=0o600),
    ]
    combined = b"".join(archive.prepend_entries(stream, entries, chunk_size=512))
    assert combined.endswith(original)
    with tarfile.open(fileobj=io.BytesIO(combined), mode="r|") as tar:
        members = [(m.name, m.type, m.mode, m.uid, tar.extractfile(m).read() if m.isfile() else None)
                   for m in tar]
    assert members == [
        (".drootenv", tarfile.REGTYPE, 0o644, 0, b"A=1\n"),
        (".droot", tarfile.DIRTYPE, 0o755, 0, None),
        (".droot/config.json", tarfile.REGTYPE, 0o600, 0, b"{}"),
        ("bin/app", tarfile.REGTYPE, 0o644, 0, b"x" * 1000),
        ("etc/hostname", tarfile.REGTYPE, 0o644, 0, b""),
    ]


def test_prepend_entries_pads_to_tar_blocks():
    for size in (0, 1, 511, 512, 513):
        assert len(archive.TarEntry("f", b"y" * size).to_bytes()) % tarfile.BLOCKSIZE == 0


def test_zstd_frame_walker_follows_skippable_frames():
    skippable = (0x184D2A50).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    assert read_all(skippable + compress(b"data", "zstd")) == b"data"
    walker = archive.ZstdFrameWalker()
    walker.feed(skippable[:6])
    assert not walker.at_frame_boundary
    walker.feed(skippable[6:])
    assert walker.at_frame_boundary
