"""The Kubernetes objects of users' sessions (``starling.control.sessions``): their Kafka identity, the limits
of a session's stage, and a container image run as a stage of its own.

- **Identity.** A session reaches Kafka as a principal of its own (``starling.control.session_kafka``). Its
  name and password are a Secret, ``starling-identity-<stage>``, which only that stage's pods mount: as the
  file a Starling worker reads (``$STARLING_KAFKA_IDENTITY_FILE``), and as ``KAFKA_*`` variables for a
  container of the user's.
- **Limits.** What the session was offered is its containers' requests and limits: Kubernetes throttles it at
  its cores and stops it past its memory.
- **A container image** (the ExecutionBroker's ``docker-container-1.0``) runs as a Deployment of one replica,
  wired to its topics through environment variables (``STARLING_INPUT_TOPIC``, ``STARLING_OUTPUT_TOPIC``,
  ``STARLING_GROUP_ID``, ``KAFKA_BOOTSTRAP_SERVERS`` and the SASL settings). It is the user's code, so it runs
  as no one in particular (user and group 65532, not root), with no privilege escalation, no capability, and
  without the namespace's service-account token (which could otherwise reach the Kubernetes API as the
  namespace's default account). A NetworkPolicy of its own lets it reach only the users' Kafka listener's
  port and DNS, and nothing reach it: not the pipeline's own listener (which trusts whoever reaches it), the
  controller, the workers or the database. It needs a network plugin that enforces NetworkPolicies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from starling.core.spec import StageResources
from starling.deploy.basics import (
    DeploymentSettings,
    Manifest,
    deployment_name,
    labels,
    match_labels,
    metadata,
    secret,
)
from starling.transport.kafka.clients import IDENTITY_ENV

IDENTITY_DIR = "/etc/starling-identity"
NOBODY = 65532  # the user a container runs as: none of the image's, never root
# What Kubernetes takes as a variable's name.
VARIABLE_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
IDENTITY_FILE = "identity.json"
SESSION_COMPONENT = "session"
# The variables Starling sets in a user's container: its own environment may not name them.
RESERVED_PREFIXES = ("STARLING_", "KAFKA_")
# A container's variable -> the librdkafka setting of its identity it carries.
_KAFKA_VARIABLES = {
    "KAFKA_BOOTSTRAP_SERVERS": "bootstrap.servers",
    "KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "KAFKA_SASL_MECHANISM": "sasl.mechanisms",
    "KAFKA_SASL_USERNAME": "sasl.username",
    "KAFKA_SASL_PASSWORD": "sasl.password",
}


@dataclass(frozen=True)
class ContainerRun:
    """A user's container image run as the stage ``stage`` (a session's), within its resources."""

    stage: str
    image: str
    resources: StageResources
    reads: str
    writes: str
    group: str
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    kafka_ports: tuple[int, ...] = ()  # the users' listener's: all the network it may reach, DNS aside


def identity_secret_name(stage: str) -> str:
    return f"{deployment_name(stage)}-identity"


def identity_secret(stage: str, identity: dict[str, str], settings: DeploymentSettings) -> Manifest:
    """The session's Kafka identity: the file a worker reads, and each setting a container variable takes."""
    values = {IDENTITY_FILE: json.dumps(identity)}
    values |= {setting: identity[setting] for setting in _KAFKA_VARIABLES.values() if setting in identity}
    return secret(identity_secret_name(stage), f"{SESSION_COMPONENT}-{stage}", settings, values)


def resource_limits(resources: StageResources) -> dict[str, Any]:
    """What was offered, requested and enforced (requests equal limits: the session has them, no more)."""
    amount = {"cpu": str(resources.cores), "memory": f"{int(resources.memory_gib * 1024)}Mi"}
    return {"requests": amount, "limits": dict(amount)}


def mount_identity(pod: dict[str, Any], stage: str) -> None:
    """Give ``pod``'s containers the session's identity file (a Starling worker connects as it)."""
    pod["volumes"].append({"name": "identity", "secret": {"secretName": identity_secret_name(stage)}})
    for container in pod["containers"]:
        container.setdefault("volumeMounts", []).append(
            {"name": "identity", "mountPath": IDENTITY_DIR, "readOnly": True}
        )
        container.setdefault("env", []).append(
            {"name": IDENTITY_ENV, "value": f"{IDENTITY_DIR}/{IDENTITY_FILE}"}
        )


def container_deployment(run: ContainerRun, settings: DeploymentSettings) -> Manifest:
    """The Deployment of a user's container image, wired to its topics and identity."""
    component = f"{SESSION_COMPONENT}-{run.stage}"
    wiring = {
        "STARLING_INPUT_TOPIC": run.reads,
        "STARLING_OUTPUT_TOPIC": run.writes,
        "STARLING_GROUP_ID": run.group,
    }
    environment: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(run.environment.items())]
    environment += [{"name": k, "value": v} for k, v in wiring.items()]
    environment += [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": identity_secret_name(run.stage), "key": key}}}
        for name, key in _KAFKA_VARIABLES.items()
    ]
    container: dict[str, Any] = {
        "name": "session",
        "image": run.image,
        "env": environment,
        "resources": resource_limits(run.resources),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if run.command:
        container["command"] = run.command
    pod: dict[str, Any] = {"automountServiceAccountToken": False, "containers": [container], "volumes": []}
    mount_identity(pod, run.stage)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(deployment_name(run.stage), component, settings),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": match_labels(component)},
            "template": {"metadata": {"labels": labels(component)}, "spec": pod},
        },
    }


def network_policy(run: ContainerRun, settings: DeploymentSettings) -> Manifest:
    """What a container's pods may reach: the users' Kafka listener's ports and DNS; nothing reaches them."""
    component = f"{SESSION_COMPONENT}-{run.stage}"
    dns = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    kafka = [{"port": port, "protocol": "TCP"} for port in run.kafka_ports]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(deployment_name(run.stage), component, settings),
        "spec": {
            "podSelector": {"matchLabels": match_labels(component)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [{"ports": kafka}, {"ports": dns}] if kafka else [{"ports": dns}],
        },
    }


def listener_ports(bootstrap_servers: str) -> tuple[int, ...]:
    """The ports of ``host:port,host:port``."""
    return tuple(
        sorted({int(server.rsplit(":", 1)[1]) for server in bootstrap_servers.split(",") if ":" in server})
    )
