"""The ``starling`` command, as a user runs it: real processes, no tracebacks on bad input."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

from tests.support.paths import REPO

STARLING = [sys.executable, "-m", "starling"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STARLING, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_run_with_no_input_replays_a_synthetic_night(tmp_path: Path) -> None:
    result = _run("run", "--alerts", "600", "--quiet", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "600 alerts decoded" in result.stdout
    assert "alerts/s" in result.stdout
    assert "rejected: none" in result.stdout
    assert (tmp_path / "out" / "starling.db").exists()
    assert (tmp_path / "out" / "matches" / "bright.jsonl").exists()


def test_synth_to_tar_gz_then_replay_it_with_a_bad_member(tmp_path: Path) -> None:
    made = _run("synth", "night.tar.gz", "--alerts", "120", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    with tarfile.open(tmp_path / "night.tar.gz") as archive:
        names = archive.getnames()
    assert len(names) == 120
    assert any(n.endswith(".avro") for n in names)
    assert any(n.endswith(".bin") for n in names)
    (tmp_path / "junk.avro").write_bytes(b"not avro at all")
    replayed = _run("run", "night.tar.gz", "junk.avro", "--quiet", "-o", "out", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert "121 messages in, 120 alerts decoded" in replayed.stdout
    assert "wrong magic byte 0x6e" in replayed.stdout
    assert (tmp_path / "out" / "dead-letters.jsonl").exists()


def test_run_on_the_real_samples(tmp_path: Path, samples: Path) -> None:
    result = _run(
        "run",
        str(samples / "ztf" / "alerts"),
        str(samples / "rubin" / "samples"),
        "--quiet",
        "-o",
        "out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "20 messages in, 20 alerts decoded" in result.stdout


def test_bad_input_gets_a_message_not_a_traceback(tmp_path: Path) -> None:
    missing = _run("run", "does-not-exist.avro", "--quiet", cwd=tmp_path)
    assert missing.returncode == 2
    assert "input not found: does-not-exist.avro" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout
    (tmp_path / "p.toml").write_text('[source]\nuse = "replay"\nconfig = { paths = 3 }\n')
    bad_config = _run("run", "--pipeline", "p.toml", "--quiet", cwd=tmp_path)
    assert bad_config.returncode == 2
    assert "replay.paths: Input should be a valid list" in bad_config.stderr
    assert "Traceback" not in bad_config.stderr


def test_components_lists_the_builtins(tmp_path: Path) -> None:
    result = _run("components", cwd=tmp_path)
    assert result.returncode == 0
    for name in ("replay", "synthetic", "history-summary", "threshold", "store", "files"):
        assert name in result.stdout


def test_the_annotated_example_pipeline_runs(tmp_path: Path) -> None:
    """examples/pipelines/annotated.toml: every built-in annotator and filters on their fields."""
    repo = REPO
    text = (
        (repo / "examples" / "pipelines" / "annotated.toml")
        .read_text()
        .replace("alerts = 5000", "alerts = 800")
    )
    pipeline = tmp_path / "annotated.toml"
    pipeline.write_text(text)
    ran = subprocess.run(
        [sys.executable, "-m", "starling", "run", "--pipeline", str(pipeline), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert "young-risers" in ran.stdout
    assert (tmp_path / "out" / "starling.db").exists()


def test_inputs_on_the_command_line_replace_the_pipeline_files_source(tmp_path: Path) -> None:
    made = _run("synth", "night", "--alerts", "40", "--surveys", "ztf", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    # The file's own source is a synthetic night of 500 alerts; the 40 files given must be read instead.
    (tmp_path / "p.toml").write_text(
        '[source]\nuse = "synthetic"\nconfig = { alerts = 500 }\n\n[[sinks]]\nuse = "store"\n'
    )
    result = _run("run", "--pipeline", "p.toml", "night", "--quiet", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "40 alerts decoded" in result.stdout
    without_inputs = _run("run", "--pipeline", "p.toml", "--quiet", "-o", "out2", cwd=tmp_path)
    assert "500 alerts decoded" in without_inputs.stdout
