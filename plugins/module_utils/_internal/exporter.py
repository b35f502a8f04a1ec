# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""droot_export's logic: resolve the source, stream ``docker export`` into a compressed archive.

The export never starts the image: a container is created from it (never started), exported
and removed. It is removed in every outcome: by ``finally`` on errors, by a signal handler on
SIGTERM/SIGINT/SIGHUP, by a forked guardian process when this process is killed outright
(SIGKILL), and, should the guardian die too, by the next run, which removes labelled
containers whose owner process is gone.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import signal
import time

from ansible_collections.droot.core.plugins.module_utils._internal import archive, imageconfig, manifest, store
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, OptionalLibrary

DOCKER = OptionalLibrary("docker")

OWNER_LABEL = "droot.core.export.owner"
CONTAINER_PREFIX = "droot-export-"
# The temporary container never starts; this entrypoint only satisfies images without a command.
PLACEHOLDER_ENTRYPOINT = ["/.droot-export-never-runs"]
BUILD_LOG_TAIL = 10
EXPORT_CHUNK = 1 << 20
INTERRUPTING_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class ExportError(DrootError):
    """A failure of droot_export with a one-line message naming the fix."""


class ExportInterrupted(ExportError):
    """A signal asked us to stop; cleanup runs on the way out."""


# --- Docker endpoint ------------------------------------------------------------------------

def docker_client_kwargs(docker_host=None, environ=None):
    """DockerClient arguments from DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ``docker_host`` first."""
    kwargs = DOCKER.module.utils.kwargs_from_env(environment=dict(os.environ if environ is None else environ))
    if docker_host:
        kwargs["base_url"] = docker_host
    return kwargs


def describe_endpoint(kwargs):
    return kwargs.get("base_url") or "unix:///var/run/docker.sock"


def _group_of(path):
    try:
        return grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        return "docker"


def _denied(exc, depth=0):
    """Whether a PermissionError is behind ``exc`` (docker wraps requests, which wraps urllib3)."""
    if isinstance(exc, PermissionError):
        return True
    nested = [exc.__cause__, exc.__context__] + list(getattr(exc, "args", ()))
    return depth < 8 and any(isinstance(inner, BaseException) and _denied(inner, depth + 1) for inner in nested)


def connect(docker_host=None):
    """A DockerClient that answered a ping; an unreachable daemon is one clear error."""
    kwargs = docker_client_kwargs(docker_host)
    try:
        client = DOCKER.module.DockerClient(**kwargs)
        client.ping()
    except DOCKER.module.errors.TLSParameterError as exc:
        raise ExportError("the Docker TLS settings are incomplete (%s): check DOCKER_CERT_PATH and "
                          "DOCKER_TLS_VERIFY" % exc)
    except Exception as exc:  # requests, urllib3 and docker each raise their own connection errors
        endpoint = describe_endpoint(kwargs)
        if _denied(exc):
            socket = endpoint.split("unix://", 1)[-1]
            raise ExportError("uid %d may not use the Docker socket %s (permission denied): add become: true to the "
                              "task, or add the user to the socket's group %s, which is as good as root"
                              % (os.geteuid(), socket, _group_of(socket)))
        raise ExportError("cannot reach the Docker daemon at %s (%s): start dockerd or set docker_host / "
                          "DOCKER_HOST" % (endpoint, _first_line(exc)))
    return client, kwargs


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# --- owner identity for stale-container cleanup ----------------------------------------------

def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def process_identity(pid=None):
    """``boot_id:pid:starttime`` of a process, unique across pid reuse and reboots; None if gone."""
    pid = os.getpid() if pid is None else pid
    stat_line = _read("/proc/%d/stat" % pid)
    boot_id = (_read("/proc/sys/kernel/random/boot_id") or "unknown").strip()
    if stat_line is None:
        return None
    # Field 22 (starttime) counted after the parenthesised command name, which may hold spaces.
    fields = stat_line.rsplit(")", 1)[1].split()
    return "%s:%d:%s" % (boot_id, pid, fields[19])


def owner_is_gone(owner):
    """True when ``owner`` names a process of this boot that no longer runs."""
    try:
        boot_id, pid, _starttime = owner.split(":")
        pid = int(pid)
    except ValueError:
        return False
    local_boot = (_read("/proc/sys/kernel/random/boot_id") or "").strip()
    if boot_id != local_boot:
        # Another machine's (or an earlier boot's) run: only that machine can tell.
        return False
    return process_identity(pid) != owner


def remove_stale_containers(client):
    """Remove temporary containers left by killed runs on this machine; returns their names."""
    removed = []
    for container in client.api.containers(all=True, filters={"label": OWNER_LABEL}):
        owner = (container.get("Labels") or {}).get(OWNER_LABEL, "")
        if owner_is_gone(owner):
            remove_container(client, container["Id"])
            removed.append(container["Names"][0].lstrip("/") if container.get("Names") else container["Id"])
    return removed


def remove_container(client, ref, attempts=10):
    """Force-remove a container; retries while the daemon still finishes an export of it."""
    errors = DOCKER.module.errors
    for attempt in range(attempts):
        try:
            client.api.remove_container(ref, force=True, v=True)
            return
        except errors.NotFound:
            return
        except errors.APIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


# --- guardian: cleanup that survives SIGKILL ------------------------------------------------

class Guardian:
    """A forked process that undoes what is still pending when this process dies.

    The parent tells it, line by line over a pipe, what to undo (a temporary container, a
    temporary file, a multipart upload) and when that is no longer needed. EOF on the pipe
    with something pending means the parent died without cleaning up: the guardian does it.
    Fork before any thread starts: the child only runs ``undo``.
    """

    def __init__(self, undo):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, exercised by the integration tests
            os.close(write_end)
            self._child(read_end, undo)
        os.close(read_end)
        self.pid = pid
        self._pipe = os.fdopen(write_end, "w", buffering=1)

    @staticmethod
    def _child(read_end, undo):  # pragma: no cover
        status = 0
        try:
            os.setsid()  # out of the parent's process group: a group kill does not take us along
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)  # ansible waits for the module's stdout to close
            for number in INTERRUPTING_SIGNALS:
                signal.signal(number, signal.SIG_IGN)
            pending = {}
            with os.fdopen(read_end) as lines:
                for line in lines:
                    message = json.loads(line)
                    if message["action"] is None:
                        pending.pop(message["key"], None)
                    else:
                        pending[message["key"]] = message["action"]
            for action in pending.values():
                try:
                    undo(action)
                except Exception:
                    status = 1
        finally:
            os._exit(status)

    def set(self, key, action):
        """Record (or with ``None`` forget) what to undo for ``key``."""
        self._pipe.write(json.dumps({"key": key, "action": action}) + "\n")

    def close(self):
        """Nothing left to guard: let the guardian exit and reap it."""
        self._pipe.close()
        os.waitpid(self.pid, 0)


def make_undo(docker_kwargs, s3_params):
    """The guardian's undo: builds its own clients, the parent's connections may be mid-request."""
    def undo(action):
        if action["kind"] == "container":
            remove_container(DOCKER.module.DockerClient(**docker_kwargs), action["name"])
        else:
            store.undo_pending(action, store.S3Options.from_params(s3_params))
    return undo


class SignalsRaise:
    """While active, SIGTERM/SIGINT/SIGHUP raise ExportInterrupted so ``finally`` blocks run."""

    def __enter__(self):
        self._previous = {}
        for number in INTERRUPTING_SIGNALS:
            self._previous[number] = signal.signal(number, self._raise)
        return self

    @staticmethod
    def _raise(number, frame):
        raise ExportInterrupted("interrupted by %s; the temporary container and the partial archive were "
                                "removed: run the task again" % signal.Signals(number).name)

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            signal.signal(number, handler)


# --- sources --------------------------------------------------------------------------------

class Source:
    """What to export: the image attrs for the config, and the container to export if it exists."""

    def __init__(self, kind, description, image_attrs, container_id=None, image_id=None):
        self.kind = kind
        self.description = description
        self.image_attrs = image_attrs
        self.container_id = container_id
        self.image_id = image_id or image_attrs.get("Id")

    def config(self):
        return imageconfig.config_from_inspect(self.image_attrs, self.description)


def _docker_call(what, function, *args, **kwargs):
    errors = DOCKER.module.errors
    try:
        return function(*args, **kwargs)
    except errors.NotFound:
        raise
    except errors.APIError as exc:
        raise ExportError("the Docker daemon refused to %s: %s" % (what, exc.explanation or exc))
    except errors.DockerException as exc:
        raise ExportError("Docker failed to %s: %s" % (what, _first_line(exc)))


def image_source(client, name):
    try:
        image = _docker_call("inspect the image", client.images.get, name)
    except DOCKER.module.errors.NotFound:
        raise ExportError("image %s not found on the Docker daemon: build or pull it first, or fix the "
                          "image option" % name)
    return Source("image", {"type": "image", "name": name}, image.attrs)


def container_source(client, ref):
    try:
        attrs = _docker_call("inspect the container", client.api.inspect_container, ref)
    except DOCKER.module.errors.NotFound:
        raise ExportError("container %s not found: check the name or id with docker ps -a" % ref)
    image_id = attrs.get("Image")
    try:
        image_attrs = client.api.inspect_image(image_id)
    except DOCKER.module.errors.NotFound:
        image_attrs = {}
    # The container's own config (its env, workdir, user, command) is what it runs with.
    merged = {
        "Id": image_id,
        "RepoTags": image_attrs.get("RepoTags") or [],
        "Created": image_attrs.get("Created"),
        "Config": attrs.get("Config") or {},
    }
    description = {"type": "container", "name": attrs.get("Name", "").lstrip("/"), "id": attrs["Id"]}
    return Source("container", description, merged, container_id=attrs["Id"], image_id=image_id)


def build_log_tail(build_log, lines=BUILD_LOG_TAIL):
    """The last ``lines`` lines of a Docker build log (SDK dicts), the error included."""
    text = []
    for entry in build_log or []:
        for field in ("stream", "error", "status"):
            value = entry.get(field) if isinstance(entry, dict) else None
            if value:
                text.extend(line.strip() for line in str(value).splitlines() if line.strip())
    return text[-lines:]


def check_build_context(build):
    if not os.path.isdir(build["path"]):
        raise ExportError("build context %s is not a directory: fix build.path" % build["path"])


def build_source(client, build):
    kwargs = dict(
        path=build["path"],
        dockerfile=build.get("dockerfile"),
        buildargs=build.get("args") or None,
        tag=build.get("tag"),
        target=build.get("target"),
        network_mode=build.get("network"),
        nocache=bool(build.get("no_cache")),
        rm=True,
        forcerm=True,  # intermediate containers go even when a step fails
    )
    check_build_context(build)
    try:
        image, log = client.images.build(**dict((k, v) for k, v in kwargs.items() if v is not None))
    except DOCKER.module.errors.BuildError as exc:
        tail = build_log_tail(exc.build_log)
        raise ExportError("building %s failed: %s; build log tail: %s" % (
            build["path"], _first_line(exc), " | ".join(tail)), build_log=tail)
    except DOCKER.module.errors.APIError as exc:
        raise ExportError("building %s failed: %s" % (build["path"], exc.explanation or exc))
    description = {"type": "build", "path": build["path"], "tag": build.get("tag")}
    source = Source("build", description, image.attrs)
    source.build_log = build_log_tail(log, lines=1000)
    return source


# --- archive and manifest -------------------------------------------------------------------

def synthetic_entries(config, mtime=None):
    """The two entries droot_run reads: upstream's ``.drootenv`` and our ``.droot/config.json``."""
    directory = os.path.dirname(imageconfig.CONFIG_FILE)
    return [
        archive.TarEntry(imageconfig.ENV_FILE, imageconfig.render_drootenv(config.get("env") or []), mtime=mtime),
        archive.TarEntry(directory, mtime=mtime),
        archive.TarEntry(imageconfig.CONFIG_FILE,
                         json.dumps(config, indent=2, sort_keys=True).encode("utf-8") + b"\n", mtime=mtime),
    ]


class _HashingSink:
    """Counts and hashes the compressed bytes on their way to the store."""

    def __init__(self, writer):
        self._writer = writer
        self.sha256 = hashlib.sha256()

    def write(self, data):
        self.sha256.update(data)
        self._writer.write(data)
        return len(data)


def write_archive(chunks, entries, writer, compression, level=None, threads=-1):
    """Compress ``entries`` then ``chunks`` into ``writer``.

    Returns (sha256 hex, ObjectInfo, bytes of the uncompressed tar stream).
    """
    sink = _HashingSink(writer)
    compressor = archive.compressing_writer(sink, compression, level=level, threads=threads)
    tar_size = 0
    for chunk in archive.prepend_entries(chunks, entries):
        tar_size += len(chunk)
        compressor.write(chunk)
    compressor.close()
    info = writer.commit()
    return sink.sha256.hexdigest(), info, tar_size


def _export_stream(client, container_ref):
    """``docker export`` as a chunk iterator whose transport errors are ExportError."""
    try:
        yield from client.api.export(container_ref, chunk_size=EXPORT_CHUNK)
    except DOCKER.module.errors.NotFound:
        raise ExportError("container %s disappeared during the export: run the task again" % container_ref)
    except DOCKER.module.errors.APIError as exc:
        raise ExportError("the Docker daemon refused the export: %s" % (exc.explanation or exc))
    except ExportError:
        raise
    except Exception as exc:  # requests/urllib3 errors when the daemon dies mid-stream
        raise ExportError("the docker export stream broke (%s): check the Docker daemon and run again"
                          % _first_line(exc))


class Exporter:
    """One droot_export run: ``run()`` returns the module result."""

    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self.dest = params["dest"]
        self.compression = params["compression"]
        self.s3_options = store.S3Options.from_params(params)
        self.s3_params = dict((name, params.get(name)) for name in store.S3Options.FIELDS)
        store.parse_location(self.dest)  # a bad dest fails before anything else happens
        archive.check_level(self.compression, params.get("compression_level"))
        if store.parse_location(self.dest).scheme in ("http", "https"):
            raise ExportError("dest %s is read-only: write archives to s3://BUCKET/KEY or a local path"
                              % self.dest)

    def run(self):
        client, docker_kwargs = connect(self.params.get("docker_host"))
        result = {"changed": False, "dest": self.dest, "manifest": store.manifest_location(self.dest),
                  "compression": self.compression}
        result["stale_containers_removed"] = [] if self.check_mode else remove_stale_containers(client)
        if self.params.get("build") and self.check_mode:
            # Its image id is known only once it is built.
            check_build_context(self.params["build"])
            result.update(changed=True, msg="would build %s and export it" % self.params["build"]["path"])
            return result
        source = self.resolve(client)
        result["image_id"] = source.image_id
        if source.kind != "container" and not self.params.get("force"):
            document = manifest.current(
                manifest.read_bytes(self.dest, self.s3_options),
                store.stat(self.dest, self.s3_options), self.dest, source.image_id, self.compression)
            if document is not None:
                result.update(sha256=document["sha256"], size=document["size"])
                return result
        result["changed"] = True
        if self.check_mode:
            return result
        if getattr(source, "build_log", None):
            result["build_log"] = source.build_log
        with SignalsRaise():
            sha256, info = self.export(client, docker_kwargs, source)
        result.update(sha256=sha256, size=info.size)
        return result

    def resolve(self, client):
        if self.params.get("image"):
            return image_source(client, self.params["image"])
        if self.params.get("container"):
            return container_source(client, self.params["container"])
        return build_source(client, self.params["build"])

    def export(self, client, docker_kwargs, source):
        config = source.config()
        guardian = Guardian(make_undo(docker_kwargs, self.s3_params))
        container = source.container_id
        try:
            if container is None:
                container = self.create_container(client, guardian, source.image_id)
            writer = store.open_writer(self.dest, self.s3_options,
                                       on_pending=lambda action: guardian.set("writer", action))
            with writer:
                sha256, info, tar_size = write_archive(
                    _export_stream(client, container), synthetic_entries(config), writer,
                    self.compression, self.params.get("compression_level"))
            if source.container_id is None:
                remove_container(client, container)
                guardian.set("container", None)
                container = None
            document = manifest.document(self.dest, sha256, info, tar_size, self.compression, source.image_id,
                                         config)
            manifest.write(self.dest, document, self.s3_options,
                           on_pending=lambda action: guardian.set("manifest", action))
        finally:
            if container is not None and source.container_id is None:
                try:
                    remove_container(client, container)
                    guardian.set("container", None)
                except Exception:
                    pass  # the guardian removes it when we are gone
            guardian.close()
        return sha256, info

    def create_container(self, client, guardian, image_id):
        name = CONTAINER_PREFIX + os.urandom(6).hex()
        # Registered before it exists, so no moment passes where a kill would leak it.
        guardian.set("container", {"kind": "container", "name": name})
        created = _docker_call(
            "create the temporary container", client.api.create_container,
            image=image_id, name=name, entrypoint=PLACEHOLDER_ENTRYPOINT, command=[],
            labels={OWNER_LABEL: process_identity()}, network_disabled=True,
            host_config=client.api.create_host_config(network_mode="none"))
        return created["Id"]
