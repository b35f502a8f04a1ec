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

LAYOUTS = ("releases", "replace")
STATE_FORMAT = 1
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

    # -- state ---------------------------------------------------------------------------------

    def load_state(self):
        state = read_json(self.state_path) or {}
        if state and state.get("format") != STATE_FORMAT:
            raise ReleaseError("%s has format %r, not %d: it was written by another version"
                               % (self.state_path, state.get("format"), STATE_FORMAT))
        state.setdefault("format", STATE_FORMAT)
        state.setdefault("releases", {})
        state.setdefault("history", [])
        state.setdefault("rolled_back", [])
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

    def path_of(self, release_id):
        return os.path.join(self.releases_dir, release_id)

    def current(self):
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

    def exists(self, release_id):
        # What dest holds before it is adopted is no release.
        return not self.adopting and os.path.isdir(self.path_of(release_id)) and not os.path.islink(self.path_of(release_id))

    def releases(self):
        try:
            names = os.listdir(self.releases_dir)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if RELEASE_ID.match(name) and self.exists(name))

    def previous(self, state, current=None):
        """The release active before ``current``, from the activation history.

        Releases rolled back from are skipped, so that rollbacks walk back instead of returning
        to the release they left.
        """
        current = self.current() if current is None else current
        marked = set(state["rolled_back"])
        for release_id in reversed(state["history"]):
            if release_id != current and release_id not in marked and self.exists(release_id):
                return release_id
        return None

    def install(self, staging, release_id):
        """Make the complete tree ``staging`` the release ``release_id``.

        An existing release of that name (the same image re-exported) is exchanged atomically,
        even while active; its old tree is deleted when free.
        """
        check_release_id(release_id)
        if self.adopting:
            self._adopt()
            self._make_private(self.releases_dir)
        path = self.path_of(release_id)
        old = self.switcher.put(staging, path, self._aside_path(release_id))
        if old is not None:
            self.discard(old)
        return path

    def activate(self, state, release_id, rolled_back_from=None):
        """Point ``current`` at the release with a temporary symlink renamed over it.

        ``rolled_back_from`` (a rollback's release switched away from) is marked as rolled back.
        """
        check_release_id(release_id)
        if not self.exists(release_id):
            raise ReleaseError("release %s does not exist in %s" % (release_id, self.releases_dir))
        tmp = os.path.join(self.dest, ".current.tmp-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8]))
        os.symlink("releases/" + release_id, tmp)
        try:
            os.rename(tmp, self.current_link)
        except OSError:
            os.unlink(tmp)
            raise
        fsync_dir(self.dest)
        record_activation(state, release_id, rolled_back_from)

    def ranked(self, state, extra=()):
        """Releases on disk (and ``extra`` ids), in the order keep keeps them: those not rolled back
        from first, each group most recently activated first (never activated last)."""
        order = {release_id: index for index, release_id in enumerate(state["history"])}
        marked = set(state["rolled_back"])
        names = set(self.releases()) | set(extra)
        return sorted(names, key=lambda r: (r not in marked, order.get(r, -1), r), reverse=True)

    def prune_candidates(self, state, keep, protect=(), current=None, extra=()):
        """The releases beyond the first ``keep`` of ``ranked()`` that may go; ``keep=0`` keeps all.

        Never the current release, the previous one, or one in ``protect``.
        """
        if keep <= 0:
            return []
        current = self.current() if current is None else current
        protected = {current, self.previous(state, current)} | set(protect) | set(extra)
        return [r for r in self.ranked(state, extra)[keep:] if r not in protected]

    def prune(self, state, keep, protect=()):
        """Delete the releases ``prune_candidates()`` names, unless busy (mounts, processes).

        Returns ``(removed, kept_busy)`` lists of ids.
        """
        removed, kept_busy = [], []
        for release_id in self.prune_candidates(state, keep, protect):
            try:
                remove_tree(self.path_of(release_id))
            except BusyError as exc:
                kept_busy.append(release_id)
                self.notes.append(str(exc))
                continue
            removed.append(release_id)
            forget(state, release_id)
        return removed, kept_busy

    def would_prune(self, state, keep, protect=(), current=None, extra=()):
        """``(removed, kept_busy)`` as prune would return them, deleting nothing (check mode)."""
        removed, kept_busy = [], []
        for release_id in self.prune_candidates(state, keep, protect, current, extra):
            (kept_busy if busy_reasons(self.path_of(release_id)) else removed).append(release_id)
        return removed, kept_busy


def record_activation(state, release_id, rolled_back_from=None):
    """Note in ``state`` that ``release_id`` became current, leaving ``rolled_back_from`` by a rollback."""
    state["history"] = ([entry for entry in state["history"] if entry != release_id] + [release_id])[-HISTORY_LIMIT:]
    marked = [entry for entry in state["rolled_back"] if entry not in (release_id, rolled_back_from)]
    if rolled_back_from and rolled_back_from != release_id:
        marked.append(rolled_back_from)
    state["rolled_back"] = marked[-HISTORY_LIMIT:]


def forget(state, release_id):
    """Drop a deleted release from ``state``: a release fetched again under its id starts afresh."""
    state["releases"].pop(release_id, None)
    state["history"] = [entry for entry in state["history"] if entry != release_id]
    state["rolled_back"] = [entry for entry in state["rolled_back"] if entry != release_id]


class ReplaceTarget(_Target):
    """``dest`` is the root itself, replaced as a whole."""

    layout = "replace"

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

    def current(self, state=None):
        """The recorded release in ``dest``; None when ``dest`` is missing or unknown."""
        if not os.path.isdir(self.dest):
            return None
        state = self.load_state() if state is None else state
        return state.get("current")

    def busy(self):
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

    def install(self, staging, release_id, state, if_busy="fail"):
        """Swap ``staging`` into ``dest``; the old tree is deleted, or kept when busy.

        Returns ``(kept_path or None)``. With ``if_busy=fail`` a busy ``dest`` is refused before
        anything changes.
        """
        check_release_id(release_id)
        if if_busy == "fail":
            reasons = self.busy()
            if reasons:
                raise BusyError(
                    "dest %s is %s: stop what uses it (for example droot_run state=absent) or set "
                    "if_busy: keep to switch and keep the old tree" % (self.dest, "; ".join(reasons)))
        if os.path.ismount(self.dest):
            raise ReleaseError("dest %s is a mount point and cannot be replaced: use a directory below it"
                               % self.dest)
        if self.adopting:
            self._adopt()
        old = self.switcher.put(staging, self.dest, self._aside_path(state.get("current") or "old"))
        state["history"] = (state["history"] + [release_id])[-HISTORY_LIMIT:]
        state["current"] = release_id
        return self.discard(old) if old is not None else None


def _list_names(names, shown=5):
    """Up to ``shown`` names on one line (quoted, so newlines in names stay escaped), and how many in all."""
    listed = ", ".join(repr(name) for name in names[:shown])
    return listed if len(names) <= shown else "%s, ... %d in all" % (listed, len(names))


def open_target(dest, layout, warn=None):
    if layout == "releases":
        return ReleasesTarget(dest, warn)
    if layout == "replace":
        return ReplaceTarget(dest, warn)
    raise ReleaseError("unknown layout %r: use releases or replace" % (layout,))
