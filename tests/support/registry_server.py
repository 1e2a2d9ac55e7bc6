"""A schema registry for the tests, on 127.0.0.1."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Registry(ThreadingHTTPServer):
    """A Confluent Schema Registry's ``GET /schemas/ids/{id}``, serving the schemas it is given."""

    def __init__(self, schemas: dict[int, str], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.schemas = schemas
        self.requests: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: Registry

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        parts = self.path.strip("/").split("/")
        if (
            len(parts) == 3
            and parts[:2] == ["schemas", "ids"]
            and parts[2].isdigit()
            and int(parts[2]) in self.server.schemas
        ):
            body = json.dumps({"schema": self.server.schemas[int(parts[2])]}).encode()
            self.send_response(200)
        else:
            body = json.dumps({"error_code": 40403, "message": "Schema not found"}).encode()
            self.send_response(404)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
