"""Results of TAP queries as text: CSV, TSV (TAP 1.1 section 3.2) and a simple JSON.

Each writer reads the rows once, in order, converting row by row; the ``stream_*`` forms yield the
document in chunks (for a streaming response), the ``write_*`` forms return it whole. Values are
written as DALI 1.1 has them as text: NULL as nothing, booleans ``true``/``false``, floats
as the shortest text that reads back to the same number.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from starling.vo.tap_model import TapColumn

_CHUNK_ROWS = 1000  # rows per chunk of a streamed document
_TSV_UNSAFE = re.compile(r"[\t\r\n]")  # what a TSV field cannot hold


def _text_cell(value: object) -> str:
    """A value as text (DALI 1.1): NULL empty, booleans true/false, floats as Python prints
    them (the shortest text that reads back to the same number; NaN, Infinity), arrays space-separated."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return repr(number)
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, bytes):
        return " ".join(_text_cell(item) for item in value)
    return str(value)


def stream_csv(columns: Sequence[TapColumn], rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """The result as CSV (RFC 4180, UTF-8): a header row of column names, then a line per row; a NULL is
    an empty field, a field holding a comma, quote or line break is quoted."""
    return _stream_delimited(columns, rows, _csv_lines)


def stream_tsv(columns: Sequence[TapColumn], rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """The result as TSV (IANA text/tab-separated-values, UTF-8): a header line of column names, then a
    line per row; a NULL is an empty field. A field cannot hold a tab or a line break: each becomes a
    space."""
    return _stream_delimited(columns, rows, _tsv_lines)


def _csv_lines(buffer: io.StringIO) -> Any:
    return csv.writer(buffer, lineterminator="\r\n")


class _TsvLines:
    def __init__(self, buffer: io.StringIO) -> None:
        self._buffer = buffer

    def writerow(self, cells: Iterable[str]) -> None:
        self._buffer.write("\t".join(_TSV_UNSAFE.sub(" ", cell) for cell in cells))
        self._buffer.write("\n")


def _tsv_lines(buffer: io.StringIO) -> Any:
    return _TsvLines(buffer)


def _stream_delimited(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], lines: Any
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = lines(buffer)
    writer.writerow([column.name for column in columns])
    pending = 0
    for row in rows:
        writer.writerow([_text_cell(value) for value in row])
        pending += 1
        if pending >= _CHUNK_ROWS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode()


def write_csv(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool = False, query: str = ""
) -> bytes:
    """:func:`stream_csv` as one document. CSV has no place to say that the result overflowed: it
    ends after the last row kept (``overflow`` and ``query`` are not written)."""
    return b"".join(stream_csv(columns, rows))


def write_tsv(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool = False, query: str = ""
) -> bytes:
    """:func:`stream_tsv` as one document (``overflow`` and ``query`` are not written, as for CSV)."""
    return b"".join(stream_tsv(columns, rows))


def _json_cell(value: object) -> object:
    """A value as JSON has it: numbers as numbers (NaN and infinities, which JSON lacks, as null),
    arrays as arrays, anything else as text."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, bytes):
        return [_json_cell(item) for item in value]
    return str(value)


def stream_json(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool = False, query: str = ""
) -> Iterator[bytes]:
    """The result as one JSON object (UTF-8)::

        {"metadata": [{"name", "datatype", "arraysize", "xtype", "unit", "ucd", "description"}, ...],
         "data": [[value, ...], ...],
         "overflow": true | false,
         "query": "..."}

    ``metadata`` describes the columns in order (absent arraysize, xtype, unit, UCD are null); ``data``
    holds a list per row, NULL as null; ``overflow`` says whether MAXREC cut the result short."""
    metadata = [
        {
            "name": column.name,
            "datatype": column.datatype,
            "arraysize": column.arraysize,
            "xtype": column.xtype,
            "unit": column.unit or None,
            "ucd": column.ucd or None,
            "description": column.description or None,
        }
        for column in columns
    ]
    yield b'{"metadata": ' + json.dumps(metadata).encode() + b',\n "data": ['
    separator = b"\n  "
    chunk: list[bytes] = []
    for row in rows:
        chunk.append(separator + json.dumps([_json_cell(value) for value in row], allow_nan=False).encode())
        separator = b",\n  "
        if len(chunk) >= _CHUNK_ROWS:
            yield b"".join(chunk)
            chunk = []
    chunk.append(b"\n ],\n")
    chunk.append(b' "overflow": ' + (b"true" if overflow else b"false") + b",\n")
    chunk.append(b' "query": ' + json.dumps(query).encode() + b"}\n")
    yield b"".join(chunk)


def write_json(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool = False, query: str = ""
) -> bytes:
    """:func:`stream_json` as one document."""
    return b"".join(stream_json(columns, rows, overflow=overflow, query=query))
