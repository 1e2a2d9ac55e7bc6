"""The store as the cluster sees it, and the in-cluster PostgreSQL.

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

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from starling.components.sinks.store import StoreSinkConfig
from starling.core.spec import PipelineSpec
from starling.deploy.basics import (
    DATA_DIR,
    DRAIN_GRACE_S,
    POSTGRES,
    POSTGRES_PORT,
    DeploymentSettings,
    Manifest,
    labels,
    match_labels,
    metadata,
    secret,
)
from starling.errors import ConfigError
from starling.store.location import is_postgres, shown_location, store_is_shared


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
    """The pipeline goes to every pod: a PostgreSQL URL there names no password (it comes from the
    database's own Secret, to the pods that write); the in-cluster database's URL
    names the user the database is made for, and the Service's port."""
    for sink in spec.sinks:
        path = str(sink.config.get("path", "")) if sink.use == "store" else ""
        if not is_postgres(path):
            continue
        url = urlsplit(path)
        where = f"sink {sink.instance_name!r}: {shown_location(path)}"
        if url.password is not None:
            raise ConfigError(
                f"{where}: the store URL would put its password in the pipeline every pod reads; leave it "
                f"out (the pods get $PGPASSWORD from the {POSTGRES} Secret)"
            )
        if (url.hostname or "").split(".")[0] == POSTGRES:
            if not url.username:
                raise ConfigError(f"{where}: name the database's user ({POSTGRES} is made for it)")
            if (url.port or POSTGRES_PORT) != POSTGRES_PORT:
                raise ConfigError(f"{where}: {POSTGRES} listens on {POSTGRES_PORT}")


def postgres_password_env(store: StoreLayout) -> dict[str, Any]:
    """libpq's password, from the Secret: required when the database is ours, optional otherwise."""
    reference: dict[str, Any] = {"name": POSTGRES, "key": "password"}
    if not store.in_cluster:
        reference["optional"] = True
    return {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": reference}}


_COMPONENT = "database"


def _postgres_container(store: StoreLayout, settings: DeploymentSettings) -> dict[str, Any]:
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
    return container


def postgres_objects(store: StoreLayout, settings: DeploymentSettings, password: str) -> list[Manifest]:
    """The in-cluster database: its Secret, headless Service and StatefulSet (see the module note)."""
    component = _COMPONENT
    container = _postgres_container(store, settings)
    return [
        secret(POSTGRES, component, settings, {"password": password}),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(POSTGRES, component, settings),
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
            "metadata": metadata(POSTGRES, component, settings),
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
