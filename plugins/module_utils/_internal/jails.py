# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's jails: their names, pidfiles, logs and records; starting them detached, finding and stopping them.

A jail is named after the root as the task gave it (``/var/containers/app/current``), not the
release that path resolves to, so its pidfile, log and record stay the same across releases and
a jail started through ``current`` is found again after ``current`` moved on. The record
(``/run/droot/NAME.jail``) says which release it runs and pins the process by its start time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import time
from collections import namedtuple

from ansible_collections.droot.core.plugins.module_utils._internal import jail, libc, mountinfo, procs, safepath
from ansible_collections.droot.core.plugins.module_utils._internal.common import (
    RUN_DIR, AtomicFile, DrootError, file_lock, run_file)

LOG_DIR = "/var/log/droot"
JailError = jail.JailError

Record = namedtuple("Record", "pid root given started")


# ---------------------------------------------------------------------------------------------
# Names

def jail_name(given_root, name=None):
    """The name of a jail's pidfile, log and record: ``name``, or one made from the root as given.

    The path is normalised but its symlinks are not resolved; a trailing ``current`` gives way to
    the directory that holds it, so ``/var/containers/shop/current`` is ``shop-<hash>``.
    """
    if name is not None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", name):
            raise JailError("name %r must be letters, digits, '.', '_' or '-' (100 at most)" % name, step="name")
        return name
    path = os.path.normpath(os.path.abspath(given_root))
    label = os.path.basename(path)
    if label == "current":
        label = os.path.basename(os.path.dirname(path))
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return "%s-%s" % (label or "root", digest)


def pidfile_path(name, pidfile):
    return pidfile or os.path.join(RUN_DIR, name + ".pid")


def log_path_for(name, log_path):
    return log_path or os.path.join(LOG_DIR, name + ".log")


def legacy_pidfile(root):
    """Where droot.core 0.1.0 put a root's pidfile: named after the release path."""
    return run_file(root, ".pid")


# ---------------------------------------------------------------------------------------------
# Host files the module writes: never inside the root or a bind, never through a symlink

def check_host_files(paths, the_plan):
    """Refuse a log or pidfile a jail could redirect, and a bind that would let it forge droot's files.

    A path inside the root, or inside a bind's source (where the jail can plant a symlink), is
    refused; so is a bind whose source holds one of them, or droot's own directories.
    """
    for what, path in paths:
        check_outside_root(path, the_plan.root, what)
        parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        for bind in the_plan.binds:
            if mountinfo.is_within(parent, bind.src):
                raise JailError("%s %s is inside the source of the bind %s, where the jail could swap it for a "
                                "symlink; put it elsewhere" % (what, path, bind.dest), step=what)
    kept = [os.path.realpath(os.path.dirname(os.path.abspath(path))) for _what, path in paths] + [RUN_DIR, LOG_DIR]
    for bind in the_plan.binds:
        for directory in kept:
            if mountinfo.is_within(directory, bind.src):
                raise JailError("the bind source %s holds %s, where droot keeps jails' pidfiles, logs and records: a "
                                "jail could forge them; bind another directory" % (bind.src, directory),
                                step="bind " + bind.dest)


def check_outside_root(path, root, what):
    """Refuse a host file the module writes (log, pidfile) that lies inside the root.

    Every leading directory is resolved on its own: a path that passes through the root at any
    point (``current/var/log/...``, or an image symlink from there back to the host) is refused.
    """
    parts = os.path.abspath(path).split("/")[1:-1]
    for depth in range(len(parts) + 1):
        if mountinfo.is_within(os.path.realpath("/" + "/".join(parts[:depth])), root):
            raise JailError("%s %s is inside the root %s, where the image could redirect it; put it outside"
                            % (what, path, root), step=what)


def _host_dir(path, what, create=True):
    """(descriptor of the directory, name): the directory opened without a symlink anywhere on the way.

    The path as given is walked, never resolved first: a jail may have planted a symlink on it.
    """
    parent, name = os.path.split(os.path.normpath(os.path.abspath(path)))
    link = safepath.first_symlink(parent)
    if link is not None:
        raise JailError("%s %s goes through the symlink %s, which a jail could have planted: name the real path, "
                        "%s" % (what, path, link, os.path.join(os.path.realpath(parent), name)), step=what)
    try:
        return safepath.open_host_dir_strict(parent, create), name
    except (OSError, DrootError) as error:
        raise JailError("cannot open the directory of %s %s: %s" % (what, path, getattr(error, "strerror", error)),
                        step=what)


def open_outside_root(path, flags, root, what):
    """Open a regular host file the module writes: outside the root, never through a symlink, never a FIFO."""
    check_outside_root(path, root, what)
    dir_fd, name = _host_dir(path, what)
    try:
        try:
            if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise JailError("%s %s is not a regular file" % (what, path), step=what)
        except FileNotFoundError:
            pass
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o640, dir_fd=dir_fd)
    except OSError as error:
        raise JailError("cannot open %s %s: %s" % (what, path, error.strerror), step=what)
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise JailError("%s %s is not a regular file" % (what, path), step=what)
    return fd


def _write_outside_root(path, text, root, what):
    check_outside_root(path, root, what)
    dir_fd, name = _host_dir(path, what)
    try:
        with AtomicFile(name, "%s.%d.tmp" % (name, os.getpid()), dir_fd=dir_fd) as writer:
            writer.write(text.encode("utf-8"))
            writer.commit()
    finally:
        os.close(dir_fd)


def _unlink(path):
    try:
        dir_fd, name = _host_dir(path, "pidfile", create=False)
    except JailError:
        return  # its directory is gone or was swapped: nothing of ours to remove there
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------------------------------------
# Records

def _record_path(name):
    return os.path.join(RUN_DIR, name + ".jail")


def _start_time(pid):
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def write_record(name, pid, root, given):
    _write_outside_root(_record_path(name), json.dumps({"pid": pid, "root": root, "given": given,
                                                       "started": _start_time(pid)}) + "\n", root, "record")


def recorded_jail(name):
    """The jail the record of ``name`` names, if it still runs: the same process, rooted where it was."""
    try:
        with open(_record_path(name), encoding="utf-8") as handle:
            data = json.load(handle)
        record = Record(int(data["pid"]), str(data["root"]), str(data["given"]), data["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not os.path.isabs(record.root) or not os.path.isdir(record.root) or procs.is_host_root(record.root):
        return None  # not a record droot wrote: a jail's root is never the host's /
    if _start_time(record.pid) != record.started or record.pid not in procs.pids_in_root(record.root):
        return None
    return record


def forget(name):
    _unlink(_record_path(name))


def recorded_jails():
    """``{pid: name}`` of every live jail that a record in RUN_DIR names."""
    try:
        names = os.listdir(RUN_DIR)
    except FileNotFoundError:
        return {}
    found = {}
    for entry in names:
        if entry.endswith(".jail"):
            record = recorded_jail(entry[:-len(".jail")])
            if record is not None:
                found[record.pid] = entry[:-len(".jail")]
    return found


Jail = namedtuple("Jail", "name init_pid app_pid uid gid command pids")


def jails_in(root, names=None):
    """The live jails rooted in ``root``: one per PID namespace, or one for the processes of jails
    that share the host's (upstream's mode). ``names`` is recorded_jails(), read once for many roots.

    The init is the process that is pid 1 of its namespace (None in the shared mode); the app is its
    child, or in the shared mode the process whose parent is outside the root.
    """
    names = recorded_jails() if names is None else names
    groups = {}
    for pid in running_pids(root):
        groups.setdefault(procs.pid_namespace(pid), []).append(pid)
    found = []
    for pids in groups.values():
        init = next((pid for pid in pids if procs.namespace_pid(pid) == 1), None)
        parents = {pid: procs.parent_pid(pid) for pid in pids}
        if init is not None:
            apps = [pid for pid in pids if parents[pid] == init]
        else:
            apps = [pid for pid in pids if parents[pid] not in parents]
        app = apps[0] if apps else None
        ids = procs.real_ids(app) if app is not None else None
        found.append(Jail(names.get(init) or names.get(app), init, app, ids[0] if ids else None,
                          ids[1] if ids else None, procs.command_line(app) if app is not None else None, pids))
    return sorted(found, key=lambda jail: jail.pids[0])


# ---------------------------------------------------------------------------------------------
# Running and stopping

def running_pids(root):
    """The jail's live processes: every process whose root is the jail's root (or below it)."""
    if procs.is_host_root(root):
        return []  # the host's own processes are no jail's
    return sorted(procs.pids_in_root(root))


def main_pid(pids):
    """The pid a supervisor would watch: the init of a jail with its own namespaces, else the first."""
    for pid in pids:
        if procs.namespace_pid(pid) == 1:
            return pid
    return pids[0] if pids else None


def _pidfile_is_ours(pidfile, root):
    """False when the pidfile names a live process of another root: not ours to remove."""
    try:
        with open(pidfile, encoding="ascii") as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return True
    return not procs.is_running(pid) or pid in procs.pids_in_root(root)


def start_detached(the_plan, prepared, name, given, log_path, pidfile, settle=0.2, table=None):
    """Daemonize: own session, stdin empty, stdout and stderr to ``log_path`` through a logger.

    The jail never holds the log's descriptor (a jailed root could truncate it, make it setuid
    and leave a program there for host users): it writes into a pipe, which a logger process on
    the host appends to the log until the jail's last writer is gone. The
    pidfile holds the init's pid (the app's in the host's namespaces), and the record says which
    release it runs. A command that dies within ``settle`` seconds (a missing library, a bad flag)
    is reported here with its status, rather than left for a health check to guess at.
    """
    check_outside_root(pidfile, the_plan.root, "pidfile")
    log_fd = open_outside_root(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, the_plan.root, "log")
    try:
        output_r, output_w = os.pipe2(os.O_CLOEXEC)
        logger = _start_logger(output_r, log_fd)
    finally:
        os.close(log_fd)
    stdin_fd = jail.empty_stdin()
    try:
        started = jail.spawn(the_plan, prepared, (stdin_fd, output_w, output_w), table)
    finally:
        for fd in (stdin_fd, output_w):
            os.close(fd)
    try:
        _write_outside_root(pidfile, "%d\n" % started.pid, the_plan.root, "pidfile")
        write_record(name, started.pid, the_plan.root, given)
    except DrootError:
        jail.kill_jail(started.pid, the_plan.namespaces, signal.SIGKILL)
        os.waitpid(started.pid, 0)
        _unlink(pidfile)
        raise
    time.sleep(settle)
    exited, status = os.waitpid(started.pid, os.WNOHANG)
    if exited:
        _unlink(pidfile)
        forget(name)
        _wait_logger(logger)  # the log is complete before the error points at it
        raise JailError("the command exited at once with status %d; see %s"
                        % (os.waitstatus_to_exitcode(status), log_path), step="start")
    return started


def _start_logger(output_r, log_fd):
    """The logger: a process on the host holding only the pipe and the log, copying one to the other.

    It stays root but is not dumpable, so no host process of another user can take its
    descriptors (pidfd_getfd), trace it or signal it.
    """
    pid = os.fork()
    if pid:
        os.close(output_r)
        return pid
    try:
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        libc.set_name("droot-log")
        os.setsid()
        os.chdir("/")
        os.dup2(output_r, 0)
        os.dup2(log_fd, 1)
        os.closerange(2, os.sysconf("SC_OPEN_MAX"))
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            while data:
                data = data[os.write(1, data):]
    finally:
        os._exit(0)


def _wait_logger(pid, seconds=5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.01)


def stop(root, pidfiles, grace):
    """SIGTERM the jail (its init passes it on), SIGKILL what is left after ``grace`` seconds.

    Every signal goes through a pidfd, after checking that the process is still rooted in the
    root: a pid reused meanwhile is never hit. ``pidfiles`` that are this jail's are removed.
    True if anything ran.
    """
    pids = running_pids(root)
    _signal_jail(root, pids, signal.SIGTERM)
    if pids and not _wait_gone(root, grace):
        _signal_jail(root, running_pids(root), signal.SIGKILL)
        if not _wait_gone(root, 10):
            raise JailError("processes %s in %s survive SIGKILL" % (running_pids(root), root), step="stop")
    for pidfile in pidfiles:
        if _pidfile_is_ours(pidfile, root):
            _unlink(pidfile)
    return bool(pids)


def _signal_jail(root, pids, signum):
    """Signal the inits of jails with their own namespaces, and the processes of the host's.

    An init passes SIGTERM on to its app, whose end ends the namespace; a process inside such a
    jail is left to its init, unless this is SIGKILL.
    """
    host_pid_ns = procs.pid_namespace("self")
    for pid in set(pids) - {1, os.getpid(), os.getppid()}:
        if procs.namespace_pid(pid) == 1:
            procs.signal_rooted(pid, root, signum)
        elif signum == signal.SIGKILL or procs.pid_namespace(pid) == host_pid_ns:
            procs.signal_rooted(pid, root, signum, group=True)


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
    return file_lock(run_file(root, ".lock"), timeout, root, "wait for it to finish", JailError)
