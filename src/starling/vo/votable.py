"""The results of TAP queries, written in the formats TAP 1.1 and DALI 1.1 name: VOTable 1.4 (BINARY2 or
TABLEDATA), CSV, TSV, and a simple JSON.

Every writer takes the result's columns (:class:`~starling.vo.tap_model.TapColumn`: a table's own, or
one :func:`infer_column` made for an expression), its rows (sequences of Python values in the columns'
order, ``None`` for NULL) and whether MAXREC cut the result short (``overflow``), and returns the
document as bytes. Each reads the rows once, in order. The VOTable writers hold the whole result in
memory (astropy builds a table before writing it); the text writers (:mod:`starling.vo.text_formats`,
re-exported here) convert row by row, and their ``stream_*`` forms yield the document in chunks for a
streaming response.

:data:`FORMATS` maps what clients send as RESPONSEFORMAT (or FORMAT) to the media type of the response
and its writer; :func:`response_format` reads the parameter, absent meaning VOTable. The same formats,
grouped as TAPRegExt's ``outputFormat`` elements, are :data:`OUTPUT_FORMATS`.
"""

from __future__ import annotations

import io
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from starling.vo.tap_model import TapColumn
from starling.vo.text_formats import stream_csv, stream_json, stream_tsv, write_csv, write_json, write_tsv

__all__ = [
    "FORMATS",
    "OUTPUT_FORMATS",
    "OutputFormat",
    "Writer",
    "error_votable",
    "infer_column",
    "output_formats",
    "response_format",
    "stream_csv",
    "stream_json",
    "stream_tsv",
    "write_csv",
    "write_json",
    "write_tsv",
    "write_votable",
    "write_votable_td",
]

VOTABLE = "application/x-votable+xml"
VOTABLE_TD = "application/x-votable+xml;serialization=TABLEDATA"
CSV = "text/csv;header=present"
TSV = "text/tab-separated-values"
JSON = "application/json"

_SERIALIZATIONS = ("binary2", "tabledata")


class Writer(Protocol):
    """What every writer of a result is: columns and rows in, the document out."""

    def __call__(
        self, columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool, query: str
    ) -> bytes: ...


# ---- columns of computed values ------------------------------------------------------------------------


def infer_column(name: str, values: Iterable[object]) -> TapColumn:
    """A result column for an expression, its datatype read from its values (None ignored): all
    booleans make ``boolean``, all integers ``long``, numbers ``double``, anything else (or nothing but
    NULLs) ``char`` of any length. Reads ``values`` once."""
    kinds: set[str] = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool | np.bool_):
            kinds.add("boolean")
        elif isinstance(value, numbers.Integral):
            kinds.add("long")
        elif isinstance(value, numbers.Real):
            kinds.add("double")
        else:
            kinds.add("char")
            break
    if kinds == {"boolean"}:
        return TapColumn(name, "boolean", "")
    if kinds == {"long"}:
        return TapColumn(name, "long", "")
    if kinds and kinds <= {"long", "double"}:
        return TapColumn(name, "double", "")
    return TapColumn(name, "char", "", arraysize="*")


# ---- VOTable ---------------------------------------------------------------------------------------------


def write_votable(
    columns: Sequence[TapColumn],
    rows: Iterable[Sequence[object]],
    *,
    overflow: bool,
    query: str,
    serialization: str = "binary2",
) -> bytes:
    """The result as a VOTable 1.4 document (DALI 1.1, TAP 1.1 section 3).

    One ``RESOURCE type="results"``: ``INFO name="QUERY_STATUS" value="OK"`` and ``INFO name="QUERY"``
    (the query text) before the TABLE, and when ``overflow`` an ``INFO name="QUERY_STATUS"
    value="OVERFLOW"`` after it. The QUERY INFO has the query as its value and, verbatim (line breaks
    kept), as its text. Each FIELD carries the column's name, datatype, arraysize, xtype,
    unit, UCD and description. ``serialization`` is ``binary2`` (NULLs as BINARY2's null flags),
    or ``tabledata`` (a NULL is an empty cell). (Not BINARY: it has no NULL for an integer column
    without a VALUES null, which a result's computed columns lack.)

    A ``char`` column holding text beyond ASCII is written as ``unicodeChar``: VOTable 1.4's ``char``
    is ASCII. The rows are held in memory while the document is built."""
    from astropy.io.votable.tree import Info, TableElement

    mode = serialization.lower()
    if mode not in _SERIALIZATIONS:
        known = ", ".join(_SERIALIZATIONS)
        raise ValueError(f"unknown VOTable serialization {serialization!r}: one of {known}")
    data = [tuple(row) for row in rows]
    for number, row in enumerate(data):
        if len(row) != len(columns):
            raise ValueError(f"row {number} has {len(row)} values for {len(columns)} columns")

    votable, resource, config = _results("OK")
    # an attribute's line breaks read back as spaces: the text of the element keeps the query verbatim
    query_info = Info(name="QUERY", value=query, config=config)
    query_info.content = query
    resource.infos.append(query_info)
    table = TableElement(votable, config=config)
    resource.tables.append(table)
    for index, column in enumerate(columns):
        table.fields.append(_field(votable, config, column, any(_beyond_ascii(row[index]) for row in data)))
    table.create_arrays(len(data))
    array = table.array
    for index, name in enumerate(array.dtype.names or ()):
        text = table.fields[index].datatype in ("char", "unicodeChar")
        _fill(array, name, [row[index] for row in data], text)

    buffer = io.BytesIO()
    votable.to_xml(buffer, tabledata_format=mode)
    document = buffer.getvalue()
    if overflow:
        document = _after_the_table(document, b'<INFO name="QUERY_STATUS" value="OVERFLOW"/>')
    return document


def write_votable_td(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool, query: str
) -> bytes:
    """:func:`write_votable` with its rows in TABLEDATA (XML cells)."""
    return write_votable(columns, rows, overflow=overflow, query=query, serialization="tabledata")


def error_votable(message: str) -> bytes:
    """The VOTable of a failed query (DALI 1.1): a ``RESOURCE type="results"`` with
    ``INFO name="QUERY_STATUS" value="ERROR"``, the message its text, and no table."""
    votable, _resource, _config = _results("ERROR", message)
    buffer = io.BytesIO()
    votable.to_xml(buffer)
    return buffer.getvalue()


def _beyond_ascii(value: object) -> bool:
    return isinstance(value, str) and not value.isascii()


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


def _field(votable: Any, config: dict[str, Any], column: TapColumn, beyond_ascii: bool) -> Any:
    """The FIELD of a column; text beyond ASCII makes a ``char`` column ``unicodeChar``."""
    from astropy.io.votable.tree import Field

    datatype = "unicodeChar" if column.datatype == "char" and beyond_ascii else column.datatype
    field = Field(
        votable,
        name=column.name,
        datatype=datatype,
        arraysize=column.arraysize,
        unit=column.unit or None,
        ucd=column.ucd or None,
        xtype=column.xtype,
        config=config,
    )
    if column.description:
        field.description = column.description
    return field


def _fill(array: Any, name: str, values: list[object], text: bool) -> None:
    """Put one column's values in astropy's masked table array, NULLs masked."""
    target = array.data[name]
    nulls = np.fromiter((value is None for value in values), dtype=bool, count=len(values))
    if target.dtype == object:
        filled = np.empty(len(values), dtype=object)
        for row, value in enumerate(values):
            filled[row] = _variable_cell(value, text)
        array.data[name] = filled
    elif target.dtype.kind in "SU":
        array.data[name] = ["" if value is None else str(value) for value in values]
    else:
        zero = np.zeros(target.shape[1:], dtype=target.dtype)
        array.data[name] = [zero if value is None else value for value in values]
    mask = array.mask[name]
    array.mask[name] = np.broadcast_to(nulls.reshape((-1,) + (1,) * (mask.ndim - 1)), mask.shape)


def _variable_cell(value: object, text: bool) -> object:
    """A cell of a variable-length column: text as text, numbers as a masked array (astropy writes
    those), NULL as empty."""
    if text:
        return "" if value is None else value if isinstance(value, str) else str(value)
    if value is None:
        return np.ma.array([], dtype=float)
    return np.ma.masked_invalid(np.asarray(value, dtype=float))


def _after_the_table(document: bytes, element: bytes) -> bytes:
    """The document with ``element`` last in its (only) RESOURCE, after the TABLE (astropy writes a
    resource's INFOs before its tables). Text cannot hold the closing tag unescaped, so the last one
    is the resource's."""
    end = document.rfind(b"</RESOURCE>")
    if end < 0:
        raise ValueError("the VOTable has no RESOURCE")
    line_start = document.rfind(b"\n", 0, end) + 1
    indent = document[line_start:end] + b" "
    return document[:line_start] + indent + element + b"\n" + document[line_start:]


# ---- the formats a client may ask for -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One output format, as TAPRegExt's ``outputFormat`` describes it: the media type advertised
    (``mime``), its short names (``aliases``), its standard identifier if any, and what else a client
    may send for it. ``media_type`` is the Content-Type of the response; ``writer`` writes it."""

    mime: str
    aliases: tuple[str, ...]
    writer: Writer
    media_type: str
    ivo_id: str | None = None
    also_accepted: tuple[str, ...] = ()
    description: str = ""


_TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"

OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat(
        VOTABLE,
        ("votable",),
        write_votable,
        VOTABLE,
        f"{_TAPREGEXT}#output-votable-binary2",
        ("text/xml", "application/x-votable+xml;serialization=binary2", "votable/b2"),
        "VOTable 1.4, BINARY2 serialization (the default).",
    ),
    OutputFormat(
        VOTABLE_TD,
        ("votable/td",),
        write_votable_td,
        VOTABLE_TD,
        f"{_TAPREGEXT}#output-votable-td",
        (),
        "VOTable 1.4, TABLEDATA serialization.",
    ),
    OutputFormat(
        "text/csv", ("csv",), write_csv, CSV, None, (CSV,), "Comma-separated values, header line first."
    ),
    OutputFormat(TSV, ("tsv",), write_tsv, TSV, None, (), "Tab-separated values, header line first."),
    OutputFormat(
        JSON,
        ("json",),
        write_json,
        JSON,
        None,
        (),
        'A JSON object: {"metadata": [column, ...], "data": [[value, ...], ...], "overflow": bool}.',
    ),
)


def _normal(value: str) -> str:
    """A format as clients may spell it, compared case-insensitively and without spaces."""
    return "".join(value.split()).lower()


class _Formats(Mapping[str, tuple[str, Writer]]):
    """The accepted RESPONSEFORMAT values, looked up case-insensitively and ignoring spaces."""

    def __init__(self, formats: Iterable[OutputFormat]) -> None:
        self._names: list[str] = []
        self._entries: dict[str, tuple[str, Writer]] = {}
        for output in formats:
            media_type = output.media_type
            for name in (*output.aliases, output.mime, *output.also_accepted):
                # a legacy name (text/xml) is answered with the media type it was asked as
                answer = name if name == "text/xml" else media_type
                if _normal(name) not in self._entries:
                    self._names.append(name)
                    self._entries[_normal(name)] = (answer, output.writer)

    def __getitem__(self, key: str) -> tuple[str, Writer]:
        return self._entries[_normal(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


FORMATS: Mapping[str, tuple[str, Writer]] = _Formats(OUTPUT_FORMATS)


def response_format(value: str | None) -> tuple[str, Writer]:
    """The media type and writer for a RESPONSEFORMAT (or FORMAT) value; VOTable when it is absent or
    empty (TAP 1.1 section 2.7.3). Raises KeyError for a format not served."""
    if value is None or not value.strip():
        return FORMATS["votable"]
    try:
        return FORMATS[value]
    except KeyError:
        raise KeyError(f"unsupported RESPONSEFORMAT {value!r}: one of {', '.join(FORMATS)}") from None


def output_formats(wanted: Iterable[OutputFormat | str]) -> tuple[OutputFormat, ...]:
    """The output formats that serve ``wanted`` (formats, or RESPONSEFORMAT values such as the keys of
    :data:`FORMATS`), each once, in the order first wanted. Raises KeyError for a value not served."""
    chosen: list[OutputFormat] = []
    for item in wanted:
        if isinstance(item, str):
            name = _normal(item)
            names = ((o, (*o.aliases, o.mime, *o.also_accepted)) for o in OUTPUT_FORMATS)
            found = next((o for o, known in names if name in map(_normal, known)), None)
            if found is None:
                raise KeyError(f"unsupported RESPONSEFORMAT {item!r}")
            item = found
        if item not in chosen:
            chosen.append(item)
    return tuple(chosen)
