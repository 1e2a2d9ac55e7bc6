"""A synthetic night of ZTF and Rubin alerts, written in the surveys' real formats.

Objects are scattered uniformly over the sky (ZTF north of -30 deg, Rubin south of +30 deg); each has
a transient light curve (linear rise to a peak, then a slower decline, in magnitudes) and a
prehistory of earlier epochs, so its alerts carry a history that grows as the night goes on. Visits
follow one another every ``visit_interval_s`` seconds, alternating between the chosen surveys; each
visit observes ``alerts_per_visit`` of that survey's objects. An object fainter than the survey's
limit at that moment leaves an upper limit in its history instead of an alert.

ZTF messages are Avro container files (schema 4.02); Rubin messages are the Confluent wire format
(schema lsst.v11_0 by default, id major*100+minor), exactly what each survey puts on Kafka.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import fastavro
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from starling.alert.decoder import WireEncoder
from starling.alert.photometry import JD_TO_MJD_OFFSET, mag_err_to_flux_err, mag_to_flux_njy
from starling.alert.schemas import PackagedRubinSchemas
from starling.synthetic.cutouts import CutoutPool
from starling.synthetic.long_past import HistoryProfile, LongPast, make_long_past, rubin_rows, ztf_rows
from starling.synthetic.templates import rubin_definition, template_record, ztf_object_name
from starling.synthetic.ztf_schema import ZTF_SCHEMA_VERSION, ztf_alert_schema

SyntheticSurvey = Literal["ztf", "rubin"]

_LIMITING_MAG = {"ztf": 20.5, "rubin": 24.5}
_PEAK_MAG_RANGE = {"ztf": (15.5, 19.5), "rubin": (18.0, 23.5)}
_BANDS = {"ztf": ("g", "r", "i"), "rubin": ("u", "g", "r", "i", "z", "y")}
_ZTF_FID = {"g": 1, "r": 2, "i": 3}
# ZTF alerts carry 30 days of history; Rubin's carry 12 months. Both are capped in entries, and the
# histories live in one preallocated array per survey, so the generator's memory is fixed at the
# start of the night however many alerts it then writes.
_HISTORY_DAYS = {"ztf": 30.0, "rubin": 365.0}
_MAX_HISTORY_ROWS = 30
_HISTORY_SLOTS = _MAX_HISTORY_ROWS + 1  # the earlier epochs and the current one
_DEFAULT_MAX_OBJECTS = 5000
# Columns of a history row: mjd, band index, mag (NaN for an upper limit), mag error, limit, source id.
_MJD, _BAND, _MAG, _MAG_ERR, _LIMIT, _SOURCE = range(6)


class SyntheticConfig(BaseModel):
    """How the synthetic night looks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alerts: int = Field(5000, ge=1, description="alerts to produce in all")
    alerts_per_visit: int = Field(500, ge=1, description="alerts one visit produces (cadence)")
    surveys: tuple[SyntheticSurvey, ...] = Field(("ztf", "rubin"), min_length=1)
    objects: int | None = Field(
        None, ge=1, description="distinct objects per survey; default alerts/6, at most 5000"
    )
    seed: int = 42
    start_mjd: float = 60800.0
    visit_interval_s: float = Field(39.0, gt=0)
    rubin_schema_id: int = Field(1100, description="Rubin schema id (major*100+minor) to write")
    cutouts: bool = True
    history: HistoryProfile = Field(
        "short",
        description="short: a few earlier epochs; deep: the histories of Rubin's deep fields and of"
        " long-lived ZTF objects (300-380 earlier diaSources, 390-780 forced points); wide: young objects",
    )


@dataclass(slots=True)
class _Epoch:
    mjd: float
    band: str
    mag: float | None  # None: an upper limit
    mag_err: float
    limit: float
    source_id: int


@dataclass(slots=True)
class _SkyObject:
    survey: SyntheticSurvey
    object_id: str
    numeric_id: int
    ra: float
    dec: float
    peak_mjd: float
    peak_mag: float
    rise_per_day: float
    decline_per_day: float
    past: LongPast | None = None  # the earlier epochs beyond the recent ones (deep and wide nights)

    def mag_at(self, mjd: float) -> float:
        if mjd < self.peak_mjd:
            return self.peak_mag + self.rise_per_day * (self.peak_mjd - mjd)
        return self.peak_mag + self.decline_per_day * (mjd - self.peak_mjd)


class SyntheticNight:
    """An iterable of raw alert messages (bytes, as they would arrive on Kafka)."""

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self.config = config or SyntheticConfig()
        self._rng = np.random.default_rng(self.config.seed)
        self._pool = CutoutPool(self._rng) if self.config.cutouts else None
        self._ztf_schema = fastavro.parse_schema(ztf_alert_schema())
        self._ztf_templates = {
            "alert": template_record(ztf_alert_schema()),
            "candidate": template_record(ztf_alert_schema()["fields"][4]["type"]),
            "prv": template_record(ztf_alert_schema(), "prv_candidates"),
            "forced": template_record(ztf_alert_schema(), "fp_hists"),
        }
        rubin = PackagedRubinSchemas().get(self.config.rubin_schema_id)
        self._encode_rubin = WireEncoder(self.config.rubin_schema_id, rubin.parsed)
        definition = rubin_definition(self.config.rubin_schema_id)
        self._rubin_templates = {
            "alert": template_record(definition),
            "source": template_record(definition, "diaSource"),
            "object": template_record(definition, "diaObject"),
            "forced": template_record(definition, "prvDiaForcedSources"),
        }
        self._next_source_id = 10**15
        self._rows: dict[SyntheticSurvey, npt.NDArray[np.float64]] = {}
        self._lengths: dict[SyntheticSurvey, npt.NDArray[np.int32]] = {}
        self._objects: dict[SyntheticSurvey, list[_SkyObject]] = {
            survey: self._make_objects(survey) for survey in self.config.surveys
        }

    def __len__(self) -> int:
        return self.config.alerts

    # -- objects ---------------------------------------------------------------------------------

    def _new_source_id(self) -> int:
        self._next_source_id += 1
        return self._next_source_id

    def _make_objects(self, survey: SyntheticSurvey) -> list[_SkyObject]:
        cfg, rng = self.config, self._rng
        count = cfg.objects or min(_DEFAULT_MAX_OBJECTS, max(1, cfg.alerts // (3 * len(cfg.surveys))))
        self._rows[survey] = np.full((count, _HISTORY_SLOTS, 6), np.nan)
        self._lengths[survey] = np.zeros(count, dtype=np.int32)
        # Uniform on the sphere: uniform in RA and in sin(dec), within the survey's declinations.
        sin_lo, sin_hi = (
            (np.sin(np.radians(-30.0)), 1.0) if survey == "ztf" else (-1.0, np.sin(np.radians(30.0)))
        )
        ras = rng.uniform(0.0, 360.0, count)
        decs = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, count)))
        lo, hi = _PEAK_MAG_RANGE[survey]
        objects = []
        for i in range(count):
            name = ztf_object_name(rng) if survey == "ztf" else str(170_000_000_000_000_000 + i)
            obj = _SkyObject(
                survey=survey,
                object_id=name,
                numeric_id=i,
                ra=float(ras[i]),
                dec=float(decs[i]),
                peak_mjd=cfg.start_mjd + float(rng.uniform(-20.0, 10.0)),
                peak_mag=float(rng.uniform(lo, hi)),
                rise_per_day=float(rng.uniform(0.1, 0.6)),
                decline_per_day=float(rng.uniform(0.02, 0.12)),
            )
            first_id = self._next_source_id + 1
            obj.past = make_long_past(
                rng,
                cfg.history,
                survey,
                len(_BANDS[survey]),
                cfg.start_mjd - 60.0,
                _LIMITING_MAG[survey],
                first_id,
            )
            if obj.past is not None:
                self._next_source_id += obj.past.ids
            self._add_prehistory(obj)
            objects.append(obj)
        return objects

    def _add_prehistory(self, obj: _SkyObject) -> None:
        epochs = int(self._rng.integers(0, 12))
        span = _HISTORY_DAYS[obj.survey] if obj.survey == "ztf" else 60.0
        for mjd in np.sort(self.config.start_mjd - self._rng.uniform(0.5, span, epochs)):
            self._observe(obj, float(mjd))

    def _observe(self, obj: _SkyObject, mjd: float) -> _Epoch:
        band = _BANDS[obj.survey][int(self._rng.integers(0, len(_BANDS[obj.survey])))]
        limit = _LIMITING_MAG[obj.survey] + float(self._rng.normal(0.0, 0.3))
        true_mag = obj.mag_at(mjd) + (0.3 if band in ("u", "g") else 0.0)
        # Far below the limit the error is capped anyway: the exponent is capped first, so it cannot overflow.
        mag_err = float(min(0.5, 0.02 + 0.15 * 10 ** (0.4 * min(true_mag - limit, 5.0))))
        seen = true_mag < limit
        mag = true_mag + float(self._rng.normal(0.0, mag_err)) if seen else None
        epoch = _Epoch(mjd, band, mag, mag_err, limit, self._new_source_id())
        rows, lengths, i = self._rows[obj.survey][obj.numeric_id], self._lengths[obj.survey], obj.numeric_id
        if lengths[i] == _HISTORY_SLOTS:  # full: forget the oldest epoch
            rows[:-1] = rows[1:]
            lengths[i] -= 1
        band_index = _BANDS[obj.survey].index(band)
        rows[lengths[i]] = (mjd, band_index, np.nan if mag is None else mag, mag_err, limit, epoch.source_id)
        lengths[i] += 1
        return epoch

    def _history(self, obj: _SkyObject, now_mjd: float) -> list[_Epoch]:
        """The object's epochs within the survey's history window, oldest first, the current one last."""
        rows = self._rows[obj.survey][obj.numeric_id, : self._lengths[obj.survey][obj.numeric_id]]
        bands = _BANDS[obj.survey]
        return [
            _Epoch(
                mjd=float(row[_MJD]),
                band=bands[int(row[_BAND])],
                mag=None if np.isnan(row[_MAG]) else float(row[_MAG]),
                mag_err=float(row[_MAG_ERR]),
                limit=float(row[_LIMIT]),
                source_id=int(row[_SOURCE]),
            )
            for row in rows
            if row[_MJD] >= now_mjd - _HISTORY_DAYS[obj.survey]
        ]

    # -- the stream ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """Yields (origin, message bytes); the origin names survey, visit and alert number."""
        cfg, rng = self.config, self._rng
        produced, visit = 0, 0
        while produced < cfg.alerts:
            survey = cfg.surveys[visit % len(cfg.surveys)]
            mjd = cfg.start_mjd + visit * cfg.visit_interval_s / 86400.0
            objects = self._objects[survey]
            chosen = rng.choice(len(objects), size=min(len(objects), cfg.alerts_per_visit), replace=False)
            for index in chosen:
                if produced >= cfg.alerts:
                    break
                obj = objects[int(index)]
                epoch = self._observe(obj, mjd)
                if epoch.mag is None:
                    continue
                payload = (
                    self._ztf_message(obj, epoch, visit)
                    if survey == "ztf"
                    else self._rubin_message(obj, epoch, visit)
                )
                produced += 1
                yield f"synthetic:{survey}:visit{visit}:{produced}", payload
            visit += 1

    def _ztf_message(self, obj: _SkyObject, epoch: _Epoch, visit: int) -> bytes:
        t = self._ztf_templates
        history = self._history(obj, epoch.mjd)
        candidate = dict(t["candidate"])
        candidate.update(_ztf_detection_fields(epoch, obj))
        candidate.update(
            pid=visit,
            programid=1,
            rb=float(self._rng.uniform(0.3, 1.0)),
            drb=float(self._rng.uniform(0.3, 1.0)),
            ndethist=sum(1 for e in history if e.mag is not None),
            ncovhist=len(history),
            jdstarthist=history[0].mjd + JD_TO_MJD_OFFSET,
            jdendhist=epoch.mjd + JD_TO_MJD_OFFSET,
            ssdistnr=-999.0,
            ssmagnr=-999.0,
            sgscore1=float(self._rng.uniform(0.0, 1.0)),
            distpsnr1=float(self._rng.uniform(0.0, 20.0)),
            fwhm=2.0,
            elong=1.05,
            nbad=0,
        )
        previous = []
        for past in history[:-1]:
            row = dict(t["prv"])
            row.update(
                jd=past.mjd + JD_TO_MJD_OFFSET,
                fid=_ZTF_FID[past.band],
                pid=0,
                diffmaglim=past.limit,
                programid=1,
            )
            if past.mag is not None:
                row.update(_ztf_detection_fields(past, obj))
            previous.append(row)
        previous, forced = self._with_long_past(obj, previous, candidate)
        record = dict(t["alert"])
        record.update(
            schemavsn=ZTF_SCHEMA_VERSION,
            publisher="Starling synthetic",
            objectId=obj.object_id,
            candid=epoch.source_id,
            candidate=candidate,
            prv_candidates=previous,
            fp_hists=forced,
        )
        if self._pool is not None:
            pick = int(self._rng.integers(0, len(self._pool.ztf["science"])))
            for role, field_name in (
                ("science", "cutoutScience"),
                ("template", "cutoutTemplate"),
                ("difference", "cutoutDifference"),
            ):
                record[field_name] = {
                    "fileName": f"candid{epoch.source_id}_{role}.fits.gz",
                    "stampData": self._pool.ztf[role][pick],
                }
        buffer = io.BytesIO()
        fastavro.writer(buffer, self._ztf_schema, [record])
        return buffer.getvalue()

    def _with_long_past(
        self, obj: _SkyObject, previous: list[dict[str, Any]], candidate: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """A ZTF alert's earlier rows with its object's long past before them, and its forced points."""
        if obj.past is None:
            return previous, None
        t = self._ztf_templates
        earlier, forced = ztf_rows(obj.past, tuple(_ZTF_FID.values()), t["prv"], t["forced"], obj.ra, obj.dec)
        candidate["ndethist"] += len(earlier)
        return earlier + previous, forced

    def _rubin_source(self, obj: _SkyObject, epoch: _Epoch, visit: int) -> dict[str, Any]:
        source = copy.copy(self._rubin_templates["source"])
        assert epoch.mag is not None
        flux = mag_to_flux_njy(epoch.mag)
        source.update(
            diaSourceId=epoch.source_id,
            visit=visit,
            detector=int(obj.numeric_id % 189),
            diaObjectId=int(obj.object_id),
            midpointMjdTai=epoch.mjd,
            band=epoch.band,
            ra=obj.ra,
            dec=obj.dec,
            psfFlux=flux,
            psfFluxErr=mag_err_to_flux_err(flux, epoch.mag_err),
            snr=float(1.0857 / max(epoch.mag_err, 1e-3)),
            reliability=float(self._rng.uniform(0.3, 1.0)),
            timeProcessedMjdTai=epoch.mjd + 30.0 / 86400.0,
        )
        return source

    def _rubin_message(self, obj: _SkyObject, epoch: _Epoch, visit: int) -> bytes:
        t = self._rubin_templates
        detections = [e for e in self._history(obj, epoch.mjd) if e.mag is not None]
        dia_object = copy.copy(t["object"])
        dia_object.update(
            diaObjectId=int(obj.object_id),
            ra=obj.ra,
            dec=obj.dec,
            nDiaSources=len(detections),
            firstDiaSourceMjdTai=detections[0].mjd,
            lastDiaSourceMjdTai=epoch.mjd,
            validityStartMjdTai=epoch.mjd,
        )
        earlier, forced = (
            rubin_rows(
                obj.past, _BANDS["rubin"], t["source"], t["forced"], int(obj.object_id), obj.ra, obj.dec
            )
            if obj.past is not None
            else ([], [])
        )
        dia_object["nDiaSources"] += len(earlier)
        record = dict(t["alert"])
        record.update(
            diaSourceId=epoch.source_id,
            diaSource=self._rubin_source(obj, epoch, visit),
            prvDiaSources=earlier + [self._rubin_source(obj, past, visit) for past in detections[:-1]],
            prvDiaForcedSources=forced or None,
            diaObject=dia_object,
        )
        if self._pool is not None:
            pick = int(self._rng.integers(0, len(self._pool.rubin["science"])))
            record["cutoutScience"] = self._pool.rubin["science"][pick]
            record["cutoutTemplate"] = self._pool.rubin["template"][pick]
            record["cutoutDifference"] = self._pool.rubin["difference"][pick]
        return self._encode_rubin(record)


def _ztf_detection_fields(epoch: _Epoch, obj: _SkyObject) -> dict[str, Any]:
    return {
        "jd": epoch.mjd + JD_TO_MJD_OFFSET,
        "fid": _ZTF_FID[epoch.band],
        "candid": epoch.source_id,
        "isdiffpos": "t",
        "ra": obj.ra,
        "dec": obj.dec,
        "magpsf": epoch.mag,
        "sigmapsf": epoch.mag_err,
        "diffmaglim": epoch.limit,
        "programid": 1,
    }
