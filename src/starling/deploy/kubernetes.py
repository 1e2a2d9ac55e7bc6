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

The distribute stage's ``store`` sink writes SQLite on its own volume, so it runs one replica; a
shared SQL store (PostgreSQL) is what lets it scale out.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from starling.core.spec import PipelineSpec
from starling.core.stages import STAGES, StageName

Manifest = dict[str, Any]

APP = "starling"
WORKER_PORT = 8080
CONTROLLER_PORT = 8765
PIPELINE_CONFIGMAP = "starling-pipeline"
TOKEN_SECRET = "starling-control-token"
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
    store_storage: str = "20Gi"


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
    stage: StageName, settings: DeploymentSettings, replicas: int | None = None
) -> Manifest:
    """One stage's Deployment; ``replicas`` only when the controller creates it (see the module note)."""
    component = f"worker-{stage}"
    data_volume: dict[str, Any] = (
        {"name": "data", "persistentVolumeClaim": {"claimName": f"{APP}-store"}}
        if stage == "distribute"
        else {"name": "data", "emptyDir": {}}
    )
    container = _worker_container(stage, settings)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": match_labels(component)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {"labels": labels(component)},
            "spec": {
                "terminationGracePeriodSeconds": DRAIN_GRACE_S,
                "containers": [container],
                "volumes": [_pipeline_volume(), data_volume],
            },
        },
    }
    if stage == "distribute":
        spec["strategy"] = {"type": "Recreate"}  # one writer of its SQLite volume at a time
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(deployment_name(stage), component, settings),
        "spec": spec,
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


def controller_objects(settings: DeploymentSettings) -> list[Manifest]:
    component = "controller"
    account = f"{APP}-controller"
    container = _controller_container(settings)
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


def _claim(name: str, component: str, size: str, settings: DeploymentSettings) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(name, component, settings),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


def all_manifests(spec: PipelineSpec, settings: DeploymentSettings, token: str) -> list[Manifest]:
    """Everything ``kubectl apply`` needs, in an order it can apply them."""
    objects: list[Manifest] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": settings.namespace, "labels": labels("namespace")},
        },
        pipeline_configmap(spec, settings),
        token_secret(token, settings),
        _claim(f"{APP}-store", "worker-distribute", settings.store_storage, settings),
    ]
    for stage in STAGES:
        objects += [worker_deployment(stage, settings), worker_service(stage, settings)]
    objects += controller_objects(settings)
    objects.append(service_monitor(settings))
    return objects
