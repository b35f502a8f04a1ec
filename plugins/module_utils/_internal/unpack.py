# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe streaming extraction of a tar stream into a staging directory.

The archive is untrusted. Its headers are parsed here (ustar, GNU long names, pax) rather
than by ``tarfile``, which treats a corrupt header after the first member as a clean end of
the archive; here a truncated or corrupt stream is always an error.

Every file is created relative to a descriptor of its parent directory, and every directory
on the way is opened component by component with O_NOFOLLOW, starting from a descriptor of
the staging directory: the kernel never resolves a path through the tree being built, so a
symlink in the archive can never redirect a later member outside staging. Files are created
with O_EXCL, so nothing already there is ever opened or overwritten; a member listed twice is
refused instead.

Reading (download, checksum, decompression) runs in a thread ahead of the writer, so the
network, the decompressor and the file system work at the same time; see ``ReadAhead``.

What an archive may make the extraction spend is bounded (``Limits``): header bytes held in
memory, bytes unpacked, entries, path depth, and the free space left on the file system of
staging. The table of what the archive made is kept per directory (an id and a name per entry),
so its memory grows with the number of entries, not with their depth.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import os
import queue
import stat
import threading
import time

from ansible_collections.droot.core.plugins.module_utils._internal import libc
from ansible_collections.droot.core.plugins.module_utils._internal.common import OPEN_DIR, DrootError

BLOCK = 512
PATH_MAX = 4095
NAME_MAX = 255
XATTR_VALUE_MAX = 65536
MIB = 1 << 20
# The free space is read again at least after this much was written (or half the space to keep
# free, if less), so that other writers on the file system count too.
SPACE_RECHECK = 64 * MIB
CHUNK_SIZE = 4 << 20
# Big files are handed to writeback as soon as they are written, so the disk works during the
# extraction and the sync before the switch has less left to do.
EARLY_WRITEBACK = 1 << 20
READ_AHEAD_CHUNKS = 8

ALLOWED_XATTR_PREFIXES = (b"user.", b"trusted.", b"security.", b"system.posix_acl_")

_CREATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
_PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID
_CAPABILITY_XATTR = b"security.capability"

# Member kinds, as recorded for every non-directory created (directories are recorded by id);
# SKIPPED is a device node under /dev that was not created.
DIR, FILE, SYMLINK, OTHER, SKIPPED = "dir", "file", "symlink", "other", "skipped device"
ROOT = 0
# The jail mounts a /dev of its own over the root's: device nodes there are never used.
DEV = b"dev"

_TYPES = {
    b"0": FILE, b"\0": FILE, b"7": FILE,
    b"1": "hardlink", b"2": SYMLINK, b"3": "chr", b"4": "blk", b"5": DIR, b"6": "fifo",
}


def start_writeback(fd):
    """Start writing a file's dirty pages without waiting (sync_file_range); best effort."""
    try:
        libc.sync_file_range(fd, 0, 0, libc.SYNC_FILE_RANGE_WRITE)
    except OSError:
        pass


class UnpackError(DrootError):
    """The archive was refused or could not be written; staging is to be thrown away."""

    def __init__(self, msg, step="unpack", **details):
        super().__init__(msg, step=step, **details)


def show(name):
    """A member name made printable on one line (names may hold newlines or bad UTF-8)."""
    text = name.decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() else "\\x%02x" % ord(ch) for ch in text)
    return repr(text if len(text) <= 200 else text[:200] + "...")


def split_member_path(name, what="member"):
    """The path components of a member name, refusing anything that could leave the root."""
    if not name or b"\0" in name:
        raise UnpackError("archive has a %s with an empty or NUL-containing name: refusing it" % what)
    if name.startswith(b"/"):
        raise UnpackError(
            "archive %s %s has an absolute path: refusing the archive; "
            "rebuild it with paths relative to the root (docker export does this)" % (what, show(name)))
    if len(name) > PATH_MAX:
        raise UnpackError(
            "archive %s %s... is %d bytes long, over the %d-byte path limit: refusing the archive"
            % (what, show(name[:60]), len(name), PATH_MAX))
    parts = tuple(part for part in name.split(b"/") if part not in (b"", b"."))
    if b".." in parts:
        raise UnpackError(
            "archive %s %s climbs out of the root with '..': refusing the archive; "
            "rebuild it without '..' in member paths" % (what, show(name)))
    for part in parts:
        if len(part) > NAME_MAX:
            raise UnpackError(
                "archive %s %s has a path component of %d bytes, over the %d-byte name limit: "
                "refusing the archive" % (what, show(name[:120]), len(part), NAME_MAX))
    return parts


class Limits:
    """What one archive may make the extraction spend; each refusal names the option to raise.

    ``pax_member``: bytes of pax and GNU long-name headers one member comes with (global pax
    records included); ``pax_archive``: those bytes over the whole archive, global records
    counted again for every member they apply to; ``unpacked``: bytes of the uncompressed tar
    stream (None: no bound), ``unpacked_origin`` says where that number came from;
    ``entries``: entries created, directories the archive only implies included; ``depth``:
    path components of a member; ``min_free``: bytes to leave free on the file system of
    staging (None: 1% of its size).
    """

    def __init__(self, pax_member=MIB, pax_archive=256 * MIB, unpacked=None, unpacked_origin="as given",
                 entries=500000, depth=128, min_free=None):
        self.pax_member = pax_member
        self.pax_archive = pax_archive
        self.unpacked = unpacked
        self.unpacked_origin = unpacked_origin
        self.entries = entries
        self.depth = depth
        self.min_free = min_free

    def over_unpacked(self, where):
        return UnpackError(
            "the archive unpacks to more than %d bytes, the max_unpacked_bytes limit (%s), at %s: refusing it; "
            "set max_unpacked_bytes if the image really is that big" % (self.unpacked, self.unpacked_origin, where))


class SourceError(DrootError):
    """Reading the archive failed (network, storage); ``cause`` is the original exception."""

    def __init__(self, cause, offset):
        super().__init__("reading the archive failed after %d bytes of tar data: %s"
                         % (offset, str(cause) or type(cause).__name__), step="download")
        self.cause = cause


class Member:
    """One tar member as parsed from its headers."""

    __slots__ = ("name", "kind", "mode", "uid", "gid", "size", "mtime_ns", "linkname",
                 "devmajor", "devminor", "xattrs", "offset")

    def __init__(self):
        self.xattrs = None
        self.linkname = b""
        self.devmajor = self.devminor = 0


# ---------------------------------------------------------------------------------------------
# Reading ahead


class HashingReader:
    """Counts and hashes the raw (still compressed) bytes as they pass, for the checksum."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size=-1):
        data = self._raw.read(size)
        if data:
            self.sha256.update(data)
            self.size += len(data)
        return data

    def readable(self):
        return True

    def close(self):
        self._raw.close()


class ReadAhead:
    """Iterates over chunks of ``open_stream()`` read by a background thread.

    Downloading, hashing and decompressing release the GIL, so this thread runs on another core
    while the main thread writes files. The queue is bounded, so memory stays at
    ``depth * chunk_size``. An exception in the thread is raised again in the consumer.
    ``open_stream`` is called in the thread, so even the first bytes of a download are read
    there.
    """

    _DONE = object()

    def __init__(self, open_stream, chunk_size=CHUNK_SIZE, depth=READ_AHEAD_CHUNKS):
        self._open_stream = open_stream
        self._chunk_size = chunk_size
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="droot-read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        stream = None
        try:
            stream = self._open_stream()
            while not self._stop.is_set():
                chunk = stream.read(self._chunk_size)
                if not chunk:
                    break
                if not self._put(chunk):
                    return
            self._put(self._DONE)
        except BaseException as exc:  # pylint: disable=broad-except
            # Handed to the consumer, which raises it in the main thread.
            self._put(exc)
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # pylint: disable=broad-except
                    pass

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        """Stop the thread (it may be blocked in a read until its own timeout)."""
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=5)


class _Input:
    """Byte-exact reads over a sequence of chunks, without joining the chunks.

    No more than ``limits.unpacked`` bytes are taken from the chunks, trailing data included.
    """

    def __init__(self, chunks, limits):
        self._chunks = iter(chunks)
        self._buf = b""
        self._pos = 0
        self.offset = 0
        self.limits = limits
        self._received = 0

    def _advance(self):
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._buf = b""
                self._pos = 0
                return False
            except DrootError:
                raise
            except Exception as exc:  # pylint: disable=broad-except
                # Network and library errors arrive here from the read-ahead thread.
                raise SourceError(exc, self.offset)
            if chunk:
                self._received += len(chunk)
                if self.limits.unpacked is not None and self._received > self.limits.unpacked:
                    raise self.limits.over_unpacked("byte %d of its tar stream" % self.limits.unpacked)
                self._buf = chunk
                self._pos = 0
                return True

    def read(self, size):
        """Up to ``size`` bytes; fewer only at the end of the stream."""
        end = self._pos + size
        if end <= len(self._buf):
            data = self._buf[self._pos:end]
            self._pos = end
            self.offset += size
            return data
        parts = [self._buf[self._pos:]]
        have = len(parts[0])
        while have < size and self._advance():
            take = min(size - have, len(self._buf))
            parts.append(self._buf[:take])
            self._pos = take
            have += take
        self.offset += have
        return b"".join(parts)

    def write_to(self, fd, size):
        """Copy ``size`` bytes to ``fd``; returns how many were there before the stream ended."""
        done = 0
        while done < size:
            if self._pos >= len(self._buf) and not self._advance():
                return done
            take = min(size - done, len(self._buf) - self._pos)
            view = memoryview(self._buf)[self._pos:self._pos + take]
            while view:
                written = os.write(fd, view)
                view = view[written:]
            self._pos += take
            self.offset += take
            done += take
        return done

    def skip(self, size):
        done = 0
        while done < size:
            if self._pos >= len(self._buf) and not self._advance():
                return done
            take = min(size - done, len(self._buf) - self._pos)
            self._pos += take
            self.offset += take
            done += take
        return done

    def drain(self):
        """Read to the end, so the checksum and the compression frame cover every byte."""
        self.skip(len(self._buf) - self._pos)
        while self._advance():
            self.offset += len(self._buf)
            self._pos = len(self._buf)


# ---------------------------------------------------------------------------------------------
# Header parsing


def _number(field, what, offset):
    """A numeric header field: octal text (NUL or space terminated) or GNU base-256."""
    if field[0] & 0x80:
        # GNU base-256: big-endian, two's complement for negative values.
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xff:
            value -= 256 ** (len(field) - 1)
        return value
    end = field.find(b"\0")
    try:
        return int(field if end < 0 else field[:end], 8)
    except ValueError:
        if not (field if end < 0 else field[:end]).strip(b" "):
            return 0
        raise UnpackError(
            "the archive is corrupt: the %s field of the tar header at byte %d is not a number; "
            "export the archive again" % (what, offset))


def _cstring(field):
    return field.split(b"\0", 1)[0]


def _verify_checksum(header, offset):
    try:
        stored = _number(header[148:156], "checksum", offset)
    except UnpackError:
        stored = -1
    unsigned = sum(header[:148]) + 256 + sum(header[156:])
    if stored == unsigned:
        return
    signed = unsigned - 2 * (sum(b for b in header[:148] if b > 127) + sum(b for b in header[156:] if b > 127))
    if stored != signed:
        raise UnpackError(
            "the archive is corrupt: bad tar header checksum at byte %d; "
            "it is not a tar archive or it was damaged, export it again" % offset)


def not_tar(why):
    return UnpackError("the archive is not a tar archive: %s; check that src is an archive of docker export or "
                       "droot_export (tar, zstd or gzip)" % why)


def _pax_time(text, offset):
    """A pax time ``[-]seconds[.fraction]`` as integer nanoseconds."""
    sign = -1 if text.startswith(b"-") else 1
    whole, fraction = (text.lstrip(b"-").split(b".", 1) + [b""])[:2]
    try:
        seconds = int(whole or b"0")
        nanos = int((fraction + b"000000000")[:9]) if fraction else 0
    except ValueError:
        raise UnpackError("the archive is corrupt: bad pax mtime at byte %d" % offset)
    return sign * (seconds * 1000000000 + nanos)


def _pax_int(records, key, offset, field):
    if key not in records:
        return _number(field, key.decode(), offset)
    try:
        return int(records[key])
    except ValueError:
        raise UnpackError("the archive is corrupt: pax %s at byte %d is not a number; export it again"
                          % (key.decode(), offset))


def parse_pax(data, offset):
    """pax extended header records ``"%d %s=%s\\n"`` as a dict of bytes keys to bytes values."""
    records = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            length = 0
        record = data[pos:pos + length]
        if space < 0 or length <= space - pos or len(record) < length or not record.endswith(b"\n") \
                or b"=" not in record:
            raise UnpackError(
                "the archive is corrupt: malformed pax extended header at byte %d; "
                "export the archive again" % offset)
        key, value = record[space - pos + 1:-1].split(b"=", 1)
        records[key] = value
        pos += length
    return records


class TarReader:
    """Parses tar members from an ``_Input``; the caller consumes each member's data.

    Extended headers are held in memory until their member comes, so their bytes are counted
    against ``Limits.pax_member`` and ``Limits.pax_archive`` before they are read.
    """

    def __init__(self, source, limits):
        self.input = source
        self.limits = limits
        self.global_pax = {}
        self.global_bytes = 0
        self.header_bytes = 0

    def _charge(self, size, offset):
        """Count ``size`` more header bytes against the archive's limit."""
        self.header_bytes += size
        if self.header_bytes > self.limits.pax_archive:
            raise UnpackError(
                "the archive has more than %d bytes of pax and GNU long-name headers (global pax records counted "
                "for every member they apply to), the max_pax_bytes_per_archive limit, at byte %d: refusing it; "
                "raise max_pax_bytes_per_archive if the image really needs that much" % (self.limits.pax_archive, offset))

    def _read_meta(self, size, what, offset, member_bytes):
        if member_bytes + size > self.limits.pax_member:
            raise UnpackError(
                "the archive has more than %d bytes of pax and GNU long-name headers for one member, the "
                "max_pax_bytes_per_member limit, at byte %d: refusing it; raise max_pax_bytes_per_member if the image "
                "really needs that much" % (self.limits.pax_member, offset))
        self._charge(size, offset)
        data = self.input.read(size)
        padding = -size % BLOCK
        if len(data) < size or self.input.skip(padding) < padding:
            raise self.truncated("inside a %s header" % what)
        return data

    def truncated(self, where):
        return UnpackError(
            "the archive is truncated: it ended %s at byte %d; download or export it again"
            % (where, self.input.offset))

    def next(self):
        """The next member, or None at the end-of-archive marker."""
        pax = {}
        long_name = long_link = None
        # Global records apply to every member: they count for each.
        member_bytes = self.global_bytes
        while True:
            offset = self.input.offset
            header = self.input.read(BLOCK)
            if len(header) < BLOCK:
                if not header and offset == 0:
                    raise UnpackError("the archive is empty: export it again")
                if offset == 0 and header[257:262] != b"ustar":
                    raise not_tar("its data ends after %d bytes, before the first tar header is complete" % len(header))
                if not header and not pax and long_name is None and long_link is None:
                    raise self.truncated("without the tar end-of-archive blocks")
                raise self.truncated("inside a tar header")
            if header == bytes(BLOCK):
                if pax or long_name is not None or long_link is not None:
                    raise UnpackError(
                        "the archive is corrupt: an extended header at byte %d is not followed by "
                        "a member; export it again" % offset)
                return None
            if offset == 0 and header[257:262] != b"ustar":
                try:
                    _verify_checksum(header, offset)
                except UnpackError:
                    raise not_tar("its first 512 bytes are not a tar header")
            _verify_checksum(header, offset)
            typeflag = header[156:157]
            size = _number(header[124:136], "size", offset)
            if size < 0:
                raise UnpackError("the archive is corrupt: negative size at byte %d" % offset)
            if typeflag in (b"x", b"g"):
                records = parse_pax(self._read_meta(size, "pax", offset, member_bytes), offset)
                member_bytes += size
                if typeflag == b"g":
                    self.global_pax.update(records)
                    self.global_bytes += size
                else:
                    pax.update(records)
                continue
            if typeflag in (b"L", b"K"):
                value = _cstring(self._read_meta(size, "GNU long name", offset, member_bytes))
                member_bytes += size
                if typeflag == b"L":
                    long_name = value
                else:
                    long_link = value
                continue
            self._charge(self.global_bytes, offset)
            return self._member(header, offset, typeflag, size, pax, long_name, long_link)

    def _member(self, header, offset, typeflag, size, pax, long_name, long_link):
        records = dict(self.global_pax)
        records.update(pax)
        magic = header[257:263]
        name = _cstring(header[0:100])
        if magic == b"ustar\0":
            prefix = _cstring(header[345:500])
            if prefix:
                name = prefix + b"/" + name
        if long_name is not None:
            name = long_name
        name = records.get(b"path", name)
        member = Member()
        member.offset = offset
        member.name = name
        kind = _TYPES.get(typeflag)
        if kind is None or any(key.startswith(b"GNU.sparse.") for key in records):
            what = "sparse file" if typeflag == b"S" or kind is not None else "type %r" % typeflag.decode("latin-1")
            raise UnpackError(
                "archive member %s is a %s, which a root file system does not need: refusing the archive"
                % (show(name), what))
        if typeflag == b"\0" and name.endswith(b"/"):
            kind = DIR
        member.kind = kind
        member.mode = _number(header[100:108], "mode", offset) & 0o7777
        member.uid = _pax_int(records, b"uid", offset, header[108:116])
        member.gid = _pax_int(records, b"gid", offset, header[116:124])
        size = _pax_int(records, b"size", offset, header[124:136])
        if size < 0:
            raise UnpackError("the archive is corrupt: negative size at byte %d" % offset)
        if b"mtime" in records:
            member.mtime_ns = _pax_time(records[b"mtime"], offset)
        else:
            member.mtime_ns = _number(header[136:148], "mtime", offset) * 1000000000
        if member.uid < 0 or member.gid < 0 or member.uid > 0xfffffffe or member.gid > 0xfffffffe:
            raise UnpackError("archive member %s has an invalid owner %d:%d: refusing the archive"
                              % (show(name), member.uid, member.gid))
        linkname = _cstring(header[157:257])
        if long_link is not None:
            linkname = long_link
        member.linkname = records.get(b"linkpath", linkname)
        if kind in ("chr", "blk"):
            member.devmajor = _number(header[329:337], "devmajor", offset)
            member.devminor = _number(header[337:345], "devminor", offset)
        xattrs = {}
        for key, value in records.items():
            if key.startswith(b"SCHILY.xattr."):
                xattrs[key[len(b"SCHILY.xattr."):]] = value
        member.xattrs = xattrs or None
        # Only regular files carry data; a size on other kinds (hard links from some writers)
        # is ignored, as GNU tar and tarfile do.
        member.size = size if kind == FILE else 0
        return member


# ---------------------------------------------------------------------------------------------
# Writing


class _DirCache:
    """Descriptors of directories in staging by id, opened name by name with O_NOFOLLOW.

    Every directory opened on the way down is kept, so the next lookups near it (a sibling,
    the parent when directory metadata is applied bottom up) find their descriptors.
    """

    LIMIT = 128

    def __init__(self, root_fd, parents, names):
        self.root_fd = root_fd
        self.parents = parents
        self.names = names
        self.fds = {}

    def get(self, dir_id):
        """A descriptor of the directory ``dir_id``, walking down from the nearest cached one."""
        if dir_id == ROOT:
            return self.root_fd
        fd = self.fds.get(dir_id)
        if fd is not None:
            return fd
        chain = []
        ancestor = dir_id
        while ancestor != ROOT and ancestor not in self.fds:
            chain.append(ancestor)
            ancestor = self.parents[ancestor]
        fd = self.fds[ancestor] if ancestor != ROOT else self.root_fd
        # The deepest LIMIT // 2 of the walk are kept; those above are closed once passed.
        keep_from = len(chain) - self.LIMIT // 2
        for index, child in enumerate(reversed(chain)):
            parent = fd
            try:
                fd = os.open(self.names[child], OPEN_DIR, dir_fd=parent)
            finally:
                if 0 < index <= keep_from:
                    os.close(parent)
            if index >= keep_from:
                self.fds[child] = fd
        if len(self.fds) > self.LIMIT:
            # The oldest entries are the cold ones; the descriptor returned is the newest.
            for key in list(self.fds)[:len(self.fds) - self.LIMIT // 2]:
                os.close(self.fds.pop(key))
        return fd

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


class Unpacker:
    """Extracts members into an empty staging directory.

    ``same_owner`` applies the archive's numeric owners (the default when running as root);
    ``allow_devices`` permits character and block device nodes, without it those under /dev are
    skipped (counted in ``stats``) and any other refused; ``allow_privileged=False``
    refuses setuid and setgid files and file capabilities; ``limits`` bounds the work.

    Every entry made is recorded in ``entries`` under (id of its directory, name): a directory as
    its id, anything else as its kind. ``parents``, ``names`` and ``meta`` are indexed by
    directory id (0 is the root); a directory's id is above its parent's.
    """

    def __init__(self, staging, allow_devices=False, same_owner=None, limits=None, allow_privileged=True):
        self.allow_devices = allow_devices
        self.allow_privileged = allow_privileged
        self.limits = limits or Limits()
        self.same_owner = os.geteuid() == 0 if same_owner is None else same_owner
        self.root_fd = os.open(staging, OPEN_DIR)
        if os.listdir(self.root_fd):
            os.close(self.root_fd)
            raise UnpackError("staging directory %s is not empty" % staging)
        self.entries = {}
        self.parents = [ROOT]
        self.names = [b""]
        # (mode, uid, gid, mtime_ns, xattrs) of each directory the archive lists; None for one it only
        # implies, which gets what mkdir -p would give it (the root too, without a "./" member).
        self.meta = [None]
        self.dirs = _DirCache(self.root_fd, self.parents, self.names)
        self.root_listed = False
        self.euid = os.geteuid()
        self.egid = os.getegid()
        self.implied_meta = (0o755, self.euid, self.egid, None, None)
        self.entry_count = 0
        self.block = os.fstatvfs(self.root_fd).f_frsize or BLOCK
        self.space_left = 0
        # Members come in directory order: most have the parent of the one before.
        self.last_parent = None
        self.last_parent_id = ROOT
        self.stats = {"members": 0, "files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0,
                      "other": 0, "bytes": 0, "skipped_devices": 0}

    def close(self):
        self.dirs.close()
        os.close(self.root_fd)

    # -- limits --------------------------------------------------------------------------------

    def _count_entry(self):
        self.entry_count += 1
        if self.entry_count > self.limits.entries:
            raise UnpackError(
                "the archive has more than %d entries (files, directories, links and other nodes), the max_entries "
                "limit: refusing it; raise max_entries if the image really has that many" % self.limits.entries)

    def _reserve(self, size, name):
        """Take the space of an entry with ``size`` bytes of data from what staging may still use.

        The estimate rounds up to whole blocks plus one; the file system is asked again whenever
        the estimate runs out, and at least every SPACE_RECHECK bytes or half the reserve.
        """
        need = -(-size // self.block) * self.block + self.block
        if need <= self.space_left:
            self.space_left -= need
            return
        st = os.fstatvfs(self.root_fd)
        free = st.f_bavail * st.f_frsize
        if self.limits.min_free is None:
            reserve, origin = st.f_blocks * st.f_frsize // 100, "by default 1% of the file system"
        else:
            reserve, origin = self.limits.min_free, "min_free_space"
        if need > free - reserve:
            raise UnpackError(
                "no space left for the archive on the file system of dest: member %s needs %d bytes, %d are free and "
                "%d must stay free (%s): refusing it; free space there, or lower min_free_space"
                % (show(name), need, free, reserve, origin))
        self.space_left = min(free - reserve - need, SPACE_RECHECK, reserve // 2)

    def _check_privileges(self, member):
        """Refuse what would give its privileges to whoever runs it, unless allowed."""
        if self.allow_privileged:
            return
        if member.kind == FILE and member.mode & _PRIVILEGE_BITS:
            what = "a set%s file" % ("uid" if member.mode & stat.S_ISUID else "gid")
        elif member.xattrs and _CAPABILITY_XATTR in member.xattrs:
            what = "a file with capabilities (security.capability)"
        else:
            return
        raise UnpackError(
            "archive member %s is %s, and dest is reachable by host users, who could run it outside the jail with "
            "its privileges: refusing the archive; use layout releases (its releases directory is root's only), or "
            "set allow_privileged_files: true if every host user may have them" % (show(member.name), what))

    # -- paths ---------------------------------------------------------------------------------

    def _parent(self, parts, name):
        """The id of the directory holding ``parts``, creating missing ones, refusing symlinks."""
        parent = parts[:-1]
        if parent == self.last_parent:
            return self.last_parent_id
        dir_id = ROOT
        for depth, component in enumerate(parent):
            found = self.entries.get((dir_id, component))
            if found is None:
                found = self._new_dir(dir_id, component, None, name)
            elif found == SYMLINK:
                raise UnpackError(
                    "archive member %s would be written through the symlink %s, an earlier member: "
                    "refusing the archive, which tries to write outside its own tree"
                    % (show(name), show(b"/".join(parent[:depth + 1]))))
            elif isinstance(found, str):
                raise UnpackError(
                    "archive member %s needs %s to be a directory, but the archive made it a %s: "
                    "refusing the archive" % (show(name), show(b"/".join(parent[:depth + 1])), found))
            dir_id = found
        self.last_parent, self.last_parent_id = parent, dir_id
        return dir_id

    def _find(self, parts):
        """(id of the directory holding ``parts``, what is recorded for it), (None, None) if absent."""
        dir_id = ROOT
        for component in parts[:-1]:
            found = self.entries.get((dir_id, component))
            if not isinstance(found, int):
                return None, None
            dir_id = found
        return dir_id, self.entries.get((dir_id, parts[-1]))

    def _path(self, dir_id):
        names = []
        while dir_id != ROOT:
            names.append(self.names[dir_id])
            dir_id = self.parents[dir_id]
        return b"/".join(reversed(names))

    def _new_dir(self, parent_id, name, meta, member_name):
        self._count_entry()
        self._reserve(0, member_name)
        os.mkdir(name, 0o700, dir_fd=self.dirs.get(parent_id))
        dir_id = len(self.parents)
        self.parents.append(parent_id)
        self.names.append(name)
        self.meta.append(meta)
        self.entries[(parent_id, name)] = dir_id
        return dir_id

    def _claim(self, parent_id, name, member, kind):
        """Record the new non-directory ``name``; a name the archive made before is refused."""
        if (parent_id, name) in self.entries:
            raise self._duplicate(member)
        self._count_entry()
        self.entries[(parent_id, name)] = kind

    @staticmethod
    def _duplicate(member):
        return UnpackError(
            "archive member %s appears twice (duplicate entry at byte %d): refusing the archive; "
            "rebuild it without duplicate members" % (show(member.name), member.offset))

    # -- members -------------------------------------------------------------------------------

    def extract(self, reader, member):
        parts = split_member_path(member.name)
        if len(parts) > self.limits.depth:
            raise UnpackError(
                "archive member %s has %d path components, over the max_path_depth limit of %d: refusing the "
                "archive; raise max_path_depth if the image really nests that deep" % (show(member.name), len(parts),
                                                                                       self.limits.depth))
        self._check_privileges(member)
        self.stats["members"] += 1
        kind = member.kind
        if not parts:
            if kind != DIR:
                raise UnpackError("archive member %s names the root but is not a directory: refusing it"
                                  % show(member.name))
            if self.root_listed:
                raise UnpackError("archive lists the root directory twice: refusing the archive")
            self.root_listed = True
            self.meta[ROOT] = (member.mode, member.uid, member.gid, member.mtime_ns, member.xattrs)
            return None
        if kind == FILE:
            return self._file(reader, member, parts)
        if kind == DIR:
            return self._dir(member, parts)
        if kind == SYMLINK:
            return self._symlink(member, parts)
        if kind == "hardlink":
            return self._hardlink(member, parts)
        return self._special(member, parts)

    def _file(self, reader, member, parts):
        parent_id = self._parent(parts, member.name)
        self._claim(parent_id, parts[-1], member, FILE)
        if self.limits.unpacked is not None and reader.input.offset + member.size > self.limits.unpacked:
            raise self.limits.over_unpacked("member %s of %d bytes" % (show(member.name), member.size))
        self._reserve(member.size, member.name)
        # With umask 0 the file is created with its final permission bits (an O_CREAT open is
        # writable whatever the mode); setuid/setgid need a chmod after the chown that clears them.
        fd = os.open(parts[-1], _CREATE_FILE, member.mode & 0o777, dir_fd=self.dirs.get(parent_id))
        try:
            if member.size:
                written = reader.input.write_to(fd, member.size)
                if written < member.size:
                    raise reader.truncated("inside member %s (%d of %d bytes)"
                                           % (show(member.name), written, member.size))
                padding = -member.size % BLOCK
                if reader.input.skip(padding) < padding:
                    raise reader.truncated("inside member %s" % show(member.name))
                if member.size >= EARLY_WRITEBACK:
                    start_writeback(fd)
            self._owner(fd, member)
            if member.mode & _SPECIAL_BITS:
                os.chmod(fd, member.mode)
            if member.xattrs:
                self._xattrs(fd, member)
            os.utime(fd, ns=(member.mtime_ns, member.mtime_ns))
        finally:
            os.close(fd)
        self.stats["files"] += 1
        self.stats["bytes"] += member.size

    def _owner(self, target, member, **kwargs):
        if self.same_owner and (member.uid != self.euid or member.gid != self.egid):
            os.chown(target, member.uid, member.gid, **kwargs)

    def _xattrs(self, target, member, follow_symlinks=True):
        for key, value in sorted(member.xattrs.items()):
            if not key.startswith(ALLOWED_XATTR_PREFIXES) or b"\0" in key or len(key) > NAME_MAX:
                raise UnpackError(
                    "archive member %s has the extended attribute %s outside the user, trusted, "
                    "security and ACL namespaces: refusing the archive" % (show(member.name), show(key)))
            if len(value) > XATTR_VALUE_MAX:
                raise UnpackError("archive member %s has an oversized extended attribute %s: refusing it"
                                  % (show(member.name), show(key)))
            try:
                os.setxattr(target, key, value, follow_symlinks=follow_symlinks)
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                    raise UnpackError(
                        "the file system of dest does not support the extended attribute %s of member %s: "
                        "put dest on a file system with xattr support (ext4, xfs, btrfs, tmpfs)"
                        % (show(key), show(member.name)))
                raise

    def _dir(self, member, parts):
        parent_id = self._parent(parts, member.name)
        meta = (member.mode, member.uid, member.gid, member.mtime_ns, member.xattrs)
        existing = self.entries.get((parent_id, parts[-1]))
        if existing is None:
            self._new_dir(parent_id, parts[-1], meta, member.name)
            self.stats["dirs"] += 1
        elif isinstance(existing, int) and self.meta[existing] is None:
            # Implied by an earlier member, listed now.
            self.meta[existing] = meta
        else:
            raise self._duplicate(member)

    def _symlink(self, member, parts):
        if not member.linkname or len(member.linkname) > PATH_MAX:
            raise UnpackError("archive symlink %s has an empty or overlong target: refusing the archive"
                              % show(member.name))
        parent_id = self._parent(parts, member.name)
        self._claim(parent_id, parts[-1], member, SYMLINK)
        self._reserve(0, member.name)
        parent_fd = self.dirs.get(parent_id)
        # The target is stored as it is: nothing here ever follows it.
        os.symlink(member.linkname, parts[-1], dir_fd=parent_fd)
        self._owner(parts[-1], member, dir_fd=parent_fd, follow_symlinks=False)
        if member.xattrs:
            self._xattrs(self._proc_path(parent_fd, parts[-1]), member, follow_symlinks=False)
        os.utime(parts[-1], ns=(member.mtime_ns, member.mtime_ns), dir_fd=parent_fd, follow_symlinks=False)
        self.stats["symlinks"] += 1

    @staticmethod
    def _proc_path(dir_fd, name):
        # /proc/self/fd/N is our own descriptor of a directory already opened safely.
        return b"/proc/self/fd/%d/%s" % (dir_fd, name)

    def _hardlink(self, member, parts):
        target = split_member_path(member.linkname, "hard link target")
        target_dir, kind = self._find(target) if target else (None, None)
        if kind is None or isinstance(kind, int):
            raise UnpackError(
                "archive hard link %s points to %s, which is not an earlier file of the archive "
                "(a link outside the tree or to a directory): refusing the archive"
                % (show(member.name), show(member.linkname)))
        if kind == SKIPPED:
            # A link to a skipped node is that node under another name.
            return self._skip_device(member, parts, "a hard link to the device node %s" % show(member.linkname))
        parent_id = self._parent(parts, member.name)
        self._claim(parent_id, parts[-1], member, kind)
        self._reserve(0, member.name)
        # The target's directory was created by this run; reaching it never crosses a symlink.
        target_fd = os.dup(self.dirs.get(target_dir))
        try:
            os.link(target[-1], parts[-1], src_dir_fd=target_fd, dst_dir_fd=self.dirs.get(parent_id),
                    follow_symlinks=False)
        finally:
            os.close(target_fd)
        self.stats["hardlinks"] += 1

    def _skip_device(self, member, parts, what):
        """Leave out a device node under /dev (counted); refuse one anywhere else."""
        if len(parts) < 2 or parts[0] != DEV:
            raise UnpackError(
                "archive member %s is %s outside /dev: refusing the archive; set allow_devices: true if the image "
                "really needs device nodes" % (show(member.name), what))
        self._claim(self._parent(parts, member.name), parts[-1], member, SKIPPED)
        self.stats["skipped_devices"] += 1

    def _special(self, member, parts):
        if member.kind in ("chr", "blk"):
            if not self.allow_devices:
                return self._skip_device(member, parts, "a %s device node (%d, %d)" % (
                    "character" if member.kind == "chr" else "block", member.devmajor, member.devminor))
            file_type = stat.S_IFCHR if member.kind == "chr" else stat.S_IFBLK
            device = os.makedev(member.devmajor, member.devminor)
        else:
            file_type, device = stat.S_IFIFO, 0
        parent_id = self._parent(parts, member.name)
        self._claim(parent_id, parts[-1], member, OTHER)
        self._reserve(0, member.name)
        parent_fd = self.dirs.get(parent_id)
        os.mknod(parts[-1], 0o600 | file_type, device, dir_fd=parent_fd)
        # mknod never follows a symlink and the name was free (claimed above), so these calls
        # act on the node just made.
        self._owner(parts[-1], member, dir_fd=parent_fd, follow_symlinks=False)
        os.chmod(parts[-1], member.mode, dir_fd=parent_fd)
        if member.xattrs:
            self._xattrs(self._proc_path(parent_fd, parts[-1]), member, follow_symlinks=False)
        os.utime(parts[-1], ns=(member.mtime_ns, member.mtime_ns), dir_fd=parent_fd, follow_symlinks=False)
        self.stats["other"] += 1

    def finish(self):
        """Apply directory metadata last, each directory after those below it (higher ids):
        creating entries changes a directory's mtime."""
        now = time.time_ns()
        for dir_id in range(len(self.parents) - 1, -1, -1):
            mode, uid, gid, mtime_ns, xattrs = self.meta[dir_id] or self.implied_meta
            fd = os.open(self.names[dir_id], OPEN_DIR, dir_fd=self.dirs.get(self.parents[dir_id])) if dir_id \
                else os.dup(self.root_fd)
            try:
                if self.same_owner and (uid != self.euid or gid != self.egid):
                    os.chown(fd, uid, gid)
                os.chmod(fd, mode)
                if xattrs:
                    member = Member()
                    member.name = self._path(dir_id) or b"."
                    member.xattrs = xattrs
                    self._xattrs(fd, member)
                stamp = now if mtime_ns is None else mtime_ns
                os.utime(fd, ns=(stamp, stamp))
            finally:
                os.close(fd)


def _os_error(exc, member):
    name = show(member.name) if member is not None else "the archive"
    if exc.errno == errno.ENOSPC:
        return UnpackError("no space left on the device of dest while writing %s: "
                           "free space (or grow the file system) and run again" % name)
    if exc.errno == errno.EDQUOT:
        return UnpackError("disk quota exceeded while writing %s: raise the quota and run again" % name)
    if exc.errno == errno.ENAMETOOLONG:
        return UnpackError("archive member %s has a name too long for this file system: refusing it" % name)
    if exc.errno == errno.ELOOP:
        return UnpackError("archive member %s would be written through a symlink: refusing the archive"
                           % name)
    return UnpackError("cannot extract %s: %s" % (name, exc.strerror or exc))


def unpack(chunks, staging, allow_devices=False, same_owner=None, limits=None, allow_privileged=True):
    """Extract the tar stream given as an iterable of byte chunks into ``staging``.

    ``staging`` must be an empty directory; ``limits`` (``Limits``, its defaults when None)
    bound the work. Returns counters (members, files, dirs, symlinks, hardlinks, other, bytes,
    skipped_devices).
    Raises UnpackError, leaving a partial tree for the caller to remove; the stream is read to
    its end, so a checksum over it covers every byte.
    """
    limits = limits or Limits()
    unpacker = Unpacker(staging, allow_devices=allow_devices, same_owner=same_owner, limits=limits,
                        allow_privileged=allow_privileged)
    old_umask = os.umask(0)
    # Extraction makes no reference cycles; the cyclic collector would only rescan the growing
    # tables of paths again and again.
    collecting = gc.isenabled()
    gc.disable()
    member = None
    try:
        source = _Input(chunks, limits)
        reader = TarReader(source, limits)
        try:
            while True:
                member = reader.next()
                if member is None:
                    break
                unpacker.extract(reader, member)
            member = None
            unpacker.finish()
        except OSError as exc:
            raise _os_error(exc, member)
        source.drain()
        return unpacker.stats
    finally:
        if collecting:
            gc.enable()
        os.umask(old_umask)
        unpacker.close()
