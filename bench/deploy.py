# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy role on 1, 2, 4 and 8 hosts (serial 50%): this checkout's against 0.1.0's, in one run.

Two roles are measured: this checkout's roles/deploy (droot.core.deploy, "new") and the role of
the 0.1.0 release, kept in bench/role-0.1.0/deploy ("0.1.0"), both with this checkout's modules
and the same playbook (bench/deploy/deploy.yml, the role given as bench_role).

The hosts are the integration tests' (tests/integration/targets/setup_hosts, its image script
and inventory, called here, not copied): Debian containers with sshd on their own 127.0.0.1
port. Every host count and role gets new containers and a new S3 prefix, so each first deploy
exports, downloads, unpacks and starts everything; the no-op runs the same playbook again. The
roles take turns at going first: at the i-th host count (and attempt) the role order is rotated
by i, so neither always runs on a warmer machine. The measured tree is the controller's
(ansible-playbook, its workers, ssh and the ship step's droot_export, which runs on the
controller as the build host); the hosts' work runs in their containers.

Tasks per host come from the PLAY RECAP: "executed" is ok + failed (Ansible's ok already counts
the changed tasks, and counts an include once per host that includes the file), skipped is
reported apart.
"""

import json
import math
import os
import re
import subprocess
import sys

import measure

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HOST_PREFIX = "droot-bench-host-"
HOST_IMAGE = "droot-bench-hosts:latest"
SSH_PORT_BASE = 22600   # host N: sshd on 127.0.0.1:22600+N
APP_PORT_BASE = 18600   # host N: the app on 127.0.0.1:18600+N

# The roles compared: results key -> (what bench_role names, what the tables call it).
ROLES = {
    "new": ("droot.core.deploy", "this checkout's roles/deploy"),
    "0.1.0": (os.path.join(HERE, "role-0.1.0", "deploy"), "0.1.0's roles/deploy (bench/role-0.1.0)"),
}
RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")


def _play(bench, playbook, inventory, extra, what):
    env = dict(bench.ansible_env, ANSIBLE_ROLES_PATH=os.path.join(REPO, "tests", "integration", "targets"),
               ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_PIPELINING="true", ANSIBLE_FORKS="8",
               ANSIBLE_RETRY_FILES_ENABLED="false")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, os.path.join(HERE, "deploy", playbook)]
    command += ["-e", json.dumps(extra)]
    run = measure.run(command, env=env, cwd=bench.workdir)
    if run.returncode != 0:
        raise SystemExit("%s failed (exit %d):\n%s\n%s" % (what, run.returncode, run.stdout[-4000:], run.stderr[-2000:]))
    return run


def _hosts_cpu_seconds(count):
    """CPU time the host containers have used (their cgroup v1 cpuacct), None where it cannot be read."""
    total = 0.0
    for index in range(1, count + 1):
        container = subprocess.run(["docker", "inspect", "--format", "{{.Id}}", "%s%d" % (HOST_PREFIX, index)],
                                   capture_output=True, text=True, check=False).stdout.strip()
        try:
            with open("/sys/fs/cgroup/cpuacct/docker/%s/cpuacct.usage" % container, encoding="ascii") as handle:
                total += int(handle.read()) / 1e9
        except (OSError, ValueError):
            return None
    return total


def recap(stdout):
    """The PLAY RECAP's counters of each host: {host: {"ok": n, "changed": n, ..., "executed": ok + failed}}."""
    hosts, in_recap = {}, False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        match = RECAP_LINE.match(line.strip()) if in_recap else None
        if match and match.group(1).startswith(HOST_PREFIX):
            counters = dict((key, int(value)) for key, value in
                            (pair.split("=") for pair in match.group(2).split()))
            counters["executed"] = counters.get("ok", 0) + counters.get("failed", 0)
            hosts[match.group(1)] = counters
    return hosts


def _deploy(bench, role, kind, count, inventory, play_vars, log):
    """One ansible-playbook run of the deploy playbook: what results.json keeps of it."""
    hosts_before = _hosts_cpu_seconds(count)
    result = _play(bench, "deploy.yml", inventory, dict(play_vars, bench_role=ROLES[role][0]),
                   "%s deploy on %d hosts with the %s role" % (kind, count, role))
    hosts_after = _hosts_cpu_seconds(count)
    tasks = recap(result.stdout)
    if len(tasks) != count:
        raise SystemExit("the PLAY RECAP of the %s deploy on %d hosts (%s role) lists %d hosts:\n%s"
                         % (kind, count, role, len(tasks), result.stdout[-4000:]))
    changed = sum(counters.get("changed", 0) for counters in tasks.values())
    if kind == "noop" and changed:
        raise SystemExit("the no-op deploy on %d hosts (%s role) changed %d things:\n%s"
                         % (count, role, changed, result.stdout[-4000:]))
    executed = [counters["executed"] for counters in tasks.values()]
    record = {"seconds": result.seconds, "peak_mib": result.peak_mib, "peak_process_mib": result.peak_process_mib,
              "cpu_s": result.cpu_s, "cpu_s_per_host": result.cpu_s / count if result.cpu_s is not None else None,
              "busy_cpus": result.busy_cpus, "changed": changed, "tasks": tasks,
              "executed_per_host_max": max(executed), "executed_per_host_mean": sum(executed) / float(count),
              "skipped_per_host_max": max(counters.get("skipped", 0) for counters in tasks.values()),
              "deprecations": result.stderr.count("[DEPRECATION WARNING]"),
              "hosts_cpu_s": hosts_after - hosts_before if None not in (hosts_before, hosts_after) else None}
    log("deploy on %d hosts, %-5s role, %-5s: %6.1f s  controller CPU %5.1f s (%4.1f per host)  %5.0f MiB  "
        "tasks per host %d (skipped %d)  changed=%d  machine busy %.2f CPUs"
        % (count, role, kind, result.seconds, result.cpu_s, record["cpu_s_per_host"], result.peak_mib,
           record["executed_per_host_max"], record["skipped_per_host_max"], changed, result.busy_cpus))
    return record


def run(bench, image, counts, repeat, log):
    """Times, controller CPU and tasks of the first and the no-op deploy per host count and role."""
    hosts_dir = os.path.join(bench.workdir, "hosts")
    setup_vars = {"ansible_python_interpreter": sys.executable, "setup_hosts_dir": hosts_dir,
                  "setup_hosts_prefix": HOST_PREFIX, "setup_hosts_image": HOST_IMAGE,
                  "setup_hosts_ssh_port": SSH_PORT_BASE}
    inventory = os.path.join(hosts_dir, "inventory.ini")
    results = {"image": image, "counts": [],
               "roles": dict((key, {"role": name, "label": label}) for key, (name, label) in ROLES.items())}
    try:
        serial = 0
        for number, count in enumerate(counts):
            # serial: 50% is int(hosts * 0.5) hosts per batch, at least one.
            batches = int(math.ceil(count / float(max(1, count // 2))))
            entry = {"hosts": count, "batches": batches, "order": [],
                     "roles": dict((role, {"first": [], "noop": []}) for role in ROLES)}
            for attempt in range(repeat):
                roles = list(ROLES)
                shift = (number + attempt) % len(roles)
                order = roles[shift:] + roles[:shift]
                entry["order"].append(order)
                for role in order:
                    serial += 1
                    _play(bench, "hosts.yml", "localhost,", dict(setup_vars, setup_hosts_count=count),
                          "starting %d hosts" % count)
                    play_vars = {"bench_store": "s3://droot-bench/deploy-%d" % serial, "bench_endpoint": bench.endpoint,
                                 "bench_app_port_base": APP_PORT_BASE, "bench_image": image}
                    for kind in ("first", "noop"):
                        entry["roles"][role][kind].append(_deploy(bench, role, kind, count, inventory, play_vars, log))
            results["counts"].append(entry)
    finally:
        if counts:
            _play(bench, "teardown.yml", "localhost,", dict(setup_vars, setup_hosts_count=max(counts)),
                  "removing the hosts")
    return results
