"""The deployment files that cannot run here (no container engine): what they ask of Starling is
checked instead. Every command they run parses with the real CLI, every file they copy or mount
exists, the pipeline they mount is valid."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from starling.cli.app import app
from starling.core.spec import PipelineSpec
from tests.support.paths import REPO

ROOT = REPO


def _parses(args: list[str]) -> None:
    """The arguments name a Starling command and its options as the CLI defines them (not run)."""
    command: Any = typer.main.get_command(app)
    context = command.make_context("starling", list(args))
    while hasattr(command, "resolve_command"):  # a group: descend into the named subcommand
        pending = [*context._protected_args, *context.args]
        name, command, rest = command.resolve_command(context, pending)
        context = command.make_context(name, rest, parent=context)


def test_a_bad_command_fails_the_parse_check() -> None:
    with pytest.raises(Exception, match="No such option"):
        _parses(["serve", "ingest", "--no-such-option"])
    with pytest.raises(Exception, match="No such command"):
        _parses(["no-such-command"])


def test_the_dockerfile_copies_what_exists_and_runs_starling() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    copies = [
        shlex.split(line)[1:-1] for line in instructions if line.startswith("COPY ") and "--from" not in line
    ]
    assert copies
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
    assert 'ENTRYPOINT ["starling"]' in instructions
    assert any(line.startswith("USER ") and "root" not in line for line in instructions)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored
    assert "src" not in ignored


def test_the_compose_file_runs_real_commands_on_a_valid_pipeline() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kafka", "controller", "feeder"} <= services.keys()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / "deploy" / source).exists(), f"{name} mounts a missing {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in services
        if service.get("image", "").startswith("starling"):
            _parses([str(a) for a in service["command"]])
            assert service["environment"]["STARLING_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert services["controller"]["build"]["dockerfile"] == "Dockerfile"
    assert (ROOT / "deploy" / services["controller"]["build"]["context"] / "Dockerfile").exists()
    PipelineSpec.from_file(ROOT / "deploy" / "compose" / "pipeline.toml")


def test_the_kubernetes_manifests_run_real_commands(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["deploy", "kubernetes", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    deployments = [
        m
        for p in sorted(tmp_path.glob("*.yaml"))
        if (m := yaml.safe_load(p.read_text()))["kind"] == "Deployment"
    ]
    assert len(deployments) == 4
    for deployment in deployments:
        _parses(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
