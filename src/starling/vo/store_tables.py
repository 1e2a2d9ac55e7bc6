"""The store's tables as TAP serves them: the schema ``starling``.

The columns of migrations 0001-0003 and 0009 a user may query; not the bookkeeping spans ``det_from`` ..
``forced_through`` of ``objects`` (what the writer knows it holds), nor ``alerts.cutouts`` (where the
store keeps the stamps). Units are VOUnits: ``deg`` (positions, ICRS), ``d`` (times: MJD), ``mag`` (AB
magnitudes), ``nJy`` (fluxes); identifiers, counts and codes have none.
"""

from __future__ import annotations

from starling.vo.tap_model import STARLING_SCHEMA, TapColumn, TapKey, TapTable

# ---- the columns the store's tables share -------------------------------------------------------------

_TEXT = "*"
_MJD_NOTE = " (MJD; ZTF: start of exposure, UTC; Rubin: midpoint, TAI)."


def _text(
    name: str, description: str, ucd: str, *, principal: bool = False, indexed: bool = False
) -> TapColumn:
    return TapColumn(name, "char", description, "", ucd, principal, indexed, arraysize=_TEXT)


def _survey(indexed: bool = True) -> TapColumn:
    return _text(
        "survey",
        "The survey that sent the alert: 'ztf' (Zwicky Transient Facility) or 'rubin' (Vera C. Rubin "
        "Observatory, LSST). Identifiers are unique within a survey.",
        "meta.id;instr.obsty",
        principal=True,
        indexed=indexed,
    )


def _object_id(main: bool) -> TapColumn:
    return _text(
        "object_id",
        "The survey's identifier of the object (ZTF objectId, Rubin diaObjectId)"
        + ("." if main else "; with survey, refers to starling.objects."),
        "meta.id;meta.main" if main else "meta.id.cross",
        principal=True,
        indexed=True,
    )


def _alert_id(main: bool) -> TapColumn:
    return TapColumn(
        "alert_id",
        "long",
        "The survey's identifier of the alert (ZTF candid, Rubin diaSourceId)"
        + ("." if main else "; with survey, refers to starling.alerts."),
        ucd="meta.id;meta.main" if main else "meta.id.cross",
        principal=True,
        indexed=True,
    )


def _mjd(description: str, ucd: str = "time.epoch;obs", *, indexed: bool = True) -> TapColumn:
    return TapColumn("mjd", "double", description + _MJD_NOTE, "d", ucd, principal=True, indexed=indexed)


def _position(kind: str, description: str, main: bool, indexed: bool) -> TapColumn:
    ucd = f"pos.eq.{kind}" + (";meta.main" if main else "")
    return TapColumn(kind, "double", description, "deg", ucd, principal=True, indexed=indexed)


def _band(name: str = "band", what: str = "of the observation") -> TapColumn:
    return _text(
        name,
        f"The photometric band {what}: ZTF g, r, i; Rubin u, g, r, i, z, y.",
        "instr.bandpass",
        principal=name == "band",
    )


def _mag(name: str, description: str, *, principal: bool = True) -> TapColumn:
    return TapColumn(name, "double", description, "mag", "phot.mag;em.opt", principal)


def _mag_err() -> TapColumn:
    return TapColumn("mag_err", "double", "Uncertainty (1 sigma) of mag.", "mag", "stat.error;phot.mag")


def _flux(name: str, description: str, *, principal: bool = False) -> TapColumn:
    return TapColumn(name, "double", description, "nJy", "phot.flux.density;em.opt", principal)


def _flux_err() -> TapColumn:
    return TapColumn(
        "flux_err", "double", "Uncertainty (1 sigma) of flux.", "nJy", "stat.error;phot.flux.density"
    )


_DIFFERENCE_MAG = (
    "AB magnitude of the difference-image PSF photometry: ZTF magpsf (of the flux's absolute value, "
    "see flux for its sign); for Rubin, 31.4 - 2.5 log10(flux), null when the flux is not positive."
)
_DIFFERENCE_FLUX = (
    "Difference-image PSF flux, signed (negative: fainter than in the reference image); for ZTF, "
    "derived from magpsf, with the sign of isdiffpos."
)


# ---- the store's tables ---------------------------------------------------------------------------------

_OBJECTS = TapTable(
    STARLING_SCHEMA,
    "objects",
    "One row per astronomical object an alert was received for: where it is, when it was seen first "
    "and last, and its latest brightness.",
    (
        _survey(),
        _object_id(main=True),
        _position("ra", "Right ascension of the object (ICRS), from its latest alert.", True, True),
        _position("dec", "Declination of the object (ICRS), from its latest alert.", True, True),
        TapColumn(
            "first_mjd",
            "double",
            "Time of the object's first alert received" + _MJD_NOTE,
            "d",
            "time.start",
            principal=True,
        ),
        TapColumn(
            "last_mjd",
            "double",
            "Time of the object's latest alert received" + _MJD_NOTE,
            "d",
            "time.end",
            principal=True,
        ),
        TapColumn(
            "last_alert_id",
            "long",
            "The alert_id of the object's latest alert; with survey, refers to starling.alerts.",
            ucd="meta.id.cross",
        ),
        _band("last_band", "of the latest alert"),
        _mag("last_mag", "AB magnitude of the latest alert (difference-image PSF photometry)."),
        _flux("last_flux", "Difference-image PSF flux of the latest alert, signed."),
        TapColumn(
            "n_detections",
            "int",
            "Number of detections of the object the store holds (starling.detections).",
            ucd="meta.number",
        ),
        TapColumn(
            "n_upper_limits",
            "int",
            "Number of non-detections (upper limits) of the object the store holds "
            "(starling.non_detections).",
            ucd="meta.number",
        ),
    ),
    ("survey", "object_id"),
)

_ALERTS = TapTable(
    STARLING_SCHEMA,
    "alerts",
    "One row per alert received: the detection that triggered it.",
    (
        _survey(),
        _alert_id(main=True),
        _object_id(main=False),
        _mjd("Time of the detection that triggered the alert"),
        _position("ra", "Right ascension of the detection (ICRS).", True, True),
        _position("dec", "Declination of the detection (ICRS).", True, True),
        _band(),
        _mag("mag", _DIFFERENCE_MAG),
        _mag_err(),
        _flux("flux", _DIFFERENCE_FLUX, principal=True),
        _flux_err(),
        TapColumn(
            "reliability",
            "double",
            "Probability (0 to 1) that the detection is real, not an artefact: ZTF drb (else rb), "
            "Rubin reliability (else 1 - spuriousness).",
            ucd="stat.probability",
        ),
        _text(
            "schema_version",
            "Version of the survey's alert schema the alert was written in.",
            "meta.version",
        ),
        _text(
            "provenance",
            "The stages of the chain the alert passed, in order, as JSON: each stage's configuration "
            "version, and as '<stage>.pipeline' the pipeline version it ran. Null when one process ran "
            "every stage.",
            "meta.note",
        ),
    ),
    ("survey", "alert_id"),
)

_DETECTIONS = TapTable(
    STARLING_SCHEMA,
    "detections",
    "The detections of each object, from the histories alerts carry and the alerts themselves: its "
    "light curve.",
    (
        _survey(),
        TapColumn(
            "detection_id",
            "long",
            "The survey's identifier of the detection (ZTF candid, Rubin diaSourceId).",
            ucd="meta.id;meta.main",
            principal=True,
            indexed=True,
        ),
        _object_id(main=False),
        _mjd("Time of the detection"),
        _band(),
        _position(
            "ra", "Right ascension of the detection (ICRS); null when the survey gave none.", False, False
        ),
        _position(
            "dec", "Declination of the detection (ICRS); null when the survey gave none.", False, False
        ),
        _mag("mag", _DIFFERENCE_MAG),
        _mag_err(),
        _flux("flux", _DIFFERENCE_FLUX, principal=True),
        _flux_err(),
    ),
    ("survey", "detection_id"),
)

_NON_DETECTIONS = TapTable(
    STARLING_SCHEMA,
    "non_detections",
    "The epochs at which each object's position was observed and nothing was detected (upper limits).",
    (
        _survey(),
        _object_id(main=False),
        _mjd("Time of the observation"),
        _band(),
        TapColumn(
            "limiting_mag",
            "double",
            "Limiting AB magnitude of the difference image: the object was fainter than this.",
            "mag",
            "phot.mag;stat.max",
            principal=True,
        ),
        TapColumn(
            "limiting_flux",
            "double",
            "Limiting flux of the difference image: the object's difference flux was below this.",
            "nJy",
            "phot.flux.density;stat.max",
        ),
    ),
    ("survey", "object_id", "mjd", "band"),
)

_FORCED_PHOTOMETRY = TapTable(
    STARLING_SCHEMA,
    "forced_photometry",
    "Forced photometry: the difference-image flux measured at each object's position at each epoch, "
    "detected or not.",
    (
        _survey(),
        _object_id(main=False),
        _mjd("Time of the observation"),
        _band(),
        _flux("flux", "Forced difference-image PSF flux at the object's position, signed.", principal=True),
        _flux_err(),
    ),
    ("survey", "object_id", "mjd", "band"),
)

_ANNOTATIONS = TapTable(
    STARLING_SCHEMA,
    "annotations",
    "What the broker's annotators added to each alert (cross-matches, light-curve features, ...), one "
    "row per alert and annotator.",
    (
        _survey(),
        _alert_id(main=False),
        _text(
            "annotator",
            "Name of the annotator that wrote the payload (e.g. xmatch, lc-features).",
            "meta.id;meta.software",
            principal=True,
            indexed=True,
        ),
        _text("payload", "The annotation, a JSON document.", "meta.note", principal=True),
        _mjd("Time of the annotated alert", "time.epoch"),
    ),
    ("survey", "alert_id", "annotator"),
)

_FILTER_MATCHES = TapTable(
    STARLING_SCHEMA,
    "filter_matches",
    "Which alerts passed which of the broker's filters.",
    (
        _text("filter", "Name of the filter the alert passed.", "meta.id", principal=True, indexed=True),
        _survey(),
        _alert_id(main=False),
        _object_id(main=False),
        _mjd("Time of the alert", "time.epoch", indexed=False),
    ),
    ("filter", "survey", "alert_id"),
)

STARLING_TABLES: tuple[TapTable, ...] = (
    _OBJECTS,
    _ALERTS,
    _DETECTIONS,
    _NON_DETECTIONS,
    _FORCED_PHOTOMETRY,
    _ANNOTATIONS,
    _FILTER_MATCHES,
)

_OBJECT_KEY = (("survey", "survey"), ("object_id", "object_id"))
_ALERT_KEY = (("survey", "survey"), ("alert_id", "alert_id"))


def _s(name: str) -> str:
    return f"{STARLING_SCHEMA}.{name}"


STARLING_KEYS: tuple[TapKey, ...] = (
    TapKey(_s("alerts"), _s("objects"), _OBJECT_KEY, "The object the alert is of."),
    TapKey(_s("detections"), _s("objects"), _OBJECT_KEY, "The object detected."),
    TapKey(_s("non_detections"), _s("objects"), _OBJECT_KEY, "The object not detected."),
    TapKey(_s("forced_photometry"), _s("objects"), _OBJECT_KEY, "The object measured."),
    TapKey(_s("annotations"), _s("alerts"), _ALERT_KEY, "The alert annotated."),
    TapKey(_s("filter_matches"), _s("alerts"), _ALERT_KEY, "The alert that passed the filter."),
    TapKey(_s("filter_matches"), _s("objects"), _OBJECT_KEY, "The object of the alert that passed."),
    TapKey(
        _s("objects"),
        _s("alerts"),
        (("survey", "survey"), ("last_alert_id", "alert_id")),
        "The object's latest alert.",
    ),
)
