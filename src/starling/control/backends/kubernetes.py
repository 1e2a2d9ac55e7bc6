"""The controller's ``kubernetes`` backend: one Deployment per stage, through the Kubernetes API.

It uses the official client (``kubernetes``): the pipeline goes into a Secret every pod mounts;
each stage is a Deployment made from the same manifest as ``starling deploy kubernetes``
(``starling.deploy.kubernetes``), created when missing and adopted when present; scaling patches the
Deployment's ``scale`` subresource. A pod that Kubernetes removes on a scale-down gets SIGTERM, on
which the worker drains (finishes its batch, commits, leaves its group) within the pod's grace period,
so nothing is lost or doubled. The controller reaches each pod's control API on its pod IP, with the
shared control token of the ``starling-control-token`` Secret.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from starling.control.auth import TOKEN_ENV
from starling.control.client import WorkerClient
from starling.core.spec import DEFAULT_STAGES, PipelineSpec
from starling.core.stages import stage_names
from starling.deploy.kubernetes import (
    PIPELINE_MAX_BYTES,
    PIPELINE_SECRET,
    WORKER_PORT,
    DeploymentSettings,
    deployment_name,
    pipeline_secret,
    selector,
    worker_deployment,
    worker_service,
)
from starling.deploy.sessions import (
    ContainerRun,
    container_deployment,
    identity_secret,
    identity_secret_name,
    network_policy,
)
from starling.errors import ConfigError
from starling.vo.execbroker.ledger import Capacity

log = logging.getLogger("starling.controller")

# A quota's names for cores and memory, the ones that bind a session's containers first.
_QUOTA_KEYS = {
    "cpu": ("limits.cpu", "requests.cpu", "cpu"),
    "memory": ("limits.memory", "requests.memory", "memory"),
}


def _quantity(text: str) -> Decimal:
    value: Decimal = parse_quantity(text)  # type: ignore[no-untyped-call]
    return value


class PodWorker(WorkerClient):
    def __init__(self, stage: str, replica: int, pod: Any, token: str) -> None:
        self.stage = stage
        self.replica = replica
        self.token = token
        self.name: str = pod.metadata.name
        self.ip: str | None = pod.status.pod_ip if pod.status else None
        self.phase: str | None = pod.status.phase if pod.status else None
        self.restart_count = sum(s.restart_count for s in (pod.status.container_statuses or []))
        self.port = WORKER_PORT

    @property
    def base_url(self) -> str | None:
        return None if self.ip is None else f"http://{self.ip}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.phase == "Running"


def api_client_from_environment() -> k8s.ApiClient:
    """In a pod: its service account. Elsewhere: the kubeconfig (``$KUBECONFIG`` or ~/.kube/config)."""
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        try:
            k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
        except (k8s_config.ConfigException, OSError) as exc:
            raise ConfigError(
                f"no Kubernetes cluster to talk to (not in a pod, no kubeconfig): {exc}"
            ) from None
    return k8s.ApiClient()


class KubernetesBackend:
    max_pipeline_bytes: int | None = PIPELINE_MAX_BYTES
    runs_containers = True

    def __init__(self, settings: DeploymentSettings, api: k8s.ApiClient, token: str) -> None:
        self.settings = settings
        self.apps = k8s.AppsV1Api(api)
        self.core = k8s.CoreV1Api(api)
        self.networking = k8s.NetworkingV1Api(api)
        self.token = token
        self.namespace = settings.namespace
        # The stages of the pipeline it runs (set at ``start``): a Deployment each.
        self.stages: list[str] = list(DEFAULT_STAGES)
        self.spec: PipelineSpec | None = None  # the pipeline last written

    @classmethod
    def from_environment(cls, settings: DeploymentSettings) -> KubernetesBackend:
        import os

        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise ConfigError(f"the kubernetes backend needs the workers' control token in ${TOKEN_ENV}")
        return cls(settings, api_client_from_environment(), token)

    def start(self, spec: PipelineSpec, replicas: dict[str, int], version: int | None = None) -> None:
        self.write_spec(spec, version)
        self.stages = stage_names(spec)
        for stage in self.stages:
            self._ensure_deployment(stage, replicas.get(stage, 1), spec)

    def _ensure_deployment(self, stage: str, replicas: int, spec: PipelineSpec) -> None:
        name = deployment_name(stage)
        try:
            self.apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            log.info("creating deployment %s with %d replicas", name, replicas)
            # The client takes the API's JSON as a dict as well as its model classes.
            # The pipeline's store decides the distribute stage's volumes and strategy.
            body: Any = worker_deployment(stage, self.settings, replicas, spec)
            self.apps.create_namespaced_deployment(self.namespace, body)
            return
        log.info("adopting deployment %s; %d replicas", name, replicas)
        self._scale_one(stage, replicas)

    def write_spec(self, spec: PipelineSpec, version: int | None = None) -> None:
        self.spec = spec
        body: Any = pipeline_secret(spec, self.settings, version)
        try:
            self.core.replace_namespaced_secret(PIPELINE_SECRET, self.namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_secret(self.namespace, body)

    def _pods(self, stage: str) -> list[Any]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector(f"worker-{stage}"))
        return sorted(pods.items, key=lambda pod: str(pod.metadata.name if pod.metadata else ""))

    def workers(self, stage: str) -> list[PodWorker]:
        """The stage's pods, less those terminating (draining after a scale-down), numbered by name."""
        staying = [pod for pod in self._pods(stage) if pod.metadata.deletion_timestamp is None]
        return [PodWorker(stage, index, pod, self.token) for index, pod in enumerate(staying)]

    def _scale_one(self, stage: str, replicas: int) -> None:
        # A merge patch: the client's default for a patch is a JSON patch (a list of operations).
        self.apps.patch_namespaced_deployment_scale(
            deployment_name(stage),
            self.namespace,
            {"spec": {"replicas": replicas}},
            _content_type="application/merge-patch+json",
        )

    def scale(self, replicas: dict[str, int]) -> None:
        for stage, count in replicas.items():
            log.info("scaling %s to %d", deployment_name(stage), count)
            self._scale_one(stage, count)

    def start_stages(self, replicas: dict[str, int]) -> None:
        """Each stage's Deployment written anew from the pipeline (replaced, or created for a new stage,
        with its Service), at ``replicas``."""
        assert self.spec is not None, "write_spec comes first"
        for stage, count in replicas.items():
            body: Any = worker_deployment(stage, self.settings, count, self.spec)
            try:
                self.apps.replace_namespaced_deployment(deployment_name(stage), self.namespace, body)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self.apps.create_namespaced_deployment(self.namespace, body)
                service: Any = worker_service(stage, self.settings)
                self.core.create_namespaced_service(self.namespace, service)
            if stage not in self.stages:
                self.stages.append(stage)

    def start_held(self, spec: PipelineSpec, version: int, replicas: dict[str, int]) -> bool:
        # A held pod would need the uncommitted pipeline in a ConfigMap of its own: not done yet, so a
        # reshape on Kubernetes drains and restarts the stages it touches.
        return False

    def remove_stage(self, stage: str) -> None:
        self._delete(lambda: self.apps.delete_namespaced_deployment(deployment_name(stage), self.namespace))
        self._delete(lambda: self.core.delete_namespaced_service(deployment_name(stage), self.namespace))
        self.stages = [s for s in self.stages if s != stage]

    def set_identity(self, stage: str, identity: dict[str, str] | None) -> None:
        name = identity_secret_name(stage)
        if identity is None:
            self._delete(lambda: self.core.delete_namespaced_secret(name, self.namespace))
            return
        body: Any = identity_secret(stage, identity, self.settings)
        try:
            self.core.replace_namespaced_secret(name, self.namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_secret(self.namespace, body)

    def start_container(self, run: ContainerRun) -> None:
        """Its NetworkPolicy first (its pods never run unfenced), then its Deployment; either one left by a
        controller that restarted meanwhile is made anew."""
        name = deployment_name(run.stage)
        policy: Any = network_policy(run, self.settings)
        try:
            self.networking.create_namespaced_network_policy(self.namespace, policy)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.networking.replace_namespaced_network_policy(name, self.namespace, policy)
        body: Any = container_deployment(run, self.settings)
        log.info("starting %s's container %s", run.stage, run.image)
        try:
            self.apps.create_namespaced_deployment(self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.apps.replace_namespaced_deployment(name, self.namespace, body)

    def remove_container(self, stage: str) -> None:
        name = deployment_name(stage)
        self._delete(lambda: self.apps.delete_namespaced_deployment(name, self.namespace))
        self._delete(lambda: self.networking.delete_namespaced_network_policy(name, self.namespace))

    def has_container(self, stage: str) -> bool:
        try:
            self.apps.read_namespaced_deployment(deployment_name(stage), self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return True

    def quota_capacity(self) -> Capacity | None:
        """What the namespace's ResourceQuotas leave: the least, over every quota and each of its keys
        (``limits.*``, ``requests.*``, the bare names), of hard less used, in cores and GiB; None when no
        quota sets both."""
        try:
            quotas = self.core.list_namespaced_resource_quota(self.namespace).items
        except ApiException as exc:  # not allowed to read them (an older Role): the machine's own is no guide
            log.warning(
                "cannot read the namespace's ResourceQuotas (%s): sessions are offered none", exc.reason
            )
            return Capacity(0, 0)
        free: dict[str, list[Decimal]] = {"cpu": [], "memory": []}
        for quota in quotas:
            hard = (quota.spec.hard if quota.spec else None) or {}
            used = (quota.status.used if quota.status else None) or {}
            for resource in free:
                for key in (k for k in _QUOTA_KEYS[resource] if k in hard):  # each binds: the least wins
                    left = _quantity(hard[key]) - _quantity(used.get(key, "0"))
                    free[resource].append(max(Decimal(0), left))
        if not free["cpu"] or not free["memory"]:
            return None
        return Capacity(int(min(free["cpu"])), int(min(free["memory"]) // 1024**3))

    def restarts(self) -> dict[str, int]:
        counts = {}
        for stage in self.stages:
            for index, pod in enumerate(self._pods(stage)):
                counts[pod.metadata.name] = PodWorker(stage, index, pod, self.token).restart_count
        return counts

    def stop(self) -> None:
        """The Deployments outlive the controller: Kubernetes keeps them running while it restarts."""

    def teardown(self) -> None:
        """Delete the stages' Deployments and the pipeline Secret (what ``start`` created)."""
        for stage in self.stages:
            self._delete(
                lambda s=stage: self.apps.delete_namespaced_deployment(deployment_name(s), self.namespace)
            )
        self._delete(lambda: self.core.delete_namespaced_secret(PIPELINE_SECRET, self.namespace))

    @staticmethod
    def _delete(call: Any) -> None:
        try:
            call()
        except ApiException as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise
