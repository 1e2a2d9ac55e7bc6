"""The Kubernetes objects of a Starling deployment, as plain dicts (the API's JSON).

One generator for two users: ``starling deploy kubernetes`` writes them as YAML for ``kubectl apply``,
and the controller's ``kubernetes`` backend creates the workers' Deployments from the very same
functions, so what the operator reviews is what the controller makes.

The layout:

- Secrets: the pipeline (``pipeline.json``, mounted by every pod: it holds users' webhook secrets), the
  control token the workers' control APIs ask for (the controller holds it too), and a read-only metrics
  token, Prometheus's (``/metrics``: a scrape can change nothing);
- one Deployment per stage of the pipeline (by default ``starling-ingest``, ``-filter``, ``-distribute``), one
  container each:
  ``starling serve <stage>``, probes on the control API's ``/health`` (liveness) and ``/ready``
  (readiness), resource requests, a grace period long enough to drain a batch (SIGTERM drains). The
  worker Deployments carry no ``replicas``: the controller owns that number, and ``kubectl apply``
  must not reset it;
- a Service per stage (so Prometheus finds the pods) and a ServiceMonitor scraping ``/metrics``;
- the controller: a Deployment (one replica, ``Recreate``: its state is a SQLite file on a volume),
  its Service, PersistentVolumeClaim, ServiceAccount, and the Role that lets it manage Deployments.

The distribute stage depends on where the pipeline's ``store`` sink writes: see ``postgres.py``. The
names, labels and settings every object shares are in ``basics.py``.
"""

from __future__ import annotations

import secrets
from typing import Any

from starling.core.spec import PipelineSpec, versioned_json
from starling.core.stages import delivering_stage, stage_names
from starling.deploy.basics import (
    APP,
    CONFIG_DIR,
    CONTROLLER_PORT,
    CUTOUTS_CLAIM,
    DATA_DIR,
    DRAIN_GRACE_S,
    METRICS_SECRET,
    PIPELINE_MAX_BYTES,
    PIPELINE_SECRET,
    TOKEN_SECRET,
    WORKER_PORT,
    DeploymentSettings,
    Manifest,
    claim,
    controller_role,
    deployment_name,
    labels,
    match_labels,
    metadata,
    probe,
    secret,
    selector,
)
from starling.deploy.postgres import (
    check_store_urls,
    postgres_objects,
    postgres_password_env,
    store_layout,
)
from starling.deploy.sessions import mount_identity, resource_limits
from starling.deploy.web import web_objects

__all__ = [
    "CONTROLLER_PORT",
    "PIPELINE_MAX_BYTES",
    "PIPELINE_SECRET",
    "WORKER_PORT",
    "DeploymentSettings",
    "Manifest",
    "all_manifests",
    "controller_objects",
    "deployment_name",
    "pipeline_secret",
    "selector",
    "worker_deployment",
    "worker_service",
]


def pipeline_secret(spec: PipelineSpec, settings: DeploymentSettings, version: int | None = None) -> Manifest:
    """The pipeline every pod reads; ``version``: the controller's version of it (none when deployed)."""
    return secret(PIPELINE_SECRET, "pipeline", settings, {"pipeline.json": versioned_json(spec, version)})


def token_secrets(token: str, settings: DeploymentSettings, metrics_token: str) -> list[Manifest]:
    """The control token's Secret, and the metrics token's, apart (RBAC grants a Secret whole)."""
    return [
        secret(TOKEN_SECRET, "control", settings, {"token": token}),
        secret(METRICS_SECRET, "metrics", settings, {"token": metrics_token}),
    ]


def _token_env() -> list[dict[str, Any]]:
    """The control token, and the metrics token the pod's ``/metrics`` also takes (optional: a deployment
    made before it had one still starts its pods)."""
    return [
        {
            "name": "STARLING_CONTROL_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": TOKEN_SECRET, "key": "token"}},
        },
        {
            "name": "STARLING_METRICS_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": METRICS_SECRET, "key": "token", "optional": True}},
        },
    ]


def _pipeline_volume() -> dict[str, Any]:
    return {"name": "pipeline", "secret": {"secretName": PIPELINE_SECRET}}


def _worker_container(stage: str, settings: DeploymentSettings) -> dict[str, Any]:
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
        # The controller's Service: where a worker fetches the stored bodies its pipeline refers to.
        "env": [
            *_token_env(),
            {"name": "STARLING_CONTROLLER", "value": f"http://{APP}-controller:{CONTROLLER_PORT}"},
        ],
        "ports": [{"name": "http", "containerPort": WORKER_PORT, "protocol": "TCP"}],
        "livenessProbe": probe("/health", "http", 10, 3),
        "readinessProbe": probe("/ready", "http", 2, 1),
        "startupProbe": probe("/health", "http", 2, 60),
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
    stage: str,
    settings: DeploymentSettings,
    replicas: int | None = None,
    spec: PipelineSpec | None = None,
) -> Manifest:
    """One stage's Deployment; ``replicas`` only when the controller creates it (see the module note).
    ``spec``, the pipeline, decides the distribute stage's volumes and strategy (without it: SQLite's)."""
    component = f"worker-{stage}"
    container = _worker_container(stage, settings)
    stage_spec = next((s for s in spec.stages if s.name == stage), None) if spec else None
    if stage_spec is not None and stage_spec.resources is not None:  # a user's session's
        container["resources"] = resource_limits(stage_spec.resources)
    volumes = [_pipeline_volume()]
    strategy: dict[str, Any] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    store = store_layout(spec)
    if stage != (delivering_stage(spec) if spec is not None else "distribute"):
        volumes.append({"name": "data", "emptyDir": {}})
    elif not store.shared:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": f"{APP}-store"}})
        strategy = {"type": "Recreate"}  # one writer of its SQLite volume at a time
    else:
        volumes.append({"name": "data", "emptyDir": {}})  # per replica: see the module note
        container["env"].append(postgres_password_env(store))
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
    if stage_spec is not None and stage_spec.own_principal:
        mount_identity(deployment["template"]["spec"], stage)
    if replicas is not None:
        deployment = {"replicas": replicas, **deployment}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(deployment_name(stage), component, settings),
        "spec": deployment,
    }


def worker_service(stage: str, settings: DeploymentSettings) -> Manifest:
    component = f"worker-{stage}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(deployment_name(stage), component, settings),
        "spec": {
            "selector": match_labels(component),
            "ports": [{"name": "http", "port": WORKER_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def service_monitor(settings: DeploymentSettings) -> Manifest:
    """Prometheus Operator's scrape of every Starling pod's ``/metrics``, with the read-only metrics token."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(APP, "metrics", settings),
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
                        "credentials": {"name": METRICS_SECRET, "key": "token"},
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
        "env": _token_env(),
        "ports": [{"name": "http", "containerPort": CONTROLLER_PORT, "protocol": "TCP"}],
        "livenessProbe": probe("/health", "http", 10, 3),
        "readinessProbe": probe("/ready", "http", 5, 2),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [
            {"name": "pipeline", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
        ],
    }


def controller_objects(settings: DeploymentSettings, spec: PipelineSpec | None = None) -> list[Manifest]:
    component = "controller"
    account = f"{APP}-controller"
    container = _controller_container(settings)
    store = store_layout(spec)
    if store.shared:  # its try-filter reads the pipeline's store
        container["env"].append(postgres_password_env(store))
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(account, component, settings)},
        controller_role(account, component, settings),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata(account, component, settings),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": settings.namespace}],
        },
        claim(f"{APP}-controller", component, settings.controller_storage, settings),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(f"{APP}-controller", component, settings),
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
            "metadata": metadata(f"{APP}-controller", component, settings),
            "spec": {
                "selector": match_labels(component),
                "ports": [{"name": "http", "port": CONTROLLER_PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]


def all_manifests(
    spec: PipelineSpec,
    settings: DeploymentSettings,
    token: str,
    postgres_password: str | None = None,
    metrics_token: str | None = None,
) -> list[Manifest]:
    """Everything ``kubectl apply`` needs, in an order it can apply them. ``postgres_password``: the
    in-cluster database's, ``metrics_token``: Prometheus's (default: new ones). ConfigError for a store
    URL the manifests cannot carry."""
    check_store_urls(spec)
    store = store_layout(spec)
    delivering = f"worker-{delivering_stage(spec)}"
    objects: list[Manifest] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": settings.namespace, "labels": labels("namespace")},
        },
        pipeline_secret(spec, settings),
        *token_secrets(token, settings, metrics_token or f"stl_{secrets.token_urlsafe(32)}"),
    ]
    if store.in_cluster:
        objects += postgres_objects(store, settings, postgres_password or secrets.token_urlsafe(32))
    if not store.shared:
        objects.append(claim(f"{APP}-store", delivering, settings.store_storage, settings))
    elif store.cutouts is not None:
        objects.append(
            claim(
                CUTOUTS_CLAIM,
                delivering,
                settings.cutouts_storage,
                settings,
                access="ReadWriteMany",
                storage_class=settings.cutouts_storage_class,
            )
        )
    for stage in stage_names(spec):
        objects += [worker_deployment(stage, settings, spec=spec), worker_service(stage, settings)]
    objects += controller_objects(settings, spec)
    objects += web_objects(spec, store, settings)
    objects.append(service_monitor(settings))
    return objects
