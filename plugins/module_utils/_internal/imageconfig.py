# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an image says about how to run it, carried inside the exported root.

``/.drootenv`` is upstream droot's file: the image's Env as KEY=VALUE lines. ``/.droot/config.json``
is ours and carries the rest of the image config (WorkingDir, User, Entrypoint, Cmd, ...).
droot_export writes both; droot_run reads them as defaults that its options override.
"""

from __future__ import annotations

import json
from collections import OrderedDict, namedtuple

from ansible_collections.droot.core.plugins.module_utils._internal import safepath
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

ENV_FILE = ".drootenv"
CONFIG_FILE = ".droot/config.json"
FORMAT_VERSION = 1

ImageConfig = namedtuple("ImageConfig", "env working_dir user entrypoint cmd")

EMPTY = ImageConfig(OrderedDict(), None, None, None, None)


def config_from_inspect(image_attrs, source):
    """The config.json document for an image, from the Docker SDK's ``image.attrs``."""
    config = image_attrs.get("Config") or {}
    return {
        "format": FORMAT_VERSION,
        "image_id": image_attrs.get("Id"),
        "repo_tags": image_attrs.get("RepoTags") or [],
        "created": image_attrs.get("Created"),
        "env": config.get("Env") or [],
        "working_dir": config.get("WorkingDir") or "",
        "user": config.get("User") or "",
        "entrypoint": config.get("Entrypoint"),
        "cmd": config.get("Cmd"),
        "exposed_ports": sorted((config.get("ExposedPorts") or {}).keys()),
        "source": source,
    }


def render_drootenv(env):
    """Upstream droot's .drootenv: one KEY=VALUE line per variable."""
    return "".join("%s\n" % item for item in env if "\n" not in item).encode("utf-8")


def parse_env_lines(lines):
    env = OrderedDict()
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key and "\0" not in line:
            env[key] = value
    return env


def read_image_config(root_fd):
    """The image config found in the root; missing files give empty defaults."""
    drootenv = safepath.read_in_root(root_fd, "/" + ENV_FILE)
    raw = safepath.read_in_root(root_fd, "/" + CONFIG_FILE)
    env = parse_env_lines(drootenv.decode("utf-8", "surrogateescape").splitlines()) if drootenv else OrderedDict()
    if raw is None:
        return EMPTY._replace(env=env)
    try:
        document = json.loads(raw.decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not an object")
        for key, kinds in _FIELDS.items():
            value = document.get(key)
            if value is not None and not (isinstance(value, kinds[0]) and
                                          (len(kinds) == 1 or all(isinstance(item, kinds[1]) for item in value))):
                raise ValueError("%s is not a %s" % (key, " of ".join(kind.__name__ for kind in kinds)))
    except (ValueError, RecursionError) as error:
        raise DrootError("/%s in the root is not valid (%s); re-export the image or set "
                         "image_config=false" % (CONFIG_FILE, error), step="image-config")
    env.update(parse_env_lines(document.get("env") or []))
    return ImageConfig(
        env=env,
        working_dir=document.get("working_dir") or None,
        user=document.get("user") or None,
        entrypoint=document.get("entrypoint") or None,
        cmd=document.get("cmd") or None,
    )


# The fields droot_run reads, and their JSON types (a list's items second).
_FIELDS = {"env": (list, str), "working_dir": (str,), "user": (str,), "entrypoint": (list, str), "cmd": (list, str)}
