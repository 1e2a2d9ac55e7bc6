"""The rows a batch becomes in the store's tables: the mapping every backend shares.

A backend (SQLite, PostgreSQL) only decides how to write these rows; which rows an alert makes, and
in which column order, is decided here once.

Writes scale with what is new: an alert carries its object's whole recent history (a real Rubin
deep-field alert ~390 earlier detections and ~780 forced points), almost all of it already stored.
The store keeps, per object and per kind of history row, the span of times whose rows it holds
(:class:`Span`); the rows of a new alert inside that span are not written again. This rests on what
both surveys' alerts are: an alert carries every row of its object between its earliest history row and
its own time (ZTF: 30 days, Rubin: 12 months). Rows outside the span are written with their keys, so
a replay, or a span the store does not know, still leaves the same rows.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson

from starling.alert.model import Alert
from starling.store.access import annotation_rows

Row = tuple[Any, ...]
ObjectKey = tuple[str, str]
T = TypeVar("T", bound="_Timed")


@dataclass(frozen=True, slots=True)
class Span:
    """All of an object's rows of one kind with ``start <= mjd <= end`` are stored."""

    start: float
    end: float

    def merged(self, other: Span | None) -> Span:
        """What is stored once both are: their union when they touch, else the later one (rows of the
        other stay stored, merely not tracked)."""
        if other is None:
            return self
        if other.start <= self.end and self.start <= other.end:
            return Span(min(self.start, other.start), max(self.end, other.end))
        return self if self.end >= other.end else other


def merge_spans(first: Span | None, second: Span | None) -> Span | None:
    return first if second is None else second.merged(first)


HISTORY_KINDS = ("det", "nondet", "forced")


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """What the store holds of one object's history, per kind (detections, non-detections, forced)."""

    det: Span | None = None
    nondet: Span | None = None
    forced: Span | None = None

    @classmethod
    def from_columns(cls, values: Sequence[float | None]) -> StoredHistory:
        """From the six span columns of ``objects`` (``det_from``, ``det_through``, ``nondet_from``...)."""
        spans = [
            Span(start, end) if start is not None and end is not None else None
            for start, end in zip(values[0::2], values[1::2], strict=True)
        ]
        return cls(*spans)

    def merged(self, other: StoredHistory) -> StoredHistory:
        return StoredHistory(
            merge_spans(self.det, other.det),
            merge_spans(self.nondet, other.nondet),
            merge_spans(self.forced, other.forced),
        )

    def columns(self) -> tuple[float | None, ...]:
        values: list[float | None] = []
        for span in (self.det, self.nondet, self.forced):
            values.extend((span.start, span.end) if span else (None, None))
        return tuple(values)


SPAN_COLUMNS = ("det_from", "det_through", "nondet_from", "nondet_through", "forced_from", "forced_through")
NOTHING_STORED = StoredHistory()


@dataclass(slots=True)
class BatchRows:
    """One batch as rows, table by table."""

    objects: list[Row] = field(default_factory=list)
    alerts: list[Row] = field(default_factory=list)
    detections: list[Row] = field(default_factory=list)
    non_detections: list[Row] = field(default_factory=list)
    forced_photometry: list[Row] = field(default_factory=list)
    annotations: list[Row] = field(default_factory=list)
    filter_matches: list[Row] = field(default_factory=list)
    history_rows_skipped: int = 0

    def history_rows(self) -> int:
        return len(self.detections) + len(self.non_detections) + len(self.forced_photometry)


class _Timed(Protocol):
    @property
    def mjd(self) -> float: ...


def _span_of(rows: Sequence[_Timed], alert_mjd: float) -> Span | None:
    """The span an alert vouches for: from its earliest row of a kind to its own time (a history's rows
    come oldest first: ``starling.alert.model.History``)."""
    if not rows:
        return None
    return Span(rows[0].mjd, max(rows[-1].mjd, alert_mjd))


def _outside(rows: Sequence[T], span: Span | None) -> Sequence[T]:
    """The rows (oldest first) outside ``span``: two binary searches, not a look at every row, since
    an alert's history is mostly what the store holds."""
    if span is None:
        return rows
    start = bisect.bisect_left(rows, span.start, key=_mjd)
    end = bisect.bisect_right(rows, span.end, key=_mjd)
    if start == 0:
        return rows[end:]
    return [*rows[:start], *rows[end:]]


def _mjd(row: _Timed) -> float:
    return row.mjd


def _object_row(a: Alert, spans: StoredHistory) -> Row:
    history = a.history
    first_mjd = history.detections[0].mjd if history.detections else a.mjd
    return (
        a.survey,
        a.object_id,
        a.ra,
        a.dec,
        first_mjd,
        a.mjd,
        a.alert_id,
        a.band,
        a.mag,
        a.flux,
        len(history.detections),
        len(history.upper_limits),
        *spans.columns(),
    )


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _annotation_json(payload: Any) -> str:
    """An annotation as JSON text, by orjson (a tenth of the store's time with json.dumps). A value JSON
    has no word for (NaN, an infinity) is null, as annotators already write it. What orjson cannot write
    (an integer beyond 64 bits, a key that is no string nor number) is written by json, as before."""
    try:
        return orjson.dumps(payload, default=str, option=_JSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(payload, default=str)


def _alert_row(a: Alert, cutouts: Mapping[str, Any]) -> Row:
    return (
        a.survey,
        a.alert_id,
        a.object_id,
        a.mjd,
        a.ra,
        a.dec,
        a.band,
        a.mag,
        a.mag_err,
        a.flux,
        a.flux_err,
        a.reliability,
        a.schema_version,
        json.dumps(dict(cutouts), sort_keys=True) if cutouts else None,
        json.dumps(a.passed) if a.passed else None,  # in the order the stages were passed
    )


def _merge_object_rows(older: Row, newer: Row) -> Row:
    """Two alerts of one object in one batch make one object row, as the store would merge them."""
    latest = newer if newer[5] >= older[5] else older
    spans = StoredHistory.from_columns(older[12:]).merged(StoredHistory.from_columns(newer[12:]))
    return (*latest[:4], min(older[4], newer[4]), *latest[5:12], *spans.columns())


def _add_new_history(rows: BatchRows, a: Alert, held: StoredHistory) -> None:
    """The alert's history rows outside what the store holds (``held``)."""
    history, survey, object_id = a.history, a.survey, a.object_id
    detections = _outside(history.detections, held.det)
    limits = _outside(history.upper_limits, held.nondet)
    forced = _outside(history.forced, held.forced)
    rows.history_rows_skipped += (
        len(history.detections)
        - len(detections)
        + len(history.upper_limits)
        - len(limits)
        + len(history.forced)
        - len(forced)
    )
    rows.detections.extend(
        (survey, d.detection_id, object_id, d.mjd, d.band, d.ra, d.dec, d.mag, d.mag_err, d.flux, d.flux_err)
        for d in detections
    )
    rows.non_detections.extend(
        (survey, object_id, u.mjd, u.band, u.limiting_mag, u.limiting_flux) for u in limits
    )
    rows.forced_photometry.extend((survey, object_id, f.mjd, f.band, f.flux, f.flux_err) for f in forced)


def batch_rows(
    alerts: Sequence[Alert],
    matches: Mapping[str, Sequence[Alert]],
    stored: Mapping[ObjectKey, StoredHistory],
    cutout_refs: Mapping[tuple[str, int], Mapping[str, Any]] | None = None,
) -> BatchRows:
    """Every row the batch writes: history rows the store holds (``stored``, by object) are left out.

    The rows of each table come sorted by key, so that concurrent writers take row locks in one order
    (no deadlocks between replicas); object rows come one per object."""
    rows = BatchRows()
    known = dict(stored)
    objects: dict[ObjectKey, Row] = {}
    annotations: dict[tuple[str, int, str], Row] = {}
    names = cutout_refs or {}
    for a in alerts:
        history = a.history
        survey, object_id = a.survey, a.object_id
        key = (survey, object_id)
        held = known.get(key, NOTHING_STORED)
        _add_new_history(rows, a, held)
        vouched = StoredHistory(
            _span_of(history.detections, a.mjd),
            _span_of(history.upper_limits, a.mjd),
            _span_of(history.forced, a.mjd),
        )
        # A later alert of the object in this batch skips what this one writes.
        known[key] = held.merged(vouched)
        row = _object_row(a, vouched)
        objects[key] = _merge_object_rows(objects[key], row) if key in objects else row
        rows.alerts.append(_alert_row(a, names.get(a.key, {})))
        for annotator, whole in a.annotations.items():
            # A user's own entries (its watchlists' hits) in a row of its own (``store.access``).
            for name, payload in annotation_rows(annotator, whole):
                annotations[(survey, a.alert_id, name)] = (
                    survey,
                    a.alert_id,
                    name,
                    _annotation_json(payload),
                    a.mjd,
                )
    rows.objects = [objects[key] for key in sorted(objects)]
    rows.annotations = [annotations[key] for key in sorted(annotations)]
    rows.alerts.sort(key=lambda r: (r[0], r[1]))
    rows.detections.sort(key=lambda r: (r[0], r[1]))
    rows.non_detections.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    rows.forced_photometry.sort(key=lambda r: (r[0], r[1], r[2], r[3]))
    rows.filter_matches = sorted(
        (name, a.survey, a.alert_id, a.object_id, a.mjd) for name, matched in matches.items() for a in matched
    )
    return rows


def object_keys(alerts: Iterable[Alert]) -> list[ObjectKey]:
    """The objects of a batch, once each, sorted."""
    return sorted({(a.survey, a.object_id) for a in alerts})
