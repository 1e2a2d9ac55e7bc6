"""A message that kills the worker process is dead-lettered after two crashes; the partition goes on.

The filter stage runs as a real process with a plugin that kills it (``os._exit``, as a segfault or an
out-of-memory kill would) when it meets one chosen alert. It is restarted each time it dies, as a
supervisor (the local backend, Kubernetes) would.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from starling.alert.decoder import AlertDecoder
from starling.core.stages import stage_layout
from starling.transport.kafka.clients import GroupLag
from starling.transport.kafka.envelope import decode_envelope
from starling.transport.kafka.feed import feed
from starling.transport.kafka.worker import StageWorker
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, read_topic

pytestmark = pytest.mark.kafka

ALERTS = 400
CRASHED = 17

_FILTER_PROCESS = f"""
import os, signal, sys
from pathlib import Path
from starling.core.component import ComponentConfig, Filter
from starling.core.registry import register_component
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.transport.kafka.worker import StageWorker

POISON = int(sys.argv[3])

class CrashOn(Filter[ComponentConfig]):
    Config = ComponentConfig

    def evaluate(self, alerts):
        if any(alert.alert_id == POISON for alert in alerts):
            os._exit({CRASHED})  # no exception, no clean-up: the process is gone
        return [True] * len(alerts)

register_component("test-crash-on", CrashOn)
spec = PipelineSpec.model_validate_json(Path(sys.argv[1]).read_text())
spec = spec.with_kind("filters", [ComponentSpec(use="test-crash-on", name="all")])
worker = StageWorker(spec, "filter", Path(sys.argv[2]))
signal.signal(signal.SIGTERM, lambda *_: worker.stop())
worker.run()
"""


def _ingest(spec_path: Path, tmp_path: Path, bootstrap: str, prefix: str) -> tuple[int, str]:
    """The stream fed and ingested; one alert of it chosen as the poison (its id, its origin)."""
    spec = chain_spec(bootstrap, prefix, ALERTS)
    spec_path.write_text(spec.model_dump_json())
    feed(spec)
    worker = StageWorker(spec, "ingest", tmp_path)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.stats.messages_in >= ALERTS, 120, "ingest")
    finally:
        worker.stop()
        thread.join(timeout=60)
    ingested = stage_layout(spec, "ingest").output_topic
    assert ingested is not None
    messages = read_topic(bootstrap, ingested, ALERTS)
    poison = decode_envelope(messages[ALERTS // 3].value(), AlertDecoder()).alert
    return poison.alert_id, poison.origin


def test_a_message_that_kills_the_worker_twice_is_dead_lettered(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    spec_path = tmp_path / "pipeline.json"
    poison_id, _ = _ingest(spec_path, tmp_path, kafka_bootstrap, prefix)
    spec = chain_spec(kafka_bootstrap, prefix, ALERTS)
    script = tmp_path / "filter_process.py"
    script.write_text(_FILTER_PROCESS)
    command = [sys.executable, str(script), str(spec_path), str(tmp_path), str(poison_id)]
    lag = GroupLag(spec.kafka, spec.kafka.group("filter"), stage_layout(spec, "filter").input_topics)
    crashes = 0
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 300
    try:
        while lag.read() > 0:
            assert time.monotonic() < deadline, f"the filter stage never got through ({crashes} crashes)"
            code = process.poll()
            if code is not None:
                assert code == CRASHED
                crashes += 1
                assert crashes <= 2, "the poison message was taken a third time"
                process = subprocess.Popen(command)  # the supervisor restarts it
            time.sleep(0.5)
    finally:
        lag.close()
        process.terminate()
        process.wait(timeout=60)
    assert crashes == 2

    letters = read_topic(kafka_bootstrap, spec.kafka.dead_letter_topic, 1, timeout_s=30)
    assert len(letters) == 1
    headers = dict(letters[0].headers())
    assert b"died 2 times" in headers["reason"]
    assert decode_envelope(letters[0].value(), AlertDecoder()).alert.alert_id == poison_id
    passed = read_topic(kafka_bootstrap, spec.kafka.topic("filtered"), ALERTS - 1)
    ids = [decode_envelope(m.value(), AlertDecoder()).alert.alert_id for m in passed]
    assert poison_id not in ids
    assert len(set(ids)) == ALERTS - 1  # every other alert went on (some twice: at least once)
