"""The wire encoder writes the bytes fastavro writes, on real Rubin alerts and on a synthetic deep night."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest

from starling.alert.decoder import WireEncoder, encode_wire
from starling.alert.schemas import PackagedRubinSchemas
from starling.synthetic.generator import SyntheticConfig, SyntheticNight


def _reencoded(message: bytes, schemas: PackagedRubinSchemas) -> tuple[bytes, bytes]:
    schema_id = int.from_bytes(message[1:5], "big")
    parsed = schemas.get(schema_id).parsed
    record = fastavro.schemaless_reader(io.BytesIO(message[5:]), parsed)
    return WireEncoder(schema_id, parsed)(record), encode_wire(schema_id, parsed, record)


def test_real_rubin_alerts_are_written_back_byte_for_byte(samples: Path) -> None:
    schemas = PackagedRubinSchemas()
    messages = sorted((samples / "realworld" / "rubin").glob("*.wire.avro"))
    assert messages, "no real Rubin alerts"
    for path in messages:
        original = path.read_bytes()
        ours, fastavros = _reencoded(original, schemas)
        assert fastavros == original, path.name
        assert ours == original, path.name


def test_a_deep_night_is_written_as_fastavro_writes_it() -> None:
    pytest.importorskip("cavro")  # without it the encoder is fastavro: nothing to compare
    schemas = PackagedRubinSchemas()
    night = SyntheticNight(SyntheticConfig(alerts=120, alerts_per_visit=60, history="deep", seed=7))
    rubin = [payload for topic, payload in night if payload[0] == 0]
    assert len(rubin) >= 50
    for message in rubin:
        ours, fastavros = _reencoded(message, schemas)
        assert ours == fastavros == message
