"""Hostile messages: every real alert, mutated, is decoded or refused with a reason; never another
exception, never a hang, never gigabytes. Each decode runs in a forked child (tests.support.guarded_decode)
that reports what the decoder did, its time and its memory growth, and is killed if it hangs.

Mutations: truncation; flipped, replaced and inserted bytes (header, writer schema, body); Avro counts and
lengths set to huge or negative values; ZTF writer schemas that do not fit the body or the alert model;
Rubin wire-format messages with other schema ids; tiny containers declaring millions of records;
decompression bombs. Other Avro codecs must decode as the null codec does. STARLING_HOSTILE_EXAMPLES sets
the examples per property (200).
"""

from __future__ import annotations

import bz2
import copy
import hashlib
import io
import json
import lzma
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.alert.schemas import PackagedRubinSchemas
from starling.core.component import RawMessage
from starling.errors import AlertDecodeError
from starling.testing import sample_messages
from tests.support import avro_bytes as avro
from tests.support.guarded_decode import Outcome, decode_guarded

settings.register_profile(
    "hostile-messages",
    max_examples=int(os.environ.get("STARLING_HOSTILE_EXAMPLES", "200")),
    deadline=None,  # a decode's time is checked in the child, against SECONDS_PER_DECODE
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HOSTILE = settings.get_profile("hostile-messages")

SECONDS_PER_DECODE = 2.0  # a real alert decodes in 1-30 ms
MEGABYTES_PER_DECODE = 256.0  # real alerts are under 300 kB
HUGE = (2**31, 2**40, 10**9, 2**62, -1, -2, -(2**31), -(2**40), -(10**9))
EMPTY_ALERT = {"type": "record", "name": "alert", "namespace": "ztf", "fields": []}
NULL_ARRAY_ALERT = {**EMPTY_ALERT, "fields": [{"name": "nulls", "type": {"type": "array", "items": "null"}}]}
# An array of ``Foo`` inside namespace ``b`` holds ``b.Foo`` (no bytes), not the ``a.Foo`` defined first
# (a double): a size check that resolved the bare name first would let its count go unbounded.
SHADOWED_ALERT = {
    **EMPTY_ALERT,
    "fields": [
        {"name": "candidate", "type": {"type": "record", "name": "c", "fields": []}},
        {
            "name": "f",
            "type": {
                "type": "record",
                "name": "Foo",
                "namespace": "a",
                "fields": [{"name": "x", "type": "double"}],
            },
        },
        {
            "name": "i",
            "type": {
                "type": "record",
                "name": "I",
                "namespace": "b",
                "fields": [
                    {"name": "e", "type": {"type": "record", "name": "Foo", "fields": []}},
                    {"name": "m", "type": {"type": "array", "items": "Foo"}},
                ],
            },
        },
    ],
}
OTHER_TYPES: tuple[tuple[Any, st.SearchStrategy[Any]], ...] = (  # a type a field may be given, values of it
    ("string", st.text(max_size=8)),
    ("null", st.none()),
    ("int", st.integers(-(2**31), 2**31 - 1)),
    ("bytes", st.binary(max_size=8)),
    ("double", st.floats()),
    (["null", "string"], st.one_of(st.none(), st.text(max_size=8))),
    ({"type": "array", "items": "null"}, st.lists(st.none(), max_size=3)),
    ({"type": "map", "values": "null"}, st.dictionaries(st.text(max_size=4), st.none(), max_size=3)),
    ({"type": "record", "name": "nothing", "fields": []}, st.just({})),
)


# -- The check on every outcome, and the corpus of real messages ---------------------------------


def assert_contained(
    outcome: Outcome, seconds: float = SECONDS_PER_DECODE, mb: float = MEGABYTES_PER_DECODE
) -> None:
    # One assertion a kind of failure, so that hypothesis reports each kind with its own example.
    assert outcome.kind != "escaped", f"an exception other than AlertDecodeError escaped: {outcome.detail}"
    assert outcome.kind != "hung", outcome.detail
    assert outcome.kind in ("alerts", "refused"), f"{outcome.kind}: {outcome.detail}"
    assert outcome.kind == "alerts" or outcome.detail.strip(), "AlertDecodeError with an empty reason"
    cost = f"{outcome.seconds:.2f} s, {outcome.megabytes:.0f} MB ({outcome.kind}: {outcome.detail[:200]})"
    assert outcome.seconds < seconds, f"too slow: {cost}"
    assert outcome.megabytes < mb, f"too much memory: {cost}"


@dataclass(repr=False)
class Corpus:
    messages: dict[str, RawMessage]
    decoder: AlertDecoder
    rubin_ids: list[int]
    shapes: dict[str, avro.Shape] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    outcomes: dict[bytes, Outcome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kinds = {name: self.kind(m) for name, m in self.messages.items()}

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # else hypothesis prints every field
        printer.text(f"<{len(self.messages)} real messages>")

    def decode(self, payload: bytes) -> Outcome:
        """The guarded decode, once per distinct payload (shrinking tries many payloads again)."""
        key = hashlib.sha256(payload).digest()
        if key not in self.outcomes:
            self.outcomes[key] = decode_guarded(self.decoder, payload)
        return self.outcomes[key]

    def draw(self, data: st.DataObject, which: str = "any") -> tuple[RawMessage, avro.Shape]:
        names = [name for name, kind in self.kinds.items() if which in ("any", kind)]
        name = data.draw(st.sampled_from(names), label="message")
        return self.messages[name], self.shape(name)

    @staticmethod
    def kind(message: RawMessage) -> str:
        if message.payload[:1] == b"\x00":
            return "wire"
        schema = json.loads(avro.parse_container(message.payload).meta["avro.schema"])
        full_name = f"{schema.get('namespace') or ''}.{schema['name']}".lstrip(".")
        return "ztf" if full_name.startswith("ztf") else "container"

    def shape(self, name: str) -> avro.Shape:
        if name not in self.shapes:
            self.shapes[name] = avro.shape_of(self.messages[name].payload, self.decoder.schemas)
        return self.shapes[name]


@pytest.fixture(scope="module")
def corpus(samples: Path) -> Corpus:
    found = [
        m for sub in ("realworld", "ztf/alerts", "rubin/samples") for m in sample_messages(samples / sub)
    ]
    schemas = PackagedRubinSchemas()
    decoder, rubin_ids = AlertDecoder(schemas), sorted(schemas.known_ids())
    for schema_id in rubin_ids:  # warm the caches the children share
        schemas.get(schema_id)
    for message in found:
        decoder.decode(message.payload, message.origin)
    return Corpus({m.origin.removeprefix(str(samples) + "/"): m for m in found}, decoder, rubin_ids)


def test_the_corpus_holds_every_real_alert_and_the_mutation_map_is_exact(corpus: Corpus) -> None:
    kinds = list(corpus.kinds.values())
    assert kinds.count("wire") >= 9
    assert kinds.count("ztf") >= 31
    assert kinds.count("container") >= 15
    for name in corpus.messages:
        shape = corpus.shape(name)
        assert shape.end == len(shape.body), name
        assert shape.container is None or len(shape.container.blocks) == 1, name


def test_every_real_message_cut_short_or_with_a_huge_first_count_is_refused(corpus: Corpus) -> None:
    """Each real message at least once, whatever hypothesis draws."""
    for name, message in corpus.messages.items():
        shape, payload = corpus.shape(name), message.payload
        cases = [
            payload[:cut] for cut in (1, 5, shape.regions["body"][0], len(payload) // 2, len(payload) - 1)
        ]
        start, end = shape.marks[0]
        cases.append(shape.with_body(payload, shape.body[:start] + avro.varint(2**40) + shape.body[end:]))
        for index, case in enumerate(cases):
            try:
                assert_contained(corpus.decode(case))
            except AssertionError as exc:
                raise AssertionError(f"{name}, case {index}: {exc}") from None


# -- Properties over every real message ------------------------------------------------------------


@HOSTILE
@given(data=st.data())
def test_truncated_messages_are_decoded_or_refused(corpus: Corpus, data: st.DataObject) -> None:
    message, _ = corpus.draw(data)
    cut = data.draw(st.integers(0, len(message.payload) - 1), label="cut at")
    assert_contained(corpus.decode(message.payload[:cut]))


def _position(data: st.DataObject, shape: avro.Shape, end_inclusive: bool = False) -> int:
    region = data.draw(st.sampled_from(sorted(shape.regions)), label="region")
    start, end = shape.regions[region]
    return data.draw(st.integers(start, end if end_inclusive else end - 1), label=f"offset in {region}")


@HOSTILE
@given(data=st.data())
def test_flipped_and_replaced_bytes_are_decoded_or_refused(corpus: Corpus, data: st.DataObject) -> None:
    message, shape = corpus.draw(data)
    payload = bytearray(message.payload)
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        position = _position(data, shape)
        bit_flip = st.sampled_from([1 << bit for bit in range(8)])
        payload[position] ^= data.draw(st.one_of(bit_flip, st.integers(1, 255)), label="xor")
    assert_contained(corpus.decode(bytes(payload)))


@HOSTILE
@given(data=st.data())
def test_inserted_bytes_are_decoded_or_refused(corpus: Corpus, data: st.DataObject) -> None:
    message, shape = corpus.draw(data)
    payload = message.payload
    for _ in range(data.draw(st.integers(1, 4), label="insertions")):
        position = min(_position(data, shape, end_inclusive=True), len(payload))
        payload = payload[:position] + data.draw(st.binary(min_size=1, max_size=16)) + payload[position:]
    assert_contained(corpus.decode(payload))


@HOSTILE
@given(data=st.data())
def test_huge_or_negative_counts_and_lengths_are_refused(corpus: Corpus, data: st.DataObject) -> None:
    """An array/map block count, string/bytes length, or container block count/size set to 2**31,
    2**40, 10**9, 2**62 or a negative value, the rest of the message intact."""
    message, shape = corpus.draw(data)
    frame = ["block count", "block size"] if shape.container is not None else []
    target = data.draw(st.sampled_from([*frame, *range(len(shape.marks))]), label="count or length")
    value = data.draw(st.sampled_from(HUGE), label="value")
    if target == "block count":
        payload = shape.with_body(message.payload, shape.body, count=value)
    elif target == "block size":
        assert shape.container is not None
        payload = avro.build_container(
            shape.container.meta, shape.container.blocks, shape.container.sync, value
        )
    else:
        start, end = shape.marks[int(target)]
        note(f"body bytes {start}:{end} (was {avro.read_varint(shape.body, start)[0]}) := {value}")
        payload = shape.with_body(message.payload, shape.body[:start] + avro.varint(value) + shape.body[end:])
    assert_contained(corpus.decode(payload))


def _mutated(schema: dict[str, Any], record: dict[str, Any], data: st.DataObject) -> tuple[Any, Any]:
    """A wrong writer schema for a ZTF alert, and the real record changed to fit it."""
    how = data.draw(
        st.sampled_from(["retype a field", "retype a candidate field", "remove fields", "empty", "nulls"]),
        label="schema mutation",
    )
    fields, row = schema["fields"], record
    if how == "empty":
        return EMPTY_ALERT, {}  # a record named ztf.alert with no fields
    if how == "nulls":
        return NULL_ARRAY_ALERT, {"nulls": [None] * data.draw(st.sampled_from([0, 1, 10**6]), label="nulls")}
    if how == "remove fields":
        names = [f["name"] for f in fields]
        keep = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names) - 1), label="keep")
        return {**schema, "fields": [f for f in fields if f["name"] in keep]}, record
    if how == "retype a candidate field":
        [candidate] = [f for f in fields if f["name"] == "candidate"]
        fields, row = candidate["type"]["fields"], record["candidate"]
    chosen = fields[data.draw(st.integers(0, len(fields) - 1), label="field")]
    new_type, values = OTHER_TYPES[data.draw(st.integers(0, len(OTHER_TYPES) - 1), label="new type")]
    note(f"field {chosen['name']!r} retyped {new_type}")
    chosen["type"], row[chosen["name"]] = new_type, data.draw(values, label="value")
    return schema, record


def _ztf_with_other_schema(corpus: Corpus, data: st.DataObject) -> tuple[avro.Container, bytes, Any, Any]:
    message, shape = corpus.draw(data, "ztf")
    assert shape.container is not None
    record = copy.deepcopy(next(iter(fastavro.reader(io.BytesIO(message.payload)))))
    schema, record = _mutated(json.loads(shape.container.meta["avro.schema"]), record, data)
    return shape.container, shape.body, schema, record


@HOSTILE
@given(data=st.data())
def test_ztf_writer_schemas_that_lie_about_the_body_are_refused(corpus: Corpus, data: st.DataObject) -> None:
    """The header's schema changed, the body not: the original, or a huge count and then the original."""
    container, body, schema, _ = _ztf_with_other_schema(corpus, data)
    if data.draw(st.booleans(), label="a huge count first"):
        body = avro.varint(data.draw(st.sampled_from(HUGE), label="count")) + body
    count = data.draw(st.sampled_from([1, 2, 1000]), label="records in the block")
    assert_contained(
        corpus.decode(avro.build_container(avro.schema_meta(schema), [(count, body)], container.sync))
    )


@HOSTILE
@given(data=st.data())
def test_ztf_alerts_written_with_a_changed_schema_are_refused(corpus: Corpus, data: st.DataObject) -> None:
    """Well-formed containers whose schema and record are a ZTF alert's with a field retyped or removed,
    a record named ztf.alert with no fields, or a ztf.alert holding an array of nulls."""
    container, _, schema, record = _ztf_with_other_schema(corpus, data)
    out = io.BytesIO()
    try:
        fastavro.writer(out, schema, [record])
    except Exception:  # a removed or retyped field defined a named type that a later field uses
        assume(False)
    [(_, body)] = avro.parse_container(out.getvalue()).blocks
    count = data.draw(st.sampled_from([1, 2, 1000]), label="records in the block")
    assert_contained(
        corpus.decode(avro.build_container(avro.schema_meta(schema), [(count, body)], container.sync))
    )


@HOSTILE
@given(data=st.data())
def test_rubin_wire_messages_with_other_ids_or_bodies_are_refused(
    corpus: Corpus, data: st.DataObject
) -> None:
    message, _ = corpus.draw(data, "wire")
    schema_id = data.draw(
        st.one_of(st.sampled_from(corpus.rubin_ids), st.integers(0, 2**32 - 1)), label="schema id"
    )
    body = bytearray(message.payload[5:])
    for _ in range(data.draw(st.integers(0, 4), label="body edits")):
        body[data.draw(st.integers(0, len(body) - 1), label="offset")] ^= data.draw(st.integers(1, 255))
    assert_contained(corpus.decode(b"\x00" + schema_id.to_bytes(4, "big") + body))


# -- Targeted cases: tiny messages that declare enormous contents -------------------------------------


@pytest.mark.parametrize(
    ("schema", "count", "body"),
    [
        pytest.param(EMPTY_ALERT, 2_000_000, b"", id="2M-empty-ztf-alert-records"),
        pytest.param(EMPTY_ALERT, 2**31, b"", id="2**31-empty-ztf-alert-records"),
        pytest.param(NULL_ARRAY_ALERT, 1, avro.varint(2_000_000) + avro.varint(0), id="array-of-2M-nulls"),
        pytest.param(NULL_ARRAY_ALERT, 1, avro.varint(2**40) + avro.varint(0), id="array-of-2**40-nulls"),
        pytest.param({"type": "array", "items": "null"}, 2_000_000, b"\x00", id="2M-empty-arrays"),
        pytest.param(
            SHADOWED_ALERT,
            1,
            bytes(8) + avro.varint(2**40) + avro.varint(0),
            id="array-of-2**40-shadowed-empties",
        ),
    ],
)
def test_a_tiny_container_declaring_millions_of_items(
    corpus: Corpus, schema: Any, count: int, body: bytes
) -> None:
    payload = avro.build_container(avro.schema_meta(schema), [(count, body)])
    assert len(payload) < 600
    assert_contained(corpus.decode(payload), seconds=1.0, mb=50.0)


def _bomb(codec: str) -> bytes:
    """One compressed stream of zeros, built a megabyte at a time: deflate 1 GB (about 1 kB a megabyte:
    the compressor restarts at each chunk); bzip2 and xz 256 MiB (slower to build; 4x the decoder's limit)."""
    if codec == "deflate":
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        return (deflate.compress(bytes(10**6)) + deflate.flush(zlib.Z_FULL_FLUSH)) * 1000 + deflate.flush()
    compressor = bz2.BZ2Compressor() if codec == "bzip2" else lzma.LZMACompressor(preset=0)
    return b"".join([*(compressor.compress(bytes(2**20)) for _ in range(256)), compressor.flush()])


@pytest.mark.parametrize("codec", ["deflate", "bzip2", "xz"])
def test_a_decompression_bomb_is_refused_without_inflating_it(corpus: Corpus, codec: str) -> None:
    """One record whose block inflates to 1 GB (256 MiB) of zeros, under a real ZTF writer schema."""
    container = avro.parse_container(corpus.messages["ztf/alerts/1628364324215010017.avro"].payload)
    meta = {**container.meta, "avro.codec": codec.encode()}
    payload = avro.build_container(meta, [(1, _bomb(codec))])
    assert len(payload) < 2_000_000
    assert_contained(corpus.decode(payload), seconds=2.0)


@pytest.mark.parametrize("codec", ["bzip2", "xz", "zstandard"])
def test_a_second_stream_hidden_in_a_block_is_refused(corpus: Corpus, codec: str) -> None:
    """A decompressor stops at the end of its stream: whatever follows would be dropped unread."""
    container = avro.parse_container(
        _recoded(corpus.messages["ztf/alerts/1628364324215010017.avro"].payload, codec)
    )
    (count, block), = container.blocks  # fmt: skip
    payload = avro.build_container(container.meta, [(count, block + block)], container.sync)
    with pytest.raises(AlertDecodeError, match=f"{codec} block holds {len(block)} bytes after its stream"):
        corpus.decoder.decode(payload)


# -- Other codecs ---------------------------------------------------------------------------------------


def _recoded(payload: bytes, codec: str) -> bytes:
    """The same container, written again by fastavro.writer with ``codec``."""
    reader = fastavro.reader(io.BytesIO(payload))
    out = io.BytesIO()
    fastavro.writer(out, reader.writer_schema, list(reader), codec=codec)
    return out.getvalue()


def _fingerprint(alert: Alert) -> str:
    scalars = (alert.key, alert.object_id, alert.ra, alert.dec, alert.mjd, alert.band, alert.mag, alert.flux)
    return repr((scalars, alert.reliability, alert.schema_version, alert.record))  # repr: NaN equals NaN


@pytest.mark.parametrize("codec", ["snappy", "zstandard", "bzip2", "xz"])
def test_other_codecs_decode_to_the_same_alert_as_the_null_codec(corpus: Corpus, codec: str) -> None:
    """One real container per distinct writer schema (ZTF 1.8 to 4.02, Rubin 3.0 to 11.0, ELAsTiCC)."""
    one_per_schema = {avro.parse_container(m.payload).meta["avro.schema"]: m for m in corpus.messages.values()
                      if m.payload[:4] == b"Obj\x01"}  # fmt: skip
    problems = []
    for message in one_per_schema.values():
        expected = [_fingerprint(a) for a in corpus.decoder.decode(message.payload, message.origin)]
        try:
            got = [_fingerprint(a) for a in corpus.decoder.decode(_recoded(message.payload, codec))]
        except AlertDecodeError as exc:
            problems.append(f"{message.origin}: refused: {exc.reason}")
            continue
        if got != expected:
            problems.append(f"{message.origin}: decodes to other alerts")
    assert problems == [], f"{len(problems)} of {len(one_per_schema)} failed; first: {problems[:1]}"
