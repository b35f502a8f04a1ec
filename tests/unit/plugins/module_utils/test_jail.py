"""Option parsing of the run sequence (pure logic)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from ansible_collections.droot.core.plugins.module_utils._internal import jail, jails
from ansible_collections.droot.core.plugins.module_utils._internal.common import DrootError


def test_short_bind_forms(tmp_path):
    src = str(tmp_path)
    assert jail.parse_bind(src) == jail.Bind(src, src, False)
    assert jail.parse_bind(src + ":/data") == jail.Bind(src, "/data", False)
    assert jail.parse_bind(src + ":/data:ro") == jail.Bind(src, "/data", True)
    assert jail.parse_bind(src + ":ro") == jail.Bind(src, src, True)
    assert jail.parse_bind(src + ":/data:rw") == jail.Bind(src, "/data", False)


def test_dict_bind_and_a_symlinked_source(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    assert jail.parse_bind({"src": str(real) + "/", "dest": "/x/../y", "readonly": True}) == jail.Bind(str(real), "/y", True)
    os.symlink(str(real), str(tmp_path / "link"))
    with pytest.raises(DrootError, match="goes through the symlink %s, which a jail could have planted: name the real "
                                         "path, %s" % (tmp_path / "link", real)):
        jail.parse_bind({"src": str(tmp_path / "link" / "."), "dest": "/y"})


@pytest.mark.parametrize("item, message", [
    ("relative:/x", "must be an absolute host path"),
    ("/no/such/dir:/x", "does not exist on the host"),
    ({"src": "/", "dest": "rel"}, "must be an absolute path inside the root"),
    ({"src": "/", "mode": "ro"}, "unknown key"),
    ("/a:/b:/c:/d", "too many ':'"),
    ("/a:/b:readonly", "the mode 'readonly' must be ro or rw"),
])
def test_bad_binds(item, message):
    with pytest.raises(DrootError, match=message):
        jail.parse_bind(item)


def test_env_order():
    identity = jail.users.Identity(1, 1, (1,), "app", "/home/app", "/bin/sh")
    env = jail.build_env(identity, {"PATH": "/bin", "A": "image"}, {"A": "task", "N": 5})
    assert env == {"PATH": "/bin", "HOME": "/home/app", "USER": "app", "LOGNAME": "app", "A": "task", "N": "5"}


def test_find_executable(tmp_path):
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    data = tmp_path / "data"
    data.write_text("")
    assert jail.find_executable("tool", "/nonexistent:" + str(tmp_path)) == str(tool)
    with pytest.raises(OSError, match="not found in the root"):
        jail.find_executable("nothing", str(tmp_path))
    with pytest.raises(OSError, match="not executable"):
        jail.find_executable("data", str(tmp_path))


def test_jail_names_come_from_the_root_as_given():
    assert jails.jail_name("/x/app") == jails.jail_name("/x/./app/")
    assert jails.jail_name("/x/app") != jails.jail_name("/y/app")
    assert jails.jail_name("/x/app").startswith("app-")
    assert jails.jail_name("/var/containers/shop/current").startswith("shop-")
    assert jails.jail_name("/x/app", "web") == "web"
    with pytest.raises(DrootError, match="must be letters, digits"):
        jails.jail_name("/x/app", "../evil")


def test_exit_code_of_the_init():
    assert jail._exit_code(42 << 8) == 42
    assert jail._exit_code(9) == 128 + 9


def test_sequence_order():
    """The app enters the root before the filter and the credential changes, and execs last."""
    names = [name for name, _action in jail.APP_STEPS]
    assert names.index("enter-root") < names.index("seccomp") < names.index("drop-bounding-set")
    assert names.index("setresuid") < names.index("capset") < names.index("no-new-privs") < names.index("execve")
    assert names.index("no-new-privs") < names.index("chdir")  # an image's WorkingDir is entered unprivileged
    assert names[-1] == "execve"
    setup = [name for name, _action in jail.SETUP_STEPS]
    assert setup[:3] == ["unshare", "private-mounts", "bind-root"]


def test_copy_files_option(tmp_path):
    assert [dest for _source, dest in jail._copy_files(True)] == list(jail.DEFAULT_COPY_FILES)
    sources = [source for source, _dest in jail._copy_files(True)]
    assert sources == [os.path.realpath(path) for path in jail.DEFAULT_COPY_FILES]
    assert jail._copy_files(False) == ()
    conf = tmp_path / "app.conf"
    conf.write_text("x")
    os.symlink(str(conf), str(tmp_path / "planted"))
    assert jail._copy_files([str(conf)]) == ((str(conf), str(conf)),)
    with pytest.raises(DrootError, match="goes through the symlink"):
        jail._copy_files([str(tmp_path / "planted")])
    with pytest.raises(DrootError, match="absolute host path"):
        jail._copy_files(["etc/hosts"])


def test_default_copy_files_stay_in_etc_and_run(tmp_path, monkeypatch):
    """A resolv.conf symlink leading out of /etc and /run could be a jail's: refused."""
    target = tmp_path / "stub-resolv.conf"
    target.write_text("nameserver 127.0.0.53\n")
    link = tmp_path / "resolv.conf"
    os.symlink(str(target), str(link))
    monkeypatch.setattr(jail, "DEFAULT_COPY_FILES", (str(link),))
    with pytest.raises(DrootError, match="outside /etc and /run, where a jail could have planted a symlink"):
        jail._copy_files(True)


def test_output_that_never_pauses_still_times_out():
    """A jail can keep its pipes readable at every select; the deadline must hold anyway.

    An eventfd in semaphore mode with a huge count is readable on every pass and never ends.
    """
    always_readable = os.eventfd((1 << 32) - 1, os.EFD_SEMAPHORE)
    kills = []
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the deadline was not checked while output kept coming"))
    signal.alarm(10)
    try:
        started = time.monotonic()
        (output, size), timed_out = jail.read_output((always_readable,), None, started + 0.3,
                                                     lambda: kills.append(True))
    finally:
        signal.alarm(0)
        os.close(always_readable)
    assert timed_out and kills == [True]
    assert time.monotonic() - started < 5
    assert size > 0 and len(output) <= jail.OUTPUT_LIMIT
