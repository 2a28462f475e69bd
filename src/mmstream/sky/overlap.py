"""Overlap integral of two sky localizations, as RAVEN defines it: I = 4π ∫ p1 p2 dΩ.

I is 1 when either map is uniform over the sky, about 1/f for two identical maps covering a
fraction f of the sky, and 0 for disjoint maps. Multi-order x multi-order is exact here
(every common sub-tile counted with its area), unlike a nearest-pixel match. With a flat map
the other map's tiles each take the flat probability inside them (sums between the tile
boundaries only), so an nside-2048 map costs one pass and no copy (unless it is in RING
order: then one nested copy).
"""

from __future__ import annotations

import healpy as hp
import numpy as np

from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.ranges import deepest_order, density_at_index, to_ranges

SkyMap = MultiOrderSkyMap | FlatSkyMap


def _normalization(
    r_start: np.ndarray, r_stop: np.ndarray, density: np.ndarray, area: float
) -> float:
    return float(np.sum(density * (r_stop - r_start)) * area)


def _nested(flat: FlatSkyMap) -> np.ndarray:
    """The flat map's probabilities in nested order (a ring map is reordered: one copy)."""
    return flat.prob if flat.nest else hp.reorder(flat.prob, r2n=True)


def _mass_in_ranges(
    prob: np.ndarray, order_of_prob: int, start: np.ndarray, stop: np.ndarray, order: int
) -> np.ndarray:
    """The flat (nested) map's probability inside each of the sorted, disjoint ranges
    [start, stop) of nested indices at ``order`` (≥ the map's own). A range finer than a
    flat pixel takes its share of that pixel; a coarser one covers whole pixels, summed
    directly (np.add.reduceat at the range boundaries: no cumulative copy of the map, and
    no difference of large prefix sums, which would cancel the tiny masses far from both
    maps' peaks)."""
    q = np.int64(1) << (2 * (order - order_of_prob))  # indices at ``order`` per flat pixel
    out = np.empty(start.size)
    fine = stop - start < q  # inside one flat pixel
    pix = start[fine] // q
    out[fine] = prob[pix] * ((stop[fine] - start[fine]) / q)
    coarse = ~fine
    if coarse.any():
        bounds = np.stack([start[coarse] // q, stop[coarse] // q], axis=1).ravel()
        if bounds[-1] == prob.size:  # the last range runs to the end: reduceat does that
            bounds = bounds[:-1]
        out[coarse] = np.add.reduceat(prob, bounds)[::2]
    return out


def _with_flat(m: SkyMap, f: FlatSkyMap) -> float:
    """4π ∫ p_m p_f dΩ with ``f`` flat: each of m's ranges times the flat map's probability
    inside it (exact; O(tiles + pixels), no intermediate the size of the map)."""
    prob_f, k = _nested(f), int(np.log2(f.nside))
    if isinstance(m, FlatSkyMap):
        prob_m, km = _nested(m), int(np.log2(m.nside))
        if km > k:  # the finer one summed onto the coarser one's pixels: exact
            prob_m, prob_f, km, k = prob_f, prob_m, k, km
        coarse = prob_f.reshape(prob_m.size, -1).sum(axis=1)  # f onto m's pixels
        nm, nf = float(prob_m.sum()), float(prob_f.sum())
        if nm <= 0 or nf <= 0:
            return 0.0
        area = 4 * np.pi / prob_m.size
        return float(4 * np.pi * np.sum(prob_m / area * coarse) / (nm * nf))
    order = max(deepest_order(m), k)
    r = to_ranges(m, order)
    mass = _mass_in_ranges(prob_f, k, r.start, r.stop, order)
    nm = _normalization(r.start, r.stop, r.density, r.pixel_area)
    nf = float(prob_f.sum())
    if nm <= 0 or nf <= 0:
        return 0.0
    return float(4 * np.pi * np.sum(r.density * mass) / (nm * nf))


def overlap_integral(a: SkyMap, b: SkyMap) -> float:
    """4π ∫ p_a p_b dΩ, each map normalized to unit probability first."""
    if isinstance(b, FlatSkyMap):
        return _with_flat(a, b)
    if isinstance(a, FlatSkyMap):
        return _with_flat(b, a)
    order = max(deepest_order(a), deepest_order(b))
    ra, rb = to_ranges(a, order), to_ranges(b, order)
    # Elementary segments: between consecutive boundaries of either map.
    edges = np.concatenate([ra.start, ra.stop, rb.start, rb.stop])
    # four sorted runs: a stable sort merges them (timsort) in 0.3 ms, where the default
    # introsort took 4.4 ms of a 6 ms call on the LVK user guide's maps (numpy 2.4); then
    # drop repeats (numpy's unique, a hash table, took 2/3 of the call)
    edges.sort(kind="stable")
    edges = edges[np.concatenate([[True], edges[1:] != edges[:-1]])]
    seg_start, seg_len = edges[:-1], np.diff(edges)
    da = density_at_index(ra, seg_start)
    db = density_at_index(rb, seg_start)
    area = ra.pixel_area
    na = _normalization(ra.start, ra.stop, ra.density, area)
    nb = _normalization(rb.start, rb.stop, rb.density, area)
    if na <= 0 or nb <= 0:
        return 0.0
    return float(4 * np.pi * np.sum(da * db * seg_len) * area / (na * nb))


def overlap_with_point(skymap: SkyMap, ra_deg: float, dec_deg: float) -> float:
    """Map x point (a well-localized counterpart): 4π times the map's density there."""
    from mmstream.sky.credible import probdensity

    return float(4 * np.pi * probdensity(skymap, np.array([ra_deg]), np.array([dec_deg]))[0])
