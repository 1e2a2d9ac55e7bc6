"""Results streamed a chunk of rows at a time: every format gives in many chunks what it gives in one;
a streamed VOTable is one valid document (BINARY2's base64 one stream wherever the chunks end), read
back by astropy and pyvo with its values, NULLs, text and how the result ended after the table; an
empty result is a valid document; ``end`` is read only after the rows; and a long result is held a
chunk at a time."""

from __future__ import annotations

import base64
import gc
import io
import json
import re
import tracemalloc
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from astropy.io import votable

from starling.vo.tap_model import CHUNK_ROWS, ResultEnd, TapColumn
from starling.vo.votable import OUTPUT_FORMATS, StreamWriter, stream_format, stream_votable

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
SERIALIZATIONS = ("binary2", "tabledata")
ALIASES = [output.aliases[0] for output in OUTPUT_FORMATS]
COLUMNS = [
    TapColumn("survey", "char", "The survey.", ucd="meta.id", arraysize="*"),
    TapColumn("alert_id", "long", "The alert.", ucd="meta.id;meta.main"),
    TapColumn("n", "int", "A count."),
    TapColumn("k", "short", "A code."),
    TapColumn("mag", "double", "A magnitude.", "mag", "phot.mag;em.opt"),
    TapColumn("flux", "float", "A flux.", "nJy"),
    TapColumn("bright", "boolean", "Brighter than 18."),
    TapColumn("name", "unicodeChar", "A name.", arraysize="*"),
    TapColumn("pt", "double", "A point.", "deg", arraysize="2", xtype="point"),
]
TEXTS = ("ztf", "rubin", "Ωmega ✓ 😀", "")


def _row(i: int) -> tuple[Any, ...]:
    """Row ``i`` of a test result: a NULL in every column now and then, text beyond ASCII, NaN."""
    if i % 5 == 1:
        return ("ztf" if i % 2 else None, i, *(None,) * 7)
    mag = float("nan") if i % 7 == 3 else 15.0 + i / 8
    return (TEXTS[i % 4], 2**62 + i, -i, i % 300, mag, i / 4, i % 2 == 0, TEXTS[(i + 1) % 4], (i / 2, -i / 2))


ROWS = [_row(i) for i in range(23)]


def _chunks(rows: Sequence[tuple[Any, ...]], sizes: Sequence[int]) -> Iterator[list[tuple[Any, ...]]]:
    """The rows in chunks of the sizes given, in turn (the last size repeated), an empty chunk first."""
    yield []
    start, turn = 0, 0
    while start < len(rows):
        size = sizes[min(turn, len(sizes) - 1)]
        yield list(rows[start : start + size])
        start, turn = start + size, turn + 1


def _document(
    streamer: StreamWriter, chunks: Iterable[Sequence[Sequence[object]]], end: ResultEnd | None = None
) -> bytes:
    return b"".join(streamer(COLUMNS, chunks, end or ResultEnd(), query="SELECT * FROM t"))


def _parse(document: bytes) -> Any:
    return votable.parse(io.BytesIO(document), verify="exception")


def _without_stream(document: bytes) -> bytes:
    return re.sub(rb"(<STREAM[^>]*>)[^<]*(</STREAM>)", rb"\1\2", document)


def _stream_bytes(document: bytes) -> tuple[str, bytes]:
    """A BINARY2 document's STREAM text (whitespace removed) and the bytes it encodes."""
    stream = ET.fromstring(document).find(f".//{VOT}BINARY2/{VOT}STREAM")
    assert stream is not None
    text = "".join((stream.text or "").split())
    return text, base64.b64decode(text, validate=True)


@pytest.fixture(scope="module")
def schema() -> Any:
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(Path(votable.__file__).parent / "data" / "VOTable.v1.4.xsd"))


@pytest.mark.parametrize("alias", ALIASES)
def test_every_format_streamed_in_chunks_gives_what_one_chunk_gives(alias: str) -> None:
    _, streamer = stream_format(alias)
    whole = _document(streamer, [ROWS])
    for sizes in ([1], [2, 7, 3], [22]):
        chunked = _document(streamer, _chunks(ROWS, sizes))
        if alias == "votable":  # the same document and bytes, in base64 lines cut elsewhere
            assert _without_stream(chunked) == _without_stream(whole)
            assert _stream_bytes(chunked)[1] == _stream_bytes(whole)[1]
        elif alias == "parquet":  # a row group per chunk
            assert pq.ParquetFile(io.BytesIO(chunked)).num_row_groups == len(list(_chunks(ROWS, sizes))) - 1
            read, expected = pq.read_table(io.BytesIO(chunked)), pq.read_table(io.BytesIO(whole))
            assert read.schema.equals(expected.schema, check_metadata=True)
            assert str(read.to_pylist()) == str(expected.to_pylist())  # (NaN is not equal to itself)
        else:
            assert chunked == whole


@pytest.mark.parametrize("serialization", SERIALIZATIONS)
def test_a_streamed_votable_reads_back_with_its_values_nulls_and_text(serialization: str) -> None:
    document = b"".join(
        stream_votable(
            COLUMNS, _chunks(ROWS, [1, 2, 3, 7]), ResultEnd(), query="q", serialization=serialization
        )
    )
    table = _parse(document).get_first_table()
    assert [(f.name, f.datatype, f.arraysize) for f in table.fields] == [
        (c.name, c.datatype, c.arraysize) for c in COLUMNS
    ]
    array = table.array
    assert len(array) == len(ROWS)
    assert list(array["alert_id"]) == [row[1] for row in ROWS]  # 64-bit, exactly
    for i, row in enumerate(ROWS):
        for name in ("n", "k", "mag", "flux", "bright"):  # integer, double and boolean NULLs
            value = row[[c.name for c in COLUMNS].index(name)]
            if value is None:
                assert array.mask[name][i], (i, name)
            elif value == value:  # (astropy reads NaN back masked: VOTable's NULL of a float)
                assert not array.mask[name][i], (i, name)
                assert array[name][i] == value, (i, name)
        assert bool(array.mask["pt"][i].all()) is (row[8] is None)
        # text beyond ASCII: whole in a unicodeChar column, JSON's escapes in a char one (a NULL text
        # reads back empty: astropy keeps no mask for variable-length text)
        assert array["name"][i] == (row[7] or "")
        assert json.loads(f'"{array["survey"][i]}"') == (row[0] or "")
    assert array["survey"][2] == "\\u03a9mega \\u2713 \\ud83d\\ude00"
    assert array["name"][5] == "Ωmega ✓ 😀"
    assert document.isascii() is (serialization == "binary2")


def test_binary2_flags_text_nulls_across_chunks() -> None:
    survey = COLUMNS[0]
    rows = [(None,), ("",), ("ztf",), (None,)]
    document = b"".join(stream_votable([survey], _chunks(rows, [1]), ResultEnd(), query="q"))
    data, flags = _stream_bytes(document)[1], []
    while data:  # each row: one byte of null flags, then the text's length (4 bytes) and its bytes
        length = int.from_bytes(data[1:5], "big")
        flags.append((data[0], data[5 : 5 + length]))
        data = data[5 + length :]
    assert flags == [(0x80, b""), (0, b""), (0, b"ztf"), (0x80, b"")]
    td = b"".join(
        stream_votable([survey], _chunks(rows, [1]), ResultEnd(), query="q", serialization="tabledata")
    )
    assert [cell.text for cell in ET.fromstring(td).iter(f"{VOT}TD")] == [None, None, "ztf", None]


@pytest.mark.parametrize("serialization", SERIALIZATIONS)
@pytest.mark.parametrize(
    ("end", "status"),
    [
        (ResultEnd(), None),
        (ResultEnd(overflow=True), "OVERFLOW"),
        (ResultEnd(error="timeout <after> 30 s & more"), "ERROR"),
    ],
)
def test_how_the_result_ended_follows_the_table(
    schema: Any, serialization: str, end: ResultEnd, status: str | None
) -> None:
    document = b"".join(
        stream_votable(COLUMNS, _chunks(ROWS, [4]), end, query="SELECT * FROM t", serialization=serialization)
    )
    schema.validate(document.decode())
    resource = ET.fromstring(document).find(f"{VOT}RESOURCE")
    assert resource is not None
    children = [(child.tag.removeprefix(VOT), child.get("name"), child.get("value")) for child in resource]
    after = [("INFO", "QUERY_STATUS", status)] if status else []
    assert children == [
        ("INFO", "QUERY_STATUS", "OK"),
        ("INFO", "QUERY", "SELECT * FROM t"),
        ("TABLE", None, None),
        *after,
    ]
    parsed = _parse(document)
    assert len(parsed.get_first_table().array) == len(ROWS)  # the rows sent before the end stand
    infos = [(i.name, i.value, i.content) for i in parsed.resources[0].infos if i.name == "QUERY_STATUS"]
    assert infos[-1] == ("QUERY_STATUS", status or "OK", end.error)


def test_the_base64_stream_is_one_stream_wherever_a_chunk_ends() -> None:
    columns = [TapColumn("n", "int", "")]  # a row is 5 bytes: a byte of null flags and 4 of the value
    rows = [(i,) for i in range(40)]
    whole = b"".join(stream_votable(columns, [rows], ResultEnd(), query="q"))
    ends: set[int] = set()
    for sizes in ([1], [2], [3], [7], [1, 2, 3, 7]):
        chunks = list(_chunks(rows, sizes))
        offset = 0
        for chunk in chunks[1:-1]:
            offset += 5 * len(chunk)
            ends.add(offset % 3)
        document = b"".join(stream_votable(columns, chunks, ResultEnd(), query="q"))
        text, data = _stream_bytes(document)
        assert "=" not in text.rstrip("=")  # padding only at the very end: one stream, not several
        assert data == _stream_bytes(whole)[1]
        assert list(_parse(document).get_first_table().array["n"]) == list(range(40))
    assert ends == {0, 1, 2}  # a chunk has ended at every position of a base64 group


@pytest.mark.parametrize("chunks", [[], [[], []]], ids=["no chunk", "empty chunks"])
@pytest.mark.parametrize("alias", ALIASES)
def test_an_empty_result_is_a_valid_document(schema: Any, alias: str, chunks: list[list[Any]]) -> None:
    _, streamer = stream_format(alias)
    document = _document(streamer, chunks, ResultEnd(overflow=True))
    if alias.startswith("votable"):
        schema.validate(document.decode())
        table = _parse(document).get_first_table()
        assert [f.name for f in table.fields] == [c.name for c in COLUMNS]
        assert len(table.array) == 0
    elif alias == "parquet":
        read = pq.read_table(io.BytesIO(document))
        assert (read.num_rows, read.column_names) == (0, [c.name for c in COLUMNS])
        assert read.schema.metadata[b"QUERY_STATUS"] == b"OVERFLOW"
    elif alias == "json":
        assert json.loads(document)["data"] == []
    else:
        assert document.decode().splitlines() == [
            ("," if alias == "csv" else "\t").join(c.name for c in COLUMNS)
        ]


def _ending(rows: Sequence[tuple[Any, ...]], end: ResultEnd) -> Iterator[list[tuple[Any, ...]]]:
    """The rows in chunks of 4, and ``end`` told how they ended only once the last is read (as a
    query's reader does)."""
    yield from _chunks(rows, [4])
    end.overflow = True


@pytest.mark.parametrize("alias", ALIASES)
def test_the_end_is_read_once_the_rows_are(alias: str) -> None:
    end = ResultEnd()
    media_type, streamer = stream_format(alias)
    document = _document(streamer, _ending(ROWS, end), end)
    if media_type.startswith("application/x-votable+xml"):
        assert b'<INFO name="QUERY_STATUS" value="OVERFLOW"/>' in document
    elif alias == "parquet":
        assert pq.read_metadata(io.BytesIO(document)).metadata[b"QUERY_STATUS"] == b"OVERFLOW"
    elif alias == "json":
        assert json.loads(document)["overflow"] is True


def test_pyvo_reads_the_streamed_votables() -> None:
    dal = pytest.importorskip("pyvo.dal")
    streamer = stream_format("votable")[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = dal.DALResults(_parse(_document(streamer, _chunks(ROWS, [3]))))
    assert results.fieldnames == tuple(c.name for c in COLUMNS)
    assert len(results) == len(ROWS)
    assert results.getcolumn("alert_id")[4] == 2**62 + 4
    with pytest.warns(dal.DALOverflowWarning):
        cut = dal.DALResults(_parse(_document(streamer, _chunks(ROWS, [3]), ResultEnd(overflow=True))))
    assert cut.status[0] == "OVERFLOW"
    failed = _document(streamer, _chunks(ROWS, [3]), ResultEnd(error="the query ran out of time"))
    with pytest.raises(dal.DALQueryError, match="the query ran out of time"):
        dal.DALResults(_parse(failed))


def test_a_row_of_the_wrong_length_is_refused_when_it_is_reached() -> None:
    for alias in ("votable", "parquet"):
        pieces = stream_format(alias)[1](COLUMNS, [ROWS[:2], [("x",)]], ResultEnd(), query="q")
        next(pieces)  # the head is written before any row is read
        with pytest.raises(ValueError, match="row 2 has 1 values for 9 columns"):
            list(pieces)
    with pytest.raises(ValueError, match="serialization"):
        stream_votable(COLUMNS, [], ResultEnd(), query="q", serialization="fits")


# ---- memory -------------------------------------------------------------------------------------------

LONG_ROWS = 200_000
MEMORY_COLUMNS = [COLUMNS[0], COLUMNS[4]]  # text, and a double with NULLs (astropy is slow: 2 columns)


def _long_result(rows: int, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """``rows`` rows, made a chunk at a time as they are wanted."""
    for start in range(0, rows, size):
        yield [(f"ZTF{i:09d}", None if i % 7 else i / 4) for i in range(start, min(rows, start + size))]


def _peak(work: Any) -> int:
    """The most memory Python held while ``work`` ran (tracemalloc's peak)."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("alias", ["votable", "json", "parquet"])  # astropy, text, pyarrow
def test_a_long_result_is_held_a_chunk_at_a_time(alias: str) -> None:
    _, streamer = stream_format(alias)

    def streamed(rows: int) -> None:
        for _piece in streamer(MEMORY_COLUMNS, _long_result(rows, CHUNK_ROWS), ResultEnd(), query="q"):
            pass  # sent, and forgotten

    streamed(2 * CHUNK_ROWS)  # imports and caches in place before measuring
    one_chunk = _peak(lambda: streamed(2 * CHUNK_ROWS))
    long = _peak(lambda: streamed(LONG_ROWS))
    whole = _peak(lambda: [row for chunk in _long_result(LONG_ROWS, CHUNK_ROWS) for row in chunk])
    # 200 chunks cost about what 2 do, and far less than the rows of the result held at once
    assert long / one_chunk < 3, (long, one_chunk)
    assert long / whole < 1 / 20, (long, whole)
