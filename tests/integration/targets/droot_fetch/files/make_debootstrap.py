# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A root file system tarball as debootstrap and mmdebstrap write it, with the device nodes of /dev.

    make_debootstrap.py OUT.tar
"""

import io
import sys
import tarfile

NODES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
         ("console", 5, 1), ("ptmx", 5, 2))


def main():
    with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as tar:
        def add(name, kind, mode, data=b"", devices=(0, 0), link=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, 1700000000, link
            info.devmajor, info.devminor = devices
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("./", tarfile.DIRTYPE, 0o755)
        add("./dev/", tarfile.DIRTYPE, 0o755)
        for name, major, minor in NODES:
            add("./dev/" + name, tarfile.CHRTYPE, 0o666, devices=(major, minor))
        add("./dev/pts/", tarfile.DIRTYPE, 0o755)
        add("./dev/shm/", tarfile.DIRTYPE, 0o1777)
        add("./dev/fd", tarfile.SYMTYPE, 0o777, link="/proc/self/fd")
        add("./etc/", tarfile.DIRTYPE, 0o755)
        add("./etc/marker", tarfile.REGTYPE, 0o644, b"debootstrap\n")


if __name__ == "__main__":
    main()
