# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import stat
import subprocess
import tarfile
import time

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import archive, releases, unpack
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

ROOT = os.geteuid() == 0
CORPUS_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "integration", "targets",
                           "droot_fetch", "files", "hostile_corpus.py")


def load_corpus():
    spec = importlib.util.spec_from_file_location("hostile_corpus", CORPUS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = load_corpus()


def chunks(data, size=65536):
    return [data[start:start + size] for start in range(0, len(data), size)]


def extract(data, staging, chunk_size=65536, **kwargs):
    """Unpack ``data`` (possibly compressed) the way droot_fetch does: through the read-ahead."""
    os.makedirs(staging, exist_ok=True)
    reader = unpack.ReadAhead(lambda: archive.decompressing_reader(io.BytesIO(data)), chunk_size=chunk_size)
    try:
        return unpack.unpack(reader, staging, **kwargs)
    finally:
        reader.close()


def everything_under(path):
    found = set()
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(top, name), path))
    return found


def rich_tar(fmt=tarfile.PAX_FORMAT):
    """An archive with what a root needs: owners, special bits, links, long names, xattrs."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, mtime=1600000000,
                linkname="", xattrs=None):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            info.uid, info.gid = uid, gid
            info.mtime = mtime
            info.linkname = linkname
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            if xattrs and fmt == tarfile.PAX_FORMAT:
                info.pax_headers = {"SCHILY.xattr." + key: value for key, value in xattrs.items()}
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("./", tarfile.DIRTYPE, mode=0o755)
        add("usr/", tarfile.DIRTYPE, mode=0o755)
        add("usr/bin/", tarfile.DIRTYPE, mode=0o755, mtime=1500000000)
        add("usr/bin/sudo", data=b"#!/bin/sh\n", mode=0o4755)
        add("usr/bin/wall", data=b"#!/bin/sh\n", mode=0o2755, gid=5)
        add("usr/bin/ping", data=b"\x7fELF" + b"\0" * 100, mode=0o755,
            xattrs={"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12,
                    "user.note": "hello"})
        add("usr/bin/link", tarfile.LNKTYPE, linkname="usr/bin/sudo")
        add("usr/lib/", tarfile.DIRTYPE, mode=0o755)
        add("usr/lib/libx.so", tarfile.SYMTYPE, linkname="../../lib/libx.so.1", mode=0o777)
        add("tmp/", tarfile.DIRTYPE, mode=0o1777)
        add("home/", tarfile.DIRTYPE, mode=0o755)
        add("home/app/", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000)
        add("home/app/big", data=os.urandom(700000), uid=1000, gid=1000, mtime=1234567890)
        add("home/app/" + "n" * 150 + "/", tarfile.DIRTYPE, mode=0o755)
        add("home/app/" + "n" * 150 + "/" + "m" * 200, data=b"long")
        add("run/", tarfile.DIRTYPE, mode=0o755)
        add("run/fifo", tarfile.FIFOTYPE, mode=0o600)
        add("srv/", tarfile.DIRTYPE, mode=0o755)
        add("srv/high-uid", data=b"x", uid=3000000, gid=3000001)
        add("readonly/", tarfile.DIRTYPE, mode=0o555)
        add("readonly/file", data=b"r", mode=0o444)
    return out.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_root_filesystem_is_kept(tmp_path, fmt, compression):
    data = rich_tar(fmt)
    if compression == "gzip":
        data = gzip.compress(data)
    elif compression == "zstd":
        data = corpus.zstd(data)
    staging = str(tmp_path / "staging")
    stats = extract(data, staging, same_owner=True)
    assert stats["files"] == 7 and stats["hardlinks"] == 1 and stats["symlinks"] == 1

    def st(name):
        return os.lstat(os.path.join(staging, name))

    assert stat.S_IMODE(st("usr/bin/sudo").st_mode) == 0o4755
    assert stat.S_IMODE(st("usr/bin/wall").st_mode) == 0o2755 and st("usr/bin/wall").st_gid == 5
    assert stat.S_IMODE(st("tmp").st_mode) == 0o1777
    assert stat.S_IMODE(st("home/app").st_mode) == 0o700
    assert (st("home/app").st_uid, st("home/app").st_gid) == (1000, 1000)
    assert (st("srv/high-uid").st_uid, st("srv/high-uid").st_gid) == (3000000, 3000001)
    assert st("usr/bin/link").st_ino == st("usr/bin/sudo").st_ino
    assert os.readlink(os.path.join(staging, "usr/lib/libx.so")) == "../../lib/libx.so.1"
    assert stat.S_ISFIFO(st("run/fifo").st_mode)
    assert st("home/app/big").st_mtime == 1234567890 and st("home/app/big").st_size == 700000
    assert st("usr/bin").st_mtime == 1500000000, "directory mtimes are applied after their contents"
    assert stat.S_IMODE(st("readonly").st_mode) == 0o555
    assert stat.S_IMODE(st("readonly/file").st_mode) == 0o444
    assert os.path.exists(os.path.join(staging, "home/app", "n" * 150, "m" * 200))
    assert stat.S_IMODE(os.stat(staging).st_mode) == 0o755, "the ./ member sets the root's mode"
    if fmt == tarfile.PAX_FORMAT:
        ping = os.path.join(staging, "usr/bin/ping")
        assert os.getxattr(ping, "user.note") == b"hello"
        assert os.getxattr(ping, "security.capability")[:4] == b"\x01\x00\x00\x02"
        assert stat.S_IMODE(st("usr/bin/ping").st_mode) == 0o755


@pytest.mark.skipif(not ROOT, reason="owners and file capabilities need root")
def test_same_tree_as_gnu_tar(tmp_path):
    """GNU tar -xp and unpack give the same tree, compared entry by entry."""
    data = rich_tar()
    gnu = tmp_path / "gnu"
    gnu.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-xpf", "-", "-C", str(gnu)], input=data,
                   check=True)
    extract(data, str(tmp_path / "ours"))
    digest = load_digest()
    assert digest.digest(str(tmp_path / "ours")) == digest.digest(str(gnu))


def load_digest():
    path = os.path.join(os.path.dirname(CORPUS_PATH), "tree_digest.py")
    spec = importlib.util.spec_from_file_location("tree_digest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("chunk_size", [1, 7, 511, 512, 513, 100000])
def test_chunk_boundaries_do_not_matter(tmp_path, chunk_size):
    data = rich_tar()
    staging = tmp_path / "s"
    staging.mkdir()
    stats = unpack.unpack(chunks(data, chunk_size), str(staging), same_owner=ROOT)
    assert stats["members"] == 21
    assert (staging / "home/app/big").stat().st_size == 700000


CASES = corpus.cases("/nonexistent-escape")


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_hostile_archive_is_refused(tmp_path, case):
    name, expect, manifest = case[0], case[3], case[4]
    escape = tmp_path / "escape"
    escape.mkdir()
    # Rebuild the case aimed at this test's own escape directory.
    data = {entry[0]: entry[1] for entry in corpus.cases(str(escape))}[name]
    staging = tmp_path / "a" / "b" / "staging"
    before = everything_under(str(tmp_path))
    if manifest is not None:
        # The archive itself is fine; the module catches it with the checksum.
        extract(data, str(staging))
        return
    with pytest.raises(DrootError) as caught:
        extract(data, str(staging))
    message = str(caught.value)
    assert expect in message
    assert "\n" not in message
    after = everything_under(str(tmp_path))
    outside = {path for path in after - before if not path.startswith("a/b/staging")}
    assert outside == {"a", "a/b"}
    assert not list(escape.iterdir())


def test_devices_allowed_on_request(tmp_path):
    if not ROOT:
        pytest.skip("mknod needs root")
    data = corpus.member(b"dev/null", typeflag=b"3", devmajor=1, devminor=3, mode=0o666) + corpus.end()
    extract(data, str(tmp_path / "s"), allow_devices=True)
    node = os.lstat(tmp_path / "s" / "dev" / "null")
    assert stat.S_ISCHR(node.st_mode) and os.major(node.st_rdev) == 1 and os.minor(node.st_rdev) == 3
    assert stat.S_IMODE(node.st_mode) == 0o666


def debootstrap_dev():
    """/dev as a debootstrap or mmdebstrap tarball has it: nodes, a directory and a symlink."""
    return (corpus.directory(b"./dev/") + corpus.member(b"./dev/null", typeflag=b"3", devmajor=1, devminor=3, mode=0o666)
            + corpus.member(b"./dev/zero", typeflag=b"3", devmajor=1, devminor=5, mode=0o666)
            + corpus.member(b"./dev/loop0", typeflag=b"4", devmajor=7, devminor=0, mode=0o660)
            + corpus.directory(b"./dev/pts/") + corpus.member(b"./dev/pts/ptmx", typeflag=b"3", devmajor=5, devminor=2)
            + corpus.symlink(b"./dev/fd", b"/proc/self/fd") + corpus.member(b"./etc/hostname", b"deb\n"))


def test_device_nodes_under_dev_are_skipped_and_counted(tmp_path):
    stats = extract(debootstrap_dev() + corpus.end(), str(tmp_path / "s"))
    assert (stats["skipped_devices"], stats["other"], stats["dirs"], stats["symlinks"]) == (4, 0, 2, 1)
    assert sorted(os.listdir(tmp_path / "s" / "dev")) == ["fd", "pts"]
    assert os.listdir(tmp_path / "s" / "dev" / "pts") == []
    assert (tmp_path / "s" / "etc" / "hostname").read_bytes() == b"deb\n"


@pytest.mark.parametrize("data", [
    corpus.member(b"usr/dev/null", typeflag=b"3", devmajor=1, devminor=3),
    corpus.member(b"dev", typeflag=b"3", devmajor=1, devminor=3),
    corpus.directory(b"dev/") + corpus.member(b"dev/mem", typeflag=b"3", devmajor=1, devminor=1)
    + corpus.hardlink(b"etc/mem", b"dev/mem"),
], ids=["elsewhere", "dev-itself", "linked-out-of-dev"])
def test_device_nodes_anywhere_else_stay_refused(tmp_path, data):
    with pytest.raises(unpack.UnpackError, match="device node .* outside /dev: refusing the archive; set allow_devices: true"):
        extract(data + corpus.end(), str(tmp_path / "s"))


def test_a_hard_link_in_dev_to_a_skipped_node_is_skipped_too(tmp_path):
    data = (corpus.directory(b"dev/") + corpus.member(b"dev/null", typeflag=b"3", devmajor=1, devminor=3)
            + corpus.hardlink(b"dev/null2", b"dev/null") + corpus.end())
    assert extract(data, str(tmp_path / "s"))["skipped_devices"] == 2
    assert os.listdir(tmp_path / "s" / "dev") == []


def test_allow_devices_keeps_the_nodes_under_dev(tmp_path):
    if not ROOT:
        pytest.skip("mknod needs root")
    stats = extract(debootstrap_dev() + corpus.end(), str(tmp_path / "s"), allow_devices=True)
    assert (stats["skipped_devices"], stats["other"]) == (0, 4)
    assert stat.S_ISBLK(os.lstat(tmp_path / "s" / "dev" / "loop0").st_mode)


@pytest.mark.parametrize("data, fragment", [
    (b"this is not a tar\n", "its data ends after 18 bytes, before the first tar header is complete"),
    ((corpus.member(b"f", b"x") + corpus.end())[:1], "its data ends after 1 bytes, before the first tar header"),
    (b"#!/bin/sh\n" * 100, "its first 512 bytes are not a tar header"),
    (gzip.compress(b"<html>404</html>\n"), "its data ends after 17 bytes, before the first tar header is complete"),
], ids=["text", "one-byte", "script", "gzip-of-text"])
def test_data_that_is_no_tar_archive_says_so(tmp_path, data, fragment):
    with pytest.raises(unpack.UnpackError) as caught:
        extract(data, str(tmp_path / "s"))
    message = str(caught.value)
    assert message.startswith("unpack: the archive is not a tar archive: " + fragment)
    assert "truncated" not in message


def test_implicit_parents_then_explicit_entry(tmp_path):
    data = (corpus.member(b"a/b/c", b"x") + corpus.member(b"a/", typeflag=b"5", mode=0o750, mtime=1000)
            + corpus.end())
    extract(data, str(tmp_path / "s"))
    assert stat.S_IMODE(os.stat(tmp_path / "s" / "a").st_mode) == 0o750
    assert os.stat(tmp_path / "s" / "a").st_mtime == 1000
    assert stat.S_IMODE(os.stat(tmp_path / "s" / "a" / "b").st_mode) == 0o755


def test_symlinks_are_never_followed_even_if_dangling_or_looping(tmp_path):
    data = (corpus.symlink(b"loop", b"loop") + corpus.symlink(b"abs", b"/etc/passwd")
            + corpus.member(b"etc/x", b"y") + corpus.hardlink(b"hl-to-symlink", b"abs") + corpus.end())
    extract(data, str(tmp_path / "s"))
    assert os.readlink(tmp_path / "s" / "loop") == "loop"
    assert os.readlink(tmp_path / "s" / "hl-to-symlink") == "/etc/passwd"


def test_stream_is_read_to_the_end(tmp_path):
    """Bytes after the end-of-archive blocks are still read, so a checksum covers them."""
    data = corpus.member(b"f", b"x") + corpus.end() + b"\0" * 9000 + b"trailing"
    raw = unpack.HashingReader(io.BytesIO(data))
    reader = unpack.ReadAhead(lambda: raw, chunk_size=1000)
    unpack.unpack(reader, str(tmp_path))
    assert raw.size == len(data)


# Cut before the ustar magic at byte 257, the data no longer tells a tar archive (see below).
@pytest.mark.parametrize("cut", [300, 511, 512, 700, 1024, 1536, 2000])
def test_truncated_anywhere_is_an_error(tmp_path, cut):
    data = corpus.member(b"f", b"x" * 1000) + corpus.member(b"g", b"y") + corpus.end()
    with pytest.raises(unpack.UnpackError, match="truncated"):
        unpack.unpack(chunks(data[:cut], 100), str(tmp_path))


def test_errors_from_the_reader_thread_surface(tmp_path):
    class Failing(io.RawIOBase):
        def __init__(self):
            super().__init__()
            self.sent = False

        def readable(self):
            return True

        def read(self, size=-1):
            if not self.sent:
                self.sent = True
                return corpus.member(b"f", b"x")
            raise ConnectionResetError("peer went away")

    reader = unpack.ReadAhead(Failing)
    with pytest.raises(unpack.SourceError) as caught:
        unpack.unpack(reader, str(tmp_path))
    assert isinstance(caught.value.cause, ConnectionResetError)
    assert caught.value.step == "download"
    reader.close()


def test_read_ahead_is_bounded_and_stops():
    produced = []

    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def read(self, size=-1):
            produced.append(size)
            return b"z" * size

    reader = unpack.ReadAhead(Endless, chunk_size=10, depth=3)
    time.sleep(0.5)
    # Three chunks queued and a fourth waiting for room: reading ahead never runs away.
    assert len(produced) == 4
    reader.close()
    assert not reader._thread.is_alive()


def test_disk_full_is_reported(tmp_path):
    if not ROOT:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], check=True)
    try:
        data = corpus.member(b"big", os.urandom(2 << 20)) + corpus.end()
        with pytest.raises(unpack.UnpackError, match="no space left"):
            extract(data, str(mount_point / "s"))
        data = b"".join(corpus.member(b"f%d" % i, os.urandom(100000)) for i in range(20)) + corpus.end()
        (mount_point / "s2").mkdir()
        with pytest.raises(unpack.UnpackError, match="no space left"):
            extract(data, str(mount_point / "s2"))
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_staging_must_be_empty(tmp_path):
    (tmp_path / "leftover").write_text("x")
    with pytest.raises(unpack.UnpackError, match="not empty"):
        unpack.unpack([corpus.end()], str(tmp_path))


@pytest.mark.parametrize("field, value", [
    (b"0000644\0", 0o644),
    (b" 644    ", 0o644),
    (b"\0\0\0\0\0\0\0\0", 0),
    (b"\x80\0\0\0\0\x2d\xc6\xc0", 3000000),
    (b"\xff" * 8, -1),
])
def test_number_fields(field, value):
    assert unpack._number(field, "x", 0) == value


def test_pax_records():
    data = b"30 mtime=1700000000.123456789\n20 path=a/b=c d.txt\n"
    records = unpack.parse_pax(data, 0)
    assert records[b"path"] == b"a/b=c d.txt"
    assert unpack._pax_time(records[b"mtime"], 0) == 1700000000123456789
    with pytest.raises(unpack.UnpackError, match="malformed pax"):
        unpack.parse_pax(b"99 path=x\n", 0)


@pytest.mark.parametrize("name, parts", [
    (b"./a//b/./c", (b"a", b"b", b"c")),
    (b"a/b/", (b"a", b"b")),
    (b"./", ()),
])
def test_member_paths(name, parts):
    assert unpack.split_member_path(name) == parts


def test_show_keeps_messages_on_one_line():
    assert "\n" not in unpack.show(b"evil\nname\xff")


def test_very_deep_paths(tmp_path):
    """With max_path_depth raised, depth is bounded only by the path limit, without recursion."""
    deep = b"d/" * 1500
    data = (corpus.pax([(b"path", deep + b"f")]) + corpus.member(b"placeholder", b"bottom")
            + corpus.member(b"top", b"t") + corpus.end())
    try:
        extract(data, str(tmp_path / "s"), limits=unpack.Limits(depth=1501))
        assert (tmp_path / "s" / (("d/" * 1500) + "f")).read_bytes() == b"bottom"
    finally:
        # shutil.rmtree (pytest's cleanup) recurses and would fail; remove_tree does not.
        releases.remove_tree(str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()


# --- limits ----------------------------------------------------------------------------------


def test_headers_of_one_member_are_bounded(tmp_path):
    """pax records and GNU long names before a member count together, global records included."""
    limits = unpack.Limits(pax_member=4096)
    record = corpus.pax([(b"comment", b"c" * 3000)])
    extract(record + corpus.member(b"one", b"x") + record + corpus.member(b"two", b"x") + corpus.end(),
            str(tmp_path / "ok"), limits=limits)
    longname = corpus.member(b"././@LongLink", b"n" * 3000 + b"\0", b"L")
    global_record = corpus.pax([(b"comment", b"g" * 3000)], typeflag=b"g")
    floods = [record + record, longname + record, global_record + corpus.member(b"first", b"x") + record]
    for index, flood in enumerate(floods):
        with pytest.raises(unpack.UnpackError, match="more than 4096 bytes of pax and GNU long-name headers for one "
                                                     "member, the max_pax_bytes_per_member limit, at byte") as caught:
            extract(flood + corpus.member(b"after", b"x") + corpus.end(), str(tmp_path / str(index)), limits=limits)
        assert "raise max_pax_bytes_per_member" in str(caught.value) and "\n" not in str(caught.value)


def test_headers_of_the_archive_are_bounded(tmp_path):
    """Over the archive; a global record counts again for every member it applies to."""
    limits = unpack.Limits(pax_archive=10000)
    record = corpus.pax([(b"comment", b"c" * 3000)])
    three = b"".join(record + corpus.member(b"f%d" % index, b"x") for index in range(3))
    extract(three + corpus.end(), str(tmp_path / "ok"), limits=limits)
    global_record = corpus.pax([(b"comment", b"g" * 3000)], typeflag=b"g")
    few = global_record + b"".join(corpus.member(b"f%d" % index, b"x") for index in range(2))
    extract(few + corpus.end(), str(tmp_path / "few"), limits=limits)
    for index, flood in enumerate([three + record + corpus.member(b"f4", b"x"), few + corpus.member(b"f3", b"x")]):
        with pytest.raises(unpack.UnpackError, match="the max_pax_bytes_per_archive limit") as caught:
            extract(flood + corpus.end(), str(tmp_path / str(index)), limits=limits)
        assert "raise max_pax_bytes_per_archive" in str(caught.value)


def test_unpacked_bytes_are_bounded_before_they_are_written(tmp_path):
    data = corpus.member(b"small", b"s" * 1000) + corpus.member(b"big", b"b" * 100000) + corpus.end()
    extract(data, str(tmp_path / "ok"), limits=unpack.Limits(unpacked=len(data)))
    staging = tmp_path / "refused"
    staging.mkdir()
    with pytest.raises(unpack.UnpackError) as caught:
        unpack.unpack(chunks(data, 512), str(staging), limits=unpack.Limits(unpacked=50000, unpacked_origin="the origin"))
    assert str(caught.value) == (
        "unpack: the archive unpacks to more than 50000 bytes, the max_unpacked_bytes limit (the origin), at member "
        "'big' of 100000 bytes: refusing it; set max_unpacked_bytes if the image really is that big")
    assert os.listdir(staging) == ["small"], "refused before it was created"
    # Every byte of the stream counts: the end-of-archive blocks, and trailing data after them.
    with pytest.raises(unpack.UnpackError, match="more than %d bytes, the max_unpacked_bytes limit .* at byte %d of "
                                                 "its tar stream" % (len(data) - 1, len(data) - 1)):
        extract(data, str(tmp_path / "exact"), limits=unpack.Limits(unpacked=len(data) - 1))
    with pytest.raises(unpack.UnpackError, match="at byte %d of its tar stream" % len(data)):
        extract(data + b"\0" * 4096, str(tmp_path / "trailing"), limits=unpack.Limits(unpacked=len(data)))


def test_entries_are_bounded_implied_directories_included(tmp_path):
    limits = unpack.Limits(entries=3)
    extract(corpus.member(b"a/b/c", b"x") + corpus.end(), str(tmp_path / "ok"), limits=limits)
    extract(corpus.directory(b"a/") + corpus.member(b"a/b", b"x") + corpus.symlink(b"a/c", b"b") + corpus.end(),
            str(tmp_path / "listed"), limits=limits)
    for index, data in enumerate([corpus.member(b"a/b/c/d", b"x"),
                                  corpus.member(b"a", b"x") + corpus.member(b"b", b"x") + corpus.hardlink(b"c", b"a")
                                  + corpus.member(b"d", b"x")]):
        with pytest.raises(unpack.UnpackError, match=r"^unpack: the archive has more than 3 entries \(files, "
                                                     r"directories, links and other nodes\), the max_entries limit: "
                                                     r"refusing it; raise max_entries"):
            extract(data + corpus.end(), str(tmp_path / str(index)), limits=limits)


def test_path_depth_is_bounded(tmp_path):
    limits = unpack.Limits(depth=3)
    extract(corpus.member(b"./a//b/c", b"x") + corpus.end(), str(tmp_path / "ok"), limits=limits)
    with pytest.raises(unpack.UnpackError, match="archive member 'a/b/c/d' has 4 path components, over the "
                                                 "max_path_depth limit of 3: refusing the archive; raise max_path_depth"):
        extract(corpus.member(b"a/b/c/d", b"x") + corpus.end(), str(tmp_path / "deep"), limits=limits)
    assert not (tmp_path / "deep" / "a").exists(), "refused before anything of it was made"


def test_table_memory_does_not_grow_with_depth(tmp_path):
    """Entries are kept by directory and name: files deep down cost what files at the top cost."""
    import tracemalloc

    def peak(prefix, name):
        data = b"".join(corpus.pax([(b"path", prefix + b"file-%05d" % index)]) + corpus.member(b"placeholder")
                        for index in range(3000)) + corpus.end()
        (tmp_path / name).mkdir()
        tracemalloc.start()
        try:
            unpack.unpack(chunks(data, 1 << 20), str(tmp_path / name), limits=unpack.Limits(depth=200))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    shallow = peak(b"", "shallow")
    deep = peak(b"".join(b"level-%03d/" % depth for depth in range(100)), "deep")
    # Kept by full path, each deep entry would cost 100 more components (about 5 KB each).
    assert deep < shallow * 1.5


@pytest.mark.skipif(not ROOT, reason="mounting a tmpfs needs root")
def test_free_space_is_kept_as_the_archive_is_unpacked(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], check=True)

    def free():
        st = os.statvfs(mount_point)
        return st.f_bavail * st.f_frsize

    try:
        limits = unpack.Limits(min_free=1 << 20)
        with pytest.raises(unpack.UnpackError) as caught:
            extract(corpus.member(b"big", bytes(3200000)) + corpus.end(), str(mount_point / "one"), limits=limits)
        assert str(caught.value).startswith(
            "unpack: no space left for the archive on the file system of dest: member 'big' needs 3207168 bytes, 4194304 are free")
        assert str(caught.value).endswith(
            " and 1048576 must stay free (min_free_space): refusing it; free space there, or lower "
            "min_free_space")
        assert os.listdir(mount_point / "one") == [], "refused before it was created"
        # Many files: refused only once the next would use the space to keep free.
        data = b"".join(corpus.member(b"f%02d" % index, os.urandom(100000)) for index in range(40)) + corpus.end()
        with pytest.raises(unpack.UnpackError, match="member 'f[23][0-9]' needs 106496 bytes, .* must stay free "
                                                     r"\(min_free_space\)"):
            extract(data, str(mount_point / "many"), limits=limits)
        assert free() >= 1 << 20
        releases.remove_tree(str(mount_point / "many"))
        # Without min_free_space: 1% of the file system.
        with pytest.raises(unpack.UnpackError, match=r"must stay free \(by default 1% of the file system\)"):
            extract(corpus.member(b"big", bytes(4 << 20)) + corpus.end(), str(mount_point / "default"))

        # Another writer takes space meanwhile: the space is read again before the reserve is reached.
        def stream():
            for index in range(20):
                yield corpus.member(b"g%02d" % index, os.urandom(100000))
                if index == 4:
                    with open(mount_point / "other-writer", "wb") as handle:
                        handle.write(os.urandom(2 << 20))
            yield corpus.end()

        os.mkdir(mount_point / "raced")
        with pytest.raises(unpack.UnpackError, match=r"must stay free \(min_free_space\)"):
            unpack.unpack(stream(), str(mount_point / "raced"), limits=limits)
        assert free() >= (1 << 20) - 2 * 102400
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_privileged_files_are_refused_unless_allowed(tmp_path):
    capability = b"\x01\x00\x00\x02" + b"\x00" * 16
    for index, (data, what) in enumerate([
            (corpus.member(b"usr/bin/su", b"x", mode=0o4755), "a setuid file"),
            (corpus.member(b"usr/bin/wall", b"x", mode=0o2755), "a setgid file"),
            (corpus.pax([(b"SCHILY.xattr.security.capability", capability)]) + corpus.member(b"usr/bin/ping", b"x"),
             "a file with capabilities (security.capability)")]):
        with pytest.raises(unpack.UnpackError) as caught:
            extract(data + corpus.end(), str(tmp_path / str(index)), allow_privileged=False)
        assert what in str(caught.value)
        assert "set allow_privileged_files: true" in str(caught.value) and "use layout releases" in str(caught.value)
        assert not os.path.exists(tmp_path / str(index) / "usr" / "bin")
        extract(data + corpus.end(), str(tmp_path / ("allowed-%d" % index)), allow_privileged=True)
    # Special bits that give nothing to whoever runs a file: a setgid directory, a sticky one.
    extract(corpus.directory(b"shared/", mode=0o2775) + corpus.directory(b"tmp/", mode=0o1777)
            + corpus.member(b"shared/x", b"x") + corpus.end(), str(tmp_path / "dirs"), allow_privileged=False)
    assert stat.S_IMODE(os.stat(tmp_path / "dirs" / "shared").st_mode) == 0o2775
