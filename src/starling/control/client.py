"""The public HTTP clients of Starling's services: the one way a command or a script talks to them.

- :class:`ControllerClient`: the controller's API (pipeline, stages, replicas, autoscaling, users'
  filters, watchlists and watchmaps). Its errors are :class:`ControllerUnreachableError` (no answer) and
  :class:`ControllerRefusedError` (an answer of 4xx/5xx, with the status and the service's own ``detail``).
- :class:`WorkerClient`: one worker's control API, wherever the worker runs (a local process, a
  Kubernetes pod); the backends say where it listens.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx

from starling.control.auth import TOKEN_ENV
from starling.core.bodies import BodyResolver
from starling.errors import ConfigError, ControllerRefusedError, ControllerUnreachableError, OutageError

__all__ = [
    "DEFAULT_CONTROLLER",
    "PIPELINE_VERSION_HEADER",
    "ControllerClient",
    "WorkerClient",
    "controller_bodies",
]

DEFAULT_CONTROLLER = "http://127.0.0.1:8765"

# The header of a ``PUT /components`` that carries the controller's pipeline version of the list.
PIPELINE_VERSION_HEADER = "Starling-Pipeline-Version"

# How long a reshape may take to answer: it drains stages, each after the next took all it wrote.
RESHAPE_TIMEOUT_S = 600.0


class ControllerClient:
    """Calls the controller at ``url`` (default ``$STARLING_CONTROLLER``, else the local default) with
    ``token`` (default ``$STARLING_TOKEN``)."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = (url or os.environ.get("STARLING_CONTROLLER") or DEFAULT_CONTROLLER).rstrip("/")
        self.token = token or os.environ.get("STARLING_TOKEN")
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call: the decoded JSON answer, or ControllerRefusedError / ControllerUnreachableError."""
        response = self._send(method, path, body)
        try:
            answer = response.json()
        except ValueError:
            answer = {"detail": response.text}
        if response.status_code >= 400:
            detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
            raise ControllerRefusedError(response.status_code, detail)
        return answer

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            return httpx.request(method, self.url + path, json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ControllerUnreachableError(f"cannot reach the controller at {self.url}: {exc}") from exc

    def body(self, digest: str) -> bytes:
        """A stored body's bytes as kept (``starling.core.bodies``), for a worker to check and read."""
        response = self._send("GET", f"/bodies/{quote(digest, safe='')}")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ControllerRefusedError(response.status_code, detail)
        return response.content

    def whoami(self) -> dict[str, Any]:
        """The role and user the client's token names."""
        return dict(self.request("GET", "/whoami"))

    # -- the pipeline ------------------------------------------------------------------------------

    def pipeline(self) -> dict[str, Any]:
        return dict(self.request("GET", "/pipeline"))

    def insert_stage(self, stage: dict[str, Any]) -> dict[str, Any]:
        """Insert a stage (``name``, ``after``, ``components``, ``replicas``) into the running chain."""
        return dict(self._reshape("POST", "/stages", stage))

    def remove_stage(self, stage: str) -> dict[str, Any]:
        return dict(self._reshape("DELETE", f"/stages/{stage}"))

    def split_stage(self, stage: str, name: str, components: list[str], replicas: int = 1) -> dict[str, Any]:
        body = {"name": name, "components": components, "replicas": replicas}
        return dict(self._reshape("POST", f"/stages/{stage}/split", body))

    def fuse_stages(self, stage: str, following: str) -> dict[str, Any]:
        return dict(self._reshape("POST", f"/stages/{stage}/fuse", {"next": following}))

    def _reshape(self, method: str, path: str, body: Any = None) -> Any:
        patient = ControllerClient(self.url, self.token, timeout_s=max(self.timeout_s, RESHAPE_TIMEOUT_S))
        return patient.request(method, path, body)

    def add_component(self, stage: str, component: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", f"/stages/{stage}/components", component))

    def remove_component(self, stage: str, name: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/stages/{stage}/components/{name}"))

    def patch_component(self, stage: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("PATCH", f"/stages/{stage}/components/{name}", {"config": config}))

    def reorder(self, stage: str, names: list[str]) -> dict[str, Any]:
        return dict(self.request("PUT", f"/stages/{stage}/order", {"components": names}))

    def set_replicas(self, stage: str, replicas: int) -> dict[str, Any]:
        return dict(self.request("PUT", f"/stages/{stage}/replicas", {"replicas": replicas}))

    def set_autoscaling(self, stage: str, policy: dict[str, Any] | None) -> dict[str, Any]:
        """Turn autoscaling on with ``policy``, or off with None."""
        if policy is None:
            return dict(self.request("DELETE", f"/stages/{stage}/autoscaling"))
        return dict(self.request("PUT", f"/stages/{stage}/autoscaling", policy))

    # -- users' filters ----------------------------------------------------------------------------

    def filters(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/filters"))

    def filter(self, name: str) -> dict[str, Any]:
        """One of the token's filters (an operator's token: any), as ``filters`` lists each."""
        return dict(self.request("GET", f"/filters/{quote(name, safe='')}"))

    def submit_filter(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", "/filters", body))

    def change_filter(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("PATCH", f"/filters/{name}", changes))

    def pause_filter(self, name: str, paused: bool = True) -> dict[str, Any]:
        return dict(self.request("POST", f"/filters/{name}/{'pause' if paused else 'resume'}"))

    def delete_filter(self, name: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/filters/{name}"))

    def try_filter(self, expression: str, limit: int, sample: int) -> dict[str, Any]:
        body = {"expression": expression, "limit": limit, "sample": sample}
        return dict(self.request("POST", "/try-filter", body))

    # -- watchlists and watchmaps ("watchlists" or "watchmaps") ------------------------------------

    def watched(self, kind: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/{kind}"))

    def put_watched(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("PUT", f"/{kind}/{name}", body))

    def delete_watched(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/{kind}/{name}"))


class WorkerClient:
    """``get``/``post``/``put`` on one worker's control API; None when it is down or refuses.

    Subclasses say where the worker listens (``base_url``), whether it is alive, and its token.
    """

    stage: str
    replica: int
    token: str

    @property
    def base_url(self) -> str | None:
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        raise NotImplementedError

    @property
    def headers(self) -> dict[str, str]:
        """The operator token its control API asks for."""
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def request(
        self, method: str, path: str, body: Any, timeout_s: float, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """The worker's JSON answer, or None when it is down, unreachable, or refuses (any non-200):
        a worker that is away reads its configuration from its file when it comes back."""
        if self.base_url is None or not self.alive:
            return None
        try:
            response = httpx.request(
                method,
                self.url(path),
                json=body,
                timeout=timeout_s,
                headers={**self.headers, **(headers or {})},
            )
            result = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return result if isinstance(result, dict) else None

    def post(self, path: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
        return self.request("POST", path, None, timeout_s)

    def put(self, path: str, body: Any, timeout_s: float = 10.0) -> dict[str, Any] | None:
        return self.request("PUT", path, body, timeout_s)

    def get(self, path: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
        return self.request("GET", path, None, timeout_s)

    def propose(self, components: list[dict[str, Any]], pipeline_version: int) -> dict[str, Any] | None:
        """Hand the stage's component list of the controller's ``pipeline_version`` to the worker
        (applied at its next batch boundary)."""
        headers = {PIPELINE_VERSION_HEADER: str(pipeline_version)}
        return self.request("PUT", "/components", components, 10.0, headers)


def controller_bodies() -> BodyResolver:
    """A worker's resolver of stored bodies: fetched from the controller of ``$STARLING_CONTROLLER``
    with the worker's own token (``$STARLING_CONTROL_TOKEN``), which the controller takes as a
    worker's; with no controller named, a resolver that refuses every reference."""
    url = os.environ.get("STARLING_CONTROLLER")
    if not url:
        return BodyResolver()
    client = ControllerClient(url, os.environ.get(TOKEN_ENV), timeout_s=20.0)

    def fetch(digest: str) -> bytes:
        try:
            return client.body(digest)
        except ControllerUnreachableError as exc:
            raise OutageError(str(exc)) from exc
        except ControllerRefusedError as exc:
            if exc.status in (404, 422):
                raise ConfigError(f"the controller has no body {digest}: {exc.detail}") from exc
            raise OutageError(
                f"the controller refused the body {digest} ({exc.status}): {exc.detail}"
            ) from exc

    return BodyResolver(fetch)
