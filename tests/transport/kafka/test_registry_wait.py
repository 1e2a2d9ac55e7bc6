"""A schema registry that is down makes the ingest stage wait, not dead-letter good Rubin alerts."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from lsst.alert.packet import SchemaRegistry

from starling.alert.decoder import AlertDecoder
from starling.alert.schemas import ConfluentSchemaRegistry
from starling.transport.kafka.feed import feed
from starling.transport.kafka.worker import StageWorker
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec
from tests.support.registry_server import Registry

pytestmark = pytest.mark.kafka


def test_the_ingest_stage_waits_for_the_registry(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    alerts = 600
    spec = chain_spec(kafka_bootstrap, prefix, alerts, surveys=["rubin"])
    feed(spec)
    with socket.socket() as probe:  # a port nothing listens on, for now
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    registry = ConfluentSchemaRegistry(f"http://127.0.0.1:{port}", timeout_s=1)
    worker = StageWorker(spec, "ingest", tmp_path, AlertDecoder(registry))
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        # The registry is down: the worker waits and takes its batch again, and again.
        wait_until(lambda: (worker.backoff.status() or {}).get("attempts", 0) >= 3, 60, "three tries")
        assert "unreachable" in worker.status()["outage"]["reason"]
        assert worker.stats.alerts_decoded == 0
        assert len(worker.dead_letters) == 0
        schema = json.dumps(SchemaRegistry.all_schemas_from_filesystem().get_by_id(1100).definition)
        server = Registry({1100: schema}, port=port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            wait_until(lambda: worker.stats.alerts_decoded >= alerts, 90, "the stage to take the stream")
        finally:
            server.shutdown()
            server.server_close()
        assert worker.stats.alerts_decoded == alerts
        assert worker.stats.messages_in == alerts
        assert len(worker.dead_letters) == 0
    finally:
        worker.stop()
        runner.join(timeout=30)
