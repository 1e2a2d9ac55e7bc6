"""Results as Parquet: read back by pyarrow with the columns' types, NULLs and metadata, the query, and
how the result ended; a row group per chunk."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from starling.vo.parquet_format import PARQUET, arrow_schema, stream_parquet, write_parquet
from starling.vo.tap_model import ResultEnd, TapColumn
from starling.vo.votable import FORMATS, OUTPUT_FORMATS, response_format, stream_format

COLUMNS = [
    TapColumn("survey", "char", "The survey.", ucd="meta.id;instr.obsty", arraysize="*"),
    TapColumn("alert_id", "long", "The alert.", ucd="meta.id;meta.main"),
    TapColumn("n", "int", "A count."),
    TapColumn("k", "short", "A code."),
    TapColumn("mag", "double", "A magnitude.", "mag", "phot.mag;em.opt"),
    TapColumn("flux", "float", "A flux.", "nJy"),
    TapColumn("bright", "boolean", ""),
    TapColumn("name", "unicodeChar", "A name.", arraysize="*"),
    TapColumn("pt", "double", "A point.", "deg", arraysize="2", xtype="point"),
]
ROWS: list[tuple[Any, ...]] = [
    ("ztf", 170_000_000_000_000_001, 3, -2, 18.25, 1.5, True, "Ωmega ✓ 😀", (10.5, -20.25)),
    (None, 7, None, None, None, None, None, None, None),
    ("rubin", 8, -1, 300, float("nan"), 2.5, False, "", (1.0, 2.0)),
]
QUERY = "SELECT *\nFROM starling.alerts -- Ω"


def _read(document: bytes) -> Any:
    return pq.read_table(io.BytesIO(document))


def test_columns_come_back_with_their_types_values_and_nulls() -> None:
    table = _read(b"".join(stream_parquet(COLUMNS, [ROWS[:1], [], ROWS[1:]], ResultEnd(), query=QUERY)))
    assert [(field.name, str(field.type)) for field in table.schema] == [
        ("survey", "string"),
        ("alert_id", "int64"),
        ("n", "int32"),
        ("k", "int16"),
        ("mag", "double"),
        ("flux", "float"),
        ("bright", "bool"),
        ("name", "string"),
        ("pt", "list<element: double>"),  # (Parquet's name for a list's items)
    ]
    assert all(field.nullable for field in table.schema)
    rows = table.to_pylist()
    assert rows[0] == dict(zip([c.name for c in COLUMNS], [*ROWS[0][:-1], [10.5, -20.25]], strict=True))
    assert rows[1] == {**dict.fromkeys(rows[1]), "alert_id": 7}  # NULL is null in every type
    assert math.isnan(rows[2]["mag"])  # NaN stays a number
    assert (rows[2]["name"], rows[2]["bright"], rows[2]["k"]) == ("", False, 300)


def test_the_metadata_keeps_the_query_and_each_columns_unit_ucd_and_description() -> None:
    table = _read(write_parquet(COLUMNS, ROWS, query=QUERY))
    assert table.schema.metadata[b"QUERY"].decode() == QUERY
    mag = table.schema.field("mag").metadata
    assert mag == {
        b"datatype": b"double",
        b"unit": b"mag",
        b"ucd": b"phot.mag;em.opt",
        b"description": b"A magnitude.",
    }
    point = table.schema.field("pt").metadata
    assert (point[b"arraysize"], point[b"xtype"], point[b"unit"]) == (b"2", b"point", b"deg")
    assert table.schema.field("bright").metadata == {b"datatype": b"boolean"}


@pytest.mark.parametrize(
    ("end", "status"),
    [
        (ResultEnd(), {b"QUERY_STATUS": b"OK"}),
        (ResultEnd(overflow=True), {b"QUERY_STATUS": b"OVERFLOW"}),
        (
            ResultEnd(error="the query ran out of time"),
            {b"QUERY_STATUS": b"ERROR", b"QUERY_STATUS_MESSAGE": b"the query ran out of time"},
        ),
    ],
)
def test_how_the_result_ended_is_in_the_metadata_written_at_close(
    end: ResultEnd, status: dict[bytes, bytes]
) -> None:
    document = b"".join(stream_parquet(COLUMNS, [ROWS[:2], ROWS[2:]], end, query=QUERY))
    kept = {key: value for key, value in _read(document).schema.metadata.items() if key.startswith(b"QUERY_")}
    assert kept == status  # as a reader of the table sees it
    file_metadata = pq.read_metadata(io.BytesIO(document)).metadata  # and of the file's key-value metadata
    assert {key: file_metadata[key] for key in status} == status
    assert _read(document).num_rows == 3  # the rows sent before the end stand


def test_each_chunk_is_a_row_group_sent_as_it_is_written() -> None:
    pieces = list(stream_parquet(COLUMNS, [ROWS[:1], ROWS[1:2], [], ROWS[2:]], ResultEnd(), query=QUERY))
    assert pieces[0] == b"PAR1"  # before any row is read
    assert len(pieces) == 5  # the magic number, a piece per non-empty chunk, the footer
    assert all(pieces[1:4])
    assert pieces[-1].endswith(b"PAR1")
    document = b"".join(pieces)
    assert pq.ParquetFile(io.BytesIO(document)).num_row_groups == 3
    assert _read(document).column("alert_id").to_pylist() == [row[1] for row in ROWS]


def test_any_other_datatype_is_written_as_text() -> None:
    columns = [TapColumn("c", "doubleComplex", ""), TapColumn("b", "unsignedByte", "")]
    schema = arrow_schema(columns, "q")
    assert (schema.field("c").type, schema.field("b").type) == (pa.string(), pa.uint8())
    table = _read(write_parquet(columns, [(1 + 2j, 255), (None, None)]))
    assert table.to_pylist() == [{"c": "(1+2j)", "b": 255}, {"c": None, "b": None}]


def test_values_are_taken_as_their_columns_type() -> None:
    columns = [TapColumn("flag", "boolean", ""), TapColumn("n", "long", ""), TapColumn("x", "double", "")]
    rows = [(1, np.int64(5), np.float32(0.5)), (0, True, 2), (None, None, None)]  # SQLite's booleans are 0, 1
    table = _read(write_parquet(columns, rows))
    assert table.to_pylist() == [
        {"flag": True, "n": 5, "x": 0.5},
        {"flag": False, "n": 1, "x": 2.0},
        {"flag": None, "n": None, "x": None},
    ]


def test_parquet_is_a_response_format() -> None:
    (output,) = [o for o in OUTPUT_FORMATS if o.mime == PARQUET]
    assert (output.aliases, output.ivo_id, output.media_type) == (("parquet",), None, PARQUET)
    assert output.description
    for value in ("parquet", "PARQUET", "application/vnd.apache.parquet"):
        assert FORMATS[value] == (PARQUET, write_parquet)
        assert response_format(value) == (PARQUET, write_parquet)
        assert stream_format(value) == (PARQUET, stream_parquet)
