"""Results as VOTable 1.4 documents (DALI 1.1, TAP 1.1 section 3), written chunk by chunk: a result of a
million rows is sent while holding one chunk of them.

astropy writes the VOTable, not code of ours: each chunk of rows becomes a small VOTable of its own,
with the FIELDs of the whole result, and the document sent is put together from those. Its head
(everything up to the start of the data: ``<STREAM encoding="base64">`` for BINARY2, ``<TABLEDATA>``)
and its tail (from the end of the data on) come from one template, written with a single all-NULL row
before any chunk is read; between them go the data of each chunk: TABLEDATA's ``TR`` elements as
they are, BINARY2's base64 decoded and encoded again as one stream (a chunk's bytes are cut at a
multiple of 3, the rest carried to the next chunk, so no padding falls inside the stream). A result
with no rows has an empty data element between its FIELDs and its end.

Text beyond ASCII. VOTable 1.4's ``char`` is ASCII (astropy reads BINARY2 ``char`` as ASCII: a UTF-8
byte in one fails the whole read) and the FIELDs are written before the first row is seen, so a
column cannot turn ``unicodeChar`` when a value beyond ASCII shows up in its 500th chunk. Declaring
every text column ``unicodeChar`` would double every text's size in BINARY2 and contradict the
``char`` TAP_SCHEMA gives each one, for values that are rare (the store's text is identifiers, bands
and JSON). So a column keeps its declared datatype: ``unicodeChar`` ones (as a query may declare them)
carry their text whole, and in a ``char`` one each character beyond ASCII is written as JSON writes
it, ``\\uXXXX`` (two such escapes, a UTF-16 surrogate pair, beyond U+FFFF): the same rule for every
chunk and both serializations, a valid ``char`` always, and a JSON document (an annotation's payload)
reads back as the same JSON value. CSV, TSV, JSON and Parquet carry text in UTF-8, whole.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from starling.vo.tap_model import ResultEnd, TapColumn

__all__ = ["error_votable", "stream_votable", "stream_votable_td"]

# where a serialization's data starts and ends in astropy's document
_DATA_MARKS = {
    "binary2": (b'<STREAM encoding="base64">', b"</STREAM>"),
    "tabledata": (b"<TABLEDATA>", b"</TABLEDATA>"),
}
_BEYOND_ASCII = re.compile(r"[^\x00-\x7f]")
# what XML 1.0 text cannot hold (an error message may, from whatever failed)
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def stream_votable(
    columns: Sequence[TapColumn],
    chunks: Iterable[Sequence[Sequence[object]]],
    end: ResultEnd,
    *,
    query: str,
    serialization: str = "binary2",
) -> Iterator[bytes]:
    """The result as a VOTable 1.4 document, a piece per chunk of rows (the head before any is read).

    One ``RESOURCE type="results"``: ``INFO name="QUERY_STATUS" value="OK"`` and ``INFO name="QUERY"``
    (the query text) before the TABLE; after it, when the result did not end well, a second
    QUERY_STATUS, as DALI 1.1 allows: ``value="OVERFLOW"`` when MAXREC cut it short, or
    ``value="ERROR"`` with the message as its text when it failed after rows were sent. The QUERY INFO
    has the query as its value and, verbatim (line breaks kept), as its text. Each FIELD carries the
    column's name, datatype, arraysize, xtype, unit, UCD and description. ``serialization`` is
    ``binary2`` (NULLs as BINARY2's null flags) or ``tabledata`` (a NULL is an empty cell). (Not
    BINARY: it has no NULL for an integer column without a VALUES null, which computed columns lack.)

    Raises ValueError for an unknown serialization at once, and for a row of the wrong length when it
    is reached."""
    mode = serialization.lower()
    if mode not in _DATA_MARKS:
        known = ", ".join(_DATA_MARKS)
        raise ValueError(f"unknown VOTable serialization {serialization!r}: one of {known}")
    return _streamed(_ChunkTables(columns, query, mode), chunks, end)


def stream_votable_td(
    columns: Sequence[TapColumn], chunks: Iterable[Sequence[Sequence[object]]], end: ResultEnd, *, query: str
) -> Iterator[bytes]:
    """:func:`stream_votable` with its rows in TABLEDATA (XML cells)."""
    return stream_votable(columns, chunks, end, query=query, serialization="tabledata")


def error_votable(message: str) -> bytes:
    """The VOTable of a failed query (DALI 1.1): a ``RESOURCE type="results"`` with
    ``INFO name="QUERY_STATUS" value="ERROR"``, the message its text, and no table."""
    votable, _resource, _config = _results("ERROR", message)
    buffer = io.BytesIO()
    votable.to_xml(buffer)
    return buffer.getvalue()


def _streamed(
    tables: _ChunkTables, chunks: Iterable[Sequence[Sequence[object]]], end: ResultEnd
) -> Iterator[bytes]:
    head, tail = tables.head_and_tail()
    yield head
    carry = b""  # BINARY2's bytes not yet encoded: fewer than 3
    count = 0
    for chunk in chunks:
        if not chunk:
            continue
        data = tables.data(chunk, count)
        count += len(chunk)
        if tables.mode == "tabledata":
            yield data
            continue
        raw = carry + base64.b64decode(data)
        cut = len(raw) - len(raw) % 3
        carry = raw[cut:]
        if cut:
            yield base64.b64encode(raw[:cut]) + b"\n"
    if carry:
        yield base64.b64encode(carry) + b"\n"
    yield _with_status(tail, end)


class _ChunkTables:
    """One astropy VOTable with the result's FIELDs (fixed from the columns, for every chunk), its rows
    replaced by each chunk's in turn."""

    def __init__(self, columns: Sequence[TapColumn], query: str, mode: str) -> None:
        from astropy.io.votable.tree import Info, TableElement

        self.columns = columns
        self.mode = mode
        self._votable, resource, config = _results("OK")
        # an attribute's line breaks read back as spaces: the text of the element keeps the query verbatim
        query_info = Info(name="QUERY", value=query, config=config)
        query_info.content = query
        resource.infos.append(query_info)
        self._table = TableElement(self._votable, config=config)
        resource.tables.append(self._table)
        for column in columns:
            self._table.fields.append(_field(self._votable, config, column))

    def head_and_tail(self) -> tuple[bytes, bytes]:
        """The document up to its data (with a line break) and from the end of its data on (indented)."""
        document = self._document([(None,) * len(self.columns)])
        start, stop = _DATA_MARKS[self.mode]
        head_end = document.index(start) + len(start)
        tail_start = document.rindex(stop)
        body = document[head_end:tail_start]
        indent = body[len(body.rstrip(b" ")) :]
        return document[:head_end] + b"\n", indent + document[tail_start:]

    def data(self, rows: Sequence[Sequence[object]], first: int) -> bytes:
        """What astropy writes between the data marks for ``rows`` (``first`` is the number of the
        first, for errors): base64 for BINARY2, ``TR`` lines for TABLEDATA."""
        for number, row in enumerate(rows, first):
            if len(row) != len(self.columns):
                raise ValueError(f"row {number} has {len(row)} values for {len(self.columns)} columns")
        document = self._document(rows)
        start, stop = _DATA_MARKS[self.mode]
        body = document[document.index(start) + len(start) : document.rindex(stop)]
        return body.lstrip(b"\r\n").rstrip(b" ")

    def _document(self, rows: Sequence[Sequence[object]]) -> bytes:
        table = self._table
        table.create_arrays(len(rows))
        array = table.array
        for index, name in enumerate(array.dtype.names or ()):
            _fill(array, name, [row[index] for row in rows], table.fields[index].datatype)
        buffer = io.BytesIO()
        self._votable.to_xml(buffer, tabledata_format=self.mode)
        return buffer.getvalue()


def _results(status: str, message: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """A VOTable 1.4 with its ``RESOURCE type="results"`` and QUERY_STATUS, and the configuration its
    elements share: astropy's checks silenced (a result may repeat a column name; astropy then tells
    the FIELD IDs apart, which is all it needs)."""
    from astropy.io.votable.tree import Info, Resource, VOTableFile

    votable = VOTableFile(version="1.4", config={"verify": "ignore"})
    config: dict[str, Any] = votable.config
    resource = Resource(type="results", config=config)
    votable.resources.append(resource)
    info = Info(name="QUERY_STATUS", value=status, config=config)
    if message is not None:
        info.content = message
    resource.infos.append(info)
    return votable, resource, config


def _field(votable: Any, config: dict[str, Any], column: TapColumn) -> Any:
    """The FIELD of a column, its datatype as declared."""
    from astropy.io.votable.tree import Field

    field = Field(
        votable,
        name=column.name,
        datatype=column.datatype,
        arraysize=column.arraysize,
        unit=column.unit or None,
        ucd=column.ucd or None,
        xtype=column.xtype,
        config=config,
    )
    if column.description:
        field.description = column.description
    return field


def _fill(array: Any, name: str, values: list[object], datatype: str) -> None:
    """Put one column's values in astropy's masked table array, NULLs masked."""
    target = array.data[name]
    nulls = np.fromiter((value is None for value in values), dtype=bool, count=len(values))
    text = datatype in ("char", "unicodeChar")
    ascii_only = datatype == "char"
    if target.dtype == object:
        filled = np.empty(len(values), dtype=object)
        for row, value in enumerate(values):
            filled[row] = _text(value, ascii_only) if text else _variable_array(value)
        array.data[name] = filled
    elif target.dtype.kind in "SU":
        array.data[name] = [_text(value, ascii_only) for value in values]
    else:
        zero = np.zeros(target.shape[1:], dtype=target.dtype)
        array.data[name] = [zero if value is None else value for value in values]
    mask = array.mask[name]
    array.mask[name] = np.broadcast_to(nulls.reshape((-1,) + (1,) * (mask.ndim - 1)), mask.shape)


def _text(value: object, ascii_only: bool) -> str:
    """A text cell: NULL empty (its mask says NULL); for ``char``, each character beyond ASCII as
    JSON's ``\\uXXXX`` (see the module's docstring)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if ascii_only and not text.isascii():
        return _BEYOND_ASCII.sub(lambda match: json.dumps(match.group())[1:-1], text)
    return text


def _variable_array(value: object) -> object:
    """A cell of a variable-length numeric column: a masked array (astropy writes those), NULL empty."""
    if value is None:
        return np.ma.array([], dtype=float)
    return np.ma.masked_invalid(np.asarray(value, dtype=float))


def _with_status(tail: bytes, end: ResultEnd) -> bytes:
    """The tail with, when the result did not end well, its QUERY_STATUS after the TABLE (astropy
    writes a resource's INFOs before its tables). Text cannot hold the closing tag unescaped, so the
    last one is the resource's."""
    if end.error is not None:
        message = escape(_NOT_XML.sub(" ", end.error)).encode()
        element = b'<INFO name="QUERY_STATUS" value="ERROR">' + message + b"</INFO>"
    elif end.overflow:
        element = b'<INFO name="QUERY_STATUS" value="OVERFLOW"/>'
    else:
        return tail
    stop = tail.rindex(b"</RESOURCE>")
    line_start = tail.rfind(b"\n", 0, stop) + 1
    indent = tail[line_start:stop] + b" "
    return tail[:line_start] + indent + element + b"\n" + tail[line_start:]
