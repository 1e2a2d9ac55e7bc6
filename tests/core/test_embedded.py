"""The embedded runtime: components by name, validated configs, and errors that never stop the stream."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from starling.alert.model import Alert
from starling.core.component import Annotator, Batch, ComponentConfig, Sink
from starling.core.deadletter import read_dead_letters
from starling.core.embedded import EmbeddedPipeline, RunSummary
from starling.core.registry import (
    available_components,
    build_component,
    register_component,
    unregister_component,
)
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.errors import ComponentNotFoundError, ConfigError
from starling.store.open import open_store
from tests.support.helpers import replay_spec, synthetic_messages, wait_until, write_messages
from tests.support.kafka import store_count
from tests.support.small_disk import small_disk


class _FailOnRubinConfig(ComponentConfig):
    pass


class FailOnRubin(Annotator[_FailOnRubinConfig]):
    """Raises whenever a batch holds a Rubin alert: a buggy plugin."""

    Config: ClassVar[type[ComponentConfig]] = _FailOnRubinConfig

    def annotate(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            if alert.survey == "rubin":
                raise ValueError(f"cannot handle {alert.alert_id}")
            alert.annotations[self.name] = {"ok": True}


class RefuseRubin(Sink[_FailOnRubinConfig]):
    """A sink that cannot write Rubin alerts: a buggy plugin, at the end of the chain."""

    Config: ClassVar[type[ComponentConfig]] = _FailOnRubinConfig

    def write(self, batch: Batch) -> None:
        for alert in batch.alerts:
            if alert.survey == "rubin":
                raise ValueError(f"cannot handle {alert.alert_id}")


class PanicOnRubin(Sink[_FailOnRubinConfig]):
    """Calls a Rust extension with what makes it panic, on Rubin alerts: a panic is a BaseException."""

    Config: ClassVar[type[ComponentConfig]] = _FailOnRubinConfig

    def write(self, batch: Batch) -> None:
        import astropy.units as u
        import cdshealpix
        from astropy.coordinates import Latitude, Longitude

        for alert in batch.alerts:
            if alert.survey == "rubin":
                cdshealpix.lonlat_to_healpix(Longitude([math.nan], u.deg), Latitude([math.nan], u.deg), 10)


class _CollectConfig(ComponentConfig):
    pass


class Collect(Sink[_CollectConfig]):
    seen: ClassVar[list[tuple[str, int]]] = []

    Config: ClassVar[type[ComponentConfig]] = _CollectConfig

    def write(self, batch: Batch) -> None:
        Collect.seen.extend(alert.key for alert in batch.alerts)


@pytest.fixture
def plugins() -> Iterator[None]:
    register_component("fail-on-rubin", FailOnRubin)
    register_component("refuse-rubin", RefuseRubin)
    register_component("panic-on-rubin", PanicOnRubin)
    register_component("collect", Collect)
    Collect.seen.clear()
    yield
    unregister_component("fail-on-rubin")
    unregister_component("refuse-rubin")
    unregister_component("panic-on-rubin")
    unregister_component("collect")


def test_builtin_components_are_found_through_entry_points() -> None:
    found = available_components()
    for name in ("replay", "synthetic", "history-summary", "threshold", "store", "files"):
        assert name in found, name


@pytest.mark.parametrize(
    ("sink", "reason"), [("refuse-rubin", "ValueError: cannot handle"), ("panic-on-rubin", "PanicException")]
)
def test_a_failing_sink_dead_letters_only_the_alerts_at_fault(
    tmp_path: Path, plugins: None, sink: str, reason: str
) -> None:
    messages = synthetic_messages(200, seed=2)
    paths = write_messages(tmp_path / "in", messages)
    spec = replay_spec(paths, sinks=[ComponentSpec(use=sink), ComponentSpec(use="collect")])
    summary = EmbeddedPipeline(spec, tmp_path / "out").run()
    rubin = sum(1 for origin, _ in messages if ":rubin:" in origin)
    assert 0 < rubin < len(messages)
    assert summary.stats.stages[sink].failed == rubin
    assert len(Collect.seen) == len(messages) - rubin
    assert {survey for survey, _ in Collect.seen} == {"ztf"}
    assert summary.dead_letter_path is not None
    letters = list(read_dead_letters(summary.dead_letter_path))
    assert len(letters) == rubin
    assert all(letter.stage == "sink" and reason in letter.reason for letter in letters)
    assert all(letter.payload[:1] == b"\x00" for letter in letters)  # the original Rubin bytes are kept


def test_a_failing_annotator_costs_an_alert_only_its_annotation(tmp_path: Path, plugins: None) -> None:
    messages = synthetic_messages(200, seed=2)
    paths = write_messages(tmp_path / "in", messages)
    spec = replay_spec(
        paths, annotators=[ComponentSpec(use="fail-on-rubin")], sinks=[ComponentSpec(use="collect")]
    )
    summary = EmbeddedPipeline(spec, tmp_path / "out").run()
    rubin = sum(1 for origin, _ in messages if ":rubin:" in origin)
    assert summary.stats.stages["fail-on-rubin"].failed == rubin
    assert len(Collect.seen) == len(messages)  # every alert went on
    assert summary.dead_letter_path is None
    failures = summary.stats.annotation_failures
    assert sum(failures.values()) == rubin
    assert all(key.startswith("fail-on-rubin: ValueError: cannot handle") for key in failures)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"bright\.max_mag: Input should be a valid number"):
        build_component("threshold", {"max_mag": "faint"}, "bright")
    with pytest.raises(ConfigError, match=r"bright\.max_magnitude: Extra inputs are not permitted"):
        build_component("threshold", {"max_magnitude": 18}, "bright")


def test_unknown_component_and_wrong_kind_are_refused() -> None:
    with pytest.raises(ComponentNotFoundError, match=r"no component named 'nope'.*installed: .*threshold"):
        build_component("nope", {})
    with pytest.raises(ConfigError, match="'threshold' is a filter, but it is used as a sink"):
        build_component("threshold", {}, expected_kind="sink")


def test_pipeline_from_file(tmp_path: Path) -> None:
    paths = write_messages(tmp_path / "in", synthetic_messages(50, seed=4))
    toml = tmp_path / "pipeline.toml"
    toml.write_text(
        f"""
batch_size = 16
[source]
use = "replay"
config = {{ paths = ["{paths[0].parent}"] }}
[[filters]]
use = "threshold"
name = "everything"
[[sinks]]
use = "store"
"""
    )
    summary = EmbeddedPipeline(PipelineSpec.from_file(toml), tmp_path / "out").run()
    assert summary.stats.alerts_decoded == 50
    assert summary.stats.stages["everything"].alerts_out == 50


def test_bad_pipeline_files_are_explained(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[source\nuse = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        PipelineSpec.from_file(broken)
    missing_source = tmp_path / "nosource.toml"
    missing_source.write_text("batch_size = 10\n")
    with pytest.raises(ConfigError, match=r"nosource\.toml\.source: Field required"):
        PipelineSpec.from_file(missing_source)
    twice = tmp_path / "twice.toml"
    twice.write_text(
        '[source]\nuse="synthetic"\n[[filters]]\nuse="threshold"\n[[filters]]\nuse="threshold"\n'
    )
    with pytest.raises(ConfigError, match="repeated: threshold"):
        PipelineSpec.from_file(twice)


def test_a_full_disk_holds_the_embedded_pipeline_until_space_is_freed(tmp_path: Path) -> None:
    """An outage is waited out (and shown), never turned into dead letters; then the run goes on."""
    messages = synthetic_messages(1500, seed=4)
    paths = write_messages(tmp_path / "in", messages)
    with small_disk(tmp_path / "disk", size_mib=24) as disk:
        store = ComponentSpec(use="store", config={"path": str(disk.path / "starling.db")})
        pipeline = EmbeddedPipeline(replay_spec(paths, sinks=[store], batch_size=50), tmp_path / "out")
        open_store(
            disk.path / "starling.db"
        ).close()  # the store exists (its schema made) before the disk fills
        disk.fill(leave_bytes=256 * 1024)
        outcome: list[RunSummary] = []
        runner = threading.Thread(target=lambda: outcome.append(pipeline.run()), daemon=True)
        runner.start()
        wait_until(lambda: pipeline.backoff.active, 120, "the pipeline to meet the full disk")
        assert "full" in pipeline.status()["outage"]["reason"]
        assert 0 < store_count(disk.path) < len(messages)
        disk.free()
        runner.join(timeout=120)
        assert outcome, "the run did not end once space was freed"
        assert store_count(disk.path) == len(messages)
    assert outcome[0].dead_letter_path is None
    assert pipeline.status()["outages_total"] == 1
    assert outcome[0].stats.stages["store"].alerts_in == len(messages)  # batches taken again count once


def test_a_running_pipeline_collects_cycles_seldom_and_gives_the_thresholds_back(tmp_path: Path) -> None:
    """While the pipeline runs, the collector's thresholds are a stage's (thousands of short-lived objects
    an alert); after it, the process has its own again."""
    import gc

    from starling.core.collector import STAGE_THRESHOLDS

    default = (700, 10, 10)
    gc.set_threshold(*default)
    during: list[tuple[int, ...]] = []
    try:
        paths = write_messages(tmp_path / "in", synthetic_messages(20, seed=3))
        EmbeddedPipeline(replay_spec(paths), tmp_path / "out").run(
            on_batch=lambda _: during.append(gc.get_threshold())
        )
        assert during
        assert set(during) == {STAGE_THRESHOLDS}
        assert gc.get_threshold() == default
    finally:
        gc.set_threshold(*default)
