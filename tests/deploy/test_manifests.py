"""The deployment files that cannot run here (no container engine): what they ask of Starling is
checked instead. Every command they run parses with the real CLI, every file they copy or mount
exists, the pipeline they mount is valid; the Kubernetes manifests of each store (SQLite, the
in-cluster PostgreSQL, an external one) validate against the Kubernetes schemas and wire the
database, its password and the distribute stage's volumes as the module says."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from starling.cli.app import app
from starling.core.spec import PipelineSpec
from starling.store.location import store_is_shared
from tests.support.paths import REPO

ROOT = REPO
KUBERNETES_VERSION = "1.30.0"
IN_CLUSTER_URL = "postgresql://starling@starling-postgres:5432/alerts"


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
    assert {"kafka", "controller", "feeder", "web"} <= services.keys()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / "deploy" / source).exists(), f"{name} mounts a missing {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in services
        if service.get("image", "").startswith("starling"):
            _parses([str(a) for a in service["command"]])
            if service["command"][0] != "web":  # TAP reads the store only
                assert service["environment"]["STARLING_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert services["controller"]["build"]["dockerfile"] == "Dockerfile"
    assert (ROOT / "deploy" / services["controller"]["build"]["context"] / "Dockerfile").exists()
    PipelineSpec.from_file(ROOT / "deploy" / "compose" / "pipeline.toml")


def _dockerfile_instructions(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_postgres_image_has_every_extension_the_store_creates() -> None:
    instructions = _dockerfile_instructions(ROOT / "deploy" / "postgres" / "Dockerfile")
    assert instructions[0] == "FROM postgres:15-bookworm"
    installs = " ".join(instructions)
    migrations = ROOT / "src" / "starling" / "store" / "migrations" / "versions"
    created = {
        name.lower()
        for path in migrations.glob("*.py")
        for name in re.findall(r"CREATE EXTENSION (?:IF NOT EXISTS )?(\w+)", path.read_text(), re.IGNORECASE)
    }
    assert {"q3c", "pg_sphere"} <= created
    packages = {"q3c": "postgresql-15-q3c", "pg_sphere": "postgresql-15-pgsphere"}  # Debian's names
    for extension in created:
        assert packages[extension] in installs, extension
    assert "apt-get install" in installs


def test_the_compose_store_is_the_postgres_service() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    database = services["postgres"]
    build = ROOT / "deploy" / database["build"]["context"] / database["build"]["dockerfile"]
    assert build == ROOT / "deploy" / "postgres" / "Dockerfile"
    assert build.exists()
    assert database["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert any(v.split(":")[0] in compose["volumes"] for v in database["volumes"])
    environment = database["environment"]

    controller = services["controller"]
    assert controller["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert controller["environment"]["PGPASSWORD"] == environment["POSTGRES_PASSWORD"]
    assert environment["POSTGRES_PASSWORD"]

    spec = PipelineSpec.from_file(ROOT / "deploy" / "compose" / "pipeline.toml")
    assert store_is_shared(spec)
    (store,) = [s for s in spec.sinks if s.use == "store"]
    url = urlsplit(store.config["path"])
    assert url.hostname == "postgres"  # the service's name on the compose network
    assert url.port in (None, 5432)
    assert url.username == environment["POSTGRES_USER"]
    assert url.path.strip("/") == environment["POSTGRES_DB"]
    assert url.password is None  # the pipeline file is no place for it: $PGPASSWORD is


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


def _manifests_of(tmp_path: Path, store_path: str | None, *extra: str) -> tuple[list[dict[str, Any]], Path]:
    """``starling deploy kubernetes`` on a pipeline whose store sink writes ``store_path`` (None: the
    default pipeline, SQLite), validated against the Kubernetes schemas."""
    tmp_path.mkdir(exist_ok=True)
    pipeline = tmp_path / "pipeline.toml"
    args = ["deploy", "kubernetes", "-o", str(tmp_path / "out"), "--namespace", "alerts", *extra]
    if store_path is not None:
        pipeline.write_text(
            "[source]\nuse = 'synthetic'\n[[filters]]\nuse = 'threshold'\nname = 'bright'\n"
            f"[[sinks]]\nuse = 'store'\nconfig = {{ path = '{store_path}' }}\n[[sinks]]\nuse = 'files'\n"
        )
        args += ["--pipeline", str(pipeline)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifests = [yaml.safe_load(p.read_text()) for p in sorted((tmp_path / "out").glob("*.yaml"))]
    for manifest in manifests:
        if manifest["kind"] != "ServiceMonitor":  # a CRD: no schema in Kubernetes
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        assert manifest["metadata"].get("namespace", "alerts") == "alerts"
    return manifests, tmp_path / "out"


def _one(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def _names(manifests: list[dict[str, Any]], kind: str) -> set[str]:
    return {m["metadata"]["name"] for m in manifests if m["kind"] == kind}


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container.get("env", [])}


def _volumes(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}


def _mounts(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {m["mountPath"]: m["name"] for m in container["volumeMounts"]}


def test_with_sqlite_the_distribute_stage_is_one_writer_of_its_volume(tmp_path: Path) -> None:
    manifests, _ = _manifests_of(tmp_path, None)
    distribute = _one(manifests, "Deployment", "starling-distribute")
    assert distribute["spec"]["strategy"] == {"type": "Recreate"}
    assert _volumes(distribute)["data"]["persistentVolumeClaim"] == {"claimName": "starling-store"}
    claim = _one(manifests, "PersistentVolumeClaim", "starling-store")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "starling-cutouts" not in _names(manifests, "PersistentVolumeClaim")
    assert "StatefulSet" not in {m["kind"] for m in manifests}
    assert "starling-web" not in _names(manifests, "Deployment")  # the SQLite file is distribute's alone
    assert _names(manifests, "Secret") == {
        "starling-control-token",
        "starling-metrics-token",
        "starling-pipeline",
    }
    for deployment in (m for m in manifests if m["kind"] == "Deployment"):
        assert "PGPASSWORD" not in _env(deployment)
    for name in ("starling-ingest", "starling-filter"):
        assert _one(manifests, "Deployment", name)["spec"]["strategy"]["type"] == "RollingUpdate"


def test_with_the_in_cluster_postgres_distribute_rolls_and_shares_its_cutouts(tmp_path: Path) -> None:
    manifests, out = _manifests_of(tmp_path, IN_CLUSTER_URL)

    # distribute: rolls like the other stages; cutouts on the ReadWriteMany claim, the rest per pod.
    distribute = _one(manifests, "Deployment", "starling-distribute")
    assert distribute["spec"]["strategy"]["type"] == "RollingUpdate"
    assert distribute["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    volumes = _volumes(distribute)
    assert volumes["cutouts"]["persistentVolumeClaim"] == {"claimName": "starling-cutouts"}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert _mounts(distribute)["/var/lib/starling/cutouts"] == "cutouts"  # the sink's default directory
    assert _mounts(distribute)["/var/lib/starling"] == "data"  # its --output
    claim = _one(manifests, "PersistentVolumeClaim", "starling-cutouts")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert "starling-store" not in _names(manifests, "PersistentVolumeClaim")  # no SQLite file to hold

    # The database: a StatefulSet of one, behind its Service on 5432, ready when pg_isready says so.
    database = _one(manifests, "StatefulSet", "starling-postgres")
    service = _one(manifests, "Service", "starling-postgres")
    assert database["spec"]["replicas"] == 1
    assert database["spec"]["serviceName"] == service["metadata"]["name"]
    pod = database["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert database["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["port"] == 5432
    container = pod["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/starling-broker/postgres-q3c:15"
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert any(p["containerPort"] == 5432 for p in container["ports"])
    (template,) = database["spec"]["volumeClaimTemplates"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert any(m["name"] == template["metadata"]["name"] for m in container["volumeMounts"])
    env = _env(database)
    assert env["POSTGRES_USER"]["value"] == "starling"  # the URL's user and database
    assert env["POSTGRES_DB"]["value"] == "alerts"

    # The password: in the Secret only (a file only its owner reads); every user refers to it.
    secret = _one(manifests, "Secret", "starling-postgres")
    password = secret["stringData"]["password"]
    assert len(password) >= 32
    assert (next(out.glob("*-secret-starling-postgres.yaml")).stat().st_mode & 0o077) == 0
    reference = {"secretKeyRef": {"name": "starling-postgres", "key": "password"}}
    assert env["POSTGRES_PASSWORD"]["valueFrom"] == reference
    for name in ("starling-distribute", "starling-controller", "starling-web"):
        assert _env(_one(manifests, "Deployment", name))["PGPASSWORD"]["valueFrom"] == reference
    for name in ("starling-ingest", "starling-filter"):  # they never open the store
        assert "PGPASSWORD" not in _env(_one(manifests, "Deployment", name))
    pipeline = json.loads(_one(manifests, "Secret", "starling-pipeline")["stringData"]["pipeline.json"])
    stores = [s for stage in pipeline["stages"] for s in stage["sinks"] if s["use"] == "store"]
    assert [s["config"]["path"] for s in stores] == [IN_CLUSTER_URL]
    assert [m["kind"] for m in manifests if password in json.dumps(m)] == ["Secret"]

    # TAP (`starling web`) over the same database, its async jobs on a volume of its own.
    web = _one(manifests, "Deployment", "starling-web")
    args = web["spec"]["template"]["spec"]["containers"][0]["args"]
    _parses(args)
    assert args[args.index("--store") + 1] == IN_CLUSTER_URL
    assert web["spec"]["strategy"] == {"type": "Recreate"}
    assert _volumes(web)["jobs"]["persistentVolumeClaim"] == {"claimName": "starling-tap-jobs"}
    assert _one(manifests, "Service", "starling-web")["spec"]["ports"][0]["port"] == 8770
    # The cutouts the distribute pods write, read-only at the same path, for the portal's stamps.
    assert _volumes(web)["cutouts"]["persistentVolumeClaim"] == {
        "claimName": "starling-cutouts",
        "readOnly": True,
    }
    assert _mounts(web)["/var/lib/starling/cutouts"] == "cutouts"
    assert args[args.index("--cutouts") + 1] == "/var/lib/starling/cutouts"

    # A new password at each run, like the control token.
    again, _ = _manifests_of(tmp_path / "again", IN_CLUSTER_URL)
    assert _one(again, "Secret", "starling-postgres")["stringData"]["password"] != password


def test_with_an_external_postgres_nothing_is_run_for_it(tmp_path: Path) -> None:
    manifests, _ = _manifests_of(
        tmp_path, "postgres://broker@db.example.org/starling", "--image", "registry.local/starling:1"
    )
    distribute = _one(manifests, "Deployment", "starling-distribute")
    assert distribute["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "starling-cutouts" in _names(manifests, "PersistentVolumeClaim")
    assert "StatefulSet" not in {m["kind"] for m in manifests}
    assert "starling-postgres" not in _names(manifests, "Secret") | _names(manifests, "Service")
    # The operator's Secret, when the database wants a password; the pods start without it.
    reference = _env(distribute)["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "starling-postgres", "key": "password", "optional": True}


@pytest.mark.parametrize(
    ("store_path", "complaint"),
    [
        ("postgresql://starling:hunter2@starling-postgres/starling", "password"),
        ("postgresql://starling:hunter2@db.example.org/starling", "password"),
        ("postgresql://starling-postgres/starling", "user"),
        ("postgresql://starling@starling-postgres:6543/starling", "5432"),
    ],
)
def test_a_store_url_the_manifests_cannot_carry_is_refused(
    tmp_path: Path, store_path: str, complaint: str
) -> None:
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        f"[source]\nuse = 'synthetic'\n[[sinks]]\nuse = 'store'\nconfig = {{ path = '{store_path}' }}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["deploy", "kubernetes", "-o", str(out), "--pipeline", str(pipeline)])
    assert result.exit_code == 2
    assert complaint in result.output
    assert "hunter2" not in result.output
    assert not out.exists() or not list(out.iterdir())


def test_a_webhook_secret_is_in_no_object_but_a_secret(tmp_path: Path) -> None:
    """A canary secret planted in a filter's webhook output: of everything ``starling deploy`` writes, only
    Secrets hold it (the pipeline is one, mounted by the pods): no ConfigMap, Deployment or output line."""
    canary = "canary-7d1c5e0a9b8f4e3d2c1b"
    pipeline = tmp_path / "pipeline.toml"
    hook = f"{{ type = 'webhook', url = 'https://hooks.example.org/ada', secret = '{canary}' }}"
    pipeline.write_text(
        "[source]\nuse = 'synthetic'\n[[filters]]\nuse = 'adql'\nname = 'bright'\n"
        f"config = {{ expression = 'mag < 18', outputs = [{hook}] }}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["deploy", "kubernetes", "-o", str(out), "--pipeline", str(pipeline)])
    assert result.exit_code == 0, result.output
    assert canary not in result.output
    holding = {}
    for path in sorted(out.glob("*.yaml")):
        if canary in path.read_text():
            manifest = yaml.safe_load(path.read_text())
            holding[manifest["metadata"]["name"]] = manifest["kind"]
            assert path.stat().st_mode & 0o077 == 0, path  # written for its owner's eyes only
    assert holding == {"starling-pipeline": "Secret"}


def test_a_deployment_runs_each_stage_the_pipeline_lists(tmp_path: Path) -> None:
    """Stages are data: four stages are four Deployments, and the store's volume goes with the stage that
    holds the sinks, whatever its name."""
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        "[source]\nuse = 'synthetic'\n"
        "[[stages]]\nname = 'ingest'\nannotators = [{ use = 'history-summary' }]\n"
        "[[stages]]\nname = 'classify'\nannotators = [{ use = 'lc-features' }]\n"
        "[[stages]]\nname = 'judge'\nfilters = [{ use = 'threshold', name = 'bright' }]\n"
        "sinks = [{ use = 'store' }]\n"
    )
    result = CliRunner().invoke(
        app, ["deploy", "kubernetes", "-o", str(tmp_path / "out"), "--pipeline", str(pipeline)]
    )
    assert result.exit_code == 0, result.output
    manifests = [yaml.safe_load(p.read_text()) for p in sorted((tmp_path / "out").glob("*.yaml"))]
    for manifest in manifests:
        if manifest["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert _names(manifests, "Deployment") == {
        "starling-ingest",
        "starling-classify",
        "starling-judge",
        "starling-controller",
    }
    judge = _one(manifests, "Deployment", "starling-judge")
    assert _volumes(judge)["data"]["persistentVolumeClaim"] == {"claimName": "starling-store"}
    assert judge["spec"]["strategy"] == {"type": "Recreate"}
    assert _volumes(_one(manifests, "Deployment", "starling-classify"))["data"] == {
        "name": "data",
        "emptyDir": {},
    }
    args = _one(manifests, "Deployment", "starling-classify")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert "classify" in args
    _parses(args)
