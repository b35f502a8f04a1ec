# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A layer with everything a root file system may hold, for `ADD layer.tar /`.

    make_layer.py WORKDIR OUT.tar

setuid, setgid and sticky bits, odd owners, a file capability, hard links, relative, absolute
and dangling symlinks, a fifo, names with spaces, newlines and bad UTF-8, a long path, an empty
directory and mtimes. Packed with GNU tar so the capability travels as a pax xattr.
"""

import os
import subprocess
import sys


def main(work, out):
    root = os.path.join(work, "layer")
    os.makedirs(root)

    def path(*parts):
        return os.path.join(root, *parts)

    def write(name, data, mode=0o644, owner=(0, 0)):
        full = path(name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
        os.chown(full, *owner)
        os.chmod(full, mode)
        return full

    write("opt/app/bin/suid-tool", b"#!/bin/sh\n", 0o4755)
    write("opt/app/bin/sgid-tool", b"#!/bin/sh\n", 0o2711, (0, 42))
    os.makedirs(path("opt/app/shared"))
    os.chmod(path("opt/app/shared"), 0o3775)
    os.makedirs(path("opt/app/spool"))
    os.chmod(path("opt/app/spool"), 0o1733)
    ping = write("opt/app/bin/ping", open("/bin/busybox", "rb").read()[:65536], 0o755)
    subprocess.run(["setcap", "cap_net_raw,cap_net_bind_service+ep", ping], check=True)
    write("home/worker/notes.txt", b"owned by 1234:2345\n", 0o600, (1234, 2345))
    os.chown(path("home/worker"), 1234, 2345)
    os.chmod(path("home/worker"), 0o750)
    write("srv/big-uid", b"x", 0o644, (2000000, 2000001))
    data = write("opt/app/lib/data.bin", os.urandom(300000))
    os.link(data, path("opt/app/lib/data-hardlink.bin"))
    os.symlink("../lib/data.bin", path("opt/app/bin/relative-link"))
    os.symlink("/etc/hostname", path("opt/app/absolute-link"))
    os.symlink("does/not/exist", path("opt/app/dangling-link"))
    os.mkfifo(path("opt/app/fifo"), 0o620)
    write("opt/app/name with spaces", b"s")
    write("opt/app/new\nline", b"n")
    write(os.fsdecode(b"opt/app/latin1-\xe9t\xe9"), b"l")
    long_dir = os.path.join(*["segment-%02d-%s" % (index, "x" * 20) for index in range(8)])
    write(os.path.join("opt/app/deep", long_dir, "file-at-the-bottom"), b"deep")
    os.makedirs(path("opt/app/empty"))
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(top, name), (1600000000, 1600000000), follow_symlinks=False)
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", root, "-cpf", out, "."],
                   check=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
