# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""droot.core.deploy on 1, 2, 4 and 8 hosts (serial 50%): first deploy and no-op, timed.

The hosts are the integration tests' (tests/integration/targets/setup_hosts, its image script
and inventory, called here, not copied): Debian containers with sshd on their own 127.0.0.1
port. Every host count gets new containers and a new S3 prefix, so the first deploy exports,
downloads, unpacks and starts everything; the no-op runs the same playbook again. The measured
tree is the controller's (ansible-playbook, its workers and ssh); the hosts' work runs in their
containers.
"""

import json
import math
import os
import subprocess
import sys

import measure

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HOST_PREFIX = "droot-bench-host-"
HOST_IMAGE = "droot-bench-hosts:latest"
SSH_PORT_BASE = 22600   # host N: sshd on 127.0.0.1:22600+N
APP_PORT_BASE = 18600   # host N: the app on 127.0.0.1:18600+N


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


def _recap_changed(stdout):
    """Sum of changed= over the PLAY RECAP lines of the hosts."""
    total, in_recap = 0, False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and "changed=" in line and line.startswith(HOST_PREFIX):
            total += int(line.split("changed=")[1].split()[0])
    return total


def run(bench, image, counts, repeat, log):
    """Times of the first and the no-op deploy per host count."""
    hosts_dir = os.path.join(bench.workdir, "hosts")
    setup_vars = {"ansible_python_interpreter": sys.executable, "setup_hosts_dir": hosts_dir,
                  "setup_hosts_prefix": HOST_PREFIX, "setup_hosts_image": HOST_IMAGE,
                  "setup_hosts_ssh_port": SSH_PORT_BASE}
    inventory = os.path.join(hosts_dir, "inventory.ini")
    results = {"image": image, "counts": []}
    try:
        serial = 0
        for count in counts:
            # serial: 50% is int(hosts * 0.5) hosts per batch, at least one.
            batches = int(math.ceil(count / float(max(1, count // 2))))
            entry = {"hosts": count, "batches": batches, "first": [], "noop": []}
            for _attempt in range(repeat):
                serial += 1
                _play(bench, "hosts.yml", "localhost,", dict(setup_vars, setup_hosts_count=count),
                      "starting %d hosts" % count)
                play_vars = {"bench_store": "s3://droot-bench/deploy-%d" % serial, "bench_endpoint": bench.endpoint,
                             "bench_app_port_base": APP_PORT_BASE, "bench_image": image}
                for kind in ("first", "noop"):
                    hosts_before = _hosts_cpu_seconds(count)
                    result = _play(bench, "deploy.yml", inventory, play_vars, "%s deploy on %d hosts" % (kind, count))
                    hosts_after = _hosts_cpu_seconds(count)
                    changed = _recap_changed(result.stdout)
                    if kind == "noop" and changed:
                        raise SystemExit("the no-op deploy on %d hosts changed %d things:\n%s"
                                         % (count, changed, result.stdout[-4000:]))
                    entry[kind].append({
                        "seconds": result.seconds, "peak_mib": result.peak_mib, "peak_process_mib": result.peak_process_mib,
                        "cpu_s": result.cpu_s, "busy_cpus": result.busy_cpus, "changed": changed,
                        "hosts_cpu_s": hosts_after - hosts_before if None not in (hosts_before, hosts_after) else None})
                    log("deploy on %d hosts, %s: %6.1f s  %5.0f MiB  changed=%d  machine busy %.2f CPUs"
                        % (count, kind, result.seconds, result.peak_mib, changed, result.busy_cpus))
            results["counts"].append(entry)
    finally:
        if counts:
            _play(bench, "teardown.yml", "localhost,", dict(setup_vars, setup_hosts_count=max(counts)),
                  "removing the hosts")
    return results
