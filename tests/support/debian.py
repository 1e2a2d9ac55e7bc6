"""Debian packages a test needs, installed with apt when missing (as root): the one way the test fixtures
install what they drive (stilts, chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess


def apt_install(packages: tuple[str, ...], why: str) -> None:
    assert os.geteuid() == 0, f"{why} needs Debian's {' '.join(packages)} (apt-get install, as root)"
    assert shutil.which("apt-get"), f"{why} needs Debian's {' '.join(packages)} (apt-get install)"
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        assert done.returncode == 0, done.stdout + done.stderr
