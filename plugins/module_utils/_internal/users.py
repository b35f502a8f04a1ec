# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Users and groups as the root's own /etc/passwd and /etc/group define them.

Never the host's NSS and never Python's pwd/grp: the jailed program sees the root's files, so
the ids must come from there (upstream droot resolved them on the host, a bug), and running
NSS modules from an untrusted root while privileged is how CVE-2019-14271 and CVE-2025-32463
happened.
"""

from __future__ import annotations

import os
from collections import namedtuple

from ansible_collections.droot.core.plugins.module_utils._internal import safepath
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

Identity = namedtuple("Identity", "uid gid groups name home shell")
PasswdEntry = namedtuple("PasswdEntry", "name uid gid home shell")
GroupEntry = namedtuple("GroupEntry", "name gid members")

MAX_ID = 0xFFFFFFFE  # (uid_t)-1 means "unchanged" to setresuid


class UserError(DrootError):
    pass


def _id(text, what):
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    if not 0 <= value <= MAX_ID:
        raise UserError("%s id %s is out of range 0..%d" % (what, text, MAX_ID), step="resolve-user")
    return value


def parse_passwd(text):
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or line.startswith(("#", "+", "-")):
            continue
        uid, gid = _id(fields[2], "user"), _id(fields[3], "group")
        if uid is None or gid is None:
            continue
        entries.append(PasswdEntry(fields[0], uid, gid, fields[5] or "/", fields[6]))
    return entries


def parse_group(text):
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith(("#", "+", "-")):
            continue
        gid = _id(fields[2], "group")
        if gid is None:
            continue
        members = tuple(member for member in fields[3].split(",") if member)
        entries.append(GroupEntry(fields[0], gid, members))
    return entries


class Database:
    """The root's passwd and group entries."""

    def __init__(self, passwd, group):
        self.passwd = passwd
        self.group = group

    @classmethod
    def from_root(cls, root_fd):
        def read(path):
            data = safepath.read_in_root(root_fd, path, limit=16 << 20)
            return data.decode("utf-8", "surrogateescape") if data is not None else ""

        return cls(parse_passwd(read("/etc/passwd")), parse_group(read("/etc/group")))

    def user(self, spec):
        uid = _id(spec, "user")
        for entry in self.passwd:
            if (entry.uid == uid) if uid is not None else (entry.name == spec):
                return entry
        if uid is None:
            raise UserError(
                "user '%s' is not in the root's /etc/passwd; add it to the image or give a numeric uid"
                % spec, step="resolve-user")
        return PasswdEntry(None, uid, None, "/", "/bin/sh")

    def group_id(self, spec):
        gid = _id(spec, "group")
        if gid is not None:
            return gid
        for entry in self.group:
            if entry.name == spec:
                return entry.gid
        raise UserError(
            "group '%s' is not in the root's /etc/group; add it to the image or give a numeric gid"
            % spec, step="resolve-group")

    def member_gids(self, name):
        return [entry.gid for entry in self.group if name is not None and name in entry.members]


def split_user_spec(spec):
    """Docker's ``user[:group]`` form of an image's User field."""
    if spec in (None, ""):
        return None, None
    user, _sep, group = str(spec).partition(":")
    return user or None, group or None


def resolve(root_fd, user=None, group=None):
    """The identity to run as: ``user`` (name or uid, default root) and ``group`` (name or gid).

    As Docker does, the primary group defaults to the user's passwd entry, or 0 for a numeric
    uid without one; supplementary groups are the primary group plus every group that lists the
    user as a member.
    """
    database = Database.from_root(root_fd)
    entry = database.user(str(user) if user is not None else "0")
    if group is not None:
        gid = database.group_id(str(group))
    else:
        gid = entry.gid if entry.gid is not None else 0
    groups = tuple(dict.fromkeys([gid] + database.member_gids(entry.name)))  # in order, each once
    if len(groups) > os.sysconf("SC_NGROUPS_MAX"):
        raise UserError("the root's /etc/group gives user '%s' %d groups, more than the kernel's %d: fix the "
                        "image's /etc/group" % (entry.name, len(groups), os.sysconf("SC_NGROUPS_MAX")),
                        step="resolve-user")
    return Identity(entry.uid, gid, groups, entry.name, entry.home, entry.shell)
