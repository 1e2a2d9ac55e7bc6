"""``starling.testing``: the helpers plugin authors get, on the real samples and a synthetic night."""

from __future__ import annotations

from pathlib import Path

import pytest

from starling.core.spec import ComponentSpec
from starling.errors import ConfigError
from starling.testing import run_components, sample_messages, synthetic_messages


def test_real_samples_run_through_a_built_in_annotator_and_are_collected(samples: Path) -> None:
    folder = samples / "ztf" / "alerts"
    messages = sample_messages(folder)
    assert len(messages) == len(list(folder.glob("*.avro")))
    result = run_components([ComponentSpec(use="history-summary")], messages)
    assert result.dead_letters == {}
    assert len(result.alerts) == len(messages)
    assert all("history-summary" in a.annotations for a in result.alerts)


def test_matches_are_collected_per_filter_and_sinks_under_test_run_too(tmp_path: Path) -> None:
    bright = ComponentSpec(use="threshold", name="bright", config={"max_mag": 19.0})
    files = ComponentSpec(use="files", config={"formats": ["jsonl"]})
    result = run_components([bright, files], synthetic_messages(200), output_dir=tmp_path)
    expected = [a.alert_id for a in result.alerts if a.mag is not None and a.mag < 19.0]
    assert 0 < len(expected) < 200
    assert [a.alert_id for a in result.matches["bright"]] == expected
    written = (tmp_path / "matches" / "bright.jsonl").read_text().splitlines()
    assert len(written) == len(expected)


def test_a_malformed_message_becomes_a_dead_letter_not_an_error() -> None:
    messages = synthetic_messages(20, surveys=["ztf"])
    broken = type(messages[0])(b"Obj\x01not really avro", "broken")
    result = run_components([], [*messages, broken])
    assert len(result.alerts) == 20
    assert sum(result.dead_letters.values()) == 1


def test_a_source_or_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a source"):
        run_components([ComponentSpec(use="synthetic")], [])
    with pytest.raises(ConfigError, match="no samples folder"):
        sample_messages(tmp_path / "absent")


def test_every_real_world_alert_runs_through_the_annotators_with_no_dead_letter(samples: Path) -> None:
    """ZTF 1.8 to 4.02 (files and a nightly archive) and real LSSTCam alerts, as a plugin author's tests
    would feed them."""
    messages = sample_messages(samples / "realworld")
    annotators = [ComponentSpec(use=name) for name in ("history-summary", "solar-system", "lc-features")]
    result = run_components(annotators, messages)
    assert result.dead_letters == {}
    assert len(result.alerts) == len(messages)
    assert {a.survey for a in result.alerts} == {"ztf", "rubin"}
    assert all("history-summary" in a.annotations for a in result.alerts)
