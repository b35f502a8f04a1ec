# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pieces every droot.core module shares: the error type, optional-library checks, file locks, the atomic
file writer and the files in /run/droot."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import os
import time
import traceback

from ansible.module_utils.basic import missing_required_lib

# Where droot keeps a root's pidfile, lock and mount record: outside the root, on the host.
RUN_DIR = "/run/droot"
# A directory opened to read it or fsync it, never through a symlink.
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class DrootError(Exception):
    """A failure with a one-line message that names the problem and the fix.

    ``step`` names the step of a sequence that failed (for example ``mount-proc``), so the
    module can report where it stopped.
    """

    def __init__(self, msg, step=None, **details):
        super().__init__(msg)
        self.msg = msg
        self.step = step
        self.details = details

    def __str__(self):
        return "%s: %s" % (self.step, self.msg) if self.step else self.msg


class OptionalLibrary:
    """Import a library if it is there; remember why not, for ``missing_required_lib``."""

    def __init__(self, module_name, pip_name=None):
        self.pip_name = pip_name or module_name
        self.module = None
        self.traceback = None
        try:
            self.module = importlib.import_module(module_name)
        except ImportError:
            self.traceback = traceback.format_exc()

    def require(self, ansible_module, reason=None):
        """Fail the Ansible module with ``missing_required_lib`` when the import failed."""
        if self.module is None:
            ansible_module.fail_json(
                msg=missing_required_lib(self.pip_name, reason=reason),
                exception=self.traceback,
            )
        return self.module


def printable(text):
    """Text for a result: a name the image made up may not be UTF-8, and a lone surrogate fails the task."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def fail_from_error(ansible_module, error, **result):
    """Report a DrootError as a one-line ``msg`` with the failed step."""
    if error.step:
        result["step"] = error.step
    result.update(error.details)
    ansible_module.fail_json(msg=printable(str(error)), **result)


@contextlib.contextmanager
def file_lock(path, timeout, what, hint, error=DrootError):
    """Hold an exclusive flock on ``path``, waiting up to ``timeout`` seconds for another run.

    The holder writes its pid into the file, so that the error for the one that waits in vain
    can name it; ``what`` is what the lock guards and ``hint`` what to do about it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                    raise error("another run (pid %s) holds the lock of %s and did not finish within %s s: %s"
                                % (holder, what, timeout, hint), step="lock")
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        yield
    finally:
        os.close(fd)


def default_name(root):
    """A file name for a root's pidfile, log and lock: its basename and a hash of the whole path."""
    digest = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return "%s-%s" % (os.path.basename(root.rstrip("/")) or "root", digest)


def run_file(root, suffix):
    """The path of a root's file in RUN_DIR (created), for example its ``.pid`` or ``.lock``."""
    os.makedirs(RUN_DIR, 0o755, exist_ok=True)
    return os.path.join(RUN_DIR, default_name(root) + suffix)


def fsync_dir(path, follow_symlinks=False):
    """fsync a directory, so that a rename or creation in it lasts; ``path`` itself is not followed
    if it is a symlink, unless ``follow_symlinks``."""
    fd = os.open(path, OPEN_DIR & ~os.O_NOFOLLOW if follow_symlinks else OPEN_DIR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicFile:
    """A file written whole or not at all: a temporary file ``temp_path`` next to ``path`` is
    written, fsynced, renamed onto ``path`` by ``commit()``, and the directory fsynced; ``abort()``
    (or an exception in its ``with`` block) removes it. Never through a symlink at ``temp_path``.

    ``exclusive``: the temporary file must not exist (O_EXCL), else one left over is truncated.
    ``follow_dir_symlink``: the directory is fsynced even when its path is a symlink.
    ``dir_fd``: both paths are names in that directory (opened and checked by the caller).
    """

    def __init__(self, path, temp_path, mode=0o644, exclusive=True, follow_dir_symlink=False, buffering=-1,
                 dir_fd=None):
        self.path = path
        self.temp_path = temp_path
        self.dir_fd = dir_fd
        self._follow_dir_symlink = follow_dir_symlink
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
        self.file = os.fdopen(os.open(temp_path, flags, mode, dir_fd=dir_fd), "wb", buffering=buffering)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()

    def write(self, data):
        self.file.write(data)

    def commit(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.rename(self.temp_path, self.path, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        if self.dir_fd is None:
            fsync_dir(os.path.dirname(self.path), follow_symlinks=self._follow_dir_symlink)
        else:
            # dir_fd may be an O_PATH descriptor (safepath's), which fsync refuses with EBADF
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.dir_fd)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def abort(self):
        try:
            self.file.close()
        except OSError:
            pass  # ENOSPC again on the final flush: the file goes anyway
        try:
            os.unlink(self.temp_path, dir_fd=self.dir_fd)
        except FileNotFoundError:
            pass
