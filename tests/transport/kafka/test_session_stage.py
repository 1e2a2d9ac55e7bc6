"""A user's Starling component brought through the ExecutionBroker, over the real Kafka: offered, accepted,
scheduled a minute ahead, it runs as a stage of its own beside the chain from its start to its end. It takes
every alert the stage it reads wrote in that window, each once, and none before or after; the chain
loses nothing when it is removed. It reaches Kafka as a principal of its own, on the users' listener, which
sees only its topics and is deleted with the stage."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import defaultdict
from pathlib import Path

import httpx
import psutil
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from starling.alert.decoder import AlertDecoder
from starling.assembly import route_deliveries
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.transport.kafka.clients import IDENTITY_ENV
from starling.transport.kafka.envelope import decode_envelope
from starling.transport.kafka.feed import feed
from starling.vo.execbroker.model import STARLING_COMPONENT
from tests.support.controller import ControllerProcess
from tests.support.helpers import wait_until
from tests.support.kafka import UsersListener, chain_spec, read_topic, store_count

pytestmark = pytest.mark.kafka

EVERYTHING = ComponentSpec(use="adql", name="everything", config={"expression": "ra >= 0"})


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        wanted = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(wanted, timeout=10)}
    finally:
        consumer.close()


def _session_worker_environment(controller: ControllerProcess, stage: str) -> dict[str, str]:
    for child in psutil.Process(controller.process.pid).children(recursive=True):
        try:
            if stage in child.cmdline() and "serve" in child.cmdline():
                return dict(child.environ())
        except psutil.NoSuchProcess:
            continue
    return {}


def _check_its_own_principal(
    controller: ControllerProcess, stage: str, users: UsersListener, spec: PipelineSpec
) -> dict[str, str]:
    """While the session runs: its worker connects as its principal, which sees only its topics."""
    environment: dict[str, str] = {}

    def found() -> bool:
        environment.update(_session_worker_environment(controller, stage))
        return IDENTITY_ENV in environment

    wait_until(found, 15, "the session's worker, run with its identity")
    identity = json.loads(Path(environment[IDENTITY_ENV]).read_text())
    assert identity["sasl.username"] == f"starling-u-ada.{stage}"
    assert identity["bootstrap.servers"] == users.bootstrap_servers
    admin = AdminClient(identity)
    visible = {t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")}
    assert visible == {spec.kafka.topic("filtered"), spec.kafka.dead_letter_topic}
    return identity


def _refused_login(identity: dict[str, str]) -> bool:
    try:
        AdminClient(identity).list_topics(timeout=5)
    except KafkaException:
        return True
    return False


def test_a_users_component_runs_beside_the_chain_from_its_start_to_its_end(
    kafka_bootstrap: str, kafka_users_listener: UsersListener, prefix: str, tmp_path: Path
) -> None:
    alerts = 12_000
    base = chain_spec(kafka_bootstrap, prefix, alerts)
    base = base.model_copy(
        update={"kafka": base.kafka.model_copy(update={"users": kafka_users_listener.settings()})}
    )
    spec = route_deliveries(base.with_kind("filters", [*base.filters, EVERYTHING]))
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    controller = ControllerProcess(pipeline, tmp_path)
    try:
        url, ada = controller.url, {**controller.user_token("ada"), "Accept": "application/json"}
        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 100.0})
        feeder.start()
        request = {
            "executable": {
                "kind": STARLING_COMPONENT,
                "component": "files",
                "config": {"directory": "ada-session", "formats": ["jsonl"]},
                "beside": "filter",
            },
            "schedule": {"requested": {"duration": "PT20S"}},
            "compute": {"kind": "simple", "cores": {"min": 1, "max": 1}, "memory": {"min": 1, "max": 1}},
        }
        request["compute"]["kind"] = (
            "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/compute/simple-compute-resource-1.0"
        )
        offerset = httpx.post(f"{url}/offersets", json=request, headers=ada).json()
        assert offerset["result"] == "YES", offerset
        offer = offerset["offers"][0]
        session = offer["meta"]["url"]
        accepted = httpx.post(
            session, json={"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}, headers=ada
        )
        assert accepted.json()["phase"] == "ACCEPTED"
        start = dt.datetime.fromisoformat(
            offer["schedule"]["available"]["start"].split("/")[0].replace("Z", "+00:00")
        )
        assert 55 <= (start - dt.datetime.now(dt.UTC)).total_seconds() <= 65  # a minute ahead
        phases: list[str] = []

        def completed() -> bool:
            phase = httpx.get(session, headers=ada).json()["phase"]
            if not phases or phases[-1] != phase:
                phases.append(phase)
            return phase in ("COMPLETED", "FAILED")

        stage = f"s-{offer['meta']['uuid'][:8]}"
        wait_until(lambda: completed() or phases[-1] == "RUNNING", 120, "the session to run")
        identity = _check_its_own_principal(controller, stage, kafka_users_listener, spec)
        wait_until(completed, 180, "the session to run and complete")
        # Its principal went with its stage: its identity file and its login.
        assert not Path(tmp_path / "run" / "identities" / f"{stage}.json").exists()
        assert _refused_login(identity)
        assert phases[-1] == "COMPLETED", httpx.get(session, headers=ada).json()
        assert "RUNNING" in phases
        stages = [
            s["name"] for s in httpx.get(f"{url}/pipeline", headers=controller.operator).json()["stages"]
        ]
        assert stages == ["ingest", "filter", "distribute"]  # its stage is gone
        feeder.join()
        wait_until(lambda: store_count(tmp_path) >= alerts, 240, "every alert stored")
        assert store_count(tmp_path) == alerts

        # What it took: the alerts the filter stage wrote while it ran, each once, a run of offsets with
        # no gap on each partition, ending where its group committed last.
        taken = [
            json.loads(line)["alert_id"]
            for line in (
                tmp_path / "sessions" / f"s-{offer['meta']['uuid'][:8]}" / "ada-session" / "everything.jsonl"
            )
            .read_text()
            .splitlines()
        ]
        assert len(taken) == len(set(taken)) > 100
        filtered = spec.kafka.topic("filtered")
        where: dict[int, tuple[int, int, float]] = {}
        decoder = AlertDecoder()
        for message in read_topic(kafka_bootstrap, filtered, alerts):
            envelope = decode_envelope(message.value(), decoder)
            where[envelope.alert.alert_id] = (
                message.partition(),
                message.offset(),
                message.timestamp()[1] / 1000,
            )
        by_partition: dict[int, list[int]] = defaultdict(list)
        for alert_id in taken:
            partition, offset, _ = where[alert_id]
            by_partition[partition].append(offset)
        group = spec.kafka.group(f"s-{offer['meta']['uuid'][:8]}")
        last = _committed(kafka_bootstrap, group, filtered, spec.kafka.partitions)
        for partition, offsets in by_partition.items():
            assert sorted(offsets) == list(range(min(offsets), last[partition])), partition
        # Written from its start on, and up to its end (and its removal).
        written = sorted(where[a][2] for a in taken)
        assert written[0] >= start.timestamp() - 1.0
        end = start.timestamp() + 20
        assert written[-1] <= end + 30
        # None of those written in its window, on a partition it read, was missed.
        missed = [
            a
            for a, (p, o, t) in where.items()
            if start.timestamp() + 3 <= t <= end - 3 and a not in set(taken)
        ]
        assert missed == []
    finally:
        controller.stop()
