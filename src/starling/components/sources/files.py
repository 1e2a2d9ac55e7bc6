"""Messages out of files: single files, directories of them, and tar archives of them.

ZTF's public nightly archives (``ztf_public_YYYYMMDD.tar.gz``) are tar files of one ``.avro``
container per alert; Rubin messages saved from Kafka are files holding one wire-format message each.
A file given by name is always read. In a directory or an archive, the files whose names end in one
of :data:`MESSAGE_SUFFIXES` are read, in name order, and the others (READMEs, JSON samples) skipped.
Archives are streamed, never unpacked to disk.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

from starling.core.component import RawMessage
from starling.errors import ConfigError

MESSAGE_SUFFIXES = (".avro", ".avro.gz", ".bin", ".msg", ".wire")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    return path.name.endswith(_ARCHIVE_SUFFIXES)


def _is_message_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.endswith(MESSAGE_SUFFIXES)


def _maybe_gunzip(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        import gzip

        return gzip.decompress(data)
    return data


def _archive_messages(path: Path) -> Iterator[RawMessage]:
    # "r|*" streams the archive: members are read in order without seeking or unpacking.
    with tarfile.open(path, mode="r|*") as archive:
        for member in archive:
            if not member.isfile() or not _is_message_name(member.name):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            yield RawMessage(_maybe_gunzip(member.name, handle.read()), f"{path}:{member.name}")


def _directory_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and (_is_message_name(p.name) or is_archive(p)))


def iter_messages(paths: list[Path]) -> Iterator[RawMessage]:
    """Every message under ``paths``, in order."""
    for path in paths:
        if path.is_dir():
            yield from iter_messages(_directory_files(path))
        elif is_archive(path):
            yield from _archive_messages(path)
        else:
            yield RawMessage(_maybe_gunzip(path.name, path.read_bytes()), str(path))


def check_paths(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"input not found: {', '.join(missing)}")


def count_messages(paths: list[Path]) -> int | None:
    """How many messages, when knowable without reading archives (None if any input is an archive)."""
    total = 0
    for path in paths:
        if path.is_dir():
            files = _directory_files(path)
            if any(is_archive(f) for f in files):
                return None
            total += len(files)
        elif is_archive(path):
            return None
        else:
            total += 1
    return total
