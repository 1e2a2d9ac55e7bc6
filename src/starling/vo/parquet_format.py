"""Results of TAP queries as Apache Parquet (media type ``application/vnd.apache.parquet``): typed,
compressed columns that pandas, polars, DuckDB and Spark read directly.

Written by pyarrow chunk by chunk: each chunk of rows is one row group, and what the writer has put in
its sink is sent after each, so one chunk is held at a time. The Arrow schema comes from the columns'
VOTable datatypes (``long`` int64, ``int`` int32, ``short`` int16, ``unsignedByte`` uint8, ``double``
float64, ``float`` float32, ``boolean`` bool, ``char`` and ``unicodeChar`` UTF-8 string; an array, such
as a point or a polygon, a list of its datatype; any other datatype as its text). Every column is
nullable: NULL is Parquet's null, NaN stays a number.

Metadata: each field carries the column's ``datatype``, ``arraysize``, ``xtype``, ``unit``, ``ucd``
and ``description`` (those it has) in its field metadata; the file's key-value metadata has ``QUERY``
(the query text) and, written at close once the last row is read, ``QUERY_STATUS`` (``OK``,
``OVERFLOW`` or ``ERROR``, as VOTable's INFO) and for an error ``QUERY_STATUS_MESSAGE``. A Parquet
file's metadata is in its footer, written at close, so the status can come after the rows. The same
keys are in the metadata of the Arrow schema stored in the file, what pyarrow (and pandas through it)
gives a table read back.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from starling.vo.tap_model import ResultEnd, TapColumn, in_chunks

__all__ = ["PARQUET", "arrow_schema", "stream_parquet", "write_parquet"]

PARQUET = "application/vnd.apache.parquet"

_ARROW_TYPES = {
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "unsignedByte": "uint8",
    "double": "float64",
    "float": "float32",
    "boolean": "bool_",
    "char": "string",
    "unicodeChar": "string",
}
_TEXT = ("char", "unicodeChar")


def arrow_schema(columns: Sequence[TapColumn], query: str) -> Any:
    """The Arrow schema (a ``pyarrow.Schema``) of a result: a nullable field per column, with the
    column's metadata, and the query text as the schema's ``QUERY``."""
    import pyarrow as pa

    fields = [pa.field(c.name, _arrow_type(c), nullable=True, metadata=_column_metadata(c)) for c in columns]
    return pa.schema(fields, metadata={"QUERY": query})


def stream_parquet(
    columns: Sequence[TapColumn],
    chunks: Iterable[Sequence[Sequence[object]]],
    end: ResultEnd,
    *,
    query: str = "",
) -> Iterator[bytes]:
    """The result as a Parquet file, a piece of it per chunk of rows (one row group each), the footer
    (with how the result ended) last. Raises ValueError for a row of the wrong length when it is
    reached."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(columns, query)
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema)
    yield sink.take()  # the file's magic number
    count = 0
    for chunk in chunks:
        if not chunk:
            continue
        for number, row in enumerate(chunk, count):
            if len(row) != len(columns):
                raise ValueError(f"row {number} has {len(row)} values for {len(columns)} columns")
        count += len(chunk)
        arrays = [
            pa.array(_values([row[index] for row in chunk], field.type), type=field.type)
            for index, field in enumerate(schema)
        ]
        writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=len(chunk))
        yield sink.take()
    status = _status(end)
    # pyarrow gives a table read back the metadata of the Arrow schema it stored in the file (under
    # ARROW:schema, from the schema given at open): that one is replaced with the status added, so a
    # reader of the table sees the status as well as one of the file's key-value metadata.
    final = schema.with_metadata({**schema.metadata, **{k.encode(): v.encode() for k, v in status.items()}})
    stored = base64.b64encode(final.serialize().to_pybytes()).decode()
    writer.add_key_value_metadata({**status, "ARROW:schema": stored})
    writer.close()
    yield sink.take()


def write_parquet(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool = False, query: str = ""
) -> bytes:
    """:func:`stream_parquet` as one file."""
    return b"".join(stream_parquet(columns, in_chunks(rows), ResultEnd(overflow), query=query))


def _arrow_type(column: TapColumn) -> Any:
    import pyarrow as pa

    scalar = getattr(pa, _ARROW_TYPES.get(column.datatype, "string"))()
    if column.arraysize is not None and column.datatype not in _TEXT:
        return pa.list_(scalar)
    return scalar


def _column_metadata(column: TapColumn) -> dict[str, str]:
    """The column's VOTable metadata, those it has."""
    metadata = {
        "datatype": column.datatype,
        "arraysize": column.arraysize,
        "xtype": column.xtype,
        "unit": column.unit,
        "ucd": column.ucd,
        "description": column.description,
    }
    return {key: value for key, value in metadata.items() if value}


def _values(values: list[Any], arrow_type: Any) -> list[Any]:
    """A column's values as pyarrow takes them for its type: text as text, arrays as lists, and a
    boolean as a boolean even when the database gives 0 or 1 (SQLite has no booleans: an uploaded
    boolean column comes back so), integers and floats as Python's (numpy's scalars included)."""
    import pyarrow as pa

    convert: Callable[[Any], Any]
    if pa.types.is_string(arrow_type):
        convert = str
    elif pa.types.is_list(arrow_type):
        convert = list
    elif pa.types.is_boolean(arrow_type):
        convert = bool
    elif pa.types.is_integer(arrow_type):
        convert = int
    elif pa.types.is_floating(arrow_type):
        convert = float
    else:
        return values
    return [None if value is None else convert(value) for value in values]


def _status(end: ResultEnd) -> dict[str, str]:
    if end.error is not None:
        return {"QUERY_STATUS": "ERROR", "QUERY_STATUS_MESSAGE": end.error}
    return {"QUERY_STATUS": "OVERFLOW" if end.overflow else "OK"}


class _Drain(io.RawIOBase):
    """A sink for pyarrow that hands over what was written to it (:meth:`take`) and forgets it, while
    counting every byte (the writer asks where it is, to record the row groups' offsets)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        part = bytes(data)
        self._parts.append(part)
        self._position += len(part)
        return len(part)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        taken = b"".join(self._parts)
        self._parts = []
        return taken
