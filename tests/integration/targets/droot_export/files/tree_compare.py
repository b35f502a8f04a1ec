"""Compare two extracted trees: paths, types, modes (setuid/setgid/sticky included), owners,
symlink targets, hardlink groups, xattrs and file contents.

Usage: tree_compare.py EXPECTED ACTUAL [--ignore NAME]...
Prints a JSON summary (what kinds of entries were compared, so a caller can check the
comparison was not vacuous) and the differences; exits 1 when there are any.
"""

import argparse
import hashlib
import json
import os
import stat
import sys


def describe(root, ignore):
    entries = {}
    inodes = {}
    for directory, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        if rel_dir.split(os.sep)[0] in ignore:
            dirs[:] = []
            continue
        for name in sorted(dirs + files):
            path = os.path.join(directory, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel.split(os.sep)[0] in ignore:
                continue
            st = os.lstat(path)
            entry = {
                "type": stat.S_IFMT(st.st_mode),
                "mode": oct(stat.S_IMODE(st.st_mode)),
                "owner": [st.st_uid, st.st_gid],
                "xattrs": dict((key, os.getxattr(path, key, follow_symlinks=False).hex())
                               for key in sorted(os.listxattr(path, follow_symlinks=False))),
            }
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    entry["sha256"] = hashlib.sha256(handle.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            entries[rel] = entry
    for group in inodes.values():
        for rel in group:
            entries[rel]["hardlinks"] = sorted(group)
    return entries


def summary(entries):
    return {
        "entries": len(entries),
        "symlinks": sum(1 for e in entries.values() if "target" in e),
        "setuid": sum(1 for e in entries.values() if int(e["mode"], 8) & stat.S_ISUID),
        "setgid": sum(1 for e in entries.values() if int(e["mode"], 8) & stat.S_ISGID),
        "hardlinked": sum(1 for e in entries.values() if "hardlinks" in e),
        "with_xattrs": sum(1 for e in entries.values() if e["xattrs"]),
        "not_root_owned": sum(1 for e in entries.values() if e["owner"] != [0, 0]),
        "fifos": sum(1 for e in entries.values() if e["type"] == stat.S_IFIFO),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("expected")
    parser.add_argument("actual")
    parser.add_argument("--ignore", action="append", default=[])
    args = parser.parse_args()
    expected = describe(args.expected, set(args.ignore))
    actual = describe(args.actual, set(args.ignore))
    differences = []
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            differences.append("missing: %s" % rel)
        elif rel not in expected:
            differences.append("extra: %s" % rel)
        elif expected[rel] != actual[rel]:
            differences.append("differs: %s: expected %s, got %s" % (rel, expected[rel], actual[rel]))
    print(json.dumps({"summary": summary(expected), "differences": differences}))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
