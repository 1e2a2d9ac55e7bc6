"""Helpers the tests share: a synthetic stream in memory, and running a pipeline over files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.core.embedded import EmbeddedPipeline, RunSummary
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.store.base import TABLE_KEYS, TABLES
from starling.store.open import open_store
from starling.store.rows import SPAN_COLUMNS
from starling.synthetic.generator import SyntheticConfig, SyntheticNight


def synthetic_messages(alerts: int, **overrides: Any) -> list[tuple[str, bytes]]:
    config = SyntheticConfig(
        alerts=alerts, alerts_per_visit=overrides.pop("alerts_per_visit", 50), **overrides
    )
    return list(SyntheticNight(config))


def write_messages(folder: Path, messages: list[tuple[str, bytes]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (origin, payload) in enumerate(messages):
        suffix = "avro" if ":ztf:" in origin else "bin"
        path = folder / f"good-{index:05d}.{suffix}"
        path.write_bytes(payload)
        paths.append(path)
    return paths


def replay_spec(paths: list[Path], **extra: Any) -> PipelineSpec:
    return PipelineSpec(
        batch_size=extra.pop("batch_size", 64),
        source=ComponentSpec(use="replay", config={"paths": [str(p) for p in paths]}),
        annotators=extra.pop("annotators", [ComponentSpec(use="history-summary")]),
        filters=extra.pop(
            "filters", [ComponentSpec(use="threshold", name="bright", config={"max_mag": 19.0})]
        ),
        sinks=extra.pop("sinks", [ComponentSpec(use="store")]),
    )


def run_replay(paths: list[Path], output: Path, **extra: Any) -> RunSummary:
    return EmbeddedPipeline(replay_spec(paths, **extra), output).run()


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def dump_store(location: Path | str) -> dict[str, list[dict[str, object]]]:
    """Every row of every table, in key order: two stores (SQLite or PostgreSQL) hold the same rows iff
    their dumps are equal. The spans of stored history in ``objects`` are left out: they are the
    writer's bookkeeping, and which of two disjoint spans is tracked depends on arrival order; so is
    where an alert's cutouts are (the pack of the process that wrote them): compare their bytes with
    ``AlertStore.cutout``; and an alert's provenance, which says how it travelled (the stages of a chain
    over Kafka, with their versions; none in one process), not what it is."""
    store = open_store(location)
    try:
        dump = {table: store.query(f"SELECT * FROM {table} ORDER BY {TABLE_KEYS[table]}") for table in TABLES}
    finally:
        store.close()
    for row in dump["objects"]:
        for column in SPAN_COLUMNS:
            del row[column]
    for row in dump["alerts"]:
        del row["cutouts"]
        del row["provenance"]
    return dump


def synthetic_alerts(alerts: int, **overrides: Any) -> list[Alert]:
    """A synthetic night, decoded: ZTF and Rubin alerts with their histories."""
    decoder = AlertDecoder()
    return [
        alert
        for origin, payload in synthetic_messages(alerts, **{"cutouts": False, **overrides})
        for alert in decoder.decode(payload, origin)
    ]


def decode_samples(samples: Path) -> list[Alert]:
    """The real sample alerts, decoded afresh: every ZTF sample, then Rubin's fake alert of each schema."""
    decoder = AlertDecoder()
    found: list[Alert] = []
    for path in sorted((samples / "ztf" / "alerts").glob("*.avro")):
        found += decoder.decode(path.read_bytes(), path.name)
    for path in sorted((samples / "rubin" / "samples").glob("*/fakeAlert.avro")):
        found += decoder.decode(path.read_bytes(), path.name)
    return found
