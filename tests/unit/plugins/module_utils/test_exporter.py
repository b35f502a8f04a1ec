# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import tarfile

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import archive, exporter, manifest, store

IMAGE_ATTRS = {
    "Id": "sha256:" + "ab" * 32,
    "RepoTags": ["app:1"],
    "Created": "2024-01-01T00:00:00Z",
    "Config": {"Env": ["PATH=/bin", "GREETING=hello world"], "WorkingDir": "/srv", "User": "app",
               "Entrypoint": ["/app"], "Cmd": ["serve"], "ExposedPorts": {"80/tcp": {}}},
}


def source():
    return exporter.Source("image", {"type": "image", "name": "app:1"}, IMAGE_ATTRS)


def test_docker_kwargs_follow_docker_environment_and_docker_host_wins(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    environ = {"DOCKER_HOST": "tcp://192.0.2.1:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}
    kwargs = exporter.docker_client_kwargs(environ=environ)
    assert kwargs["base_url"] == "tcp://192.0.2.1:2376"
    assert kwargs["tls"].verify is True
    assert kwargs["tls"].ca_cert == str(tmp_path / "ca.pem")
    assert exporter.docker_client_kwargs("unix:///run/other.sock", environ)["base_url"] == "unix:///run/other.sock"
    assert "base_url" not in exporter.docker_client_kwargs(environ={})


def test_process_identity_names_this_process_and_a_dead_owner_is_gone():
    me = exporter.process_identity()
    boot_id, pid, starttime = me.split(":")
    assert int(pid) == os.getpid() and starttime.isdigit()
    assert not exporter.owner_is_gone(me)
    # Same boot, a start time this pid never had: the owner is gone (pid reuse is not trusted).
    assert exporter.owner_is_gone("%s:%s:%d" % (boot_id, pid, int(starttime) + 1))
    # Another boot or machine: cannot tell, so never removed from here.
    assert not exporter.owner_is_gone("other-boot:1:1")
    assert not exporter.owner_is_gone("garbage")


def test_synthetic_entries_carry_env_and_config():
    config = source().config()
    members = {}
    stream = b"".join(archive.prepend_entries([], exporter.synthetic_entries(config, mtime=0))) + b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r|") as tar:
        for member in tar:
            members[member.name] = tar.extractfile(member).read() if member.isfile() else member.type
    assert list(members) == [".drootenv", ".droot", ".droot/config.json"]
    assert members[".drootenv"] == b"PATH=/bin\nGREETING=hello world\n"
    document = json.loads(members[".droot/config.json"])
    assert document["image_id"] == IMAGE_ATTRS["Id"]
    assert document["working_dir"] == "/srv" and document["cmd"] == ["serve"]


def test_build_log_tail_keeps_the_last_lines_and_the_error():
    log = [{"stream": "Step %d/9\n" % n} for n in range(1, 10)] + [{"error": "The command returned 3"}]
    assert exporter.build_log_tail(log, lines=3) == ["Step 8/9", "Step 9/9", "The command returned 3"]


def write(dest, data=b"archive bytes"):
    info = store.ObjectInfo(len(data), "etag-1", None)
    document = manifest.document(dest, hashlib.sha256(data).hexdigest(), info, 10240, "zstd", source().image_id,
                                 source().config())
    return json.dumps(document).encode(), info


def test_manifest_is_current_only_when_everything_matches():
    dest = "s3://bucket/app.tar.zst"
    data, info = write(dest)
    image_id = IMAGE_ATTRS["Id"]
    assert manifest.current(data, info, dest, image_id, "zstd")["archive"] == "app.tar.zst"
    assert manifest.current(data, info, dest, "sha256:other", "zstd") is None
    assert manifest.current(data, info, dest, image_id, "gzip") is None
    assert manifest.current(data, info._replace(size=1), dest, image_id, "zstd") is None
    assert manifest.current(data, info._replace(etag="rewritten"), dest, image_id, "zstd") is None
    assert manifest.current(data, info, "s3://bucket/renamed.tar.zst", image_id, "zstd") is None
    assert manifest.current(None, info, dest, image_id, "zstd") is None
    assert manifest.current(data, None, dest, image_id, "zstd") is None
    assert manifest.current(b"{not json", info, dest, image_id, "zstd") is None
    # A manifest of droot_export 0.1.0, without tar_size: the archive is exported again.
    old = json.loads(data)
    del old["tar_size"]
    assert manifest.current(json.dumps(old).encode(), info, dest, image_id, "zstd") is None


def test_manifest_document_fields():
    data, info = write("/srv/app.tar.zst")
    document = json.loads(data)
    assert set(document) == {"format", "archive", "sha256", "size", "tar_size", "etag", "compression", "image_id",
                             "config", "created"}
    assert document["created"].endswith("Z") and document["format"] == 1


class MemoryWriter:
    def __init__(self):
        self.data = io.BytesIO()
        self.committed = False

    def write(self, data):
        self.data.write(data)

    def commit(self):
        self.committed = True
        return store.ObjectInfo(len(self.data.getvalue()), None, None)


@pytest.mark.parametrize("compression", archive.COMPRESSIONS)
def test_write_archive_hashes_what_it_stores(compression):
    original = io.BytesIO()
    with tarfile.open(fileobj=original, mode="w") as tar:
        info = tarfile.TarInfo("bin/app")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"app"))
    writer = MemoryWriter()
    entries = exporter.synthetic_entries(source().config())
    sha256, info, tar_size = exporter.write_archive(iter([original.getvalue()]), entries, writer, compression)
    stored = writer.data.getvalue()
    assert writer.committed and info.size == len(stored)
    assert sha256 == hashlib.sha256(stored).hexdigest()
    with tarfile.open(fileobj=archive.decompressing_reader(io.BytesIO(stored)), mode="r|") as tar:
        assert [member.name for member in tar] == [".drootenv", ".droot", ".droot/config.json", "bin/app"]
    # tar_size is the whole uncompressed stream: the prepended entries, then docker export's bytes.
    uncompressed = archive.decompressing_reader(io.BytesIO(stored)).read()
    assert tar_size == len(uncompressed) == len(original.getvalue()) + sum(
        len(entry.to_bytes()) for entry in entries)


def test_signals_raise_a_clean_error_and_handlers_are_restored():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(exporter.ExportInterrupted, match="SIGTERM"):
        with exporter.SignalsRaise():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_exporter_refuses_a_read_only_dest_and_a_bad_level_before_touching_docker():
    params = {"dest": "https://example.org/a.tar.zst", "compression": "zstd", "compression_level": None}
    with pytest.raises(exporter.ExportError, match="read-only"):
        exporter.Exporter(params)
    with pytest.raises(archive.ArchiveError, match="1 to 9"):
        exporter.Exporter(dict(params, dest="/tmp/a.tar.gz", compression="gzip", compression_level=11))


def test_a_docker_socket_the_user_may_not_use_is_named_with_the_fix(monkeypatch):
    def refused(**kwargs):
        # What docker 7 raises: its own error, from requests' ConnectionError, from urllib3's ProtocolError.
        try:
            raise ConnectionError(OSError("Connection aborted.", PermissionError(13, "Permission denied")))
        except ConnectionError as exc:
            raise exporter.DOCKER.module.errors.DockerException(
                "Error while fetching server API version: %s" % exc) from exc

    monkeypatch.setattr(exporter.DOCKER.module, "DockerClient", refused)
    with pytest.raises(exporter.ExportError, match=r"^uid %d may not use the Docker socket /var/run/docker.sock "
                                                   r"\(permission denied\): add become: true to the task, or add the "
                                                   r"user to the socket's group \S+, which is as good as root$"
                                                   % os.geteuid()):
        exporter.connect()

    def absent(**kwargs):
        raise exporter.DOCKER.module.errors.DockerException(
            "Error while fetching server API version: FileNotFoundError(2, 'No such file or directory')")

    monkeypatch.setattr(exporter.DOCKER.module, "DockerClient", absent)
    with pytest.raises(exporter.ExportError, match="cannot reach the Docker daemon at unix:///run/x.sock .*start "
                                                   "dockerd"):
        exporter.connect("unix:///run/x.sock")


def test_check_mode_of_a_build_checks_its_context(tmp_path, monkeypatch):
    class Client:
        api = None

    monkeypatch.setattr(exporter, "connect", lambda docker_host=None: (Client(), {}))
    params = {"dest": str(tmp_path / "a.tar.zst"), "compression": "zstd", "compression_level": None, "force": False,
              "build": {"path": str(tmp_path / "missing")}, "image": None, "container": None, "docker_host": None}
    params.update(dict.fromkeys(store.S3Options.FIELDS))
    with pytest.raises(exporter.ExportError, match="build context .*missing is not a directory: fix build.path"):
        exporter.Exporter(params, check_mode=True).run()
    params["build"] = {"path": str(tmp_path)}
    result = exporter.Exporter(params, check_mode=True).run()
    assert result["changed"] and "image_id" not in result and result["msg"] == "would build %s and export it" % tmp_path
