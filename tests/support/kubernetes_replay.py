"""A Kubernetes API exchange played back on 127.0.0.1, for testing the calls a client makes.

No Kubernetes API server can run on this machine (no container engine, no kubelet, no etcd), so the
``kubernetes`` backend is tested against an exchange written down from the Kubernetes API reference:
each step is the request the client must make (verb, path, query, content type, body fields) and
the response kube-apiserver gives (status code and JSON body, e.g. a ``Status`` of reason NotFound).
Steps are played in order; a request that differs from the next step is answered 500 and kept in
``mismatches``, so the test sees exactly where the client departs from the exchange.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote


def _contains(actual: Any, expected: Any) -> bool:
    """``expected`` is a subset of ``actual`` (dict keys recursively; lists and scalars equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in expected.items()
        )
    return bool(actual == expected)


class ReplayedKubernetesApi:
    def __init__(self, exchange: Path) -> None:
        self.steps: list[dict[str, Any]] = json.loads(exchange.read_text())["steps"]
        self.position = 0
        self.requests: list[dict[str, Any]] = []
        self.mismatches: list[str] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = {
                    "method": self.command,
                    "path": unquote(self.path),  # percent-encoding differs between clients
                    "content_type": self.headers.get("Content-Type"),
                    "body": body,
                }
                status, answer = replay.play(request)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815 (http.server names)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def play(self, request: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(request)
            if self.position >= len(self.steps):
                self.mismatches.append(f"unexpected request after the exchange ended: {request}")
                return 500, {"message": "the exchange has ended"}
            step = self.steps[self.position]
            self.position += 1
            expected = step["request"]
            problems = [
                f"{key}: expected {expected[key]!r}, got {request[key]!r}"
                for key in ("method", "path", "content_type")
                if key in expected and expected[key] != request[key]
            ]
            if "body" in expected and not _contains(request["body"], expected["body"]):
                problems.append(f"body: expected to contain {expected['body']!r}, got {request['body']!r}")
            if problems:
                self.mismatches.append(
                    f"step {self.position} ({step.get('note', '')}): {'; '.join(problems)}"
                )
                return 500, {"message": "; ".join(problems)}
            response = step["response"]
            body = response.get("body")
            if response.get("echo_request_body"):  # create and replace return the object as stored
                body = {**request["body"], **(body or {})}
            return int(response["status"]), body

    @property
    def finished(self) -> bool:
        return self.position == len(self.steps)

    def __enter__(self) -> ReplayedKubernetesApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
