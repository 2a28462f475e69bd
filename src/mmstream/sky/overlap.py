"""Overlap integral of two sky localizations, as RAVEN defines it: I = 4π ∫ p1 p2 dΩ.

I is 1 when either map is uniform over the sky, about 1/f for two identical maps covering a
fraction f of the sky, and 0 for disjoint maps. Multi-order x multi-order is exact here
(every common sub-tile counted with its area), unlike a nearest-pixel match.
"""

from __future__ import annotations

import numpy as np

from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.ranges import deepest_order, density_at_index, to_ranges

SkyMap = MultiOrderSkyMap | FlatSkyMap


def _normalization(
    r_start: np.ndarray, r_stop: np.ndarray, density: np.ndarray, area: float
) -> float:
    return float(np.sum(density * (r_stop - r_start)) * area)


def overlap_integral(a: SkyMap, b: SkyMap) -> float:
    """4π ∫ p_a p_b dΩ, each map normalized to unit probability first."""
    order = max(deepest_order(a), deepest_order(b))
    ra, rb = to_ranges(a, order), to_ranges(b, order)
    # Elementary segments: between consecutive boundaries of either map.
    edges = np.unique(np.concatenate([ra.start, ra.stop, rb.start, rb.stop]))
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
