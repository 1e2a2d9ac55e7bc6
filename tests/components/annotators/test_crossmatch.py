"""``starling catalog add`` (CSV, FITS, Parquet) then the ``xmatch`` annotator in a pipeline, checked
against astropy's nearest match; the fields reach the filter language."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.table import Table
from typer.testing import CliRunner

from starling.adql.language import compile_filter
from starling.cli.app import app
from starling.components.annotators.crossmatch import Crossmatch, CrossmatchConfig
from starling.core.component import RunContext
from starling.errors import ConfigError
from tests.support.helpers import synthetic_alerts


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".parquet"])
def test_catalog_add_then_crossmatch(tmp_path: Path, suffix: str) -> None:
    alerts = synthetic_alerts(300)
    rng = np.random.default_rng(4)
    ra = np.array([a.ra for a in alerts])
    dec = np.array([a.dec for a in alerts])
    # Rows next to a third of the alerts (0.2" to 3" away), and a random sky of 20,000 rows.
    chosen = rng.choice(len(alerts), len(alerts) // 3, replace=False)
    moved = SkyCoord(ra[chosen] * u.deg, dec[chosen] * u.deg).directional_offset_by(
        rng.uniform(0, 360, chosen.size) * u.deg, rng.uniform(0.2, 3.0, chosen.size) * u.arcsec
    )
    cat_ra = np.concatenate([moved.ra.deg, rng.uniform(0, 360, 20_000)])
    cat_dec = np.concatenate([moved.dec.deg, np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000)))])
    table = Table(
        {
            "source_id": np.arange(cat_ra.size) + 10_000,
            "RA_ICRS": cat_ra,
            "DE_ICRS": cat_dec,
            "Gmag": rng.uniform(10, 20, cat_ra.size),
        }
    )
    source = tmp_path / f"gaia{suffix}"
    table.write(source)
    result = CliRunner().invoke(
        app,
        [
            "catalog",
            "add",
            "gaia",
            str(source),
            "--ra-column",
            "RA_ICRS",
            "--dec-column",
            "DE_ICRS",
            "--id-column",
            "source_id",
            "--columns",
            "Gmag",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(app, ["catalog", "list", "-o", str(tmp_path)])
    assert "gaia" in listed.output

    annotator = Crossmatch(CrossmatchConfig(catalogs=[{"name": "gaia", "radius_arcsec": 2.0}]), "xmatch")
    annotator.setup(RunContext(output_dir=tmp_path))
    annotator.annotate(alerts)
    nearest, separation, _ = match_coordinates_sky(
        SkyCoord(ra * u.deg, dec * u.deg), SkyCoord(cat_ra * u.deg, cat_dec * u.deg)
    )
    for alert, row, distance in zip(alerts, nearest, separation.arcsec, strict=True):
        found = alert.annotations["xmatch"]["gaia"]
        if distance <= 2.0:
            assert found["id"] == int(table["source_id"][row])
            assert found["dist_arcsec"] == pytest.approx(distance, abs=1e-6)
            assert found["Gmag"] == pytest.approx(float(table["Gmag"][row]))
            assert found["count"] >= 1
        else:
            assert found == {"count": 0}
    matched = sum(1 for a in alerts if a.annotations["xmatch"]["gaia"]["count"] > 0)
    assert 0 < matched < len(alerts)
    close = compile_filter("xmatch.gaia.dist_arcsec < 1 AND xmatch.gaia.Gmag < 18").evaluate_alerts(alerts)
    expected = [
        d < 1 and float(table["Gmag"][r]) < 18 for r, d in zip(nearest, separation.arcsec, strict=True)
    ]
    assert list(close) == expected
    assert list(compile_filter("xmatch.gaia.count = 0").evaluate_alerts(alerts)) == [
        d > 2 for d in separation.arcsec
    ]


def test_a_missing_catalogue_or_too_wide_a_radius_is_refused(tmp_path: Path) -> None:
    annotator = Crossmatch(CrossmatchConfig(catalogs=[{"name": "nope"}]), "xmatch")
    with pytest.raises(ConfigError, match="no catalogue 'nope'"):
        annotator.setup(RunContext(output_dir=tmp_path))
    result = CliRunner().invoke(
        app, ["catalog", "add", "x", str(tmp_path / "missing.csv"), "-o", str(tmp_path)]
    )
    assert result.exit_code == 2
