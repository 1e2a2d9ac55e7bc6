"""A Python filter plugin, installed as an operator would (a package with entry points), runs in a
pipeline next to the built-in components."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def test_an_installed_plugin_filter_is_found_and_runs(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO / "examples" / "plugin"),
        ],
        check=True,
        capture_output=True,
    )
    environment = {**os.environ, "PYTHONPATH": str(target)}
    listed = subprocess.run(
        [sys.executable, "-m", "starling", "components"],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    assert "example-rising" in listed.stdout
    assert "example-galactic" in listed.stdout
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        """
batch_size = 500
[source]
use = "synthetic"
config = { alerts = 3000, cutouts = false }
[[annotators]]
use = "example-galactic"
[[filters]]
use = "adql"
name = "high-latitude"
config = { expression = "ABS(example_galactic.b_deg) > 30" }
[[filters]]
use = "example-rising"
name = "rising"
config = { min_rate_mag_per_day = 0.02, days = 30, min_points = 2 }
[[sinks]]
use = "files"
config = { formats = ["jsonl"] }
"""
    )
    ran = subprocess.run(
        [sys.executable, "-m", "starling", "run", "--pipeline", str(pipeline), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    matched = (tmp_path / "out" / "matches" / "rising.jsonl").read_text().splitlines()
    assert 0 < len(matched) < 3000
    for line in matched[:50]:  # each match really brightened in its band
        record = json.loads(line)
        same_band = [d for d in record["detections"] if d["band"] == record["band"] and d["mag"] is not None]
        assert len(same_band) >= 2
    high = [
        json.loads(line)
        for line in (tmp_path / "out" / "matches" / "high-latitude.jsonl").read_text().splitlines()
    ]
    assert high
    assert all(abs(r["annotations"]["example-galactic"]["b_deg"]) > 30 for r in high)
    # A bad config is refused with the field named, not a traceback.
    pipeline.write_text(pipeline.read_text().replace("min_points = 2", "min_points = 1"))
    refused = subprocess.run(
        [sys.executable, "-m", "starling", "run", "--pipeline", str(pipeline), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert refused.returncode == 2
    assert "min_points" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_example_plugins_own_tests_pass_with_starling_testing() -> None:
    """The example package's tests use ``starling.testing`` (no Kafka, no install): run them as its
    author would, from its own folder."""
    plugin = REPO / "examples" / "plugin"
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=plugin,
        env={**os.environ, "PYTHONPATH": str(plugin / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "4 passed" in ran.stdout
