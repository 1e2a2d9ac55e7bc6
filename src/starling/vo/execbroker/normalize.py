"""The dialects of the ExecutionBroker draft, brought to the newest before anything reads them.

The draft's examples and schemas disagree. Starling speaks the dialect of the newest examples
(``examples/001`` to ``007``, which follow the HemarisDM data model) and accepts the older ones
(``examples/example-0xx``, the Calycopis schema) by rewriting them on input:

- ``type`` is ``kind`` on every typed object (not on the data fields ``skao.checksum.type``, ``rucio.type``);
- ``computer`` is ``compute`` (and ``types/computer/`` is ``types/compute/`` in a kind's URI);
- flat ``name``, ``uuid``, ``href`` and ``created`` go under ``meta`` (``href`` as ``meta.url``);
- a kind's URI without the version (``.../EB/schema/types/...``) gets ``v1.0/``;
- an update wrapped in ``update:`` is unwrapped, and ``state``/``status`` mean ``phase``;
- a requested start given as one interval is a list of one.

Nothing else is changed: a field or kind the newest dialect does not have is left as it came, for the
strict models (``model``) to refuse with its path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# The objects that carry a kind (the discriminator), by the key that holds them.
_TYPED_ONE = ("executable", "compute")
_TYPED_MANY = ("volumes", "storage", "data", "offers")
_META_FIELDS = {"name": "name", "uuid": "uuid", "href": "url", "created": "created"}
EB_PREFIX = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/"
_UNVERSIONED = "https://www.purl.org/ivoa.net/EB/schema/types/"


def normalize_request(document: Any) -> Any:
    """An offer-set request in the newest dialect (a document that is not a mapping is returned as is)."""
    if not isinstance(document, dict):
        return document
    request = _plain(document)
    if "computer" in request and "compute" not in request:
        request["compute"] = request.pop("computer")
    _meta(request)
    for key in _TYPED_ONE:
        if isinstance(request.get(key), dict):
            request[key] = _typed(request[key])
    for key in _TYPED_MANY:
        if isinstance(request.get(key), list):
            request[key] = [_typed(item) if isinstance(item, dict) else item for item in request[key]]
    requested = (
        request.get("schedule", {}).get("requested") if isinstance(request.get("schedule"), dict) else None
    )
    if isinstance(requested, dict) and isinstance(requested.get("start"), str):
        requested["start"] = [requested["start"]]
    return request


def normalize_update(document: Any) -> Any:
    """An update request in the newest dialect: ``{kind, path, value}``."""
    if not isinstance(document, dict):
        return document
    update = _plain(document)
    if set(update) == {"update"} and isinstance(update["update"], dict):
        update = update["update"]
    if "type" in update and "kind" not in update:
        update["kind"] = update.pop("type")
    if update.get("path") in ("state", "status"):
        update["path"] = "phase"
    return update


def normalize_kind(kind: Any) -> Any:
    """A kind's URI as the newest dialect spells it."""
    if not isinstance(kind, str):
        return kind
    if kind.startswith(_UNVERSIONED):
        kind = EB_PREFIX + kind[len(_UNVERSIONED) :]
    if kind.startswith(EB_PREFIX + "computer/"):
        kind = EB_PREFIX + "compute/" + kind[len(EB_PREFIX + "computer/") :]
    return kind


def _typed(item: dict[str, Any]) -> dict[str, Any]:
    if "type" in item and "kind" not in item:
        item["kind"] = item.pop("type")
    item["kind"] = normalize_kind(item.get("kind"))
    _meta(item)
    return item


def _meta(item: dict[str, Any]) -> None:
    """Flat ``name``/``uuid``/``href``/``created`` moved under ``meta`` (kept where ``meta`` has them)."""
    flat = {key: item.pop(key) for key in list(item) if key in _META_FIELDS}
    if not flat:
        return
    meta = item.setdefault("meta", {})
    if isinstance(meta, dict):
        for key, value in flat.items():
            meta.setdefault(_META_FIELDS[key], value)


def _plain(value: Any) -> Any:
    """A copy with YAML's readings undone: times as ISO strings, YES/NO read as booleans where a string
    is meant left to the models (they name the field)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
