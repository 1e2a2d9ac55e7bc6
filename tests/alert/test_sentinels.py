"""The survey codecs are total on real alerts whose photometry carries the surveys' sentinels: a
sentinel (-999, -1006.94, -99999, NaN, an infinity, 0 or a negative uncertainty, null, a field an older
schema lacks) becomes an absent value (None), never an exception, NaN or an infinity. Only an alert with
no valid position or time is refused, as a decode error (a dead letter), never another exception.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from starling.alert.model import Alert
from starling.alert.photometry import (
    finite,
    flux_err_to_mag_err,
    flux_njy_to_mag,
    reported_mag,
    uncertainty,
)
from starling.errors import AlertDecodeError
from tests.support.sentinels import (
    Mutation,
    mutations,
    non_finite,
    real_alerts,
    renormalized,
    with_sentinels,
)

pytestmark = pytest.mark.samples

SENTINEL_SETTINGS = settings(
    max_examples=int(os.environ.get("STARLING_SENTINEL_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def alerts(samples: Path) -> tuple[Alert, ...]:
    found = real_alerts(samples / "realworld")
    assert {a.survey for a in found} == {"ztf", "rubin"}
    return found


def _by_object(alerts: tuple[Alert, ...], object_id: str) -> Alert:
    return next(a for a in alerts if a.object_id == object_id)


def _values(alert: Alert) -> dict[str, object]:
    history = alert.history
    return {
        "alert": alert.summary(),
        "detections": [d._asdict() for d in history.detections],
        "upper_limits": [u._asdict() for u in history.upper_limits],
        "forced": [f._asdict() for f in history.forced],
    }


@given(data=st.data())
@SENTINEL_SETTINGS
def test_real_alerts_with_sentinels_normalize_to_finite_values_or_none(
    alerts: tuple[Alert, ...], data: st.DataObject
) -> None:
    alert = data.draw(st.sampled_from(alerts), label="alert")
    changes = data.draw(mutations(alert.survey), label="changes")
    note(f"{alert.survey} {alert.object_id} {alert.origin}")
    mutated = renormalized(alert, with_sentinels(alert.record, alert.survey, changes))
    values = _values(mutated)
    assert list(non_finite(values)) == []
    # The codecs keep every row: a sentinel makes a value absent, never a row (times are untouched).
    # (A ZTF row whose magnitude is taken away is an upper limit; Rubin's upper limits are the test's.)
    original, history = alert.history, mutated.history
    assert len(history.forced) == len(original.forced)
    if alert.survey == "ztf":
        assert len(history.detections) + len(history.upper_limits) == len(original.detections) + len(
            original.upper_limits
        )
    else:
        assert len(history.detections) == len(original.detections)
    for detection in mutated.history.detections:
        assert detection.mag is None or detection.flux is not None
        assert detection.mag_err is None or detection.mag_err > 0


def test_a_ztf_upper_limit_of_minus_999_is_an_upper_limit_with_no_limit(alerts: tuple[Alert, ...]) -> None:
    alert = _by_object(alerts, "ZTF17aacymkh")  # schema 4.01, 40 upper limits
    for sentinel in (-999.0, -1006.94, math.nan, None, 0.0):
        record = with_sentinels(
            alert.record, "ztf", [Mutation("prv_upper_limits", "diffmaglim", sentinel, 0)]
        )
        limits = renormalized(alert, record).history.upper_limits
        assert len(limits) == len(alert.history.upper_limits)
        assert sum(u.limiting_mag is None for u in limits) == 1
        assert all(u.limiting_flux is None for u in limits if u.limiting_mag is None)
        assert all(u.limiting_flux is not None for u in limits if u.limiting_mag is not None)


def test_ztf_forced_photometry_sentinels_are_absent_fluxes(alerts: tuple[Alert, ...]) -> None:
    # ZTF17aacymkh's fp_hists: 12 of 21 epochs have forcediffimflux -99999 (procstatus 55/61).
    alert = _by_object(alerts, "ZTF17aacymkh")
    missing = [r for r in alert.record["fp_hists"] if r["forcediffimflux"] == -99999.0]
    assert len(missing) == 12
    assert sum(f.flux is None for f in alert.history.forced) == 12
    for zero_point in (-999.0, -1006.94, math.nan, math.inf, None):
        record = with_sentinels(alert.record, "ztf", [Mutation("fp_hists", "magzpsci", zero_point, None)])
        forced = renormalized(alert, record).history.forced
        assert len(forced) == 21
        assert all(f.flux is None and f.flux_err is None for f in forced)


@pytest.mark.parametrize("magnitude", [-999.0, -1006.94, -1e308, 1e308, math.nan, math.inf, None])
def test_a_ztf_candidate_magnitude_sentinel_is_no_magnitude_and_no_flux(
    alerts: tuple[Alert, ...], magnitude: float | None
) -> None:
    alert = _by_object(alerts, "ZTF18abudxnw")
    record = with_sentinels(alert.record, "ztf", [Mutation("candidate", "magpsf", magnitude, None)])
    mutated = renormalized(alert, record)
    assert (mutated.mag, mutated.flux, mutated.flux_err) == (None, None, None)
    assert len(mutated.history.detections) == len(alert.history.detections)


@pytest.mark.parametrize("flux", [math.nan, math.inf, -math.inf, 0.0, -1e308, None])
def test_a_rubin_flux_sentinel_is_no_flux_and_no_magnitude(
    alerts: tuple[Alert, ...], flux: float | None
) -> None:
    alert = _by_object(alerts, "170028513894596704")  # 377 diaSources, 777 forced sources
    changes = [Mutation(part, "psfFlux", flux, None) for part in ("diaSource", "prvDiaForcedSources")]
    mutated = renormalized(alert, with_sentinels(alert.record, "rubin", changes))
    assert mutated.mag is None
    assert mutated.mag_err is None
    assert mutated.flux == (flux if flux is not None and math.isfinite(flux) else None)
    assert len(mutated.history.forced) == 777
    assert all(f.flux == mutated.flux for f in mutated.history.forced)


@pytest.mark.parametrize(
    ("field", "value"),
    [("ra", math.nan), ("dec", math.nan), ("dec", -999.0), ("ra", -999.0), ("dec", math.inf), ("jd", None)],
)
def test_an_alert_without_a_valid_position_or_time_is_refused_as_a_decode_error(
    alerts: tuple[Alert, ...], field: str, value: float | None
) -> None:
    alert = _by_object(alerts, "ZTF18abudxnw")
    record = with_sentinels(alert.record, "ztf", [Mutation("candidate", field, value, None)])
    with pytest.raises(AlertDecodeError, match="no valid position and time"):
        renormalized(alert, record)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, 1.5), (3, 3.0), (math.nan, None), (math.inf, None), (-math.inf, None), (None, None),
        (True, None), ("1.5", None), (2**2000, None),
    ],
)  # fmt: skip
def test_finite(value: object, expected: float | None) -> None:
    assert finite(value) == expected


def test_the_sentinel_checks_and_conversions() -> None:
    assert [reported_mag(v) for v in (19.5, -999.0, -1006.94, 99.0, math.nan, None)] == [19.5] + [None] * 5
    assert [uncertainty(v) for v in (0.1, 0.0, -0.1, -999.0, math.nan, None)] == [0.1] + [None] * 5
    assert [flux_njy_to_mag(v) for v in (0.0, -5.0, math.nan, math.inf, None)] == [None] * 5
    assert flux_njy_to_mag(3631e9) == pytest.approx(0.0, abs=1e-3)
    assert flux_err_to_mag_err(5e-324, 1e308) is None  # overflows: absent, not an infinity
    assert flux_err_to_mag_err(1e308, 3.5e-123) is None  # underflows: absent, not a zero error
    assert flux_err_to_mag_err(1000.0, 0.0) is None
    assert flux_njy_to_mag(1e308) is None  # -738.6: no source is that bright
    assert flux_err_to_mag_err(1000.0, math.nan) is None
    assert flux_err_to_mag_err(1000.0, 100.0) == pytest.approx(0.10857, abs=1e-5)
