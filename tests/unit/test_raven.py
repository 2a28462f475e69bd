"""RAVEN's joint FARs and overlap integrals reproduce the reference values."""

import healpy as hp
import numpy as np
import pytest

from mmstream.model import FlatSkyMap
from mmstream.sky.credible import (
    credible_area_deg2,
    credible_level,
    probability_in_disc,
    probdensity,
)
from mmstream.sky.moc import gaussian_moc
from mmstream.sky.overlap import overlap_integral, overlap_with_point
from mmstream.sky.ranges import rasterize
from mmstream.stats.raven import (
    GRB_RATE_HZ,
    TARGETED_THRESHOLDS,
    spacetime_far,
    targeted_far,
    temporal_far,
)


def test_temporal_joint_far_reference() -> None:
    assert temporal_far((-1, 5), GRB_RATE_HZ, 1e-5) == pytest.approx(5.8980e-10, rel=1e-4)


def test_targeted_swift_reference() -> None:
    gw_max, ext_max = TARGETED_THRESHOLDS["Swift"]
    assert targeted_far((-30, 30), 1e-4, 1e-7, ext_max, gw_max) == pytest.approx(
        5.2482e-9, rel=1e-4
    )


def test_spacetime_far_divides_by_overlap() -> None:
    assert spacetime_far(1e-9, 4.0) == 2.5e-10
    assert spacetime_far(1e-9, 0.0) == float("inf")


def half_skies(nside: int = 32) -> tuple[FlatSkyMap, FlatSkyMap]:
    """Two complementary maps, each uniform on exactly half the pixels."""
    npix = hp.nside2npix(nside)
    theta, phi = hp.pix2ang(nside, np.arange(npix), nest=True)
    north = (theta < np.pi / 2 - 1e-9) | ((np.abs(theta - np.pi / 2) < 1e-9) & (phi < np.pi))
    assert north.sum() == npix // 2
    return (
        FlatSkyMap(nside, True, north / north.sum()),
        FlatSkyMap(nside, True, ~north / (~north).sum()),
    )


def test_overlap_reference_values() -> None:
    north, south = half_skies()
    allsky = FlatSkyMap(16, False, np.full(hp.nside2npix(16), 1 / hp.nside2npix(16)))
    blob = gaussian_moc(100.0, 20.0, 4.0)
    assert overlap_integral(allsky, blob) == pytest.approx(1.0, abs=1e-9)
    assert overlap_integral(north, north) == pytest.approx(2.0, abs=1e-9)
    assert overlap_integral(north, south) == pytest.approx(0.0, abs=1e-12)
    far_blob = gaussian_moc(280.0, -20.0, 2.0)
    assert overlap_integral(blob, far_blob) < 1e-6


def test_multi_order_equals_flat_on_the_same_map() -> None:
    moc = gaussian_moc(45.0, -10.0, 3.0, max_order=8)
    flat = rasterize(moc, 8)
    other = gaussian_moc(47.0, -12.0, 5.0, max_order=7)
    assert overlap_integral(moc, other) == pytest.approx(overlap_integral(flat, other), rel=1e-6)
    for level in (0.5, 0.9):
        assert credible_area_deg2(moc, level) == pytest.approx(
            credible_area_deg2(flat, level), rel=1e-6
        )
    ra, dec = np.array([45.0, 46.0, 50.0]), np.array([-10.0, -11.0, -5.0])
    np.testing.assert_allclose(probdensity(moc, ra, dec), probdensity(flat, ra, dec), rtol=1e-6)
    np.testing.assert_allclose(
        credible_level(moc, ra, dec), credible_level(flat, ra, dec), rtol=1e-6
    )
    assert probability_in_disc(moc, 45.0, -10.0, 3.0) == pytest.approx(
        probability_in_disc(flat, 45.0, -10.0, 3.0), rel=1e-6
    )
    ring = FlatSkyMap(flat.nside, False, hp.reorder(flat.prob, n2r=True))
    assert overlap_integral(ring, other) == pytest.approx(overlap_integral(flat, other), rel=1e-9)


def test_map_against_point_and_gaussian_area() -> None:
    blob = gaussian_moc(10.0, 10.0, 2.0, max_order=10)
    assert overlap_with_point(blob, 10.0, 10.0) == pytest.approx(
        4 * np.pi * probdensity(blob, np.array([10.0]), np.array([10.0]))[0]
    )
    # 90 % of a 2-D Gaussian lies within sqrt(-2 ln 0.1) sigma: area π r².
    r = 2.0 * np.sqrt(-2 * np.log(0.1))
    assert credible_area_deg2(blob, 0.9) == pytest.approx(np.pi * r**2, rel=0.02)
