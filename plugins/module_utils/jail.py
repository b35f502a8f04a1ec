# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run sequence: from a root directory and options to a jailed process.

It reads top to bottom as bubblewrap's does. The parent resolves everything first (no side
effects), then builds the mount set, then forks one child that runs the ``CHILD_STEPS`` in
order and execs. Every step has a name; a failure anywhere is reported with that name (the
child sends it with errno over a close-on-exec pipe) and the mounts this call made are taken
down again.
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import shlex
import signal
import time
from collections import namedtuple

from ansible_collections.droot.core.plugins.module_utils import caps, imageconfig, mountinfo, procs, safepath, users
from ansible_collections.droot.core.plugins.module_utils.common import DrootError, file_lock
from ansible_collections.droot.core.plugins.module_utils.mounts import Bind

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_COPY_FILES = ("/etc/hosts", "/etc/resolv.conf")
PIDFILE_DIR = "/run/droot"
LOG_DIR = "/var/log/droot"

Plan = namedtuple("Plan", "root argv identity kept env workdir binds copy_files no_new_privs tty_gid")
Outcome = namedtuple("Outcome", "rc stdout stderr pid timed_out")


class JailError(DrootError):
    pass


def _step(name, action, *args):
    """Run one parent step; any failure becomes a JailError naming the step."""
    try:
        return action(*args)
    except DrootError as error:
        if error.step is None:
            error.step = name
        raise
    except OSError as error:
        detail = error.strerror or str(error)
        if error.filename:
            detail = "%s: %s" % (error.filename, detail)
        raise JailError(detail, step=name)


# ---------------------------------------------------------------------------------------------
# Options -> plan (no side effects; used by check mode too)

def parse_bind(item):
    """A bind from ``{src, dest, readonly}`` or upstream's short form ``SRC[:DEST][:ro|rw]``."""
    if isinstance(item, dict):
        src, dest, readonly = item.get("src"), item.get("dest") or item.get("src"), bool(item.get("readonly"))
        unknown = set(item) - {"src", "dest", "readonly"}
        if unknown:
            raise JailError("bind %r has unknown key(s) %s; use src, dest, readonly" % (item, ", ".join(sorted(unknown))),
                            step="binds")
    else:
        parts = str(item).split(":")
        readonly = False
        if len(parts) > 1 and parts[-1] in ("ro", "rw"):
            readonly = parts.pop() == "ro"
        if len(parts) > 2:
            raise JailError("bind %r has too many ':'; write it as {src, dest, readonly}" % item, step="binds")
        src, dest = parts[0], parts[-1]
    if not src:
        raise JailError("bind %r has no source" % (item,), step="binds")
    if not os.path.isabs(src):
        raise JailError("bind source %r must be an absolute host path" % src, step="binds")
    if not dest or not os.path.isabs(dest):
        raise JailError("bind destination %r must be an absolute path inside the root" % dest, step="binds")
    real = os.path.realpath(src)
    if not os.path.exists(real):
        raise JailError("bind source %s does not exist on the host; create it or fix the path" % src, step="binds")
    return Bind(real, os.path.normpath(dest), readonly)


def open_root(root):
    """The realpath of ``root`` and a descriptor of it; a clear error if it is no directory."""
    real = os.path.realpath(root)
    if not os.path.exists(real):
        raise JailError("root %s does not exist; fetch or unpack an image there first" % root, step="open-root")
    if not os.path.isdir(real):
        raise JailError("root %s is not a directory" % root, step="open-root")
    if real == "/":
        raise JailError("root must not be the host's /", step="open-root")
    return real, safepath.open_root(real)


def build_env(identity, image_env, extra_env):
    env = {"PATH": DEFAULT_PATH, "HOME": identity.home or "/"}
    if identity.name:
        env["USER"] = env["LOGNAME"] = identity.name
    env.update(image_env)
    env.update({str(key): str(value) for key, value in (extra_env or {}).items()})
    return env


def _command(params, config):
    if params.get("command"):
        return [str(arg) for arg in params["command"]]
    if params.get("cmd"):
        return shlex.split(params["cmd"])
    argv = list(config.entrypoint or []) + list(config.cmd or [])
    if not argv:
        raise JailError("no command to run: set command or cmd, or export the image with an Entrypoint or Cmd",
                        step="command")
    return argv


def _tty_gid(root_fd):
    for entry in users.Database.from_root(root_fd).group:
        if entry.name == "tty":
            return entry.gid
    return 5


def _copy_files(option):
    if option in (None, False, [], "no", "false"):
        return ()
    if option is True or option in ("yes", "true"):
        return DEFAULT_COPY_FILES
    if not isinstance(option, list):
        raise JailError("copy_files must be true, false or a list of absolute host paths", step="copy-files")
    for path in option:
        if not os.path.isabs(str(path)):
            raise JailError("copy_files entry %r must be an absolute host path" % path, step="copy-files")
        if not os.path.isfile(str(path)):
            raise JailError("copy_files entry %s is not a file on the host" % path, step="copy-files")
    return tuple(str(path) for path in option)


def plan(root, root_fd, params):
    """Everything the run needs, resolved from the options and the root's own files."""
    config = _step("image-config", imageconfig.read_image_config, root_fd) if params.get("image_config", True) \
        else imageconfig.EMPTY
    image_user, image_group = users.split_user_spec(config.user)
    user = params.get("user") if params.get("user") is not None else image_user
    group = params.get("group") if params.get("group") is not None else (
        image_group if params.get("user") is None else None)
    identity = _step("resolve-user", users.resolve, root_fd, user, group)
    kept = None
    if params.get("drop_capabilities", True):
        wanted = params.get("capabilities")
        kept = _step("capabilities", caps.parse, caps.DEFAULT_KEPT if wanted is None else wanted,
                     params.get("allow_dangerous_capabilities") or ())
    binds = tuple(_step("binds", parse_bind, item) for item in params.get("binds") or ())
    workdir = params.get("chdir") or config.working_dir or "/"
    if not workdir.startswith("/"):
        raise JailError("chdir %r must be an absolute path inside the root" % workdir, step="chdir")
    return Plan(
        root=root,
        argv=_step("command", _command, params, config),
        identity=identity,
        kept=kept,
        env=build_env(identity, config.env, params.get("env")),
        workdir=workdir,
        binds=binds,
        copy_files=_step("copy-files", _copy_files, params.get("copy_files")),
        no_new_privs=params.get("no_new_privs", True),
        tty_gid=_tty_gid(root_fd),
    )


# ---------------------------------------------------------------------------------------------
# The mount set and copied files (parent side effects, undone on failure)

def setup_mounts(the_plan, mount_set):
    """Build the jail's mounts in order; returns a descriptor of the root as the jail sees it."""
    _step("bind-root", mount_set.bind_root)
    # reopened: the descriptor taken before the self-bind points underneath it
    root_fd = _step("open-root", safepath.open_root, the_plan.root)
    try:
        for name, action, args in (
            ("mount-proc", mount_set.proc, (root_fd,)),
            ("mount-sys", mount_set.sys, (root_fd,)),
            ("mount-dev", mount_set.dev, (root_fd,)),
            ("mount-devpts", mount_set.devpts, (root_fd, the_plan.tty_gid)),
            ("mount-shm", mount_set.shm, (root_fd,)),
        ) + tuple(("bind " + bind.dest, mount_set.bind, (root_fd, bind)) for bind in the_plan.binds):
            _step(name, action, *args)
        for path in the_plan.copy_files:
            with open(path, "rb") as handle:
                _step("copy-files", safepath.write_in_root, root_fd, path, handle.read())
    except BaseException:
        os.close(root_fd)
        raise
    return root_fd


# ---------------------------------------------------------------------------------------------
# The child: one ordered list of named steps, then execve

class _Child:
    def __init__(self, the_plan, root_fd, stdio, report_fd):
        self.plan = the_plan
        self.root_fd = root_fd
        self.stdio = stdio
        self.report_fd = report_fd
        self.executable = None

    def setsid(self):
        os.setsid()  # no controlling tty: TIOCSTI on the caller's terminal is out of reach

    def stdio_fds(self):
        for target, fd in enumerate(self.stdio):
            os.dup2(fd, target)

    def close_fds(self):
        keep = sorted({self.report_fd, self.root_fd})
        start = 3
        for fd in keep:
            os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, os.sysconf("SC_OPEN_MAX"))

    def chroot(self):
        os.fchdir(self.root_fd)
        os.chroot(".")
        os.close(self.root_fd)

    def chdir(self):
        try:
            os.chdir(self.plan.workdir)
        except FileNotFoundError:
            raise OSError(2, "working directory %s does not exist in the root" % self.plan.workdir)

    def drop_bounding_set(self):
        if self.plan.kept is not None:
            caps.drop_bounding_set(self.plan.kept)

    def keep_caps(self):
        if self.plan.kept is not None:
            caps.keep_across_setuid()

    def setgroups(self):
        os.setgroups(list(self.plan.identity.groups))

    def setresgid(self):
        gid = self.plan.identity.gid
        os.setresgid(gid, gid, gid)

    def setresuid(self):
        uid = self.plan.identity.uid
        os.setresuid(uid, uid, uid)

    def capset(self):
        if self.plan.kept is not None:
            caps.set_process_sets(self.plan.kept)

    def ambient(self):
        if self.plan.kept is not None:
            caps.raise_ambient(self.plan.kept)

    def no_new_privs(self):
        if self.plan.no_new_privs:
            caps.set_no_new_privs()

    def find_command(self):
        self.executable = find_executable(self.plan.argv[0], self.plan.env.get("PATH", DEFAULT_PATH))

    def execve(self):
        os.execve(self.executable, self.plan.argv, self.plan.env)


CHILD_STEPS = (
    ("setsid", _Child.setsid),
    ("stdio", _Child.stdio_fds),
    ("close-fds", _Child.close_fds),
    ("chroot", _Child.chroot),
    ("chdir", _Child.chdir),
    ("drop-bounding-set", _Child.drop_bounding_set),
    ("keep-caps", _Child.keep_caps),
    ("setgroups", _Child.setgroups),
    ("setresgid", _Child.setresgid),
    ("setresuid", _Child.setresuid),
    ("capset", _Child.capset),
    ("ambient", _Child.ambient),
    ("no-new-privs", _Child.no_new_privs),
    ("find-command", _Child.find_command),
    ("execve", _Child.execve),
)


def find_executable(name, path_value):
    """PATH lookup as execvp does it, but inside the root (the child runs it after chroot)."""
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(directory or ".", name) for directory in path_value.split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if "/" not in name and any(os.path.isfile(c) for c in candidates):
        raise OSError(13, "command %r is not executable in the root" % name)
    raise OSError(2, "command %r not found in the root (PATH=%s)" % (name, path_value))


def _child_main(the_plan, root_fd, stdio, report_fd):
    """Runs in the forked child: never returns, never raises."""
    child = _Child(the_plan, root_fd, stdio, report_fd)
    for name, action in CHILD_STEPS:
        try:
            action(child)
        except BaseException as error:  # everything must reach the parent, nothing may unwind
            errno_value = getattr(error, "errno", None) or 0
            message = getattr(error, "strerror", None) or str(error) or type(error).__name__
            if getattr(error, "filename", None):
                message = "%s: %s" % (error.filename, message)
            try:
                os.write(report_fd, json.dumps({"step": name, "errno": errno_value, "msg": message}).encode())
            finally:
                os._exit(127)
    os._exit(127)


def spawn(the_plan, root_fd, stdio):
    """Fork the child; return its pid once execve succeeded, or raise the step that failed."""
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        _child_main(the_plan, root_fd, stdio, report_w)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as report:
        data = report.read()
    if data:
        os.waitpid(pid, 0)
        failure = json.loads(data.decode())
        raise JailError(failure["msg"], step=failure["step"], errno=failure["errno"])
    return pid


# ---------------------------------------------------------------------------------------------
# Foreground and detached runs

def run_foreground(the_plan, root_fd, stdin_data=None, timeout=None):
    """Run to completion with captured output; a timeout kills the process group."""
    stdin_fd = os.memfd_create("droot-stdin") if stdin_data is not None else os.open(os.devnull, os.O_RDONLY)
    if stdin_data is not None:
        os.write(stdin_fd, stdin_data.encode("utf-8"))
        os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = spawn(the_plan, root_fd, (stdin_fd, out_w, err_w))
    finally:
        for fd in (stdin_fd, out_w, err_w):
            os.close(fd)
    chunks = {out_r: [], err_r: []}
    deadline = time.monotonic() + timeout if timeout else None
    timed_out = False
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            events = selector.select(wait)
            if not events and deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                _kill_group(pid, signal.SIGKILL)
                break
            for key, _mask in events:
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
    os.close(out_r)
    os.close(err_r)
    _pid, status = os.waitpid(pid, 0)
    return Outcome(os.waitstatus_to_exitcode(status), b"".join(chunks[out_r]), b"".join(chunks[err_r]), pid, timed_out)


def _kill_group(pid, signum):
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def default_name(root):
    """A file name for a root's pidfile and log: its basename and a hash of the whole path."""
    digest = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return "%s-%s" % (os.path.basename(root.rstrip("/")) or "root", digest)


def write_pidfile(path, pid):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = "%s.%d.tmp" % (path, os.getpid())
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write("%d\n" % pid)
    os.rename(temporary, path)


def running_pids(root):
    """The jail's live processes: every process whose root is the jail's root or below it."""
    return sorted(procs.pids_in_root(root))


def _pidfile_is_ours(pidfile, root):
    """False when the pidfile names a live process of another root: not ours to remove."""
    try:
        with open(pidfile, encoding="ascii") as handle:
            pid = int(handle.read().strip())
        return mountinfo.is_within(os.readlink("/proc/%d/root" % pid), root)
    except (OSError, ValueError):
        return True


def start_detached(the_plan, root_fd, log_path, pidfile, settle=0.2):
    """Daemonize: own session, stdin from /dev/null, stdout and stderr appended to ``log_path``.

    A command that dies within ``settle`` seconds (a missing library, a bad flag) is reported
    here with its status, rather than left for a health check to guess at.
    """
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = spawn(the_plan, root_fd, (null_fd, log_fd, log_fd))
    finally:
        os.close(log_fd)
        os.close(null_fd)
    try:
        write_pidfile(pidfile, pid)
    except OSError as error:
        _kill_group(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise JailError("cannot write %s: %s" % (pidfile, error.strerror), step="pidfile")
    time.sleep(settle)
    exited, status = os.waitpid(pid, os.WNOHANG)
    if exited:
        os.unlink(pidfile)
        raise JailError("the command exited at once with status %d; see %s"
                        % (os.waitstatus_to_exitcode(status), log_path), step="start")
    return pid


def stop(root, pidfile, grace):
    """SIGTERM the jail's processes, SIGKILL what is left after ``grace`` seconds; True if any ran."""
    pids = running_pids(root)
    for pid in pids:
        _kill_group(pid, signal.SIGTERM)
        _signal(pid, signal.SIGTERM)
    if pids and not _wait_gone(root, grace):
        for pid in running_pids(root):
            _kill_group(pid, signal.SIGKILL)
            _signal(pid, signal.SIGKILL)
        if not _wait_gone(root, 10):
            raise JailError("processes %s in %s survive SIGKILL" % (running_pids(root), root), step="stop")
    if _pidfile_is_ours(pidfile, root):
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass
    return bool(pids)


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_gone(root, seconds):
    deadline = time.monotonic() + seconds
    while running_pids(root):
        if time.monotonic() >= deadline:
            return False
        _reap()
        time.sleep(0.05)
    return True


def _reap():
    """Collect exited children of this process, so they stop showing as live."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def root_lock(root, timeout=60):
    """One droot task sets up or takes down a root at a time.

    The lock file lives outside the root: a descriptor open inside it would keep its mounts busy.
    """
    os.makedirs(PIDFILE_DIR, exist_ok=True)
    return file_lock(os.path.join(PIDFILE_DIR, default_name(root) + ".lock"), timeout, root,
                     "wait for it to finish", JailError)


def jail_mounts(root):
    return [mount.mount_point for mount in reversed(mountinfo.mounts_under(root))]
