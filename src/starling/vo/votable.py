"""The results of TAP queries, written in the formats TAP 1.1 and DALI 1.1 name: VOTable 1.4 (BINARY2 or
TABLEDATA), CSV, TSV, a simple JSON, and Parquet.

A result is written as it is read: a :class:`StreamWriter` takes the result's columns
(:class:`~starling.vo.tap_model.TapColumn`: a table's own, or one :func:`infer_column` made for an
expression), its rows in chunks (lists of sequences of Python values in the columns' order, ``None`` for
NULL) and a :class:`~starling.vo.tap_model.ResultEnd`, read once the chunks are exhausted (whether
MAXREC cut the result short, or it failed part way), and yields the document a piece per chunk, holding
one chunk at a time. Each format has that one implementation (VOTable: :mod:`starling.vo.votable_stream`,
text: :mod:`starling.vo.text_formats`, Parquet: :mod:`starling.vo.parquet_format`, re-exported here);
its :class:`Writer` (rows in, the whole document out) is the stream joined.

:data:`FORMATS` maps what clients send as RESPONSEFORMAT (or FORMAT) to the media type of the response
and its writer; :func:`response_format` reads the parameter, absent meaning VOTable, and
:func:`stream_format` does the same for the streaming writer. The same formats, grouped as TAPRegExt's
``outputFormat`` elements, are :data:`OUTPUT_FORMATS`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from starling.vo.parquet_format import PARQUET, stream_parquet, write_parquet
from starling.vo.tap_model import ResultEnd, TapColumn, in_chunks
from starling.vo.text_formats import stream_csv, stream_json, stream_tsv, write_csv, write_json, write_tsv
from starling.vo.votable_stream import error_votable, stream_votable, stream_votable_td

__all__ = [
    "FORMATS",
    "OUTPUT_FORMATS",
    "OutputFormat",
    "StreamWriter",
    "Writer",
    "error_votable",
    "infer_column",
    "output_formats",
    "response_format",
    "stream_csv",
    "stream_format",
    "stream_json",
    "stream_parquet",
    "stream_tsv",
    "stream_votable",
    "stream_votable_td",
    "write_csv",
    "write_json",
    "write_parquet",
    "write_tsv",
    "write_votable",
    "write_votable_td",
]

VOTABLE = "application/x-votable+xml"
VOTABLE_TD = "application/x-votable+xml;serialization=TABLEDATA"
CSV = "text/csv;header=present"
TSV = "text/tab-separated-values"
JSON = "application/json"


class Writer(Protocol):
    """What every writer of a result is: columns and rows in, the document out."""

    def __call__(
        self, columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool, query: str
    ) -> bytes: ...


class StreamWriter(Protocol):
    """What every streaming writer of a result is: columns, the rows in chunks (each a list of rows)
    and how the result ended in, the document out a piece at a time. ``end`` is read only once
    ``chunks`` is exhausted (only then is it known); one chunk is held at a time."""

    def __call__(
        self,
        columns: Sequence[TapColumn],
        chunks: Iterable[Sequence[Sequence[object]]],
        end: ResultEnd,
        *,
        query: str,
    ) -> Iterator[bytes]: ...


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


# ---- VOTable -----------------------------------------------------------------------------------------


def write_votable(
    columns: Sequence[TapColumn],
    rows: Iterable[Sequence[object]],
    *,
    overflow: bool,
    query: str,
    serialization: str = "binary2",
) -> bytes:
    """:func:`~starling.vo.votable_stream.stream_votable` as one document: VOTable 1.4, BINARY2 (or
    ``serialization="tabledata"``), OVERFLOW after the table when ``overflow``."""
    stream = stream_votable(
        columns, in_chunks(rows), ResultEnd(overflow), query=query, serialization=serialization
    )
    return b"".join(stream)


def write_votable_td(
    columns: Sequence[TapColumn], rows: Iterable[Sequence[object]], *, overflow: bool, query: str
) -> bytes:
    """:func:`write_votable` with its rows in TABLEDATA (XML cells)."""
    return write_votable(columns, rows, overflow=overflow, query=query, serialization="tabledata")


# ---- the formats a client may ask for -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One output format, as TAPRegExt's ``outputFormat`` describes it: the media type advertised
    (``mime``), its short names (``aliases``), its standard identifier if any, and what else a client
    may send for it. ``media_type`` is the Content-Type of the response; ``writer`` writes it whole,
    ``streamer`` a piece per chunk of rows."""

    mime: str
    aliases: tuple[str, ...]
    writer: Writer
    streamer: StreamWriter
    media_type: str
    ivo_id: str | None = None
    also_accepted: tuple[str, ...] = ()
    description: str = ""


_TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"

OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat(
        mime=VOTABLE,
        aliases=("votable",),
        writer=write_votable,
        streamer=stream_votable,
        media_type=VOTABLE,
        ivo_id=f"{_TAPREGEXT}#output-votable-binary2",
        also_accepted=("text/xml", "application/x-votable+xml;serialization=binary2", "votable/b2"),
        description="VOTable 1.4, BINARY2 serialization (the default).",
    ),
    OutputFormat(
        mime=VOTABLE_TD,
        aliases=("votable/td",),
        writer=write_votable_td,
        streamer=stream_votable_td,
        media_type=VOTABLE_TD,
        ivo_id=f"{_TAPREGEXT}#output-votable-td",
        description="VOTable 1.4, TABLEDATA serialization.",
    ),
    OutputFormat(
        mime="text/csv",
        aliases=("csv",),
        writer=write_csv,
        streamer=stream_csv,
        media_type=CSV,
        also_accepted=(CSV,),
        description="Comma-separated values, header line first.",
    ),
    OutputFormat(
        mime=TSV,
        aliases=("tsv",),
        writer=write_tsv,
        streamer=stream_tsv,
        media_type=TSV,
        description="Tab-separated values, header line first.",
    ),
    OutputFormat(
        mime=JSON,
        aliases=("json",),
        writer=write_json,
        streamer=stream_json,
        media_type=JSON,
        description='A JSON object: {"metadata": [column, ...], "data": [[value, ...], ...], '
        '"overflow": bool, "query": text}, and "error": text when the result failed after rows were sent.',
    ),
    OutputFormat(
        mime=PARQUET,
        aliases=("parquet",),
        writer=write_parquet,
        streamer=stream_parquet,
        media_type=PARQUET,
        description="Apache Parquet: typed columns with their unit, UCD and description; the query and "
        "QUERY_STATUS (OK, OVERFLOW or ERROR) in the file's key-value metadata.",
    ),
)


def _normal(value: str) -> str:
    """A format as clients may spell it, compared case-insensitively and without spaces."""
    return "".join(value.split()).lower()


class _Formats(Mapping[str, tuple[str, Writer]]):
    """The accepted RESPONSEFORMAT values, looked up case-insensitively and ignoring spaces."""

    def __init__(self, formats: Iterable[OutputFormat]) -> None:
        self._names: list[str] = []
        self._entries: dict[str, tuple[str, OutputFormat]] = {}
        for output in formats:
            media_type = output.media_type
            for name in (*output.aliases, output.mime, *output.also_accepted):
                # a legacy name (text/xml) is answered with the media type it was asked as
                answer = name if name == "text/xml" else media_type
                if _normal(name) not in self._entries:
                    self._names.append(name)
                    self._entries[_normal(name)] = (answer, output)

    def output(self, key: str) -> tuple[str, OutputFormat]:
        """The media type to answer ``key`` with, and its format."""
        return self._entries[_normal(key)]

    def __getitem__(self, key: str) -> tuple[str, Writer]:
        media_type, output = self.output(key)
        return media_type, output.writer

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_FORMATS = _Formats(OUTPUT_FORMATS)
FORMATS: Mapping[str, tuple[str, Writer]] = _FORMATS


def _asked(value: str | None) -> tuple[str, OutputFormat]:
    """The media type and format for a RESPONSEFORMAT value, VOTable when absent or empty (TAP 1.1
    section 2.7.3)."""
    if value is None or not value.strip():
        return _FORMATS.output("votable")
    try:
        return _FORMATS.output(value)
    except KeyError:
        raise KeyError(f"unsupported RESPONSEFORMAT {value!r}: one of {', '.join(FORMATS)}") from None


def response_format(value: str | None) -> tuple[str, Writer]:
    """The media type and writer for a RESPONSEFORMAT (or FORMAT) value; VOTable when it is absent or
    empty (TAP 1.1 section 2.7.3). Raises KeyError for a format not served."""
    media_type, output = _asked(value)
    return media_type, output.writer


def stream_format(value: str | None) -> tuple[str, StreamWriter]:
    """The media type and streaming writer for a RESPONSEFORMAT (or FORMAT) value, looked up as
    :func:`response_format` does (VOTable BINARY2 when absent). Raises KeyError for a format not
    served."""
    media_type, output = _asked(value)
    return media_type, output.streamer


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
