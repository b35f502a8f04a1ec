"""Print the temporary export containers that leaked: labelled by droot_export, owner gone.

A container whose owner still runs belongs to an export in progress elsewhere on this machine
(another test or a benchmark), not to a leak of the run under test.
"""
import os
import sys

for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
    sys.path.insert(0, path)

from ansible_collections.droot.core.plugins.module_utils._internal import exporter  # noqa: E402

client = exporter.DOCKER.module.from_env()
for container in client.api.containers(all=True, filters={"label": exporter.OWNER_LABEL}):
    if exporter.owner_is_gone(container["Labels"][exporter.OWNER_LABEL]):
        print(container["Names"][0].lstrip("/"))
