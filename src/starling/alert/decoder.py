"""Bytes off the wire (or out of a file) to normalized alerts.

Two framings arrive:

- an Avro **container file** (magic ``Obj\\x01``): how ZTF sends every Kafka message, and how Rubin
  sample files are stored. The writer schema is in the header. Parsing that ~20 kB schema costs more
  than decoding the alert, so parsed schemas are cached by the header's schema text;
- the Confluent **wire format** (byte ``0x00``, 4-byte big-endian schema id, schemaless Avro): how
  Rubin sends every Kafka message. The schema comes from a :class:`SchemaSource`.

Records are read by a :class:`~starling.alert.record_readers.RecordReader` (cavro where installed,
fastavro otherwise: the same records either way). Any failure, whatever raised it, becomes an
:class:`AlertDecodeError` whose reason names the problem (truncated, wrong magic byte, unknown schema id,
record that does not fit, over a limit); the runtime turns it into a dead letter. The cost of a message
is bounded before it is paid (:class:`DecodeLimits`): its size, what its blocks decompress to, and
(through the writer-schema checks of :mod:`starling.alert.writer_schema`) how many records and items its
counts may claim.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import fastavro
from fastavro.read import HEADER_SCHEMA

from starling.alert.codecs import decompress_block
from starling.alert.model import Alert, Record
from starling.alert.projection import Projection, projection_for
from starling.alert.record_readers import LeftOverBytesError, RecordReader, record_reader
from starling.alert.rubin import normalize_rubin
from starling.alert.schemas import SchemaSource, WriterSchema, default_schema_source
from starling.alert.writer_schema import CheckedSchema, check_alert_schema
from starling.alert.ztf import normalize_ztf
from starling.errors import AlertDecodeError, UnknownSchemaError

CONTAINER_MAGIC = b"Obj\x01"
WIRE_MAGIC = 0
_WIRE_HEADER_BYTES = 5
_SYNC_BYTES = 16
_PARSED_HEADER_SCHEMA = fastavro.parse_schema(HEADER_SCHEMA)
_MAX_CACHED_SCHEMAS = 64
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _ContainerSchema:
    checked: CheckedSchema
    parsed: Any  # compiled by the record reader
    projection: Projection | None


# A record read from a container: its fields, and the loader of its whole record when they are a projection.
_Read = tuple[Record, Callable[[], Record] | None]


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """What one message may cost. A real alert is 10-300 kB; the defaults leave room for container
    files of many alerts while keeping a hostile message's memory to about a gigabyte at worst."""

    max_message_bytes: int = 32 * _MIB
    max_decompressed_bytes: int = 64 * _MIB


def _read_record(stream: io.BytesIO, parsed_schema: Any) -> Record:
    """A container's header (fastavro's: a small record, before any alert schema is known)."""
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
    if isinstance(exc, EOFError | StopIteration):
        return f"truncated message (ended inside a record: {type(exc).__name__} {exc})".replace(" )", ")")
    if isinstance(exc, IndexError):  # an enum symbol or union branch the schema does not have
        return f"bytes that do not fit the schema (an index out of range: {exc})"
    return f"{type(exc).__name__}: {exc}"


def normalize_record(
    record: Record, schema_name: str, origin: str, record_loader: Callable[[], Record] | None = None
) -> Alert:
    """Route a decoded record to its survey's normalizer by the writer schema's name. With
    ``record_loader``, ``record`` is a projection and the loader decodes the whole record."""
    is_ztf = schema_name.startswith("ztf")
    if not is_ztf and "diaSource" not in record:  # Rubin: lsst.vX_Y.alert, and ELAsTiCC simulations
        raise AlertDecodeError(f"writer schema {schema_name!r} is neither a ZTF nor a Rubin alert schema")
    try:
        if is_ztf:
            return normalize_ztf(record, origin, record_loader)
        return normalize_rubin(record, schema_name, origin, record_loader)
    except AlertDecodeError:
        raise
    except Exception as exc:  # a field of the wrong type or shape, whatever the normalizer tripped on
        survey = "ZTF" if is_ztf else "Rubin"
        raise AlertDecodeError(
            f"record does not fit the {survey} alert model: {type(exc).__name__}: {exc}"
        ) from exc


class AlertDecoder:
    """Decodes messages of either framing; one instance per worker (it holds the schema caches)."""

    def __init__(
        self,
        schemas: SchemaSource | None = None,
        limits: DecodeLimits | None = None,
        reader: RecordReader | None = None,
        project: bool = True,
    ) -> None:
        """``project``: read alerts through a projection (what Starling reads), the whole record on first
        use of ``Alert.record``; else whole records at once."""
        self.schemas = schemas if schemas is not None else default_schema_source()
        self.limits = limits or DecodeLimits()
        self.reader = reader or record_reader()
        self.project = project
        # Each wire schema id's projection (None: read whole records).
        self._wire_projections: dict[int, Projection | None] = {}
        # Parsed and checked container schemas by their text (with their projections); a refused one
        # keeps its refusal, so a flood of the same poison costs one parse.
        self._container_schemas: dict[bytes, _ContainerSchema | AlertDecodeError] = {}
        # Each wire schema id, checked and compiled for the reader.
        self._wire_compiled: dict[int, Any] = {}

    def decode(self, payload: bytes, origin: str = "") -> list[Alert]:
        """All alerts in one message (a ZTF message holds one; a container file may hold several)."""
        if len(payload) > self.limits.max_message_bytes:
            raise AlertDecodeError(
                f"message of {len(payload)} bytes is over the decoder's limit of "
                f"{self.limits.max_message_bytes} bytes"
            )
        if payload[:4] == CONTAINER_MAGIC:
            schema_name, records = self._read_container(payload)
            return [normalize_record(fields, schema_name, origin, whole) for fields, whole in records]
        if payload[:1] == bytes([WIRE_MAGIC]):
            return [self._read_wire(payload, origin)]
        if not payload:
            raise AlertDecodeError("empty message")
        raise AlertDecodeError(
            f"wrong magic byte 0x{payload[0]:02x}: neither an Avro container file (starts 'Obj\\x01') "
            "nor the Confluent wire format (starts 0x00)"
        )

    # -- Confluent wire format -------------------------------------------------------------------

    def _read_wire(self, payload: bytes, origin: str) -> Alert:
        if len(payload) < _WIRE_HEADER_BYTES:
            raise AlertDecodeError(
                f"truncated message: {len(payload)} bytes, shorter than the 5-byte wire header"
            )
        schema_id = int.from_bytes(payload[1:_WIRE_HEADER_BYTES], "big")
        schema: WriterSchema = self.schemas.get(schema_id)
        compiled = self._wire_compiled.get(schema_id)
        if compiled is None:
            check_alert_schema(schema.parsed)
            definition = schema.definition if schema.definition is not None else schema.parsed
            try:
                compiled = self.reader.compile(definition)
            except Exception as exc:  # a schema the reader cannot take: every message of it is refused
                compiled = AlertDecodeError(
                    f"unreadable writer schema id {schema_id}: {_describe_failure(exc)}"
                )
            projection = projection_for(definition, schema.full_name) if self.project else None
            # The projection is kept before the compiled schema: one is never cached without the other.
            self._wire_projections[schema_id] = projection
            self._wire_compiled[schema_id] = compiled
        if isinstance(compiled, AlertDecodeError):
            raise AlertDecodeError(compiled.reason)
        projection = self._wire_projections[schema_id]
        if projection is None:
            record = self._wire_record(compiled, schema_id, schema, payload)
            return normalize_record(record, schema.full_name, origin)
        try:
            fields = projection.read(payload, _WIRE_HEADER_BYTES)
        except LeftOverBytesError as exc:
            raise AlertDecodeError(
                f"record does not fit schema id {schema_id} ({schema.full_name}): {exc}"
            ) from exc
        except Exception as exc:  # truncated, a count or branch out of range, nested too deep
            raise AlertDecodeError(
                f"cannot decode with schema id {schema_id}: {_describe_failure(exc)}"
            ) from exc
        whole = partial(self._wire_record, compiled, schema_id, schema, payload)
        return normalize_record(fields, schema.full_name, origin, whole)

    def _wire_record(self, compiled: Any, schema_id: int, schema: WriterSchema, payload: bytes) -> Record:
        """The whole record of a wire message."""
        try:
            return self.reader.read_one(compiled, payload[_WIRE_HEADER_BYTES:])
        except LeftOverBytesError as exc:
            raise AlertDecodeError(
                f"record does not fit schema id {schema_id} ({schema.full_name}): {exc}"
            ) from exc
        except Exception as exc:  # the libraries raise many types on bad bytes; all mean "cannot decode"
            raise AlertDecodeError(
                f"cannot decode with schema id {schema_id}: {_describe_failure(exc)}"
            ) from exc

    # -- Avro container files --------------------------------------------------------------------

    def _container_schema(self, schema_json: bytes) -> _ContainerSchema:
        """The checked and parsed writer schema of a container header (and its projection), once per
        distinct schema text."""
        cached = self._container_schemas.get(schema_json)
        if cached is None:
            try:
                definition = json.loads(schema_json)
                checked = check_alert_schema(definition)
                projection = projection_for(definition, checked.full_name) if self.project else None
                cached = _ContainerSchema(checked, self.reader.compile(definition), projection)
            except AlertDecodeError as exc:
                cached = exc
            except Exception as exc:  # not JSON, or JSON the reader does not take for a schema
                cached = AlertDecodeError(f"unreadable writer schema: {_describe_failure(exc)}")
            if len(self._container_schemas) >= _MAX_CACHED_SCHEMAS:
                self._container_schemas.clear()
            self._container_schemas[schema_json] = cached
        if isinstance(cached, AlertDecodeError):
            raise AlertDecodeError(cached.reason)
        return cached

    def _read_container(self, payload: bytes) -> tuple[str, list[_Read]]:
        stream = io.BytesIO(payload)
        try:
            header = _read_record(stream, _PARSED_HEADER_SCHEMA)
            meta: dict[str, bytes] = header["meta"]
            schema_json = meta["avro.schema"]
            codec = meta.get("avro.codec", b"null").decode("utf-8", "replace")
            sync: bytes = header["sync"]
        except Exception as exc:
            raise AlertDecodeError(f"unreadable Avro container header: {_describe_failure(exc)}") from exc
        schema = self._container_schema(schema_json)
        checked = schema.checked
        try:
            records = self._read_blocks(stream, len(payload), codec, sync, schema)
        except AlertDecodeError as exc:
            raise AlertDecodeError(f"cannot decode container ({checked.full_name}): {exc.reason}") from exc
        except Exception as exc:
            raise AlertDecodeError(
                f"cannot decode container ({checked.full_name}): {_describe_failure(exc)}"
            ) from exc
        if not records:
            raise AlertDecodeError(f"container file ({checked.full_name}) holds no records")
        return checked.full_name, records

    def _read_blocks(
        self, stream: io.BytesIO, end: int, codec: str, sync: bytes, schema: _ContainerSchema
    ) -> list[_Read]:
        """Each block's count is checked against its bytes before a record of it is decoded."""
        checked = schema.checked
        records: list[_Read] = []
        budget = self.limits.max_decompressed_bytes
        while stream.tell() < end:
            count = _read_long(stream)
            size = _read_long(stream)
            if count < 0 or size < 0:
                raise AlertDecodeError(f"block header declares {count} records in {size} bytes")
            block = stream.read(size)
            if len(block) != size:
                raise EOFError(f"block of {size} bytes has only {len(block)}")
            block = decompress_block(codec, block, budget)
            budget -= len(block)
            if count * checked.min_record_bytes > len(block):
                raise AlertDecodeError(
                    f"block declares {count} records in {len(block)} bytes, but a record of this "
                    f"schema takes at least {checked.min_record_bytes} bytes"
                )
            records.extend(self._block_records(schema, block, count))
            if stream.read(_SYNC_BYTES) != sync:
                raise EOFError("missing or wrong sync marker after a block")
        return records

    def _block_records(self, schema: _ContainerSchema, block: bytes, count: int) -> list[_Read]:
        """A block's records: whole, or their projections, each with a loader of its whole record."""
        projected = None
        if schema.projection is not None:
            # Bytes it refuses are read whole, so that such a block is refused (or taken) as it was
            # before projections, with the same reason.
            with contextlib.suppress(Exception):
                projected = schema.projection.read_many(block, count)
        if projected is None:
            return [(record, None) for record in self.reader.read_many(schema.parsed, block, count)]
        whole = _WholeBlock(self.reader, schema, block, count)
        return [(fields, partial(whole.record, index)) for index, fields in enumerate(projected)]


class _WholeBlock:
    """A block's whole records, decoded once on first use; or, every time, the reason they cannot be (a
    value only in a field the projection skips: bad UTF-8, a timestamp out of range)."""

    def __init__(self, reader: RecordReader, schema: _ContainerSchema, block: bytes, count: int) -> None:
        self._read = partial(reader.read_many, schema.parsed, block, count)
        self._name = schema.checked.full_name
        self._outcome: list[Record] | AlertDecodeError | None = None

    def record(self, index: int) -> Record:
        if self._outcome is None:
            try:
                self._outcome = self._read()
            except Exception as exc:
                reason = f"cannot decode container ({self._name}): {_describe_failure(exc)}"
                self._outcome = AlertDecodeError(reason)
        if isinstance(self._outcome, AlertDecodeError):
            raise AlertDecodeError(self._outcome.reason)
        return self._outcome[index]


class WireEncoder:
    """Frames records of one schema in the Confluent wire format (the inverse of the decoder's wire path).

    Written with cavro where it is installed: the same bytes as fastavro's writer, about 3x as fast on
    deep-field Rubin records (a thousand history rows each), which is what makes a synthetic deep night
    affordable to generate. fastavro writes where cavro is not installed."""

    def __init__(self, schema_id: int, parsed_schema: Any) -> None:
        self._prefix = bytes([WIRE_MAGIC]) + schema_id.to_bytes(4, "big")
        self._schema_id, self._schema = schema_id, parsed_schema
        try:
            import cavro
        except ImportError:
            self._cavro: Any = None
        else:
            self._cavro = cavro.Schema(json.dumps(parsed_schema))

    def __call__(self, record: Record) -> bytes:
        if self._cavro is None:
            return encode_wire(self._schema_id, self._schema, record)
        body: bytes = self._cavro.binary_encode(record)
        return self._prefix + body


def encode_wire(schema_id: int, parsed_schema: Any, record: Record) -> bytes:
    """One record framed in the Confluent wire format, written by fastavro (a one-off: a test's message)."""
    out = io.BytesIO()
    out.write(bytes([WIRE_MAGIC]))
    out.write(schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(out, parsed_schema, record)
    return out.getvalue()


__all__ = [
    "AlertDecoder",
    "DecodeLimits",
    "UnknownSchemaError",
    "WireEncoder",
    "encode_wire",
    "normalize_record",
]
