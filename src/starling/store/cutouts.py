"""Cutouts kept as files beside the row tables, one directory per survey and night.

Layout under the cutout root: ``<survey>/<night>/<alert id>/<role>.fits[.gz]``, where ``<night>`` is
the whole MJD of the alert: the bytes the survey sent, as sent (ZTF's are gzipped FITS). The alert's
row names its files (``alerts.cutouts``, role to path relative to the root), so a reader never guesses,
and retention removes whole nights. A file is written under a temporary name and renamed into place,
so a reader never sees half of one; names depend only on the alert, so writing an alert again (a
replay, a batch taken again after an outage) rewrites the same files.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from pathlib import Path

from starling.alert.model import Alert
from starling.errors import StoreError, StoreUnavailableError

ROLES = ("science", "template", "difference")


class CutoutFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def names(alert: Alert) -> dict[str, str]:
        """Role to path (relative to the root) of the cutouts ``alert`` carries."""
        night = math.floor(alert.mjd)
        return {
            role: f"{alert.survey}/{night}/{alert.alert_id}/{role}.fits"
            + (".gz" if cutout.data[:2] == b"\x1f\x8b" else "")
            for role, cutout in alert.cutouts.items()
        }

    def write(self, alert: Alert) -> dict[str, str]:
        """Write the alert's cutouts; return their names (empty when it carries none)."""
        names = self.names(alert)
        try:
            for role, name in names.items():
                path = self.root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
                partial.write_bytes(alert.cutouts[role].data)
                partial.replace(path)
        except OSError as exc:
            # A full, read-only or missing disk is an outage: the batch is taken again, not blamed.
            raise StoreUnavailableError(f"cutouts cannot be written under {self.root}: {exc}") from exc
        return names

    def read(self, name: str) -> bytes:
        """The bytes of one stored cutout, by the name its alert row gives."""
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"no cutout {name!r}")
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"no cutout {name!r} (removed by retention?)") from exc
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise StoreError(f"no cutout {name!r}") from exc
            raise StoreUnavailableError(f"cutout {name!r} cannot be read: {exc}") from exc

    def prune(self, before_mjd: float) -> int:
        """Remove the cutouts of every night wholly before ``before_mjd``; return how many nights."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for survey in self.root.iterdir():
            if not survey.is_dir():
                continue
            for night in survey.iterdir():
                if night.is_dir() and night.name.lstrip("-").isdigit() and int(night.name) + 1 <= before_mjd:
                    shutil.rmtree(night, ignore_errors=True)
                    removed += 1
        return removed
