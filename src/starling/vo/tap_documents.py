"""The documents of Starling's TAP service that describe it: the VOSI tableset (``/tables``, VOSI 1.1 and
VODataService 1.1) and the VOSI capabilities (``/capabilities``) with the TAP capability as TAPRegExt
1.0 describes it. (``/availability`` is :func:`starling.vo.vosi.availability_xml`.)

Both are written as text, like the other VOSI documents of :mod:`starling.vo.vosi`: well-formed XML in
the IVOA namespaces, elements in the order the schemas require.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

from starling.vo.tap_schema import SCHEMA_DESCRIPTIONS, TAP_KEYS, TAP_SCHEMA, TAP_TABLES, TapKey, TapTable
from starling.vo.vosi import CAPABILITIES_NS, VODATASERVICE_NS, XSI_NS
from starling.vo.votable import OUTPUT_FORMATS, OutputFormat, output_formats

TABLES_NS = "http://www.ivoa.net/xml/VOSITables/v1.0"
TAPREGEXT_NS = "http://www.ivoa.net/xml/TAPRegExt/v1.0"
VORESOURCE_NS = "http://www.ivoa.net/xml/VOResource/v1.0"

TAP_STANDARD_ID = "ivo://ivoa.net/std/TAP"
ADQL_GEO_FEATURES = "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo"
# BOX is deprecated in ADQL 2.1 and refused by the queries (use POLYGON): not advertised.
ADQL_GEO_FORMS: tuple[str, ...] = (
    "POINT",
    "CIRCLE",
    "POLYGON",
    "CONTAINS",
    "INTERSECTS",
    "DISTANCE",
    "COORD1",
    "COORD2",
)
UPLOAD_INLINE = "ivo://ivoa.net/std/TAPRegExt#upload-inline"
UPLOAD_HTTP = "ivo://ivoa.net/std/TAPRegExt#upload-http"
DEFAULT_EXECUTION_DURATION_S = 3600
DEFAULT_RETENTION_PERIOD_S = 7 * 24 * 3600

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _element(tag: str, text: str | int, attributes: Mapping[str, str | None] | None = None) -> str:
    """One element with text content, its attributes (those not None) quoted."""
    return f"<{tag}{_attributes(attributes)}>{escape(str(text))}</{tag}>"


def _attributes(attributes: Mapping[str, str | None] | None) -> str:
    return "".join(
        f" {name}={quoteattr(value)}" for name, value in (attributes or {}).items() if value is not None
    )


def _indented(lines: Iterable[str], depth: int) -> list[str]:
    return ["  " * depth + line for line in lines]


# ---- /tables --------------------------------------------------------------------------------------------


def tables_xml(tables: Iterable[TapTable] = TAP_TABLES, keys: Iterable[TapKey] = TAP_KEYS) -> str:
    """The VOSI tableset of ``tables`` (VODataService 1.1): a ``schema`` per schema in order of first
    appearance, a ``table`` per table (named as in queries: ``starling.alerts``), a ``column`` per
    column (named as in queries: ``"size"``) with its description, unit, UCD, ``dataType
    xsi:type="vs:VOTableType"`` (arraysize; extendedType, the xtype) and flags (``indexed``;
    ``primary`` for a column of the primary key), and a ``foreignKey`` per key of ``keys`` between
    two of the tables."""
    chosen, all_keys = list(tables), tuple(keys)
    names = {t.qualified_name for t in chosen}
    schemas: dict[str, list[TapTable]] = {}
    for t in chosen:
        schemas.setdefault(t.schema, []).append(t)
    lines = [f'<vosi:tableset xmlns:vosi="{TABLES_NS}" xmlns:vs="{VODATASERVICE_NS}" xmlns:xsi="{XSI_NS}">']
    for schema, members in schemas.items():
        lines.append("  <schema>")
        lines.append("    " + _element("name", schema))
        if schema in SCHEMA_DESCRIPTIONS:
            lines.append("    " + _element("description", SCHEMA_DESCRIPTIONS[schema]))
        for t in members:
            held = [k for k in all_keys if k.from_table == t.qualified_name and k.target_table in names]
            lines.extend(_indented(_table_lines(t, held), 2))
        lines.append("  </schema>")
    lines.append("</vosi:tableset>")
    return _DECLARATION + "\n".join(lines) + "\n"


def _table_lines(t: TapTable, keys: Sequence[TapKey]) -> list[str]:
    lines = ["<table>", "  " + _element("name", t.qualified_name)]
    if t.description:
        lines.append("  " + _element("description", t.description))
    std = "true" if t.schema == TAP_SCHEMA else None
    for column in t.columns:
        lines.append("  " + f"<column{_attributes({'std': std})}>")
        lines.append("    " + _element("name", column.adql_name))
        if column.description:
            lines.append("    " + _element("description", column.description))
        if column.unit:
            lines.append("    " + _element("unit", column.unit))
        if column.ucd:
            lines.append("    " + _element("ucd", column.ucd))
        data_type = {
            "xsi:type": "vs:VOTableType",
            "arraysize": column.arraysize,
            "extendedType": column.xtype,
        }
        lines.append("    " + _element("dataType", column.datatype, data_type))
        if column.indexed:
            lines.append("    <flag>indexed</flag>")
        if column.name in t.primary_key:
            lines.append("    <flag>primary</flag>")
        lines.append("  </column>")
    for key in keys:
        lines.append("  <foreignKey>")
        lines.append("    " + _element("targetTable", key.target_table))
        for source, target in key.columns:
            lines.append("    <fkColumn>")
            lines.append("      " + _element("fromColumn", source))
            lines.append("      " + _element("targetColumn", target))
            lines.append("    </fkColumn>")
        if key.description:
            lines.append("    " + _element("description", key.description))
        lines.append("  </foreignKey>")
    lines.append("</table>")
    return lines


# ---- /capabilities --------------------------------------------------------------------------------------


def tap_capabilities_xml(
    base_url: str,
    *,
    default_maxrec: int,
    hard_maxrec: int,
    formats: Iterable[OutputFormat | str] = OUTPUT_FORMATS,
    upload: bool = False,
    upload_limit_bytes: int | None = None,
    examples: bool = False,
    async_: bool = False,
    language_features: Mapping[str, Sequence[str]] | None = None,
    execution_duration_s: int | None = None,
    retention_period_s: int | None = None,
) -> str:
    """The VOSI capabilities of the TAP service whose base URL is ``base_url`` (the URL ``/sync``,
    ``/async``, ``/tables`` ... are appended to; a trailing slash is dropped).

    First the TAP capability (``standardID="ivo://ivoa.net/std/TAP"``, ``xsi:type="tr:TableAccess"``,
    interface version 1.1):

    - the language ADQL, versions 2.0 and 2.1, with its ``languageFeatures``: by default the geometry
      of ADQL (POINT, CIRCLE, POLYGON, CONTAINS, INTERSECTS, DISTANCE, COORD1, COORD2 under
      ``features-adqlgeo``); ``language_features`` maps each feature type's identifier to its forms;
    - an ``outputFormat`` per output format of ``formats`` (:class:`OutputFormat` s, or the
      RESPONSEFORMAT values served, such as the keys of ``FORMATS``: each format once);
    - ``uploadMethod`` inline and http when ``upload`` (and ``uploadLimit`` in bytes when given);
    - ``retentionPeriod`` and ``executionDuration`` when ``async_`` (seconds; by default a week and an
      hour; an ``execution_duration_s`` given is listed either way);
    - ``outputLimit`` in rows: ``default_maxrec``, ``hard_maxrec``.

    Then the VOSI capabilities, availability and tables resources, and DALI examples when
    ``examples``."""
    base = base_url.rstrip("/")
    features = {ADQL_GEO_FEATURES: ADQL_GEO_FORMS} if language_features is None else language_features
    tap = _language_lines(features) + _output_format_lines(formats)
    if upload:
        tap.append(f'<uploadMethod ivo-id="{UPLOAD_INLINE}"/>')
        tap.append(f'<uploadMethod ivo-id="{UPLOAD_HTTP}"/>')
    if async_:
        if retention_period_s is None:
            retention_period_s = DEFAULT_RETENTION_PERIOD_S
        if execution_duration_s is None:
            execution_duration_s = DEFAULT_EXECUTION_DURATION_S
    tap += _limit_lines(retention_period_s, execution_duration_s, default_maxrec, hard_maxrec)
    if upload and upload_limit_bytes is not None:
        tap.append(f"<uploadLimit>{_element('hard', upload_limit_bytes, {'unit': 'byte'})}</uploadLimit>")
    lines = [
        f'<vosi:capabilities xmlns:vosi="{CAPABILITIES_NS}" xmlns:vs="{VODATASERVICE_NS}" '
        f'xmlns:vr="{VORESOURCE_NS}" xmlns:tr="{TAPREGEXT_NS}" xmlns:xsi="{XSI_NS}">',
        f'  <capability standardID="{TAP_STANDARD_ID}" xsi:type="tr:TableAccess">',
        '    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1">',
        "      " + _element("accessURL", base, {"use": "base"}),
        "    </interface>",
        *_indented(tap, 2),
        "  </capability>",
        *_indented(_vosi_capability_lines(base, examples), 1),
        "</vosi:capabilities>",
    ]
    return _DECLARATION + "\n".join(lines) + "\n"


def _output_format_lines(formats: Iterable[OutputFormat | str]) -> list[str]:
    lines = []
    for output in output_formats(formats):
        lines.append(f"<outputFormat{_attributes({'ivo-id': output.ivo_id})}>")
        lines.append("  " + _element("mime", output.mime))
        lines.extend("  " + _element("alias", alias) for alias in output.aliases)
        lines.append("</outputFormat>")
    return lines


def _limit_lines(
    retention_s: int | None, duration_s: int | None, default_rows: int, hard_rows: int
) -> list[str]:
    """TAPRegExt's limits, in its order: how long jobs are kept and may run, and how many rows."""
    lines = []
    if retention_s is not None:
        lines.append(f"<retentionPeriod>{_element('default', retention_s)}</retentionPeriod>")
    if duration_s is not None:
        lines.append(f"<executionDuration>{_element('default', duration_s)}</executionDuration>")
    return [
        *lines,
        "<outputLimit>",
        "  " + _element("default", default_rows, {"unit": "row"}),
        "  " + _element("hard", hard_rows, {"unit": "row"}),
        "</outputLimit>",
    ]


def _language_lines(features: Mapping[str, Sequence[str]]) -> list[str]:
    """TAPRegExt's ``language``: ADQL 2.0 and 2.1 with their features, by feature type."""
    lines = [
        "<language>",
        "  <name>ADQL</name>",
        '  <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>',
        '  <version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>',
        "  <description>The IVOA Astronomical Data Query Language.</description>",
    ]
    for feature_type, forms in features.items():
        lines.append(f"  <languageFeatures type={quoteattr(feature_type)}>")
        lines.extend(f"    <feature>{_element('form', form)}</feature>" for form in forms)
        lines.append("  </languageFeatures>")
    lines.append("</language>")
    return lines


def _vosi_capability_lines(base: str, examples: bool) -> list[str]:
    """The capabilities of the service's VOSI resources (and of its DALI examples)."""
    resources = [
        ("ivo://ivoa.net/std/VOSI#capabilities", "/capabilities", "vs:ParamHTTP"),
        ("ivo://ivoa.net/std/VOSI#availability", "/availability", "vs:ParamHTTP"),
        ("ivo://ivoa.net/std/VOSI#tables", "/tables", "vs:ParamHTTP"),
    ]
    if examples:
        resources.append(("ivo://ivoa.net/std/DALI#examples", "/examples", "vr:WebBrowser"))
    lines = []
    for standard, path, interface in resources:
        role = ' role="std"' if interface == "vs:ParamHTTP" else ""
        lines += [
            f'<capability standardID="{standard}">',
            f'  <interface xsi:type="{interface}"{role}>',
            "    " + _element("accessURL", base + path, {"use": "full"}),
            "  </interface>",
            "</capability>",
        ]
    return lines
