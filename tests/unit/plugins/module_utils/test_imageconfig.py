from __future__ import annotations

import json
import os

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import imageconfig, safepath
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError

ATTRS = {
    "Id": "sha256:abc",
    "RepoTags": ["app:1"],
    "Created": "2026-01-01T00:00:00Z",
    "Config": {"Env": ["PATH=/usr/bin", "A=1"], "WorkingDir": "/app", "User": "app",
               "Entrypoint": ["/entry"], "Cmd": ["serve"], "ExposedPorts": {"80/tcp": {}}},
}


def test_config_round_trip(tmp_path):
    document = imageconfig.config_from_inspect(ATTRS, {"kind": "image", "ref": "app:1"})
    (tmp_path / ".droot").mkdir()
    (tmp_path / ".droot" / "config.json").write_text(json.dumps(document))
    (tmp_path / ".drootenv").write_bytes(imageconfig.render_drootenv(["A=0", "B=2"]))
    fd = safepath.open_root(str(tmp_path))
    try:
        config = imageconfig.read_image_config(fd)
    finally:
        os.close(fd)
    assert dict(config.env) == {"A": "1", "B": "2", "PATH": "/usr/bin"}
    assert (config.working_dir, config.user, config.entrypoint, config.cmd) == ("/app", "app", ["/entry"], ["serve"])
    assert document["exposed_ports"] == ["80/tcp"]


def test_missing_files_are_empty(tmp_path):
    fd = safepath.open_root(str(tmp_path))
    try:
        assert imageconfig.read_image_config(fd) == imageconfig.EMPTY
    finally:
        os.close(fd)


def test_bad_json_names_the_fix(tmp_path):
    (tmp_path / ".droot").mkdir()
    (tmp_path / ".droot" / "config.json").write_text("{nope")
    fd = safepath.open_root(str(tmp_path))
    try:
        with pytest.raises(DrootError, match="image_config=false"):
            imageconfig.read_image_config(fd)
    finally:
        os.close(fd)


def test_drootenv_lines():
    assert imageconfig.parse_env_lines(["A=1", "junk", "=x", "B=a=b"]) == {"A": "1", "B": "a=b"}
    assert imageconfig.render_drootenv(["A=1", "BAD=a\nb"]) == b"A=1\n"
