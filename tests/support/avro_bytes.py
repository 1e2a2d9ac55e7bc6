"""Avro bytes by hand, for tests that build hostile messages: varints, container files taken apart and
put back together, and the layout of a real message (:func:`shape_of`): its framing, its body, and where
every count and length in the body is."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.read import HEADER_SCHEMA

SYNC = bytes(range(16))


def varint(value: int) -> bytes:
    """An Avro long: zig-zag, then 7 bits a byte."""
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append(zigzag & 0x7F | 0x80)
        zigzag >>= 7
    return bytes([*out, zigzag])


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), pos


@dataclass(frozen=True)
class Container:
    meta: dict[str, bytes]
    sync: bytes
    blocks: list[tuple[int, bytes]]
    header_end: int


def parse_container(payload: bytes) -> Container:
    stream = io.BytesIO(payload)
    header = fastavro.schemaless_reader(stream, HEADER_SCHEMA)
    header_end, blocks = stream.tell(), []
    while stream.tell() < len(payload):
        count, size = (fastavro.schemaless_reader(stream, "long") for _ in "cs")
        blocks.append((count, stream.read(size)))
        assert stream.read(16) == header["sync"]
    return Container(dict(header["meta"]), header["sync"], blocks, header_end)


def build_container(
    meta: dict[str, bytes], blocks: list[tuple[int, bytes]], sync: bytes = SYNC, size: int | None = None
) -> bytes:
    """A container file; ``size`` replaces every block's true byte count."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, HEADER_SCHEMA, {"magic": b"Obj\x01", "meta": meta, "sync": sync})
    for count, data in blocks:
        out.write(varint(count) + varint(len(data) if size is None else size) + data + sync)
    return out.getvalue()


def schema_meta(schema: Any, codec: str = "null") -> dict[str, bytes]:
    return {"avro.schema": json.dumps(schema).encode(), "avro.codec": codec.encode()}


def length_marks(schema: Any, buf: bytes, pos: int, named: dict[str, Any], marks: list[Any]) -> int:
    """Walk one datum; note the (start, end) of every string/bytes length and array/map block count."""
    if isinstance(schema, str) and schema in named:
        return length_marks(named[schema], buf, pos, named, marks)
    if isinstance(schema, list):
        index, pos = read_varint(buf, pos)
        return length_marks(schema[index], buf, pos, named, marks)
    if isinstance(schema, str):
        if schema in ("string", "bytes"):
            size, end = read_varint(buf, pos)
            marks.append((pos, end))
            return end + size
        if schema in ("int", "long"):
            return read_varint(buf, pos)[1]
        return pos + {"null": 0, "boolean": 1, "float": 4, "double": 8}[schema]
    kind = schema["type"]
    if kind == "record":
        for item in schema["fields"]:
            pos = length_marks(item["type"], buf, pos, named, marks)
        return pos
    if kind in ("array", "map"):
        while True:
            count, end = read_varint(buf, pos)
            marks.append((pos, end))
            pos = end if count >= 0 else read_varint(buf, end)[1]
            if count == 0:
                return pos
            for _ in range(abs(count)):
                pos = length_marks("string", buf, pos, named, []) if kind == "map" else pos
                pos = length_marks(schema.get("items", schema.get("values")), buf, pos, named, marks)
    if kind == "enum":
        return read_varint(buf, pos)[1]
    return pos + schema["size"] if kind == "fixed" else length_marks(kind, buf, pos, named, marks)


@dataclass
class Shape:
    """Where a real message's parts are: its framing, its body and the body's counts and lengths."""

    container: Container | None
    body: bytes
    marks: list[tuple[int, int]]
    end: int  # where the walk over the body stopped: len(body) if the walk is right
    regions: dict[str, tuple[int, int]]

    def with_body(self, payload: bytes, body: bytes, count: int | None = None) -> bytes:
        if self.container is None:
            return payload[:5] + body
        [(real_count, _)] = self.container.blocks
        blocks = [(real_count if count is None else count, body)]
        return build_container(self.container.meta, blocks, self.container.sync)


def shape_of(payload: bytes, schemas: Any) -> Shape:
    """A real message's layout: a wire-format message (schema from ``schemas``) or a one-block container."""
    marks: list[tuple[int, int]] = []
    if payload[:1] == b"\x00":
        container, body = None, payload[5:]
        parsed = schemas.get(int.from_bytes(payload[1:5], "big")).parsed
        regions = {"wire header": (0, 5), "body": (5, len(payload))}
    else:
        container = parse_container(payload)
        body, text = container.blocks[0][1], container.meta["avro.schema"]
        parsed = fastavro.parse_schema(json.loads(text))
        start = payload.index(text)
        regions = {"header": (0, container.header_end), "writer schema": (start, start + len(text))}
        regions["body"] = (container.header_end, len(payload))
    end = length_marks(parsed, body, 0, parsed["__named_schemas"], marks)
    return Shape(container, body, marks, end, regions)
