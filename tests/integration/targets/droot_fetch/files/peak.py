# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a Python command as a child and measure it: the Python interpreter of a task under test.

    peak.py ARGS...     runs sys.executable ARGS... (a module, as Ansible starts it)

Environment: DROOT_PEAK_OUT, where to write {"maxrss_kb", "min_free", "free_before", "rc"};
DROOT_PEAK_WATCH, a path whose file system is sampled every half millisecond while the child
runs (min_free: the least free space seen, f_bavail * f_frsize). maxrss_kb is the peak resident
set size of the largest process of the child's tree (getrusage RUSAGE_CHILDREN, ru_maxrss).
The child's exit status is passed on.
"""

import json
import os
import resource
import subprocess
import sys
import time


def free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def main():
    watch = os.environ.get("DROOT_PEAK_WATCH")
    free_before = free(watch) if watch else None
    least = free_before
    child = subprocess.Popen([sys.executable] + sys.argv[1:])
    while child.poll() is None:
        if watch:
            least = min(least, free(watch))
        time.sleep(0.0005)
    with open(os.environ["DROOT_PEAK_OUT"], "w", encoding="utf-8") as handle:
        json.dump({"maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "min_free": least,
                   "free_before": free_before, "rc": child.returncode}, handle)
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
