# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""droot_info's logic: what a host holds in a dest and runs from it, read without changing anything.

The bookkeeping is read without the lock, as a reader of ``current`` would: a fetch that runs
meanwhile shows as the state before or after it. Trees are walked on descriptors, never following
symlinks and never into another mount; the image's /etc/passwd names the users.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import stat
import sys

from ansible_collections.droot.core.plugins.module_utils._internal import jails, releases, safepath, users
from ansible_collections.droot.core.plugins.module_utils._internal.common import OPEN_DIR, DrootError


def disk_usage(path):
    """Bytes the tree at ``path`` takes on disk, each inode once, not counting other mounts.

    Each directory is opened relative to its parent with O_NOFOLLOW, so a symlink in the release
    is never followed to the host, and one descriptor is held per level.
    """
    try:
        top = os.open(path, OPEN_DIR)
    except (FileNotFoundError, NotADirectoryError):
        return None
    device = os.fstat(top).st_dev
    seen = set()
    total = 0
    # (descriptor, names of its subdirectories still to walk)
    stack = []
    try:
        fd = top
        while True:
            total += os.fstat(fd).st_blocks * 512
            subdirs = []
            with os.scandir(fd) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if st.st_dev != device:
                        continue  # a mount point below the release
                    if stat.S_ISDIR(st.st_mode):
                        subdirs.append(entry.name)
                    elif st.st_ino not in seen:
                        seen.add(st.st_ino)
                        total += st.st_blocks * 512
            stack.append((fd, subdirs))
            fd = None
            while stack and fd is None:
                parent, names = stack[-1]
                if not names:
                    os.close(parent)
                    stack.pop()
                    continue
                try:
                    fd = os.open(names.pop(), OPEN_DIR, dir_fd=parent)
                except OSError:  # gone, or swapped for a symlink meanwhile
                    fd = None
            if fd is None:
                return total
    finally:
        for parent, _names in stack:
            os.close(parent)


def user_name(root, uid):
    """The name of ``uid`` in the root's /etc/passwd, or None."""
    if uid is None:
        return None
    try:
        root_fd = safepath.open_root(root)
    except (OSError, DrootError):
        return None
    try:
        for entry in users.Database.from_root(root_fd).passwd:
            if entry.uid == uid:
                return entry.name
    except (OSError, DrootError):
        return None
    finally:
        os.close(root_fd)
    return None


def describe_jail(jail, root):
    return dict(name=jail.name, init_pid=jail.init_pid, app_pid=jail.app_pid, uid=jail.uid, gid=jail.gid,
                user=user_name(root, jail.uid), command=jail.command, pids=jail.pids)


def describe_dest(dest, layout, with_disk_usage=True, names=None):
    """Everything droot_info returns about one dest."""
    target = releases.open_target(dest, layout)
    state = target.load_state()
    current = target.current(state)
    on_disk = target.releases(state)
    previous = releases.previous_of(state, current, on_disk)
    marked = set(state["rolled_back"])
    found = []
    for release_id in releases.ranked(state, on_disk):
        path = target.path_of(release_id)
        record = state["releases"].get(release_id) or {}
        found.append(dict(
            id=release_id, path=path, current=release_id == current, previous=release_id == previous,
            rolled_back=release_id in marked, image_id=record.get("image_id"), source=record.get("source"),
            sha256=record.get("sha256"), archive_size=record.get("size"), fetched=record.get("fetched"),
            activated=record.get("activated"), size_on_disk=disk_usage(path) if with_disk_usage else None,
            jails=[describe_jail(jail, path) for jail in jails.jails_in(path, names)]))
    return dict(dest=target.dest, layout=target.layout, managed=target.managed(),
                state_format=target.migrated_from or (releases.STATE_FORMAT if target.managed() else None),
                current=current, previous=previous, releases=found,
                rolled_back=[r for r in state["rolled_back"] if r in on_disk])


def describe_python(libraries):
    """This Python and which of ``libraries`` (import names) it cannot import, without importing them."""
    missing = []
    for name in libraries:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package that is missing, or a bad name
            found = False
        if not found:
            missing.append(name)
    return dict(executable=sys.executable, version=platform.python_version(), missing_libraries=missing)


def run(params):
    names = jails.recorded_jails()
    return dict(changed=False, python=describe_python(params["python_libraries"]),
                dests=[describe_dest(dest, params["layout"], params["disk_usage"], names) for dest in params["dest"]])
