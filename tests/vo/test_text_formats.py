"""Results as CSV, TSV and JSON, and the RESPONSEFORMAT values that choose a writer and a streaming writer."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from astropy.io import votable

from starling.vo.tap_model import ResultEnd, in_chunks
from starling.vo.tap_schema import TapColumn, table
from starling.vo.votable import (
    FORMATS,
    OUTPUT_FORMATS,
    StreamWriter,
    Writer,
    response_format,
    stream_csv,
    stream_format,
    stream_json,
    stream_parquet,
    stream_tsv,
    stream_votable,
    stream_votable_td,
    write_csv,
    write_json,
    write_parquet,
    write_tsv,
    write_votable,
    write_votable_td,
)

TD = "application/x-votable+xml;serialization=TABLEDATA"
ALERTS = table("alerts")
COLUMNS = [ALERTS.column(n) for n in ("survey", "alert_id", "mag")] + [
    TapColumn("note", "char", "", arraysize="*"),
    TapColumn("ok", "boolean", ""),
    TapColumn("pt", "double", "", arraysize="2", xtype="point"),
]
ROWS: list[tuple[Any, ...]] = [
    ("ztf", 2_345_678_901_234, 0.1 + 0.2, 'a, "quoted"\nline', True, (10.5, -20.0)),
    ("rubin", 7, None, None, None, None),
    ("ztf", 8, float("nan"), "tab\there", False, (1.0, 2.0)),
]


def test_csv_has_a_header_of_names_and_a_line_per_row_nulls_empty() -> None:
    text = write_csv(COLUMNS, iter(ROWS)).decode()
    assert text.startswith("survey,alert_id,mag,note,ok,pt\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["survey", "alert_id", "mag", "note", "ok", "pt"]
    assert rows[1] == [
        "ztf",
        "2345678901234",
        "0.30000000000000004",
        'a, "quoted"\nline',
        "true",
        "10.5 -20.0",
    ]
    assert rows[2] == ["rubin", "7", "", "", "", ""]
    assert rows[3] == ["ztf", "8", "NaN", "tab\there", "false", "1.0 2.0"]
    assert float(rows[1][2]) == 0.1 + 0.2  # floats read back exactly
    assert len(rows) == 4


def test_tsv_has_a_header_and_no_tab_or_line_break_inside_a_field() -> None:
    lines = write_tsv(COLUMNS, ROWS).decode().split("\n")
    assert lines[-1] == ""
    assert [line.split("\t") for line in lines[:-1]] == [
        ["survey", "alert_id", "mag", "note", "ok", "pt"],
        ["ztf", "2345678901234", "0.30000000000000004", 'a, "quoted" line', "true", "10.5 -20.0"],
        ["rubin", "7", "", "", "", ""],
        ["ztf", "8", "NaN", "tab here", "false", "1.0 2.0"],
    ]


def test_json_has_the_columns_metadata_the_rows_and_the_overflow() -> None:
    document = json.loads(write_json(COLUMNS, ROWS, overflow=True, query="SELECT 1"))
    assert set(document) == {"metadata", "data", "overflow", "query"}
    assert document["overflow"] is True
    assert document["query"] == "SELECT 1"
    assert [m["name"] for m in document["metadata"]] == [c.name for c in COLUMNS]
    mag = document["metadata"][2]
    assert (mag["datatype"], mag["unit"], mag["ucd"], mag["arraysize"]) == (
        "double",
        "mag",
        "phot.mag;em.opt",
        None,
    )
    assert document["metadata"][5]["xtype"] == "point"
    assert document["data"] == [
        ["ztf", 2_345_678_901_234, 0.1 + 0.2, 'a, "quoted"\nline', True, [10.5, -20.0]],
        ["rubin", 7, None, None, None, None],
        ["ztf", 8, None, "tab\there", False, [1.0, 2.0]],  # JSON has no NaN
    ]
    empty = json.loads(write_json(COLUMNS, []))
    assert (empty["data"], empty["overflow"]) == ([], False)


def _counted(n: int, reads: list[int]) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        reads.append(i)
        yield ("ztf", i, 18.0, "x", True, (1.0, 2.0))


def test_text_streams_read_the_rows_once_and_give_a_piece_per_chunk() -> None:
    reads: list[int] = []
    pieces = list(stream_csv(COLUMNS, in_chunks(_counted(2500, reads)), ResultEnd()))
    assert reads == list(range(2500))
    assert len(pieces) == 4  # the header before any row is read, then a piece per chunk of 1000
    assert pieces[0] == b"survey,alert_id,mag,note,ok,pt\r\n"
    assert b"".join(pieces) == write_csv(COLUMNS, _counted(2500, []))
    assert len(b"".join(pieces).decode().splitlines()) == 2501
    reads.clear()
    document = b"".join(stream_json(COLUMNS, in_chunks(_counted(2500, reads)), ResultEnd()))
    assert reads == list(range(2500))
    assert len(json.loads(document)["data"]) == 2500


def test_json_says_a_failure_after_rows_were_sent_and_csv_and_tsv_cannot() -> None:
    failed = ResultEnd(error="the query ran out of time")
    document = json.loads(b"".join(stream_json(COLUMNS, [ROWS[:2]], failed, query="q")))
    assert (document["error"], len(document["data"]), document["overflow"]) == (
        "the query ran out of time",
        2,
        False,
    )
    assert "error" not in json.loads(write_json(COLUMNS, ROWS))
    # CSV and TSV have no place for it: they end after the last row sent
    assert b"".join(stream_csv(COLUMNS, [ROWS[:2]], failed)) == write_csv(COLUMNS, ROWS[:2])
    assert b"".join(stream_tsv(COLUMNS, [ROWS[:2]], failed)) == write_tsv(COLUMNS, ROWS[:2])


@pytest.mark.parametrize(
    ("value", "media_type", "writer"),
    [
        ("votable", "application/x-votable+xml", write_votable),
        ("application/x-votable+xml", "application/x-votable+xml", write_votable),
        ("text/xml", "text/xml", write_votable),
        ("application/x-votable+xml;serialization=TABLEDATA", TD, write_votable_td),
        ("Application/X-VOTable+XML; serialization=tabledata", TD, write_votable_td),
        ("votable/td", TD, write_votable_td),
        ("csv", "text/csv;header=present", write_csv),
        ("text/csv", "text/csv;header=present", write_csv),
        ("tsv", "text/tab-separated-values", write_tsv),
        ("text/tab-separated-values", "text/tab-separated-values", write_tsv),
        ("json", "application/json", write_json),
        ("application/json", "application/json", write_json),
        ("parquet", "application/vnd.apache.parquet", write_parquet),
        ("application/vnd.apache.parquet", "application/vnd.apache.parquet", write_parquet),
    ],
)  # fmt: skip
def test_each_responseformat_a_client_sends_picks_its_media_type_and_writer(
    value: str, media_type: str, writer: object
) -> None:
    assert value in FORMATS
    assert FORMATS[value] == (media_type, writer)
    assert response_format(value) == (media_type, writer)


STREAMERS: dict[Writer, StreamWriter] = {
    write_votable: stream_votable,
    write_votable_td: stream_votable_td,
    write_csv: stream_csv,
    write_tsv: stream_tsv,
    write_json: stream_json,
    write_parquet: stream_parquet,
}


def test_each_responseformat_picks_the_streaming_writer_of_its_writer() -> None:
    for value in FORMATS:
        media_type, writer = response_format(value)
        assert stream_format(value) == (media_type, STREAMERS[writer])
    for output in OUTPUT_FORMATS:
        assert STREAMERS[output.writer] is output.streamer


def test_no_format_means_votable_and_an_unknown_one_is_refused() -> None:
    assert response_format(None) == response_format("") == ("application/x-votable+xml", write_votable)
    assert stream_format(None) == stream_format(" ") == ("application/x-votable+xml", stream_votable)
    for unknown in ("fits", "text/html", "votable/fits"):
        assert unknown not in FORMATS
        with pytest.raises(KeyError, match="unsupported RESPONSEFORMAT"):
            response_format(unknown)
        with pytest.raises(KeyError, match="unsupported RESPONSEFORMAT"):
            stream_format(unknown)


def test_every_format_writes_a_document_with_the_same_signature() -> None:
    assert len(FORMATS) == len(list(FORMATS)) >= 13
    for output in OUTPUT_FORMATS:
        document = output.writer(COLUMNS, ROWS, overflow=False, query="q")
        assert document == b"".join(output.streamer(COLUMNS, [ROWS], ResultEnd(), query="q"))
        if output.media_type.startswith("application/x-votable+xml"):
            assert len(votable.parse(io.BytesIO(document)).get_first_table().array) == 3
        elif output.media_type == "application/vnd.apache.parquet":
            assert (
                pq.read_table(io.BytesIO(document)).column("alert_id").to_pylist().count(2345678901234) == 1
            )
        else:
            assert document.decode().count("2345678901234") == 1
