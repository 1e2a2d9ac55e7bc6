"""Calling a worker's control API, wherever the worker runs (a local process, a Kubernetes pod)."""

from __future__ import annotations

from typing import Any

import httpx


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

    def _call(self, method: str, path: str, body: Any, timeout_s: float) -> dict[str, Any] | None:
        if self.base_url is None or not self.alive:
            return None
        response = httpx.request(method, self.url(path), json=body, timeout=timeout_s, headers=self.headers)
        result: dict[str, Any] = response.json()
        return result if response.status_code == 200 else None

    def post(self, path: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
        return self._call("POST", path, None, timeout_s)

    def put(self, path: str, body: Any, timeout_s: float = 10.0) -> dict[str, Any] | None:
        return self._call("PUT", path, body, timeout_s)

    def get(self, path: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
        """A reading: a worker that does not answer reads as None rather than raising."""
        try:
            return self._call("GET", path, None, timeout_s)
        except httpx.HTTPError:
            return None
