"""The Kubernetes objects of a Starling deployment, as plain dicts (the API's JSON).

One generator for two users: ``starling deploy kubernetes`` writes them as YAML for ``kubectl apply``,
and the controller's ``kubernetes`` backend creates the workers' Deployments from the very same
functions, so what the operator reviews is what the controller makes.

The layout:

- a ConfigMap with the pipeline (``pipeline.json``), mounted by every pod;
- a Secret with the control token the workers' control APIs ask for (the controller holds it too);
- one Deployment per stage (``starling-ingest``, ``-filter``, ``-distribute``), one container each:
  ``starling serve <stage>``, probes on the control API's ``/health`` (liveness) and ``/ready``
  (readiness), resource requests, a grace period long enough to drain a batch (SIGTERM drains). The
  worker Deployments carry no ``replicas``: the controller owns that number, and ``kubectl apply``
  must not reset it;
- a Service per stage (so Prometheus finds the pods) and a ServiceMonitor scraping ``/metrics``;
- the controller: a Deployment (one replica, ``Recreate``: its state is a SQLite file on a volume),
  its Service, PersistentVolumeClaim, ServiceAccount, and the Role that lets it manage Deployments.

The distribute stage depends on where the pipeline's ``store`` sink writes (its ``path``):

- SQLite (the default): a file on the ``starling-store`` claim (ReadWriteOnce), with the rest of the
  stage's output. One writer: the Deployment is ``Recreate`` (the old pod is gone before the new one
  opens the file), and it runs one replica (nothing enforces that: a second one would share the
  file, or wait for a volume another node holds).
- PostgreSQL (``postgresql://`` or ``postgres://``, :func:`starling.store.location.store_is_shared`):
  every replica writes the same database, so distribute rolls like the other stages and scales out.
  Its cutout files (the sink's ``cutouts`` directory) go to the ``starling-cutouts`` claim,
  ReadWriteMany (a storage class that offers it: NFS, CephFS, EFS, Filestore...), mounted by every
  replica; the rest of its output directory is per replica and lives as long as the pod
  (``emptyDir``), since files that one process appends (the ``files`` sink's, a webhook queue) must
  not be shared by several. The URL names
  no password: the distribute pods and the controller (whose try-filter reads the store) get
  ``PGPASSWORD``, which libpq reads, from the ``starling-postgres`` Secret (key ``password``).

  Which database is the URL's choice, so the pipeline stays the one source of truth: a host of
  ``starling-postgres`` (the Service's name, bare or namespace-qualified) asks for the database these
  manifests run in the cluster: a StatefulSet (one replica, its volume from a claim template of
  ``store_storage``, image ``postgres_image``: PostgreSQL with the q3c extension the store's schema
  needs, see deploy/postgres/Dockerfile), its headless Service on 5432, and the Secret with a new
  password (its user and database are the URL's). Any other host is a database run elsewhere: nothing
  is made for it, and the Secret is the operator's to create when the database asks for a password
  (the pods start without it).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from starling.components.sinks.store import StoreSinkConfig
from starling.core.spec import PipelineSpec
from starling.core.stages import STAGES, StageName
from starling.errors import ConfigError
from starling.store.location import is_postgres, shown_location, store_is_shared

Manifest = dict[str, Any]

APP = "starling"
WORKER_PORT = 8080
CONTROLLER_PORT = 8765
PIPELINE_CONFIGMAP = "starling-pipeline"
TOKEN_SECRET = "starling-control-token"
POSTGRES = "starling-postgres"  # the in-cluster database's StatefulSet, Service and Secret
POSTGRES_PORT = 5432
CUTOUTS_CLAIM = "starling-cutouts"
CONFIG_DIR = "/etc/starling"
DATA_DIR = "/var/lib/starling"
# A batch is drained within this; the pod's grace period leaves room for the producer's flush.
DRAIN_GRACE_S = 60


class DeploymentSettings(BaseModel):
    namespace: str = Field("starling", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    image: str = Field("ghcr.io/starling-broker/starling:0.1.0", min_length=1)
    worker_cpu: str = "500m"
    worker_memory: str = "512Mi"
    worker_memory_limit: str = "1Gi"
    controller_storage: str = "1Gi"
    # The store's volume: the SQLite file's claim, or the in-cluster PostgreSQL's.
    store_storage: str = "20Gi"
    # With PostgreSQL: the cutouts' ReadWriteMany claim (None: the cluster's default storage class).
    cutouts_storage: str = "50Gi"
    cutouts_storage_class: str | None = None
    postgres_image: str = Field("ghcr.io/starling-broker/postgres-q3c:15", min_length=1)
    postgres_cpu: str = "1"
    postgres_memory: str = "2Gi"


def deployment_name(stage: StageName | str) -> str:
    return f"{APP}-{stage}"


def match_labels(component: str) -> dict[str, str]:
    """The labels that select one component's pods."""
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component}


def labels(component: str) -> dict[str, str]:
    return {**match_labels(component), "app.kubernetes.io/part-of": APP}


def selector(component: str) -> str:
    """``match_labels`` as the API's ``labelSelector`` query wants it."""
    return ",".join(f"{k}={v}" for k, v in match_labels(component).items())


@dataclass(frozen=True)
class StoreLayout:
    """What the pipeline's store asks of the cluster (see the module note)."""

    shared: bool = False  # PostgreSQL: any number of distribute replicas
    in_cluster: bool = False  # the database is starling-postgres, run by these manifests
    user: str = ""
    database: str = ""
    cutouts: str | None = None  # the distribute pods' cutouts directory (shared only; None: none kept)


def store_layout(spec: PipelineSpec | None) -> StoreLayout:
    """The layout of ``spec``'s store; None (a caller that has no pipeline at hand) is SQLite's."""
    if spec is None or not store_is_shared(spec):
        return StoreLayout()
    configs = [StoreSinkConfig.model_validate(s.config) for s in spec.sinks if s.use == "store"]
    url = urlsplit(configs[0].path)
    in_cluster = (url.hostname or "").split(".")[0] == POSTGRES
    cutouts = configs[0].cutouts
    return StoreLayout(
        shared=True,
        in_cluster=in_cluster,
        user=url.username or "",
        database=url.path.strip("/") or url.username or "",
        cutouts=str(PurePosixPath(DATA_DIR, cutouts)) if cutouts else None,
    )


def check_store_urls(spec: PipelineSpec) -> None:
    """The pipeline goes into a ConfigMap, readable by whoever may read the namespace's config: a
    PostgreSQL URL there names no password (it comes from the Secret); the in-cluster database's URL
    names the user the database is made for, and the Service's port."""
    for sink in spec.sinks:
        path = str(sink.config.get("path", "")) if sink.use == "store" else ""
        if not is_postgres(path):
            continue
        url = urlsplit(path)
        where = f"sink {sink.instance_name!r}: {shown_location(path)}"
        if url.password is not None:
            raise ConfigError(
                f"{where}: the store URL would put its password in the pipeline's ConfigMap; leave it "
                f"out (the pods get $PGPASSWORD from the {POSTGRES} Secret)"
            )
        if (url.hostname or "").split(".")[0] == POSTGRES:
            if not url.username:
                raise ConfigError(f"{where}: name the database's user ({POSTGRES} is made for it)")
            if (url.port or POSTGRES_PORT) != POSTGRES_PORT:
                raise ConfigError(f"{where}: {POSTGRES} listens on {POSTGRES_PORT}")


def _metadata(name: str, component: str, settings: DeploymentSettings) -> dict[str, Any]:
    return {"name": name, "namespace": settings.namespace, "labels": labels(component)}


def pipeline_configmap(spec: PipelineSpec, settings: DeploymentSettings) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(PIPELINE_CONFIGMAP, "pipeline", settings),
        "data": {"pipeline.json": json.dumps(spec.model_dump(mode="json"), indent=2)},
    }


def token_secret(token: str, settings: DeploymentSettings) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(TOKEN_SECRET, "control", settings),
        "stringData": {"token": token},
    }


def _probe(path: str, port: str, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _token_env() -> dict[str, Any]:
    return {
        "name": "STARLING_CONTROL_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": TOKEN_SECRET, "key": "token"}},
    }


def _postgres_password_env(store: StoreLayout) -> dict[str, Any]:
    """libpq's password, from the Secret: required when the database is ours, optional otherwise."""
    reference: dict[str, Any] = {"name": POSTGRES, "key": "password"}
    if not store.in_cluster:
        reference["optional"] = True
    return {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": reference}}


def _pipeline_volume() -> dict[str, Any]:
    return {"name": "pipeline", "configMap": {"name": PIPELINE_CONFIGMAP}}


def _worker_container(stage: StageName, settings: DeploymentSettings) -> dict[str, Any]:
    return {
        "name": stage,
        "image": settings.image,
        "args": [
            "serve",
            stage,
            "--pipeline",
            f"{CONFIG_DIR}/pipeline.json",
            "--output",
            DATA_DIR,
            "--host",
            "0.0.0.0",  # inside the pod: the kubelet's probes and Prometheus reach it on the pod IP
            "--port",
            str(WORKER_PORT),
        ],
        "env": [_token_env()],
        "ports": [{"name": "http", "containerPort": WORKER_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/health", "http", 10, 3),
        "readinessProbe": _probe("/ready", "http", 2, 1),
        "startupProbe": _probe("/health", "http", 2, 60),
        "resources": {
            "requests": {"cpu": settings.worker_cpu, "memory": settings.worker_memory},
            "limits": {"memory": settings.worker_memory_limit},
        },
        "volumeMounts": [
            {"name": "pipeline", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
        ],
    }


def worker_deployment(
    stage: StageName,
    settings: DeploymentSettings,
    replicas: int | None = None,
    spec: PipelineSpec | None = None,
) -> Manifest:
    """One stage's Deployment; ``replicas`` only when the controller creates it (see the module note).
    ``spec``, the pipeline, decides the distribute stage's volumes and strategy (without it: SQLite's)."""
    component = f"worker-{stage}"
    container = _worker_container(stage, settings)
    volumes = [_pipeline_volume()]
    strategy: dict[str, Any] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    store = store_layout(spec)
    if stage != "distribute":
        volumes.append({"name": "data", "emptyDir": {}})
    elif not store.shared:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": f"{APP}-store"}})
        strategy = {"type": "Recreate"}  # one writer of its SQLite volume at a time
    else:
        volumes.append({"name": "data", "emptyDir": {}})  # per replica: see the module note
        container["env"].append(_postgres_password_env(store))
        if store.cutouts is not None:
            volumes.append({"name": "cutouts", "persistentVolumeClaim": {"claimName": CUTOUTS_CLAIM}})
            container["volumeMounts"].append({"name": "cutouts", "mountPath": store.cutouts})
    deployment: dict[str, Any] = {
        "selector": {"matchLabels": match_labels(component)},
        "strategy": strategy,
        "template": {
            "metadata": {"labels": labels(component)},
            "spec": {
                "terminationGracePeriodSeconds": DRAIN_GRACE_S,
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    if replicas is not None:
        deployment = {"replicas": replicas, **deployment}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(deployment_name(stage), component, settings),
        "spec": deployment,
    }


def worker_service(stage: StageName, settings: DeploymentSettings) -> Manifest:
    component = f"worker-{stage}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(deployment_name(stage), component, settings),
        "spec": {
            "selector": match_labels(component),
            "ports": [{"name": "http", "port": WORKER_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def service_monitor(settings: DeploymentSettings) -> Manifest:
    """Prometheus Operator's scrape of every Starling pod's ``/metrics`` (the control token as bearer)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(APP, "metrics", settings),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/part-of": APP}},
            "namespaceSelector": {"matchNames": [settings.namespace]},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": "15s",
                    "authorization": {
                        "type": "Bearer",
                        "credentials": {"name": TOKEN_SECRET, "key": "token"},
                    },
                }
            ],
        },
    }


def _controller_container(settings: DeploymentSettings) -> dict[str, Any]:
    return {
        "name": "controller",
        "image": settings.image,
        "args": [
            "controller",
            "--backend",
            "kubernetes",
            "--namespace",
            settings.namespace,
            "--image",
            settings.image,
            "--pipeline",
            f"{CONFIG_DIR}/pipeline.json",
            "--output",
            DATA_DIR,
            "--host",
            "0.0.0.0",
            "--port",
            str(CONTROLLER_PORT),
        ],
        "env": [_token_env()],
        "ports": [{"name": "http", "containerPort": CONTROLLER_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/health", "http", 10, 3),
        "readinessProbe": _probe("/ready", "http", 5, 2),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [
            {"name": "pipeline", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
        ],
    }


def _controller_role(account: str, component: str, settings: DeploymentSettings) -> Manifest:
    """What the controller may do: manage and scale the stage Deployments, their ConfigMap, read pods."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(account, component, settings),
        "rules": [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
            },
            {
                "apiGroups": ["apps"],
                "resources": ["deployments/scale"],
                "verbs": ["get", "patch", "update"],
            },
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "verbs": ["get", "create", "patch", "update", "delete"],
            },
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        ],
    }


def controller_objects(settings: DeploymentSettings, spec: PipelineSpec | None = None) -> list[Manifest]:
    component = "controller"
    account = f"{APP}-controller"
    container = _controller_container(settings)
    store = store_layout(spec)
    if store.shared:  # its try-filter reads the pipeline's store
        container["env"].append(_postgres_password_env(store))
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(account, component, settings)},
        _controller_role(account, component, settings),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _metadata(account, component, settings),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": settings.namespace}],
        },
        _claim(f"{APP}-controller", component, settings.controller_storage, settings),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _metadata(f"{APP}-controller", component, settings),
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": match_labels(component)},
                "template": {
                    "metadata": {"labels": labels(component)},
                    "spec": {
                        "serviceAccountName": account,
                        "containers": [container],
                        "volumes": [
                            _pipeline_volume(),
                            {"name": "data", "persistentVolumeClaim": {"claimName": f"{APP}-controller"}},
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(f"{APP}-controller", component, settings),
            "spec": {
                "selector": match_labels(component),
                "ports": [{"name": "http", "port": CONTROLLER_PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]


def _claim(
    name: str,
    component: str,
    size: str,
    settings: DeploymentSettings,
    access: str = "ReadWriteOnce",
    storage_class: str | None = None,
) -> Manifest:
    spec: dict[str, Any] = {"accessModes": [access], "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(name, component, settings),
        "spec": spec,
    }


def postgres_objects(store: StoreLayout, settings: DeploymentSettings, password: str) -> list[Manifest]:
    """The in-cluster database: its Secret, headless Service and StatefulSet (see the module note)."""
    component = "database"
    password_env = {
        "name": "POSTGRES_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": POSTGRES, "key": "password"}},
    }
    # Over TCP: the image's first start (initdb, then its init scripts) runs a server on the Unix
    # socket only, which must not count as ready.
    ready = ["pg_isready", "--host", "127.0.0.1", "--username", store.user, "--dbname", store.database]
    container = {
        "name": "postgres",
        "image": settings.postgres_image,
        "env": [
            {"name": "POSTGRES_USER", "value": store.user},
            {"name": "POSTGRES_DB", "value": store.database},
            password_env,
            # A directory below the mount: a fresh volume's root may hold lost+found, which initdb refuses.
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "exec": {"command": ready},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": settings.postgres_cpu, "memory": settings.postgres_memory},
            "limits": {"memory": settings.postgres_memory},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "shm", "mountPath": "/dev/shm"},  # the runtime's 64 MiB is short for parallel queries
        ],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": _metadata(POSTGRES, component, settings),
            "stringData": {"password": password},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(POSTGRES, component, settings),
            "spec": {
                "clusterIP": "None",
                "selector": match_labels(component),
                "ports": [
                    {"name": "postgres", "port": POSTGRES_PORT, "targetPort": "postgres", "protocol": "TCP"}
                ],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _metadata(POSTGRES, component, settings),
            "spec": {
                "serviceName": POSTGRES,
                "replicas": 1,
                "selector": {"matchLabels": match_labels(component)},
                "template": {
                    "metadata": {"labels": labels(component)},
                    "spec": {
                        "terminationGracePeriodSeconds": DRAIN_GRACE_S,
                        "containers": [container],
                        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data", "labels": labels(component)},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": settings.store_storage}},
                        },
                    }
                ],
            },
        },
    ]


def all_manifests(
    spec: PipelineSpec, settings: DeploymentSettings, token: str, postgres_password: str | None = None
) -> list[Manifest]:
    """Everything ``kubectl apply`` needs, in an order it can apply them. ``postgres_password``: the
    in-cluster database's (default: a new one). ConfigError for a store URL the manifests cannot carry."""
    check_store_urls(spec)
    store = store_layout(spec)
    objects: list[Manifest] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": settings.namespace, "labels": labels("namespace")},
        },
        pipeline_configmap(spec, settings),
        token_secret(token, settings),
    ]
    if store.in_cluster:
        objects += postgres_objects(store, settings, postgres_password or secrets.token_urlsafe(32))
    if not store.shared:
        objects.append(_claim(f"{APP}-store", "worker-distribute", settings.store_storage, settings))
    elif store.cutouts is not None:
        objects.append(
            _claim(
                CUTOUTS_CLAIM,
                "worker-distribute",
                settings.cutouts_storage,
                settings,
                access="ReadWriteMany",
                storage_class=settings.cutouts_storage_class,
            )
        )
    for stage in STAGES:
        objects += [worker_deployment(stage, settings, spec=spec), worker_service(stage, settings)]
    objects += controller_objects(settings, spec)
    objects.append(service_monitor(settings))
    return objects
