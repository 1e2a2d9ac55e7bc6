"""The fields a filter can name: the alert's survey-neutral values, its history, and annotations.

Built-in fields are the same for ZTF and Rubin (``mag``, ``reliability``, ``ndethist`` ...). An
annotator declares what it writes (``Annotator.outputs``), and each of those is a field
``<annotator>.<key>`` (``"history-summary".peak_mag``, ``xmatch.gaia.dist_arcsec``). Names are
matched case-insensitively, as ADQL does for unquoted identifiers.

Values are read per batch into columns (``AlertColumns``), once per field however many live filters
use it. What the store holds is read through TAP instead (``filter_query.py``: the view
``starling.alert_fields`` has a column per field).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from starling.adql.values import Vec
from starling.alert.model import Alert
from starling.alert.photometry import finite

FieldType = Literal["float", "int", "string"]


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: FieldType
    unit: str
    description: str
    get: Callable[[Alert], Any]
    source: str = "alert"  # alert, history, or the annotator's name
    path: tuple[str, ...] = ()  # for an annotation: the keys under the annotator's name
    attribute: str | None = None  # a plain attribute of Alert: read with attrgetter, at C speed
    reduce: Callable[[Any], Any] | None = None  # applied to each attribute value (len of a tuple)
    # Computed column-wise from other built-in fields (their names, then the function of their values).
    derive: tuple[tuple[str, ...], Callable[..., Any]] | None = None

    @property
    def kind(self) -> Literal["number", "string"]:
        return "string" if self.type == "string" else "number"


def _snr(alert: Alert) -> float | None:
    flux, error = finite(alert.flux), finite(alert.flux_err)
    if flux is None or error is None or error <= 0:
        return None
    return finite(abs(flux) / error)


def _first_mjd(alert: Alert) -> float:
    detections = alert.history.detections
    return min(d.mjd for d in detections) if detections else alert.mjd


BUILTIN: tuple[FieldDef, ...] = (
    FieldDef("survey", "string", "", "ztf or rubin", lambda a: a.survey, attribute="survey"),
    FieldDef(
        "alert_id", "int", "", "the survey's alert id (ZTF candid, Rubin diaSourceId)", lambda a: a.alert_id
    ),
    FieldDef(
        "object_id",
        "string",
        "",
        "the survey's object id (ZTF objectId, Rubin diaObjectId)",
        lambda a: a.object_id,
        attribute="object_id",
    ),
    FieldDef("ra", "float", "deg", "right ascension of the detection (ICRS)", lambda a: a.ra, attribute="ra"),
    FieldDef("dec", "float", "deg", "declination of the detection (ICRS)", lambda a: a.dec, attribute="dec"),
    FieldDef(
        "mjd",
        "float",
        "d",
        "time of the detection (MJD, TAI for Rubin, UTC for ZTF)",
        lambda a: a.mjd,
        attribute="mjd",
    ),
    FieldDef("band", "string", "", "filter band: u g r i z y", lambda a: a.band, attribute="band"),
    FieldDef(
        "mag",
        "float",
        "mag",
        "AB magnitude of the difference flux (ZTF magpsf)",
        lambda a: a.mag,
        attribute="mag",
    ),
    FieldDef("mag_err", "float", "mag", "its uncertainty", lambda a: a.mag_err, attribute="mag_err"),
    FieldDef(
        "flux",
        "float",
        "nJy",
        "difference-image flux (negative: fainter than the template)",
        lambda a: a.flux,
        attribute="flux",
    ),
    FieldDef("flux_err", "float", "nJy", "its uncertainty", lambda a: a.flux_err, attribute="flux_err"),
    FieldDef(
        "snr",
        "float",
        "",
        "|flux| / flux_err",
        _snr,
        derive=(("flux", "flux_err"), lambda flux, error: np.abs(flux) / np.where(error > 0, error, np.nan)),
    ),
    FieldDef(
        "reliability",
        "float",
        "",
        "real/bogus score, 0 to 1 (ZTF drb else rb; Rubin reliability)",
        lambda a: a.reliability,
        attribute="reliability",
    ),
    FieldDef(
        "schema_version",
        "string",
        "",
        "the alert schema version",
        lambda a: a.schema_version,
        attribute="schema_version",
    ),
    FieldDef(
        "ndethist",
        "int",
        "",
        "detections in the alert's history, this one included",
        lambda a: len(a.history.detections),
        "history",
        attribute="history.detections",
        reduce=len,
    ),
    FieldDef(
        "nnondethist",
        "int",
        "",
        "upper limits (non-detections) in the history",
        lambda a: len(a.history.upper_limits),
        "history",
        attribute="history.upper_limits",
        reduce=len,
    ),
    FieldDef(
        "nforcedhist",
        "int",
        "",
        "forced-photometry points in the history",
        lambda a: len(a.history.forced),
        "history",
        attribute="history.forced",
        reduce=len,
    ),
    FieldDef("first_mjd", "float", "d", "MJD of the first detection in the history", _first_mjd, "history"),
    FieldDef(
        "age_days",
        "float",
        "d",
        "time since the first detection in the history",
        lambda a: a.mjd - _first_mjd(a),
        "history",
    ),
)


_BUILTIN_BY_NAME = {f.name: f for f in BUILTIN}


def _lookup(mapping: Any, key: str) -> Any:
    """``mapping[key]``, else the key that matches it ignoring case (ADQL names are case-blind)."""
    if not isinstance(mapping, Mapping):
        return None
    if key in mapping:
        return mapping[key]
    folded = key.lower()
    for candidate, value in mapping.items():
        if isinstance(candidate, str) and candidate.lower() == folded:
            return value
    return None


def _annotation_getter(annotator: str, path: tuple[str, ...]) -> Callable[[Alert], Any]:
    if len(path) == 1:  # the common case, read for every alert of every batch: kept to one try
        (key,) = path

        def get_one(alert: Alert) -> Any:
            try:
                return alert.annotations[annotator][key]
            except (KeyError, TypeError):
                return _lookup(alert.annotations.get(annotator), key)

        return get_one

    def get(alert: Alert) -> Any:
        value: Any = alert.annotations.get(annotator)
        for key in path:
            value = _lookup(value, key)
        return value

    return get


@dataclass(frozen=True, slots=True)
class FieldCatalogue:
    """Every field a filter may use, by lower-case name; ``patterns`` hold the ``*`` declarations."""

    fields: Mapping[str, FieldDef]
    patterns: Mapping[str, FieldDef]

    def resolve(self, name: str) -> FieldDef | None:
        key = name.lower()
        if key in self.fields:
            return self.fields[key]
        for pattern, template in self.patterns.items():
            if fnmatch.fnmatchcase(key, pattern):
                _, *path = name.split(".")
                annotator = template.source  # the annotator's own name, not the alias used
                return FieldDef(
                    name,
                    template.type,
                    template.unit,
                    template.description,
                    _annotation_getter(annotator, tuple(path)),
                    annotator,
                    tuple(path),
                )
        return None

    def nearest(self, name: str, count: int = 3) -> list[str]:
        return difflib.get_close_matches(name.lower(), [*self.fields, *self.patterns], n=count, cutoff=0.5)

    def all(self) -> list[FieldDef]:
        return [*self.fields.values(), *self.patterns.values()]


def catalogue(annotators: Mapping[str, Mapping[str, Any]] | None = None) -> FieldCatalogue:
    """The built-in fields plus what each annotator declares (default: every installed annotator)."""
    if annotators is None:
        annotators = installed_annotator_outputs()
    fields = {f.name: f for f in BUILTIN}
    patterns: dict[str, FieldDef] = {}
    for annotator, outputs in annotators.items():
        for key, declared in outputs.items():
            name = f"{annotator}.{key}".lower()
            field = FieldDef(
                name,
                declared.type,
                declared.unit,
                declared.description,
                _annotation_getter(annotator, tuple(key.split("."))),
                annotator,
                tuple(key.split(".")),
            )
            # "history-summary.x" would need quotes in ADQL; "history_summary.x" names it too.
            for alias in {name, name.replace("-", "_")}:
                (patterns if "*" in key else fields)[alias] = dataclasses.replace(field, name=alias)
    return FieldCatalogue(fields, patterns)


def installed_annotator_outputs() -> dict[str, Mapping[str, Any]]:
    from starling.core.component import Annotator
    from starling.core.registry import available_components, component_class

    found: dict[str, Mapping[str, Any]] = {}
    for name in available_components():
        try:
            cls = component_class(name)
        except Exception:  # a broken plugin must not take the filter language down with it
            continue
        if issubclass(cls, Annotator) and cls.outputs:
            found[name] = cls.outputs
    return found


class AlertColumns:
    """A batch's field values as columns, each read once and shared by every filter.

    ``prefetch`` reads many fields in few passes over the alerts (one for the plain numeric
    attributes, one for the history, one per annotator), which is most of what judging a batch costs.
    """

    def __init__(self, alerts: Sequence[Alert]) -> None:
        self.alerts = alerts
        self._cache: dict[str, Vec] = {}

    def __len__(self) -> int:
        return len(self.alerts)

    def column(self, field: FieldDef) -> Vec:
        cached = self._cache.get(field.name)
        if cached is None and field.derive is not None:
            names, function = field.derive
            inputs = [self.column(_BUILTIN_BY_NAME[name]) for name in names]
            null = np.logical_or.reduce([np.broadcast_to(i.null, (len(self),)) for i in inputs])
            with np.errstate(all="ignore"):
                derived = np.asarray(function(*(i.values for i in inputs)), dtype=float)
            null = null | ~np.isfinite(derived)  # 1/0 and overflow too: NULL, never an infinity
            cached = Vec(derived, null if null.any() else np.bool_(False), "number")
            self._cache[field.name] = cached
        if cached is None:
            if field.attribute is not None:
                values = list(map(operator.attrgetter(field.attribute), self.alerts))
                if field.reduce is not None:
                    values = list(map(field.reduce, values))
            else:
                values = [field.get(alert) for alert in self.alerts]
            cached = (
                Vec.strings(values) if field.kind == "string" else Vec.numbers(values, field.type == "int")
            )
            self._cache[field.name] = cached
        return cached

    def prefetch(self, fields: Sequence[FieldDef]) -> None:
        wanted = [f for f in fields if f.name not in self._cache]
        floats = [f for f in wanted if f.attribute is not None and f.type == "float"]
        if len(floats) > 1:
            getter = operator.attrgetter(*(f.attribute for f in floats if f.attribute))
            table = np.array(list(map(getter, self.alerts)), dtype=float).reshape(
                len(self.alerts), len(floats)
            )
            for index, field in enumerate(floats):
                column = np.ascontiguousarray(table[:, index])
                bad = ~np.isfinite(column)  # None (NaN here) and any infinity are NULL
                self._cache[field.name] = Vec(column, bad if bad.any() else np.bool_(False), "number")
        history = [f for f in wanted if f.source == "history" and f.attribute is None]
        if len(history) > 1:
            rows = [tuple(f.get(alert) for f in history) for alert in self.alerts]
            for index, field in enumerate(history):
                self._cache[field.name] = Vec.numbers([row[index] for row in rows], field.type == "int")
        by_annotator: dict[str, list[FieldDef]] = {}
        for field in wanted:
            if field.source not in ("alert", "history") and len(field.path) == 1:
                by_annotator.setdefault(field.source, []).append(field)
        for annotator, annotated in by_annotator.items():
            if len(annotated) < 2:
                continue
            notes = [alert.annotations.get(annotator) for alert in self.alerts]
            for field in annotated:
                key = field.path[0]
                values = [note.get(key) if note is not None else None for note in notes]
                self._cache[field.name] = (
                    Vec.strings(values)
                    if field.kind == "string"
                    else Vec.numbers(values, field.type == "int")
                )
