"""Hostile messages on the survey topic of a real Kafka, among every real alert: none stops the chain.

Each example puts every real alert of ``../shared/data`` on a fresh survey topic, each followed by a
mutation of itself drawn by hypothesis (cut short, a byte flipped, a count or length made huge, the
writer schema changed), and the known poisons (an empty message, a wrong magic byte, an unknown
schema id, a tiny container declaring two million records, a deflate bomb, a ZTF schema whose
``candidate`` is a string). Then the whole chain runs (ingest, filter, distribute, three workers).

What must hold, judged against the decoder run on each message alone: every message it refuses is
dead-lettered with a reason; every real alert (and every mutation that still decodes) is stored
once; no real alert is dead-lettered; and all of it within a bounded delay.
"""

from __future__ import annotations

import io
import threading
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starling.alert.decoder import AlertDecoder
from starling.alert.schemas import PackagedRubinSchemas
from starling.core.component import RawMessage
from starling.core.kafka_settings import KafkaSettings
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.errors import AlertDecodeError
from starling.testing import sample_messages
from starling.transport.kafka.clients import MAX_MESSAGE_BYTES, ensure_topics, producer_config
from starling.transport.kafka.worker import StageWorker
from tests.support import avro_bytes as avro
from tests.support.helpers import wait_until
from tests.support.kafka import read_topic, store_count

pytestmark = pytest.mark.kafka

HUGE = (2**31, 2**40, 10**9, -1, -(2**40))
DELAY_S = 180  # the bounded delay: everything stored or dead-lettered by then


def _poisons(ztf: bytes) -> list[bytes]:
    container = avro.parse_container(ztf)
    empty_alert = {"type": "record", "name": "alert", "namespace": "ztf", "fields": []}
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = (deflate.compress(bytes(10**6)) + deflate.flush(zlib.Z_FULL_FLUSH)) * 300 + deflate.flush()
    reader = fastavro.reader(io.BytesIO(ztf))
    schema = dict(reader.writer_schema)  # type: ignore[arg-type]
    schema["fields"] = [{**f, "type": "string"} if f["name"] == "candidate" else f for f in schema["fields"]]
    candidate_string = io.BytesIO()
    record = {**next(iter(fastavro.reader(io.BytesIO(ztf)))), "candidate": "not a candidate"}  # type: ignore[dict-item]
    fastavro.writer(candidate_string, schema, [record])
    return [
        b"",
        b"\x07" + ztf[1:],
        b"\x00" + (4242).to_bytes(4, "big") + b"\x02\x04",
        avro.build_container(avro.schema_meta(empty_alert), [(2_000_000, b"")]),
        avro.build_container({**container.meta, "avro.codec": b"deflate"}, [(1, bomb)], container.sync),
        candidate_string.getvalue(),
    ]


def _mutation(message: RawMessage, shape: avro.Shape) -> st.SearchStrategy[bytes]:
    payload = message.payload
    cut = st.integers(0, len(payload) - 1).map(lambda n: payload[:n])
    flipped = st.tuples(st.integers(0, len(payload) - 1), st.integers(1, 255)).map(
        lambda at: payload[: at[0]] + bytes([payload[at[0]] ^ at[1]]) + payload[at[0] + 1 :]
    )
    if not shape.marks:
        return st.one_of(cut, flipped)

    def huge(choice: tuple[int, int]) -> bytes:
        start, end = shape.marks[choice[0]]
        return shape.with_body(payload, shape.body[:start] + avro.varint(choice[1]) + shape.body[end:])

    counts = st.tuples(st.integers(0, len(shape.marks) - 1), st.sampled_from(HUGE)).map(huge)
    return st.one_of(cut, flipped, counts)


@pytest.fixture(scope="module")
def real_messages(samples: Path) -> list[tuple[RawMessage, avro.Shape]]:
    schemas = PackagedRubinSchemas()
    found = [
        m for sub in ("realworld", "ztf/alerts", "rubin/samples") for m in sample_messages(samples / sub)
    ]
    return [(m, avro.shape_of(m.payload, schemas)) for m in found]


@contextmanager
def _chain(spec: PipelineSpec, work: Path) -> Iterator[list[StageWorker]]:
    workers = [StageWorker(spec, stage, work) for stage in ("ingest", "filter", "distribute")]
    with ExitStack() as stack:
        for worker in workers:
            thread = threading.Thread(target=worker.run, daemon=True)
            thread.start()
            stack.callback(thread.join, 60)
            stack.callback(worker.stop)
        yield workers


def _put_on_the_survey_topic(settings_: KafkaSettings, payloads: list[bytes]) -> None:
    ensure_topics(settings_, [settings_.raw_topic])
    producer = Producer(producer_config(settings_))
    for payload in payloads:
        producer.produce(settings_.raw_topic, value=payload)
    assert producer.flush(60) == 0


_examples = iter(range(10**6))


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_hostile_messages_among_real_alerts_cost_nothing_but_themselves(
    kafka_bootstrap: str,
    prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
    real_messages: list[tuple[RawMessage, avro.Shape]],
    data: st.DataObject,
) -> None:
    stream: list[bytes] = []
    for message, shape in real_messages:
        stream += [message.payload, data.draw(_mutation(message, shape), label=message.origin[-40:])]
    stream += _poisons(next(m.payload for m, _ in real_messages if m.payload[:4] == b"Obj\x01"))
    decoder, expected_keys, refused = AlertDecoder(), set(), set()
    for payload in stream:
        try:
            expected_keys.update(a.key for a in decoder.decode(payload))
        except AlertDecodeError:
            refused.add(payload)
    good = {m.payload for m, _ in real_messages}
    assert not refused & good

    example = f"{prefix}-{next(_examples)}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=example, partitions=2)
    work = tmp_path_factory.mktemp(example)
    spec = PipelineSpec(
        batch_size=25,
        source=ComponentSpec(use="synthetic"),
        annotators=[ComponentSpec(use=name) for name in ("history-summary", "lc-features", "solar-system")],
        filters=[ComponentSpec(use="threshold", name="bright", config={"max_mag": 19.0})],
        sinks=[ComponentSpec(use="store")],
        kafka=kafka,
    )
    _put_on_the_survey_topic(kafka, stream)
    with _chain(spec, work) as (ingest, _, distribute):
        wait_until(lambda: ingest.stats.messages_in >= len(stream), DELAY_S, "ingest to take every message")
        wait_until(lambda: store_count(work) >= len(expected_keys), DELAY_S, "every alert to be stored")
    assert store_count(work) == len(expected_keys)
    letters = read_topic(kafka_bootstrap, kafka.dead_letter_topic, len(refused), timeout_s=DELAY_S)
    lettered = {m.value() or b"" for m in letters}
    assert refused <= lettered, f"{len(refused - lettered)} refused messages not dead-lettered"
    assert not lettered & good, "a real alert was dead-lettered"
    assert all(dict(m.headers() or [])["reason"] for m in letters)
    assert len(distribute.dead_letters) == 0


def _alert_of_size(ztf: bytes, size: int) -> bytes:
    """A real ZTF alert whose science stamp is padded until the message is ``size`` bytes."""
    reader = fastavro.reader(io.BytesIO(ztf))
    record = dict(next(iter(reader)))  # type: ignore[call-overload]
    record["cutoutScience"] = {**record["cutoutScience"], "stampData": b""}
    out = io.BytesIO()
    fastavro.writer(out, reader.writer_schema, [record])
    padding = size - len(out.getvalue()) - 4  # less the bytes that the stamp's longer length takes
    record["cutoutScience"] = {**record["cutoutScience"], "stampData": bytes(padding)}
    out = io.BytesIO()
    fastavro.writer(out, reader.writer_schema, [record])
    return out.getvalue()


def _survey_topic_of_large_messages(settings_: KafkaSettings, payloads: list[bytes]) -> None:
    """A survey's own topic may take larger messages than the pipeline's topics do."""
    admin = AdminClient({"bootstrap.servers": settings_.bootstrap_servers})
    config = {"max.message.bytes": str(4 * MAX_MESSAGE_BYTES)}
    for future in admin.create_topics([NewTopic(settings_.raw_topic, 1, 1, config=config)]).values():
        future.result(30)
    producer = Producer(
        {"bootstrap.servers": settings_.bootstrap_servers, "message.max.bytes": 4 * MAX_MESSAGE_BYTES}
    )
    for payload in payloads:
        producer.produce(settings_.raw_topic, value=payload)
    assert producer.flush(60) == 0


def test_an_envelope_too_large_for_kafka_is_dead_lettered_with_a_reference(
    kafka_bootstrap: str, prefix: str, tmp_path: Path, real_messages: list[tuple[RawMessage, avro.Shape]]
) -> None:
    """A survey message larger than the pipeline's topics take: its envelope cannot go on, so that
    alert is dead-lettered, with its origin as the reference to the message (too large to copy), and
    the alerts around it go on."""
    ztf = next(m.payload for m, _ in real_messages if "kowalski" in m.origin)
    big = _alert_of_size(ztf, MAX_MESSAGE_BYTES + 100_000)
    others = [m.payload for m, _ in real_messages if m.payload[:1] == b"\x00"]  # the Rubin alerts
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=1)
    spec = PipelineSpec(
        source=ComponentSpec(use="synthetic"), sinks=[ComponentSpec(use="store")], kafka=kafka
    )
    _survey_topic_of_large_messages(kafka, [*others[:4], big, *others[4:]])
    with _chain(spec, tmp_path):
        wait_until(lambda: store_count(tmp_path) >= len(others), DELAY_S, "the other alerts to be stored")
    [letter] = read_topic(kafka_bootstrap, kafka.dead_letter_topic, 1, timeout_s=30)
    headers = dict(letter.headers())
    assert b"over Kafka's message limit" in headers["reason"]
    assert headers["origin"] == f"{kafka.raw_topic}/0@4".encode()  # the reference to the message
    assert int(headers["payload_bytes"]) == len(big)
    assert letter.value() in (None, b"")
    assert store_count(tmp_path) == len(others)
