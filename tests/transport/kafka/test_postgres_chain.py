"""The three-process chain over a real Kafka, storing into a real PostgreSQL: the distribute stage with one
and with two replicas, one of them killed (SIGKILL) mid-stream and started again. The store must hold
exactly the rows the same night makes in one embedded process on SQLite: nothing lost, nothing twice."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from starling.alert.model import Cutout
from starling.control.backends.processes import LocalChain
from starling.core.embedded import EmbeddedPipeline
from starling.core.spec import ComponentSpec
from starling.store.open import open_store
from starling.transport.kafka.feed import feed
from tests.support.helpers import dump_store, wait_until
from tests.support.kafka import chain_spec

pytestmark = pytest.mark.kafka


def _count(url: str, table: str = "alerts") -> int:
    store = open_store(url)
    try:
        return store.count(table)
    finally:
        store.close()


@pytest.mark.parametrize("replicas", [1, 2])
def test_distribute_replicas_on_postgres_store_every_alert_once(
    replicas: int, kafka_bootstrap: str, prefix: str, postgres_url: str, tmp_path: Path
) -> None:
    alerts = 3000
    spec = chain_spec(kafka_bootstrap, prefix, alerts, objects=400)
    spec = spec.with_kind("sinks", [ComponentSpec(use="store", config={"path": postgres_url})])
    chain = LocalChain(spec, tmp_path / "chain", replicas={"distribute": replicas})
    try:
        chain.start()
        feeder = threading.Thread(target=feed, kwargs={"spec": spec, "rate_per_s": 600.0})
        feeder.start()
        wait_until(lambda: _count(postgres_url) > 600, 120, "a first part of the stream to be stored")
        chain.kill("distribute", replica=replicas - 1, sig=signal.SIGKILL)
        time.sleep(1.0)
        chain.start_worker("distribute", replicas - 1)
        feeder.join(timeout=120)
        wait_until(lambda: _count(postgres_url) >= alerts, 240, "every alert in the store")
        wait_until(
            lambda: all(s["lag"] == 0 for s in chain.statuses("distribute")), 120, "distribute to catch up"
        )
        assert all(worker.alive for worker in chain.workers)
    finally:
        chain.stop()
    # The same night in one process on SQLite: the reference rows.
    reference = spec.with_kind("sinks", [ComponentSpec(use="store")])
    EmbeddedPipeline(reference, tmp_path / "reference").run()
    assert dump_store(postgres_url) == dump_store(tmp_path / "reference" / "starling.db")
    store = open_store(postgres_url, cutouts=tmp_path / "chain" / "cutouts")
    reference_store = open_store(
        tmp_path / "reference" / "starling.db", cutouts=tmp_path / "reference" / "cutouts"
    )
    try:
        stored = store.query("SELECT survey, alert_id FROM alerts")
        assert len(stored) == alerts
        for row in stored[::10]:
            for role in ("science", "template", "difference"):
                # The synthetic night gzips its stamps anew each time it is made: the gzip headers' times
                # differ, the FITS inside may not.
                key = (row["survey"], row["alert_id"], role)
                assert (
                    Cutout(role, store.cutout(*key)).fits_bytes
                    == Cutout(role, reference_store.cutout(*key)).fits_bytes
                )
    finally:
        store.close()
        reference_store.close()
