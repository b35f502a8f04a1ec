# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every droot.core module result of the integration tests, for tests/utils/check_returns.py.

tests/run.sh enables this callback for the integration targets through the integration.cfg it
writes into the staged collection; the checker then compares the keys of each result with the
module's RETURN documentation.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: droot_results
type: aggregate
short_description: One JSON line per droot.core module result, with its keys
description:
  - For each result of a droot.core module - one per loop item, never a loop's aggregate; ok and
    failed, in check mode too - appends a JSON object to C(results-<pid>.jsonl) in O(results_dir)
    with the module's FQCN, C(status) (C(ok) or C(failed)), C(check_mode), the result's C(keys), the
    variable names of a loop (C(loop_keys)), the task and its file, C(step) when the result has one and
    the names of its C(ansible_facts).
  - Does nothing without O(results_dir).
  - Needs no enabling (ansible-test sets C(ANSIBLE_CALLBACKS_ENABLED) for the targets, which replaces
    C(callbacks_enabled) of the configuration) - every play whose callback path has its directory runs it.
options:
  results_dir:
    description: The directory the JSON lines go to; created when missing.
    type: path
    ini:
      - section: callback_droot_results
        key: results_dir
    env:
      - name: DROOT_RESULTS_DIR
"""

PREFIX = "droot.core."


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "droot_results"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = None
        self._broken = False

    def _record(self, result, status):
        task = result.task
        module = task.resolved_action
        if not module or not module.startswith(PREFIX) or self._broken:
            return
        data = result.result
        if self._path is None:
            directory = self.get_option("results_dir")
            if not directory:
                self._broken = True
                return
            os.makedirs(directory, exist_ok=True)
            self._path = os.path.join(directory, "results-%d.jsonl" % os.getpid())
        line = dict(
            module=module,
            status=status,
            check_mode=bool(task.check_mode),
            keys=sorted(data),
            loop_keys=sorted(str(data[key]) for key in ("ansible_loop_var", "ansible_index_var") if data.get(key)),
            task=task.get_name(),
            path=task.get_path(),
            host=result.host.get_name(),
            cwd=os.getcwd(),
        )
        if "step" in data:
            line["step"] = str(data["step"])
        if isinstance(data.get("ansible_facts"), dict):
            line["facts"] = sorted(data["ansible_facts"])
        try:
            with open(self._path, "a", encoding="utf-8") as log:
                log.write(json.dumps(line, sort_keys=True) + "\n")
        except OSError as exc:
            self._broken = True
            self._display.warning("droot_results: cannot write %s: %s" % (self._path, exc))

    @staticmethod
    def _is_loop(result):
        # The aggregate of a loop's items, which v2_runner_item_on_* reported one by one.
        task = result.task
        return bool(task.loop or task.loop_with) and isinstance(result.result.get("results"), list)

    def v2_runner_on_ok(self, result):
        if not self._is_loop(result):
            self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not self._is_loop(result):
            self._record(result, "failed")

    def v2_runner_item_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_item_on_failed(self, result):
        self._record(result, "failed")
