# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wall time and peak memory of a whole process tree.

Each measured command runs in a cgroup v1 memory group of its own, made below this process's
group (so the session's own accounting still covers it) and removed afterwards. A thread
samples every process of the group and adds up their PSS (proportional set size, from
/proc/PID/smaps_rollup): pages shared by several processes of the tree (a forked guardian, the
libraries of a shell pipeline) count once, not once per process. The cgroup also holds children
that left the tree (daemonized, re-parented); without cgroup v1 memory the tree is found by
parent pids. Page cache is not counted: a tree that writes 1 GB of files is not 1 GB "in memory".
"""

import os
import resource
import subprocess
import threading
import time

SAMPLE_SECONDS = 0.05


def _memory_cgroup_dir():
    """This process's cgroup v1 memory directory, or None where there is none."""
    mount = None
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _separator, right = line.partition(" - ")
            fields, super_fields = left.split(), right.split()
            if super_fields and super_fields[0] == "cgroup" and "memory" in super_fields[-1].split(","):
                mount = fields[4]
                break
    if mount is None:
        return None
    with open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            _number, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                directory = os.path.join(mount, path.lstrip("/"))
                return directory if os.access(directory, os.W_OK) else None
    return None


MEMORY_CGROUP = _memory_cgroup_dir()


def _pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid, "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(root):
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


class _Group:
    """A cgroup of our own for one run, or the parent-pid tree where cgroups are not at hand."""

    counter = 0

    def __init__(self):
        self.path = None
        if MEMORY_CGROUP is not None:
            _Group.counter += 1
            path = os.path.join(MEMORY_CGROUP, "droot-bench-%d-%d" % (os.getpid(), _Group.counter))
            try:
                os.mkdir(path)
                self.path = path
            except OSError:
                self.path = None
        self.root = None

    def enter(self):
        """In the child before exec: join the group."""
        if self.path is not None:
            with open(os.path.join(self.path, "cgroup.procs"), "w", encoding="ascii") as handle:
                handle.write(str(os.getpid()))

    def pids(self):
        if self.path is not None:
            try:
                with open(os.path.join(self.path, "cgroup.procs"), encoding="ascii") as handle:
                    return [int(line) for line in handle if line.strip()]
            except OSError:
                return []
        return _descendants(self.root) if self.root else []

    def remove(self):
        if self.path is None:
            return
        # Stragglers of the tree (a pipeline's last reader) get a moment to go; processes that
        # outlive the run on purpose (ssh's ControlPersist masters) go back to our own group.
        deadline = time.monotonic() + 2
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.pids():
            try:
                with open(os.path.join(MEMORY_CGROUP, "cgroup.procs"), "w", encoding="ascii") as handle:
                    handle.write(str(pid))
            except OSError:
                pass
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def busy_cpu_seconds():
    """CPU seconds the whole machine has spent busy (not idle or waiting for I/O) since boot."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Result:
    """One measured run: ``seconds`` (wall), ``peak_mib`` (tree PSS), ``cpu_s`` (CPU time of the tree's
    processes that were waited for), ``busy_cpus`` (how many CPUs the whole machine kept busy meanwhile),
    ``returncode``, outputs."""

    def __init__(self, seconds, peak_mib, peak_process_mib, returncode, stdout, stderr, cpu_s=None, busy_cpus=None):
        self.seconds = seconds
        self.cpu_s = cpu_s
        self.busy_cpus = busy_cpus
        self.peak_mib = peak_mib
        self.peak_process_mib = peak_process_mib
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run(command, env=None, cwd=None, stdin=subprocess.DEVNULL):
    """Run ``command`` (argv), measuring the wall time and the peak PSS of its whole tree."""
    group = _Group()
    peak = {"tree": 0, "process": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            sizes = [_pss_kib(pid) for pid in group.pids()]
            if sizes:
                peak["tree"] = max(peak["tree"], sum(sizes))
                peak["process"] = max([peak["process"]] + sizes)
            done.wait(SAMPLE_SECONDS)

    try:
        cpu_before, busy_before = _children_cpu_seconds(), busy_cpu_seconds()
        start = time.monotonic()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, preexec_fn=group.enter)
        group.root = process.pid
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = process.communicate()
        seconds = time.monotonic() - start
        cpu_s, busy_s = _children_cpu_seconds() - cpu_before, busy_cpu_seconds() - busy_before
        done.set()
        sampler.join()
    finally:
        group.remove()
    return Result(seconds, peak["tree"] / 1024.0, peak["process"] / 1024.0, process.returncode,
                  stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"), cpu_s, busy_s / seconds)
