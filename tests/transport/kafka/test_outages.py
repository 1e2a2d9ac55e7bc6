"""Outages over the real Kafka: a full disk and a locked store hold the stage, they never cost alerts.

While its store cannot be written the distribute stage dead-letters nothing and commits nothing; it
shows the outage in its status, backs off, and once the store can be written again it takes the
stream up where it stopped. Every alert ends in the store once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from starling.control.api.metrics import runtime_metrics
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.store.sqlite import SQLiteStore
from starling.transport.kafka.feed import feed
from starling.transport.kafka.worker import StageWorker
from tests.support.helpers import wait_until
from tests.support.kafka import chain_spec, read_topic, store_count
from tests.support.small_disk import small_disk

pytestmark = pytest.mark.kafka

ALERTS = 1000


@contextmanager
def running(worker: StageWorker) -> Iterator[StageWorker]:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=60)


def _filtered_stream(
    bootstrap: str, prefix: str, work: Path, store: Path, lock_timeout_s: float
) -> PipelineSpec:
    """The stream fed, ingested and filtered: what the distribute stage has to store."""
    spec = chain_spec(bootstrap, prefix, ALERTS).with_kind(
        "sinks", [ComponentSpec(use="store", config={"path": str(store), "lock_timeout_s": lock_timeout_s})]
    )
    feed(spec)
    for stage in ("ingest", "filter"):
        with running(StageWorker(spec, stage, work)) as worker:
            wait_until(lambda w=worker: w.stats.messages_in >= ALERTS, 120, stage)
    return spec.model_copy(update={"batch_size": 50})  # many batches, so the outage comes mid-stream


def _assert_nothing_lost(worker: StageWorker, spec: PipelineSpec, store_dir: Path) -> None:
    assert len(worker.dead_letters) == 0
    assert worker.status()["outages_total"] >= 1
    assert worker.status()["outage"] is None
    assert b'starling_outage{stage="distribute"} 0.0' in runtime_metrics(worker)
    assert store_count(store_dir) == ALERTS
    assert store_count(store_dir, "annotations") == ALERTS  # history-summary, once per alert
    letters = read_topic(spec.kafka.bootstrap_servers, spec.kafka.dead_letter_topic, 0, timeout_s=5)
    assert letters == []


def test_a_full_disk_holds_the_stage_until_space_is_freed(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk", size_mib=24) as disk:
        spec = _filtered_stream(kafka_bootstrap, prefix, tmp_path, disk.path / "starling.db", 60.0)
        SQLiteStore(
            disk.path / "starling.db"
        ).close()  # the store exists (its schema made) before the disk fills
        disk.fill(leave_bytes=256 * 1024)
        with running(StageWorker(spec, "distribute", tmp_path)) as worker:
            wait_until(lambda: worker.backoff.active, 120, "the stage to meet the full disk")
            outage = worker.status()["outage"]
            assert "full" in outage["reason"], outage
            assert b'starling_outage{stage="distribute"} 1.0' in runtime_metrics(worker)
            assert 0 < store_count(disk.path) < ALERTS  # it came mid-stream
            assert len(worker.dead_letters) == 0
            disk.free()
            wait_until(lambda: store_count(disk.path) == ALERTS, 120, "the stage to take the stream up again")
            wait_until(lambda: not worker.backoff.active, 30, "the outage to end")
        _assert_nothing_lost(worker, spec, disk.path)


def test_a_locked_store_holds_the_stage_until_the_lock_is_released(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    store = tmp_path / "store" / "starling.db"
    spec = _filtered_stream(kafka_bootstrap, prefix, tmp_path, store, lock_timeout_s=0.5)
    SQLiteStore(store).close()  # the tables, so that another writer can lock them
    with running(StageWorker(spec, "distribute", tmp_path)) as worker:
        wait_until(lambda: store_count(store.parent) >= 100, 120, "the first batches to be stored")
        holder = sqlite3.connect(store, timeout=30, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another writer takes the store and keeps it
        try:
            wait_until(lambda: worker.backoff.active, 60, "the stage to meet the lock")
            assert "locked" in worker.status()["outage"]["reason"]
            held_at = worker.stats.stages["store"].alerts_out
            wait_until(lambda: worker.backoff.status()["attempts"] >= 2, 30, "a second try")  # type: ignore[index]
            assert (
                worker.stats.stages["store"].alerts_out == held_at
            )  # a batch taken again is not counted twice
            assert len(worker.dead_letters) == 0
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store_count(store.parent) < ALERTS
        wait_until(lambda: store_count(store.parent) == ALERTS, 120, "the stage to take the stream up again")
        wait_until(lambda: not worker.backoff.active, 30, "the outage to end")
    _assert_nothing_lost(worker, spec, store.parent)
