"""Call the jail the way a careless caller would: holding a host directory open, inheritable.

The probe lists the jail's descriptors, then tries to fchdir through the leaked one
to a host file. Prints what the jail saw; the test asserts on it.
"""
import os
import sys

for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
    sys.path.insert(0, path)

from ansible_collections.droot.core.plugins.module_utils._internal import jail  # noqa: E402

root, base = sys.argv[1], sys.argv[2]
leaked = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
os.set_inheritable(leaked, True)

real, root_fd = jail.open_root(root)
command = "probe fds; probe fd-escape %d host-marker" % leaked
plan = jail.plan(real, root_fd, {"command": ["/bin/sh", "-c", command], "image_config": False})
os.close(root_fd)
outcome = jail.run_foreground(plan, jail.Prepared(plan))
sys.stdout.write(outcome.stdout.decode())
