"""Results as VOTable 1.4: valid against the VOTable schema, read back by astropy and pyvo with every
field's metadata, every value and every NULL; OVERFLOW after the table; errors as DALI says."""

from __future__ import annotations

import base64
import io
import json
import math
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from astropy.io import votable

from starling.vo.tap_schema import TapColumn, table, tap_schema_rows
from starling.vo.votable import error_votable, infer_column, write_votable

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"  # VOTable 1.4 keeps the namespace of 1.3
SERIALIZATIONS = ("binary2", "tabledata")
ALERTS = table("alerts")
COLUMNS = [ALERTS.column(n) for n in ("survey", "alert_id", "mjd", "mag", "reliability")] + [
    TapColumn("is_bright", "boolean", "mag below 18"),
    TapColumn("n", "int", "a count"),
]
ROWS: list[tuple[Any, ...]] = [
    ("ztf", 2_345_678_901_234, 60_000.123456789, 18.25, 0.98, False, 3),
    ("rubin", 170_000_000_000_000_001, 60_001.5, None, None, None, None),
    ("ztf", 7, 60_002.0, 17.5, float("nan"), True, -1),
]


def _parse(document: bytes) -> Any:
    return votable.parse(io.BytesIO(document), verify="exception")


@pytest.fixture(scope="module")
def schema() -> Any:
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(Path(votable.__file__).parent / "data" / "VOTable.v1.4.xsd"))


@pytest.mark.parametrize("serialization", SERIALIZATIONS)
def test_fields_carry_the_columns_metadata(serialization: str) -> None:
    parsed = _parse(write_votable(COLUMNS, ROWS, overflow=False, query="q", serialization=serialization))
    assert parsed.version == "1.4"
    (resource,) = parsed.resources
    assert resource.type == "results"
    fields = resource.tables[0].fields
    assert [(f.name, f.datatype, f.arraysize) for f in fields] == [
        (c.name, c.datatype, c.arraysize) for c in COLUMNS
    ]
    metadata = [
        (str(f.unit) if f.unit else "", f.ucd or "", " ".join((f.description or "").split())) for f in fields
    ]
    assert metadata == [(c.unit, c.ucd, c.description) for c in COLUMNS]
    assert fields[2].unit.to_string() == "d"


@pytest.mark.parametrize("serialization", SERIALIZATIONS)
def test_values_and_nulls_come_back(serialization: str) -> None:
    document = write_votable(COLUMNS, iter(ROWS), overflow=False, query="q", serialization=serialization)
    array = _parse(document).get_first_table().array
    assert len(array) == 3
    assert list(array["survey"]) == ["ztf", "rubin", "ztf"]
    assert list(array["alert_id"]) == [2_345_678_901_234, 170_000_000_000_000_001, 7]  # 64-bit, exactly
    assert array["mjd"][0] == 60_000.123456789
    assert array["n"][2] == -1
    assert bool(array["is_bright"][2]) is True
    assert bool(array["is_bright"][0]) is False
    for name in ("mag", "reliability", "is_bright", "n"):
        assert bool(array.mask[name][1]), name  # NULL in the second row
        assert not array.mask[name][0], name
    assert not any(array.mask["alert_id"])
    assert math.isnan(array.data["reliability"][2]) or array.mask["reliability"][2]  # NaN stays not-a-number


def test_binary2_flags_a_null_text_apart_from_an_empty_one() -> None:
    survey = ALERTS.column("survey")
    document = write_votable([survey], [(None,), ("",), ("ztf",)], overflow=False, query="q")
    stream = ET.fromstring(document).find(f".//{VOT}BINARY2/{VOT}STREAM")
    assert stream is not None
    assert stream.get("encoding") == "base64"
    data, rows = base64.b64decode(stream.text or ""), []
    while data:  # each row: one byte of null flags, then the text's length (4 bytes) and its bytes
        length = int.from_bytes(data[1:5], "big")
        rows.append((data[0], data[5 : 5 + length]))
        data = data[5 + length :]
    assert rows == [(0x80, b""), (0, b""), (0, b"ztf")]
    # (astropy reads a NULL text of BINARY2 back as "": it keeps no mask for variable-length text)
    assert list(_parse(document).get_first_table().array["survey"]) == ["", "", "ztf"]


def _resource_children(document: bytes) -> list[tuple[str, str | None]]:
    resource = ET.fromstring(document).find(f"{VOT}RESOURCE")
    assert resource is not None
    return [(child.tag.removeprefix(VOT), child.get("value")) for child in resource]


@pytest.mark.parametrize("serialization", SERIALIZATIONS)
def test_status_ok_and_the_query_before_the_table_and_overflow_after_it(serialization: str) -> None:
    cut = write_votable(
        COLUMNS, ROWS[:2], overflow=True, query="SELECT TOP 2 * FROM alerts", serialization=serialization
    )
    assert _resource_children(cut) == [
        ("INFO", "OK"),
        ("INFO", "SELECT TOP 2 * FROM alerts"),
        ("TABLE", None),
        ("INFO", "OVERFLOW"),
    ]
    resource = ET.fromstring(cut).find(f"{VOT}RESOURCE")
    assert resource is not None
    assert [info.get("name") for info in resource.findall(f"{VOT}INFO")] == [
        "QUERY_STATUS",
        "QUERY",
        "QUERY_STATUS",
    ]
    whole = write_votable(COLUMNS, ROWS, overflow=False, query="q", serialization=serialization)
    assert [tag for tag, value in _resource_children(whole)] == ["INFO", "INFO", "TABLE"]
    assert len(_parse(cut).get_first_table().array) == 2


def test_the_query_text_survives_verbatim() -> None:
    query = "SELECT a.ra, a.dec\nFROM starling.alerts AS a\nWHERE a.mag < 18 AND a.survey = 'ztf' -- & more"
    parsed = _parse(write_votable(COLUMNS, [], overflow=False, query=query))
    info = next(i for i in parsed.resources[0].infos if i.name == "QUERY")
    assert info.content == query
    assert info.value.split() == query.split()  # an attribute's line breaks read back as spaces


@pytest.mark.parametrize("serialization", SERIALIZATIONS)
def test_documents_are_valid_votable_1_4(schema: Any, serialization: str) -> None:
    special = [
        TapColumn("pt", "double", "", arraysize="2", xtype="point"),
        TapColumn("poly", "double", "", arraysize="*", xtype="polygon"),
    ]
    rows = [(*row, (1.0, 2.0), [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]) for row in ROWS] + [(None,) * 9]
    for document in (
        write_votable(COLUMNS + special, rows, overflow=True, query="q < 1 & 2", serialization=serialization),
        write_votable(COLUMNS, [], overflow=False, query="", serialization=serialization),
        error_votable("no"),
    ):
        schema.validate(document.decode())


def test_points_and_polygons_are_arrays_of_doubles_with_their_xtype() -> None:
    columns = [
        TapColumn("pt", "double", "", arraysize="2", xtype="point"),
        TapColumn("poly", "double", "", "deg", arraysize="*", xtype="polygon"),
    ]
    rows = [((10.5, -20.25), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), (None, None)]
    for serialization in SERIALIZATIONS:
        t = _parse(
            write_votable(columns, rows, overflow=False, query="q", serialization=serialization)
        ).get_first_table()
        assert [(f.xtype, f.arraysize) for f in t.fields] == [("point", "2"), ("polygon", "*")]
        assert list(t.array["pt"][0]) == [10.5, -20.25]
        assert list(t.array["poly"][0]) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        assert t.array.mask["pt"][1].all()


def test_text_beyond_ascii_is_escaped_in_char_and_whole_in_unicode_char() -> None:
    # a column keeps its declared datatype (the FIELDs are written before any row is seen): VOTable's
    # char is ASCII, so there each character beyond it is written as JSON writes it
    payload = TapColumn("payload", "char", "JSON", arraysize="*")
    name = TapColumn("name", "unicodeChar", "", arraysize="*")
    rows = [('{"name": "Ωmega ✓ 😀"}', "Ωmega ✓ 😀", "g")]
    for serialization in SERIALIZATIONS:
        document = write_votable(
            [payload, name, ALERTS.column("band")],
            rows,
            overflow=False,
            query="q",
            serialization=serialization,
        )
        t = _parse(document).get_first_table()
        assert [f.datatype for f in t.fields] == ["char", "unicodeChar", "char"]
        assert t.array["payload"][0] == '{"name": "\\u03a9mega \\u2713 \\ud83d\\ude00"}'
        assert json.loads(t.array["payload"][0]) == json.loads(rows[0][0])  # the same JSON value
        assert t.array["name"][0] == "Ωmega ✓ 😀"


def test_repeated_column_names_are_kept() -> None:
    ra = ALERTS.column("ra")
    document = write_votable([ra, ra], [(1.0, 2.0)], overflow=False, query="q")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", votable.exceptions.W33)  # astropy's own column names differ
        t = _parse(document).get_first_table()
    assert [f.name for f in t.fields] == ["ra", "ra"]
    assert len({f.ID for f in t.fields}) == 2


def test_the_tap_schema_columns_table_round_trips_with_its_size_column() -> None:
    columns_table = table("TAP_SCHEMA.columns")
    rows = tap_schema_rows()["TAP_SCHEMA.columns"]
    t = _parse(write_votable(columns_table.columns, rows, overflow=False, query="q")).get_first_table()
    assert [f.name for f in t.fields][5] == "size"
    assert len(t.array) == len(rows)
    assert t.array.mask["size"].all()
    assert list(t.array["column_name"][:2]) == ["survey", "object_id"]


def test_rows_must_match_the_columns_and_the_serialization_be_known() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 values for 7 columns"):
        write_votable(COLUMNS, [ROWS[0], ("x",)], overflow=False, query="q")
    with pytest.raises(ValueError, match="serialization"):
        write_votable(COLUMNS, ROWS, overflow=False, query="q", serialization="fits")


def test_an_error_document_says_error_with_the_message_and_has_no_table() -> None:
    message = "syntax error at line 1: unexpected <FROM> & so on"
    document = error_votable(message)
    parsed = _parse(document)
    (resource,) = parsed.resources
    assert resource.type == "results"
    assert [(i.name, i.value, i.content) for i in resource.infos] == [("QUERY_STATUS", "ERROR", message)]
    assert resource.tables == []


def test_pyvo_reads_status_overflow_and_errors() -> None:
    dal = pytest.importorskip("pyvo.dal")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = dal.DALResults(_parse(write_votable(COLUMNS, ROWS, overflow=False, query="q")))
    assert results.fieldnames == tuple(c.name for c in COLUMNS)
    assert len(results) == 3
    assert results.getcolumn("alert_id")[1] == 170_000_000_000_000_001
    with pytest.warns(dal.DALOverflowWarning):
        cut = dal.DALResults(_parse(write_votable(COLUMNS, ROWS[:1], overflow=True, query="q")))
    assert cut.status[0] == "OVERFLOW"
    with pytest.raises(dal.DALQueryError, match=r"no table starling\.nothing"):
        dal.DALResults(_parse(error_votable("no table starling.nothing")))


def test_infer_column_reads_a_type_from_the_values() -> None:
    def inferred(*values: object) -> tuple[str, str | None]:
        column = infer_column("expr", iter(values))
        assert (column.name, column.unit, column.ucd) == ("expr", "", "")
        return column.datatype, column.arraysize

    assert inferred(None, 1, 2**40) == ("long", None)
    assert inferred(1, 2.5, None) == ("double", None)
    assert inferred(0.5) == ("double", None)
    assert inferred(True, None, False) == ("boolean", None)
    assert inferred("a", 1) == ("char", "*")
    assert inferred() == ("char", "*")
    assert inferred(None, None) == ("char", "*")
