#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: droot_release
short_description: Switch, roll back, prune or remove the releases of a droot base directory
version_added: 0.2.0
description:
  - Manages the releases that M(droot.core.droot_fetch) unpacked into C(dest/releases/<id>) with
    O(droot.core.droot_fetch#module:layout=releases) - which one C(dest/current) points to, and which
    stay on disk - without downloading anything. This replaces droot_fetch's forms without
    C(src) (C(release), C(rollback), C(keep) alone), which are deprecated.
  - C(current) is switched by renaming a temporary symlink over it, so a reader always finds it,
    pointing at the old or the new release. The switch and the bookkeeping happen under the lock of
    O(dest) that droot_fetch takes too.
  - The activation history in the bookkeeping (never file mtimes) gives the previous release - the
    most recently active release that still exists, skipping releases that a rollback switched away
    from. A rollback marks the release it leaves as rolled back, so a second rollback walks further
    back instead of returning to it, and a release that failed does not become previous again;
    activating a marked release clears its mark.
  - A release is deleted only when nothing is mounted under it and no live process uses it (its
    root, working directory, open or mapped files), and the deletion never crosses into another
    mount.
  - A O(dest) that droot never fetched into holds no release - nothing is created there.
author:
  - droot.core contributors (@droot-core)
extends_documentation_fragment:
  - droot.core.attributes
requirements:
  - Linux
attributes:
  check_mode:
    support: full
    details:
      - Takes the same decisions and refusals as a run (one executor, run dry) and reports what a run would
        switch to and delete; changes nothing and takes no lock.
  diff_mode:
    support: full
    details: Shows the active release before and after.
  idempotent:
    support: full
    details:
      - A switch to the active release, a prune with nothing beyond O(keep) and the removal of a release that is
        gone report C(changed=false). A rollback is not idempotent - it goes back one release each time.
options:
  dest:
    description:
      - The base directory, as given to M(droot.core.droot_fetch) - it holds C(releases/<id>), the C(current)
        symlink and the bookkeeping directory C(.droot).
    type: path
    required: true
  state:
    description:
      - C(switched) - point C(current) at O(release), which must be on disk. Marks nothing as rolled back.
      - C(rolled_back) - point C(current) at the previous release, or at O(release) when given, and mark the
        release it leaves as rolled back (it ranks after the others for O(keep) and is never chosen as the
        previous release).
      - C(pruned) - delete the releases beyond the first O(keep), ranked most recently active first, releases
        rolled back from after all others, releases never activated last in their group. Never the current
        or the previous release, nor a busy one (reported in RV(kept_busy)).
      - C(absent) - delete O(release). Refused with a one-line error, deleting nothing, while it is the current
        or the previous release, or while something is mounted under it or a process uses it.
    type: str
    required: true
    choices: [switched, rolled_back, pruned, absent]
  release:
    description:
      - The release id (C(releases/<id>)). Required with O(state=switched) and O(state=absent); with
        O(state=rolled_back), the release to go back to instead of the previous one. Not with O(state=pruned).
    type: str
  keep:
    description:
      - With O(state=pruned), how many releases to keep, counting the active one; C(0) keeps all.
    type: int
    default: 3
  lock_timeout:
    description:
      - Seconds to wait for another run on the same O(dest) to finish before failing.
    type: int
    default: 300
seealso:
  - module: droot.core.droot_fetch
  - module: droot.core.droot_info
"""

EXAMPLES = r"""
- name: Switch to a release fetched with switch=false, once the old one is stopped
  droot.core.droot_release:
    dest: /var/containers/app
    state: switched
    release: 3f2a9c81d0e4

- name: Roll back to the previous release, marking the one it leaves as rolled back
  droot.core.droot_release:
    dest: /var/containers/app
    state: rolled_back

- name: Keep the newest 3 releases
  droot.core.droot_release:
    dest: /var/containers/app
    state: pruned
    keep: 3

- name: Remove one release that is neither current nor previous
  droot.core.droot_release:
    dest: /var/containers/app
    state: absent
    release: 0c1d2e3f4a5b
"""

RETURN = r"""
release:
  description:
    - The release the task is about - switched to, rolled back to, removed; with O(state=pruned), the active one
      (null when there is none).
  returned: success
  type: str
  sample: 3f2a9c81d0e4
release_path:
  description:
    - The directory of RV(release), C(dest/releases/<id>) (null when RV(release) is). Not called C(path), so that
      Ansible adds no file facts to the result.
  returned: success
  type: str
  sample: /var/containers/app/releases/3f2a9c81d0e4
previous:
  description: The release that was active before the task (null when there was none).
  returned: success
  type: str
current:
  description: The release active after the task (in check mode, after a run).
  returned: success
  type: str
  sample: 3f2a9c81d0e4
releases:
  description: The releases on disk after the task, in the order O(keep) ranks them.
  returned: success
  type: list
  elements: str
rolled_back:
  description: Releases on disk that a rollback switched away from.
  returned: success
  type: list
  elements: str
removed:
  description: Releases deleted (in check mode, that a run would delete).
  returned: success
  type: list
  elements: str
kept_busy:
  description: With O(state=pruned), releases beyond O(keep) left in place because they are mounted on or in use.
  returned: success
  type: list
  elements: str
sha256:
  description: sha256 of the archive RV(release) was unpacked from (null for a release with no record).
  returned: success
  type: str
notes:
  description: Recovery done after a killed run, trees left in place, the bookkeeping migrated; one line each.
  returned: success
  type: list
  elements: str
step:
  description:
    - The step that failed - C(options), C(lock), C(state), C(switch), C(rollback) or C(remove); C(release) for a
      fault of O(dest)'s releases or bookkeeping that no other step names (bookkeeping that is not valid JSON, a
      C(current) that is not a symlink to C(releases/<id>)).
  returned: failure
  type: str
  sample: remove
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.droot.core.plugins.module_utils._internal import releaser
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, fail_from_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            state=dict(type="str", required=True, choices=list(releaser.STATES)),
            release=dict(type="str"),
            keep=dict(type="int", default=3),
            lock_timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    try:
        result = releaser.run(module.params, check_mode=module.check_mode, diff=module._diff, warn=module.warn)
    except DrootError as exc:
        fail_from_error(module, exc)
    except OSError as exc:
        module.fail_json(msg="%s: %s" % (exc.filename or "", exc.strerror or exc))
    result["release_path"] = result.pop("path")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
