"""Messages out of files: files, folders and archives, other files skipped, counts known in advance."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from starling.components.sources.files import check_paths, count_messages, iter_messages
from starling.errors import ConfigError


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "night"
    (folder / "deeper").mkdir(parents=True)
    (folder / "b.avro").write_bytes(b"B")
    (folder / "a.avro").write_bytes(b"A")
    (folder / "deeper" / "c.bin").write_bytes(b"C")
    (folder / "README.md").write_text("not a message")
    (folder / ".hidden.avro").write_bytes(b"hidden")
    return folder


def test_a_folder_gives_its_messages_in_name_order_and_skips_the_rest(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    messages = list(iter_messages([folder]))
    assert [m.payload for m in messages] == [b"A", b"B", b"C"]
    assert messages[0].origin == str(folder / "a.avro")
    assert count_messages([folder]) == 3


def test_an_archive_is_streamed_gzipped_members_unpacked_and_counted_as_unknown(tmp_path: Path) -> None:
    archive = tmp_path / "night.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("x.avro", b"X"), ("notes.txt", b"skip"), ("y.avro.gz", gzip.compress(b"Y"))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    messages = list(iter_messages([archive]))
    assert [m.payload for m in messages] == [b"X", b"Y"]
    assert messages[1].origin == f"{archive}:y.avro.gz"
    assert count_messages([archive]) is None


def test_a_file_named_on_its_own_is_always_read_and_a_missing_one_refused(tmp_path: Path) -> None:
    odd = tmp_path / "message.data"
    odd.write_bytes(b"Z")
    assert [m.payload for m in iter_messages([odd])] == [b"Z"]
    with pytest.raises(ConfigError, match="input not found"):
        check_paths([odd, tmp_path / "absent.avro"])
