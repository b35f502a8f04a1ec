# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which step of droot.core's roles each task result belongs to, for runme.sh's check-mode tests.

The step of a role's task is its tag droot_step_<step> (else the task file it comes from, such as
main for the deploy's own tasks), and hook:<file> for a hook's task, so that check mode, which
runs other tasks than a real run where it cannot act, is compared with a real run step by step.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: droot_steps
type: aggregate
short_description: One JSON line per task result with the droot.core role step it belongs to
description:
  - Appends C({"host", "step", "task", "changed", "skipped", "failed"}) to the file named by the
    environment variable C(DROOT_STEPS_LOG); does nothing without it.
"""

ROLE_TASKS = "/roles/%s/tasks/"
STEP_TAG = "droot_step_"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "droot_steps"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, skipped=False, failed=False):
        log = os.environ.get("DROOT_STEPS_LOG")
        if not log:
            return
        task = result._task
        source = (task.get_path() or "?").rsplit(":", 1)[0]
        stem = os.path.splitext(os.path.basename(source))[0]
        steps = [tag[len(STEP_TAG):] for tag in task.tags if tag.startswith(STEP_TAG)]
        if ROLE_TASKS % "deploy" in source:
            step = steps[0] if steps else stem
        elif ROLE_TASKS % "rollback" in source:
            step = "rollback"
        else:
            step = "hook:" + stem
        line = dict(host=result._host.get_name(), step=step, task=task.get_name(),
                    changed=bool(result._result.get("changed")) and not skipped, skipped=skipped, failed=failed)
        with open(log, "a") as stream:
            stream.write(json.dumps(line, sort_keys=True) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=not ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, failed=True)
