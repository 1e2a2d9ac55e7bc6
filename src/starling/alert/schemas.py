"""Where Rubin writer schemas come from, by Confluent schema id.

Rubin's schema id is major*100+minor (lsst.v7_1 -> 701). Two sources, tried in the order given:

- :class:`PackagedRubinSchemas`: every schema the ``lsst-alert-packet`` package ships (offline);
- :class:`ConfluentSchemaRegistry`: ``GET {url}/schemas/ids/{id}`` on a Confluent Schema Registry.

Each caches what it parsed, by id, for the life of the process: a schema id never changes meaning.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import fastavro
import httpx

from starling.errors import SchemaSourceUnavailableError, UnknownSchemaError


@dataclass(frozen=True, slots=True)
class WriterSchema:
    """A parsed Avro schema and its full name (e.g. ``lsst.v7_1.alert``)."""

    schema_id: int
    full_name: str
    parsed: Any  # fastavro's (the writer-schema checks and the synthetic generator read it)
    definition: Any = None  # the JSON definition, for a record reader to compile


class SchemaSource(Protocol):
    def get(self, schema_id: int) -> WriterSchema:
        """The writer schema for ``schema_id``; raises UnknownSchemaError if this source lacks it."""
        ...


def parse_writer_schema(schema_id: int, definition: dict[str, Any]) -> WriterSchema:
    name = str(definition.get("name", ""))
    namespace = definition.get("namespace")
    full_name = f"{namespace}.{name}" if namespace and "." not in name else name
    return WriterSchema(schema_id, full_name, fastavro.parse_schema(definition), definition)


class PackagedRubinSchemas:
    """The Rubin schemas shipped inside ``lsst-alert-packet``, each loaded on first use by its id."""

    def __init__(self) -> None:
        self._cache: dict[int, WriterSchema] = {}
        self._lock = threading.Lock()

    def known_ids(self) -> set[int]:
        from lsst.alert.packet import SchemaRegistry

        return set(SchemaRegistry.all_schemas_from_filesystem().known_ids)

    def get(self, schema_id: int) -> WriterSchema:
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        from lsst.alert.packet import Schema, get_schema_path

        major, minor = divmod(schema_id, 100)
        alert_file = Path(get_schema_path(major, minor)) / f"lsst.v{major}_{minor}.alert.avsc"
        if not alert_file.is_file():
            raise UnknownSchemaError(schema_id, "not among the schemas of lsst-alert-packet")
        with self._lock:
            schema = parse_writer_schema(schema_id, Schema.from_file(str(alert_file)).definition)
            self._cache[schema_id] = schema
            return schema


class ConfluentSchemaRegistry:
    """A Confluent Schema Registry reached over HTTP; answers are cached by id."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s)
        self._cache: dict[int, WriterSchema] = {}

    def get(self, schema_id: int) -> WriterSchema:
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        try:
            response = self._client.get(f"{self.url}/schemas/ids/{schema_id}")
        except httpx.HTTPError as exc:
            raise SchemaSourceUnavailableError(f"schema registry {self.url} unreachable: {exc}") from exc
        if response.status_code >= 500:
            raise SchemaSourceUnavailableError(
                f"schema registry {self.url} answered HTTP {response.status_code}"
            )
        if response.status_code == 404:
            raise UnknownSchemaError(schema_id, f"registry {self.url} has no such id")
        if response.status_code != 200:
            raise UnknownSchemaError(schema_id, f"registry {self.url} answered HTTP {response.status_code}")
        try:
            definition = json.loads(response.json()["schema"])
            schema = parse_writer_schema(schema_id, definition)
        except (ValueError, KeyError, TypeError, fastavro.schema.SchemaParseException) as exc:
            raise UnknownSchemaError(
                schema_id, f"registry {self.url} sent an unusable schema: {exc}"
            ) from exc
        self._cache[schema_id] = schema
        return schema

    def close(self) -> None:
        self._client.close()


class ChainedSchemas:
    """Try each source in turn; the first that knows the id wins."""

    def __init__(self, *sources: SchemaSource) -> None:
        self.sources = sources

    def get(self, schema_id: int) -> WriterSchema:
        reasons = []
        unavailable: SchemaSourceUnavailableError | None = None
        for source in self.sources:
            try:
                return source.get(schema_id)
            except UnknownSchemaError as exc:
                reasons.append(exc.reason)
            except SchemaSourceUnavailableError as exc:
                unavailable = exc
        if unavailable is not None:  # the source that is down may know it: wait for it
            raise unavailable
        raise UnknownSchemaError(schema_id, "; ".join(reasons) or "no schema source configured")


def default_schema_source(registry_url: str | None = None) -> SchemaSource:
    """The registry first when one is named (it may know newer schemas), then the package."""
    packaged = PackagedRubinSchemas()
    if registry_url:
        return ChainedSchemas(ConfluentSchemaRegistry(registry_url), packaged)
    return packaged
