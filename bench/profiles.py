# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Summaries of py-spy's raw stacks (``record --idle --threads --format raw``).

Each line is ``thread (TID): NAME;frame;...;leaf COUNT``. With ``--idle`` every thread is sampled
on every tick, running or waiting, so a thread's samples add up to its lifetime; the leaf frame
says where it was. Calls into C (zstd, zlib, hashlib, socket reads, os.write) show as the Python
line that made them. The main thread counts only inside the module's main() (bench/engine.py
calls it), not the interpreter's start, the imports or the exit.
"""

import collections
import re

LINE = re.compile(r"^thread \((?P<tid>\d+)\): (?P<stack>.*) (?P<count>\d+)$")
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")
TOP = 8
MODULE_MAIN = ";main (droot_"


def _leaf(stack):
    frames = stack.split(";")
    match = FRAME.match(frames[-1])
    if not match:
        return frames[0], frames[-1], "?"
    return frames[0], match.group("function"), match.group("file").rsplit("/", 1)[-1]


def summarize(path):
    """Per thread: its share of the samples, and its leaf functions and files by share."""
    threads = collections.OrderedDict()
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = LINE.match(line.rstrip("\n"))
            if not match:
                continue
            stack = match.group("stack")
            name, function, filename = _leaf(stack)
            if name == "MainThread" and MODULE_MAIN not in stack:
                continue
            key = "%s (%s)" % (name, match.group("tid"))
            entry = threads.setdefault(key, {"samples": 0, "functions": collections.Counter(),
                                             "files": collections.Counter()})
            count = int(match.group("count"))
            entry["samples"] += count
            entry["functions"]["%s (%s)" % (function, filename)] += count
            entry["files"][filename] += count
    summary = {"threads": {}}
    for key, entry in threads.items():
        total = float(entry["samples"]) or 1.0
        summary["threads"][key] = {
            "samples": entry["samples"],
            "files": [[name, round(count / total, 3)] for name, count in entry["files"].most_common(TOP)],
            "functions": [[name, round(count / total, 3)] for name, count in entry["functions"].most_common(TOP)],
        }
    main = next((value for key, value in summary["threads"].items() if key.startswith("MainThread")), None)
    summary["categories"] = dict(main["files"][:4]) if main else {}
    return summary
