"""Every built-in annotator is total on real alerts whose photometry carries the surveys' sentinels.

Each example takes a real alert (ZTF 1.8 to 4.02, Rubin LSSTCam and its precursor), puts sentinels into
its detections, upper limits and forced photometry (-999, -1006.94, -99999, +-1e308, NaN, +-inf, 0,
negative values, null, a field taken out, any float), decodes it again through its survey's codec and
annotates it in a batch with other real alerts. The annotator must return without raising (numpy's
floating-point warnings raised as errors, so none is left unhandled), and no annotation of any alert of
the batch may hold NaN or an infinity, anywhere in its nested values: what cannot be computed is None.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from starling.alert.model import Alert
from starling.components.annotators.catalog_index import CatalogIndex
from starling.core.component import Annotator, RunContext
from starling.core.registry import build_component
from tests.support.sentinels import mutations, non_finite, real_alerts, renormalized, with_sentinels

pytestmark = pytest.mark.samples

SENTINEL_SETTINGS = settings(
    max_examples=int(os.environ.get("STARLING_SENTINEL_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ANNOTATORS = ("history-summary", "lc-features", "solar-system", "watchlists", "watchmaps", "xmatch")
# Each writes for every alert (the others only for alerts that match something).
ALWAYS_WRITES = ("history-summary", "lc-features", "solar-system", "xmatch")


@pytest.fixture(scope="module")
def alerts(samples: Path) -> tuple[Alert, ...]:
    return real_alerts(samples / "realworld")


def _catalogue(folder: Path, alerts: Sequence[Alert]) -> None:
    """A catalogue with a row at every real alert's position; its carried magnitude is NaN for every
    other row (as Gaia's photometry is for sources it could not measure)."""
    CatalogIndex.build(
        folder / "near",
        "near",
        [a.ra for a in alerts],
        [a.dec for a in alerts],
        np.arange(len(alerts)),
        columns={"mag": [math.nan if i % 2 else 18.0 + i / 100 for i in range(len(alerts))]},
        max_radius_arcsec=5.0,
    )


def _configs(alerts: Sequence[Alert], catalogs: Path) -> dict[str, dict[str, Any]]:
    targets = [{"name": f"target-{i}", "ra": a.ra, "dec": a.dec} for i, a in enumerate(alerts)]
    return {
        "history-summary": {},
        "lc-features": {},
        "solar-system": {},
        "watchlists": {"lists": [{"name": "real", "default_radius_arcsec": 3.0, "targets": targets}]},
        "watchmaps": {"maps": [{"name": "sky", "moc": {"0": list(range(12))}}]},
        "xmatch": {"catalogs": [{"name": "near", "radius_arcsec": 2.0}], "directory": str(catalogs)},
    }


@pytest.fixture(scope="module")
def annotators(
    alerts: tuple[Alert, ...], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("annotators")
    _catalogue(folder / "catalogs", alerts)
    built = {
        name: build_component(name, config) for name, config in _configs(alerts, folder / "catalogs").items()
    }
    for annotator in built.values():
        annotator.setup(RunContext(output_dir=folder))
    yield built
    for annotator in built.values():
        annotator.close()


def _annotate_strictly(annotator: Annotator[Any], batch: Sequence[Alert]) -> None:
    """Annotate with numpy's floating-point errors and every warning raised, so none goes unhandled."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        annotator.annotate(batch)


def _assert_total(name: str, batch: Sequence[Alert]) -> None:
    for alert in batch:
        annotation = alert.annotations.get(name)
        assert annotation is not None or name not in ALWAYS_WRITES, f"{name} wrote nothing for {alert}"
        assert list(non_finite(annotation)) == [], f"{name} on {alert}"
        json.dumps(annotation, allow_nan=False)  # what the store writes, as strict JSON


@pytest.mark.parametrize("name", ANNOTATORS)
@given(data=st.data())
@SENTINEL_SETTINGS
def test_an_annotator_is_total_on_real_alerts_with_sentinels(
    name: str, alerts: tuple[Alert, ...], annotators: dict[str, Any], data: st.DataObject
) -> None:
    alert = data.draw(st.sampled_from(alerts), label="alert")
    changes = data.draw(mutations(alert.survey), label="changes")
    others = data.draw(st.lists(st.sampled_from(alerts), max_size=3), label="others")
    note(f"{alert.survey} {alert.object_id} {alert.origin}")
    mutated = renormalized(alert, with_sentinels(alert.record, alert.survey, changes))
    batch = [mutated, *(renormalized(other) for other in others)]
    _annotate_strictly(annotators[name], batch)
    _assert_total(name, batch)


@pytest.mark.parametrize("name", ["watchlists", "watchmaps", "xmatch"])
@pytest.mark.parametrize(
    ("ra", "dec"),
    [
        (math.nan, 10.0), (10.0, math.nan), (math.inf, 0.0), (0.0, -math.inf), (10.0, -999.0),
        (-1006.94, 95.0), (1e308, -1e308),
    ],
)  # fmt: skip
def test_a_position_that_is_no_position_matches_nothing_and_spoils_no_other_alert(
    name: str, ra: float, dec: float, alerts: tuple[Alert, ...], annotators: dict[str, Any]
) -> None:
    """The codecs refuse such an alert, but an annotator must not trust that: the HEALPix code panics on
    a NaN latitude (a Rust panic, not an Exception) and astropy refuses |dec| > 90."""
    batch = [renormalized(a) for a in alerts[:3]]
    batch[1].ra, batch[1].dec = ra, dec
    _annotate_strictly(annotators[name], batch)
    _assert_total(name, batch)
    assert name not in batch[1].annotations or batch[1].annotations[name] == {"near": {"count": 0}}
    for good in (batch[0], batch[2]):
        assert name in good.annotations  # each sits on its own target, in the sky, on its catalogue row


def test_a_catalogue_nan_is_an_absent_column(alerts: tuple[Alert, ...], annotators: dict[str, Any]) -> None:
    batch = [renormalized(a) for a in alerts[:2]]
    _annotate_strictly(annotators["xmatch"], batch)
    first, second = (a.annotations["xmatch"]["near"] for a in batch)
    assert (first["id"], second["id"]) == (0, 1)
    assert first["mag"] == pytest.approx(18.0)
    assert second["mag"] is None
