# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print one line per entry of a directory tree: what a root file system is made of.

Path, type, permission bits (with setuid/setgid/sticky), numeric owner, mtime, size and a
content hash, symlink target, hard-link group and every extended attribute. Two trees are equal
when their outputs are equal.

    tree_digest.py ROOT
"""

import hashlib
import os
import stat
import sys


def digest(root):
    lines = []
    groups = {}
    root_dev = os.lstat(root).st_dev
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(top, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if st.st_dev != root_dev:
                raise SystemExit("%s is on another file system (a mount?)" % path)
            kind = stat.S_IFMT(st.st_mode)
            extra = ""
            if stat.S_ISREG(kind):
                sha = hashlib.sha256()
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        sha.update(block)
                extra = "size=%d sha256=%s" % (st.st_size, sha.hexdigest()[:16])
                if st.st_nlink > 1:
                    first = groups.setdefault((st.st_dev, st.st_ino), rel)
                    extra += " link=%s" % first
            elif stat.S_ISLNK(kind):
                extra = "-> %r" % os.readlink(path)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                extra = "dev=%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
            mtime = "" if stat.S_ISDIR(kind) and os.path.ismount(path) else " mtime=%d" % st.st_mtime
            xattrs = []
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                names = []
            for attr in sorted(names):
                value = os.getxattr(path, attr, follow_symlinks=False)
                xattrs.append("%s=%s" % (attr, value.hex()))
            lines.append("%r %s %04o %d:%d%s %s %s" % (
                rel, stat.filemode(st.st_mode)[0], stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                mtime, extra, " ".join(xattrs)))
    st = os.lstat(root)
    lines.insert(0, "'.' d %04o %d:%d" % (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
    return lines


if __name__ == "__main__":
    print("\n".join(digest(sys.argv[1])))
