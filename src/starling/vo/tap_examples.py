"""TAP's ``/examples`` (DALI 1.1 section 2.3): queries a user can start from, as XHTML with RDFa that TAP
clients (TOPCAT, pyvo) read. Each is a query of the served tables; the tests run every one of them on
both backends."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Example:
    key: str
    name: str
    text: str
    query: str
    tables: tuple[str, ...]
    upload: str | None = None  # the name the query gives a table the user uploads with it (UPLOAD=name,...)


EXAMPLES = (
    Example(
        "lightcurve",
        "The light curve of an object",
        "Every detection of one object, oldest first, with its band, magnitude and flux:",
        "SELECT d.mjd, d.band, d.mag, d.mag_err, d.flux, d.flux_err\n"
        "FROM starling.detections AS d\n"
        "WHERE d.survey = 'ztf' AND d.object_id = 'ZTF18abudxnw'\n"
        "ORDER BY d.mjd",
        ("starling.detections",),
    ),
    Example(
        "cone",
        "The alerts in a cone",
        "Alerts within 10 arcseconds of a position (ICRS, degrees), nearest first:",
        "SELECT a.alert_id, a.object_id, a.mjd, a.mag,\n"
        "       DISTANCE(POINT('ICRS', a.ra, a.dec), POINT('ICRS', 150.1, 2.2)) * 3600 AS separation_arcsec\n"
        "FROM starling.alerts AS a\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', a.ra, a.dec), CIRCLE('ICRS', 150.1, 2.2, 10.0 / 3600))\n"
        "ORDER BY separation_arcsec",
        ("starling.alerts",),
    ),
    Example(
        "timewindow",
        "Alerts in a time window, per band",
        "How many alerts each band had in one day (MJD 60800 to 60801):",
        "SELECT a.band, COUNT(*) AS alerts, MIN(a.mag) AS brightest\n"
        "FROM starling.alerts AS a\n"
        "WHERE a.mjd BETWEEN 60800 AND 60801\n"
        "GROUP BY a.band\n"
        "ORDER BY a.band",
        ("starling.alerts",),
    ),
    Example(
        "filter",
        "A stream filter as a query",
        "A filter's condition is ADQL: the same condition selects, over history, the alerts the filter "
        "would have matched on the stream:",
        "SELECT a.alert_id, a.object_id, a.mjd, a.mag, o.n_detections\n"
        "FROM starling.alerts AS a\n"
        "JOIN starling.objects AS o ON o.survey = a.survey AND o.object_id = a.object_id\n"
        "WHERE a.mag < 19.5 AND a.reliability > 0.8 AND o.n_detections >= 3",
        ("starling.alerts", "starling.objects"),
    ),
    Example(
        "crossmatch",
        "Your own list of positions against the alerts",
        "Upload a table of targets (UPLOAD=targets,param:targets with columns target, ra, dec in degrees; "
        "a VOTable, or a table from pyvo or TOPCAT) and find the alerts within 1.5 arcseconds of each:",
        "SELECT u.target, a.alert_id, a.object_id, a.mjd,\n"
        "       DISTANCE(POINT('ICRS', u.ra, u.dec), POINT('ICRS', a.ra, a.dec)) * 3600\n"
        "         AS separation_arcsec\n"
        "FROM TAP_UPLOAD.targets AS u\n"
        "JOIN starling.alerts AS a\n"
        "  ON 1 = CONTAINS(POINT('ICRS', a.ra, a.dec), CIRCLE('ICRS', u.ra, u.dec, 1.5 / 3600))",
        ("starling.alerts",),  # the served tables only: TAP_UPLOAD.targets is the user's, named in the text
        upload="targets",
    ),
    Example(
        "newobjects",
        "Objects first seen recently",
        "Objects whose first detection is after MJD 60800, with how often they were seen:",
        "SELECT TOP 100 o.survey, o.object_id, o.first_mjd, o.last_mjd, o.n_detections, o.last_mag\n"
        "FROM starling.objects AS o\n"
        "WHERE o.first_mjd > 60800\n"
        "ORDER BY o.first_mjd DESC",
        ("starling.objects",),
    ),
    Example(
        "columns",
        "What a table holds",
        "The columns of the alerts table, with their units and meanings:",
        "SELECT column_name, datatype, unit, ucd, description\n"
        "FROM TAP_SCHEMA.columns\n"
        "WHERE table_name = 'starling.alerts'\n"
        "ORDER BY column_index",
        ("TAP_SCHEMA.columns",),
    ),
)


def _example(example: Example) -> str:
    tables = ", ".join(f'<em property="table">{escape(t)}</em>' for t in example.tables)
    return (
        f'  <div typeof="example" id="{example.key}" resource="#{example.key}">\n'
        f'    <h2 property="name">{escape(example.name)}</h2>\n'
        f"    <p>{escape(example.text)} (tables: {tables})</p>\n"
        f'    <pre property="query">{escape(example.query)}</pre>\n'
        "  </div>\n"
    )


def examples_xhtml() -> str:
    contents = "".join(f'    <li><a href="#{e.key}">{escape(e.name)}</a></li>\n' for e in EXAMPLES)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML+RDFa 1.1//EN" "http://www.w3.org/MarkUp/DTD/xhtml-rdfa-2.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" version="XHTML+RDFa 1.1">\n'
        "<head><title>Starling TAP: examples</title></head>\n"
        '<body vocab="http://www.ivoa.net/rdf/examples#">\n'
        "  <h1>Starling TAP: examples</h1>\n"
        f'  <ul id="toc">\n{contents}  </ul>\n'
        + "".join(_example(e) for e in EXAMPLES)
        + "</body>\n</html>\n"
    )
