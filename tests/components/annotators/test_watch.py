"""Watchlists and watchmaps at their edges: just inside and just outside a target's radius, each side
of a MOC boundary, at the poles, across RA 0/360; and a probability map cut at a credible level."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from cdshealpix import nested
from mocpy import MOC

from starling.adql.language import compile_filter
from starling.alert.model import Alert
from starling.components.annotators.watch import (
    Watchlists,
    WatchlistsConfig,
    Watchmaps,
    WatchmapsConfig,
    moc_from_upload,
)
from starling.core.component import RunContext
from tests.support.helpers import synthetic_alerts


def _at(positions: list[tuple[float, float]]) -> list[Alert]:
    alerts = synthetic_alerts(len(positions))[: len(positions)]
    for alert, (ra, dec) in zip(alerts, positions, strict=True):
        alert.ra, alert.dec = ra, dec
    return alerts


def _offset(ra: float, dec: float, arcsec: float, angle: float = 30.0) -> tuple[float, float]:
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(angle * u.deg, arcsec * u.arcsec)
    return float(moved.ra.deg), float(moved.dec.deg)


def test_watchlist_edges(tmp_path: Path) -> None:
    targets = [
        {"name": "SN-a", "ra": 150.1, "dec": 2.2},  # the list's 2"
        {"name": "pole", "ra": 10.0, "dec": 89.9995, "radius_arcsec": 5.0},
        {"name": "wrap", "ra": 359.9996, "dec": -0.0004, "radius_arcsec": 4.0},
    ]
    positions = [
        _offset(150.1, 2.2, 1.99),  # just inside SN-a
        _offset(150.1, 2.2, 2.01),  # just outside
        _offset(10.0, 89.9995, 4.9, angle=180.0),  # across the pole, inside
        _offset(10.0, 89.9995, 5.1, angle=0.0),  # beyond the pole, outside
        (0.0003, 0.0002),  # across RA 0/360: 2.9" from "wrap"
        (0.0020, 0.0002),  # 8.5" from "wrap"
    ]
    alerts = _at(positions)
    component = Watchlists(
        WatchlistsConfig(lists=[{"name": "mine", "default_radius_arcsec": 2.0, "targets": targets}]),
        "watchlists",
    )
    component.setup(RunContext(output_dir=tmp_path))
    component.annotate(alerts)
    marked = [a.annotations.get("watchlists", {}).get("mine", {}).get("target") for a in alerts]
    assert marked == ["SN-a", None, "pole", None, "wrap", None]
    assert alerts[0].annotations["watchlists"]["mine"]["dist_arcsec"] == pytest.approx(1.99, abs=1e-4)
    assert alerts[4].annotations["watchlists"]["mine"]["dist_arcsec"] == pytest.approx(
        SkyCoord(0.0003 * u.deg, 0.0002 * u.deg)
        .separation(SkyCoord(359.9996 * u.deg, -0.0004 * u.deg))
        .arcsec,
        abs=1e-6,
    )
    kept = compile_filter("watchlists.mine.count >= 1").evaluate_alerts(alerts)
    assert list(kept) == [m is not None for m in marked]
    component.close()


def _edge_points(depth: int, cell: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two points a hair either side of the middle of one edge of a HEALPix cell."""
    lon, lat = nested.vertices(np.array([cell]), depth)
    corners = SkyCoord(lon[0], lat[0])
    centre_lon, centre_lat = nested.healpix_to_lonlat(np.array([cell]), depth)
    centre = SkyCoord(centre_lon[0], centre_lat[0])
    a, b = corners[0], corners[1]
    middle = a.directional_offset_by(a.position_angle(b), a.separation(b) / 2)
    towards = middle.position_angle(centre)
    inside = middle.directional_offset_by(towards, 0.5 * u.arcsec)
    outside = middle.directional_offset_by(towards + 180 * u.deg, 0.5 * u.arcsec)
    return (inside.ra.deg, inside.dec.deg), (outside.ra.deg, outside.dec.deg)


def test_watchmap_boundary_poles_and_wrap(tmp_path: Path) -> None:
    depth, cell = 8, 123_456
    inside, outside = _edge_points(depth, cell)
    square = {str(depth): [cell]}
    polar = moc_from_upload(
        "moc-json",
        MOC.from_cone(lon=0 * u.deg, lat=90 * u.deg, radius=2 * u.deg, max_depth=10).serialize(format="json"),
    )
    equator = MOC.from_cone(lon=0 * u.deg, lat=0 * u.deg, radius=1 * u.deg, max_depth=10)
    equator.save(tmp_path / "equator.fits", format="fits")
    wrap = moc_from_upload("moc-fits", (tmp_path / "equator.fits").read_bytes())
    maps = [{"name": "square", "moc": square}, {"name": "polar", "moc": polar}, {"name": "wrap", "moc": wrap}]
    component = Watchmaps(WatchmapsConfig(maps=maps), "watchmaps")
    component.setup(RunContext(output_dir=tmp_path))
    positions = [inside, outside, (123.0, 89.99), (0.0, 87.0), (359.5, 0.0), (0.5, 0.0), (1.5, 0.0)]
    alerts = _at(positions)
    component.annotate(alerts)
    found = [sorted(a.annotations.get("watchmaps", {})) for a in alerts]
    assert found == [["square"], [], ["polar"], [], ["wrap"], ["wrap"], []]
    kept = compile_filter("watchmaps.polar.inside = 1").evaluate_alerts(alerts)
    assert list(kept) == [False, False, True, False, False, False, False]


def test_a_probability_map_is_cut_at_its_credible_level(tmp_path: Path) -> None:
    depth = 6
    cells = np.arange(12 * 4**depth)
    lon, lat = nested.healpix_to_lonlat(cells, depth)
    centre = SkyCoord(40 * u.deg, -20 * u.deg)
    separation = SkyCoord(lon, lat).separation(centre).deg
    probability = np.exp(-0.5 * (separation / 3.0) ** 2)
    probability /= probability.sum()
    column = fits.Column(name="PROB", format="D", array=probability)
    table = fits.BinTableHDU.from_columns([column])
    table.header["ORDERING"] = "NESTED"
    table.header["NSIDE"] = 2**depth
    path = tmp_path / "skymap.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    ninety = MOC.from_json(moc_from_upload("skymap", path.read_bytes(), credible_level=0.9))
    fifty = MOC.from_json(moc_from_upload("skymap", path.read_bytes(), credible_level=0.5))
    assert fifty.sky_fraction < ninety.sky_fraction
    # The 90% region of a 3-degree Gaussian reaches about 6.4 degrees out: 4 degrees is in, 10 is out.
    probe = centre.directional_offset_by(0 * u.deg, [0, 4, 10] * u.deg)
    assert list(ninety.contains_lonlat(probe.ra, probe.dec)) == [True, True, False]
    assert list(fifty.contains_lonlat(probe.ra, probe.dec)) == [True, False, False]
