"""``starling web`` on the cluster: TAP over the shared store, one Deployment beside the stages.

Only with a shared store (PostgreSQL: ``postgres.py``): a SQLite store lives on the distribute stage's own
volume, which no other pod can open. One replica, ``Recreate``: its asynchronous jobs and their results
are kept on a volume of its own (``starling-tap-jobs``), so that they survive a restart of the pod. It
reads the database with the same ``PGPASSWORD`` as the writers (in read-only transactions).
"""

from __future__ import annotations

from typing import Any

from starling.core.spec import PipelineSpec
from starling.deploy.basics import (
    APP,
    CONTROLLER_PORT,
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


def web_objects(spec: PipelineSpec, store: StoreLayout, settings: DeploymentSettings) -> list[Manifest]:
    """The TAP service's Deployment, Service and job volume; none without a shared store."""
    if not store.shared:
        return []
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
        ],
        "env": [postgres_password_env(store)],
        "ports": [{"name": "http", "containerPort": WEB_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe(6),
        "readinessProbe": _probe(1),
        "resources": {
            "requests": {"cpu": settings.worker_cpu, "memory": settings.worker_memory},
            "limits": {"memory": settings.worker_memory_limit},
        },
        "volumeMounts": [{"name": "jobs", "mountPath": f"{DATA_DIR}/tap-jobs"}],
    }
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
                "spec": {
                    "terminationGracePeriodSeconds": DRAIN_GRACE_S,
                    "containers": [container],
                    "volumes": [{"name": "jobs", "persistentVolumeClaim": {"claimName": JOBS_CLAIM}}],
                },
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
