"""STILTS, for ``taplint`` (the validator TAP users run): Debian's package, installed when missing."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support.debian import apt_install


@pytest.fixture(scope="session")
def stilts() -> str:
    found = shutil.which("stilts")
    if found:
        return found
    apt_install(("stilts",), "taplint")
    found = shutil.which("stilts")
    if found:
        return found
    assert os.geteuid() == 0, "taplint needs Debian's stilts: apt-get install stilts (as root)"
    assert shutil.which("apt-get"), "taplint needs Debian's stilts: apt-get install stilts"
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "stilts"]):
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        assert done.returncode == 0, done.stdout + done.stderr
    found = shutil.which("stilts")
    assert found, "stilts was installed but is not on PATH"
    return found
