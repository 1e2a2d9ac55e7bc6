"""``starling web`` on the cluster: TAP over the shared store, one Deployment beside the stages.

Only with a shared store (PostgreSQL: ``postgres.py``): a SQLite store lives on the distribute stage's own
volume, which no other pod can open. One replica, ``Recreate``: its asynchronous jobs and their results
are kept on a volume of its own (``starling-tap-jobs``), so that they survive a restart of the pod. It
reads the database with the same ``PGPASSWORD`` as the writers (in read-only transactions). The alerts'
cutouts, which the distribute pods write to the ``starling-cutouts`` claim (ReadWriteMany), are mounted
here read-only at the same path, so the portal's ``/api`` serves the stamps the store refers to.
"""

from __future__ import annotations

from typing import Any

from starling.core.spec import PipelineSpec
from starling.deploy.basics import (
    APP,
    CONTROLLER_PORT,
    CUTOUTS_CLAIM,
    DATA_DIR,
    DRAIN_GRACE_S,
    DeploymentSettings,
    Manifest,
    claim,
    labels,
    match_labels,
    metadata,
)
from starling.deploy.postgres import StoreLayout, postgres_password_env

WEB = f"{APP}-web"
WEB_PORT = 8770
JOBS_CLAIM = f"{APP}-tap-jobs"
_COMPONENT = "web"


def _store_url(spec: PipelineSpec) -> str:
    return next(str(s.config["path"]) for s in spec.sinks if s.use == "store")


def _probe(failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/tap/availability", "port": "http"},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _pod(spec: PipelineSpec, store: StoreLayout, settings: DeploymentSettings) -> dict[str, Any]:
    """The web pod's container and volumes: its jobs' claim, and the cutouts' claim read-only."""
    cutouts = [] if store.cutouts is None else ["--cutouts", store.cutouts]
    mounts: list[dict[str, Any]] = [{"name": "jobs", "mountPath": f"{DATA_DIR}/tap-jobs"}]
    container = {
        "name": "web",
        "image": settings.image,
        "args": [
            "web",
            "--store",
            _store_url(spec),
            "--jobs",
            f"{DATA_DIR}/tap-jobs",
            "--host",
            "0.0.0.0",
            "--port",
            str(WEB_PORT),
            # Users' tokens are checked by the controller, through its Service.
            "--controller",
            f"http://{APP}-controller.{settings.namespace}.svc:{CONTROLLER_PORT}",
            *cutouts,
        ],
        "env": [postgres_password_env(store)],
        "ports": [{"name": "http", "containerPort": WEB_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe(6),
        "readinessProbe": _probe(1),
        "resources": {
            "requests": {"cpu": settings.worker_cpu, "memory": settings.worker_memory},
            "limits": {"memory": settings.worker_memory_limit},
        },
        "volumeMounts": mounts,
    }
    volumes: list[dict[str, Any]] = [{"name": "jobs", "persistentVolumeClaim": {"claimName": JOBS_CLAIM}}]
    if store.cutouts is not None:
        mounts.append({"name": "cutouts", "mountPath": store.cutouts, "readOnly": True})
        volumes.append(
            {"name": "cutouts", "persistentVolumeClaim": {"claimName": CUTOUTS_CLAIM, "readOnly": True}}
        )
    return {"terminationGracePeriodSeconds": DRAIN_GRACE_S, "containers": [container], "volumes": volumes}


def web_objects(spec: PipelineSpec, store: StoreLayout, settings: DeploymentSettings) -> list[Manifest]:
    """The TAP service's Deployment, Service and job volume; none without a shared store."""
    if not store.shared:
        return []
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(WEB, _COMPONENT, settings),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one writer of its jobs' volume at a time
            "selector": {"matchLabels": match_labels(_COMPONENT)},
            "template": {
                "metadata": {"labels": labels(_COMPONENT)},
                "spec": _pod(spec, store, settings),
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(WEB, _COMPONENT, settings),
        "spec": {
            "selector": match_labels(_COMPONENT),
            "ports": [{"name": "http", "port": WEB_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [claim(JOBS_CLAIM, _COMPONENT, "5Gi", settings), deployment, service]
