"""Bad messages end in the dead-letter file with a reason; the stream goes on and loses nothing else."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest

from starling.alert.decoder import AlertDecoder, encode_wire
from starling.alert.schemas import PackagedRubinSchemas
from starling.core.deadletter import read_dead_letters
from starling.errors import AlertDecodeError, UnknownSchemaError
from starling.store.open import open_store
from tests.support.helpers import run_replay, synthetic_messages, write_messages


@pytest.fixture(scope="module")
def good_messages() -> list[tuple[str, bytes]]:
    return synthetic_messages(40, seed=7)


def _first(messages: list[tuple[str, bytes]], survey: str) -> bytes:
    return next(payload for origin, payload in messages if f":{survey}:" in origin)


def _bad_messages(
    good: list[tuple[str, bytes]], schemas: PackagedRubinSchemas
) -> dict[str, tuple[bytes, str]]:
    """file name -> (payload, words its dead-letter reason must contain)."""
    rubin, ztf = _first(good, "rubin"), _first(good, "ztf")
    record = fastavro.schemaless_reader(io.BytesIO(rubin[5:]), schemas.get(1100).parsed)
    not_an_alert = io.BytesIO()
    fastavro.writer(
        not_an_alert,
        {"type": "record", "name": "weather", "fields": [{"name": "t", "type": "int"}]},
        [{"t": 3}],
    )
    return {
        "wrong-magic.bin": (b"\x05" + rubin[1:], "wrong magic byte 0x05"),
        "truncated-wire.bin": (rubin[: len(rubin) // 2], "truncated"),
        "truncated-ztf.avro": (ztf[: len(ztf) // 2], "truncated"),
        "unknown-schema.bin": (b"\x00" + (4242).to_bytes(4, "big") + rubin[5:], "unknown schema id 4242"),
        "misfit.bin": (encode_wire(700, schemas.get(1100).parsed, record)[:5] + rubin[5:], "schema id 700"),
        "empty.bin": (b"", "empty message"),
        "short.bin": (b"\x00\x00", "shorter than the 5-byte wire header"),
        "not-an-alert.avro": (not_an_alert.getvalue(), "neither a ZTF nor a Rubin alert schema"),
    }


def test_each_bad_message_is_a_dead_letter_and_the_rest_are_stored(
    tmp_path: Path, good_messages: list[tuple[str, bytes]], packaged_schemas: PackagedRubinSchemas
) -> None:
    inputs = tmp_path / "in"
    write_messages(inputs, good_messages)
    bad = _bad_messages(good_messages, packaged_schemas)
    for name, (payload, _) in bad.items():
        (inputs / name).write_bytes(payload)

    summary = run_replay([inputs], tmp_path / "out")

    assert summary.stats.messages_in == len(good_messages) + len(bad)
    assert summary.stats.stages["decode"].failed == len(bad)
    assert summary.stats.alerts_decoded == len(good_messages)
    assert summary.dead_letter_path is not None
    letters = {Path(letter.origin).name: letter for letter in read_dead_letters(summary.dead_letter_path)}
    assert set(letters) == set(bad)
    for name, (payload, words) in bad.items():
        assert words in letters[name].reason, (name, letters[name].reason)
        assert letters[name].payload == payload  # kept byte for byte
        assert letters[name].stage == "decode"
    store = open_store(tmp_path / "out" / "starling.db")
    try:
        assert store.count("alerts") == len(good_messages)
    finally:
        store.close()


def test_unknown_schema_error_carries_the_id(packaged_schemas: PackagedRubinSchemas) -> None:
    with pytest.raises(UnknownSchemaError) as caught:
        AlertDecoder(packaged_schemas).decode(b"\x00" + (99).to_bytes(4, "big") + b"\x02", "x")
    assert caught.value.schema_id == 99


def test_a_record_missing_what_every_ztf_alert_has_is_refused(decoder: AlertDecoder) -> None:
    from starling.synthetic.ztf_schema import ztf_alert_schema

    schema = ztf_alert_schema()
    record_without_candidate_position = {
        "schemavsn": "4.02",
        "publisher": "x",
        "objectId": "ZTF1",
        "candid": 1,
    }
    # A container whose schema has the ZTF name but whose records lack the candidate.
    slim = {
        **schema,
        "fields": [f for f in schema["fields"] if f["name"] in record_without_candidate_position],
    }
    out = io.BytesIO()
    fastavro.writer(out, slim, [record_without_candidate_position])
    with pytest.raises(AlertDecodeError, match="does not fit the ZTF alert model"):
        decoder.decode(out.getvalue(), "slim")
