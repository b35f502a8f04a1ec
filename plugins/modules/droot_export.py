#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: droot_export
short_description: Export a Docker image, container or build to a root filesystem archive in S3 or a file
version_added: 0.1.0
description:
  - Streams C(docker export) of an image, a container or a fresh build into a compressed tar archive at
    O(dest) (C(s3://BUCKET/KEY), C(file:///PATH) or a local path), the way upstream
    C(droot export IMAGE | gzip -cq | aws s3 cp - s3://...) does, in one task, without a temporary file
    and with memory bounded whatever the image size.
  - An image is exported through a container created from it and never started (the application does not
    run, the image needs no shell). That container is removed in every outcome, including a killed run - a
    guardian process removes it when the module dies, and the next run removes any whose owner is gone.
  - Two entries are put in front of the exported tree - C(.drootenv) (upstream droot's file, the image's
    C(Env) as C(KEY=VALUE) lines) and C(.droot/config.json) (image id, repo tags, Env, WorkingDir, User,
    Entrypoint, Cmd, ExposedPorts, created time and a format version), which M(droot.core.droot_run) reads.
  - A manifest C(DEST.json) is written after the archive (sha256, size, the size of the uncompressed tar
    stream C(tar_size), compression, image id, the config above, created time); a reader trusts an archive
    only when the manifest vouches for its bytes, and M(droot.core.droot_fetch) unpacks no more than
    C(tar_size) says.
  - Nothing partial is left at O(dest) on failure - a local archive is written to a hidden temporary file and
    renamed, an S3 archive is a multipart upload (parts sent in parallel) that is aborted on any error.
  - A second run for the same image id finds the archive and its manifest consistent and changes nothing.
    A O(container) source is exported on every run, as its files may change while its image stays the same.
    A manifest without C(tar_size) (written by version 0.1.0) is not consistent, so such an archive is
    exported again once.
author:
  - droot.core contributors (@droot-core)
requirements:
  - zstandard (for O(compression=zstd))
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - droot.core.docker
  - droot.core.s3
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the archive would be written, with RV(image_id) for an O(image) or O(container) source.
      - A O(build) source is not built - its image id is known only once it is built - and reports a change
        without RV(image_id), after checking that its context directory exists.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: A second run with the same inputs changes nothing.
    support: partial
    details: Idempotent for O(image) and O(build) sources; a O(container) source is exported every time.
options:
  image:
    description:
      - Image to export, by name (C(NAME[:TAG])) or id. It must exist on the Docker daemon.
      - Exactly one of O(image), O(container) and O(build) is required.
    type: str
  container:
    description:
      - Container to export, by name or id, running or stopped, as it is now. Its own configuration
        (environment, working directory, user, command) goes into C(.droot/config.json).
    type: str
  build:
    description:
      - Build an image with the Docker daemon, then export it. A failed build reports the tail of its log.
    type: dict
    suboptions:
      path:
        description: Build context directory on the target.
        type: path
        required: true
      dockerfile:
        description: Dockerfile path relative to O(build.path).
        type: str
      args:
        description: Build arguments (C(--build-arg)).
        type: dict
      tag:
        description: Tag to give the built image.
        type: str
      target:
        description: Build stage to stop at.
        type: str
      network:
        description: Network mode of the build's RUN steps, for example C(none) or C(host).
        type: str
      no_cache:
        description: Build without the layer cache.
        type: bool
        default: false
  dest:
    description:
      - Where the archive goes - C(s3://BUCKET/KEY), C(file:///PATH) or a local path whose directory exists.
      - The manifest is written next to it as C(DEST.json).
    type: str
    required: true
  compression:
    description:
      - C(zstd) is multi-threaded and fast (C(tar --zstd -xpf) reads it); C(gzip) is readable by the seed's
        C(tar -xpzf); C(none) writes a plain tar.
    type: str
    choices: [zstd, gzip, none]
    default: zstd
  compression_level:
    description:
      - Compression level, 1 to 22 for zstd (default 3), 1 to 9 for gzip (default 6).
      - Changing only the level does not make an existing consistent archive out of date.
    type: int
  force:
    description:
      - Export and upload even when the archive and its manifest are current.
    type: bool
    default: false
seealso:
  - module: droot.core.droot_run
"""

EXAMPLES = r"""
- name: Export an image to S3 as zstd, in place of droot export | gzip | aws s3 cp
  droot.core.droot_export:
    image: dockerfiles/app:latest
    dest: s3://drootexamples/app.tar.zst

- name: Build, then export to a local file readable by tar -xpzf
  droot.core.droot_export:
    build:
      path: /srv/app
      tag: app:latest
      args:
        VERSION: "1.2.3"
    dest: /var/archives/app.tar.gz
    compression: gzip

- name: Export a running container to an S3-compatible store
  droot.core.droot_export:
    container: app-1
    dest: s3://archives/app-1.tar.zst
    endpoint_url: https://minio.example.com
    profile: deploy
    docker_host: tcp://build.example.com:2376
"""

RETURN = r"""
dest:
  description: Where the archive is.
  returned: always
  type: str
  sample: s3://drootexamples/app.tar.zst
manifest:
  description: Where the archive's manifest is.
  returned: always
  type: str
  sample: s3://drootexamples/app.tar.zst.json
sha256:
  description: SHA-256 of the archive's bytes (as stored, compressed).
  returned: when the archive was written or found current
  type: str
  sample: 9f2c5d0a6b1e4f7c8d3a2b1c0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f
size:
  description:
    - Size of the archive in bytes. For a local O(dest) Ansible's file facts about it set the same value (see
      RV(uid)).
  returned: when the archive was written or found current
  type: int
  sample: 31457280
compression:
  description: Compression of the archive.
  returned: always
  type: str
  sample: zstd
image_id:
  description: Id of the exported image (for a container, of its image).
  returned: when the source was resolved - not for a O(build) in check mode, which is not built
  type: str
  sample: sha256:ef28f1e47d70b0e5b7a1c6c1a2f0f7c4e5d8a9b3c2d1e0f9a8b7c6d5e4f3a2b1
build_log:
  description: The last lines of the build log (of the failed step when the build fails).
  returned: when O(build) ran
  type: list
  elements: str
stale_containers_removed:
  description: Temporary containers of earlier killed runs on this machine that this run removed.
  returned: always
  type: list
  elements: str
  sample: [droot-export-5f1c2a9b3e7d]
msg:
  description: In check mode with a O(build) source, what a run would do; on failure, the error.
  returned: with O(build) in check mode, and on failure
  type: str
  sample: would build /srv/app and export it
code:
  description: The error code of the store (S3's, an HTTP status, or C(ENOSPC)) when writing O(dest) failed.
  returned: on failure, when the store gave one
  type: str
  sample: AccessDenied
uid:
  description: Owner id of a local O(dest) (Ansible's file facts, added when O(dest) is an existing local file).
  returned: when O(dest) is a local path that exists
  type: int
gid:
  description: Group id of the local O(dest).
  returned: when O(dest) is a local path that exists
  type: int
owner:
  description: Owner name of the local O(dest).
  returned: when O(dest) is a local path that exists
  type: str
group:
  description: Group name of the local O(dest).
  returned: when O(dest) is a local path that exists
  type: str
mode:
  description: Permissions of the local O(dest), in octal.
  returned: when O(dest) is a local path that exists
  type: str
  sample: "0644"
state:
  description: The kind of the local O(dest), C(file).
  returned: when O(dest) is a local path that exists
  type: str
secontext:
  description: The SELinux context of the local O(dest).
  returned: when O(dest) is a local path that exists and SELinux is enabled
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.droot.core.plugins.module_utils._internal import archive, exporter, store
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError, fail_from_error


def main():
    argument_spec = dict(
        image=dict(type="str"),
        container=dict(type="str"),
        build=dict(type="dict", options=dict(
            path=dict(type="path", required=True),
            dockerfile=dict(type="str"),
            args=dict(type="dict"),
            tag=dict(type="str"),
            target=dict(type="str"),
            network=dict(type="str"),
            no_cache=dict(type="bool", default=False),
        )),
        dest=dict(type="str", required=True),
        compression=dict(type="str", choices=list(archive.COMPRESSIONS), default="zstd"),
        compression_level=dict(type="int"),
        force=dict(type="bool", default=False),
        docker_host=dict(type="str"),
    )
    argument_spec.update(store.S3_ARGUMENT_SPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("image", "container", "build")],
        required_one_of=[("image", "container", "build")],
        supports_check_mode=True,
    )
    exporter.DOCKER.require(module, reason="to talk to the Docker daemon")
    if module.params["compression"] == "zstd":
        archive.ZSTANDARD.require(module, reason="for compression=zstd")
    try:
        if store.parse_location(module.params["dest"]).scheme == "s3":
            store.BOTO3.require(module, reason="for s3:// destinations")
        result = exporter.Exporter(module.params, check_mode=module.check_mode).run()
    except DrootError as error:
        fail_from_error(module, error, changed=False, dest=module.params["dest"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
