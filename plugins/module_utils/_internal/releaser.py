# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""droot_release's logic: bring the releases of a dest to a state, through releases.Executor.

A run and check mode take the same path: the executor decides, refuses and records alike, and
only a run that is not dry touches the disk (under the dest's lock).
"""

from __future__ import annotations

from ansible_collections.droot.core.plugins.module_utils._internal import releases
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

STATES = ("switched", "rolled_back", "pruned", "absent")
NEEDS_RELEASE = ("switched", "absent")


class ReleaseTaskError(DrootError):
    """A bad request to droot_release, with the fix."""


def check_options(params):
    state = params["state"]
    if state in NEEDS_RELEASE and not params["release"]:
        raise ReleaseTaskError("state=%s needs release: name the release to %s"
                               % (state, "switch to" if state == "switched" else "remove"), step="options")
    if state == "pruned" and params["release"]:
        raise ReleaseTaskError("state=pruned takes no release: keep decides which releases go; remove one release "
                               "with state=absent", step="options")
    if params["keep"] < 0:
        raise ReleaseTaskError("keep must be 0 (keep all) or more", step="options")
    if params["release"] is not None:
        try:
            releases.check_release_id(params["release"])
        except releases.ReleaseError as exc:
            raise ReleaseTaskError(exc.msg, step="options")


def apply(executor, state, release=None, keep=0, switch=True):
    """Carry out ``state`` on the executor; returns the release the task is about.

    ``switch=False`` (droot_fetch's deprecated form only) checks the release without switching.
    """
    if state == "switched":
        executor.require(release, "switch")
        if switch:
            executor.switch(release)
        return release
    if state == "rolled_back":
        chosen = release or executor.previous()
        if chosen is None:
            skipped = [r for r in executor.state["rolled_back"] if executor.exists(r) and r != executor.current]
            raise ReleaseTaskError("there is no previous release to roll back to in %s%s" % (
                executor.target.dest, (" (releases rolled back from are skipped: %s; name one with release)"
                                       % ", ".join(skipped)) if skipped else ""), step="rollback")
        executor.require(chosen, "rollback")
        if switch:
            executor.switch(chosen, rolled_back_from=executor.current, step="rollback")
        return chosen
    if state == "pruned":
        executor.prune(keep)
        return executor.current
    executor.remove(release)
    return release


def run(params, check_mode=False, diff=False, warn=None):
    """One droot_release task: the module's result."""
    check_options(params)
    target = releases.ReleasesTarget(params["dest"], warn)
    # A dest droot never fetched into has no release to change: decide without making its directories.
    dry_run = check_mode or not target.managed()
    if dry_run:
        return _execute(target, params, True, diff)
    with target.locked(params["lock_timeout"]):
        target.recover()
        return _execute(target, params, False, diff)


def _execute(target, params, dry_run, diff):
    executor = releases.Executor(target, target.load_state(), dry_run)
    release = apply(executor, params["state"], params["release"], params["keep"])
    executor.commit()
    result = executor.result(release)
    if diff and result["changed"]:
        result["diff"] = executor.diff()
    return result
