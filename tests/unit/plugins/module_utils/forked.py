"""Run a test's action in a forked child: it may enter namespaces or load a filter for good."""
from __future__ import annotations

import json
import os


def in_child(action):
    """What ``action()`` returns (JSON-able) in a forked child; its exception fails the test."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            result = {"ok": action()}
        except BaseException as error:  # the test process must not unwind in the child
            result = {"error": "%s: %s" % (type(error).__name__, error)}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result = json.loads(data.decode())
    assert "error" not in result, result.get("error")
    return result["ok"]
