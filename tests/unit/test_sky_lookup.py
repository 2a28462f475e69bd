"""The lookup kernel (sky/lookup.py) and the overlap with flat maps (sky/overlap.py) against
independent computations: every pixel of a common fine grid, summed with numpy and healpy."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest

from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky import lookup
from mmstream.sky.credible import credible_area_deg2, density_and_level
from mmstream.sky.moc import gaussian_moc
from mmstream.sky.overlap import overlap_integral
from mmstream.sky.ranges import rasterize


def _flat_gaussian(nside: int, ra: float, dec: float, sigma: float, nest: bool) -> FlatSkyMap:
    """A flat map made with healpy alone: exp(-d^2 / 2 sigma^2) at each pixel centre."""
    vec = hp.pix2vec(nside, np.arange(hp.nside2npix(nside)), nest=nest)
    centre = hp.ang2vec(ra, dec, lonlat=True)
    d = np.degrees(np.arccos(np.clip(np.dot(centre, vec), -1, 1)))
    prob = np.exp(-0.5 * (d / sigma) ** 2)
    return FlatSkyMap(nside, nest, prob / prob.sum())


def _brute_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """4π Σ p_a p_b / area over one nested grid (each a probability per pixel)."""
    area = 4 * np.pi / a.size
    return float(4 * np.pi * np.sum((a / a.sum()) * (b / b.sum())) / area)


def _on_grid(m: FlatSkyMap, nside: int) -> np.ndarray:
    nested = m.prob if m.nest else hp.reorder(m.prob, r2n=True)
    return np.asarray(hp.ud_grade(nested, nside, order_in="NESTED", order_out="NESTED",
                                  power=-2))  # fmt: skip


@pytest.mark.parametrize("nest", [True, False])
def test_a_multi_order_map_against_a_flat_one(nest: bool) -> None:
    moc = gaussian_moc(40.0, 20.0, 3.0, max_order=9)
    flat = _flat_gaussian(64, 45.0, 18.0, 6.0, nest)
    fine = rasterize(moc, 9).prob  # order 9: as fine as the map's tiles
    expected = _brute_overlap(fine, _on_grid(flat, 512))
    assert overlap_integral(moc, flat) == pytest.approx(expected, rel=1e-9)
    assert overlap_integral(flat, moc) == pytest.approx(expected, rel=1e-9)


def test_two_flat_maps_of_different_resolutions() -> None:
    a = _flat_gaussian(32, 200.0, -30.0, 8.0, nest=False)
    b = _flat_gaussian(128, 205.0, -25.0, 5.0, nest=True)
    expected = _brute_overlap(_on_grid(a, 128), _on_grid(b, 128))
    assert overlap_integral(a, b) == pytest.approx(expected, rel=1e-9)
    assert overlap_integral(b, a) == pytest.approx(expected, rel=1e-9)


def test_far_tails_do_not_cancel() -> None:
    """Two maps that barely meet: the overlap is carried by tiny probabilities."""
    moc = gaussian_moc(0.0, 60.0, 1.0, max_order=10)
    flat = _flat_gaussian(128, 0.0, -10.0, 4.0, nest=True)
    fine = rasterize(moc, 10).prob
    expected = _brute_overlap(fine, _on_grid(flat, 1024))
    assert 0 < expected < 1e-6
    assert overlap_integral(moc, flat) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("nest", [True, False])
def test_a_flat_map_level_is_the_probability_of_every_pixel_at_least_as_dense(nest: bool) -> None:
    m = _flat_gaussian(64, 120.0, -40.0, 10.0, nest)
    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(0, 360, 500), np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    dens, level = density_and_level(m, ra, dec)
    pix = hp.ang2pix(64, ra, dec, nest=nest, lonlat=True)
    expected = [m.prob[m.prob >= m.prob[p]].sum() for p in pix]  # one pixel at a time
    assert np.allclose(level, expected, rtol=0, atol=1e-12)
    assert np.allclose(dens, m.prob[pix] / hp.nside2pixarea(64), rtol=1e-15)


def test_a_multi_order_level_matches_a_sort_of_its_tiles() -> None:
    moc = gaussian_moc(300.0, 5.0, 2.0, max_order=10)
    fine = rasterize(moc, 10)  # every pixel at the deepest order, densities as the tiles'
    rng = np.random.default_rng(6)
    ra, dec = rng.uniform(290, 310, 300), rng.uniform(-5, 15, 300)
    _, level = density_and_level(moc, ra, dec)
    pix = hp.ang2pix(1024, ra, dec, nest=True, lonlat=True)
    dens = fine.prob / fine.prob.sum()
    order = np.argsort(-dens, kind="stable")
    cum = np.cumsum(dens[order])
    expected = cum[np.searchsorted(-dens[order], -dens[pix], side="right") - 1]
    assert np.allclose(level, expected, rtol=0, atol=1e-9)


def _whole_sky_and_near(ra: float, dec: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n positions over the whole sky and n within a few degrees of (ra, dec), where a
    map's tiles are finest."""
    rng = np.random.default_rng(11)
    ra_all = np.concatenate([rng.uniform(0, 360, n), ra + rng.normal(0, 3, n)]) % 360
    dec_all = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                              np.clip(dec + rng.normal(0, 3, n), -90, 90)])  # fmt: skip
    return ra_all, dec_all


@pytest.mark.parametrize(
    ("max_order", "kept"),
    [(10, 1.0), (4, 1.0), (10, 0.7)],
    ids=["deeper than the index", "coarser than the index", "a map with holes"],
)
def test_many_positions_find_their_tile(max_order: int, kept: float) -> None:
    """Enough positions for the coarse index (lookup.INDEXED_FROM): each gets the density
    of the one tile holding it, found order by order from the tiles' own UNIQ numbers,
    and the probability of every tile at least as dense; outside the map's tiles 0 and 1."""
    whole = gaussian_moc(300.0, 5.0, 2.0, max_order=max_order)
    held = np.random.default_rng(3).random(whole.uniq.size) < kept
    moc = MultiOrderSkyMap(whole.uniq[held], whole.probdensity[held])
    assert np.all(np.diff(moc.uniq) > 0)
    ra, dec = _whole_sky_and_near(300.0, 5.0, 30_000)
    assert ra.size >= lookup.INDEXED_FROM  # the coarse index's path
    dens, level = density_and_level(moc, ra, dec)
    order = np.floor(np.log2(moc.uniq // 4) / 2).astype(np.int64)
    prob = moc.probdensity * 4 * np.pi / (12 * 4.0**order)
    tile = np.full(ra.size, -1)
    for o in np.unique(order):
        uniq = 4 * 4**o + hp.ang2pix(1 << o, ra, dec, nest=True, lonlat=True)
        i = np.searchsorted(moc.uniq, uniq)  # the test's map is sorted by UNIQ
        hit = (i < moc.uniq.size) & (moc.uniq[np.minimum(i, moc.uniq.size - 1)] == uniq)
        assert not np.any(hit & (tile >= 0))  # tiles are disjoint
        tile[hit] = i[hit]
    assert (tile < 0).any() == (kept < 1)
    inside = tile >= 0
    assert np.array_equal(dens[inside], moc.probdensity[tile[inside]])
    assert np.all(dens[~inside] == 0) and np.all(level[~inside] == 1)
    desc = np.argsort(-moc.probdensity)
    cum = np.cumsum(prob[desc]) / prob.sum()
    # each tile's level: the running sum up to the last tile of a density at least its own
    expected = cum[np.searchsorted(-moc.probdensity[desc], -dens[inside], side="right") - 1]
    assert np.allclose(level[inside], expected, rtol=0, atol=1e-12)


def test_tiles_of_equal_density_share_one_level_and_areas_end_on_whole_tiles() -> None:
    """Order-1 and order-2 tiles drawn from four densities (ties across orders): a tile's
    level is the probability of every tile at least as dense, counted tile by tile, and the
    credible area at such a level is those tiles' area."""
    coarse = np.arange(4 * 4, 4 * 4 + 40, dtype=np.int64)  # order 1, tiles 0..39
    fine = np.arange(4 * 16 + 160, 4 * 16 + 192, dtype=np.int64)  # order 2: tiles 40..47
    uniq = np.concatenate([coarse, fine])
    values = np.array([1.0, 3.0, 3.0, 7.0])
    dens = values[np.random.default_rng(7).integers(0, 4, uniq.size)]
    area = np.where(uniq < 64, 4 * np.pi / 48, 4 * np.pi / 192)
    moc = MultiOrderSkyMap(uniq, dens / np.sum(dens * area))
    prob = moc.probdensity * area
    nside = np.where(uniq < 64, 2, 4)
    ra, dec = hp.pix2ang(nside, uniq - 4 * nside**2, nest=True, lonlat=True)  # tile centres
    _, level = density_and_level(moc, ra, dec)
    expected = [prob[moc.probdensity >= d].sum() for d in moc.probdensity]
    assert np.allclose(level, expected, rtol=0, atol=1e-12)
    for d in values[1:]:
        held = moc.probdensity >= d / np.sum(dens * area)
        expected_deg2 = area[held].sum() * (180 / np.pi) ** 2
        assert credible_area_deg2(moc, prob[held].sum()) == pytest.approx(expected_deg2, rel=1e-9)


@pytest.mark.parametrize("level", [0.5, 0.9, 0.999999, 1.0])
def test_a_flat_maps_credible_area_is_that_of_its_densest_pixels(level: float) -> None:
    """Against a sort of every pixel (the area found from the densest pixels alone): a
    narrow blob whose far pixels are tiny or exactly 0, so every level needs a different
    share of the map."""
    m = _flat_gaussian(128, 30.0, 40.0, 2.0, nest=True)
    prob = np.where(m.prob < 1e-30, 0.0, m.prob)
    m = FlatSkyMap(128, True, prob / prob.sum())
    desc = np.sort(m.prob)[::-1]
    cum = np.cumsum(desc) / desc.sum()
    k = int(np.searchsorted(cum, level))  # pixels wholly inside, then a share of the next
    before = cum[k - 1] if k else 0.0
    pixels = k + (level - before) / desc[k] if k < desc.size and desc[k] > 0 else k
    expected = pixels * hp.nside2pixarea(128, degrees=True)
    assert credible_area_deg2(m, level) == pytest.approx(expected, rel=1e-9)
