# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one droot.core module's main() in this process and time its own work.

    python engine.py MODULE ARGS_JSON

ARGS_JSON is what Ansible hands a module: {"ANSIBLE_MODULE_ARGS": {...}}. Prints one JSON line:
``startup_s`` (imports of the module, Ansible's module_utils, boto3, the Docker SDK...),
``work_s`` (main(): options, then the module_utils work, until exit_json) and the module's
``result``. The process's wall time, measured by the caller, is what the module costs on a host
when Ansible runs it; ``work_s`` is the engine alone, with none of Ansible's fixed costs.
"""

import time

START = time.monotonic()

# pylint: disable=wrong-import-position
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402


class _Exit(Exception):
    pass


def main():
    name, args_path = sys.argv[1:3]
    module = importlib.import_module("ansible_collections.droot.core.plugins.modules." + name)
    from ansible.module_utils import basic

    with open(args_path, "rb") as handle:
        basic._ANSIBLE_ARGS = handle.read()
    # What ansible-core's own direct invocation (`python MODULE.py ARGS`) uses.
    basic._ANSIBLE_PROFILE = "legacy"

    def finish(failed):
        def exit_json(self, **result):
            if failed:
                result["failed"] = True
            raise _Exit(result)
        return exit_json

    basic.AnsibleModule.exit_json = finish(False)
    basic.AnsibleModule.fail_json = finish(True)
    started = time.monotonic()
    try:
        module.main()
        result = {"failed": True, "msg": "the module returned without exit_json"}
    except _Exit as exc:
        result = exc.args[0]
    ended = time.monotonic()
    sys.stdout.write(json.dumps({"startup_s": started - START, "work_s": ended - started, "result": result},
                                default=str) + "\n")
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
