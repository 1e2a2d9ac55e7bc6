"""The VOSI documents of the TAP service: the tableset lists every served column with its metadata, and
the capabilities say what TAPRegExt asks (languages and features, formats, limits), both read back by
ElementTree and, strictly, by pyvo's VOSI parser."""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET

import pytest

from starling.vo.tap_documents import ADQL_GEO_FEATURES, ADQL_GEO_FORMS, tables_xml, tap_capabilities_xml
from starling.vo.tap_schema import STARLING_TABLES, STARLING_VIEWS, TAP_KEYS, TAP_TABLES, table
from starling.vo.votable import FORMATS, OUTPUT_FORMATS

TABLES = "{http://www.ivoa.net/xml/VOSITables/v1.0}"
CAPABILITIES = "{http://www.ivoa.net/xml/VOSICapabilities/v1.0}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
BASE = "https://broker.example.org/tap"


def _tableset() -> ET.Element:
    root = ET.fromstring(tables_xml(TAP_TABLES))
    assert root.tag == f"{TABLES}tableset"
    return root


def test_the_tableset_lists_every_table_in_its_schema() -> None:
    root = _tableset()
    listed = {
        schema.findtext("name"): [t.findtext("name") for t in schema.findall("table")]
        for schema in root.findall("schema")
    }
    assert listed == {
        "starling": [f"starling.{t.name}" for t in STARLING_TABLES + STARLING_VIEWS],
        "TAP_SCHEMA": [f"TAP_SCHEMA.{n}" for n in ("schemas", "tables", "columns", "keys", "key_columns")],
    }
    assert all(schema.findtext("description") for schema in root.findall("schema"))


def test_every_column_is_listed_with_its_datatype_unit_ucd_description_and_flags() -> None:
    root = _tableset()
    for element in root.iter("table"):
        served = table(element.findtext("name") or "")
        columns = element.findall("column")
        assert [c.findtext("name") for c in columns] == [c.adql_name for c in served.columns]
        for column, expected in zip(columns, served.columns, strict=True):
            data_type = column.find("dataType")
            assert data_type is not None
            assert data_type.get(XSI_TYPE) == "vs:VOTableType"
            assert (data_type.text, data_type.get("arraysize")) == (expected.datatype, expected.arraysize)
            assert column.findtext("description") == expected.description
            assert column.findtext("unit") == (expected.unit or None)
            assert column.findtext("ucd") == (expected.ucd or None)
            flags = [f.text for f in column.findall("flag")]
            assert ("indexed" in flags) == expected.indexed
            assert ("primary" in flags) == (expected.name in served.primary_key)
            assert column.get("std") == ("true" if served.schema == "TAP_SCHEMA" else None)
        if served.schema == "starling":
            assert all(c.findtext("description") and c.findtext("ucd") for c in columns)
            measured = [c for c in columns if c.findtext("dataType") == "double"]
            assert measured
            if served not in STARLING_VIEWS:  # a view's units are its fields' (snr, stetson_k have none)
                assert all(c.findtext("unit") for c in measured if c.findtext("name") != "reliability")


def test_the_tableset_has_each_foreign_key_with_its_column_pairs() -> None:
    found = []
    for element in _tableset().iter("table"):
        for key in element.findall("foreignKey"):
            pairs = tuple(
                (c.findtext("fromColumn"), c.findtext("targetColumn")) for c in key.findall("fkColumn")
            )
            found.append(
                (element.findtext("name"), key.findtext("targetTable"), pairs, key.findtext("description"))
            )
    assert sorted(found) == sorted((k.from_table, k.target_table, k.columns, k.description) for k in TAP_KEYS)


def test_a_tableset_of_some_tables_leaves_out_keys_to_the_others() -> None:
    root = ET.fromstring(tables_xml([table("alerts"), table("annotations")]))
    assert [t.findtext("name") for t in root.iter("table")] == ["starling.alerts", "starling.annotations"]
    targets = [k.findtext("targetTable") for k in root.iter("foreignKey")]
    assert targets == ["starling.alerts"]  # annotations -> alerts; alerts -> objects is left out


def test_pyvo_reads_the_tableset_strictly() -> None:
    vosi = pytest.importorskip("pyvo.io.vosi")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parsed = vosi.parse_tables(io.BytesIO(tables_xml().encode()), pedantic=True)
    tables = {t.name: t for t in parsed.iter_tables()}
    assert set(tables) == {t.qualified_name for t in TAP_TABLES}
    ra = next(c for c in tables["starling.alerts"].columns if c.name == "ra")
    assert (ra.unit, ra.ucd, ra.datatype.content) == ("deg", "pos.eq.ra;meta.main", "double")
    assert "indexed" in ra.flags
    keys = tables["starling.detections"].foreignkeys
    assert [(k.targettable, [(c.fromcolumn, c.targetcolumn) for c in k.fkcolumns]) for k in keys] == [
        ("starling.objects", [("survey", "survey"), ("object_id", "object_id")])
    ]


def _capabilities(**options: object) -> ET.Element:
    document = tap_capabilities_xml(BASE + "/", default_maxrec=2000, hard_maxrec=100_000, **options)  # type: ignore[arg-type]
    root = ET.fromstring(document)
    assert root.tag == f"{CAPABILITIES}capabilities"
    return root


def _tap(root: ET.Element) -> ET.Element:
    taps = [c for c in root.findall("capability") if c.get("standardID") == "ivo://ivoa.net/std/TAP"]
    assert len(taps) == 1
    return taps[0]


def test_the_tap_capability_names_its_base_url_and_adql_with_every_geometry_feature() -> None:
    tap = _tap(_capabilities())
    assert tap.get(XSI_TYPE) == "tr:TableAccess"
    interface = tap.find("interface")
    assert interface is not None
    assert (interface.get(XSI_TYPE), interface.get("role"), interface.get("version")) == (
        "vs:ParamHTTP",
        "std",
        "1.1",
    )
    access = interface.find("accessURL")
    assert access is not None
    assert (access.text, access.get("use")) == (BASE, "base")
    (language,) = tap.findall("language")
    assert language.findtext("name") == "ADQL"
    assert [(v.get("ivo-id"), v.text) for v in language.findall("version")] == [
        ("ivo://ivoa.net/std/ADQL#v2.0", "2.0"),
        ("ivo://ivoa.net/std/ADQL#v2.1", "2.1"),
    ]
    (features,) = language.findall("languageFeatures")
    assert features.get("type") == "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo"
    forms = [f.findtext("form") for f in features.findall("feature")]
    assert forms == [
        "POINT",
        "CIRCLE",
        "POLYGON",
        "CONTAINS",
        "INTERSECTS",
        "DISTANCE",
        "COORD1",
        "COORD2",
    ]


def test_the_tap_capability_lists_each_output_format_with_its_aliases_and_the_row_limits() -> None:
    tap = _tap(_capabilities())
    formats = [
        (f.get("ivo-id"), f.findtext("mime"), [a.text for a in f.findall("alias")])
        for f in tap.findall("outputFormat")
    ]
    assert formats == [
        ("ivo://ivoa.net/std/TAPRegExt#output-votable-binary2", "application/x-votable+xml", ["votable"]),
        (
            "ivo://ivoa.net/std/TAPRegExt#output-votable-td",
            "application/x-votable+xml;serialization=TABLEDATA",
            ["votable/td"],
        ),
        (None, "text/csv", ["csv"]),
        (None, "text/tab-separated-values", ["tsv"]),
        (None, "application/json", ["json"]),
        (None, "application/vnd.apache.parquet", ["parquet"]),
    ]
    for _, mime, aliases in formats:  # each is a RESPONSEFORMAT the service takes
        assert mime in FORMATS
        assert all(alias in FORMATS for alias in aliases)
    limit = tap.find("outputLimit")
    assert limit is not None
    assert [(e.tag, e.get("unit"), e.text) for e in limit] == [
        ("default", "row", "2000"),
        ("hard", "row", "100000"),
    ]
    for absent in ("uploadMethod", "retentionPeriod", "executionDuration"):
        assert tap.find(absent) is None


def test_the_vosi_resources_are_listed_and_examples_uploads_and_async_limits_only_when_offered() -> None:
    def resources(root: ET.Element) -> dict[str | None, str | None]:
        return {
            c.get("standardID"): c.findtext("interface/accessURL")
            for c in root.findall("capability")
            if c.get("standardID") != "ivo://ivoa.net/std/TAP"
        }

    assert resources(_capabilities()) == {
        "ivo://ivoa.net/std/VOSI#capabilities": f"{BASE}/capabilities",
        "ivo://ivoa.net/std/VOSI#availability": f"{BASE}/availability",
        "ivo://ivoa.net/std/VOSI#tables": f"{BASE}/tables",
    }
    full = _capabilities(examples=True, upload=True, async_=True, retention_period_s=86400)
    assert resources(full)["ivo://ivoa.net/std/DALI#examples"] == f"{BASE}/examples"
    examples = next(c for c in full.findall("capability") if c.get("standardID", "").endswith("#examples"))
    assert examples.find("interface").get(XSI_TYPE) == "vr:WebBrowser"  # type: ignore[union-attr]
    tap = _tap(full)
    assert [u.get("ivo-id") for u in tap.findall("uploadMethod")] == [
        "ivo://ivoa.net/std/TAPRegExt#upload-inline",
        "ivo://ivoa.net/std/TAPRegExt#upload-http",  # mandatory with uploads (TAP 1.1 section 2.5.1)
    ]
    assert tap.findtext("retentionPeriod/default") == "86400"
    assert tap.findtext("executionDuration/default") == "3600"
    children = [child.tag for child in tap]  # TAPRegExt's order
    assert children.index("outputFormat") < children.index("uploadMethod") < children.index("retentionPeriod")
    assert (
        children.index("retentionPeriod")
        < children.index("executionDuration")
        < children.index("outputLimit")
    )


def test_language_features_can_be_given() -> None:
    features = {
        ADQL_GEO_FEATURES: ADQL_GEO_FORMS[:2],
        "ivo://ivoa.net/std/TAPRegExt#features-adql-string": ("LOWER", "ILIKE"),
    }
    language = _tap(_capabilities(language_features=features)).find("language")
    assert language is not None
    listed = {
        f.get("type"): [x.findtext("form") for x in f.findall("feature")]
        for f in language.findall("languageFeatures")
    }
    assert listed == {key: list(forms) for key, forms in features.items()}


def test_pyvo_reads_the_capabilities_strictly() -> None:
    vosi = pytest.importorskip("pyvo.io.vosi")
    document = tap_capabilities_xml(
        BASE, default_maxrec=500, hard_maxrec=5000, upload=True, examples=True, async_=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capabilities = vosi.parse_capabilities(io.BytesIO(document.encode()), pedantic=True)
    tap = next(c for c in capabilities if c.standardid == "ivo://ivoa.net/std/TAP")
    assert tap.interfaces[0].accessurls[0].content == BASE
    adql = tap.get_adql()
    assert [v.ivo_id for v in adql.versions] == [
        "ivo://ivoa.net/std/ADQL#v2.0",
        "ivo://ivoa.net/std/ADQL#v2.1",
    ]
    assert [f.form for f in adql.get_feature_list(ADQL_GEO_FEATURES)] == list(ADQL_GEO_FORMS)
    assert [f.mime for f in tap.outputformats] == [f.mime for f in OUTPUT_FORMATS]
    assert (tap.outputlimit.default.content, tap.outputlimit.hard.content) == (500, 5000)
    assert tap.outputlimit.default.unit == "row"
    assert tap.retentionperiod.default == 604800


def test_formats_may_be_given_as_the_responseformat_values_served() -> None:
    def mimes(**options: object) -> list[str | None]:
        return [f.findtext("mime") for f in _tap(_capabilities(**options)).findall("outputFormat")]

    assert mimes(formats=list(FORMATS)) == mimes() == [f.mime for f in OUTPUT_FORMATS]
    assert mimes(formats=["csv", "text/csv", "VOTABLE"]) == ["text/csv", "application/x-votable+xml"]
    with pytest.raises(KeyError, match="fits"):
        _capabilities(formats=["votable", "fits"])
