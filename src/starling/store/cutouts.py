"""Cutouts kept as files beside the row tables: packs, one per night and writer.

Layout under the cutout root: ``<survey>/<night>/<writer>.pack``, where ``<night>`` is the whole MJD of
the alert and ``<writer>`` names one writing process (host, pid, start), so replicas never share a file.
A pack is the stamps one after another, as the survey sent them (ZTF's gzipped FITS, Rubin's FITS);
the alert's row says where its stamps are (``alerts.cutouts``: the pack, and per role an offset and a
length), so a reader never guesses, and retention removes whole nights.

Why packs: a file per stamp costs an open and a directory entry per stamp (three per alert), which
on this machine took more time than writing the alert's rows. A batch's stamps go to a pack in one
write and one ``fsync``, before the rows that point at them are committed: a committed row always
finds its bytes. A batch taken again (a replay, an outage) appends its stamps again; the row already
stored keeps pointing at the first copy, so the second is only dead bytes until its night expires.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from starling.alert.model import Alert
from starling.errors import StoreError, StoreUnavailableError

ROLES = ("science", "template", "difference")
CutoutRef = dict[str, Any]  # {"pack": relative path, role: [offset, length], ...}


class CutoutFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._pid = -1
        self._writer = ""
        self._packs: dict[str, IO[bytes]] = {}

    def _writer_name(self) -> str:
        if self._pid != os.getpid():  # a new process (a fork) writes packs of its own
            self._packs = {}
            self._pid = os.getpid()
            self._writer = f"{socket.gethostname()}-{self._pid}-{time.time_ns()}"
        return self._writer

    def _pack(self, name: str) -> IO[bytes]:
        pack = self._packs.get(name)
        if pack is None:
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            pack = self._packs[name] = path.open("ab")
        return pack

    def write(self, alerts: Sequence[Alert]) -> dict[tuple[str, int], CutoutRef]:
        """Write the batch's stamps, durably; return where each alert's are (alerts without: absent)."""
        refs: dict[tuple[str, int], CutoutRef] = {}
        # Each pack's stamps of the batch, written at once: (where its end is, the stamps).
        pending: dict[str, tuple[list[int], list[bytes]]] = {}
        try:
            for alert in alerts:
                stamps = alert.cutouts
                if not stamps:
                    continue
                name = f"{alert.survey}/{math.floor(alert.mjd)}/{self._writer_name()}.pack"
                if name not in pending:
                    pending[name] = ([self._pack(name).seek(0, os.SEEK_END)], [])
                end, chunks = pending[name]
                ref: CutoutRef = {"pack": name}
                for role in ROLES:
                    if role in stamps:
                        data = stamps[role].data
                        chunks.append(data)
                        ref[role] = [end[0], len(data)]
                        end[0] += len(data)
                refs[alert.key] = ref
            for name, (_, chunks) in pending.items():
                pack = self._packs[name]
                pack.write(b"".join(chunks))
                pack.flush()
                os.fsync(pack.fileno())
        except OSError as exc:
            # A full, read-only or missing disk is an outage: the batch is taken again, not blamed.
            self.close()
            raise StoreUnavailableError(f"cutouts cannot be written under {self.root}: {exc}") from exc
        return refs

    def read(self, ref: CutoutRef, role: str) -> bytes:
        """The bytes of one stored stamp, from where its alert row says it is."""
        if role not in ref:
            raise StoreError(f"no {role} cutout")
        offset, length = ref[role]
        path = (self.root / str(ref["pack"])).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"no cutout pack {ref['pack']!r}")
        try:
            with path.open("rb") as pack:
                pack.seek(int(offset))
                data = pack.read(int(length))
        except FileNotFoundError as exc:
            raise StoreError(f"the cutouts of this alert are gone (removed by retention?): {exc}") from exc
        except OSError as exc:
            raise StoreUnavailableError(f"cutout pack {ref['pack']!r} cannot be read: {exc}") from exc
        if len(data) != int(length):
            raise StoreError(f"cutout pack {ref['pack']!r} is shorter than its alert row says")
        return data

    def prune(self, before_mjd: float) -> int:
        """Remove the cutouts of every night wholly before ``before_mjd``; return how many nights."""
        removed = 0
        if not self.root.is_dir():
            return 0
        self.close()  # packs of removed nights must not be written again
        for survey in self.root.iterdir():
            if not survey.is_dir():
                continue
            for night in survey.iterdir():
                if night.is_dir() and night.name.lstrip("-").isdigit() and int(night.name) + 1 <= before_mjd:
                    shutil.rmtree(night, ignore_errors=True)
                    removed += 1
        return removed

    def close(self) -> None:
        for pack in self._packs.values():
            with contextlib.suppress(OSError):
                pack.close()
        self._packs = {}
