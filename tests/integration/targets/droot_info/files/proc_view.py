# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What /proc says about the live processes rooted in each directory given (by the device and inode of
/proc/PID/root), as JSON - {directory: [{pid, ppid, nspid, uid, gid, cmdline}, ...]}, by pid."""

import json
import os
import sys


def identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def main(directories):
    wanted = {identity(directory): directory for directory in directories}
    found = {directory: [] for directory in directories}
    for pid in sorted((name for name in os.listdir("/proc") if name.isdigit()), key=int):
        try:
            directory = wanted.get(identity("/proc/%s/root" % pid))
            if directory is None:
                continue
            status = {}
            with open("/proc/%s/status" % pid, encoding="ascii", errors="replace") as handle:
                for line in handle:
                    key, _sep, value = line.partition(":")
                    status[key] = value.split()
            with open("/proc/%s/stat" % pid, encoding="ascii", errors="replace") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                cmdline = [arg.decode("utf-8", "replace") for arg in handle.read().rstrip(b"\0").split(b"\0")]
        except OSError:
            continue  # gone meanwhile, or a zombie without a root
        if status["State"][0] == "Z":
            continue
        found[directory].append(dict(pid=int(pid), ppid=ppid, nspid=int(status["NSpid"][-1]),
                                     uid=int(status["Uid"][0]), gid=int(status["Gid"][0]), cmdline=cmdline))
    print(json.dumps(found, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
