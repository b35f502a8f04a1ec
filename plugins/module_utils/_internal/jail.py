# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run sequence: from a root directory and options to a jailed process.

It reads top to bottom as bubblewrap's does:

1. ``plan``: everything resolved from the options and the root's own files, no side effects
   (check mode stops here).
2. ``prepare``: what the jail takes from the host, opened and cloned on the host before the jail
   exists - the root and the binds as detached mount trees with their flags set, the host's
   devices and copied files, cap_last_cap, the seccomp filter.
3. With the jail's own namespaces (the default) the module forks the jail's init, PID 1 of a new
   PID namespace, which enters new mount and IPC namespaces and a new session keyring and runs
   ``SETUP_STEPS``; with the host's namespaces the module runs them itself.
4. The app's process is forked (by the init, or by the module) and runs ``APP_STEPS`` up to
   execve. In the jail's own namespaces it enters the root with pivot_root and detaches the old
   root; in the host's, with chroot.
5. The init reaps, forwards signals to the app, and exits with the app's status; when it exits,
   the kernel ends every process and mount of the jail.

Every step has a name; a failure anywhere is reported with that name (a child sends it with
errno over a close-on-exec pipe), and what the task mounted is gone again.
"""

from __future__ import annotations

import errno
import json
import os
import re
import selectors
import shlex
import signal
import stat
import time
from collections import namedtuple

from ansible_collections.droot.core.plugins.module_utils._internal import (
    caps, imageconfig, landlock, libc, mountinfo, mounts, procs, safepath, syscall_filter, users)
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_COPY_FILES = ("/etc/hosts", "/etc/resolv.conf")
OWN, HOST = "own", "host"
# Signals the init passes on to the app, as tini and bubblewrap's init do.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH, signal.SIGCONT)

Plan = namedtuple("Plan", "root argv identity kept env workdir binds copy_files no_new_privs tty_gid "
                          "namespaces last_cap seccomp shm_size landlock")
Bind = namedtuple("Bind", "src dest readonly")
Outcome = namedtuple("Outcome", "rc stdout stderr pid app_pid timed_out mounts stdout_size stderr_size")
# What a foreground run returns of each output stream: the module holds it in memory.
OUTPUT_LIMIT = 16 << 20
# How long output is still read once the jail's process has ended.
DRAIN_SECONDS = 1.0
Started = namedtuple("Started", "pid app_pid mounts")


class JailError(DrootError):
    pass


def _oserror_text(error):
    detail = error.strerror or str(error)
    return "%s: %s" % (error.filename, detail) if error.filename else detail


def _step(name, action, *args):
    """Run one step; any failure becomes a JailError naming the step."""
    try:
        return action(*args)
    except DrootError as error:
        if error.step is None:
            error.step = name
        raise
    except OSError as error:
        raise JailError(_oserror_text(error), step=name, errno=error.errno)


# ---------------------------------------------------------------------------------------------
# 1. Options -> plan (no side effects; used by check mode too)

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
        elif len(parts) == 3:
            raise JailError("bind %r: the mode %r must be ro or rw" % (item, parts[-1]), step="binds")
        if len(parts) > 2:
            raise JailError("bind %r has too many ':'; write it as {src, dest, readonly}" % item, step="binds")
        src, dest = parts[0], parts[-1]
    if not src:
        raise JailError("bind %r has no source" % (item,), step="binds")
    if not os.path.isabs(src):
        raise JailError("bind source %r must be an absolute host path" % src, step="binds")
    if not dest or not os.path.isabs(dest):
        raise JailError("bind destination %r must be an absolute path inside the root" % dest, step="binds")
    src = os.path.normpath(src)
    _no_symlink_on_the_way(src, "bind source", "binds")
    return Bind(src, os.path.normpath(dest), readonly)


def _no_symlink_on_the_way(path, what, step):
    """A jail's sources are named by canonical paths: a symlink on the way may have been planted by a jail."""
    if not os.path.lexists(path):
        raise JailError("%s %s does not exist on the host; create it or fix the path" % (what, path), step=step)
    link = safepath.first_symlink(path)
    if link is not None:
        raise JailError("%s %s goes through the symlink %s, which a jail could have planted: name the real path, "
                        "%s" % (what, path, link, os.path.realpath(path)), step=step)


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
    """(host source, path in the root) pairs.

    The defaults are the host's own configuration, followed through its symlinks (a resolv.conf
    of systemd-resolved is one); a listed file is named by its canonical path, as a bind source is.
    """
    if option in (None, False, [], "no", "false"):
        return ()
    if option is True or option in ("yes", "true"):
        pairs = tuple((os.path.realpath(path), path) for path in DEFAULT_COPY_FILES)
        for source, path in pairs:
            if not (mountinfo.is_within(source, "/etc") or mountinfo.is_within(source, "/run")):
                raise JailError("%s leads to %s, outside /etc and /run, where a jail could have planted a symlink: "
                                "list the files to copy by their real paths" % (path, source), step="copy-files")
        return pairs
    if not isinstance(option, list):
        raise JailError("copy_files must be true, false or a list of absolute host paths", step="copy-files")
    pairs = []
    for path in (os.path.normpath(str(entry)) for entry in option):
        if not os.path.isabs(path):
            raise JailError("copy_files entry %r must be an absolute host path" % path, step="copy-files")
        _no_symlink_on_the_way(path, "copy_files entry", "copy-files")
        if not os.path.isfile(path):
            raise JailError("copy_files entry %s is not a file on the host" % path, step="copy-files")
        pairs.append((path, path))
    return tuple(pairs)


def _resolve_user(root_fd, user, group):
    identity = users.resolve(root_fd, user, group)
    named = "0" if user is None else str(user)
    if identity.uid == 0 and named not in ("root", "0"):
        raise JailError(
            "user '%s' is uid 0 in the root's /etc/passwd, so the app would run as root: set user to "
            "root (or 0) to run it as root knowingly, or fix the image's passwd" % named, step="resolve-user")
    return identity


def _searchable_by_users(path):
    """A directory that someone other than root may search: as its owner, through any group or
    other bit (gid 0 has non-root members too), or through an access ACL, whose entries the mode's
    group bits only summarise."""
    info = os.stat(path, follow_symlinks=False)
    if info.st_mode & 0o011 or (info.st_uid != 0 and info.st_mode & 0o100):
        return True
    try:
        os.getxattr(path, "system.posix_acl_access", follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENODATA, errno.EOPNOTSUPP):
            return False
        raise
    return True


def _privileged(info, name, dir_fd):
    if not stat.S_ISREG(info.st_mode):
        return False
    if info.st_mode & 0o6000:
        return True
    try:
        os.getxattr("/proc/self/fd/%d/%s" % (dir_fd, name), "security.capability", follow_symlinks=False)
    except OSError:
        return False
    return True


# Below this many directories the walk gives up and counts the tree as holding a program.
SCAN_DEPTH = 256
# A directory is opened without following a symlink and without blocking, whatever a concurrent
# jail of the root swapped in after it was listed (a symlink to a host FIFO or device).
_SCAN_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _privileged_below(dir_fd, directory, root_mount, depth):
    """The first privileged program below ``dir_fd``; entries are typed by lstat, never followed."""
    if depth > SCAN_DEPTH:
        return "(a tree too deep to look through)"
    subdirs = []
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                subdirs.append(entry.name)
            elif _privileged(info, entry.name, dir_fd):
                return os.path.join(directory, entry.name)
    for name in subdirs:
        try:
            sub_fd = os.open(name, _SCAN_OPEN, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            if error.errno == errno.ELOOP:  # swapped for a symlink since it was listed: not followed
                continue
            raise
        try:
            if libc.mount_id(sub_fd) != root_mount:  # a mount below the root: not the image's
                continue
            found = _privileged_below(sub_fd, os.path.join(directory, name), root_mount, depth + 1)
        finally:
            os.close(sub_fd)
        if found:
            return found
    return None


def privileged_file_reachable(root, root_fd):
    """A setuid, setgid or file-capability program in a root that non-root host users can reach, or None.

    A jailed root can rewrite such a program in place (through a shared mapping, which keeps the
    bits) into a root shell for whoever runs it from the host, and it can chmod, link and move
    anything in its root first: only a directory above the root that no host user may search
    keeps them out. droot_fetch's releases/ is such a directory, so a release is never scanned.
    """
    path = "/"
    for part in [name for name in root.split("/") if name][:-1]:
        path = os.path.join(path, part)
        if not _searchable_by_users(path):
            return None
    top_fd = os.open(".", _SCAN_OPEN, dir_fd=root_fd)
    try:
        return _privileged_below(top_fd, "/", libc.mount_id(root_fd), 0)
    finally:
        os.close(top_fd)


def _refuse_reachable_privileged(root, root_fd):
    found = privileged_file_reachable(root, root_fd)
    if found:
        raise JailError(
            "the root holds %s, a setuid, setgid or file-capability program, and every directory above the root "
            "lets host users through: a jailed root could rewrite it into a root shell for them; make a directory "
            "above the root 0700 without an ACL (as droot_fetch's releases/ is) or take the program's privileges away" % found,
            step="privileged-files")


def plan(root, root_fd, params):
    """Everything the run needs, resolved from the options and the root's own files."""
    config = _step("image-config", imageconfig.read_image_config, root_fd) if params.get("image_config", True) \
        else imageconfig.EMPTY
    image_user, image_group = users.split_user_spec(config.user)
    user = params.get("user") if params.get("user") is not None else image_user
    group = params.get("group") if params.get("group") is not None else (
        image_group if params.get("user") is None else None)
    identity = _step("resolve-user", _resolve_user, root_fd, user, group)
    _step("privileged-files", _refuse_reachable_privileged, root, root_fd)
    namespaces = params.get("namespaces") or OWN
    last_cap = caps.last_cap()
    kept = None
    if params.get("drop_capabilities", True):
        wanted = params.get("capabilities")
        kept = _step("capabilities", caps.parse, caps.default_for(identity.uid) if wanted is None else wanted,
                     params.get("allow_dangerous_capabilities") or (), last_cap, namespaces == HOST)
    binds = tuple(_step("binds", parse_bind, item) for item in params.get("binds") or ())
    copy_files = _step("copy-files", _copy_files, params.get("copy_files"))
    for bind in binds:
        if mountinfo.is_within(bind.src, root):
            raise JailError("bind source %s is inside the root, where the image controls its paths; bind a host "
                            "directory outside it" % bind.src, step="binds")
        held_here = [(root, "the root")] + [(pair[0], "the copied file " + pair[0]) for pair in copy_files]
        for held, what in held_here:
            if mountinfo.is_within(held, bind.src):
                raise JailError("bind source %s holds %s: the jail could change what the next run gets; bind a "
                                "directory beside it" % (bind.src, what), step="binds")
    shm_size = str(params.get("shm_size") or "64m")
    if not re.match(r"^[0-9]+[kmg]?$", shm_size):
        raise JailError("shm_size %r must be a number of bytes with k, m or g, for example 64m" % shm_size,
                        step="mount-shm")
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
        copy_files=copy_files,
        no_new_privs=params.get("no_new_privs", True),
        tty_gid=_tty_gid(root_fd),
        namespaces=namespaces,
        last_cap=last_cap,
        seccomp=params.get("seccomp", True),
        shm_size=shm_size,
        landlock=landlock.abi() if namespaces == OWN else 0,
    )


# ---------------------------------------------------------------------------------------------
# 2. What the jail takes from the host, opened before it is entered

class Prepared:
    """Host descriptors and detached mount trees for one run; close() releases what is left."""

    def __init__(self, the_plan):
        self.sources = mounts.Sources()
        self.fds = []
        try:
            self._prepare(the_plan)
        except BaseException:
            self.close()
            raise

    def _open(self, path, kind):
        fd = mounts.open_host(path, kind)
        self.fds.append(fd)
        return fd

    def _prepare(self, the_plan):
        missing = mounts.mount_api_missing()
        if missing:
            raise JailError(missing, step="mount-api")
        self.root_fd = _step("open-root", safepath.open_root, the_plan.root)
        self.fds.append(self.root_fd)
        self.root_tree = _step("bind-root", self.sources.clone, self.root_fd, mounts.ATTR_NODEV)
        self.devices = tuple(
            (name, _step("mount-dev", self.sources.clone, self._open("/dev/" + name, "char"),
                         mounts.ATTR_RDONLY | mounts.ATTR_NOSUID | mounts.ATTR_NOEXEC))
            for name in mounts.DEVICES if os.path.exists("/dev/" + name))
        # Host namespaces: host mounts made later under a bind's source still show inside (slave).
        propagation = mounts.MS_SLAVE if the_plan.namespaces == HOST else mounts.MS_PRIVATE
        self.binds = []
        for bind in the_plan.binds:
            source = _step("bind " + bind.dest, self._open, bind.src, "dir" if os.path.isdir(bind.src) else "file")
            attrs = mounts.ATTR_NOSUID | mounts.ATTR_NODEV | (mounts.ATTR_RDONLY if bind.readonly else 0)
            tree = _step("bind " + bind.dest, self.sources.clone, source, attrs, True, propagation)
            self.binds.append((bind, source, tree))
        self.copies = []
        for path, dest in the_plan.copy_files:
            if the_plan.namespaces == OWN:  # bound read-only in the jail's namespace: the release is not written
                source = _step("copy-files", self._open, path, "file")
                tree = _step("copy-files", self.sources.clone, source, mounts.ATTR_RDONLY | mounts.API_ATTRS)
                self.copies.append((dest, source, tree))
            else:
                source = _step("copy-files", self._open, path, "file")
                with open(safepath.fd_path(source), "rb") as handle:
                    self.copies.append((dest, handle.read(), None))
        self.filter = None
        if the_plan.seccomp:
            kept = None if the_plan.kept is None else {caps.NAMES[number] for number in the_plan.kept}
            self.filter = syscall_filter.build(kept)

    def close(self):
        self.sources.close()
        for fd in self.fds:
            os.close(fd)
        self.fds = []


# ---------------------------------------------------------------------------------------------
# 3 and 4. The steps

class _Jail:
    """What the steps act on: the plan, the prepared host side, the jail's mounts."""

    def __init__(self, the_plan, prepared, stdio, report_fd, table):
        self.plan = the_plan
        self.host = prepared
        self.stdio = stdio
        self.report_fd = report_fd
        self.mounts = mounts.JailMounts(table)
        self.reused = False
        self.executable = None

    @property
    def own(self):
        return self.plan.namespaces == OWN

    # -- set-up: in the jail's init (own namespaces) or in the module (the host's) -------------

    def unshare(self):
        if self.own:
            libc.unshare(libc.CLONE_NEWNS | libc.CLONE_NEWIPC)
            libc.join_new_session_keyring()

    def private_mounts(self):
        if self.own:  # nothing mounted from here on propagates to the host, nor the host's in
            libc.mount(None, "/", None, mounts.MS_REC | mounts.MS_PRIVATE)

    def bind_root(self):
        if self.own:
            target = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        elif mounts.kept_mount_set(self.plan.root):
            self.reused = True
            self.mounts.reuse_root(safepath.open_root(self.plan.root))
            self.host.fds.append(self.mounts.root_fd)
            return
        else:  # on the root itself, even when it is a mount point already: ours is private
            target = os.dup(self.host.root_fd)
        try:
            self.mounts.bind_root(self.host.root_tree, target)
        finally:
            os.close(target)

    def _api(self, action, *args):
        if not self.reused:  # a kept mount set of the host's namespaces has them already
            action(*args)

    def mount_proc(self):
        self._api(self.mounts.proc)

    def mount_sys(self):
        self._api(self.mounts.sys)

    def mount_dev(self):
        self._api(self.mounts.dev, self.host.devices)

    def mount_devpts(self):
        self._api(self.mounts.devpts, self.plan.tty_gid)

    def mount_shm(self):
        self._api(self.mounts.shm, self.plan.shm_size)

    def mask_paths(self):
        if self.own:  # the host's namespaces keep 0.1.0's mount set, unmasked
            self.mounts.mask()

    def binds(self):
        for bind, source, tree in self.host.binds:
            _step("bind " + bind.dest, self.mounts.bind, bind.dest, tree, source,
                  stat.S_ISDIR(os.fstat(source).st_mode))

    def copy_files(self):
        for path, source, tree in self.host.copies:
            if tree is not None:
                _step("copy-files", self.mounts.bind, path, tree, source, False)
            else:
                _step("copy-files", safepath.write_in_root, self.mounts.root_fd, path, source)

    # -- the app's own process -------------------------------------------------------------

    def signals(self):
        """Default dispositions and an empty mask: Python ignores SIGPIPE, the init blocks some."""
        for signum in signal.valid_signals():
            if signum not in (signal.SIGKILL, signal.SIGSTOP):
                try:
                    signal.signal(signum, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass  # reserved by the C library
        signal.pthread_sigmask(signal.SIG_SETMASK, [])

    def setsid(self):
        os.setsid()  # no controlling tty: TIOCSTI on the caller's terminal is out of reach

    def stdio_fds(self):
        for target, fd in enumerate(self.stdio):
            os.dup2(fd, target)

    def close_fds(self):
        _close_all_but({0, 1, 2, self.report_fd, self.mounts.root_fd})

    def enter_root(self):
        os.fchdir(self.mounts.root_fd)
        if self.own:  # the old root goes: not even a chroot escape finds the host's files
            libc.pivot_root(".", ".")
            libc.umount2(".", mounts.MNT_DETACH)
        else:
            os.chroot(".")
        os.close(self.mounts.root_fd)
        os.chdir("/")

    def chdir(self):
        try:
            os.chdir(self.plan.workdir)
        except FileNotFoundError:
            raise OSError(2, "working directory %s does not exist in the root" % self.plan.workdir)

    def landlock(self):
        if self.plan.landlock:
            landlock.confine_to_root(self.plan.landlock)

    def seccomp(self):
        if self.host.filter is not None:
            self.host.filter.load()

    def drop_bounding_set(self):
        if self.plan.kept is not None:
            caps.drop_bounding_set(self.plan.kept, self.plan.last_cap)

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


SETUP_STEPS = (
    ("unshare", _Jail.unshare),
    ("private-mounts", _Jail.private_mounts),
    ("bind-root", _Jail.bind_root),
    ("mount-proc", _Jail.mount_proc),
    ("mount-sys", _Jail.mount_sys),
    ("mount-dev", _Jail.mount_dev),
    ("mount-devpts", _Jail.mount_devpts),
    ("mount-shm", _Jail.mount_shm),
    ("mask-paths", _Jail.mask_paths),
    ("binds", _Jail.binds),
    ("copy-files", _Jail.copy_files),
)

APP_STEPS = (
    ("signals", _Jail.signals),
    ("setsid", _Jail.setsid),
    ("stdio", _Jail.stdio_fds),
    ("close-fds", _Jail.close_fds),
    ("enter-root", _Jail.enter_root),
    ("landlock", _Jail.landlock),
    ("seccomp", _Jail.seccomp),
    ("drop-bounding-set", _Jail.drop_bounding_set),
    ("keep-caps", _Jail.keep_caps),
    ("setgroups", _Jail.setgroups),
    ("setresgid", _Jail.setresgid),
    ("setresuid", _Jail.setresuid),
    ("capset", _Jail.capset),
    ("ambient", _Jail.ambient),
    ("no-new-privs", _Jail.no_new_privs),
    ("chdir", _Jail.chdir),  # as the app's user, as Docker does: a WorkingDir it cannot enter fails
    ("find-command", _Jail.find_command),
    ("execve", _Jail.execve),
)


def _close_all_but(keep):
    start = 0
    for fd in sorted(keep):
        if start < fd:  # os.closerange(n, n) would close from n to the last descriptor
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))


def _run_steps(jail, steps):
    for name, action in steps:
        _step(name, action, jail)


def find_executable(name, path_value):
    """PATH lookup as execvp does it, but inside the root (the child runs it after entering it)."""
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


# ---------------------------------------------------------------------------------------------
# The processes: init and app

def _report(report_fd, message):
    os.write(report_fd, json.dumps(message).encode() + b"\n")


def _fail_here(report_fd, error):
    """In a child: send the failed step to the parent and exit; never returns."""
    try:
        if isinstance(error, DrootError):
            message = {"step": error.step, "errno": error.details.get("errno") or 0, "msg": error.msg}
        else:
            message = {"step": "internal", "errno": 0, "msg": "%s: %s" % (type(error).__name__, error)}
        _report(report_fd, message)
    finally:
        os._exit(127)


def _app_main(jail):
    """The app's process: never returns, never raises."""
    try:
        _run_steps(jail, APP_STEPS)
    except BaseException as error:  # everything must reach the parent, nothing may unwind
        _fail_here(jail.report_fd, error)
    os._exit(127)


def _exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _supervise(app_pid):
    """PID 1 of the jail: pass signals on, reap every child, end with the app's status."""
    def forward(signum, _frame):
        try:
            os.kill(app_pid, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == app_pid:
            os._exit(_exit_code(status))


def _init_main(jail):
    """PID 1 of a new PID namespace: set the jail up, start the app, supervise; never returns."""
    try:
        libc.prctl(libc.PR_SET_DUMPABLE, 0)  # the app cannot reach the init's /proc entries
        libc.set_name("droot-init")
        os.setsid()  # out of the caller's session and process group: its hangup or killpg is not the jail's
        _run_steps(jail, SETUP_STEPS)
        _report(jail.report_fd, {"mounts": jail.mounts.mounted})
        os.fchdir(jail.mounts.root_fd)  # the app's pivot_root then moves the init into the root too
        # Nothing of the host stays open: the app, still privileged until its credentials change,
        # must find no host descriptor in the init's /proc/1/fd.
        _close_all_but(set(jail.stdio) | {jail.report_fd, jail.mounts.root_fd})
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)  # none lost before the handlers are set
        app_pid = os.fork()
        if app_pid == 0:
            _app_main(jail)
        for target, fd in enumerate(jail.stdio):  # never hold the module's own stdio
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    except BaseException as error:
        _fail_here(jail.report_fd, error)
    try:
        _supervise(app_pid)
    finally:
        os._exit(127)


def _fork_init(jail):
    """Fork the init as PID 1 of a new PID namespace; this process stays in its own."""
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _step("unshare", libc.unshare, libc.CLONE_NEWPID)
        try:
            pid = os.fork()
            if pid == 0:
                _init_main(jail)
        finally:
            libc.setns(own_pid_ns, libc.CLONE_NEWPID)
    finally:
        os.close(own_pid_ns)
    return pid


def _read_reports(report_r, deadline):
    """The jail's reports until its app executes (the pipe closes); None when ``deadline`` passes first."""
    mounted, failure, data = [], None, b""
    with os.fdopen(report_r, "rb", buffering=0) as report, selectors.DefaultSelector() as selector:
        selector.register(report, selectors.EVENT_READ)
        while True:
            if deadline is not None and not selector.select(max(0.0, deadline - time.monotonic())):
                return None
            chunk = report.read(65536)
            if not chunk:
                break
            data += chunk
        for line in data.splitlines():
            message = json.loads(line.decode())
            if "mounts" in message:
                mounted = message["mounts"]
            else:
                failure = message
    return mounted, failure


def _app_pid(init_pid):
    try:
        with open("/proc/%d/task/%d/children" % (init_pid, init_pid), encoding="ascii") as handle:
            children = handle.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def spawn(the_plan, prepared, stdio, table=None, deadline=None):
    """Build the jail and start the app; returns Started once execve succeeded, or raises the failed step.

    ``table`` is the MountSet of a run in the host's namespaces, which the caller takes down. A jail
    not started by ``deadline`` (time.monotonic(); a step held, by a lease on its program, say) is killed.
    """
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    jail = _Jail(the_plan, prepared, stdio, report_w, table)
    try:
        if jail.own:
            pid = _fork_init(jail)
        else:
            _run_steps(jail, SETUP_STEPS)
            pid = os.fork()
            if pid == 0:
                _app_main(jail)
    except BaseException:
        os.close(report_r)
        raise
    finally:
        os.close(report_w)
        prepared.close()  # the jail holds what it needs
    reports = _read_reports(report_r, deadline)
    if reports is None:
        kill_jail(pid, the_plan.namespaces, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise JailError("the jail had not started its command when the timeout ended; nothing runs", step="start")
    mounted, failure = reports
    if failure:
        os.waitpid(pid, 0)
        raise JailError(failure["msg"], step=failure["step"], errno=failure["errno"])
    if jail.own:
        return Started(pid, _app_pid(pid), mounted)
    return Started(pid, pid, [entry.mount_point for entry in reversed(mounts.droot_mounts(the_plan.root))])


# ---------------------------------------------------------------------------------------------
# 5. Foreground and detached runs

def empty_stdin():
    """A standard input that reads as empty: a pipe nobody writes to, never the host's /dev/null.

    A jailed root could fchmod or fchown whatever its descriptors lead to on the host.
    """
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    os.close(write_end)
    return read_end


def run_foreground(the_plan, prepared, stdin_data=None, timeout=None, table=None):
    """Run to completion with captured output; a timeout kills the jail (its init, or the app's group).

    Each stream keeps its first OUTPUT_LIMIT bytes; the rest is read and dropped, and counted.
    """
    if stdin_data is None:
        stdin_fd = empty_stdin()
    else:
        stdin_fd = os.memfd_create("droot-stdin")
        os.write(stdin_fd, stdin_data.encode("utf-8"))
        os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        started = spawn(the_plan, prepared, (stdin_fd, out_w, err_w), table, deadline)
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        for fd in (stdin_fd, out_w, err_w):
            os.close(fd)
    # The jail could hand its output pipes to a host process, which would keep them open: once
    # the jail's process ends, what is left is read for a moment, not waited for.
    ended = procs.open_pidfd(started.pid)  # our child, not yet reaped
    try:
        (stdout, stdout_size), (stderr, stderr_size), timed_out = read_output(
            (out_r, err_r), ended, deadline, lambda: kill_jail(started.pid, the_plan.namespaces, signal.SIGKILL))
    finally:
        if ended is not None:
            os.close(ended)
    os.close(out_r)
    os.close(err_r)
    _pid, status = os.waitpid(started.pid, 0)
    return Outcome(os.waitstatus_to_exitcode(status), stdout, stderr, started.pid, started.app_pid, timed_out,
                   started.mounts, stdout_size, stderr_size)


def read_output(fds, ended, deadline, kill):
    """Read ``fds`` to their end: ((first OUTPUT_LIMIT bytes, size read), ...) and whether ``kill`` ran.

    ``ended`` (a pidfd, or None) becomes readable when the jail's process ends; from then on the
    output is read for DRAIN_SECONDS more. ``kill`` runs when ``deadline`` passes while it runs.
    """
    chunks = {fd: [] for fd in fds}
    sizes = dict.fromkeys(fds, 0)
    timed_out = jail_ended = False
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        if ended is not None:
            selector.register(ended, selectors.EVENT_READ)
        while set(selector.get_map()) & set(fds):
            # checked on every pass: a jail that keeps its pipes full never lets select time out
            if deadline is not None and time.monotonic() >= deadline:
                if not jail_ended:
                    timed_out = True
                    kill()
                break
            for key, _mask in selector.select(None if deadline is None else max(0.0, deadline - time.monotonic())):
                if key.fd == ended:
                    selector.unregister(ended)
                    jail_ended = True
                    drain_until = time.monotonic() + DRAIN_SECONDS
                    deadline = drain_until if deadline is None else min(deadline, drain_until)
                    continue
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fd)
                    continue
                if sizes[key.fd] < OUTPUT_LIMIT:
                    chunks[key.fd].append(data[:OUTPUT_LIMIT - sizes[key.fd]])
                sizes[key.fd] += len(data)
    return tuple((b"".join(chunks[fd]), sizes[fd]) for fd in fds) + (timed_out,)


def kill_jail(pid, namespaces, signum):
    """The init's death ends its whole PID namespace; in the host's, the app's process group goes."""
    try:
        if namespaces == OWN:
            os.kill(pid, signum)
        else:
            try:
                os.killpg(pid, signum)
            except ProcessLookupError:  # not yet the leader of its own group
                os.kill(pid, signum)
    except ProcessLookupError:
        pass
