"""The catalogue index against astropy: the same pairs as ``search_around_sky``, the same nearest row
as ``match_coordinates_sky``, at real alert positions, at the poles and across RA 0/360."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky

from starling.components.annotators.catalog_index import CatalogIndex, depth_for_radius
from tests.support.helpers import decode_samples


def _offset(
    ra: np.ndarray, dec: np.ndarray, distance_arcsec: np.ndarray, angle_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(
        angle_deg * u.deg, distance_arcsec * u.arcsec
    )
    return moved.ra.deg, moved.dec.deg


def _positions(samples: Path) -> tuple[np.ndarray, np.ndarray]:
    alerts = decode_samples(samples)
    ra = np.array([a.ra for a in alerts] + [0.0001, 359.9999, 180.0, 12.0, 45.0])
    dec = np.array([a.dec for a in alerts] + [10.0, 10.0, 89.9999, -89.9995, 0.0])
    return ra, dec


@pytest.mark.samples
def test_the_index_finds_what_astropy_finds(samples: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ra0, dec0 = _positions(samples)
    # Around each position, rows at distances from 0.05" to 4" in every direction; and a random sky.
    k = 40
    near_ra, near_dec = _offset(
        np.repeat(ra0, k),
        np.repeat(dec0, k),
        rng.uniform(0.05, 4.0, ra0.size * k),
        rng.uniform(0, 360, ra0.size * k),
    )
    sky_ra, sky_dec = rng.uniform(0, 360, 200_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 200_000)))
    cat_ra, cat_dec = np.concatenate([near_ra, sky_ra]), np.concatenate([near_dec, sky_dec])
    ids = np.array([f"row{i}" for i in range(cat_ra.size)])
    index = CatalogIndex.build(
        tmp_path / "test", "test", cat_ra, cat_dec, ids, {"g": np.arange(cat_ra.size) * 0.5}
    )
    assert index.depth == depth_for_radius(5.0)

    # Query the positions themselves and points scattered round them.
    q_ra, q_dec = _offset(
        np.repeat(ra0, 5),
        np.repeat(dec0, 5),
        rng.uniform(0, 3, ra0.size * 5),
        rng.uniform(0, 360, ra0.size * 5),
    )
    q_ra, q_dec = np.concatenate([ra0, q_ra]), np.concatenate([dec0, q_dec])
    catalogue, queries = SkyCoord(cat_ra * u.deg, cat_dec * u.deg), SkyCoord(q_ra * u.deg, q_dec * u.deg)
    for radius in (1.0, 2.5, 5.0):
        found = index.search(q_ra, q_dec, radius)
        qi, ci, _, _ = search_around_sky(queries, catalogue, radius * u.arcsec)
        ours = {(int(q), str(index.ids[int(r)])) for q, r in zip(found.pairs[0], found.pairs[1], strict=True)}
        theirs = {(int(q), str(ids[int(c)])) for q, c in zip(qi, ci, strict=True)}
        assert ours == theirs, radius
        assert np.array_equal(found.count, np.bincount(qi, minlength=q_ra.size))
        nearest, separation, _ = match_coordinates_sky(queries, catalogue)
        within = separation.arcsec <= radius
        assert np.array_equal(found.nearest >= 0, within)
        assert [index.ids[r] for r in found.nearest[within]] == [ids[c] for c in nearest[within]]
        assert np.allclose(found.distance_arcsec[within], separation.arcsec[within], atol=1e-6)
    assert index.row(0)["id"].startswith("row")
    # Opened again from disk, memory-mapped: the same answers.
    again = CatalogIndex(tmp_path / "test")
    assert np.array_equal(again.search(q_ra, q_dec, 2.0).nearest, index.search(q_ra, q_dec, 2.0).nearest)


def test_a_radius_beyond_the_index_is_refused(tmp_path: Path) -> None:
    index = CatalogIndex.build(tmp_path / "c", "c", [10.0], [20.0], ["a"], max_radius_arcsec=2.0)
    with pytest.raises(ValueError, match=r"up to 2\.0 arcsec"):
        index.search([10.0], [20.0], 3.0)
    with pytest.raises(ValueError, match="no valid position"):
        CatalogIndex.build(tmp_path / "d", "d", [10.0, np.nan], [20.0, 0.0], ["a", "b"])
