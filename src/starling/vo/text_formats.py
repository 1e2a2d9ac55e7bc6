"""Results of TAP queries as text: CSV, TSV (TAP 1.1 section 3.2) and a simple JSON.

The ``stream_*`` writers take the rows in chunks and yield a piece of the document per chunk (for a
streaming response: only one chunk is held at a time); the ``write_*`` forms take rows and return the
document whole. Values are written as DALI 1.1 has them as text: NULL as nothing, booleans
``true``/``false``, floats as the shortest text that reads back to the same number.
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

from starling.vo.tap_model import ResultEnd, TapColumn, in_chunks

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


def stream_csv(
    columns: Sequence[TapColumn],
    chunks: Iterable[Sequence[Sequence[object]]],
    end: ResultEnd,
    *,
    query: str = "",
) -> Iterator[bytes]:
    """The result as CSV (RFC 4180, UTF-8): a header row of column names, then a line per row; a NULL is
    an empty field, a field holding a comma, quote or line break is quoted. A piece of the document per
    chunk of rows.

    CSV has no place to say how the result ended: it stops after the last row sent, whether MAXREC cut
    it short or it failed part way (``end`` and ``query`` are not written). A client that must know
    asks for VOTable, JSON or Parquet."""
    return _stream_delimited(columns, chunks, _csv_lines)


def stream_tsv(
    columns: Sequence[TapColumn],
    chunks: Iterable[Sequence[Sequence[object]]],
    end: ResultEnd,
    *,
    query: str = "",
) -> Iterator[bytes]:
    """The result as TSV (IANA text/tab-separated-values, UTF-8): a header line of column names, then a
    line per row; a NULL is an empty field. A field cannot hold a tab or a line break: each becomes a
    space. As for CSV, how the result ended is not written."""
    return _stream_delimited(columns, chunks, _tsv_lines)


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
    columns: Sequence[TapColumn], chunks: Iterable[Sequence[Sequence[object]]], lines: Any
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = lines(buffer)
    writer.writerow([column.name for column in columns])
    yield _drained(buffer)
    for chunk in chunks:
        for row in chunk:
            writer.writerow([_text_cell(value) for value in row])
        if chunk:
            yield _drained(buffer)


def _drained(buffer: io.StringIO) -> bytes:
    """What the buffer holds, encoded, and the buffer emptied."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()


def write_csv(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool = False, query: str = ""
) -> bytes:
    """:func:`stream_csv` as one document (``overflow`` and ``query`` are not written)."""
    return b"".join(stream_csv(columns, in_chunks(rows), ResultEnd(overflow), query=query))


def write_tsv(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool = False, query: str = ""
) -> bytes:
    """:func:`stream_tsv` as one document (``overflow`` and ``query`` are not written, as for CSV)."""
    return b"".join(stream_tsv(columns, in_chunks(rows), ResultEnd(overflow), query=query))


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
    columns: Sequence[TapColumn],
    chunks: Iterable[Sequence[Sequence[object]]],
    end: ResultEnd,
    *,
    query: str = "",
) -> Iterator[bytes]:
    """The result as one JSON object (UTF-8), a piece of it per chunk of rows::

        {"metadata": [{"name", "datatype", "arraysize", "xtype", "unit", "ucd", "description"}, ...],
         "data": [[value, ...], ...],
         "overflow": true | false,
         "query": "...",
         "error": "..."}

    ``metadata`` describes the columns in order (absent arraysize, xtype, unit, UCD are null); ``data``
    holds a list per row, NULL as null; ``overflow`` says whether MAXREC cut the result short. ``error``
    is there only when the result failed after rows were sent: ``data`` then holds the rows before the
    failure. (The keys after ``data`` are written once the rows are read: only then is the end known.)"""
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
    for chunk in chunks:
        lines = []
        for row in chunk:
            lines.append(
                separator + json.dumps([_json_cell(value) for value in row], allow_nan=False).encode()
            )
            separator = b",\n  "
        if lines:
            yield b"".join(lines)
    tail = [b"\n ],\n", b' "overflow": ' + (b"true" if end.overflow else b"false") + b",\n"]
    tail.append(b' "query": ' + json.dumps(query).encode())
    if end.error is not None:
        tail.append(b',\n "error": ' + json.dumps(end.error).encode())
    tail.append(b"}\n")
    yield b"".join(tail)


def write_json(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool = False, query: str = ""
) -> bytes:
    """:func:`stream_json` as one document."""
    return b"".join(stream_json(columns, in_chunks(rows), ResultEnd(overflow), query=query))
