#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: droot_run
short_description: Run a command in a root filesystem with chroot, dropped capabilities and bind mounts
version_added: 0.1.0
description:
  - Runs a command inside a root filesystem exported from a Docker image (see M(droot.core.droot_export)
    and M(droot.core.droot_fetch)) without a container runtime, as upstream C(droot run) does, with the
    holes of upstream closed.
  - The root gets its own mount set below it only, never touching the host's C(/) - the root bound onto
    itself and made private, C(/proc) (nosuid, noexec, nodev; C(/proc/sys), C(/proc/sysrq-trigger),
    C(/proc/irq) and C(/proc/bus) read-only), C(/sys) read-only, C(/dev) as a tmpfs with C(null), C(zero),
    C(full), C(random), C(urandom) and C(tty) bound from the host, a new C(devpts) instance with C(ptmx),
    and a C(/dev/shm) tmpfs. What is already mounted is reused, so runs do not stack mounts.
  - The command runs in a forked child that, in this order, starts a new session, closes every inherited
    file descriptor above 2, chroots, changes directory, drops the bounding set, sets the groups, gid and
    uid from the root's own C(/etc/passwd) and C(/etc/group), sets the permitted, effective, inheritable
    and ambient capabilities to the kept set, sets no_new_privs, looks the command up in the root's
    C(PATH) and executes it. A failing step is reported by name, and the mounts the task made are
    removed again.
  - The environment is built, not inherited from the host - C(PATH), C(HOME), C(USER), then the image's
    environment, then O(env).
author:
  - droot.core contributors (@droot-core)
requirements:
  - python-prctl (on the target host)
  - Linux, running as root
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
      - The destination is created inside the root without following the image's symlinks out of it.
      - Binds are made recursive slaves - host mounts under the source show inside, nothing done
        inside reaches the host.
    type: list
    elements: raw
    default: []
  copy_files:
    description:
      - Host files to copy into the root at the same path before the run, like upstream's C(--cp).
      - V(true) copies C(/etc/hosts) and C(/etc/resolv.conf); a list names the files.
      - The copy never follows the image's symlinks out of the root and never writes to anything but a regular file.
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
        defaults that the options here override.
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
      - The default is upstream droot's set without C(DAC_READ_SEARCH) - C(CHOWN), C(DAC_OVERRIDE),
        C(FOWNER), C(SETGID), C(SETUID), C(NET_BIND_SERVICE).
      - C(SYS_ADMIN), C(SYS_CHROOT), C(SYS_PTRACE), C(SYS_MODULE), C(SYS_RAWIO), C(DAC_READ_SEARCH) and
        C(MKNOD) are refused unless also listed in O(allow_dangerous_capabilities).
      - An empty list drops every capability.
    type: list
    elements: str
  allow_dangerous_capabilities:
    description:
      - Capabilities that O(capabilities) may keep although they let the jailed process escape the root.
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
  timeout:
    description:
      - Seconds after which a foreground command and its process group are killed and the task fails.
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
      - Data for the command's standard input. Without it, standard input is C(/dev/null).
    type: str
  detach:
    description:
      - Run in the background as a daemon - a new session, standard input from C(/dev/null), standard
        output and error appended to O(log_path), its pid in O(pidfile). The mounts stay until it is stopped.
    type: bool
    default: false
  state:
    description:
      - With O(detach=true), V(started) starts the jail unless a process already runs from the same root.
        A foreground run ignores it.
      - V(stopped) sends SIGTERM to the jail's processes, SIGKILL after O(stop_timeout) seconds, then
        unmounts everything under the root. It needs no command and ignores O(detach).
    type: str
    choices: [started, stopped]
    default: started
  stop_timeout:
    description:
      - Seconds to wait after SIGTERM before SIGKILL, with O(state=stopped).
    type: int
    default: 10
  log_path:
    description:
      - Where a detached command's output goes. Default C(/var/log/droot/NAME.log), NAME from the root's path.
    type: path
  pidfile:
    description:
      - The pid file of a detached command. Default C(/run/droot/NAME.pid), NAME from the root's path.
    type: path
  keep_mounts:
    description:
      - Keep the mounts of a foreground run after the command ends. By default the mounts the task made
        are removed when it ends, and mounts that were already there stay.
    type: bool
    default: false
notes:
  - Runs in the host's network, PID and IPC namespaces, as upstream droot does. The jail sees host
    processes in C(/proc); run it as a uid that no host process uses.
  - Use M(droot.core.droot_umount) to remove every mount under a root.
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
  description: The exit status of a foreground command; negative for a signal.
  returned: foreground run
  type: int
  sample: 0
stdout:
  description: Standard output of a foreground command, trailing newlines removed.
  returned: foreground run
  type: str
  sample: hello
stderr:
  description: Standard error of a foreground command, trailing newlines removed.
  returned: foreground run
  type: str
  sample: ""
pid:
  description: The process id of the detached command (the running one when it was already running).
  returned: detached run
  type: int
  sample: 4242
cmd:
  description: The command as executed.
  returned: when a command runs
  type: list
  elements: str
  sample: [/usr/bin/app, serve]
mounts:
  description: The mount points of the jail while the command started, outermost first.
  returned: when a command runs
  type: list
  elements: str
  sample: [/var/containers/app/releases/0f3c, /var/containers/app/releases/0f3c/proc]
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
step:
  description: The step of the run sequence that failed, for example C(resolve-user), C(mount-proc), C(find-command).
  returned: failure
  type: str
  sample: find-command
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.droot.core.plugins.module_utils import caps, jail, mountinfo, safepath
from ansible_collections.droot.core.plugins.module_utils.common import DrootError, fail_from_error
from ansible_collections.droot.core.plugins.module_utils.mounts import MountSet, unmount_tree


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
        timeout=dict(type="int"),
        creates=dict(type="str"),
        removes=dict(type="str"),
        stdin=dict(type="str"),
        detach=dict(type="bool", default=False),
        state=dict(type="str", choices=["started", "stopped"], default="started"),
        stop_timeout=dict(type="int", default=10),
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
    return to_text(data, errors="surrogate_or_replace").rstrip("\r\n")


def _started_result(the_plan, mounts, start):
    end = datetime.datetime.now()
    identity = the_plan.identity
    return dict(
        cmd=the_plan.argv,
        mounts=mounts,
        capabilities=caps.names_of(the_plan.kept) if the_plan.kept is not None else None,
        user=dict(uid=identity.uid, gid=identity.gid, groups=list(identity.groups)),
        start=str(start), end=str(end), delta=str(end - start),
    )


def _launch(module, root, the_plan, pidfile, log_path):
    """Mount, run or start, and take the mounts down again unless they must stay."""
    params = module.params
    mount_set = MountSet(root)
    start = datetime.datetime.now()
    with jail.root_lock(root):
        try:
            root_fd = jail.setup_mounts(the_plan, mount_set)
            try:
                mounts = jail.jail_mounts(root)
                if params["detach"]:
                    pid = jail.start_detached(the_plan, root_fd, log_path, pidfile)
                    return dict(changed=True, pid=pid, **_started_result(the_plan, mounts, start))
                outcome = jail.run_foreground(the_plan, root_fd, params["stdin"], params["timeout"])
            finally:
                os.close(root_fd)
        except BaseException:
            mount_set.take_down()
            raise
        kept = [] if params["keep_mounts"] else mount_set.take_down()
    result = dict(changed=True, rc=outcome.rc, stdout=_text(outcome.stdout), stderr=_text(outcome.stderr),
                  **_started_result(the_plan, mounts, start))
    if kept:
        module.warn("mounts %s stay: processes still use them; stop them and run droot_umount" % ", ".join(kept))
    if outcome.timed_out:
        module.fail_json(msg="command timed out after %d s and was killed" % params["timeout"], step="wait", **result)
    if outcome.rc != 0:
        module.fail_json(msg="command exited with status %d" % outcome.rc, **result)
    return result


def _stop(module, root, pidfile):
    running = jail.running_pids(root)
    if module.check_mode or not (running or mountinfo.mounts_under(root)):
        return dict(changed=bool(running or mountinfo.mounts_under(root)), pids=running)
    with jail.root_lock(root):
        jail.stop(root, pidfile, module.params["stop_timeout"])
        unmounted = unmount_tree(root)
    return dict(changed=True, pids=running, unmounted=unmounted)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("command", "cmd")],
        supports_check_mode=True,
    )
    caps.PRCTL.require(module, reason="to drop capabilities")
    params = module.params
    try:
        root, root_fd = jail.open_root(params["root"])
        name = jail.default_name(root)
        pidfile = params["pidfile"] or os.path.join(jail.PIDFILE_DIR, name + ".pid")
        log_path = params["log_path"] or os.path.join(jail.LOG_DIR, name + ".log")
        try:
            reason = _skip_reason(params, root_fd)
            the_plan = None if params["state"] == "stopped" or reason else jail.plan(root, root_fd, params)
        finally:
            os.close(root_fd)  # held open, it would keep the root's mounts busy
        if params["state"] == "stopped":
            module.exit_json(**_stop(module, root, pidfile))
        if params["detach"]:
            running = jail.running_pids(root)
            if running:
                module.exit_json(changed=False, pid=running[0], msg="already running from %s" % root)
        if reason:
            module.exit_json(changed=False, rc=0, stdout="", stderr="", msg="skipped: " + reason)
        if module.check_mode:
            module.exit_json(changed=True, cmd=the_plan.argv, msg="would run %s in %s" % (the_plan.argv, root))
        module.exit_json(**_launch(module, root, the_plan, pidfile, log_path))
    except DrootError as error:
        fail_from_error(module, error)


if __name__ == "__main__":
    main()
