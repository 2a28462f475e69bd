"""Every localization kind through one interface, checked against brute-force HEALPix sums.

The brute force here is independent of mmstream's code paths: the densities are written
out again from their definitions (a Fisher cap holding c inside R; a tangent-plane Gaussian
whose ellipse holds c), evaluated on every pixel of a fine HEALPix grid, and summed or
sorted greedily with numpy. Agreement is asked within 1 %.
"""

from __future__ import annotations

import math

import healpy as hp
import numpy as np
import pytest

from mmstream.model import Circle, Ellipse, FlatSkyMap
from mmstream.sky import localization as sky
from mmstream.sky.flat import read_skymap_bytes
from tests.conftest import SHARED_DATA

GBM = SHARED_DATA / "skymaps/growth-too-marshal/glg_healpix_all_bn180116026.fit"
BAYESTAR = SHARED_DATA / "skymaps/userguide/bayestar.multiorder.fits"
NSIDE = 2048  # 1.7 arcmin pixels


def _fisher(circle: Circle, vec: np.ndarray) -> np.ndarray:
    """The test's own Fisher density: κ from P(θ < R) = c, solved by bisection."""
    r = math.radians(circle.radius_deg)
    lo, hi = 1e-6, 1e9
    for _ in range(200):
        k = math.sqrt(lo * hi)
        held = (1 - math.exp(-k * (1 - math.cos(r)))) / (1 - math.exp(-2 * k))
        lo, hi = (k, hi) if held < circle.containment else (lo, k)
    centre = hp.ang2vec(circle.ra_deg, circle.dec_deg, lonlat=True)
    return k / (2 * math.pi * (1 - math.exp(-2 * k))) * np.exp(k * (vec @ centre - 1))


def _gauss(e: Ellipse, vec: np.ndarray) -> np.ndarray:
    """The test's own tangent-plane Gaussian (gnomonic axes, small angles)."""
    scale = math.sqrt(-2 * math.log(1 - e.containment))
    sa, sb = math.radians(e.semi_major_deg) / scale, math.radians(e.semi_minor_deg) / scale
    ra0, dec0, pa = (math.radians(x) for x in (e.ra_deg, e.dec_deg, e.position_angle_deg))
    east = np.array([-math.sin(ra0), math.cos(ra0), 0.0])
    north = np.array([-math.sin(dec0) * math.cos(ra0), -math.sin(dec0) * math.sin(ra0),
                      math.cos(dec0)])  # fmt: skip
    x, y = vec @ east, vec @ north  # radians, near the centre
    u = x * math.sin(pa) + y * math.cos(pa)
    v = x * math.cos(pa) - y * math.sin(pa)
    return np.exp(-0.5 * ((u / sa) ** 2 + (v / sb) ** 2)) / (2 * math.pi * sa * sb)


def _grid(ra: float, dec: float, radius_deg: float) -> tuple[np.ndarray, float]:
    pix = hp.query_disc(NSIDE, hp.ang2vec(ra, dec, lonlat=True), math.radians(radius_deg))
    return np.asarray(hp.pix2vec(NSIDE, pix)).T, hp.nside2pixarea(NSIDE)


def _greedy_area(dens: np.ndarray, pixarea: float, level: float) -> float:
    prob = np.sort(dens)[::-1] * pixarea
    n = np.searchsorted(np.cumsum(prob) / prob.sum(), level)
    return float(n * pixarea * (180 / math.pi) ** 2)


CIRCLES = [
    Circle(40.0, 30.0, 1.0, 0.9),
    Circle(200.0, -70.0, 3.0, 0.5),
    Circle(0.0, 0.0, 0.3, 0.68),
]
ELLIPSES = [Ellipse(120.0, 10.0, 2.0, 0.8, 35.0, 0.9), Ellipse(300.0, -45.0, 1.0, 1.0, 0.0, 0.68)]


@pytest.mark.parametrize("circle", CIRCLES, ids=str)
def test_a_circle_holds_its_containment_and_its_areas_match_brute_force(circle: Circle) -> None:
    cap = 2 * math.pi * (1 - math.cos(math.radians(circle.radius_deg))) * (180 / math.pi) ** 2
    assert sky.credible_area_deg2(circle, circle.containment) == pytest.approx(cap, rel=1e-6)
    _, level = sky.density_and_level(circle, np.array([circle.ra_deg]),
                                     np.array([circle.dec_deg + circle.radius_deg]))  # fmt: skip
    assert level[0] == pytest.approx(circle.containment, rel=1e-6)
    vec, pixarea = _grid(circle.ra_deg, circle.dec_deg, 6 * circle.radius_deg)
    dens = _fisher(circle, vec)
    for lvl in (0.5, 0.9):
        assert sky.credible_area_deg2(circle, lvl) == pytest.approx(
            _greedy_area(dens, pixarea, lvl), rel=0.01
        )
    lon, lat = hp.vec2ang(vec[::97], lonlat=True)
    np.testing.assert_allclose(sky.density_and_level(circle, lon, lat)[0], dens[::97], rtol=1e-6)


@pytest.mark.parametrize("ellipse", ELLIPSES, ids=str)
def test_an_ellipse_matches_a_brute_force_gaussian(ellipse: Ellipse) -> None:
    vec, pixarea = _grid(ellipse.ra_deg, ellipse.dec_deg, 4 * ellipse.semi_major_deg)
    dens = _gauss(ellipse, vec)
    assert dens.sum() * pixarea == pytest.approx(1.0, rel=0.01)
    held = math.pi * ellipse.semi_major_deg * ellipse.semi_minor_deg
    assert sky.credible_area_deg2(ellipse, ellipse.containment) == pytest.approx(held, rel=0.01)
    for lvl in (0.5, 0.9):
        assert sky.credible_area_deg2(ellipse, lvl) == pytest.approx(
            _greedy_area(dens, pixarea, lvl), rel=0.01
        )
    lon, lat = hp.vec2ang(vec[::53], lonlat=True)
    got = sky.density_and_level(ellipse, lon, lat)[0]
    big = dens[::53] > dens.max() * 1e-3  # where the density is not a far tail
    np.testing.assert_allclose(got[big], dens[::53][big], rtol=0.01)


def test_overlaps_of_shapes_match_brute_force_sums() -> None:
    a, b = Circle(40.0, 30.0, 1.0, 0.9), Circle(41.0, 30.5, 2.0, 0.9)
    e = Ellipse(40.5, 30.0, 2.0, 0.8, 35.0, 0.9)
    vec, pixarea = _grid(40.5, 30.2, 10.0)
    fa, fb, fe = _fisher(a, vec), _fisher(b, vec), _gauss(e, vec)
    for x, y, fx, fy in ((a, b, fa, fb), (a, e, fa, fe), (e, b, fe, fb), (e, e, fe, fe)):
        brute = 4 * math.pi * np.sum(fx * fy) * pixarea
        assert sky.overlap_integral(x, y) == pytest.approx(brute, rel=0.01), (x, y)
    assert sky.overlap_integral(a, None) == 1.0


def test_a_circle_against_a_flat_gbm_map_matches_a_brute_force_sum() -> None:
    gbm = read_skymap_bytes(GBM.read_bytes())
    assert isinstance(gbm, FlatSkyMap)
    ra0, dec0 = sky.centre(gbm) or (0.0, 0.0)
    nest = hp.reorder(gbm.prob, r2n=True) if not gbm.nest else gbm.prob
    fine = hp.ud_grade(nest, NSIDE, order_in="NESTED", order_out="RING", power=-2)
    fine_density = fine / hp.nside2pixarea(NSIDE)
    for circle in (Circle(ra0 + 5.0, dec0, 3.0, 0.9), Circle(ra0, dec0 - 10, 0.5, 0.9)):
        vec, pixarea = _grid(circle.ra_deg, circle.dec_deg, 8 * circle.radius_deg)
        pix = hp.vec2pix(NSIDE, *vec.T)
        brute = 4 * math.pi * np.sum(_fisher(circle, vec) * fine_density[pix]) * pixarea
        assert sky.overlap_integral(circle, gbm) == pytest.approx(brute, rel=0.01)
        assert sky.overlap_integral(gbm, circle) == sky.overlap_integral(circle, gbm)


def test_psf_convolution_of_a_circle_matches_a_brute_force_integral() -> None:
    circle = Circle(10.0, -20.0, 1.5, 0.9)
    events = [(10.0, -20.0, 1.0), (12.0, -19.0, 0.5), (10.3, -20.2, 3.0)]
    vec, pixarea = _grid(10.0, -20.0, 20.0)
    f = _fisher(circle, vec)
    for ra, dec, sigma in events:
        psf = _fisher(Circle(ra, dec, sigma * math.sqrt(-2 * math.log(0.1)), 0.9), vec)
        brute = np.sum(f * psf) * pixarea
        got = sky.psf_density(circle, np.array([ra]), np.array([dec]), np.array([sigma]))[0]
        assert got == pytest.approx(brute, rel=0.01)


def test_no_localization_is_uniform() -> None:
    dens, level = sky.density_and_level(None, np.array([0.0, 100.0]), np.array([0.0, -50.0]))
    assert np.allclose(dens, 1 / (4 * math.pi)) and np.all(level == 1.0)
    assert sky.describe(None) == {"kind": "none"}
    assert sky.credible_area_deg2(None, 0.5) == pytest.approx(41252.96 / 2, rel=1e-4)


def test_describe_says_what_a_result_used() -> None:
    d = sky.describe(Circle(10.0, 20.0, 0.5, 0.9))
    assert d["kind"] == "circle" and d["radius_deg"] == 0.5 and d["containment"] == 0.9
    assert d["ra_deg"] == 10.0 and d["dec_deg"] == 20.0
    assert d["area90_deg2"] == pytest.approx(math.pi * 0.25, rel=1e-3)
    m = read_skymap_bytes(BAYESTAR.read_bytes())
    dm = sky.describe(m)
    assert dm["kind"] == "multiorder" and dm["tiles"] == m.uniq.size
