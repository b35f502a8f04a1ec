# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pieces every droot.core module shares: the error type and optional-library checks."""

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
