"""Dead letters summarised, then run again once their cause is fixed: nothing refused is lost."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from typer.testing import CliRunner

from starling.alert.model import Alert
from starling.cli.app import app
from starling.core.component import ComponentConfig, Filter
from starling.core.registry import register_component
from tests.support.helpers import dump_store


class _FlakyConfig(ComponentConfig):
    pass


class Flaky(Filter[_FlakyConfig]):
    """Refuses every third alert until it is fixed: the test's stand-in for a bug fixed later. (A
    filter: an annotator's failure costs an alert only its annotation, never a dead letter.)"""

    Config: ClassVar[type[ComponentConfig]] = _FlakyConfig
    broken: ClassVar[bool] = True

    def evaluate(self, alerts: Sequence[Alert]) -> Sequence[bool]:
        for alert in alerts:
            if Flaky.broken and alert.alert_id % 3 == 0:
                raise RuntimeError(f"a bug met on {alert.alert_id}")
        return [True] * len(alerts)


def test_dead_letters_are_replayed_once_fixed(tmp_path: Path) -> None:
    register_component("test-flaky", Flaky)
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        """
batch_size = 100
[source]
use = "synthetic"
config = { alerts = 600, cutouts = false }
[[filters]]
use = "test-flaky"
[[sinks]]
use = "store"
"""
    )
    output = tmp_path / "out"
    runner = CliRunner()
    first = runner.invoke(app, ["run", "--pipeline", str(pipeline), "-o", str(output)])
    assert first.exit_code == 0, first.output
    stored = len(dump_store(output / "starling.db")["alerts"])
    refused = 600 - stored
    assert refused > 0
    shown = runner.invoke(app, ["deadletters", "summary", str(output / "dead-letters.jsonl")])
    assert f"{refused:,} dead letters" in shown.output
    assert "a bug" in shown.output

    Flaky.broken = False  # the fix
    try:
        again = runner.invoke(app, ["deadletters", "replay", "--pipeline", str(pipeline), "-o", str(output)])
    finally:
        Flaky.broken = True
    assert again.exit_code == 0, again.output
    assert f"{refused:,} replayed" in again.output
    assert "0 refused again" in again.output
    assert len(dump_store(output / "starling.db")["alerts"]) == 600
    assert not (output / "dead-letters.jsonl").exists()
    assert len(list(output.glob("dead-letters.*.replayed.jsonl"))) == 1
    nothing = runner.invoke(app, ["deadletters", "replay", "-o", str(output)])
    assert nothing.exit_code == 2
