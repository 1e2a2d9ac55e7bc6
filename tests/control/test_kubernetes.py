"""The Kubernetes side: manifests valid against the Kubernetes schemas, and the backend's API calls
checked against a Kubernetes API exchange (see kubernetes_replay.py: no API server can run here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client as k8s
from typer.testing import CliRunner

from starling.assembly import default_pipeline, input_source
from starling.cli.app import app
from starling.control.auth import TOKEN_ENV
from starling.control.backends.kubernetes import KubernetesBackend
from starling.core.spec import ComponentSpec, PipelineSpec, StageResources, StageSpec
from starling.deploy.kubernetes import DeploymentSettings, worker_deployment
from starling.deploy.sessions import ContainerRun
from starling.vo.execbroker.ledger import Capacity
from tests.support.kubernetes_replay import ReplayedKubernetesApi
from tests.support.paths import REPO

KUBERNETES_VERSION = "1.30.0"
EXCHANGE = REPO / "tests" / "support" / "kubernetes_exchange.json"


def _written_manifests(tmp_path: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        app,
        [
            "deploy",
            "kubernetes",
            "-o",
            str(tmp_path),
            "--bootstrap",
            "kafka-0.kafka:9092",
            "--namespace",
            "alerts",
        ],
    )
    assert result.exit_code == 0, result.output
    return [yaml.safe_load(p.read_text()) for p in sorted(tmp_path.glob("*.yaml"))]


def test_the_manifests_validate_against_the_kubernetes_schemas(tmp_path: Path) -> None:
    manifests = _written_manifests(tmp_path)
    kinds = [m["kind"] for m in manifests]
    assert kinds.count("Deployment") == 4  # three stages and the controller
    for manifest in manifests:
        if manifest["kind"] == "ServiceMonitor":
            continue  # a CRD of the Prometheus Operator: no schema in Kubernetes; checked below
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        assert manifest["metadata"].get("namespace", "alerts") == "alerts"

    # The check can fail: a misspelt field and a wrong type are refused.
    broken = json.loads(json.dumps(next(m for m in manifests if m["kind"] == "Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = json.loads(json.dumps(next(m for m in manifests if m["kind"] == "Deployment")))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_manifests_wire_probes_services_config_and_scrape(tmp_path: Path) -> None:
    manifests = _written_manifests(tmp_path)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for manifest in manifests:
        by_kind.setdefault(manifest["kind"], []).append(manifest)

    [pipeline_object] = [s for s in by_kind["Secret"] if s["metadata"]["name"] == "starling-pipeline"]
    pipeline = PipelineSpec.model_validate_json(pipeline_object["stringData"]["pipeline.json"])
    assert pipeline.kafka.bootstrap_servers == "kafka-0.kafka:9092"

    workers = [d for d in by_kind["Deployment"] if d["metadata"]["name"] != "starling-controller"]
    assert sorted(d["metadata"]["name"] for d in workers) == [
        "starling-distribute",
        "starling-filter",
        "starling-ingest",
    ]
    for deployment in by_kind["Deployment"]:
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        port_names = {p["name"] for p in container["ports"]}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
        assert "http" in port_names
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["requests"]["memory"]
        assert "--host" in container["args"]
        assert any(
            v["secret"]["secretName"] == "starling-pipeline" for v in pod["spec"]["volumes"] if "secret" in v
        )
        # The selector selects the pod template.
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    for deployment in workers:
        # The controller owns the worker replicas: kubectl apply must not reset them.
        assert "replicas" not in deployment["spec"]
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:2] == ["serve", deployment["metadata"]["name"].removeprefix("starling-")]

    # Every pod has a Service; the ServiceMonitor selects all of them on the port named http.
    monitor = by_kind["ServiceMonitor"][0]
    wanted = monitor["spec"]["selector"]["matchLabels"]
    services = by_kind["Service"]
    assert len(services) == 4
    for service in services:
        assert wanted.items() <= service["metadata"]["labels"].items()
        assert any(p["name"] == monitor["spec"]["endpoints"][0]["port"] for p in service["spec"]["ports"])
        assert any(
            service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in by_kind["Deployment"]
        )
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"

    # The controller may manage Deployments and their scale, and nothing beyond its namespace.
    rules = by_kind["Role"][0]["rules"]
    assert any("deployments/scale" in r["resources"] and "patch" in r["verbs"] for r in rules)
    # For sessions: the quota read, identity Secrets and NetworkPolicies written; no Secret read.
    assert any("resourcequotas" in r["resources"] and "list" in r["verbs"] for r in rules)
    assert any("networkpolicies" in r["resources"] and "create" in r["verbs"] for r in rules)
    assert not any("secrets" in r["resources"] and "get" in r["verbs"] for r in rules)
    assert (
        by_kind["RoleBinding"][0]["subjects"][0]["name"] == by_kind["ServiceAccount"][0]["metadata"]["name"]
    )
    secret = (tmp_path / next(p.name for p in tmp_path.glob("*-secret-*.yaml"))).stat()
    assert secret.st_mode & 0o077 == 0


def test_the_kubernetes_backend_makes_the_recorded_api_calls() -> None:
    settings = DeploymentSettings(namespace="starling")
    spec = default_pipeline(input_source([], 1))
    with ReplayedKubernetesApi(EXCHANGE) as api:
        backend = KubernetesBackend(
            settings, k8s.ApiClient(k8s.Configuration(host=api.url)), token="stl_test"
        )
        backend.start(spec, {"ingest": 1, "filter": 1, "distribute": 1}, version=3)
        backend.scale({"ingest": 3})
        workers = backend.workers("ingest")
        backend.write_spec(spec.model_copy(update={"batch_size": 250}), version=4)
        backend.scale({"ingest": 1})
        restarts = backend.restarts()
        backend.teardown()
        assert api.mismatches == []
        assert api.finished

    # The Deployments it created are the ones `starling deploy kubernetes` writes, with replicas.
    created = [
        r["body"] for r in api.requests if r["method"] == "POST" and r["path"].endswith("/deployments")
    ]
    assert [d["metadata"]["name"] for d in created] == ["starling-ingest", "starling-filter"]
    for body in created:
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
        stage = body["metadata"]["name"].removeprefix("starling-")
        assert body == json.loads(json.dumps(worker_deployment(stage, settings, 1)))
    replaced = [r["body"] for r in api.requests if r["method"] == "PUT"]
    assert json.loads(replaced[-1]["stringData"]["pipeline.json"])["batch_size"] == 250
    # The pipeline carries the controller's version of it: a pod reports it as the version it runs.
    [created_pipeline] = [
        r["body"] for r in api.requests if r["method"] == "POST" and r["path"].endswith("/secrets")
    ]
    assert json.loads(created_pipeline["stringData"]["pipeline.json"])["pipeline_version"] == 3
    assert json.loads(replaced[-1]["stringData"]["pipeline.json"])["pipeline_version"] == 4

    # The terminating pod is no longer a worker; the pending one is listed, not alive.
    assert [(w.name.rsplit("-", 1)[1], w.replica, w.alive) for w in workers] == [
        ("a9k3z", 0, True),
        ("c2x7q", 1, True),
        ("d4m8w", 2, False),
    ]
    assert workers[0].base_url == "http://10.244.2.7:8080"
    assert workers[2].base_url is None
    assert workers[0].headers == {"Authorization": "Bearer stl_test"}
    assert restarts == {
        "starling-ingest-7d9f8c6b5-c2x7q": 2,
        "starling-filter-7d9f8c6b5-f1l7r": 0,
        "starling-distribute-7d9f8c6b5-d1st0": 1,
    }


def test_a_client_that_departs_from_the_exchange_is_caught() -> None:
    """The played-back API is a real check: a wrong call is reported, not answered."""
    settings = DeploymentSettings(namespace="starling")
    with ReplayedKubernetesApi(EXCHANGE) as api:
        apps = k8s.AppsV1Api(k8s.ApiClient(k8s.Configuration(host=api.url)))
        with pytest.raises(k8s.exceptions.ApiException):
            apps.read_namespaced_deployment("starling-ingest", settings.namespace)
        assert api.mismatches
        assert "expected 'PUT'" in api.mismatches[0]


class _MissingDeployments:
    """AppsV1Api with no Deployment yet: what the backend creates is kept."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def read_namespaced_deployment(self, name: str, namespace: str) -> None:
        raise k8s.exceptions.ApiException(status=404)

    def create_namespaced_deployment(self, namespace: str, body: dict[str, Any]) -> None:
        self.created.append(body)


def test_the_backend_lets_distribute_roll_on_a_shared_store() -> None:
    """The controller creates the Deployments from the pipeline it runs: with PostgreSQL, distribute
    rolls and mounts the shared cutouts, like `starling deploy kubernetes` writes it."""
    settings = DeploymentSettings(namespace="starling")
    spec = default_pipeline(input_source([], 1))
    sinks = [
        s.model_copy(update={"config": {"path": "postgresql://starling@starling-postgres/starling"}})
        if s.use == "store"
        else s
        for s in spec.sinks
    ]
    spec = spec.with_kind("sinks", sinks)
    backend = KubernetesBackend(settings, k8s.ApiClient(), token="stl_test")
    apps = _MissingDeployments()
    backend.apps = apps  # type: ignore[assignment]
    backend.write_spec = lambda spec, version=None: None  # type: ignore[method-assign]
    backend.start(spec, {"ingest": 1, "filter": 1, "distribute": 3})

    distribute = next(d for d in apps.created if d["metadata"]["name"] == "starling-distribute")
    assert distribute == worker_deployment("distribute", settings, 3, spec)
    assert distribute["spec"]["replicas"] == 3
    assert distribute["spec"]["strategy"]["type"] == "RollingUpdate"
    volumes = distribute["spec"]["template"]["spec"]["volumes"]
    assert {"name": "cutouts", "persistentVolumeClaim": {"claimName": "starling-cutouts"}} in volumes
    kubernetes_validate.validate(distribute, KUBERNETES_VERSION, strict=True)
    # Without the pipeline (or with SQLite): one writer of the SQLite volume.
    assert worker_deployment("distribute", settings, 1)["spec"]["strategy"] == {"type": "Recreate"}


class _Apps(_MissingDeployments):
    """AppsV1Api that also records scale patches and deletions."""

    def __init__(self) -> None:
        super().__init__()
        self.scaled: list[tuple[str, int]] = []
        self.deleted: list[str] = []
        self.replaced: list[dict[str, Any]] = []

    def patch_namespaced_deployment_scale(
        self, name: str, namespace: str, body: dict[str, Any], **_: Any
    ) -> None:
        self.scaled.append((name, body["spec"]["replicas"]))

    def delete_namespaced_deployment(self, name: str, namespace: str) -> None:
        self.deleted.append(name)

    def replace_namespaced_deployment(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        if name not in [d["metadata"]["name"] for d in self.created]:
            raise k8s.exceptions.ApiException(status=404)
        self.replaced.append(body)


class _Core:
    def __init__(self) -> None:
        self.services: list[str] = []

    def replace_namespaced_secret(self, name: str, namespace: str, body: Any) -> None:
        self.secret = body

    def create_namespaced_service(self, namespace: str, body: dict[str, Any]) -> None:
        self.services.append(body["metadata"]["name"])

    def delete_namespaced_service(self, name: str, namespace: str) -> None:
        self.services.remove(name)


def test_a_stage_inserted_is_a_new_deployment_and_a_stage_removed_is_deleted() -> None:
    """Stages are data on Kubernetes too: the backend creates the Deployment of a stage the controller
    inserted (from the pipeline it last wrote) and deletes the one of a stage it removed."""
    settings = DeploymentSettings(namespace="starling")
    spec = default_pipeline(input_source([], 1))
    backend = KubernetesBackend(settings, k8s.ApiClient(), token="stl_test")
    apps, core = _Apps(), _Core()
    backend.apps, backend.core = apps, core  # type: ignore[assignment]
    backend.start(spec, {"ingest": 1, "filter": 1, "distribute": 1})
    assert [d["metadata"]["name"] for d in apps.created] == [
        "starling-ingest",
        "starling-filter",
        "starling-distribute",
    ]

    classify = StageSpec(name="classify", annotators=[ComponentSpec(use="lc-features")])
    inserted = spec.model_copy(update={"stages": [spec.stages[0], classify, *spec.stages[1:]]})
    backend.write_spec(inserted, version=2)
    backend.start_stages({"classify": 2, "filter": 1})
    made = apps.created[-1]
    assert made == worker_deployment("classify", settings, 2, inserted)
    kubernetes_validate.validate(made, KUBERNETES_VERSION, strict=True)
    assert core.services == ["starling-classify"]
    # The stage after it is made anew from the new pipeline (its role may have changed), at its replicas.
    assert apps.replaced == [worker_deployment("filter", settings, 1, inserted)]
    assert "classify" in backend.stages

    backend.remove_stage("classify")
    assert apps.deleted == ["starling-classify"]
    assert core.services == []
    assert "classify" not in backend.stages


SESSION_EXCHANGE = REPO / "tests" / "support" / "kubernetes_session_exchange.json"


def test_a_container_session_is_a_deployment_of_its_own_with_its_kafka_identity() -> None:
    """A user's container image on the kubernetes backend: the broker's capacity from the namespace's
    quotas, the session's identity Secret, its Deployment (checked against the Kubernetes schemas), and
    both deleted at its end, against a Kubernetes API exchange."""
    settings = DeploymentSettings(namespace="starling")
    identity = {
        "bootstrap.servers": "kafka-users.kafka:9094",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "starling-u-ada.s-1f2e3d4c",
        "sasl.password": "a-new-random-one",
    }
    run = ContainerRun(
        stage="s-1f2e3d4c",
        image="ghcr.io/ada/classifier:2.1",
        resources=StageResources(cores=2, memory_gib=3),
        reads="starling.filtered",
        writes="starling.user.ada.s-1f2e3d4c",
        group="starling.s-1f2e3d4c",
        command=["python", "-m", "classify"],
        environment={"MODEL": "rf-v3"},
        kafka_ports=(9094,),
    )
    with ReplayedKubernetesApi(SESSION_EXCHANGE) as api:
        backend = KubernetesBackend(
            settings, k8s.ApiClient(k8s.Configuration(host=api.url)), token="stl_test"
        )
        # Cores: 16 - 6.5 on limits, 12 - 4 on requests, and 4 - 1 on the quota that sets both; memory:
        # 64 - 20, 48 - 36 and 30 - 20 GiB. The least of each binds.
        assert backend.quota_capacity() == Capacity(cores=3, memory_gib=10)
        backend.set_identity(run.stage, identity)
        backend.start_container(run)
        assert backend.has_container(run.stage)
        backend.remove_container(run.stage)
        backend.set_identity(run.stage, None)
        backend.remove_container(run.stage)
        assert not backend.has_container(run.stage)
        assert api.mismatches == []
        assert api.finished

    [secret_body] = [r["body"] for r in api.requests if r["method"] == "POST" and "secrets" in r["path"]]
    kubernetes_validate.validate(secret_body, KUBERNETES_VERSION, strict=True)
    assert json.loads(secret_body["stringData"]["identity.json"]) == identity
    [deployment] = [r["body"] for r in api.requests if r["method"] == "POST" and "deployments" in r["path"]]
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == run.image
    assert container["command"] == ["python", "-m", "classify"]
    # What was offered is requested and enforced; the user's code runs with no privilege and no API token.
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "3072Mi"},
        "limits": {"cpu": "2", "memory": "3072Mi"},
    }
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["runAsUser"] == 65532
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["automountServiceAccountToken"] is False
    # Wired to its topics and to its own identity (never the pipeline's Secret or the control token).
    env = {e["name"]: e.get("value") or e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["STARLING_INPUT_TOPIC"] == "starling.filtered"
    assert env["STARLING_OUTPUT_TOPIC"] == "starling.user.ada.s-1f2e3d4c"
    assert env["STARLING_GROUP_ID"] == "starling.s-1f2e3d4c"
    assert env["MODEL"] == "rf-v3"
    assert env["KAFKA_SASL_PASSWORD"] == {"name": "starling-s-1f2e3d4c-identity", "key": "sasl.password"}
    secrets_used = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets_used == {"starling-s-1f2e3d4c-identity"}
    assert TOKEN_ENV not in env
    # Its network: out to the users' Kafka listener and DNS only; nothing in.
    [policy] = [r["body"] for r in api.requests if r["method"] == "PUT" and "networkpolicies" in r["path"]]
    kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    assert policy["spec"]["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["ingress"] == []
    ports = [port for rule in policy["spec"]["egress"] for port in rule["ports"]]
    assert {(p["port"], p["protocol"]) for p in ports} == {(9094, "TCP"), (53, "UDP"), (53, "TCP")}


def test_a_session_stage_of_starling_components_mounts_its_identity() -> None:
    settings = DeploymentSettings(namespace="starling")
    spec = default_pipeline(input_source([], 1))
    session = StageSpec(
        name="s-1f2e3d4c",
        beside="filter",
        filters=[ComponentSpec(use="lc-features")],
        resources=StageResources(cores=1, memory_gib=1),
        own_principal=True,
    )
    spec = spec.model_copy(update={"stages": [*spec.stages, session]})
    deployment = worker_deployment("s-1f2e3d4c", settings, 1, spec)
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {
        "name": "STARLING_KAFKA_IDENTITY_FILE",
        "value": "/etc/starling-identity/identity.json",
    } in container["env"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "identity", "secret": {"secretName": "starling-s-1f2e3d4c-identity"}} in volumes
    # A stage of the chain has no identity of its own.
    plain = worker_deployment("filter", settings, 1, spec)["spec"]["template"]["spec"]
    assert all(v["name"] != "identity" for v in plain["volumes"])
