# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mount table as the kernel reports it in /proc/self/mountinfo."""

from __future__ import annotations

import os
import re
from collections import namedtuple

MOUNTINFO = "/proc/self/mountinfo"

Mount = namedtuple(
    "Mount",
    "mount_id parent_id device root mount_point options optional fstype source super_options",
)

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape(field):
    r"""Undo the kernel's octal escapes (``\040`` for space, ``\011``, ``\012``, ``\134``)."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_line(line):
    """Parse one mountinfo line (see proc(5)); the optional fields end at a lone ``-``."""
    fields = line.split()
    separator = fields.index("-", 6)
    return Mount(
        mount_id=int(fields[0]),
        parent_id=int(fields[1]),
        device=fields[2],
        root=unescape(fields[3]),
        mount_point=unescape(fields[4]),
        options=fields[5],
        optional=tuple(fields[6:separator]),
        fstype=fields[separator + 1],
        source=unescape(fields[separator + 2]),
        super_options=fields[separator + 3] if len(fields) > separator + 3 else "",
    )


def parse(text):
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def read_table(path=MOUNTINFO):
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return parse(handle.read())


def is_within(path, top):
    """True when ``path`` is ``top`` or below it, compared by whole path components."""
    if top == "/":
        return path.startswith("/")
    return path == top or path.startswith(top.rstrip("/") + "/")


def mounts_under(path, table=None):
    """Mounts at ``path`` or below it, deepest first (the order to unmount them in).

    ``path`` is made absolute and normalised but not resolved: callers pass a realpath, since
    the kernel reports resolved mount points.
    """
    top = os.path.normpath(os.path.abspath(path))
    if table is None:
        table = read_table()
    found = [mount for mount in table if is_within(mount.mount_point, top)]
    # Deepest first; among equal depths, the later (stacked on top) first.
    order = {mount.mount_id: index for index, mount in enumerate(table)}
    found.sort(key=lambda m: (m.mount_point.count("/"), order[m.mount_id]), reverse=True)
    return found


def mount_at(path, table=None):
    """The topmost mount whose mount point is exactly ``path``, or None."""
    if table is None:
        table = read_table()
    matches = [mount for mount in table if mount.mount_point == path]
    return matches[-1] if matches else None


def flags_of(mount):
    """The per-mount options as a set, for example {"ro", "nosuid", "nodev", "relatime"}."""
    return set(mount.options.split(","))
