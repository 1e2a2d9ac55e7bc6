"""Bytes off the wire (or out of a file) to normalized alerts.

Two framings arrive:

- an Avro **container file** (magic ``Obj\\x01``): how ZTF sends every Kafka message, and how Rubin
  sample files are stored. The writer schema is in the header. Parsing that ~20 kB schema costs more
  than decoding the alert, so parsed schemas are cached by the header's schema text;
- the Confluent **wire format** (byte ``0x00``, 4-byte big-endian schema id, schemaless Avro): how
  Rubin sends every Kafka message. The schema comes from a :class:`SchemaSource`.

Any failure becomes an :class:`AlertDecodeError` whose reason names the problem (truncated, wrong
magic byte, unknown schema id, record that does not fit); the runtime turns it into a dead letter.
"""

from __future__ import annotations

import io
import json
import zlib
from typing import Any

import fastavro
from fastavro.read import HEADER_SCHEMA

from starling.alert.model import Alert, Record
from starling.alert.rubin import normalize_rubin
from starling.alert.schemas import SchemaSource, WriterSchema, default_schema_source
from starling.alert.ztf import normalize_ztf
from starling.errors import AlertDecodeError, UnknownSchemaError

CONTAINER_MAGIC = b"Obj\x01"
WIRE_MAGIC = 0
_WIRE_HEADER_BYTES = 5
_SYNC_BYTES = 16
_PARSED_HEADER_SCHEMA = fastavro.parse_schema(HEADER_SCHEMA)
_MAX_CACHED_SCHEMAS = 64


def _read_record(stream: io.BytesIO, parsed_schema: Any) -> Record:
    record = fastavro.schemaless_reader(stream, parsed_schema)
    if not isinstance(record, dict):
        raise TypeError(f"decoded a {type(record).__name__}, not a record")
    return record


def _read_long(stream: io.BytesIO) -> int:
    value = fastavro.schemaless_reader(stream, "long")
    if not isinstance(value, int):
        raise EOFError("no block header where one was expected")
    return value


def _describe_failure(exc: BaseException) -> str:
    """Name the usual ways a record fails to decode in words a person reads in a dead-letter file."""
    if isinstance(exc, EOFError | IndexError | StopIteration):
        return f"truncated message (ended inside a record: {type(exc).__name__} {exc})".replace(" )", ")")
    return f"{type(exc).__name__}: {exc}"


def normalize_record(record: Record, schema_name: str, origin: str) -> Alert:
    """Route a decoded record to its survey's normalizer by the writer schema's name."""
    if schema_name.startswith("ztf"):
        return normalize_ztf(record, origin)
    if "diaSource" in record:  # lsst.vX_Y.alert, and Rubin-shaped simulations such as ELAsTiCC
        return normalize_rubin(record, schema_name, origin)
    raise AlertDecodeError(f"writer schema {schema_name!r} is neither a ZTF nor a Rubin alert schema")


class AlertDecoder:
    """Decodes messages of either framing; one instance per worker (it holds the schema caches)."""

    def __init__(self, schemas: SchemaSource | None = None) -> None:
        self.schemas = schemas if schemas is not None else default_schema_source()
        self._container_schemas: dict[bytes, tuple[str, Any]] = {}

    def decode(self, payload: bytes, origin: str = "") -> list[Alert]:
        """All alerts in one message (a ZTF message holds one; a container file may hold several)."""
        if payload[:4] == CONTAINER_MAGIC:
            schema_name, records = self._read_container(payload)
        elif payload[:1] == bytes([WIRE_MAGIC]):
            schema_name, records = self._read_wire(payload)
        elif not payload:
            raise AlertDecodeError("empty message")
        else:
            raise AlertDecodeError(
                f"wrong magic byte 0x{payload[0]:02x}: neither an Avro container file (starts 'Obj\\x01') "
                "nor the Confluent wire format (starts 0x00)"
            )
        return [normalize_record(record, schema_name, origin) for record in records]

    # -- Confluent wire format -------------------------------------------------------------------

    def _read_wire(self, payload: bytes) -> tuple[str, list[Record]]:
        if len(payload) < _WIRE_HEADER_BYTES:
            raise AlertDecodeError(
                f"truncated message: {len(payload)} bytes, shorter than the 5-byte wire header"
            )
        schema_id = int.from_bytes(payload[1:_WIRE_HEADER_BYTES], "big")
        schema: WriterSchema = self.schemas.get(schema_id)
        body = io.BytesIO(payload)
        body.seek(_WIRE_HEADER_BYTES)
        try:
            record = _read_record(body, schema.parsed)
        except Exception as exc:  # fastavro raises many types on bad bytes; all mean "cannot decode"
            raise AlertDecodeError(
                f"cannot decode with schema id {schema_id}: {_describe_failure(exc)}"
            ) from exc
        left_over = len(payload) - body.tell()
        if left_over:
            raise AlertDecodeError(
                f"record does not fit schema id {schema_id} ({schema.full_name}): "
                f"{left_over} bytes left over after decoding"
            )
        return schema.full_name, [record]

    # -- Avro container files --------------------------------------------------------------------

    def _container_schema(self, schema_json: bytes) -> tuple[str, Any]:
        """The parsed writer schema of a container header, parsed once per distinct schema text."""
        cached = self._container_schemas.get(schema_json)
        if cached is None:
            definition = json.loads(schema_json)
            parsed = fastavro.parse_schema(definition)
            name = definition.get("name", "") if isinstance(definition, dict) else ""
            namespace = definition.get("namespace") if isinstance(definition, dict) else None
            full_name = f"{namespace}.{name}" if namespace and "." not in name else name
            if len(self._container_schemas) >= _MAX_CACHED_SCHEMAS:
                self._container_schemas.clear()
            cached = self._container_schemas[schema_json] = (full_name, parsed)
        return cached

    def _read_container(self, payload: bytes) -> tuple[str, list[Record]]:
        stream = io.BytesIO(payload)
        try:
            header = _read_record(stream, _PARSED_HEADER_SCHEMA)
            meta: dict[str, bytes] = header["meta"]
            schema_name, parsed = self._container_schema(meta["avro.schema"])
        except Exception as exc:
            raise AlertDecodeError(f"unreadable Avro container header: {_describe_failure(exc)}") from exc
        codec = meta.get("avro.codec", b"null")
        if codec not in (b"null", b"deflate"):
            return schema_name, self._read_container_slowly(payload)
        sync: bytes = header["sync"]
        records: list[Record] = []
        try:
            while stream.tell() < len(payload):
                count = _read_long(stream)
                size = _read_long(stream)
                block = stream.read(size)
                if len(block) != size:
                    raise EOFError(f"block of {size} bytes has only {len(block)}")
                if codec == b"deflate":
                    block = zlib.decompress(block, -15)
                block_stream = io.BytesIO(block)
                records.extend(_read_record(block_stream, parsed) for _ in range(count))
                if stream.read(_SYNC_BYTES) != sync:
                    raise EOFError("missing or wrong sync marker after a block")
        except Exception as exc:
            raise AlertDecodeError(
                f"cannot decode container ({schema_name}): {_describe_failure(exc)}"
            ) from exc
        if not records:
            raise AlertDecodeError(f"container file ({schema_name}) holds no records")
        return schema_name, records

    @staticmethod
    def _read_container_slowly(payload: bytes) -> list[Record]:
        """Codecs other than null/deflate (snappy, zstandard...): let fastavro do all of it."""
        try:
            return [record for record in fastavro.reader(io.BytesIO(payload)) if isinstance(record, dict)]
        except Exception as exc:
            raise AlertDecodeError(f"cannot decode container: {_describe_failure(exc)}") from exc


def encode_wire(schema_id: int, parsed_schema: Any, record: Record) -> bytes:
    """Frame one record in the Confluent wire format (the inverse of the decoder's wire path)."""
    out = io.BytesIO()
    out.write(bytes([WIRE_MAGIC]))
    out.write(schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(out, parsed_schema, record)
    return out.getvalue()


__all__ = ["AlertDecoder", "UnknownSchemaError", "encode_wire", "normalize_record"]
