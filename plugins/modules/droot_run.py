#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: droot_run
short_description: Run a command in a root filesystem, jailed in its own namespaces with dropped capabilities and bind mounts
version_added: 0.1.0
description:
  - Runs a command inside a root filesystem exported from a Docker image (see M(droot.core.droot_export)
    and M(droot.core.droot_fetch)) without a container runtime, as upstream C(droot run) does, with the
    holes of upstream closed.
  - By default (O(namespaces=own)) the jail gets its own PID, IPC and mount namespaces and a new session
    keyring; the network stays the host's. Its init, PID 1 of the jail, makes every mount private, builds
    the jail's mounts there and starts the app, which enters the root with pivot_root and detaches the old
    root, so the host's file system is out of reach even for a chroot escape. The init reaps orphans,
    passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH and SIGCONT on to the app and
    exits with the app's exit status (128+N when a signal N ended it). Nothing of the jail is mounted on
    the host, and it all vanishes when the init ends, even by C(kill -9).
  - The jail's mounts, each made on descriptors that were checked (the kernel's open_tree, move_mount,
    mount_setattr and fsmount, so a rename inside the root cannot redirect one) - the root bound onto
    itself, private and nodev; C(/proc) (nosuid, noexec, nodev; C(/proc/sys), C(/proc/sysrq-trigger),
    C(/proc/irq), C(/proc/bus) and C(/proc/fs) read-only); C(/sys) read-only; C(/dev) as a tmpfs with
    C(null), C(zero), C(full), C(random), C(urandom) and C(tty) bound from the host, a new C(devpts)
    instance with C(ptmx), and a C(/dev/shm) tmpfs; the paths Docker masks (C(/proc/kcore),
    C(/proc/keys), C(/proc/timer_list), C(/proc/sched_debug), C(/proc/acpi), C(/proc/scsi),
    C(/sys/firmware), ..., and C(/proc/kallsyms)) covered where the kernel has them; then the binds.
  - The app's process, in this order, resets its signals, starts a new session, closes every inherited file
    descriptor above 2, enters the root, confines itself there with Landlock (where the kernel has it, every
    open, creation, removal, rename and execution must lie beneath the root, whatever descriptor a host
    process hands it; from Linux 6.12 also no connection to the host's abstract unix sockets and no signal
    out of the jail), changes directory, loads the seccomp filter, drops the bounding
    set, sets the groups, gid and uid from the root's own C(/etc/passwd) and C(/etc/group), sets the
    permitted, effective, inheritable and ambient capabilities to the kept set, sets no_new_privs, looks the
    command up in the root's C(PATH) and executes it. A failing step is reported by name, and what the task
    mounted is gone again.
  - The seccomp filter refuses what Docker's default profile refuses (keyctl, add_key, request_key, bpf,
    perf_event_open, kexec_load, reboot, the mount family, unshare, setns and clone with namespace flags,
    open_by_handle_at, init_module, ...), except the calls that a kept capability allows (mount with
    C(SYS_ADMIN), reboot with C(SYS_BOOT), ...).
  - A root is refused when it holds a setuid, setgid or file-capability program and every directory above
    it lets a host user through (by mode, group or ACL), since a jailed root could rewrite such a program
    in place into a root shell for them; droot_fetch's C(releases/) is 0700, so its releases are never
    looked through. The look opens nothing through a symlink and never blocks; the files the module reads
    in the root are opened without blocking, so a jail's lease on one is an error, not a wait.
  - The environment is built, not inherited from the host - C(PATH), C(HOME), C(USER), then the image's
    environment, then O(env).
author:
  - droot.core contributors (@droot-core)
requirements:
  - python-prctl (on the target host)
  - libseccomp's Python binding (Debian's and Ubuntu's C(python3-seccomp), Fedora's C(python3-libseccomp)),
    unless O(seccomp=false)
  - Linux 5.2 or newer (the mount API; before 5.12, which added mount_setattr, a mount's flags are set through
    its descriptor right after it is attached rather than before), running as root
  - Landlock (Linux 5.13, in the kernel's C(lsm=) list; 6.12 for the socket and signal scopes) for the full
    O(namespaces=own) jail; without it the task warns and runs without that confinement
attributes:
  check_mode:
    support: full
    details: Resolves the user, capabilities, binds and command and reports what would be done, without mounting or running.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - A foreground run is not idempotent unless O(creates) or O(removes) say it is done.
      - With O(detach=true), starting a jail that already runs and stopping one that does not run report no change.
options:
  root:
    description:
      - The root filesystem directory. Symlinks in the path are resolved first, so a C(current)
        symlink of a releases layout names the release it points to.
    type: path
    required: true
  command:
    description:
      - The command as a list of arguments, looked up in the root's C(PATH) when it has no C(/).
      - Replaces the image's Entrypoint and Cmd.
      - Mutually exclusive with O(cmd).
    type: list
    elements: str
  cmd:
    description:
      - The command as one string, split into arguments as M(ansible.builtin.command) does. No shell is involved.
      - Mutually exclusive with O(command).
      - Without O(command) and O(cmd), the image's Entrypoint followed by its Cmd is run.
    type: str
  user:
    description:
      - The user to run as, a name from the root's C(/etc/passwd) or a numeric uid (which needs no entry).
      - Defaults to the image's User, else root.
      - A name that the root's C(/etc/passwd) maps to uid 0 (an image whose C(www-data) is uid 0, say) is
        refused; only V(root) or V(0) run as root.
    type: str
  group:
    description:
      - The primary group, a name from the root's C(/etc/group) or a numeric gid.
      - Defaults to the user's group in the root's C(/etc/passwd), or 0 for a uid without an entry, as Docker does.
      - Supplementary groups are the groups of the root's C(/etc/group) that list the user.
    type: str
  binds:
    description:
      - Host paths to bind-mount into the root, recursively, with nosuid and nodev.
      - Each item is a dictionary with C(src) (absolute host path, must exist), C(dest) (absolute path
        inside the root, default C(src)) and C(readonly) (default false), or upstream droot's short form
        C(SRC[:DEST][:ro|rw]).
      - C(src) is named by its real path - one that goes through a symlink is refused, since a jail that can
        write a directory on the way could have planted it to hand a later task any host directory. A C(src)
        inside the root, or holding the root or a copied file, is refused too.
      - The destination is created inside the root without following the image's symlinks out of it.
      - Read-only, nosuid and nodev are set on the bind and everything mounted below its source before it is
        attached, so it is never visible otherwise.
      - With O(namespaces=own) a bind is private - host mounts made under its source after the jail started
        do not show inside. With O(namespaces=host) it is a recursive slave, as in 0.1.0.
    type: list
    elements: raw
    default: []
  copy_files:
    description:
      - Host files to show in the root at the same path, like upstream's C(--cp).
      - V(true) takes C(/etc/hosts) and C(/etc/resolv.conf) (followed through their symlinks, as a resolv.conf of
        systemd-resolved is one, but only to a file in C(/etc) or C(/run)); a list names the files by their real
        paths, as a bind's source.
      - With O(namespaces=own) each file is bound read-only onto its place in the jail's own mount namespace;
        the release is not written (an empty file is created as the mount point when the path is missing).
        With O(namespaces=host) it is copied into the root, as in 0.1.0.
      - The path is resolved inside the root (a symlinked C(/etc/resolv.conf) works), never out of it; a copy
        is only written to a regular file of the root's own file system, never through a symlink into a bind.
    type: raw
    default: false
  env:
    description:
      - Environment variables for the command; they override the image's.
    type: dict
    default: {}
  image_config:
    description:
      - Apply the image's configuration written by M(droot.core.droot_export) - C(/.drootenv) (upstream
        droot's format) and C(/.droot/config.json) (Env, WorkingDir, User, Entrypoint, Cmd) - as
        defaults that the options here override. Both are read only as regular files of the root's own
        file system.
    type: bool
    default: true
  chdir:
    description:
      - The working directory inside the root. Defaults to the image's WorkingDir, else C(/).
    type: str
  capabilities:
    description:
      - The capabilities the command keeps, names as in capabilities(7), with or without C(CAP_), in any case.
      - Every other capability is removed from the bounding, permitted, effective, inheritable and ambient
        sets; the kept ones are raised in the ambient set so that a non-root user keeps them too.
      - The default depends on the user, as with Docker - root keeps C(CHOWN), C(DAC_OVERRIDE), C(FOWNER),
        C(SETGID), C(SETUID) and C(NET_BIND_SERVICE) (upstream droot's set without C(DAC_READ_SEARCH));
        any other user keeps none.
      - Allowed without O(allow_dangerous_capabilities) are that set and C(FSETID), C(KILL), C(SETPCAP),
        C(AUDIT_WRITE) and C(SYS_CHROOT), which act inside the jail's own namespaces (but for AUDIT_WRITE,
        which writes user messages into the host's audit log, as Docker allows by default). With
        O(namespaces=host), C(KILL) and C(SYS_CHROOT) need it too. Every other capability needs it.
      - An empty list drops every capability.
    type: list
    elements: str
  allow_dangerous_capabilities:
    description:
      - Capabilities that O(capabilities) may keep although they let the jailed process escape the root or act
        on the host (C(SYS_ADMIN), C(NET_ADMIN), C(NET_RAW) on the host's network, C(SYS_PTRACE), ...).
    type: list
    elements: str
    default: []
  drop_capabilities:
    description:
      - Set to V(false) to keep every capability, like upstream's C(--no-dropcaps). Not recommended.
    type: bool
    default: true
  no_new_privs:
    description:
      - Set no_new_privs, so that setuid binaries and file capabilities in the root grant nothing.
    type: bool
    default: true
  seccomp:
    description:
      - Load the seccomp filter described above. V(false) lets the app use every system call its capabilities
        allow, among them the key management calls that reach root's keyrings on the host (keyrings are not
        namespaced). Not recommended.
    type: bool
    default: true
  namespaces:
    description:
      - V(own) gives the jail its own PID, IPC and mount namespaces and pivot_root, as described above.
      - V(host) is upstream droot's mode - the host's PID, IPC and mount namespaces and a plain chroot, the
        jail's mounts made below the root in the host's mount table (the root bound onto itself and made
        private first). It is unsafe - a jailed root can see and signal host processes (C(kill(-1)) kills
        them all), reach the files of host processes through C(/proc/PID/root) and ptrace them after
        switching to their uid, and read and overwrite SysV shared memory of the host. Use it only for an
        app that must see host processes.
    type: str
    choices: [own, host]
    default: own
  shm_size:
    description:
      - The size of the jail's C(/dev/shm) tmpfs, as Docker's C(--shm-size) - bytes, or with C(k), C(m) or C(g).
    type: str
    default: 64m
  timeout:
    description:
      - Seconds after which a foreground command is killed (the whole jail) and the task fails; it counts from
        the start of the jail, so a start held up (by a lease on the program, say) is bounded too.
      - Output is read until the jail's process ends and for one second more; a host process that a jail
        handed its output to cannot keep the task waiting.
    type: int
  creates:
    description:
      - A path inside the root; when it exists, the command is not run.
    type: str
  removes:
    description:
      - A path inside the root; when it does not exist, the command is not run.
    type: str
  stdin:
    description:
      - Data for the command's standard input. Without it, standard input is empty (a pipe that reads as end of
        file, not the host's C(/dev/null), which a jailed root could change through it).
    type: str
  detach:
    description:
      - Run in the background as a daemon - a new session, standard input empty, standard output and error
        appended to O(log_path) by a logger process on the host (C(droot-log) in C(ps), not dumpable), which the
        jail only reaches through a pipe, the pid of the jail's init (of the app with
        O(namespaces=host)) in O(pidfile).
    type: bool
    default: false
  state:
    description:
      - With O(detach=true), V(started) starts the jail unless a process already runs from the same root.
        A foreground run ignores it.
      - V(stopped) sends SIGTERM to the jail of O(root), and to the jail started under O(name) from another
        release (its init passes it on to the app), SIGKILL after O(stop_timeout) seconds, then unmounts what
        droot mounted under the root (only a jail of O(namespaces=host) or of droot.core 0.1.0 has such mounts).
        Each signal goes through a pidfd after checking that the process still runs from the root. It needs no
        command and ignores O(detach).
    type: str
    choices: [started, stopped]
    default: started
  stop_timeout:
    description:
      - Seconds to wait after SIGTERM before SIGKILL, with O(state=stopped).
    type: int
    default: 10
  name:
    description:
      - The jail's name, which names its default O(pidfile), O(log_path) and its record in C(/run/droot)
        (which release it runs, for O(state=stopped)). Letters, digits, C(.), C(_) and C(-).
      - Defaults to one made from O(root) as given, its symlinks not resolved - so a jail started through
        C(BASE/current) keeps its name, pidfile and log across releases, and O(state=stopped) through
        C(BASE/current) stops it after C(current) moved to another release.
      - Starting a detached jail under a name whose jail still runs from another release is refused.
    type: str
  log_path:
    description:
      - Where a detached command's output goes. Default C(/var/log/droot/NAME.log), NAME from O(name).
      - Must be outside the root and named by its real path (a symlink on the way is refused, as a jail could
        have planted it); missing directories are created. It is opened without following a symlink, a
        regular file only. It may not lie in a bind's source, and no bind may hold its directory.
    type: path
  pidfile:
    description:
      - The pid file of a detached command. Default C(/run/droot/NAME.pid), NAME from O(name). O(state=stopped)
        also removes a pid file of droot.core 0.1.0's naming (after the resolved release path).
      - Must be outside the root and named by its real path, as O(log_path).
    type: path
  keep_mounts:
    description:
      - With O(namespaces=host), keep the mounts of a foreground run after the command ends. By default the
        mounts the task made are removed when it ends, and mounts that were already there stay.
      - With O(namespaces=own) the mounts live in the jail's namespace and end with it; the option has no effect.
    type: bool
    default: false
notes:
  - The network is the host's - services on 127.0.0.1, abstract unix sockets of the host and a cloud
    metadata endpoint are reachable from the jail, as they are for any process of its user on the host.
  - Use M(droot.core.droot_umount) to remove mounts that a jail of O(namespaces=host) or of droot.core 0.1.0 left.
extends_documentation_fragment:
  - droot.core.attributes
seealso:
  - module: droot.core.droot_umount
  - module: droot.core.droot_fetch
"""

EXAMPLES = r"""
- name: Run a one-off command in the app's root as its own user
  droot.core.droot_run:
    root: /var/containers/app/current
    user: app
    command: [/usr/bin/app, migrate]
    binds:
      - /var/log/app
      - src: /etc/app
        dest: /etc/app
        readonly: true
    copy_files: true

- name: Start the app in the background, keeping only the capability to bind port 80
  droot.core.droot_run:
    root: /var/containers/app/current
    user: www-data
    capabilities: [NET_BIND_SERVICE]
    binds: ["/srv/data:/data", "/etc/ssl/certs:/etc/ssl/certs:ro"]
    detach: true
    log_path: /var/log/app.log
    pidfile: /run/app.pid

- name: Stop it and unmount its root
  droot.core.droot_run:
    root: /var/containers/app/current
    detach: true
    state: stopped
    pidfile: /run/app.pid
"""

RETURN = r"""
rc:
  description:
    - The exit status of a foreground command (128+N when signal N ended it); negative when the task's
      timeout killed the jail. C(0) when O(creates) or O(removes) skipped the command.
  returned: foreground run (also when it failed or timed out), and when O(creates) or O(removes) skipped it
  type: int
  sample: 0
stdout:
  description:
    - Standard output of a foreground command, trailing newlines removed; its first 16 MiB (a warning
      says when there was more). Empty when O(creates) or O(removes) skipped the command.
  returned: foreground run (also when it failed or timed out), and when O(creates) or O(removes) skipped it
  type: str
  sample: hello
stderr:
  description:
    - Standard error of a foreground command, trailing newlines removed; its first 16 MiB. Empty when
      O(creates) or O(removes) skipped the command.
  returned: foreground run (also when it failed or timed out), and when O(creates) or O(removes) skipped it
  type: str
  sample: ""
pid:
  description:
    - The host pid of the jail's init (of the app with O(namespaces=host)), the process a supervisor watches;
      for a detached run, the one in O(pidfile) (the running one when it was already running). When a detached
      run fails at step C(start) because a jail of the same O(name) runs from another root, that jail's pid.
  returned: when a command runs, for a detached jail that already runs, and on that failure
  type: int
  sample: 4242
pidfile:
  description: The pid file written (O(pidfile), or the one named after O(name)).
  returned: detached run that started
  type: str
  sample: /run/droot/shop-3f2a9c81d0e4.pid
log_path:
  description: The log the detached command writes to.
  returned: detached run that started
  type: str
  sample: /var/log/droot/shop-3f2a9c81d0e4.log
app_pid:
  description: The host pid of the app's process; null when it ended before it could be read.
  returned: when a command runs
  type: int
  sample: 4243
pids:
  description: The host pids of the jail's processes that O(state=stopped) found.
  returned: with O(state=stopped)
  type: list
  elements: int
  sample: [4242, 4243]
unmounted:
  description:
    - The mount points that O(state=stopped) unmounted; when it fails at step C(unmount) (a mount stays busy),
      those unmounted before.
  returned: with O(state=stopped) when something ran or was mounted, not in check mode
  type: list
  elements: str
  sample: []
cmd:
  description: The command as executed (in check mode, as a run would execute it).
  returned: when a command runs, and in check mode
  type: list
  elements: str
  sample: [/usr/bin/app, serve]
mounts:
  description:
    - The mount points of the jail while the command started, outermost first - as the jail sees them with
      O(namespaces=own), host paths with O(namespaces=host).
  returned: when a command runs
  type: list
  elements: str
  sample: [/, /proc, /proc/sys, /sys, /dev, /dev/null]
capabilities:
  description: The capabilities the command kept, or null when O(drop_capabilities=false).
  returned: when a command runs
  type: list
  elements: str
  sample: [CAP_NET_BIND_SERVICE]
user:
  description: The uid, gid and groups the command ran with.
  returned: when a command runs
  type: dict
  sample: {uid: 33, gid: 33, groups: [33]}
start:
  description: When the command started.
  returned: when a command runs
  type: str
  sample: "2026-11-29 16:00:00.000000"
end:
  description: When the command ended (foreground) or was started (detached).
  returned: when a command runs
  type: str
  sample: "2026-11-29 16:00:01.500000"
delta:
  description: How long it took.
  returned: when a command runs
  type: str
  sample: "0:00:01.500000"
msg:
  description: Why nothing ran (C(skipped, ...), C(already running ...)), what check mode would run, or the error.
  returned: when nothing ran, in check mode, and on failure
  type: str
  sample: "already running from /var/containers/app/releases/0f3c21d9e8a1"
step:
  description:
    - The step of the run sequence that failed, for example C(resolve-user), C(mount-proc), C(find-command);
      C(privileges) when not run as root, C(wait) when O(timeout) killed the jail.
  returned: failure, except when the command exited with a non-zero status (RV(rc) is that status)
  type: str
  sample: find-command
errno:
  description:
    - The error number of the system call that made RV(step) fail; C(0) when a step inside the jail's processes
      (before its command ran) failed without one.
  returned: on failure, when a step failed on a system call or inside the jail's processes
  type: int
  sample: 13
"""

import datetime
import os
from collections import namedtuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.droot.core.plugins.module_utils._internal import caps, jail, jails, mounts, safepath, syscall_filter
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, fail_from_error, printable

Names = namedtuple("Names", "name pidfile log_path")


def argument_spec():
    return dict(
        root=dict(type="path", required=True),
        command=dict(type="list", elements="str"),
        cmd=dict(type="str"),
        user=dict(type="str"),
        group=dict(type="str"),
        binds=dict(type="list", elements="raw", default=[]),
        copy_files=dict(type="raw", default=False),
        env=dict(type="dict", default={}),
        image_config=dict(type="bool", default=True),
        chdir=dict(type="str"),
        capabilities=dict(type="list", elements="str"),
        allow_dangerous_capabilities=dict(type="list", elements="str", default=[]),
        drop_capabilities=dict(type="bool", default=True),
        no_new_privs=dict(type="bool", default=True),
        seccomp=dict(type="bool", default=True),
        namespaces=dict(type="str", choices=[jail.OWN, jail.HOST], default=jail.OWN),
        shm_size=dict(type="str", default="64m"),
        timeout=dict(type="int"),
        creates=dict(type="str"),
        removes=dict(type="str"),
        stdin=dict(type="str"),
        detach=dict(type="bool", default=False),
        state=dict(type="str", choices=["started", "stopped"], default="started"),
        stop_timeout=dict(type="int", default=10),
        name=dict(type="str"),
        log_path=dict(type="path"),
        pidfile=dict(type="path"),
        keep_mounts=dict(type="bool", default=False),
    )


def _exists_in_root(root_fd, path):
    try:
        os.close(safepath.open_in_root(root_fd, path, os.O_PATH))
        return True
    except (OSError, DrootError):
        return False


def _skip_reason(params, root_fd):
    if params["creates"] and _exists_in_root(root_fd, params["creates"]):
        return "%s exists in the root" % params["creates"]
    if params["removes"] and not _exists_in_root(root_fd, params["removes"]):
        return "%s does not exist in the root" % params["removes"]
    return None


def _text(data):
    """Output as text: what is not UTF-8 becomes U+FFFD (a lone surrogate would fail the whole task)."""
    return data.decode("utf-8", "replace").rstrip("\r\n")


def _started_result(the_plan, started, start):
    end = datetime.datetime.now()
    identity = the_plan.identity
    return dict(
        cmd=[printable(arg) for arg in the_plan.argv],
        pid=started.pid,
        app_pid=started.app_pid,
        mounts=started.mounts,
        capabilities=caps.names_of(the_plan.kept) if the_plan.kept is not None else None,
        user=dict(uid=identity.uid, gid=identity.gid, groups=list(identity.groups)),
        start=str(start), end=str(end), delta=str(end - start),
    )


def _launch(module, root, the_plan, names):
    """Prepare, run or start, and take the mounts of the host's namespaces down unless they must stay."""
    params = module.params
    table = mounts.MountSet(root) if the_plan.namespaces == jail.HOST else None
    start = datetime.datetime.now()
    with jails.root_lock(root):
        prepared = None
        try:
            prepared = jail.Prepared(the_plan)
            if params["detach"]:
                started = jails.start_detached(the_plan, prepared, names.name, params["root"], names.log_path,
                                               names.pidfile, table=table)
                return dict(changed=True, pidfile=names.pidfile, log_path=names.log_path,
                            **_started_result(the_plan, started, start))
            outcome = jail.run_foreground(the_plan, prepared, params["stdin"], params["timeout"], table)
        except BaseException:
            if table is not None:
                table.take_down()
            raise
        finally:
            if prepared is not None:
                prepared.close()
        kept = [] if table is None or params["keep_mounts"] else table.take_down()
    result = dict(changed=True, rc=outcome.rc, stdout=_text(outcome.stdout), stderr=_text(outcome.stderr),
                  **_started_result(the_plan, outcome, start))
    if kept:
        module.warn("mounts %s stay: processes still use them; stop them and run droot_umount" % ", ".join(kept))
    for stream, size in (("stdout", outcome.stdout_size), ("stderr", outcome.stderr_size)):
        if size > jail.OUTPUT_LIMIT:
            module.warn("the command wrote %d bytes to %s: only the first %d are returned"
                        % (size, stream, jail.OUTPUT_LIMIT))
    if outcome.timed_out:
        module.fail_json(msg="command timed out after %d s and was killed" % params["timeout"], step="wait", **result)
    if outcome.rc != 0:
        module.fail_json(msg="command exited with status %d" % outcome.rc, **result)
    return result


def _stop(module, root, names):
    """Stop the jail of this root, and the one started under this name from another release (through current)."""
    roots = [root]
    recorded = jails.recorded_jail(names.name)
    if recorded is not None and recorded.root != root:
        roots.append(recorded.root)
    running = sorted(pid for each in roots for pid in jails.running_pids(each))
    mounted = [entry for each in roots for entry in mounts.droot_mounts(each)]
    if module.check_mode or not (running or mounted):
        if not module.check_mode:
            _forget_ended(root, names)
        return dict(changed=bool(running or mounted), pids=running)
    unmounted = []
    for each in roots:
        with jails.root_lock(each):
            jails.stop(each, (names.pidfile, jails.legacy_pidfile(each)), module.params["stop_timeout"])
            unmounted.extend(mounts.unmount_tree(each))
    jails.forget(names.name)
    return dict(changed=True, pids=running, unmounted=unmounted)


def _forget_ended(root, names):
    """A detached jail that ended by itself left its pidfile and record: remove them (no change to report)."""
    jails.stop(root, (names.pidfile, jails.legacy_pidfile(root)), 0)
    if jails.recorded_jail(names.name) is None:
        jails.forget(names.name)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("command", "cmd")],
        supports_check_mode=True,
    )
    params = module.params
    if os.geteuid() != 0:
        module.fail_json(msg="droot_run must run as root on the host (it mounts, enters namespaces and changes "
                             "users): add become: true to the task", step="privileges")
    caps.PRCTL.require(module, reason="to drop capabilities")
    if params["seccomp"] and params["state"] == "started":
        syscall_filter.SECCOMP.require(module, reason="for the jail's seccomp filter (or set seccomp=false)")
    try:
        root, root_fd = jail.open_root(params["root"])
        name = jails.jail_name(params["root"], params["name"])
        names = Names(name, jails.pidfile_path(name, params["pidfile"]), jails.log_path_for(name, params["log_path"]))
        try:
            reason = _skip_reason(params, root_fd)
            the_plan = None if params["state"] == "stopped" or reason else jail.plan(root, root_fd, params)
        finally:
            os.close(root_fd)  # held open, it would keep the root's mounts busy
        if params["state"] == "stopped":
            module.exit_json(**_stop(module, root, names))
        if params["detach"]:
            recorded = jails.recorded_jail(name)
            if recorded is not None and recorded.root != root:
                module.fail_json(msg="a jail of %s started through %s still runs (pid %d): stop it first "
                                     "(state=stopped) or give this one another name"
                                     % (recorded.root, recorded.given, recorded.pid), step="start", pid=recorded.pid)
            running = jails.running_pids(root)
            if running:
                module.exit_json(changed=False, pid=jails.main_pid(running), msg="already running from %s" % root)
        if reason:
            module.exit_json(changed=False, rc=0, stdout="", stderr="", msg="skipped: " + reason)
        if the_plan.namespaces == jail.OWN and not the_plan.landlock:
            module.warn("this kernel has no Landlock (or it is not enabled): a host process could hand the jail a "
                        "descriptor over an abstract unix socket, and the jail would use it outside its root")
        if params["keep_mounts"] and the_plan.namespaces == jail.OWN:
            module.warn("keep_mounts has no effect with namespaces=own: the jail's mounts end with the jail")
        jails.check_host_files((("pidfile", names.pidfile), ("log", names.log_path)) if params["detach"] else (),
                               the_plan)
        if module.check_mode:
            module.exit_json(changed=True, cmd=[printable(arg) for arg in the_plan.argv],
                             msg="would run %s in %s" % (the_plan.argv, root))
        module.exit_json(**_launch(module, root, the_plan, names))
    except DrootError as error:
        fail_from_error(module, error)


if __name__ == "__main__":
    main()
