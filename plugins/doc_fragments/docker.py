# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker endpoint options for droot.core modules that talk to a Docker daemon."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker daemon to use, for example C(unix:///var/run/docker.sock) or C(tcp://192.0.2.10:2376).
      - When unset, C(DOCKER_HOST) applies, then the local socket.
      - TLS follows C(DOCKER_TLS_VERIFY) and C(DOCKER_CERT_PATH), as with the docker CLI and docker-machine.
    type: str
requirements:
  - docker >= 7.0 (the Docker SDK for Python)
"""
