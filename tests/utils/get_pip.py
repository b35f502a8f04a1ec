# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for get-pip.py, which ansible-test downloads from a host we cannot reach.

tests/run.sh copies this file to ~/.ansible/test/cache/get_pip_<version>.py, where ansible-test
looks before downloading. ansible-test runs it with the Python of a venv created without pip and
the arguments of a pip install of its pinned pip (``pip==24.2 --no-setuptools --no-wheel``).
ensurepip installs the pip bundled with that Python, which then installs the pinned version
from the package index.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# Options of get-pip.py itself, unknown to pip install.
GET_PIP_OPTIONS = ("--no-setuptools", "--no-wheel")


def main():
    """Bootstrap pip with ensurepip, then install what ansible-test asked for."""
    args = sys.argv[1:]
    # ensurepip points PIP_CONFIG_FILE at /dev/null in os.environ; the pip run after it needs the
    # machine's pip configuration (index, certificates) again.
    environ = dict(os.environ)
    ensurepip.bootstrap()
    pip = [sys.executable, "-m", "pip"]
    pip_args = [arg for arg in args if arg not in GET_PIP_OPTIONS]
    subprocess.check_call(pip + ["install", "--quiet"] + pip_args, env=environ)
    if "--no-setuptools" in args:
        # ensurepip of Python 3.11 and older also installs setuptools.
        subprocess.check_call(pip + ["uninstall", "--quiet", "--yes", "setuptools"], env=environ)


if __name__ == "__main__":
    main()
