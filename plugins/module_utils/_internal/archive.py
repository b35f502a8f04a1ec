# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compression streams both ways (zstd, gzip, none) and tar stream prepending.

Everything here streams: nothing holds a whole archive in memory.
"""

from __future__ import annotations

import io
import tarfile
import time
import zlib

from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, OptionalLibrary

ZSTANDARD = OptionalLibrary("zstandard")

COMPRESSIONS = ("zstd", "gzip", "none")
# zstd level 3 is zstd's own default: fast and close to gzip -9 in ratio.
DEFAULT_LEVELS = {"zstd": 3, "gzip": 6}
LEVEL_RANGES = {"zstd": (1, 22), "gzip": (1, 9)}

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
# Formats a user may hand us by mistake; named so the error says what the input is.
UNSUPPORTED_MAGICS = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x89LZO", "lzop"),
    (b"\x04\x22\x4d\x18", "lz4"),
)
HEAD_SIZE = 6
ZSTD_JOB_SIZE = 2 << 20
READ_SIZE = 1 << 20


class ArchiveError(DrootError):
    """Corrupt, truncated or unsupported archive data."""


def detect_compression(head):
    """Name the compression of a stream from its first bytes: ``zstd``, ``gzip`` or ``none``."""
    if head.startswith(ZSTD_MAGIC) or (head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50):
        # A zstd frame, or a zstd skippable frame (magic 0x184D2A5?).
        return "zstd"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    for magic, name in UNSUPPORTED_MAGICS:
        if head.startswith(magic):
            raise ArchiveError(
                "the archive is %s-compressed, which droot.core does not read: "
                "re-export it with compression zstd, gzip or none" % name)
    return "none"


def check_level(compression, level):
    """Return the effective compression level, or raise for one out of range."""
    if compression == "none" or level is None:
        return DEFAULT_LEVELS.get(compression)
    low, high = LEVEL_RANGES[compression]
    if not low <= level <= high:
        raise ArchiveError(
            "compression_level %d is out of range for %s: use %d to %d" % (level, compression, low, high))
    return level


class _Uncompressed(io.RawIOBase):
    """Pass-through writer whose close() leaves the underlying file open."""

    def __init__(self, raw):
        super().__init__()
        self._raw = raw

    def writable(self):
        return True

    def write(self, data):
        self._raw.write(data)
        return len(data)


def compressing_writer(raw, compression, level=None, threads=-1):
    """A writable file object that compresses into ``raw``.

    ``close()`` finishes the compressed stream but leaves ``raw`` open. ``threads=-1`` lets
    zstd use one worker per CPU; gzip is single-threaded.
    """
    if compression not in COMPRESSIONS:
        raise ArchiveError("unknown compression %r: use one of %s" % (compression, ", ".join(COMPRESSIONS)))
    level = check_level(compression, level)
    if compression == "zstd":
        if ZSTANDARD.module is None:
            raise ArchiveError("zstd compression needs the Python library zstandard: install it or use gzip")
        # Small jobs keep the worker buffers (about 3 jobs per thread) small at no cost in speed;
        # the frame checksum lets any reader detect corruption, not only one holding a manifest.
        params = ZSTANDARD.module.ZstdCompressionParameters.from_level(
            level, threads=threads, job_size=ZSTD_JOB_SIZE if threads else 0, write_checksum=True)
        compressor = ZSTANDARD.module.ZstdCompressor(compression_params=params)
        return compressor.stream_writer(raw, closefd=False, write_size=READ_SIZE)
    if compression == "gzip":
        # mtime=0 keeps the output a pure function of the input.
        return _GzipWriter(raw, level)
    return _Uncompressed(raw)


class _GzipWriter(io.RawIOBase):
    """gzip member writer; zlib releases the GIL, so the upload threads keep running."""

    def __init__(self, raw, level):
        super().__init__()
        self._raw = raw
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def writable(self):
        return True

    def write(self, data):
        out = self._compressor.compress(data)
        if out:
            self._raw.write(out)
        return len(data)

    def close(self):
        if not self.closed:
            self._raw.write(self._compressor.flush())
        super().close()


class _ReadIntoMixin:
    """readinto() for readers that implement read()."""

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _PrefixedReader(_ReadIntoMixin, io.RawIOBase):
    """Reads ``head`` first, then the rest of ``raw``; lets us sniff magic bytes of any stream."""

    def __init__(self, head, raw):
        super().__init__()
        self._head = head
        self._raw = raw

    def read(self, size=-1):
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._raw.read(size)

    def close(self):
        if not self.closed:
            self._raw.close()
        super().close()


class _GzipReader(_ReadIntoMixin, io.RawIOBase):
    """gzip members read as one stream; output bounded per read, truncation detected."""

    def __init__(self, raw):
        super().__init__()
        self._raw = raw
        self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = b""
        self._in_member = False

    def read(self, size=-1):
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(READ_SIZE), b""))
        while True:
            if not self._input:
                self._input = self._raw.read(READ_SIZE)
                if not self._input:
                    if self._in_member:
                        raise ArchiveError("the gzip archive is truncated: export it again")
                    return b""
            try:
                data = self._decompressor.decompress(self._input, size)
            except zlib.error as exc:
                raise ArchiveError("the gzip archive is corrupt (%s): export it again" % exc)
            self._input = self._decompressor.unconsumed_tail
            self._in_member = True
            if self._decompressor.eof:
                # A following member, if any, starts in the data this one did not use.
                self._input = self._decompressor.unused_data
                self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._in_member = False
            if data:
                return data

    def close(self):
        if not self.closed:
            self._raw.close()
        super().close()


class ZstdFrameWalker:
    """Follows zstd frame and block headers (RFC 8878) to tell whether the input ended cleanly.

    zstandard's stream reader bounds memory per read but returns a short stream silently when
    the input is cut in the middle of a frame; this walker makes that an error.
    """

    SKIPPABLE_LOW, SKIPPABLE_HIGH = 0x184D2A50, 0x184D2A5F
    ZSTD_MAGIC_NUMBER = 0xFD2FB528
    HEADER_SIZES = {"magic": 4, "descriptor": 1, "skippable-size": 4, "block": 3}

    def __init__(self):
        self._buffer = b""
        self._skip = 0
        self._state = "magic"
        self._checksum = False
        self._header_rest = 0

    @property
    def at_frame_boundary(self):
        return self._state == "magic" and not self._buffer and not self._skip

    def feed(self, data):
        view = memoryview(data)
        while view:
            if self._skip:
                taken = min(self._skip, len(view))
                self._skip -= taken
                view = view[taken:]
                continue
            need = self.HEADER_SIZES.get(self._state, self._header_rest)
            taken = min(need - len(self._buffer), len(view))
            self._buffer += bytes(view[:taken])
            view = view[taken:]
            if len(self._buffer) == need:
                header, self._buffer = self._buffer, b""
                self._advance(header)

    def _advance(self, header):
        if self._state == "magic":
            number = int.from_bytes(header, "little")
            if number == self.ZSTD_MAGIC_NUMBER:
                self._state = "descriptor"
            elif self.SKIPPABLE_LOW <= number <= self.SKIPPABLE_HIGH:
                self._state = "skippable-size"
            else:
                raise ArchiveError("the zstd archive is corrupt (bad frame magic): export it again")
        elif self._state == "skippable-size":
            self._skip = int.from_bytes(header, "little")
            self._state = "magic"
        elif self._state == "descriptor":
            descriptor = header[0]
            fcs_flag, single_segment = descriptor >> 6, (descriptor >> 5) & 1
            self._checksum = bool((descriptor >> 2) & 1)
            window = 0 if single_segment else 1
            dict_id = (0, 1, 2, 4)[descriptor & 3]
            fcs = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
            self._header_rest = window + dict_id + fcs
            self._state = "header" if self._header_rest else "block"
        elif self._state == "header":
            self._state = "block"
        else:
            value = int.from_bytes(header, "little")
            last, block_type, size = value & 1, (value >> 1) & 3, value >> 3
            if block_type == 3:
                raise ArchiveError("the zstd archive is corrupt (reserved block type): export it again")
            self._skip = 1 if block_type == 1 else size
            if last:
                self._skip += 4 if self._checksum else 0
                self._state = "magic"


class _WalkedSource(_ReadIntoMixin, io.RawIOBase):
    """Compressed input for zstandard that raises at EOF when a frame is incomplete."""

    def __init__(self, raw):
        super().__init__()
        self._raw = raw
        self._walker = ZstdFrameWalker()

    def read(self, size=-1):
        data = self._raw.read(size)
        if data:
            self._walker.feed(data)
        elif not self._walker.at_frame_boundary:
            raise ArchiveError("the zstd archive is truncated: it ended inside a frame; export it again")
        return data

    def close(self):
        if not self.closed:
            self._raw.close()
        super().close()


class _ZstdReader(_ReadIntoMixin, io.RawIOBase):
    """zstd frames read as one stream, with output bounded by the read size."""

    def __init__(self, raw):
        super().__init__()
        self._source = _WalkedSource(raw)
        self._reader = ZSTANDARD.module.ZstdDecompressor().stream_reader(
            self._source, read_size=READ_SIZE, read_across_frames=True, closefd=False)

    def read(self, size=-1):
        try:
            return self._reader.read(size)
        except ZSTANDARD.module.ZstdError as exc:
            raise ArchiveError("the zstd archive is corrupt (%s): export it again" % exc)

    def close(self):
        if not self.closed:
            self._reader.close()
            self._source.close()
        super().close()


def decompressing_reader(raw):
    """A buffered readable file object over ``raw``, its compression detected from the first bytes.

    Corrupt or truncated input raises ArchiveError; memory stays bounded whatever the ratio.
    """
    head = b""
    while len(head) < HEAD_SIZE:
        chunk = raw.read(HEAD_SIZE - len(head))
        if not chunk:
            break
        head += chunk
    compression = detect_compression(head)
    prefixed = _PrefixedReader(head, raw)
    if compression == "none":
        return io.BufferedReader(prefixed, READ_SIZE)
    if compression == "gzip":
        return io.BufferedReader(_GzipReader(prefixed), READ_SIZE)
    if ZSTANDARD.module is None:
        raise ArchiveError("the archive is zstd-compressed: install the Python library zstandard to read it")
    return io.BufferedReader(_ZstdReader(prefixed), READ_SIZE)


class TarEntry:
    """A synthetic tar member: a regular file with ``data``, or a directory when ``data`` is None."""

    def __init__(self, name, data=None, mode=None, mtime=None):
        self.name = name
        self.data = data
        self.mode = mode if mode is not None else (0o755 if data is None else 0o644)
        self.mtime = int(time.time()) if mtime is None else mtime

    def to_bytes(self):
        info = tarfile.TarInfo(self.name)
        info.mode = self.mode
        info.mtime = self.mtime
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        if self.data is None:
            info.type = tarfile.DIRTYPE
            return info.tobuf(format=tarfile.PAX_FORMAT)
        info.size = len(self.data)
        padding = (-len(self.data)) % tarfile.BLOCKSIZE
        return info.tobuf(format=tarfile.PAX_FORMAT) + self.data + b"\0" * padding


def prepend_entries(tar_stream, entries, chunk_size=READ_SIZE):
    """Yield the synthetic ``entries`` as tar members, then ``tar_stream`` unchanged.

    ``tar_stream`` is a readable file object or an iterable of byte chunks; the original's own
    end-of-archive blocks end the result.
    """
    for entry in entries:
        yield entry.to_bytes()
    if hasattr(tar_stream, "read"):
        yield from iter(lambda: tar_stream.read(chunk_size), b"")
    else:
        for chunk in tar_stream:
            if chunk:
                yield chunk
