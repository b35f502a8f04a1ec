# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where archives live: ``s3://``, ``file://`` or a local path, and ``https://`` (read only).

Readers stream; writers never leave a partial object behind: a local writer writes a hidden
temporary file next to the destination and renames it after fsync (common.AtomicFile), an S3
writer uploads a multipart upload with a bounded number of parts in flight and aborts it on any
failure.
"""

from __future__ import annotations

import collections
import errno
import os
import threading
from concurrent import futures
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.urls import open_url

from ansible_collections.droot.core.plugins.module_utils._internal.common import AtomicFile, DrootError, OptionalLibrary

BOTO3 = OptionalLibrary("boto3")

Location = collections.namedtuple("Location", "scheme bucket key path")
ObjectInfo = collections.namedtuple("ObjectInfo", "size etag mtime")

# The options of the droot.core.s3 doc fragment, shared by droot_export and droot_fetch.
S3_ARGUMENT_SPEC = dict(
    endpoint_url=dict(type="str"),
    region=dict(type="str"),
    profile=dict(type="str"),
    access_key=dict(type="str", no_log=False),
    secret_key=dict(type="str", no_log=True),
    session_token=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", default=True),
)

PART_SIZE = 8 << 20
# Memory held by the upload is about (PARTS_IN_FLIGHT + 1) * PART_SIZE.
PARTS_IN_FLIGHT = 3
MAX_PARTS = 10000
READ_CHUNK = 1 << 20
TEMP_SUFFIX = ".droot-tmp"


class StoreError(DrootError):
    """A storage location that cannot be read or written."""


def parse_location(url):
    """Split ``s3://bucket/key``, ``file:///path``, a local path or ``https://...``."""
    if not url:
        raise StoreError("empty location: give s3://BUCKET/KEY, https://HOST/PATH or a local path")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        key = parts.path.lstrip("/")
        if not parts.netloc or not key or key.endswith("/"):
            raise StoreError("%s is not an S3 object location: use s3://BUCKET/KEY" % url)
        return Location("s3", parts.netloc, key, None)
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise StoreError("%s has no host: use %s://HOST/PATH" % (url, scheme))
        return Location(scheme, None, None, url)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreError("%s names a remote host: file:// locations are local, use file:///PATH" % url)
        path = parts.path
    elif scheme == "":
        path = url
    else:
        raise StoreError("unsupported location scheme %r in %s: use s3://, https:// or a local path" % (scheme, url))
    if not path or path.endswith("/"):
        raise StoreError("%s names a directory: give a file name" % url)
    return Location("file", None, None, os.path.abspath(os.path.expanduser(path)))


def manifest_location(url):
    """The manifest of an archive sits next to it: ``<url>.json``."""
    return url + ".json"


class S3Options:
    """Connection settings for S3; unset values fall back to boto3's environment and config chain."""

    FIELDS = tuple(S3_ARGUMENT_SPEC)

    def __init__(self, endpoint_url=None, region=None, profile=None, access_key=None,
                 secret_key=None, session_token=None, validate_certs=True):
        self.endpoint_url = endpoint_url
        self.region = region
        self.profile = profile
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token
        self.validate_certs = validate_certs
        self._client = None
        self._lock = threading.Lock()

    @classmethod
    def from_params(cls, params):
        return cls(**dict((name, params.get(name)) for name in cls.FIELDS if params.get(name) is not None))

    def client(self):
        """One boto3 S3 client, created on first use (clients are thread-safe)."""
        with self._lock:
            if self._client is None:
                if BOTO3.module is None:
                    raise StoreError("S3 locations need the Python library boto3: install it on the target")
                self._client = self._new_client()
            return self._client

    def _new_client(self):
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
        try:
            session = BOTO3.module.session.Session(
                profile_name=self.profile,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                aws_session_token=self.session_token,
                region_name=self.region,
            )
            config = Config(
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=PARTS_IN_FLIGHT * 2,
            )
            return session.client("s3", endpoint_url=self.endpoint_url, verify=self.validate_certs, config=config)
        except BotoCoreError as exc:
            raise StoreError("cannot set up the S3 client: %s; check profile, region and endpoint_url" % exc)


def _s3_error(exc, url, action):
    """A one-line StoreError for a boto3/botocore failure."""
    from botocore import exceptions as bex
    if isinstance(exc, bex.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        bucket = parse_location(url).bucket
        if code == "NoSuchBucket":
            return StoreError("S3 bucket %s does not exist: create it or fix the location %s" % (bucket, url),
                              code=code)
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled") \
                or status == 403:
            return StoreError("access denied to %s while trying to %s (%s): check the credentials and the "
                              "bucket's policy" % (url, action, code or status), code=code or "AccessDenied")
        return StoreError("S3 could not %s %s: %s %s" % (action, url, code, error.get("Message", "")), code=code)
    if isinstance(exc, bex.NoCredentialsError):
        return StoreError("no AWS credentials to %s %s: set access_key and secret_key, profile, or the AWS_* "
                          "environment variables" % (action, url))
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectionError)):
        return StoreError("cannot reach the S3 endpoint to %s %s (%s): check endpoint_url and the network"
                          % (action, url, exc))
    if isinstance(exc, bex.BotoCoreError):
        return StoreError("S3 could not %s %s: %s" % (action, url, exc))
    return None


def _is_not_found(exc):
    from botocore.exceptions import ClientError
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound")


def _call_s3(url, action, function, **kwargs):
    """Call a boto3 client method; map its errors to StoreError (NoSuchKey comes back as None)."""
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        return function(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        if _is_not_found(exc):
            return None
        raise _s3_error(exc, url, action)


def _strip_etag(etag):
    return etag.strip('"') if etag else None


def _local_etag(st):
    # Changes whenever the file is rewritten, as an HTTP server's ETag for a static file does.
    return "%x-%x" % (st.st_mtime_ns, st.st_size)


def stat(url, opts=None):
    """ObjectInfo(size, etag, mtime) of the object at ``url``, or None when there is none."""
    location = parse_location(url)
    if location.scheme == "file":
        try:
            st = os.stat(location.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError("cannot stat %s: %s" % (location.path, exc.strerror))
        if not os.path.isfile(location.path):
            raise StoreError("%s exists and is not a regular file: remove it or choose another location"
                             % location.path)
        return ObjectInfo(st.st_size, _local_etag(st), st.st_mtime)
    if location.scheme == "s3":
        client = (opts or S3Options()).client()
        head = _call_s3(url, "read", client.head_object, Bucket=location.bucket, Key=location.key)
        if head is None:
            return None
        return ObjectInfo(head["ContentLength"], _strip_etag(head.get("ETag")), head["LastModified"].timestamp())
    response = _open_http(url, opts, "HEAD")
    if response is None:
        return None
    return _http_info(response)


def _open_http(url, opts, method):
    validate = True if opts is None else opts.validate_certs
    try:
        return open_url(url, method=method, validate_certs=validate, timeout=60)
    except HTTPError as exc:
        if exc.code == 404:
            return None
        raise StoreError("%s %s failed with HTTP %s %s" % (method, url, exc.code, exc.reason), code=exc.code)
    except (URLError, OSError) as exc:
        raise StoreError("cannot reach %s: %s; check the URL and the network" % (url, getattr(exc, "reason", exc)))


def _http_info(response):
    from email.utils import parsedate_to_datetime
    length = response.headers.get("Content-Length")
    modified = response.headers.get("Last-Modified")
    return ObjectInfo(
        int(length) if length is not None else None,
        _strip_etag(response.headers.get("ETag")),
        parsedate_to_datetime(modified).timestamp() if modified else None,
    )


class _ErrorMappingReader:
    """A stream whose transport errors surface as StoreError naming the location."""

    def __init__(self, stream, url):
        self._stream = stream
        self._url = url

    def read(self, size=-1):
        try:
            return self._stream.read(size)
        except Exception as exc:  # urllib3/botocore/http.client each have their own error types
            raise StoreError("reading %s failed: %s; try again" % (self._url, exc))

    def readable(self):
        return True

    def close(self):
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def open_reader(url, opts=None):
    """Open ``url`` for streaming reads: ``(fileobj, ObjectInfo)``; a missing object raises StoreError."""
    location = parse_location(url)
    if location.scheme == "file":
        try:
            stream = open(location.path, "rb", buffering=READ_CHUNK)
        except FileNotFoundError:
            raise StoreError("%s does not exist: check the path" % location.path)
        except OSError as exc:
            raise StoreError("cannot open %s: %s" % (location.path, exc.strerror))
        st = os.fstat(stream.fileno())
        return stream, ObjectInfo(st.st_size, _local_etag(st), st.st_mtime)
    if location.scheme == "s3":
        client = (opts or S3Options()).client()
        response = _call_s3(url, "read", client.get_object, Bucket=location.bucket, Key=location.key)
        if response is None:
            raise StoreError("there is no object at %s: check the location or export it first" % url)
        info = ObjectInfo(response["ContentLength"], _strip_etag(response.get("ETag")),
                          response["LastModified"].timestamp())
        return _ErrorMappingReader(response["Body"], url), info
    response = _open_http(url, opts, "GET")
    if response is None:
        raise StoreError("%s answered 404 Not Found: check the URL" % url)
    return _ErrorMappingReader(response, url), _http_info(response)


def read_bytes(url, opts, limit):
    """The whole (small) object at ``url``, or None when there is none; larger than ``limit`` raises
    (manifests: manifest.LIMIT)."""
    if stat(url, opts) is None:
        return None
    try:
        stream, info = open_reader(url, opts)
    except StoreError:
        # Gone between stat and open: the same as absent.
        if stat(url, opts) is None:
            return None
        raise
    with stream:
        if info.size is not None and info.size > limit:
            raise StoreError("%s is %d bytes, more than the %d expected: is it the right file?"
                             % (url, info.size, limit))
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise StoreError("%s is more than the %d bytes expected: is it the right file?" % (url, limit))
    return data


class Writer:
    """Write an object; nothing appears at the location until ``commit()`` succeeds.

    ``on_pending(action)`` is told what a crash cleaner would have to undo (a dict, see
    ``undo_pending``) and ``on_pending(None)`` once nothing is pending any more.
    """

    def __init__(self, url, on_pending=None):
        self.url = url
        self.size = 0
        self._on_pending = on_pending or (lambda action: None)
        self._done = False

    def write(self, data):
        try:
            self._write(data)
        except BaseException as exc:
            self.abort()
            raise self._mapped(exc, "write")
        self.size += len(data)
        return len(data)

    def commit(self):
        """Make the object visible; returns its ObjectInfo."""
        try:
            info = self._commit()
        except BaseException as exc:
            self.abort()
            raise self._mapped(exc, "write")
        self._done = True
        self._on_pending(None)
        return info

    def abort(self):
        """Forget everything written; safe to call more than once."""
        if self._done:
            return
        self._done = True
        try:
            self._abort()
        finally:
            self._on_pending(None)

    def _mapped(self, exc, action):
        if isinstance(exc, DrootError) or not isinstance(exc, Exception):
            return exc
        return StoreError("cannot %s %s: %s" % (action, self.url, exc))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()


class _LocalWriter(Writer):
    def __init__(self, url, path, on_pending=None):
        super().__init__(url, on_pending)
        self.path = path
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            raise StoreError("directory %s does not exist: create it first or choose another dest" % directory)
        if os.path.isdir(path):
            raise StoreError("%s is a directory: give a file name as dest" % path)
        self.temp_path = os.path.join(directory, ".%s.%d.%s%s" % (
            os.path.basename(path), os.getpid(), os.urandom(4).hex(), TEMP_SUFFIX))
        try:
            # The directory may be reached through a symlink (dest's own path is abspath, not realpath).
            self._atomic = AtomicFile(path, self.temp_path, mode=0o644, follow_dir_symlink=True, buffering=READ_CHUNK)
        except OSError as exc:
            raise self._os_error(exc)
        self._on_pending({"kind": "file", "path": self.temp_path})
        self._file = self._atomic.file

    def _os_error(self, exc):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreError("no space left on the device of %s: free space or choose another dest" % self.path,
                              code="ENOSPC")
        return StoreError("cannot write %s: %s" % (self.path, exc.strerror or exc))

    def _write(self, data):
        try:
            self._file.write(data)
        except OSError as exc:
            raise self._os_error(exc)

    def _commit(self):
        try:
            self._atomic.commit()
            st = os.stat(self.path)
        except OSError as exc:
            raise self._os_error(exc)
        return ObjectInfo(st.st_size, _local_etag(st), st.st_mtime)

    def _abort(self):
        self._atomic.abort()


def part_size(number):
    """Size of part ``number`` (1-based): grows every 1000 parts so 10000 parts hold 440 GiB."""
    return PART_SIZE * (1 + (number - 1) // 1000)


class _S3Writer(Writer):
    def __init__(self, url, location, opts, on_pending=None, parts_in_flight=PARTS_IN_FLIGHT):
        super().__init__(url, on_pending)
        self._location = location
        self._client = opts.client()
        self._buffer = bytearray()
        self._upload_id = None
        self._parts_in_flight = parts_in_flight
        self._executor = None
        self._in_flight = []
        self._parts = []

    def _write(self, data):
        self._buffer += data
        size = part_size(len(self._parts) + len(self._in_flight) + 1)
        while len(self._buffer) >= size:
            # One copy into the part body; the buffer keeps only the tail.
            with memoryview(self._buffer) as view:
                body = bytes(view[:size])
            del self._buffer[:size]
            self._send(body)
            size = part_size(len(self._parts) + len(self._in_flight) + 1)

    def _send(self, body):
        if self._upload_id is None:
            response = _call_s3(self.url, "write", self._client.create_multipart_upload,
                                Bucket=self._location.bucket, Key=self._location.key)
            self._upload_id = response["UploadId"]
            self._on_pending({"kind": "s3-multipart", "bucket": self._location.bucket,
                              "key": self._location.key, "upload_id": self._upload_id})
            self._executor = futures.ThreadPoolExecutor(self._parts_in_flight, thread_name_prefix="droot-s3-part")
        # Bounded memory: wait for a free slot before queuing another part.
        while len(self._in_flight) >= self._parts_in_flight:
            self._collect(futures.FIRST_COMPLETED)
        number = len(self._parts) + len(self._in_flight) + 1
        self._in_flight.append(self._executor.submit(self._upload_part, number, body))

    def _upload_part(self, number, body):
        response = _call_s3(self.url, "write", self._client.upload_part, Bucket=self._location.bucket,
                            Key=self._location.key, UploadId=self._upload_id, PartNumber=number, Body=body)
        part = {"PartNumber": number, "ETag": response["ETag"]}
        # botocore adds a CRC32 by default; the completion must repeat it.
        for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "ChecksumCRC64NVME"):
            if response.get(name):
                part[name] = response[name]
        return part

    def _collect(self, return_when):
        done, pending = futures.wait(self._in_flight, return_when=return_when)
        self._in_flight = list(pending)
        for future in done:
            self._parts.append(future.result())

    def _commit(self):
        location = self._location
        if self._upload_id is None:
            response = _call_s3(self.url, "write", self._client.put_object,
                                Bucket=location.bucket, Key=location.key, Body=bytes(self._buffer))
            etag = response["ETag"]
        else:
            if self._buffer:
                self._send(bytes(self._buffer))
                self._buffer = bytearray()
            self._collect(futures.ALL_COMPLETED)
            self._executor.shutdown()
            parts = sorted(self._parts, key=lambda part: part["PartNumber"])
            response = _call_s3(self.url, "write", self._client.complete_multipart_upload,
                                Bucket=location.bucket, Key=location.key, UploadId=self._upload_id,
                                MultipartUpload={"Parts": parts})
            etag = response["ETag"]
        return ObjectInfo(self.size, _strip_etag(etag), None)

    def _abort(self):
        self._buffer = bytearray()
        if self._executor is not None:
            for future in self._in_flight:
                future.cancel()
            self._executor.shutdown(wait=True)
        if self._upload_id is not None:
            abort_multipart(self._client, self._location.bucket, self._location.key, self._upload_id)


def abort_multipart(client, bucket, key, upload_id):
    """Abort a multipart upload, best effort: the caller is already failing for a better reason."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # the upload may be gone already; S3 lifecycle rules catch any leftovers
        pass


def open_writer(url, opts=None, on_pending=None):
    """A Writer for ``url``: ``write()``, ``commit()``, ``abort()``; usable as a context manager."""
    location = parse_location(url)
    if location.scheme == "file":
        return _LocalWriter(url, location.path, on_pending)
    if location.scheme == "s3":
        return _S3Writer(url, location, opts or S3Options(), on_pending)
    raise StoreError("%s is read-only: write archives to s3://BUCKET/KEY or a local path" % url)


def undo_pending(action, opts=None):
    """Undo what a killed writer left behind (an ``on_pending`` action); used by crash cleaners."""
    if action["kind"] == "file":
        try:
            os.unlink(action["path"])
        except FileNotFoundError:
            pass
    elif action["kind"] == "s3-multipart":
        abort_multipart((opts or S3Options()).client(), action["bucket"], action["key"], action["upload_id"])
