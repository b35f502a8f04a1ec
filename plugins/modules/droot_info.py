#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: droot_info
short_description: What a host holds in droot base directories and runs from them
version_added: 0.2.0
description:
  - For each O(dest), the releases on disk with what each came from and when it was fetched and last
    activated, which release is current and which is previous, and the live jails of each release.
  - Reads the bookkeeping that M(droot.core.droot_fetch) and M(droot.core.droot_release) write, without
    taking their lock and without changing anything - a bookkeeping file of droot.core 0.1.0 is read as
    it is (RV(dests[].state_format)); the next task that writes it migrates it.
  - A jail is found by the processes whose root is the release's directory - those of the jail's own PID
    namespace (C(init_pid) is the jail's init) or, for a jail that shares the host's, the processes rooted
    there. Processes that a jail started inside a nested chroot of its own are not listed.
  - A O(dest) that does not exist or that droot never fetched into is reported with no releases.
  - It also tells which Python runs the modules on the host and which of O(python_libraries) it cannot import,
    needing nothing but the Python standard library itself, so that it answers on a host that lacks them.
author:
  - droot.core contributors (@droot-core)
extends_documentation_fragment:
  - droot.core.attributes
requirements:
  - Linux; running as root to see the jails of other users and to read the releases below C(dest/releases)
attributes:
  check_mode:
    support: full
    details: Reads the same in check mode.
  diff_mode:
    support: N/A
  idempotent:
    support: full
options:
  dest:
    description:
      - The base directories to describe, as given to M(droot.core.droot_fetch).
    type: list
    elements: path
    required: true
  layout:
    description:
      - The layout of every O(dest), as given to M(droot.core.droot_fetch).
    type: str
    choices: [releases, replace]
    default: releases
  disk_usage:
    description:
      - Measure each release's size on disk (RV(dests[].releases[].size_on_disk)) by walking its tree, which
        takes a while for a large release. V(false) reports null instead.
    type: bool
    default: true
  python_libraries:
    description:
      - Import names of Python libraries to look for in the Python that runs the module (the one the other
        droot.core modules run with on this host), such as V(prctl), V(seccomp), V(zstandard) and V(boto3).
        Those it cannot find are listed in RV(python.missing_libraries); none is imported.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
seealso:
  - module: droot.core.droot_fetch
  - module: droot.core.droot_release
"""

EXAMPLES = r"""
- name: What runs from /var/containers/app
  droot.core.droot_info:
    dest: /var/containers/app
  register: app_info

- name: Show the current release and the pids of its jails
  ansible.builtin.debug:
    msg: >-
      {{ app_info.dests[0].current }}:
      {{ app_info.dests[0].releases | selectattr('current') | map(attribute='jails') | flatten
         | map(attribute='app_pid') | list }}
"""

RETURN = r"""
dests:
  description: One entry per O(dest), in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    dest:
      description: The base directory, absolute.
      type: str
      sample: /var/containers/app
    layout:
      description: The layout it was read with.
      type: str
      sample: releases
    managed:
      description: Whether droot's bookkeeping is there (droot fetched into it).
      type: bool
    state_format:
      description: The format of the bookkeeping file as it is on disk (1 for droot.core 0.1.0); null when there is none.
      type: int
      sample: 2
    current:
      description: The active release (null when there is none).
      type: str
      sample: 3f2a9c81d0e4
    previous:
      description: The release a rollback goes back to (null when there is none).
      type: str
    rolled_back:
      description: Releases on disk that a rollback switched away from.
      type: list
      elements: str
    releases:
      description: The releases on disk, in the order droot_release's keep ranks them.
      type: list
      elements: dict
      contains:
        id:
          description: The release id.
          type: str
        path:
          description: Its directory.
          type: str
        current:
          description: Whether it is the active release.
          type: bool
        previous:
          description: Whether it is the previous release.
          type: bool
        rolled_back:
          description: Whether a rollback switched away from it.
          type: bool
        image_id:
          description: The image id the manifest named (null without a manifest).
          type: str
        source:
          description: Where it was fetched from (O(droot.core.droot_fetch#module:src)).
          type: str
        sha256:
          description: sha256 of the archive it was unpacked from.
          type: str
        archive_size:
          description: Size of that archive in bytes.
          type: int
        fetched:
          description: When it was unpacked, UTC in ISO 8601 (null for a release of droot.core 0.1.0).
          type: str
          sample: "2026-12-02T06:00:00Z"
        activated:
          description: When it last became current, UTC in ISO 8601 (null when never, or not recorded by 0.1.0).
          type: str
        size_on_disk:
          description: Bytes its tree takes on disk, each inode counted once (null with O(disk_usage=false)).
          type: int
        jails:
          description: The live jails rooted in it.
          type: list
          elements: dict
          contains:
            name:
              description: The jail's name, from droot_run's record (null for a jail without one).
              type: str
            init_pid:
              description: The pid of the jail's init, as the host sees it (null for a jail in the host's PID namespace).
              type: int
            app_pid:
              description: The pid of the app - the init's child, or the first process of a jail without an init.
              type: int
            uid:
              description: The app's real user id.
              type: int
            gid:
              description: The app's real group id.
              type: int
            user:
              description: The name of RV(dests[].releases[].jails[].uid) in the release's /etc/passwd (null when absent).
              type: str
            command:
              description: The app's arguments, as the process shows them.
              type: list
              elements: str
            pids:
              description: Every process of the jail.
              type: list
              elements: int
python:
  description: The Python that runs the modules on the host.
  returned: always
  type: dict
  contains:
    executable:
      description: Its path.
      type: str
      sample: /usr/bin/python3
    version:
      description: Its version.
      type: str
      sample: 3.11.2
    missing_libraries:
      description: The names of O(python_libraries) that it cannot import, in the order given.
      type: list
      elements: str
      sample: [zstandard]
step:
  description:
    - The step that failed - C(state) when the bookkeeping of a O(dest) has a format this version cannot read,
      C(release) for another fault of a O(dest) that droot cannot read past (bookkeeping that is not valid JSON,
      a C(current) that is not a symlink to C(releases/<id>)).
  returned: failure
  type: str
  sample: release
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.droot.core.plugins.module_utils._internal import info
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, fail_from_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="list", elements="path", required=True),
            layout=dict(type="str", choices=["releases", "replace"], default="releases"),
            disk_usage=dict(type="bool", default=True),
            python_libraries=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    try:
        result = info.run(module.params)
    except DrootError as exc:
        fail_from_error(module, exc)
    except OSError as exc:
        module.fail_json(msg="%s: %s" % (exc.filename or "", exc.strerror or exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
