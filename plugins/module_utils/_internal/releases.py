# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where unpacked roots live and how one becomes the active one.

Two layouts:

``replace`` (the seed's ``mv -T``): ``dest`` is the root itself. A new tree is swapped in with
renameat2(RENAME_EXCHANGE), so ``dest`` always names a complete tree. Where the file system
cannot exchange (EINVAL, for example some overlayfs setups), two renames are used instead:
``dest`` -> aside, staging -> ``dest``, with a journal written first; between the two renames
``dest`` is missing, and a run that finds the journal (after a crash) completes the switch.
Bookkeeping lives beside ``dest`` in ``.<name>.droot/``, never inside the root.

``releases`` (capze, ansistrano): ``dest/releases/<id>`` and a ``dest/current`` symlink,
switched by creating a temporary symlink and rename(2)-ing it over ``current``: a reader
always finds ``current``, pointing at the old or the new release. Bookkeeping lives in
``dest/.droot/``: the lock, state.json (what each release was fetched from, the activation
history, the releases rolled back from), staging directories and trees waiting for deletion.

"Previous" is the most recently active release that still exists and was not rolled back
from: a rollback marks the release it leaves, so a second rollback walks further back instead
of returning to it, and a release that failed does not become "previous" again. Activating a
release clears its mark. ``keep`` counts the releases that are not marked first, so releases
rolled back from never take the place of good ones.

A tree is deleted only when nothing is mounted under it and no live process uses it (root,
cwd, open files, maps), and the deletion itself never crosses into another mount, so a bind
mount created meanwhile is never walked into.

A dest that droot never managed (no state.json) and that holds anything but droot's own entries
is refused, as the seed's ``mv -T`` refuses a non-empty target: ``replace`` would delete it,
``releases`` would mix releases with it. With ``adopt``, a fetch first moves it (``replace``:
dest itself; ``releases``: the entries that are not droot's) to ``<dest>.droot-adopted-<UTC
time>``, which droot never deletes.

A run that fails removes, under its lock, the directories it created (dest's parents included),
so a failed first fetch leaves nothing behind; the lock file stays while another run has it open
to wait, and a run that waited checks that the lock it got is still the file at the lock's path.

Releases hold the image's setuid and file-capability binaries: ``releases/``, the bookkeeping
directory and the staging and old-tree directories in it are 0700 and owned by the user running
droot_fetch (root), so host users cannot reach them; one found wider (as 0.1.0 made
``releases/``) is corrected, with a warning. Each release's own root keeps the archive's mode.
With ``replace`` the root sits in a directory droot does not own, so the fetcher refuses such
binaries there unless allowed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import resource
import stat
import time
import uuid

from ansible_collections.droot.core.plugins.module_utils._internal import libc, mountinfo, procs
from ansible_collections.droot.core.plugins.module_utils._internal.common import (
    OPEN_DIR, AtomicFile, DrootError, file_lock, fsync_dir)
# renameat2 and its flags are used (and replaced in tests) through this module.
from ansible_collections.droot.core.plugins.module_utils._internal.libc import RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2

# Format 2 adds each release's fetch and last activation times; format 1 is 0.1.0's.
STATE_FORMAT = 2
READABLE_FORMATS = (1, 2)
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
HISTORY_LIMIT = 100
MAX_DESCRIPTORS = 1 << 16
ADOPTED = ".droot-adopted-"
# A releases dest may hold these without droot's state: the bookkeeping directory of a run and
# the lost+found of a file system of its own.
OWN_ENTRIES = (".droot", "lost+found")
# How often a run opens the lock again when a failed run removed the lock file it waited on.
LOCK_ATTEMPTS = 10


class ReleaseError(DrootError):
    def __init__(self, msg, step="release", **details):
        super().__init__(msg, step=step, **details)


class BusyError(ReleaseError):
    """A tree is mounted on or used by a process; it was left in place."""


def check_release_id(release_id):
    if not isinstance(release_id, str) or not RELEASE_ID.match(release_id):
        raise ReleaseError(
            "release name %r is not valid: use 1 to 128 letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit" % (release_id,))
    return release_id


def release_id_from_image_id(image_id):
    """The first 12 hex digits of a content id (``sha256:...``), as ``docker images`` shows it."""
    digest = image_id.split(":", 1)[-1].lower()
    if not re.match(r"^[0-9a-f]{12,}$", digest):
        raise ReleaseError("image id %r in the manifest is not a hex digest: export the image again"
                           % (image_id,))
    return digest[:12]


# ---------------------------------------------------------------------------------------------
# System calls


def syncfs(path):
    """Flush the file system holding ``path``, so a switch never points at unwritten data."""
    fd = os.open(path, OPEN_DIR)
    try:
        try:
            libc.syncfs(fd)
        except OSError:
            os.sync()
    finally:
        os.close(fd)


def rename_noreplace(old, new):
    """rename(2) that never replaces ``new``: renameat2(RENAME_NOREPLACE), where the file system
    lacks it a check and a plain rename."""
    try:
        renameat2(old, new, RENAME_NOREPLACE)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
        if os.path.lexists(new):
            raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), new)
        os.rename(old, new)


def _same_file(fd, path):
    """Whether the descriptor ``fd`` is the file that ``path`` names now."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _is_dir(path):
    return os.path.isdir(path) and not os.path.islink(path)


def _is_empty_dir(path):
    return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)


def write_json(path, data):
    with AtomicFile(path, "%s.tmp-%d" % (path, os.getpid()), mode=0o666, exclusive=False) as writer:
        writer.write(json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))
        writer.commit()


def read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ReleaseError("%s is not valid JSON (%s): remove it to start the bookkeeping afresh"
                           % (path, exc))


# ---------------------------------------------------------------------------------------------
# Busy checks and safe deletion


def busy_reasons(path):
    """Why ``path`` may not be deleted: mounts under it and processes using it (empty: free)."""
    real = os.path.realpath(path)
    reasons = []
    mounts = mountinfo.mounts_under(real)
    if mounts:
        reasons.append("mounted: %s" % ", ".join(sorted({m.mount_point for m in mounts})))
    users = procs.users_of(real)
    if users:
        reasons.append("used by %s" % procs.describe(users))
    return reasons


def remove_tree(path):
    """Delete the directory tree ``path`` unless it is busy; raises BusyError if it is.

    The walk opens each directory relative to its parent with O_NOFOLLOW, so symlinks in the
    tree are removed, never followed, and checks each directory's mount id, so a mount made
    after the busy check stops the deletion instead of emptying the mounted file system.
    """
    reasons = busy_reasons(path)
    if reasons:
        raise BusyError("%s is %s: it was left in place" % (path, "; ".join(reasons)))
    _allow_many_descriptors()
    parent = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(os.path.abspath(path))
    parent_fd = os.open(parent, OPEN_DIR)
    try:
        try:
            top = os.open(name, OPEN_DIR, dir_fd=parent_fd)
        except FileNotFoundError:
            return
        top_mount = libc.mount_id(parent_fd)
        if libc.mount_id(top) != top_mount:
            os.close(top)
            raise BusyError("%s is a mount point: it was left in place" % path)
        _empty_dir(top, top_mount, path)
        os.rmdir(name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def _allow_many_descriptors():
    """The walk holds one descriptor per level: let a deep tree have as many as the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_DESCRIPTORS if hard == resource.RLIM_INFINITY else min(hard, MAX_DESCRIPTORS)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _empty_dir(top_fd, top_mount, path):
    """Remove everything below the directory ``top_fd`` (closed on return), depth first."""

    def clear_files(fd):
        subdirs = []
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.name)
                    continue
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    if exc.errno == errno.EBUSY:
                        raise BusyError("%s has a mount point below it (%s): stopped deleting it"
                                        % (path, entry.name))
                    raise
        return subdirs

    # (descriptor, parent descriptor, name in parent, subdirectories still to delete)
    stack = [(top_fd, None, None, None)]
    try:
        stack[0] = (top_fd, None, None, clear_files(top_fd))
        while stack:
            fd, parent_fd, name, subdirs = stack[-1]
            if subdirs:
                sub_name = subdirs.pop()
                sub = os.open(sub_name, OPEN_DIR, dir_fd=fd)
                stack.append((sub, fd, sub_name, None))
                if libc.mount_id(sub) != top_mount:
                    raise BusyError("%s has a mount point below it (%s): stopped deleting it"
                                    % (path, sub_name))
                stack[-1] = (sub, fd, sub_name, clear_files(sub))
                continue
            stack.pop()
            os.close(fd)
            if parent_fd is not None:
                os.rmdir(name, dir_fd=parent_fd)
    finally:
        for entry in stack:
            os.close(entry[0])


# ---------------------------------------------------------------------------------------------
# Directory swap


class Switcher:
    """Puts a complete tree at a path atomically; see the module docstring for the fallback."""

    def __init__(self, journal_path):
        self.journal_path = journal_path

    def put(self, new, target, aside):
        """Move directory ``new`` to ``target``. Returns where the old tree went, or None.

        With RENAME_EXCHANGE the old tree ends up at ``new``; with the fallback at ``aside``.
        """
        if not os.path.lexists(target):
            rename_noreplace(new, target)
            fsync_dir(os.path.dirname(target))
            return None
        if not os.path.isdir(target) or os.path.islink(target):
            raise ReleaseError("%s exists and is not a directory: move it away first" % target)
        try:
            renameat2(new, target, RENAME_EXCHANGE)
            fsync_dir(os.path.dirname(target))
            return new
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise ReleaseError("%s is a mount point and cannot be replaced: use a directory "
                                   "below the mount as dest" % target)
            if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
        write_json(self.journal_path, {"target": target, "new": new, "aside": aside})
        os.rename(target, aside)
        os.rename(new, target)
        fsync_dir(os.path.dirname(target))
        os.unlink(self.journal_path)
        return aside

    def recover(self):
        """Finish a fallback switch that a crash interrupted. Returns a note, or None."""
        journal = read_json(self.journal_path)
        if journal is None:
            return None
        target, new, aside = journal["target"], journal["new"], journal["aside"]
        note = None
        if not os.path.lexists(target):
            # The journal is written only once the new tree is complete: finish the switch.
            if os.path.isdir(new):
                os.rename(new, target)
                note = "completed an interrupted switch of %s" % target
            elif os.path.isdir(aside):
                os.rename(aside, target)
                note = "restored %s after an interrupted switch" % target
            fsync_dir(os.path.dirname(target))
        os.unlink(self.journal_path)
        return note


# ---------------------------------------------------------------------------------------------
# Layouts


PRIVATE_WHY = "so that host users cannot run the setuid and capability binaries of the trees in it"


def _others_may_enter(st):
    """Whether a private directory could be entered by anyone but its rightful owner (us)."""
    return bool(stat.S_IMODE(st.st_mode) & 0o077) or st.st_uid != os.geteuid()


class _Target:
    """What both layouts share: bookkeeping directory, lock, staging, recovery.

    ``warn`` receives one line per correction of a private directory (the module's warn);
    without it the lines are kept in ``warnings``.
    """

    layout = None

    def __init__(self, dest, state_dir, warn=None):
        self.dest = os.path.abspath(dest)
        self.state_dir = state_dir
        self.staging_dir = os.path.join(state_dir, "staging")
        self.old_dir = os.path.join(state_dir, "old")
        self.state_path = os.path.join(state_dir, "state.json")
        self.lock_path = os.path.join(state_dir, "lock")
        self.switcher = Switcher(os.path.join(state_dir, "switch.json"))
        self.notes = []
        self.warnings = []
        self.warn = warn or self.warnings.append
        self.corrected = []
        # Directories this run made, in order: a failed run removes them.
        self.created = []
        # Set by check_foreign: dest holds what droot did not put there, and a fetch adopts it.
        self.adopting = False
        self.adopted = None
        # Set by load_state: the format of a state file written by an older version.
        self.migrated_from = None

    # -- state ---------------------------------------------------------------------------------

    def load_state(self):
        """The bookkeeping; a state of an older format is read as this one and written so on the next save."""
        state = read_json(self.state_path) or {}
        found = state.get("format", STATE_FORMAT) if state else STATE_FORMAT
        if found not in READABLE_FORMATS:
            raise ReleaseError("%s has format %r, which this version of droot.core (state format %d) cannot read: "
                               "it was written by a newer version; upgrade the collection on the controller"
                               % (self.state_path, found, STATE_FORMAT), step="state")
        self.migrated_from = found if found != STATE_FORMAT else None
        state["format"] = STATE_FORMAT
        state.setdefault("releases", {})
        state.setdefault("history", [])
        state.setdefault("rolled_back", [])
        for info in state["releases"].values():
            # Format 1 (0.1.0) kept no times: unknown, not invented.
            info.setdefault("fetched", None)
            info.setdefault("activated", None)
        return state

    def save_state(self, state):
        write_json(self.state_path, state)

    # -- lock and recovery -----------------------------------------------------------------------

    def private_dirs(self):
        """The directories that hold trees and only their owner may enter, parents first."""
        return (self.state_dir, self.staging_dir, self.old_dir)

    def too_open(self):
        """``(path, mode, uid)`` of each existing private directory that others could enter."""
        found = []
        for path in self.private_dirs():
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) and _others_may_enter(st):
                found.append((path, stat.S_IMODE(st.st_mode), st.st_uid))
        return found

    def _make_private(self, path):
        """Create ``path`` 0700, or correct it to 0700 and our owner when others could enter it."""
        try:
            os.mkdir(path, 0o700)
            self.created.append(path)
            return
        except FileExistsError:
            pass
        try:
            fd = os.open(path, OPEN_DIR)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ReleaseError("%s exists and is not a directory: move it away" % path)
            raise
        try:
            st = os.fstat(fd)
            if not _others_may_enter(st):
                return
            if st.st_uid != os.geteuid():
                os.fchown(fd, os.geteuid(), os.getegid())
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
        self.corrected.append(path)
        self.warn("%s was mode %04o, owner uid %d: corrected to 0700, owner uid %d, %s"
                  % (path, stat.S_IMODE(st.st_mode), st.st_uid, os.geteuid(), PRIVATE_WHY))

    def _make_dirs(self):
        for path in self.private_dirs():
            self._make_private(path)

    def _make_parents(self, path):
        """Create the missing directories down to ``path`` (mode 0755), noting those made."""
        missing = []
        while not os.path.lexists(path):
            missing.append(path)
            path = os.path.dirname(path)
        for directory in reversed(missing):
            try:
                os.mkdir(directory, 0o755)
            except FileExistsError:
                continue
            self.created.append(directory)

    @contextlib.contextmanager
    def locked(self, timeout):
        """Hold the lock of ``dest``, waiting up to ``timeout`` seconds for another run.

        A run that fails removes what it created (``remove_created``) before it lets the lock go.
        A failed run may have removed the lock file (and the directories) this one opened: then it
        opens the lock again.
        """
        deadline = time.monotonic() + timeout
        self.created = []
        for _attempt in range(LOCK_ATTEMPTS):
            self._make_dirs()
            try:
                probe = os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue
            held = False
            try:
                with file_lock(self.lock_path, max(0.0, deadline - time.monotonic()), self.dest,
                               "wait for it, or raise lock_timeout", ReleaseError):
                    held = True
                    if not _same_file(probe, self.lock_path):
                        continue
                    # What a failed run before us removed, we make again.
                    self._make_dirs()
                    try:
                        yield
                    except BaseException:
                        self.remove_created()
                        raise
                    return
            except FileNotFoundError:
                if held:
                    raise
            finally:
                os.close(probe)
        raise ReleaseError("the lock file of %s was removed %d times while this run waited for it: run again"
                           % (self.dest, LOCK_ATTEMPTS), step="lock")

    def remove_created(self):
        """After a failed run, under its lock: remove the directories it made, deepest first, each
        only when empty. The lock file goes with its directory unless another run has it open to
        wait for the lock (that run uses the directory next)."""
        for path in reversed(self.created):
            if path == self.state_dir:
                try:
                    if os.listdir(path) != ["lock"] or procs.users_of(self.lock_path):
                        continue
                    os.unlink(self.lock_path)
                except FileNotFoundError:
                    continue
            try:
                os.rmdir(path)
            except OSError:
                pass  # not empty (a release, another run's file) or gone: it stays
        self.created = []

    # -- a dest droot never managed --------------------------------------------------------------

    def managed(self):
        """Whether droot's state is there: droot fetched into dest before."""
        return os.path.exists(self.state_path)

    def foreign(self):
        """The names in dest that droot did not put there (none when droot manages dest)."""
        raise NotImplementedError

    def check_foreign(self, adopt):
        """Refuse a dest that holds what droot did not put there, unless ``adopt`` (then the fetch
        moves it aside first)."""
        names = self.foreign()
        if not names:
            self.adopting = False
            return
        if not adopt:
            raise ReleaseError(self._foreign_message(names), step="dest")
        self.adopting = True

    def adoption_path(self):
        """A free name beside dest for what it held: ``<dest>.droot-adopted-<UTC time>[-N]``."""
        base = "%s%s%s" % (self.dest, ADOPTED, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        path, number = base, 1
        while os.path.lexists(path):
            number += 1
            path = "%s-%d" % (base, number)
        return path

    def _adopted(self, path):
        self.adopting = False
        self.adopted = path
        fsync_dir(os.path.dirname(self.dest))
        self.notes.append("moved what %s held before droot managed it to %s, which droot never deletes"
                          % (self.dest, path))
        return path

    def recover(self):
        """Clean up after a killed run: finish a switch, drop staging, delete old trees."""
        note = self.switcher.recover()
        if note:
            self.notes.append(note)
        for directory in (self.staging_dir, self.old_dir):
            for name in sorted(os.listdir(directory)):
                path = os.path.join(directory, name)
                if os.path.islink(path) or not os.path.isdir(path):
                    os.unlink(path)
                    continue
                try:
                    remove_tree(path)
                except BusyError as exc:
                    self.notes.append(str(exc))

    def new_staging(self):
        """A fresh empty directory on the file system of ``dest``; named before its id is known."""
        path = os.path.join(self.staging_dir, "%d-%s" % (os.getpid(), uuid.uuid4().hex[:12]))
        os.mkdir(path, 0o700)
        return path

    def discard(self, path):
        """Delete a replaced tree now if free; else move it to ``old/`` for a later run.

        Returns where the tree was kept, or None once deleted.
        """
        try:
            remove_tree(path)
            return None
        except BusyError as exc:
            self.notes.append(str(exc))
            if os.path.dirname(path) == self.old_dir:
                return path
            kept = self._aside_path(os.path.basename(path))
            os.rename(path, kept)
            return kept

    def _aside_path(self, name):
        return os.path.join(self.old_dir, "%s-%s" % (name, uuid.uuid4().hex[:8]))


class ReleasesTarget(_Target):
    """``dest/releases/<id>`` plus ``dest/current`` -> ``releases/<id>``."""

    layout = "releases"

    def __init__(self, dest, warn=None):
        dest = os.path.abspath(dest)
        super().__init__(dest, os.path.join(dest, ".droot"), warn)
        self.releases_dir = os.path.join(dest, "releases")
        self.current_link = os.path.join(dest, "current")

    def private_dirs(self):
        # A releases/ that droot did not make is adopted, never made private in place.
        own = () if self.adopting else (self.releases_dir,)
        return own + super().private_dirs()

    def _make_dirs(self):
        # dest and its parents are created as ansistrano's deploy_to is; releases/ must be ours.
        self._make_parents(self.dest)
        if os.path.islink(self.dest) or not os.path.isdir(self.dest):
            raise ReleaseError("%s exists and is not a directory: choose another dest" % self.dest)
        super()._make_dirs()

    def foreign(self):
        if self.managed() or os.path.islink(self.dest) or not os.path.isdir(self.dest):
            return []
        # An empty releases/ is what a failed first fetch of an older version left.
        return sorted(name for name in os.listdir(self.dest)
                      if name not in OWN_ENTRIES and not name.startswith(".current.tmp-")
                      and not (name == "releases" and _is_empty_dir(self.releases_dir)))

    def _foreign_message(self, names):
        return ("dest %s holds files that droot did not put there (%s): choose an empty or new dest, or set "
                "adopt: true to move them to %s<UTC time> first" % (self.dest, _list_names(names), self.dest + ADOPTED))

    def _adopt(self):
        """Move the entries droot did not make to a new directory beside dest, with dest's mode and
        owner; dest itself stays (it may be a mount point), with droot's own entries."""
        names = self.foreign()
        if not names:
            return None
        st = os.stat(self.dest)
        while True:
            path = self.adoption_path()
            try:
                os.mkdir(path, 0o700)
                break
            except FileExistsError:
                continue
        moved = []
        try:
            for name in names:
                os.rename(os.path.join(self.dest, name), os.path.join(path, name))
                moved.append(name)
        except OSError as exc:
            # Put back what was moved: the task fails with dest as it was.
            for done in moved:
                os.rename(os.path.join(path, done), os.path.join(self.dest, done))
            os.rmdir(path)
            raise ReleaseError("cannot move %s out of dest %s to %s (%s): dest is a file system of its own or holds "
                               "mount points; move its files away yourself, or choose another dest"
                               % (os.path.join(self.dest, name), self.dest, path, exc.strerror or exc), step="dest")
        if os.geteuid() == 0:
            os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, stat.S_IMODE(st.st_mode))
        fsync_dir(self.dest)
        return self._adopted(path)

    def recover(self):
        super().recover()
        # Temporary symlinks of a switch that was killed before its rename.
        if os.path.isdir(self.dest):
            for name in os.listdir(self.dest):
                if name.startswith(".current.tmp-"):
                    os.unlink(os.path.join(self.dest, name))

    # -- the layout interface (ReplaceTarget has the same methods, with the same signatures) -------

    private_roots = True  # the roots sit in releases/, which is root's only

    def path_of(self, release_id):
        return os.path.join(self.releases_dir, release_id)

    def current(self, state):
        """The active release id, read from the symlink (never guessed from mtimes)."""
        if self.adopting:
            return None
        try:
            target = os.readlink(self.current_link)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise ReleaseError("%s is not a symlink: move it away so droot.core can manage it"
                                   % self.current_link)
            raise
        parts = target.rstrip("/").split("/")
        if len(parts) != 2 or parts[0] != "releases" or not RELEASE_ID.match(parts[1]):
            raise ReleaseError("%s points to %r, not to releases/<id>: fix or remove the symlink"
                               % (self.current_link, target))
        return parts[1]

    def releases(self, state):
        """The release ids on disk (the directories say, not ``state``). What dest holds before it
        is adopted is no release."""
        if self.adopting:
            return []
        try:
            names = os.listdir(self.releases_dir)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if RELEASE_ID.match(name) and _is_dir(self.path_of(name)))

    @classmethod
    def check_request(cls, fetching, rollback, switch):
        """Refuse a droot_fetch request this layout cannot carry out: every request suits it."""

    def check_install(self, if_busy):
        """Refuse an install before anything changes: a releases dest takes every release."""

    def install(self, staging, release_id, state, if_busy):
        """Make the complete tree ``staging`` the release ``release_id``; returns None (nothing kept).

        An existing release of that name (the same image re-exported) is exchanged atomically,
        even while active; its old tree is deleted when free, else kept in ``old/``.
        """
        if self.adopting:
            self._adopt()
            self._make_private(self.releases_dir)
        old = self.switcher.put(staging, self.path_of(release_id), self._aside_path(release_id))
        if old is not None:
            self.discard(old)
        return None

    def record_install(self, state, release_id, info):
        """Note the release in ``state``; returns whether installing it made it current (no)."""
        state["releases"][release_id] = info
        return False

    def check_activate(self, release_id, current):
        """Any release on disk can become current."""

    def activate(self, release_id):
        """Point ``current`` at the release with a temporary symlink renamed over it."""
        tmp = os.path.join(self.dest, ".current.tmp-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8]))
        os.symlink("releases/" + release_id, tmp)
        try:
            os.rename(tmp, self.current_link)
        except OSError:
            os.unlink(tmp)
            raise
        fsync_dir(self.dest)

    def delete(self, release_id):
        """Delete the release's tree; BusyError when something is mounted under it or uses it."""
        remove_tree(self.path_of(release_id))


class ReplaceTarget(_Target):
    """``dest`` is the root itself, replaced as a whole: one release, always the current one."""

    layout = "replace"
    private_roots = False  # the root lies in a directory droot does not own

    def __init__(self, dest, warn=None):
        dest = os.path.abspath(dest).rstrip("/") or "/"
        parent, name = os.path.split(dest)
        if not name:
            raise ReleaseError("dest must not be / with layout replace")
        super().__init__(dest, os.path.join(parent, ".%s.droot" % name), warn)

    def _make_dirs(self):
        # The parents of dest are created as those of a releases dest are; dest itself comes
        # with the first tree.
        parent = os.path.dirname(self.dest)
        self._make_parents(parent)
        if not os.path.isdir(parent):
            raise ReleaseError("the parent %s of dest is not a directory: choose another dest" % parent)
        super()._make_dirs()

    def _busy(self):
        return busy_reasons(self.dest) if os.path.lexists(self.dest) else []

    def foreign(self):
        if self.managed() or os.path.islink(self.dest) or not os.path.isdir(self.dest):
            return []
        return sorted(os.listdir(self.dest))

    def _foreign_message(self, names):
        return ("dest %s is a directory that droot did not make, and it holds files (%s) that layout replace would "
                "delete: choose an empty or new dest, or set adopt: true to move it to %s<UTC time> first"
                % (self.dest, _list_names(names), self.dest + ADOPTED))

    def _adopt(self):
        """Move dest, which droot did not make, aside whole, never replacing anything."""
        while True:
            path = self.adoption_path()
            try:
                rename_noreplace(self.dest, path)
                break
            except FileExistsError:
                continue
        return self._adopted(path)

    # -- the layout interface (as ReleasesTarget's) ----------------------------------------------

    def path_of(self, release_id):
        return self.dest

    def current(self, state):
        """The recorded release in ``dest``; None when ``dest`` is missing or unknown."""
        if self.adopting or not _is_dir(self.dest):
            return None
        return state.get("current")

    def releases(self, state):
        """The one release there is: the tree in ``dest``."""
        current = self.current(state)
        return [current] if current else []

    @classmethod
    def check_request(cls, fetching, rollback, switch):
        if rollback:
            raise ReleaseError("rollback needs layout releases: a replace layout keeps no old trees", step="options")
        if not fetching:
            raise ReleaseError("src is required with layout replace: without it droot_fetch switches between or "
                               "prunes releases, which needs layout releases", step="options")
        if not switch:
            raise ReleaseError("switch=false needs layout releases: with layout replace dest is the root itself, "
                               "so unpacking it is switching to it", step="options")

    def check_install(self, if_busy):
        """With ``if_busy=fail`` a busy ``dest`` is refused before anything changes."""
        if if_busy == "fail":
            reasons = self._busy()
            if reasons:
                raise BusyError(
                    "dest %s is %s: stop what uses it (for example droot_run state=absent) or set "
                    "if_busy: keep to switch and keep the old tree" % (self.dest, "; ".join(reasons)))
        if os.path.ismount(self.dest):
            raise ReleaseError("dest %s is a mount point and cannot be replaced: use a directory below it"
                               % self.dest)

    def install(self, staging, release_id, state, if_busy):
        """Swap ``staging`` into ``dest``; returns where the busy old tree was kept, or None."""
        if self.adopting:
            self._adopt()
        old = self.switcher.put(staging, self.dest, self._aside_path(state.get("current") or "old"))
        return self.discard(old) if old is not None else None

    def record_install(self, state, release_id, info):
        """The tree in ``dest`` is the release now: the only one, and current."""
        state["releases"] = {release_id: info}
        state["current"] = release_id
        return True

    def check_activate(self, release_id, current):
        if release_id != current:
            raise ReleaseError("layout replace holds one tree, release %s, so it cannot switch to %s: fetch that "
                               "release with src instead" % (current, release_id), step="switch")

    def activate(self, release_id):
        """The tree in ``dest`` is current already (check_activate refused any other)."""

    def delete(self, release_id):
        raise ReleaseError("layout replace holds one tree, the current one, which cannot be removed: remove %s "
                           "yourself once nothing runs it" % self.dest, step="remove")


# ---------------------------------------------------------------------------------------------
# The bookkeeping and the executor


def now():
    """A time for the bookkeeping: UTC, to the second, ISO 8601."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record_activation(state, release_id, rolled_back_from=None, when=None):
    """Note in ``state`` that ``release_id`` became current, leaving ``rolled_back_from`` by a rollback."""
    state["history"] = ([entry for entry in state["history"] if entry != release_id] + [release_id])[-HISTORY_LIMIT:]
    marked = [entry for entry in state["rolled_back"] if entry not in (release_id, rolled_back_from)]
    if rolled_back_from and rolled_back_from != release_id:
        marked.append(rolled_back_from)
    state["rolled_back"] = marked[-HISTORY_LIMIT:]
    if release_id in state["releases"]:
        state["releases"][release_id]["activated"] = when or now()


def forget(state, release_id):
    """Drop a deleted release from ``state``: a release fetched again under its id starts afresh."""
    state["releases"].pop(release_id, None)
    state["history"] = [entry for entry in state["history"] if entry != release_id]
    state["rolled_back"] = [entry for entry in state["rolled_back"] if entry != release_id]


def previous_of(state, current, on_disk):
    """The release active before ``current``, from the activation history: the most recent one on
    disk that was not rolled back from, so rollbacks walk back instead of returning."""
    marked = set(state["rolled_back"])
    for release_id in reversed(state["history"]):
        if release_id != current and release_id not in marked and release_id in on_disk:
            return release_id
    return None


def ranked(state, on_disk):
    """``on_disk`` in the order keep keeps them: those not rolled back from first, each group most
    recently activated first (never activated last)."""
    order = {release_id: index for index, release_id in enumerate(state["history"])}
    marked = set(state["rolled_back"])
    return sorted(on_disk, key=lambda r: (r not in marked, order.get(r, -1), r), reverse=True)


class Executor:
    """The release operations of one task on one dest, carried out, or with ``dry_run`` (check
    mode) only decided and recorded in ``state``: both go through the same decisions and refusals.

    A run that is not dry holds the dest's lock (``target.locked``) around it.
    """

    def __init__(self, target, state, dry_run):
        self.target = target
        self.state = state
        self.dry_run = dry_run
        self.before = target.current(state)
        self.current = self.before
        self.on_disk = set(target.releases(state))
        self.removed = []
        self.kept_busy = []
        self.kept_old = None
        self.adopted = None
        self.changed = bool(target.corrected)
        if dry_run:
            for path, mode, uid in target.too_open():
                target.warn("%s is mode %04o, owner uid %d: a run corrects it to 0700, %s" % (path, mode, uid, PRIVATE_WHY))
                self.changed = True

    @property
    def notes(self):
        return self.target.notes

    def exists(self, release_id):
        return release_id in self.on_disk

    def previous(self):
        return previous_of(self.state, self.current, self.on_disk)

    def ranked(self):
        return ranked(self.state, self.on_disk)

    def require(self, release_id, step):
        if not self.exists(release_id):
            raise ReleaseError("release %s does not exist in %s: available are %s"
                               % (release_id, self.target.dest, ", ".join(sorted(self.on_disk)) or "none"), step=step)

    def install(self, staging, release_id, info, if_busy):
        """Make ``staging`` (None in a dry run) the release ``release_id``, recorded with ``info``.

        A dry run may not know the id yet (a release named after the archive's sha256): it is then
        refused or adopted as any, and counted as a change, but not recorded."""
        if release_id is not None:
            check_release_id(release_id)
        self.target.check_install(if_busy)
        self.changed = True
        if self.dry_run:
            if self.target.adopting:
                self.adopted = self.target.adoption_path()
                self.notes.append("a run moves what %s holds, which droot did not put there, to %s"
                                  % (self.target.dest, self.adopted))
            if release_id is None:
                return
        else:
            self.kept_old = self.target.install(staging, release_id, self.state, if_busy)
            self.adopted = self.target.adopted
        info = dict(info, fetched=now(), activated=None)
        if self.target.record_install(self.state, release_id, info):
            # Layout replace: the new tree took the place of the one release there was.
            self.on_disk.clear()
            self.current = release_id
            record_activation(self.state, release_id, when=info["fetched"])
        self.on_disk.add(release_id)

    def switch(self, release_id, rolled_back_from=None, step="switch"):
        """Make ``release_id`` current; ``rolled_back_from`` (what a rollback leaves) is marked."""
        if release_id is None:  # a dry run's release of unknown id
            self.current = None
            return
        if release_id == self.current:
            return
        self.require(release_id, step)
        self.target.check_activate(release_id, self.current)
        if not self.dry_run:
            self.target.activate(release_id)
        record_activation(self.state, release_id, rolled_back_from)
        self.current = release_id
        self.changed = True

    def prune_candidates(self, keep, protect=()):
        """The releases beyond the first ``keep`` that may go; ``keep=0`` keeps all. Never the
        current release, the previous one, or one in ``protect``."""
        if keep <= 0:
            return []
        protected = {self.current, self.previous()} | set(protect)
        return [r for r in self.ranked()[keep:] if r not in protected]

    def prune(self, keep, protect=()):
        """Delete the releases ``prune_candidates`` names; busy ones stay (``kept_busy``)."""
        for release_id in self.prune_candidates(keep, protect):
            try:
                self._delete(release_id)
            except BusyError as exc:
                self.kept_busy.append(release_id)
                self.notes.append(str(exc))

    def remove(self, release_id):
        """Delete one release: refused while it is current, previous, mounted or in use."""
        check_release_id(release_id)
        if not self.exists(release_id):
            return
        for what, which in (("current", self.current), ("previous", self.previous())):
            if release_id == which:
                raise ReleaseError("release %s is the %s release of %s, which is never removed: switch to another "
                                   "release first%s" % (release_id, what, self.target.dest,
                                                        "" if what == "current" else
                                                        ", or roll back past it"), step="remove")
        try:
            self._delete(release_id)
        except BusyError as exc:
            raise BusyError("%s; stop what uses it (for example droot_run state=absent) and remove it again"
                            % exc.msg, step="remove")

    def _delete(self, release_id):
        path = self.target.path_of(release_id)
        if self.dry_run:
            reasons = busy_reasons(path)
            if reasons:
                raise BusyError("%s is %s: it was left in place" % (path, "; ".join(reasons)))
        else:
            self.target.delete(release_id)
        self.on_disk.discard(release_id)
        self.removed.append(release_id)
        forget(self.state, release_id)
        self.changed = True

    def commit(self):
        """Write the bookkeeping when the task changed it (never in a dry run)."""
        if not self.changed:
            return
        if not self.dry_run:
            self.target.save_state(self.state)
        if self.target.migrated_from is not None:
            self.notes.append("%s the bookkeeping from format %d (droot.core 0.1.0) to format %d"
                              % ("a run migrates" if self.dry_run else "migrated", self.target.migrated_from,
                                 STATE_FORMAT))

    def result(self, release):
        """What both modules return about the dest after the task."""
        sha256 = (self.state["releases"].get(release or "") or {}).get("sha256")
        return dict(changed=self.changed, release=release, path=self.path_or_none(release), previous=self.before,
                    current=self.current, releases=self.ranked(), removed=self.removed, kept_busy=self.kept_busy,
                    rolled_back=[r for r in self.state["rolled_back"] if r in self.on_disk], sha256=sha256,
                    notes=self.notes)

    def path_or_none(self, release_id):
        return self.target.path_of(release_id) if release_id else None

    def diff(self, unnamed_after=None):
        """The active release before and after; ``unnamed_after`` names a dry run's release of unknown id."""
        def describe(release_id, name=None):
            if release_id is None and name is None:
                return "(none)\n"
            info = self.state["releases"].get(release_id or "") or {}
            return "release: %s\npath: %s\nsha256: %s\n" % (
                release_id or name, self.path_or_none(release_id) or "(unknown)", info.get("sha256") or "unknown")
        return dict(before=describe(self.before), after=describe(self.current, unnamed_after))


def _list_names(names, shown=5):
    """Up to ``shown`` names on one line (quoted, so newlines in names stay escaped), and how many in all."""
    listed = ", ".join(repr(name) for name in names[:shown])
    return listed if len(names) <= shown else "%s, ... %d in all" % (listed, len(names))


LAYOUT_CLASSES = {"releases": ReleasesTarget, "replace": ReplaceTarget}


def layout_class(layout):
    try:
        return LAYOUT_CLASSES[layout]
    except KeyError:
        raise ReleaseError("unknown layout %r: use releases or replace" % (layout,), step="options")


def open_target(dest, layout, warn=None):
    return layout_class(layout)(dest, warn)
