#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: droot_umount
short_description: Unmount everything under a root filesystem, safely
version_added: 0.1.0
description:
  - Unmounts every mount at or below O(root), deepest first, repeating until none is left, as
    upstream C(droot umount) meant to, without its faults - mounts are matched by whole path
    components (C(/x/app) never matches C(/x/app2)), unmounted with C(UMOUNT_NOFOLLOW) through a path
    that contains no symlink, and a busy mount stops the task with the processes that hold it
    instead of being detached silently.
  - O(root) may be a base directory holding several releases; everything below it is unmounted.
  - A mount at O(root) itself is taken down only when droot made it (the private bind of a root onto
    itself of a jail with O(droot.core.droot_run#module:namespaces=host), or of droot.core 0.1.0); an
    administrator's own mount there stays. O(root=/) is refused.
  - A jail with its own namespaces (the default of M(droot.core.droot_run)) has no mount on the host,
    so there is nothing to unmount and the task reports no change.
author:
  - droot.core contributors (@droot-core)
requirements:
  - Linux, running as root
attributes:
  check_mode:
    support: full
    details: Reports the mounts that would be unmounted.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  root:
    description:
      - The directory to clear of mounts. Symlinks in the path are resolved first.
      - A root that does not exist has nothing to unmount - the task reports no change, so it can run
        before a first deploy, as upstream's C(droot umount) is used.
    type: path
    required: true
  lazy:
    description:
      - Detach mounts that stay busy (C(MNT_DETACH)) instead of failing. The processes keep using them
        unseen; prefer stopping the processes first (M(droot.core.droot_run) with O(droot.core.droot_run#module:state=stopped)).
    type: bool
    default: false
extends_documentation_fragment:
  - droot.core.attributes
seealso:
  - module: droot.core.droot_run
"""

EXAMPLES = r"""
- name: Unmount the app's root before replacing it
  droot.core.droot_umount:
    root: /var/containers/app

- name: Unmount every release of the app, detaching what stays busy
  droot.core.droot_umount:
    root: /var/containers/app/releases
    lazy: true
"""

RETURN = r"""
unmounted:
  description: The mount points unmounted, or that would be in check mode, in the order they were.
  returned: always
  type: list
  elements: str
  sample: [/var/containers/app/proc/sys, /var/containers/app/proc, /var/containers/app]
root:
  description: The resolved root.
  returned: always
  type: str
  sample: /var/containers/app/releases/0f3c21d9e8a1
msg:
  description: Why there was nothing to do, or the error.
  returned: when O(root) does not exist, and on failure
  type: str
  sample: /var/containers/app does not exist, so nothing to unmount
step:
  description: C(unmount) when a mount could not be removed, C(privileges) when not run as root.
  returned: failure
  type: str
  sample: unmount
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.droot.core.plugins.module_utils._internal import mounts
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, fail_from_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            lazy=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if os.geteuid() != 0:
        module.fail_json(msg="droot_umount must run as root on the host: add become: true to the task",
                         step="privileges")
    root = os.path.realpath(module.params["root"])
    if not os.path.lexists(module.params["root"]):
        module.exit_json(changed=False, unmounted=[], root=root, msg="%s does not exist, so nothing to unmount" % root)
    if not os.path.isdir(root):
        module.fail_json(msg="root %s is not a directory" % module.params["root"], root=root)
    if root == "/":
        module.fail_json(msg="root / would unmount every mount of the host: name the root of a jail", root=root)
    present = [mount.mount_point for mount in mounts.droot_mounts(root)]
    if module.check_mode or not present:
        module.exit_json(changed=bool(present), unmounted=present, root=root)
    try:
        unmounted = mounts.unmount_tree(root, lazy=module.params["lazy"])
    except DrootError as error:
        fail_from_error(module, error, root=root)
    module.exit_json(changed=bool(unmounted), unmounted=unmounted, root=root)


if __name__ == "__main__":
    main()
