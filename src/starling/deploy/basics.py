"""What every Kubernetes object of a Starling deployment shares: names, labels, settings, and the small
pieces (metadata, probes, claims) the generators in ``kubernetes.py`` and ``postgres.py`` put together."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Manifest = dict[str, Any]

APP = "starling"
WORKER_PORT = 8080
CONTROLLER_PORT = 8765
# The pipeline is a Secret, not a ConfigMap: it holds users' webhook secrets, which a ConfigMap would
# show to whoever may read the namespace's configuration.
PIPELINE_SECRET = "starling-pipeline"
# Kubernetes keeps a Secret to 1 MiB (1,048,576 bytes, its metadata included): the pipeline it carries
# stays below this, leaving room for the metadata and the JSON's escapes.
PIPELINE_MAX_BYTES = 1_000_000
TOKEN_SECRET = "starling-control-token"
# Prometheus's read-only token, in a Secret of its own: RBAC grants a Secret whole, so whoever may read
# this one (the scraper) cannot read the control token.
METRICS_SECRET = "starling-metrics-token"
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


def deployment_name(stage: str) -> str:
    return f"{APP}-{stage}"


def match_labels(component: str) -> dict[str, str]:
    """The labels that select one component's pods."""
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component}


def labels(component: str) -> dict[str, str]:
    return {**match_labels(component), "app.kubernetes.io/part-of": APP}


def selector(component: str) -> str:
    """``match_labels`` as the API's ``labelSelector`` query wants it."""
    return ",".join(f"{k}={v}" for k, v in match_labels(component).items())


def metadata(name: str, component: str, settings: DeploymentSettings) -> dict[str, Any]:
    return {"name": name, "namespace": settings.namespace, "labels": labels(component)}


def secret(name: str, component: str, settings: DeploymentSettings, values: dict[str, str]) -> Manifest:
    """An opaque Secret holding ``values`` (as ``stringData``: the API server encodes them)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(name, component, settings),
        "stringData": values,
    }


def probe(path: str, port: str, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def claim(
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
        "metadata": metadata(name, component, settings),
        "spec": spec,
    }


def controller_role(account: str, component: str, settings: DeploymentSettings) -> Manifest:
    """What the controller may do: manage and scale the stage Deployments, write the pipeline's Secret (the
    control token comes to it in its environment), read pods; for users' sessions, write their identity
    Secrets and their containers' NetworkPolicies, and read the namespace's ResourceQuotas (what sessions
    are offered)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(account, component, settings),
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
            # Not ``get``: it reads no Secret back (the tokens', the database's). A session's identity
            # Secret has a name made at run time, so update and delete cannot be limited to names.
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "update", "delete"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["get", "list"]},
            {
                "apiGroups": ["networking.k8s.io"],
                "resources": ["networkpolicies"],
                "verbs": ["create", "update", "delete"],
            },
        ],
    }
