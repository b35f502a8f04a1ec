"""Write a tar layer (GNU tar --xattrs) whose files exercise what an export must keep.

busybox has no setfattr, so the xattrs are set here on the host and carried into the image by
`docker build` ADD of this tar. Usage: make_layer.py WORKDIR OUT.tar
"""

import os
import subprocess
import sys

# security.capability v2 blob granting cap_net_bind_service+ep.
FILE_CAPS = bytes.fromhex("01000002 00040000 00000000 00000000 00000000")


def write(path, data=b"", mode=0o644, owner=(0, 0)):
    with open(path, "wb") as handle:
        handle.write(data)
    os.chown(path, *owner)
    os.chmod(path, mode)


def main(workdir, out):
    root = os.path.join(workdir, "layer")
    subprocess.run(["rm", "-rf", root], check=True)
    os.makedirs(os.path.join(root, "opt/rich/sub"))
    base = os.path.join(root, "opt/rich")
    write(os.path.join(base, "with-xattrs"), b"xattrs\n")
    os.setxattr(os.path.join(base, "with-xattrs"), "user.droot.test", b"value 1")
    os.setxattr(os.path.join(base, "with-xattrs"), "trusted.droot", b"\x00\x01binary")
    write(os.path.join(base, "ping-like"), b"#!/bin/sh\n", 0o755)
    os.setxattr(os.path.join(base, "ping-like"), "security.capability", FILE_CAPS)
    write(os.path.join(base, "setuid"), b"suid\n", 0o4755)
    write(os.path.join(base, "setgid"), b"sgid\n", 0o2711, (0, 50))
    write(os.path.join(base, "owned"), b"owned\n", 0o640, (1234, 5678))
    write(os.path.join(base, "huge-uid"), b"huge\n", 0o600, (3000000, 3000000))
    write(os.path.join(base, "hard-a"), b"hardlinked\n")
    os.link(os.path.join(base, "hard-a"), os.path.join(base, "sub/hard-b"))
    os.symlink("../with-xattrs", os.path.join(base, "sub/relative-link"))
    os.symlink("/etc/passwd", os.path.join(base, "absolute-link"))
    os.symlink("does/not/exist", os.path.join(base, "dangling-link"))
    os.mkfifo(os.path.join(base, "fifo"))
    os.chmod(os.path.join(base, "sub"), 0o3775)
    long_dir = os.path.join(base, "d" * 60, "e" * 60)
    os.makedirs(long_dir)
    write(os.path.join(long_dir, "long name with spaces \u00e9"), b"long\n")
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "--format=posix",
                    "-cf", out, "-C", root, "."], check=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
