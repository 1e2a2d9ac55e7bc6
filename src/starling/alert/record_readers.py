"""How the decoder reads Avro records: the one place that calls an Avro library on an alert's body.

Two readers give the same records (dicts, lists, bytes, str, numbers, None: the tests check every real
ZTF and Rubin sample field by field, and the hostile messages with both):

- ``cavro`` (a compiled, Cython Avro codec): the default where it is installed. On the real LSSTCam alerts
  it reads 2-3x as fast as fastavro (``bash scripts/bench --only decode``);
- ``fastavro``: the fallback where cavro cannot be installed (no wheel for the platform), or when chosen
  with ``STARLING_AVRO=fastavro``.

Either way a failure raises whatever the library raises (the decoder turns it into a dead letter with its
reason); a record that leaves bytes over raises :class:`LeftOverBytesError`.
"""

from __future__ import annotations

import io
import os
from typing import Any, Protocol

import fastavro

from starling.alert.model import Record

AVRO_ENV = "STARLING_AVRO"


class LeftOverBytesError(ValueError):
    """A message held more bytes than its one record took."""


class RecordReader(Protocol):
    name: str

    def compile(self, definition: Any) -> Any:
        """The writer schema made ready to read with (once per schema: it is cached by the caller)."""

    def read_one(self, compiled: Any, data: bytes) -> Record:
        """The one record ``data`` holds, all of it."""

    def read_many(self, compiled: Any, data: bytes, count: int) -> list[Record]:
        """``count`` records one after the other from the start of ``data`` (a container's block)."""


def _record(value: Any) -> Record:
    if not isinstance(value, dict):
        raise TypeError(f"decoded a {type(value).__name__}, not a record")
    return value


class FastavroReader:
    name = "fastavro"

    def compile(self, definition: Any) -> Any:
        return fastavro.parse_schema(definition)

    def read_one(self, compiled: Any, data: bytes) -> Record:
        stream = io.BytesIO(data)
        record = _record(fastavro.schemaless_reader(stream, compiled))
        if left := len(data) - stream.tell():
            raise LeftOverBytesError(f"{left} bytes left over after decoding")
        return record

    def read_many(self, compiled: Any, data: bytes, count: int) -> list[Record]:
        stream = io.BytesIO(data)
        return [_record(fastavro.schemaless_reader(stream, compiled)) for _ in range(count)]


class CavroReader:
    name = "cavro"

    def __init__(self) -> None:
        import cavro

        self._cavro = cavro
        # Records as dicts, as fastavro gives them; schemas taken as fastavro takes them (ZTF's give union
        # fields defaults of their second branch: the spec wants the first, readers let it pass).
        self._options = cavro.DEFAULT_OPTIONS.replace(
            record_decodes_to_dict=True,
            allow_union_default_any_member=True,
            allow_invalid_default_values=True,
        )
        self._one_byte = cavro.Schema('"boolean"', options=self._options)

    def compile(self, definition: Any) -> Any:
        return self._cavro.Schema(definition, options=self._options)

    def read_one(self, compiled: Any, data: bytes) -> Record:
        reader = self._cavro.MemoryReader(data)
        record = _record(compiled.binary_read(reader))
        try:  # cavro tells no position: a byte that can still be read is a byte left over
            self._one_byte.binary_read(reader)
        except EOFError:
            return record
        raise LeftOverBytesError("bytes left over after decoding")

    def read_many(self, compiled: Any, data: bytes, count: int) -> list[Record]:
        reader = self._cavro.MemoryReader(data)
        return [_record(compiled.binary_read(reader)) for _ in range(count)]


def record_reader(name: str | None = None) -> RecordReader:
    """The reader named (``cavro`` or ``fastavro``; default ``$STARLING_AVRO``, else cavro when it is
    installed, else fastavro)."""
    wanted = name or os.environ.get(AVRO_ENV, "")
    if wanted == "fastavro":
        return FastavroReader()
    try:
        return CavroReader()
    except ImportError:
        if wanted == "cavro":
            raise
        return FastavroReader()


__all__ = ["AVRO_ENV", "CavroReader", "FastavroReader", "LeftOverBytesError", "RecordReader", "record_reader"]
