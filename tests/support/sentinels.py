"""Real alerts with the surveys' sentinels put into their photometry, for the property tests of the
codecs, the annotators and the filter fields.

Real surveys write sentinels where a value is missing: ZTF -999 (and -1006.94) in magnitudes, limits
and distances, -99999 in forced fluxes; Rubin NaN in fluxes; older schemas lack fields newer ones have.
A mutation puts one such value (or an extreme float, or takes the field out) into one field of one
row, or of every row, of a part of the record: the triggering detection, the earlier detections, the
upper limits, the forced photometry. Records are copied where they are changed, never mutated in
place, so the decoded real alerts are shared by every example.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from starling.alert.decoder import AlertDecoder, normalize_record
from starling.alert.model import Alert, Record
from starling.alert.schemas import PackagedRubinSchemas
from starling.testing import sample_messages

MISSING = "<missing>"  # the field taken out of the row, as an older schema lacks it
SENTINELS: tuple[Any, ...] = (
    -999, -999.0, -1006.94, -99999.0, 1e308, -1e308, math.nan, math.inf, -math.inf, 0, 0.0, -1.0,
    -12345.6, 5e-324, None, MISSING,
)  # fmt: skip

# Where each survey's photometry is: the part of the record, and the fields a mutation may change.
ZTF_PARTS: dict[str, tuple[str, ...]] = {
    "candidate": ("magpsf", "sigmapsf", "diffmaglim", "ssdistnr", "ssmagnr", "drb", "rb", "magzpsci"),
    "prv_detections": ("magpsf", "sigmapsf", "diffmaglim"),  # rows of prv_candidates with a candid
    "prv_upper_limits": ("diffmaglim", "magpsf", "sigmapsf"),  # rows without
    "fp_hists": ("forcediffimflux", "forcediffimfluxunc", "magzpsci"),
}
RUBIN_PARTS: dict[str, tuple[str, ...]] = {
    "diaSource": ("psfFlux", "psfFluxErr", "reliability"),
    "prvDiaSources": ("psfFlux", "psfFluxErr"),
    "prvDiaForcedSources": ("psfFlux", "psfFluxErr"),
    "prvDiaNondetectionLimits": ("diaNoise",),
    "ssSource": ("ephOffset",),
}


@dataclass(frozen=True)
class Mutation:
    part: str
    field: str
    value: Any
    row: int | None  # which row of the part (modulo its length); None: every row


@functools.cache
def real_alerts(folder: Path) -> tuple[Alert, ...]:
    """Every real alert under ``folder``, decoded once per test session."""
    decoder = AlertDecoder(PackagedRubinSchemas())
    return tuple(alert for m in sample_messages(folder) for alert in decoder.decode(m.payload, m.origin))


def values() -> st.SearchStrategy[Any]:
    """A sentinel, most often; else any float (NaN, infinities, subnormals) or a huge integer."""
    return st.one_of(
        st.sampled_from(SENTINELS), st.floats(), st.integers(min_value=-(2**70), max_value=2**70)
    )


def mutations(survey: str) -> st.SearchStrategy[list[Mutation]]:
    parts = ZTF_PARTS if survey == "ztf" else RUBIN_PARTS
    where = [(part, field) for part, fields in parts.items() for field in fields]
    one = st.builds(
        lambda place, value, row: Mutation(place[0], place[1], value, row),
        st.sampled_from(where),
        values(),
        st.none() | st.integers(min_value=0, max_value=1000),
    )
    return st.lists(one, min_size=1, max_size=6)


def _rubin_upper_limits(record: Record) -> list[Record]:
    """Upper limits for a Rubin record (the real ones carry none): one per forced source, else one at
    the detection, with a plausible noise level for the mutations to spoil."""
    rows = record.get("prvDiaForcedSources") or [record["diaSource"]]
    return [
        {"midpointMjdTai": row["midpointMjdTai"], "band": row.get("band"), "diaNoise": 40.0}
        for row in rows
        if "midpointMjdTai" in row
    ]


def _copied(record: Record, survey: str) -> Record:
    """The record with every photometry row copied (the rows a mutation may change)."""
    copied = dict(record)
    if survey == "ztf":
        copied["candidate"] = dict(record["candidate"])
        for key in ("prv_candidates", "fp_hists"):
            if record.get(key):
                copied[key] = [dict(row) for row in record[key]]
        return copied
    copied["diaSource"] = dict(record["diaSource"])
    for key in ("prvDiaSources", "prvDiaForcedSources"):
        if record.get(key):
            copied[key] = [dict(row) for row in record[key]]
    copied["prvDiaNondetectionLimits"] = _rubin_upper_limits(record)
    if isinstance(record.get("ssSource"), dict):
        copied["ssSource"] = dict(record["ssSource"])
    return copied


def _rows(record: Record, part: str) -> list[Record]:
    if part == "prv_detections":
        return [r for r in record.get("prv_candidates") or () if r.get("candid") is not None]
    if part == "prv_upper_limits":
        return [r for r in record.get("prv_candidates") or () if r.get("candid") is None]
    found = record.get(part)
    if isinstance(found, dict):
        return [found]
    return list(found or ())


def with_sentinels(record: Record, survey: str, changes: Sequence[Mutation]) -> Record:
    """A copy of ``record`` with the changes made (the original is left as it was)."""
    copied = _copied(record, survey)
    for change in changes:
        rows = _rows(copied, change.part)
        chosen = rows if change.row is None or not rows else [rows[change.row % len(rows)]]
        for row in chosen:
            if change.value == MISSING:
                row.pop(change.field, None)
            else:
                row[change.field] = change.value
    return copied


def renormalized(alert: Alert, record: Record | None = None) -> Alert:
    """A fresh Alert from ``record`` (default: the alert's own), through the survey's codec."""
    record = alert.record if record is None else record
    if alert.survey == "ztf":
        return normalize_record(record, "ztf.alert", alert.origin)
    major, _, minor = alert.schema_version.partition(".")
    return normalize_record(record, f"lsst.v{major}_{minor}.alert", alert.origin)


def non_finite(value: Any, path: str = "") -> Iterator[str]:
    """The paths in nested dicts, lists and tuples that hold NaN or an infinity."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from non_finite(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from non_finite(item, f"{path}[{index}]")
    elif isinstance(value, (float, np.floating)) and not math.isfinite(value):
        yield f"{path} = {value!r}"
