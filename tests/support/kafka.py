"""Kafka for the tests: a real broker started by scripts/kafka or $STARLING_KAFKA_BOOTSTRAP, and helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from starling.core.kafka_settings import KafkaSettings, KafkaUserAccess
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.transport.kafka.clients import delete_topics, ensure_topics, producer_config
from tests.support.paths import REPO

SCRIPT = REPO / "scripts" / "kafka"
# A cluster the person running the tests points at (read before the fixture sets the variable itself).
EXTERNAL_BOOTSTRAP = os.environ.get("STARLING_KAFKA_BOOTSTRAP")


def kafka_script(*args: str) -> subprocess.CompletedProcess[str]:
    """The project's broker, never the one this session points everything else at."""
    env = {k: v for k, v in os.environ.items() if k != "STARLING_KAFKA_BOOTSTRAP"}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=600, check=False, env=env
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if EXTERNAL_BOOTSTRAP:
        yield EXTERNAL_BOOTSTRAP
        return
    was_running = kafka_script("status").returncode == 0
    started = kafka_script("start")
    assert started.returncode == 0, started.stdout + started.stderr
    bootstrap = kafka_script("bootstrap").stdout.strip()
    # The script may have chosen another port (the default one taken): whatever reads the default
    # bootstrap from the environment, in this process or the workers it starts, finds this broker.
    os.environ["STARLING_KAFKA_BOOTSTRAP"] = bootstrap
    try:
        yield bootstrap
    finally:
        del os.environ["STARLING_KAFKA_BOOTSTRAP"]
        if not was_running:
            kafka_script("stop")


@dataclass(frozen=True)
class UsersListener:
    """The broker's listener for users' own clients (SASL_PLAINTEXT, SCRAM-SHA-512) and its admin."""

    bootstrap_servers: str
    admin_password_file: Path

    def settings(self) -> KafkaUserAccess:
        """``[kafka.users]`` of a pipeline whose controller gives users their access on this broker."""
        return KafkaUserAccess(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol="SASL_PLAINTEXT",
            admin_password_file=str(self.admin_password_file),
        )

    def client(self, user: str, password: str) -> dict[str, Any]:
        """librdkafka settings of a client logged in as ``user``."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": user,
            "sasl.password": password,
        }


@pytest.fixture(scope="session")
def kafka_users_listener(kafka_bootstrap: str) -> UsersListener:
    """The users' listener of the tests' broker (scripts/kafka's, or an external one's from
    $STARLING_KAFKA_SASL_BOOTSTRAP and $STARLING_KAFKA_ADMIN_PASSWORD_FILE)."""
    if EXTERNAL_BOOTSTRAP:
        sasl = os.environ.get("STARLING_KAFKA_SASL_BOOTSTRAP")
        password_file = os.environ.get("STARLING_KAFKA_ADMIN_PASSWORD_FILE")
        if not sasl or not password_file:
            pytest.skip("an external Kafka without STARLING_KAFKA_SASL_BOOTSTRAP and ..._ADMIN_PASSWORD_FILE")
        return UsersListener(sasl, Path(password_file))
    sasl = kafka_script("sasl-bootstrap").stdout.strip()
    listener = UsersListener(sasl, Path(kafka_script("admin-password-file").stdout.strip()))
    host, _, port = listener.bootstrap_servers.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError:
        pytest.fail(f"no users' listener at {sasl}: a broker started before it; `bash scripts/kafka restart`")
    return listener


@pytest.fixture
def prefix(kafka_bootstrap: str) -> Iterator[str]:
    """Topics and consumer groups of their own for each test, deleted when it ends."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    delete_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap), name)


def chain_spec(bootstrap: str, prefix: str, alerts: int, **source: object) -> PipelineSpec:
    return PipelineSpec(
        batch_size=200,
        source=ComponentSpec(use="synthetic", config={"alerts": alerts, "alerts_per_visit": 200, **source}),
        annotators=[ComponentSpec(use="history-summary")],
        filters=[ComponentSpec(use="threshold", name="bright", config={"max_mag": 19.0})],
        sinks=[ComponentSpec(use="store")],
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=4),
    )


def send_raw(spec: PipelineSpec, messages: list[tuple[str, bytes]]) -> None:
    """Put messages (origin, bytes) on the pipeline's raw topic, as a survey would."""
    ensure_topics(spec.kafka, [spec.kafka.raw_topic])
    producer = Producer(producer_config(spec.kafka))
    for origin, payload in messages:
        producer.produce(spec.kafka.raw_topic, value=payload, headers=[("origin", origin.encode())])
        producer.poll(0)
    assert producer.flush(60) == 0


def store_count(output: Path, table: str = "alerts") -> int:
    import sqlite3

    path = output / "starling.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def read_topic(bootstrap: str, topic: str, expected_at_least: int, timeout_s: float = 60) -> list[Any]:
    """Every message of ``topic`` from its start, once at least ``expected_at_least`` came and the
    topic has been quiet for 3 s (or at ``timeout_s``)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    idle_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                if len(found) >= expected_at_least and time.monotonic() - idle_since > 3:
                    break
                continue
            idle_since = time.monotonic()
            found.append(message)
    finally:
        consumer.close()
    return found


def store_number(output: Path, sql: str) -> int:
    """The one number ``sql`` reads from the SQLite store a chain writes in ``output``."""
    import sqlite3

    with sqlite3.connect(output / "starling.db", timeout=30) as db:
        return int(db.execute(sql).fetchone()[0])
