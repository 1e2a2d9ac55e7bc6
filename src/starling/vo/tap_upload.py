"""TAP's table uploads (TAP 1.1 section 4): ``UPLOAD=name,param:part`` names a VOTable sent with the request;
the query then reads it as ``TAP_UPLOAD.name`` (a crossmatch of a user's positions against the alerts, in
one query, instead of chunks of ``IN (...)`` lists).

An upload is held to limits before it is read into the database (rows, bytes, columns), its name and
its columns' names must be ADQL names, and it lives only as long as its query: a memory database on
SQLite, temporary tables dropped at the end of the transaction on PostgreSQL. A table named by URL
(``UPLOAD=name,https://...``) is fetched under the webhooks' egress policy (public addresses only,
unless the operator allows more: ``STARLING_EGRESS_ALLOW``), every connection checked, no redirects,
at most :data:`MAX_UPLOAD_BYTES`: a user cannot make the service reach into its own network.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from starling.errors import StarlingError

MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_UPLOAD_ROWS = 100_000
MAX_UPLOAD_COLUMNS = 100
MAX_UPLOADS = 4
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


class UploadError(StarlingError):
    """An upload that cannot be used: the message says why (QUERY_STATUS=ERROR)."""


@dataclass(frozen=True)
class Upload:
    name: str  # as the query names it: TAP_UPLOAD.<name>
    columns: tuple[tuple[str, str], ...]  # (name, kind): kind is "double", "long", "boolean" or "char"
    rows: list[tuple[Any, ...]]
    xtypes: tuple[str | None, ...] = ()  # each column's VOTable xtype (timestamp, point ...), as sent

    def sql_type(self, kind: str, backend: str) -> str:
        postgres = {"double": "double precision", "long": "bigint", "boolean": "boolean", "char": "text"}
        sqlite = {"double": "REAL", "long": "INTEGER", "boolean": "INTEGER", "char": "TEXT"}
        return (postgres if backend == "postgres" else sqlite)[kind]


def parse_upload_parameter(value: str) -> list[tuple[str, str]]:
    """``a,param:x;b,param:y`` as (table name, part name) pairs."""
    found: list[tuple[str, str]] = []
    for item in filter(None, (piece.strip() for piece in value.split(";"))):
        name, _, where = item.partition(",")
        name, where = name.strip(), where.strip()
        if not _NAME.match(name):
            raise UploadError(f"UPLOAD: {name!r} is not a table name (a letter, then letters, digits or _)")
        if not where.startswith(("param:", "http://", "https://")):
            raise UploadError(
                f"UPLOAD {name}: a table sent with the request (param:<part>) or an http(s) URL, "
                f"not {where!r}"
            )
        found.append((name, where))
    if len(found) > MAX_UPLOADS:
        raise UploadError(f"at most {MAX_UPLOADS} tables can be uploaded with one query")
    return found


def read_uploads(value: str, parts: dict[str, bytes]) -> list[Upload]:
    """The tables ``UPLOAD`` names, read from the request's ``parts``."""
    uploads = []
    for name, where in parse_upload_parameter(value):
        if where.startswith("param:"):
            part = where.removeprefix("param:")
            if part not in parts:
                raise UploadError(f"UPLOAD {name}: the request has no part {part!r}")
            uploads.append(read_votable(name, parts[part]))
        else:
            uploads.append(read_votable(name, fetch(name, where)))
    return uploads


def fetch(name: str, url: str) -> bytes:
    """A table by URL, under the egress policy; at most MAX_UPLOAD_BYTES (and one more, to tell)."""
    import httpcore

    from starling.components.outputs import submission_policy
    from starling.components.sinks.deliver.sender import guarded_pool

    policy = submission_policy()
    refusal = policy.url_refusal(url)
    if refusal is not None:
        raise UploadError(f"UPLOAD {name}: {url} is not fetched: {refusal}")
    timeout = {"connect": 10.0, "read": 30.0, "write": 10.0, "pool": 10.0}
    body = bytearray()
    try:
        with (
            guarded_pool(policy, 1) as pool,
            pool.stream("GET", url, extensions={"timeout": timeout}) as response,
        ):
            if response.status != 200:
                raise UploadError(f"UPLOAD {name}: {url} answered {response.status}")
            for chunk in response.iter_stream():
                body.extend(chunk)
                if len(body) > MAX_UPLOAD_BYTES:
                    break
    except httpcore.ConnectError as exc:
        raise UploadError(f"UPLOAD {name}: {url} is not fetched: {exc}") from None
    except httpcore.TimeoutException:
        raise UploadError(f"UPLOAD {name}: {url} did not answer in time") from None
    except httpcore.NetworkError as exc:
        raise UploadError(f"UPLOAD {name}: {url} could not be read: {exc}") from None
    return bytes(body)


def read_votable(name: str, data: bytes) -> Upload:
    from astropy.io.votable import parse_single_table

    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"UPLOAD {name}: {len(data):,} bytes; at most {MAX_UPLOAD_BYTES:,} are read")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            votable = parse_single_table(io.BytesIO(data))
            table = votable.to_table()
        xtypes = {field.name: field.xtype for field in votable.fields}
    except Exception as exc:  # astropy raises many kinds for a document that is not a VOTable
        raise UploadError(
            f"UPLOAD {name}: not a VOTable astropy can read ({type(exc).__name__}: {exc})"
        ) from None
    if len(table) > MAX_UPLOAD_ROWS:
        raise UploadError(f"UPLOAD {name}: {len(table):,} rows; at most {MAX_UPLOAD_ROWS:,}")
    if not 0 < len(table.colnames) <= MAX_UPLOAD_COLUMNS:
        raise UploadError(f"UPLOAD {name}: 1 to {MAX_UPLOAD_COLUMNS} columns, not {len(table.colnames)}")
    columns = []
    values = []
    for column_name in table.colnames:
        if not _NAME.match(column_name):
            raise UploadError(f"UPLOAD {name}: the column {column_name!r} is not an ADQL name")
        column = table[column_name]
        kind = {"f": "double", "i": "long", "u": "long", "b": "boolean"}.get(column.dtype.kind, "char")
        mask = np.asarray(getattr(column, "mask", np.zeros(len(column), dtype=bool)))
        data_values = [
            None if masked else _plain(v, kind)
            for v, masked in zip(column.tolist(), np.broadcast_to(mask, (len(column),)), strict=True)
        ]
        columns.append((column_name.lower(), kind))
        values.append(data_values)
    return Upload(
        name.lower(),
        tuple(columns),
        list(zip(*values, strict=True)) if values else [],
        tuple(xtypes.get(c) for c in table.colnames),
    )


def _plain(value: Any, kind: str) -> Any:
    if kind == "double":
        number = float(value)
        return number if np.isfinite(number) else None
    if kind == "long":
        return int(value)
    if kind == "boolean":
        return bool(value)
    return value.decode() if isinstance(value, bytes) else str(value)
