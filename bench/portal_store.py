"""The portal benchmark's store: ``alerts`` alerts of ZTF and Rubin objects over 180 nights, written
through the store's own code (``AlertStore.write``, batch after batch, as the store sink writes), made
once and kept (``var/bench/portal-v<N>-<alerts>.db``, and a database of the development PostgreSQL).

The sky: one object for every 6 alerts (so 1,000,000 alerts are ~167,000 objects), half ZTF, half Rubin,
spread evenly over the sphere; a fifth of the Rubin objects are transients ZTF saw too (within 0.5" of
a ZTF object), so a cone on one finds both. How many alerts an object has is skewed (log-normal: most
have a few, some dozens); its alerts fall in an active window of 5 to 60 days, in ZTF's bands (g, r, i)
or Rubin's (ugrizy). Each alert carries its object's history as the surveys send it: its earlier
detections (ZTF: 30 days, at most 30; Rubin: 12 months), an upper limit 1 to 3 days before every other
detection, and for Rubin a forced-photometry point at every epoch. Every alert is annotated by the
built-in ``history-summary``; the alerts brighter than 18 mag match the operator's filter ``bright``, and
those brightening since the last detection in their band a user's filter (``alice.rising``, which an
anonymous reader never sees).

The alerts are made as ``Alert`` objects straight from arrays (no Avro: making and decoding 1,000,000
messages costs about ten times what writing them does); what the store writes of them is exactly what it
writes of decoded alerts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console

from starling.alert.model import Alert, Detection, ForcedPoint, History, UpperLimit
from starling.alert.photometry import mag_err_to_flux_err, mag_to_flux_njy
from starling.components.annotators.history import HistorySummary, HistorySummaryConfig
from starling.store.open import open_store

START_MJD = 60800.0
NIGHTS = 180
ALERTS_PER_OBJECT = 6
BATCH = 5000
ALERT_ID_BASE = 10**15  # alert ids: this plus the alert's place in time order
_BANDS = {"ztf": ("g", "r", "i"), "rubin": ("u", "g", "r", "i", "z", "y")}
_LIMIT = {"ztf": 20.5, "rubin": 24.5}
_PEAK = {"ztf": (15.5, 19.5), "rubin": (18.0, 23.5)}
_HISTORY_DAYS = {"ztf": 30.0, "rubin": 365.0}
_ZTF_MAX_HISTORY = 30
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Sky:
    """Every object and every alert, as arrays; alerts in time order, ``by_object`` their order by
    (object, time), ``start`` each object's first position in it."""

    object_ids: list[str]
    survey_of: list[str]
    ra: FloatArray
    dec: FloatArray
    alert_object: IntArray
    mjd: FloatArray
    band: IntArray
    mag: FloatArray
    mag_err: FloatArray
    by_object: IntArray
    start: IntArray
    limit_mjd: FloatArray  # one upper limit before every other alert, 1 to 3 days before it

    @property
    def objects(self) -> int:
        return len(self.object_ids)


def _ztf_name(index: int) -> str:
    code, letters = (index * 1_299_709) % 26**7, []
    for _ in range(7):
        code, digit = divmod(code, 26)
        letters.append(chr(ord("a") + digit))
    return "ZTF26" + "".join(letters)


def make_sky(alerts: int, seed: int = 16) -> Sky:
    rng = np.random.default_rng(seed)
    objects = max(2, alerts // ALERTS_PER_OBJECT)
    half = objects // 2
    ra = rng.uniform(0.0, 360.0, objects)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, objects)))
    twins = np.flatnonzero(rng.random(half) < 0.2)  # Rubin objects ZTF saw too
    offset = rng.uniform(0.05, 0.5, len(twins)) / 3600.0
    angle = rng.uniform(0, 2 * np.pi, len(twins))
    dec[half + twins] = np.clip(dec[twins] + offset * np.sin(angle), -90, 90)
    ra[half + twins] = (
        ra[twins] + offset * np.cos(angle) / np.maximum(np.cos(np.radians(dec[twins])), 1e-3)
    ) % 360
    weights = rng.lognormal(0.0, 1.0, objects)
    owner = rng.choice(objects, size=alerts, p=weights / weights.sum())
    if alerts >= objects:
        owner[:objects] = np.arange(objects)  # every object has an alert
    active = rng.uniform(START_MJD, START_MJD + NIGHTS - 5, objects)
    length = np.minimum(rng.uniform(5.0, 60.0, objects), START_MJD + NIGHTS - active)
    mjd = active[owner] + rng.random(alerts) * length[owner]  # distinct times: the store relies on it
    order = np.argsort(mjd, kind="stable")
    owner, mjd = owner[order], mjd[order]
    is_ztf = owner < half
    band = np.where(is_ztf, rng.integers(0, 3, alerts), rng.integers(0, 6, alerts))
    low = np.where(is_ztf, _PEAK["ztf"][0], _PEAK["rubin"][0])
    high = np.where(is_ztf, _PEAK["ztf"][1], _PEAK["rubin"][1])
    peak = rng.uniform(0, 1, objects)
    peak_mag = low + (high - low) * peak[owner]
    mag = peak_mag + 0.04 * np.abs(mjd - active[owner] - 0.3 * length[owner]) + rng.normal(0, 0.05, alerts)
    mag_err = np.clip(0.02 + 0.1 * rng.random(alerts), 0.02, 0.5)
    by_object = np.lexsort((mjd, owner))
    start = np.searchsorted(owner[by_object], np.arange(objects + 1))
    names = [_ztf_name(i) for i in range(half)] + [
        str(170_000_000_000_000_000 + i) for i in range(objects - half)
    ]
    return Sky(
        object_ids=names,
        survey_of=["ztf"] * half + ["rubin"] * (objects - half),
        ra=ra,
        dec=dec,
        alert_object=owner,
        mjd=mjd,
        band=band,
        mag=mag,
        mag_err=mag_err,
        by_object=by_object.astype(np.int64),
        start=start.astype(np.int64),
        limit_mjd=np.where(rng.random(alerts) < 0.5, mjd - rng.uniform(1.0, 3.0, alerts), np.nan),
    )


class _Histories:
    """The rows an alert carries: its object's earlier epochs within the survey's window."""

    def __init__(self, sky: Sky) -> None:
        self.sky = sky
        # Python lists: read one value at a time, far faster than numpy scalars.
        self.mjd = sky.mjd.tolist()
        self.band = sky.band.tolist()
        self.mag = sky.mag.tolist()
        self.mag_err = sky.mag_err.tolist()
        self.limit_mjd = sky.limit_mjd.tolist()
        self.by_object = sky.by_object.tolist()
        self.position = np.empty(len(sky.mjd), dtype=np.int64)
        self.position[sky.by_object] = np.arange(len(sky.mjd))

    def history(self, index: int, survey: str) -> History:
        sky, obj = self.sky, int(self.sky.alert_object[index])
        first, here = int(sky.start[obj]), int(self.position[index])
        now = self.mjd[index]
        epochs = [k for k in self.by_object[first : here + 1] if self.mjd[k] >= now - _HISTORY_DAYS[survey]]
        if survey == "ztf":
            epochs = epochs[-_ZTF_MAX_HISTORY:]
        bands = _BANDS[survey]
        ra, dec = float(sky.ra[obj]), float(sky.dec[obj])
        detections = []
        for k in epochs:
            flux = mag_to_flux_njy(self.mag[k])
            detections.append(
                Detection(
                    ALERT_ID_BASE + k, self.mjd[k], bands[self.band[k]], ra, dec, self.mag[k],
                    self.mag_err[k], flux, mag_err_to_flux_err(flux, self.mag_err[k]),
                )
            )  # fmt: skip
        limits = sorted(
            (UpperLimit(self.limit_mjd[k], bands[self.band[k]], _LIMIT[survey], None) for k in epochs
             if self.limit_mjd[k] == self.limit_mjd[k] and self.limit_mjd[k] >= now - _HISTORY_DAYS[survey]),
            key=lambda u: u.mjd,
        )  # fmt: skip
        forced: tuple[ForcedPoint, ...] = ()
        if survey == "rubin":
            forced = tuple(ForcedPoint(d.mjd, d.band, d.flux, d.flux_err) for d in detections)
        return History(tuple(detections), tuple(limits), forced)


def _carried(history: History) -> Callable[[Any], History]:
    """The history an alert carries, as the survey codecs build it from the record."""

    def build(_record: Any) -> History:
        return history

    return build


def _alert(sky: Sky, histories: _Histories, index: int) -> Alert:
    obj = int(sky.alert_object[index])
    survey = sky.survey_of[obj]
    history = histories.history(index, survey)
    trigger = history.detections[-1]
    return Alert(
        survey="ztf" if survey == "ztf" else "rubin",
        alert_id=trigger.detection_id,
        object_id=sky.object_ids[obj],
        ra=float(sky.ra[obj]),
        dec=float(sky.dec[obj]),
        mjd=trigger.mjd,
        band=trigger.band,
        mag=trigger.mag,
        mag_err=trigger.mag_err,
        flux=trigger.flux,
        flux_err=trigger.flux_err,
        reliability=0.9,
        schema_version="4.02" if survey == "ztf" else "11.0",
        record={},
        history_builder=_carried(history),
    )


def batches(sky: Sky) -> Iterator[tuple[list[Alert], dict[str, list[Alert]]]]:
    """The alerts in time order, BATCH at a time, annotated, with the filters they matched."""
    histories = _Histories(sky)
    summary = HistorySummary(HistorySummaryConfig(), "history-summary")
    for low in range(0, len(sky.mjd), BATCH):
        alerts = [_alert(sky, histories, i) for i in range(low, min(len(sky.mjd), low + BATCH))]
        summary.annotate(alerts)
        rising = [a for a in alerts if (a.annotations["history-summary"]["delta_mag_same_band"] or 0) < -0.05]
        yield (
            alerts,
            {"bright": [a for a in alerts if a.mag is not None and a.mag < 18.0], "alice.rising": rising},
        )


def fill(location: str, sky: Sky, console: Console, label: str) -> None:
    """Write the sky's alerts into the store at ``location`` unless it holds them already (a store
    left half-made is written again whole: the writes are idempotent)."""
    store = open_store(location)
    try:
        held = store.count("alerts")
        if held == len(sky.mjd):
            console.print(f"portal {label}: the store of {held:,} alerts is made already ({location})")
            return
        console.print(
            f"portal {label}: writing {len(sky.mjd):,} alerts of {sky.objects:,} objects through the "
            f"store ({location}; once, then kept) ..."
        )
        began, written, step = time.perf_counter(), 0, max(BATCH, len(sky.mjd) // 20)
        for alerts, matches in batches(sky):
            store.write(alerts, matches)
            written += len(alerts)
            if written % step < BATCH or written == len(sky.mjd):
                elapsed = time.perf_counter() - began
                left = elapsed / written * (len(sky.mjd) - written)
                rate = written / elapsed
                console.print(
                    f"  {written:,} alerts in {elapsed:,.0f} s ({rate:,.0f}/s; ~{left:,.0f} s left)"
                )
        _analyze(location)
        console.print(f"portal {label}: {store.counts()}")
    finally:
        store.close()


def _analyze(location: str) -> None:
    """The planner's statistics, as an operator's store has them after a while (autovacuum, or
    SQLite's ``PRAGMA optimize``). SQLite's plans of the portal's queries are the same without them."""
    if location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("ANALYZE")
        return
    import sqlite3

    db = sqlite3.connect(location)
    try:
        db.execute("ANALYZE")
    finally:
        db.close()


def sample(sky: Sky, count: int, seed: int = 7) -> list[tuple[str, str, float, float]]:
    """``count`` objects at random: (survey, object_id, ra, dec)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(sky.objects, size=min(count, sky.objects), replace=False)
    out: list[tuple[str, str, float, float]] = []
    for i in picks.tolist():
        out.append((sky.survey_of[i], sky.object_ids[i], float(sky.ra[i]), float(sky.dec[i])))
    return out
