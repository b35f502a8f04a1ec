# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import errno
import os
import threading
import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ansible_collections.droot.core.plugins.module_utils._internal import store


@pytest.mark.parametrize("url, expected", [
    ("s3://bucket/dir/app.tar.zst", store.Location("s3", "bucket", "dir/app.tar.zst", None)),
    ("file:///srv/app.tar", store.Location("file", None, None, "/srv/app.tar")),
    ("/srv/app.tar", store.Location("file", None, None, "/srv/app.tar")),
    ("https://example.org/a.tar", store.Location("https", None, None, "https://example.org/a.tar")),
])
def test_parse_location(url, expected):
    assert store.parse_location(url) == expected


@pytest.mark.parametrize("url, message", [
    ("s3://bucket", "s3://BUCKET/KEY"),
    ("s3://bucket/dir/", "s3://BUCKET/KEY"),
    ("ftp://host/x", "unsupported location scheme"),
    ("file://otherhost/x", "remote host"),
    ("/srv/", "directory"),
    ("", "empty location"),
])
def test_parse_location_refuses(url, message):
    with pytest.raises(store.StoreError, match=message):
        store.parse_location(url)


def test_manifest_location():
    assert store.manifest_location("s3://b/app.tar.zst") == "s3://b/app.tar.zst.json"


def test_s3_options_from_params_ignores_unset_and_foreign_keys():
    opts = store.S3Options.from_params({"endpoint_url": "http://127.0.0.1:1", "region": None, "dest": "x"})
    assert opts.endpoint_url == "http://127.0.0.1:1"
    assert opts.region is None
    assert opts.validate_certs is True


def test_local_writer_commits_atomically(tmp_path):
    dest = tmp_path / "app.tar"
    pending = []
    writer = store.open_writer(str(dest), on_pending=pending.append)
    writer.write(b"a" * 10)
    assert not dest.exists(), "nothing may appear at dest before commit"
    assert [p["kind"] for p in pending] == ["file"]
    writer.write(b"b" * 5)
    info = writer.commit()
    assert dest.read_bytes() == b"a" * 10 + b"b" * 5
    assert info.size == 15 and info == store.stat(str(dest))
    assert pending[-1] is None
    assert os.listdir(str(tmp_path)) == ["app.tar"]


def test_local_writer_abort_leaves_nothing(tmp_path):
    (tmp_path / "app.tar").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with store.open_writer(str(tmp_path / "app.tar")) as writer:
            writer.write(b"new")
            raise RuntimeError("boom")
    assert os.listdir(str(tmp_path)) == ["app.tar"]
    assert (tmp_path / "app.tar").read_bytes() == b"old"


def test_local_writer_disk_full_is_one_clear_error(tmp_path, mocker):
    writer = store.open_writer(str(tmp_path / "app.tar"), on_pending=lambda action: None)
    mocker.patch.object(writer, "_file").write.side_effect = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(store.StoreError, match="no space left"):
        writer.write(b"x")
    assert os.listdir(str(tmp_path)) == []


def test_local_writer_needs_an_existing_directory(tmp_path):
    with pytest.raises(store.StoreError, match="does not exist: create it"):
        store.open_writer(str(tmp_path / "missing" / "app.tar"))


def test_local_etag_changes_when_the_file_is_rewritten(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"one")
    first = store.stat(str(path))
    os.utime(str(path), ns=(0, 12345))
    assert store.stat(str(path)).etag != first.etag


def test_read_bytes_limit_and_absence(tmp_path):
    path = tmp_path / "m.json"
    assert store.read_bytes(str(path), None, limit=10) is None
    path.write_bytes(b"x" * 11)
    with pytest.raises(store.StoreError, match="more than"):
        store.read_bytes(str(path), None, limit=10)
    assert store.read_bytes(str(path), None, limit=11) == b"x" * 11


def test_https_is_read_only():
    with pytest.raises(store.StoreError, match="read-only"):
        store.open_writer("https://example.org/a.tar")


def client_error(code, status=400, operation="UploadPart"):
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)


class FakeS3:
    """Records calls and tracks how many part uploads run at once."""

    def __init__(self, fail_part=None, delay=0.01):
        self.calls = []
        self.parts = {}
        self.fail_part = fail_part
        self.delay = delay
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def create_multipart_upload(self, **kwargs):
        self.calls.append(("create", kwargs["Key"]))
        return {"UploadId": "up-1"}

    def upload_part(self, PartNumber, Body, **kwargs):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        if PartNumber == self.fail_part:
            raise client_error("InternalError", 500)
        self.parts[PartNumber] = Body
        return {"ETag": '"e%d"' % PartNumber, "ChecksumCRC32": "c%d" % PartNumber}

    def complete_multipart_upload(self, MultipartUpload, **kwargs):
        self.calls.append(("complete", MultipartUpload["Parts"]))
        return {"ETag": '"final-%d"' % len(MultipartUpload["Parts"])}

    def abort_multipart_upload(self, UploadId, **kwargs):
        self.calls.append(("abort", UploadId))

    def put_object(self, Body, **kwargs):
        self.calls.append(("put", Body))
        return {"ETag": '"single"'}


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(store, "PART_SIZE", 1000)


def s3_writer(fake, pending=None):
    opts = store.S3Options()
    opts._client = fake
    return store.open_writer("s3://bucket/app.tar.zst", opts, on_pending=(pending if pending is not None else []).append)


def test_s3_writer_uploads_parts_in_parallel_but_bounded(small_parts):
    fake = FakeS3()
    writer = s3_writer(fake)
    data = os.urandom(20500)
    for start in range(0, len(data), 300):
        writer.write(data[start:start + 300])
    info = writer.commit()
    assert b"".join(fake.parts[n] for n in sorted(fake.parts)) == data
    assert 1 < fake.peak <= store.PARTS_IN_FLIGHT
    complete = [call for call in fake.calls if call[0] == "complete"][0][1]
    assert [part["PartNumber"] for part in complete] == list(range(1, 22))
    assert complete[0] == {"PartNumber": 1, "ETag": '"e1"', "ChecksumCRC32": "c1"}
    assert info == store.ObjectInfo(20500, "final-21", None)


def test_s3_writer_sends_a_small_object_in_one_request(small_parts):
    fake = FakeS3()
    writer = s3_writer(fake)
    writer.write(b"{}")
    assert writer.commit().etag == "single"
    assert fake.calls == [("put", b"{}")]


def test_s3_writer_aborts_the_upload_when_a_part_fails(small_parts):
    fake = FakeS3(fail_part=3)
    pending = []
    writer = s3_writer(fake, pending)
    with pytest.raises(store.StoreError, match="InternalError"):
        for _part in range(20):
            writer.write(b"x" * 500)
        writer.commit()
    assert ("abort", "up-1") in fake.calls
    assert not [call for call in fake.calls if call[0] == "complete"]
    assert pending[0]["upload_id"] == "up-1" and pending[-1] is None


def test_s3_writer_aborts_when_the_caller_fails(small_parts):
    fake = FakeS3()
    with pytest.raises(KeyError):
        with s3_writer(fake) as writer:
            writer.write(b"x" * 2500)
            raise KeyError("caller failed")
    assert fake.calls[-1] == ("abort", "up-1")


def test_part_size_grows_so_ten_thousand_parts_fit_big_archives():
    assert store.part_size(1) == store.PART_SIZE
    assert store.part_size(1001) == 2 * store.PART_SIZE
    total = sum(store.part_size(n) for n in range(1, store.MAX_PARTS + 1))
    assert total >= 400 * (1 << 30)


@pytest.mark.parametrize("error, message", [
    (client_error("NoSuchBucket", 404, "CreateMultipartUpload"), "bucket bucket does not exist"),
    (client_error("AccessDenied", 403, "CreateMultipartUpload"), "access denied"),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "cannot reach the S3 endpoint"),
])
def test_s3_errors_are_one_line_and_name_the_fix(error, message):
    fake = FakeS3()
    fake.create_multipart_upload = lambda **kwargs: (item for item in ()).throw(error)
    fake.put_object = fake.create_multipart_upload
    writer = s3_writer(fake)
    with pytest.raises(store.StoreError, match=message) as caught:
        writer.write(b"x")
        writer.commit()
    assert "\n" not in str(caught.value)


def test_s3_stat_returns_etag_and_none_when_absent():
    class Head:
        def head_object(self, Key, **kwargs):
            if Key == "missing":
                raise client_error("404", 404, "HeadObject")
            return {"ContentLength": 3, "ETag": '"abc-2"',
                    "LastModified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)}
    opts = store.S3Options()
    opts._client = Head()
    assert store.stat("s3://b/missing", opts) is None
    assert store.stat("s3://b/k", opts) == store.ObjectInfo(3, "abc-2", 1704067200.0)


def test_undo_pending_removes_a_temp_file(tmp_path):
    path = tmp_path / ".x.droot-tmp"
    path.write_bytes(b"partial")
    store.undo_pending({"kind": "file", "path": str(path)})
    store.undo_pending({"kind": "file", "path": str(path)})
    assert not path.exists()
