"""The two Avro record readers (cavro, compiled; fastavro, the fallback) give the same alerts, field by
field, on every real alert in the shared samples: Rubin's sample packets of every schema, the real LSSTCam
alerts (wire format and container), ZTF's samples and the real ZTF alerts of schemas 1.8 to 4.02 (the AMPEL
archive's too), and refuse the same hostile messages with the same kind of reason."""

from __future__ import annotations

import math
import platform
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.alert.record_readers import CavroReader, FastavroReader, record_reader
from starling.alert.schemas import PackagedRubinSchemas
from starling.errors import AlertDecodeError


def _real_messages(samples: Path) -> Iterator[tuple[str, bytes]]:
    for folder in ("rubin/samples", "realworld/rubin", "ztf/alerts", "realworld/ztf"):
        for path in sorted((samples / folder).rglob("*.avro")):
            yield str(path.relative_to(samples)), path.read_bytes()
    with tarfile.open(samples / "realworld/ztf/ampel_recent_alerts_20180615.tar.gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.endswith(".avro"):
                extracted = archive.extractfile(member)
                assert extracted is not None
                yield f"ampel/{member.name}", extracted.read()


def _same(a: Any, b: Any, where: str = "") -> list[str]:
    """Where ``a`` and ``b`` differ (NaN equal to NaN, types compared too)."""
    if type(a) is not type(b):
        return [f"{where}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for k in a for d in _same(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _same(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def _whole(alert: Alert) -> dict[str, Any]:
    """Everything an alert holds: its fields, its record, its history and its cutouts, read out."""
    fields = {name: getattr(alert, name) for name in Alert.__slots__ if not name.startswith("_")}
    history = alert.history
    return {
        **fields,
        "record": alert.record,
        "history": [p._asdict() for p in (*history.detections, *history.upper_limits, *history.forced)],
        "cutouts": {role: cutout.data for role, cutout in alert.cutouts.items()},
    }


@pytest.fixture(scope="module")
def decoders() -> tuple[AlertDecoder, AlertDecoder]:
    schemas = PackagedRubinSchemas()
    return AlertDecoder(schemas, reader=FastavroReader()), AlertDecoder(schemas, reader=CavroReader())


def test_both_readers_give_the_same_alerts_on_every_real_sample(
    samples: Path, decoders: tuple[AlertDecoder, AlertDecoder]
) -> None:
    by_fastavro, by_cavro = decoders
    checked = {"rubin": 0, "ztf": 0}
    for name, payload in _real_messages(samples):
        expected = by_fastavro.decode(payload, name)
        found = by_cavro.decode(payload, name)
        assert len(found) == len(expected), name
        for mine, theirs in zip(found, expected, strict=True):
            assert _same(_whole(mine), _whole(theirs), name) == []
            checked[mine.survey] += 1
    # Every sample was read: 15 Rubin schema samples and 9 real LSSTCam; 5 ZTF samples, 4 real and 22 AMPEL.
    assert checked == {"rubin": 24, "ztf": 31}


def test_a_bad_message_is_refused_alike(samples: Path, decoders: tuple[AlertDecoder, AlertDecoder]) -> None:
    payload = (samples / "realworld/rubin/169813006111211559.wire.avro").read_bytes()
    for bad, words in (
        (payload[:-40], "truncated"),
        (payload + b"\x00\x01\x02", "left over"),
        (payload[:5] + b"\xff" * 64, "cannot decode"),
    ):
        for decoder in decoders:
            with pytest.raises(AlertDecodeError, match=words):
                decoder.decode(bad, "bad")


def test_the_reader_is_chosen_by_name_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    if platform.machine() == "x86_64":  # where pyproject.toml installs it
        assert record_reader().name == "cavro"
    assert record_reader("fastavro").name == "fastavro"
    monkeypatch.setenv("STARLING_AVRO", "fastavro")
    assert record_reader().name == "fastavro"
