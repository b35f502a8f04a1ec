# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which live processes use a directory tree: their root, cwd, open files or mapped files."""

from __future__ import annotations

import os
from collections import namedtuple

from ansible_collections.droot.core.plugins.module_utils.mountinfo import is_within

ProcessUse = namedtuple("ProcessUse", "pid comm how")

PROC = "/proc"


def _link(pid, name):
    try:
        return os.readlink(os.path.join(PROC, pid, name))
    except OSError:
        return None


def _comm(pid):
    try:
        with open(os.path.join(PROC, pid, "comm"), encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def _uses(pid, top):
    """Yield how the process ``pid`` uses ``top``: root, cwd, fd, map."""
    root = _link(pid, "root")
    if root is not None and is_within(root, top):
        yield "root"
    cwd = _link(pid, "cwd")
    if cwd is not None and is_within(cwd, top):
        yield "cwd"
    try:
        fds = os.listdir(os.path.join(PROC, pid, "fd"))
    except OSError:
        fds = []
    for fd in fds:
        target = _link(pid, os.path.join("fd", fd))
        if target is not None and is_within(target, top):
            yield "fd"
            break
    try:
        with open(os.path.join(PROC, pid, "maps"), encoding="utf-8", errors="replace") as handle:
            maps = handle.read()
    except OSError:
        maps = ""
    # one substring search over the whole file first: most processes map nothing under top
    if top in maps:
        fields = (line.split(None, 5) for line in maps.splitlines())
        if any(len(parts) == 6 and is_within(parts[5], top) for parts in fields):
            yield "map"


def users_of(path, exclude_self=True):
    """Live processes whose root, cwd, open files or mapped files are at or under ``path``.

    Paths in /proc are as seen from this process's root; a jailed process's root shows as the
    host path of its jail, which is what makes this usable on droot roots.
    """
    top = os.path.realpath(path)
    me = str(os.getpid())
    found = []
    for pid in os.listdir(PROC):
        if not pid.isdigit() or (exclude_self and pid == me):
            continue
        how = list(_uses(pid, top))
        if how:
            found.append(ProcessUse(int(pid), _comm(pid), tuple(how)))
    return found


def pids_in_root(path):
    """PIDs whose root directory is ``path`` or below it: the processes of that jail."""
    top = os.path.realpath(path)
    found = []
    for pid in os.listdir(PROC):
        root = _link(pid, "root") if pid.isdigit() else None
        if root is not None and is_within(root, top):
            found.append(int(pid))
    return found


def describe(uses):
    """A short list for an error message: ``1234 (nginx: root,cwd)``."""
    return ", ".join("%d (%s: %s)" % (use.pid, use.comm, ",".join(use.how)) for use in uses)
