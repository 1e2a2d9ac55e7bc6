"""Checks on a writer schema before a byte of the body is decoded.

A ZTF message carries its own writer schema, so a hostile or broken producer chooses the schema the
decoder follows. Two properties make decoding cost bounded by the message's size, and are checked
here once per distinct schema:

- the schema is an alert of a survey Starling knows (a ZTF record with a ``candidate`` record, or a
  Rubin-shaped record with a ``diaSource`` record), so a record that does not fit is refused before
  it is read rather than half-way through normalizing it;
- every record takes at least one byte and every array item or map value at least
  :data:`MIN_ITEM_BYTES`, so a count read from the message (records in a block, items in an array)
  is bounded by the bytes that are left: a 125-byte message can no longer declare two million empty
  records and have them all allocated, and the Python objects decoded from a message stay within a
  small multiple of its size. (Every real ZTF and Rubin schema passes: their smallest array item,
  Rubin's ``prvDiaNondetectionLimits`` row, takes 14 bytes.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starling.errors import AlertDecodeError

MIN_ITEM_BYTES = 8

# Bytes each primitive takes at least (a varint takes one; a string or bytes at least its length).
_PRIMITIVE_MIN_BYTES = {
    "null": 0,
    "boolean": 1,
    "int": 1,
    "long": 1,
    "float": 4,
    "double": 8,
    "bytes": 1,
    "string": 1,
}


@dataclass(frozen=True, slots=True)
class CheckedSchema:
    """A writer schema that passed: its full name, and the fewest bytes one record of it takes."""

    full_name: str
    min_record_bytes: int


def full_name_of(definition: Any) -> str:
    if not isinstance(definition, dict):
        return ""
    name = str(definition.get("name", ""))
    namespace = definition.get("namespace")
    return f"{namespace}.{name}" if namespace and "." not in name else name


class _SizeWalker:
    """Fewest encoded bytes of each type, with the named types resolved as they are defined."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}
        self._in_progress: set[int] = set()

    def resolve(self, schema: Any, namespace: str = "") -> Any:
        """A named type's definition, as Avro resolves a name: a bare name in the enclosing namespace
        first (``Foo`` in namespace ``b`` is ``b.Foo``, even when an ``a.Foo`` came first), else as given."""
        if isinstance(schema, str) and schema not in _PRIMITIVE_MIN_BYTES:
            if namespace and "." not in schema and (found := self.named.get(f"{namespace}.{schema}")):
                return found
            return self.named.get(schema)
        return schema

    def min_bytes(self, schema: Any, where: str, namespace: str = "") -> int:
        if isinstance(schema, str):
            if schema in _PRIMITIVE_MIN_BYTES:
                return _PRIMITIVE_MIN_BYTES[schema]
            definition = self.resolve(schema, namespace)
            if definition is None:
                raise AlertDecodeError(f"writer schema refers to an undefined type {schema!r} at {where}")
            return self.min_bytes(definition, where, namespace)
        if isinstance(schema, list):  # a union: the branch index, then the cheapest branch
            return 1 + min((self.min_bytes(b, where, namespace) for b in schema), default=0)
        if not isinstance(schema, dict):
            raise AlertDecodeError(f"writer schema has a type that is not a type at {where}")
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            namespace = self._define(schema, namespace)
        if kind in ("record", "error"):
            return self._record_bytes(schema, where, namespace)
        if kind in ("array", "map"):
            items = schema.get("items" if kind == "array" else "values")
            item_bytes = self.min_bytes(items, f"{where}[]", namespace)
            if item_bytes < MIN_ITEM_BYTES:
                raise AlertDecodeError(
                    f"writer schema has an {kind} of items that may take {item_bytes} bytes at {where} "
                    f"(at least {MIN_ITEM_BYTES}): its length could not be bounded by the message's"
                )
            return 1  # an empty array or map is one zero count
        if kind == "enum":
            return 1
        if kind == "fixed":
            return int(schema.get("size", 0))
        return self.min_bytes(kind, where, namespace)  # {"type": "long", "logicalType": ...}

    def _define(self, schema: dict[str, Any], enclosing: str) -> str:
        """Register a named type under its full name; the namespace its own fields are named in."""
        name = str(schema.get("name", ""))
        if "." in name:
            full = name
        else:
            namespace = schema.get("namespace", enclosing) or ""
            full = f"{namespace}.{name}" if namespace else name
        self.named[full] = schema
        self.named.setdefault(name, schema)
        return full.rsplit(".", 1)[0] if "." in full else ""

    def _record_bytes(self, schema: dict[str, Any], where: str, namespace: str) -> int:
        if id(schema) in self._in_progress:
            return 0  # a recursive reference: its own array or union already counts a byte
        self._in_progress.add(id(schema))
        try:
            fields = [f for f in schema.get("fields") or [] if isinstance(f, dict)]
            return sum(self.min_bytes(f.get("type"), f"{where}.{f.get('name')}", namespace) for f in fields)
        finally:
            self._in_progress.discard(id(schema))


def _field_type(definition: dict[str, Any], name: str) -> Any:
    for field in definition.get("fields") or []:
        if isinstance(field, dict) and field.get("name") == name:
            return field.get("type")
    return None


def _is_record(schema: Any, walker: _SizeWalker, namespace: str) -> bool:
    schema = walker.resolve(schema, namespace)
    return isinstance(schema, dict) and schema.get("type") in ("record", "error")


def check_alert_schema(definition: Any) -> CheckedSchema:
    """Refuse a writer schema that is not a survey alert or whose counts cannot be bounded."""
    if not isinstance(definition, dict) or definition.get("type") not in ("record", "error"):
        raise AlertDecodeError("writer schema is not a record: neither a ZTF nor a Rubin alert schema")
    full_name = full_name_of(definition)
    walker = _SizeWalker()
    min_bytes = walker.min_bytes(definition, full_name or "the record")
    if full_name.startswith("ztf"):
        survey, required = "ZTF", "candidate"
    elif _field_type(definition, "diaSource") is not None:
        survey, required = "Rubin", "diaSource"
    else:
        raise AlertDecodeError(f"writer schema {full_name!r} is neither a ZTF nor a Rubin alert schema")
    namespace = full_name.rsplit(".", 1)[0] if "." in full_name else ""
    if not _is_record(_field_type(definition, required), walker, namespace):
        raise AlertDecodeError(
            f"writer schema {full_name!r} does not fit the {survey} alert model: "
            f"{required!r} is missing or not a record"
        )
    if min_bytes < 1:
        raise AlertDecodeError(f"writer schema {full_name!r} has records that take no bytes")
    return CheckedSchema(full_name, min_bytes)
