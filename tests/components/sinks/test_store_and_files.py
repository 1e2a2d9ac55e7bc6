"""The file sink leaves matched alerts as JSON lines and as Avro that fastavro reads back."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro

from starling.core.spec import ComponentSpec
from tests.support.helpers import run_replay, synthetic_messages, write_messages


def test_matches_are_written_as_jsonl_and_avro(tmp_path: Path) -> None:
    paths = write_messages(tmp_path / "in", synthetic_messages(150, seed=8))
    files = ComponentSpec(use="files", config={"include_cutouts": True})
    summary = run_replay(paths, tmp_path / "out", sinks=[files])
    matched = summary.stats.stages["bright"].alerts_out
    assert matched > 0
    lines = [
        json.loads(line) for line in (tmp_path / "out" / "matches" / "bright.jsonl").read_text().splitlines()
    ]
    with (tmp_path / "out" / "matches" / "bright.avro").open("rb") as handle:
        records = list(fastavro.reader(handle))
    assert len(lines) == len(records) == matched
    assert all(line["mag"] < 19.0 for line in lines)
    assert [r["alert_id"] for r in records] == [line["alert_id"] for line in lines]
    assert set(records[0]["cutouts"]) == {"science", "template", "difference"}
    assert json.loads(records[0]["annotations_json"])["history-summary"]["n_detections"] >= 1
    assert len(records[0]["detections"]) >= 1


def test_a_second_run_appends_to_the_avro_file(tmp_path: Path) -> None:
    paths = write_messages(tmp_path / "in", synthetic_messages(80, seed=12))
    files = ComponentSpec(use="files", config={"formats": ["avro"]})
    first = run_replay(paths, tmp_path / "out", sinks=[files]).stats.stages["bright"].alerts_out
    second = run_replay(paths, tmp_path / "out", sinks=[files]).stats.stages["bright"].alerts_out
    with (tmp_path / "out" / "matches" / "bright.avro").open("rb") as handle:
        assert len(list(fastavro.reader(handle))) == first + second
    assert not (tmp_path / "out" / "matches" / "bright.jsonl").exists()
