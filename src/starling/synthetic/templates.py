"""Records of default values made from an Avro schema: the blank alert the generator fills in.

Every field the generator does not set keeps the value a survey leaves empty (null where the schema
allows it, else a zero of its type), so a synthetic alert has exactly the real schema's shape.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np


def _default_value(avro_type: Any, named: dict[str, Any]) -> Any:
    """The value a freshly-made record holds: null where allowed, else a zero of the type."""
    if isinstance(avro_type, list):
        return None if "null" in avro_type else _default_value(avro_type[0], named)
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "record":
            named[avro_type["name"]] = avro_type
            return {f["name"]: _default_value(f["type"], named) for f in avro_type["fields"]}
        if kind == "array":
            return []
        if kind == "map":
            return {}
        if kind == "enum":
            return avro_type["symbols"][0]
        return _default_value(kind, named)
    zeros: dict[str, Any] = {
        "null": None,
        "boolean": False,
        "int": 0,
        "long": 0,
        "float": 0.0,
        "double": 0.0,
        "string": "",
        "bytes": b"",
    }
    if avro_type in zeros:
        return zeros[avro_type]
    short = avro_type.rsplit(".", 1)[-1]
    for name, definition in named.items():
        if name == avro_type or name.rsplit(".", 1)[-1] == short:
            return _default_value(definition, named)
    raise ValueError(f"unknown Avro type {avro_type!r}")


def template_record(schema: dict[str, Any], field_name: str | None = None) -> dict[str, Any]:
    """A record of defaults for ``schema`` or for the record type of one of its fields."""
    named: dict[str, Any] = {}
    whole = _default_value(schema, named)
    if field_name is None:
        return dict(whole)
    for f in schema["fields"]:
        if f["name"] == field_name:
            for option in f["type"] if isinstance(f["type"], list) else [f["type"]]:
                if isinstance(option, dict) and option.get("type") == "array":
                    return dict(_default_value(option["items"], named))
                if option != "null":
                    return dict(_default_value(option, named))
    raise KeyError(field_name)


def rubin_definition(schema_id: int) -> dict[str, Any]:
    """The Rubin schema of ``schema_id`` (major*100+minor) as JSON, from the ``lsst-alert-packet`` package."""
    from lsst.alert.packet import SchemaRegistry

    definition: dict[str, Any] = SchemaRegistry.all_schemas_from_filesystem().get_by_id(schema_id).definition
    return definition


def ztf_object_name(rng: np.random.Generator) -> str:
    letters = "".join(rng.choice(list(string.ascii_lowercase), size=7))
    return f"ZTF26{letters}"
