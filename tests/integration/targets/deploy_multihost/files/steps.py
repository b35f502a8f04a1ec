"""The steps a play changed, from the JSON lines of callback_plugins/droot_steps.py.

usage: steps.py changed LOG HOST       the steps that changed something on HOST, one line, sorted
       steps.py covers CHECK REAL      every step a real run (log REAL) changed on a host was
                                       reported as changed there by the check-mode run (log CHECK);
                                       prints what check mode missed and exits 1, else prints
                                       each host's changed steps of both runs
"""

import json
import sys


def changed(log):
    """{host: {step: [task names that changed]}}."""
    steps = {}
    with open(log) as lines:
        for line in lines:
            record = json.loads(line)
            if record["changed"]:
                steps.setdefault(record["host"], {}).setdefault(record["step"], []).append(record["task"])
    return steps


def main(argv):
    if len(argv) == 4 and argv[1] == "changed":
        print(" ".join(sorted(changed(argv[2]).get(argv[3], {}))))
        return 0
    if len(argv) == 4 and argv[1] == "covers":
        check, real = changed(argv[2]), changed(argv[3])
        missed = 0
        for host in sorted(real):
            print("%s: real run changed %s; check mode reported %s"
                  % (host, " ".join(sorted(real[host])), " ".join(sorted(check.get(host, {}))) or "nothing"))
            for step, tasks in sorted(real[host].items()):
                if step not in check.get(host, {}):
                    missed += 1
                    print("MISSED %s: check mode reported no change of step %s, the real run changed it in: %s"
                          % (host, step, "; ".join(tasks)))
        return 1 if missed else 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
