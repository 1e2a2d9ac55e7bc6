"""An alert's spans from its exposure through each stage to its delivery (``starling.core.latency``)."""

from __future__ import annotations

import pytest

from starling.core.latency import BUCKETS_S, LatencyHistograms, exposure_time
from tests.support.helpers import synthetic_alerts


def test_each_span_is_the_time_between_two_stamps() -> None:
    rubin = next(a for a in synthetic_alerts(40, seed=3) if a.survey == "rubin")
    ztf = next(a for a in synthetic_alerts(40, seed=3) if a.survey == "ztf")
    start = exposure_time(ztf)
    times = {
        id(ztf): {"survey": start + 2.0, "ingest": start + 2.3, "filter": start + 2.4},
        id(rubin): {"survey": exposure_time(rubin) + 70.0, "ingest": exposure_time(rubin) + 71.0},
    }
    histograms = LatencyHistograms()
    histograms.delivered("distribute", [ztf], times, start + 3.0)
    histograms.delivered("distribute", [rubin], times, exposure_time(rubin) + 75.0)
    summary = histograms.summary()
    assert summary["exposure"]["count"] == 2
    assert summary["exposure"]["within_60s"] == 0.5  # 3 s and 75 s
    assert summary["survey"]["count"] == 2
    assert summary["ingest"] == {"count": 2, "p50_s": 0.5, "p99_s": 1.0, "within_60s": 1.0}  # 0.3 s, 1.0 s
    assert summary["filter"]["count"] == 1  # the Rubin alert skipped no stage: it carried none
    assert summary["distribute"]["count"] == 2  # 0.6 s and 4.0 s
    counts, total = histograms.histograms()["distribute"]
    assert sum(counts) == 2
    assert total == pytest.approx(4.6)
    assert counts[BUCKETS_S.index(1.0)] == 1
    assert counts[BUCKETS_S.index(5.0)] == 1


def test_rubin_times_are_tai_and_ztf_times_utc() -> None:
    rubin = next(a for a in synthetic_alerts(40, seed=3) if a.survey == "rubin")
    ztf = next(a for a in synthetic_alerts(40, seed=3) if a.survey == "ztf")
    assert exposure_time(rubin) == pytest.approx((rubin.mjd - 40587.0) * 86400.0 - 37.0)
    assert exposure_time(ztf) == pytest.approx((ztf.mjd - 40587.0) * 86400.0)


def test_an_alert_from_no_kafka_topic_has_its_exposure_span_only() -> None:
    alert = synthetic_alerts(1, seed=4)[0]
    histograms = LatencyHistograms()
    histograms.delivered("distribute", [alert], {}, exposure_time(alert) + 5.0)
    assert set(histograms.summary()) == {"exposure"}
