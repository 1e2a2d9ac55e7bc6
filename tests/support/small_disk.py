"""A real small disk for outage tests: a tmpfs mounted for the test, which can be filled and freed.

A full disk is reproduced as it happens, not imitated: the store's file system runs out of space
(``ENOSPC`` from the kernel, ``SQLITE_FULL`` from SQLite). Mounting needs root (CI and the
development machine run as root); anywhere else the test fails saying so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CHUNK = 64 * 1024


class SmallDisk:
    def __init__(self, mount_point: Path) -> None:
        self.path = mount_point
        self._ballast = mount_point / "ballast"

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self, leave_bytes: int) -> None:
        """Take all the free space but ``leave_bytes`` with a ballast file (written, not sparse)."""
        chunk = b"\0" * _CHUNK
        with self._ballast.open("ab") as ballast:
            while self.free_bytes() - _CHUNK > leave_bytes:
                ballast.write(chunk)
                ballast.flush()
                os.fsync(ballast.fileno())

    def free(self) -> None:
        """Someone clears space: the ballast goes."""
        self._ballast.unlink(missing_ok=True)


@contextmanager
def small_disk(mount_point: Path, size_mib: int) -> Iterator[SmallDisk]:
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        raise AssertionError(f"a full-disk test needs to mount a tmpfs (as root): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(mount_point)
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
