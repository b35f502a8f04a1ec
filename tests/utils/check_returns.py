# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the keys of every droot.core module result the integration targets produced against the
module's RETURN documentation.

usage: check_returns.py RESULTS_DIR MODULES_DIR

RESULTS_DIR holds the JSON lines of callback_plugins/droot_results.py (results-<pid>.jsonl),
MODULES_DIR the modules (plugins/modules). Prints how many results of each module it saw and
every returned key that the module's RETURN does not document; fails for such a key and for a
module of MODULES_DIR that no result came from.
"""

from __future__ import annotations

import ast
import collections
import glob
import json
import os
import sys

import yaml

PREFIX = "droot.core."

# What Ansible itself puts into a module's result: its bookkeeping, the loop's and the retries'
# variables, the conditionals' outcomes, what the module reports through AnsibleModule (warnings,
# deprecations, the diff, invocation), and a no_log result's censored note.
ANSIBLE_KEYS = frozenset((
    "changed", "failed", "skipped", "invocation", "warnings", "deprecations", "diff",
    "ansible_loop_var", "ansible_index_var", "ansible_loop", "attempts", "retries",
    "failed_when_result", "changed_when_result", "failed_when_suppressed_exception", "censored",
))
# Only with the key they are derived from.
DERIVED_KEYS = {"stdout_lines": "stdout", "stderr_lines": "stderr"}
# What the async wrapper reports of a task with async (with poll: 0, all the task returns).
ASYNC_KEYS = frozenset(("ansible_job_id", "started", "finished", "results_file"))
# Only on a failed result, or on a module's failure that failed_when turned into success (Ansible
# then moves the failure's exception to failed_when_suppressed_exception): the error, its
# traceback, and what Ansible reports of a module that did not return JSON.
FAILURE_KEYS = frozenset(("msg", "exception", "module_stdout", "module_stderr"))


def module_returns(path):
    """The top-level keys of the module's RETURN documentation (yaml), without importing the module."""
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "RETURN" for target in node.targets):
            document = yaml.safe_load(ast.literal_eval(node.value))
            if not isinstance(document, dict):
                raise ValueError("%s: RETURN is not a mapping of return values" % path)
            return set(document)
    raise ValueError("%s: no RETURN" % path)


def allowed(key, result):
    keys = result["keys"]
    failed = result["status"] == "failed" or "failed_when_suppressed_exception" in keys
    if key in ANSIBLE_KEYS or key.startswith("_ansible_") or key in result.get("loop_keys", ()):
        return True
    if key in DERIVED_KEYS:
        return DERIVED_KEYS[key] in keys
    if key in ASYNC_KEYS:
        return "ansible_job_id" in keys
    if key in FAILURE_KEYS:
        return failed
    if key == "ansible_facts":
        # Ansible's interpreter discovery reports the Python it found as a fact.
        return all(fact.startswith("discovered_interpreter_") for fact in result.get("facts", ()))
    # Ansible's result for a module that did not return JSON: its exit status.
    return key == "rc" and failed and ("module_stdout" in keys or "module_stderr" in keys)


def load_results(directory):
    results = []
    for path in sorted(glob.glob(os.path.join(directory, "*.jsonl"))):
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        results.append(json.loads(line))
                    except ValueError as exc:
                        raise ValueError("%s:%d: %s" % (path, number, exc))
    return results


def where(result):
    return "%s (%s)" % (result.get("path") or "?", result.get("task") or "?")


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    results_dir, modules_dir = argv[1], argv[2]
    documented = {}
    for path in sorted(glob.glob(os.path.join(modules_dir, "*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if name != "__init__":
            documented[PREFIX + name] = module_returns(path)
    results = load_results(results_dir) if os.path.isdir(results_dir) else []

    seen = collections.defaultdict(collections.Counter)
    steps = collections.defaultdict(collections.Counter)
    # (module, key) -> [count, statuses, first result]
    undocumented = {}
    unknown = collections.Counter()
    for result in results:
        module = result["module"]
        if module not in documented:
            unknown[module] += 1
            continue
        counts = seen[module]
        counts["results"] += 1
        counts[result["status"]] += 1
        if result.get("check_mode"):
            counts["check mode"] += 1
        if "step" in result:
            steps[module][result["step"]] += 1
        for key in result["keys"]:
            if key in documented[module] or allowed(key, result):
                continue
            entry = undocumented.setdefault((module, key), [0, set(), result])
            entry[0] += 1
            entry[1].add(result["status"] + (" in check mode" if result.get("check_mode") else ""))

    print("%d results of droot.core modules in %s" % (len(results), results_dir))
    for module in sorted(documented):
        counts = seen.get(module)
        if not counts:
            print("  %-26s never seen" % module)
            continue
        line = "  %-26s %5d results: %d ok, %d failed, %d in check mode" % (
            module, counts["results"], counts["ok"], counts["failed"], counts["check mode"])
        if steps.get(module):
            line += "; steps: " + ", ".join("%s %d" % item for item in sorted(steps[module].items()))
        print(line)
    for module, count in sorted(unknown.items()):
        print("  %-26s %5d results of a module not in %s" % (module, count, modules_dir))

    problems = 0
    for (module, key), (count, statuses, first) in sorted(undocumented.items()):
        problems += 1
        print("UNDOCUMENTED: %s returns %r (%d results, %s), not in its RETURN; first in %s"
              % (module, key, count, ", ".join(sorted(statuses)), where(first)))
    never = sorted(module for module in documented if module not in seen)
    if never:
        problems += 1
        print("NEVER SEEN: no result of %s: run their integration targets (all targets: tests/run.sh integration)"
              % ", ".join(never))
    if problems:
        print("returns: %d undocumented keys, %d of %d modules never seen"
              % (len(undocumented), len(never), len(documented)))
        return 1
    print("returns: every key of %d results is documented in its module's RETURN" % len(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
