"""The projected read of Rubin alerts (``starling.alert.projection``, compiled in ``_projected``) gives the
same alerts as the whole record: on every real Rubin sample and on generated alerts of every Rubin schema
7.0 to 11.1 (every field of the kept history rows drawn: NaN, infinities, nulls, long strings). The
fields it keeps are the record's own values, and the whole record is still there on first use."""

from __future__ import annotations

import functools
import io
import math
import re
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starling.alert.decoder import AlertDecoder, encode_wire
from starling.alert.model import Alert, Record
from starling.alert.projection import COMPILED, RUBIN_FIELDS, ZTF_FIELDS, projection_for
from starling.alert.schemas import PackagedRubinSchemas
from starling.errors import AlertDecodeError
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.synthetic.templates import rubin_definition, template_record
from tests.alert.test_record_readers import _real_messages, _same, _whole

SCHEMAS = PackagedRubinSchemas()
SCHEMA_IDS = sorted(i for i in SCHEMAS.known_ids() if 700 <= i < 1200)


DECODERS = AlertDecoder(SCHEMAS, project=True), AlertDecoder(SCHEMAS, project=False)
_definition = functools.cache(rubin_definition)
_parsed = functools.cache(lambda schema_id: fastavro.parse_schema(_definition(schema_id)))


@pytest.fixture(scope="module")
def decoders() -> tuple[AlertDecoder, AlertDecoder]:
    return DECODERS


def _within(fields: Any, record: Any, where: str = "") -> list[str]:
    """Where the projection ``fields`` is not the record's own value (a dict may keep fewer keys)."""
    if isinstance(fields, dict) and isinstance(record, dict):
        missing = [f"{where}.{k}: not in the record" for k in fields if k not in record]
        return missing + [
            d for k in fields if k in record for d in _within(fields[k], record[k], f"{where}.{k}")
        ]
    if isinstance(fields, list) and isinstance(record, list) and len(fields) == len(record):
        return [
            d
            for i, (f, r) in enumerate(zip(fields, record, strict=True))
            for d in _within(f, r, f"{where}[{i}]")
        ]
    return _same(fields, record, where)


def _check_alike(projected: AlertDecoder, whole: AlertDecoder, payload: bytes, name: str) -> None:
    mine_all, theirs_all = projected.decode(payload, name), whole.decode(payload, name)
    assert len(mine_all) == len(theirs_all)
    for mine, theirs in zip(mine_all, theirs_all, strict=True):
        assert not mine.record_is_loaded, "the projected read decoded the whole record"
        assert _within(mine.fields, theirs.record, name) == []
        fields = ZTF_FIELDS if mine.survey == "ztf" else RUBIN_FIELDS
        kept = set(mine.fields) - {"diaSourceId", "alertId"}
        assert kept == (fields["alert"] & set(theirs.record)) - {"diaSourceId", "alertId"}
        assert _same(_whole(mine), _whole(theirs), name) == []  # history, cutouts, summary; and the record


def test_every_real_rubin_alert_reads_the_same_projected(
    samples: Path, decoders: tuple[AlertDecoder, AlertDecoder]
) -> None:
    projected, whole = decoders
    checked = 0
    for name, payload in _real_messages(samples):
        if payload[:1] == b"\x00" and projection_for(
            SCHEMAS.get(int.from_bytes(payload[1:5], "big")).definition, "lsst"
        ):
            _check_alike(projected, whole, payload, name)
            checked += 1
    assert checked >= 9  # the real LSSTCam alerts at least, each of a projected schema


def test_the_compiled_reader_is_built() -> None:
    # scripts/setup builds it (a C compiler and Python's headers): without it every test here would
    # compare the whole read with itself.
    assert COMPILED, "starling.alert._projected is not built: run pip install -e . with a C compiler"


def test_every_rubin_schema_from_7_is_projected() -> None:
    assert [i for i in SCHEMA_IDS if projection_for(SCHEMAS.get(i).definition, "lsst") is None] == []
    assert {i // 100 for i in SCHEMA_IDS} == {7, 8, 9, 10, 11}


# -- Generated alerts: every field of the history rows drawn from its Avro type ----------------------

_DOUBLES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, -999.0, 0.0, -0.0, 1e-300, 30000.0, -5.0]),
)
_FLOAT32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


def _value(avro_type: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a (non-record) Avro type; named types resolved from ``named``."""
    if isinstance(avro_type, list):
        return st.one_of(*[_value(branch, named) for branch in avro_type])
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "enum":
            return st.sampled_from(avro_type["symbols"])
        if "logicalType" in avro_type or avro_type.get("type") not in ("array", "map", "record"):
            return _value(avro_type["type"], named)
        return st.just([] if avro_type["type"] == "array" else {})
    primitives: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": _FLOAT32,
        "double": _DOUBLES,
        "string": st.text(max_size=12),
        "bytes": st.binary(max_size=12),
    }
    return primitives[avro_type] if avro_type in primitives else st.just(named.get(avro_type))


def _record_type(definition: dict[str, Any], field: str) -> dict[str, Any] | None:
    for f in definition["fields"]:
        if f["name"] == field:
            for option in f["type"] if isinstance(f["type"], list) else [f["type"]]:
                if isinstance(option, dict) and option.get("type") == "array":
                    items = option["items"]
                    return items if isinstance(items, dict) else None
                if isinstance(option, dict) and option.get("type") == "record":
                    return option
    return None


@st.composite
def _rows(draw: st.DrawFn, definition: dict[str, Any], field: str, most: int) -> list[Record]:
    """Rows of the record type of an alert's history field, every field drawn (a template keeps the
    values the schema's writer insists on, such as the types of records referred to by name)."""
    row_type = _record_type(definition, field) or _record_type(definition, "diaSource")
    if row_type is None:
        return []
    template = template_record(definition, field)
    rows = []
    for _ in range(draw(st.integers(0, most))):
        row = dict(template)
        for f in row_type["fields"]:
            if not isinstance(row.get(f["name"]), dict | list):
                row[f["name"]] = draw(_value(f["type"], {}))
        rows.append(row)
    return rows


@st.composite
def _generated(draw: st.DrawFn) -> tuple[int, bytes]:
    schema_id = draw(st.sampled_from(SCHEMA_IDS))
    definition = _definition(schema_id)
    record = template_record(definition)
    source = dict(record["diaSource"])
    source.update(ra=draw(st.floats(0, 360)), dec=draw(st.floats(-90, 90)))
    source["midpointMjdTai" if "midpointMjdTai" in source else "midPointTai"] = draw(st.floats(50000, 70000))
    record["diaSource"] = source
    for field in ("prvDiaSources", "prvDiaForcedSources", "prvDiaNondetectionLimits"):
        if field in record:
            record[field] = draw(_rows(definition, field, 6))
    return schema_id, encode_wire(schema_id, _parsed(schema_id), record)


def _outcome(decoder: AlertDecoder, payload: bytes) -> Alert | str:
    """The one alert decoded, or the reason it was refused."""
    try:
        [alert] = decoder.decode(payload, "generated")
    except AlertDecodeError as refused:
        return refused.reason
    return alert


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(_generated())
def test_generated_alerts_of_every_schema_read_the_same_projected(generated: tuple[int, bytes]) -> None:
    schema_id, payload = generated
    projected, whole = (_outcome(decoder, payload) for decoder in DECODERS)
    if isinstance(whole, Alert):
        _check_alike(*DECODERS, payload, f"schema {schema_id}")
    elif isinstance(projected, Alert):
        # A value only in a field the projection skips (a timestamp out of range): the bytes are Avro, the
        # alert is taken, and the whole record says why it cannot be read when someone asks for it.
        with pytest.raises(AlertDecodeError, match=re.escape(whole)):
            _ = projected.record
    else:
        assert projected == whole  # refused alike: a value the projection reads


def test_a_message_cut_or_padded_is_refused_by_the_projected_read(
    samples: Path, decoders: tuple[AlertDecoder, AlertDecoder]
) -> None:
    projected, _ = decoders
    payload = (samples / "realworld/rubin/169813006111211559.wire.avro").read_bytes()
    for bad, words in (
        (payload[:-40], "truncated"),
        (payload + b"\x00\x01", "left over"),
        (payload[:5] + b"\xff" * 64, "cannot decode"),
    ):
        with pytest.raises(AlertDecodeError, match=words):
            projected.decode(bad, "bad")


# -- Containers: ZTF's (schemas 1.8 to 4.02) and Rubin's samples ------------------------------------


def _containers(samples: Path) -> list[tuple[str, bytes]]:
    return [(name, payload) for name, payload in _real_messages(samples) if payload[:4] == b"Obj\x01"]


def test_every_real_alert_in_a_container_reads_the_same_projected(
    samples: Path, decoders: tuple[AlertDecoder, AlertDecoder]
) -> None:
    surveys: dict[str, int] = {}
    for name, payload in _containers(samples):
        _check_alike(*decoders, payload, name)
        survey = "ztf" if "ztf" in name or name.startswith("ampel") else "rubin"
        surveys[survey] = surveys.get(survey, 0) + 1
    # The real ZTF alerts (schemas 1.8 to 4.02) and Rubin's sample containers (schemas 3.0 to 11.0).
    assert surveys["ztf"] >= 26
    assert surveys["rubin"] >= 8


def test_synthetic_ztf_alerts_of_every_history_read_the_same_projected(
    decoders: tuple[AlertDecoder, AlertDecoder],
) -> None:
    checked = 0
    for history in ("short", "deep", "wide"):
        config = SyntheticConfig.model_validate({"alerts": 60, "history": history, "seed": 7})
        for origin, payload in SyntheticNight(config):
            if payload[:4] == b"Obj\x01":
                _check_alike(*decoders, payload, origin)
                checked += 1
    assert checked >= 60


def test_a_container_of_several_ztf_alerts_reads_each_projected(
    samples: Path, decoders: tuple[AlertDecoder, AlertDecoder]
) -> None:
    name, payload = _containers(samples)[-1]
    reader = fastavro.reader(io.BytesIO(payload))
    schema, [record] = reader.writer_schema, list(reader)
    out = io.BytesIO()
    fastavro.writer(
        out, schema, [record, {**record, "candid": record["candid"] + 1}, record], codec="deflate"
    )
    projected, whole = decoders
    _check_alike(projected, whole, out.getvalue(), name)
    alerts = projected.decode(out.getvalue(), name)
    assert [a.alert_id for a in alerts] == [record["candid"], record["candid"] + 1, record["candid"]]
    assert alerts[1].record["candid"] == record["candid"] + 1  # each its own whole record, on first use


def test_a_ztf_container_cut_is_refused_as_the_whole_read_refuses_it(
    samples: Path, decoders: tuple[AlertDecoder, AlertDecoder]
) -> None:
    _, payload = _containers(samples)[0]
    for bad in (payload[:-100], payload[:-20] + b"\x07" * 20):
        outcomes = [_outcome(decoder, bad) for decoder in decoders]
        assert isinstance(outcomes[0], str)
        assert outcomes[0] == outcomes[1]


def test_bad_text_in_a_field_it_skips_is_refused_when_the_record_is_asked_for(
    samples: Path, decoders: tuple[AlertDecoder, AlertDecoder]
) -> None:
    """As for Rubin's wire messages: the alert is taken, and its whole record says why it cannot be read."""
    _, payload = next((n, p) for n, p in _containers(samples) if "ztf" in n)
    reader = fastavro.reader(io.BytesIO(payload))
    schema, [record] = reader.writer_schema, list(reader)
    marker = "skipped-text-0123456789"
    record["candidate"]["rbversion"] = marker  # a string no code of Starling's reads
    out = io.BytesIO()
    fastavro.writer(out, schema, [record], codec="null")
    bad = out.getvalue().replace(marker.encode(), b"\xff" + marker.encode()[1:])
    projected, whole = (_outcome(decoder, bad) for decoder in decoders)
    assert isinstance(whole, str)
    assert "UnicodeDecodeError" in whole or "utf" in whole.lower()
    assert isinstance(projected, Alert)
    for _ in range(2):  # the same reason every time it is asked
        with pytest.raises(AlertDecodeError) as refused:
            _ = projected.record
        assert refused.value.reason == whole
