"""Real endpoints on 127.0.0.1 for the webhook tests: one that records every request and answers as told
(a status, a redirect, slowly), one that accepts connections and never answers, and a port where nothing
listens."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Given the request's index (0, 1, ...): the status and the headers to answer with.
Answer = Callable[[int], tuple[int, dict[str, str]]]


@dataclass
class Request:
    at: float
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Recorder:
    answer: Answer = field(default=lambda index: (204, {}))
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    arrived: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.status < 300]


@contextmanager
def recorder(
    answer: Answer | None = None, port: int = 0, tls: ssl.SSLContext | None = None
) -> Iterator[Recorder]:
    """A server on 127.0.0.1 (over TLS with that context) that answers as told and records every request."""
    found = Recorder(answer) if answer is not None else Recorder()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            at = time.monotonic()
            with lock:
                index = found.arrived
                found.arrived += 1
            status, headers = found.answer(index)  # outside the lock: it may take its time
            with lock:
                found.requests.append(Request(at, dict(self.headers), body, status))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": "0"}.items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    found.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def hanging() -> Iterator[str]:
    """A URL whose server takes the connection (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def free_port() -> int:
    """A port where nothing listens (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
