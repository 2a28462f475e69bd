"""Any HEALPix map as sorted, disjoint index ranges at one deep order, with a density each.

A tile of order k and nested index i covers nested indices [i*4^(M-k), (i+1)*4^(M-k))
at order M. Writing every map (multi-order or flat, ring or nested) this way makes
products of maps exact, without resampling either onto the other's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import healpy as hp
import numpy as np
import numpy.typing as npt

from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.moc import uniq_to_order_ipix

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MAX_ORDER = 29  # HEALPix's deepest order; 12 * 4**29 still fits an int64


@dataclass(frozen=True)
class Ranges:
    """Disjoint ranges [start, stop) of nested indices at ``order``, sorted, with densities."""

    order: int
    start: IntArray
    stop: IntArray
    density: FloatArray  # sr^-1

    @property
    def pixel_area(self) -> float:
        return float(4 * np.pi / (12 * 4.0**self.order))


def deepest_order(skymap: MultiOrderSkyMap | FlatSkyMap) -> int:
    if isinstance(skymap, FlatSkyMap):
        return int(np.log2(skymap.nside))
    orders, _ = uniq_to_order_ipix(skymap.uniq)
    return int(orders.max())


def to_ranges(skymap: MultiOrderSkyMap | FlatSkyMap, order: int) -> Ranges:
    """The map as ranges at ``order`` (which must be at least its deepest order)."""
    if isinstance(skymap, FlatSkyMap):
        k = int(np.log2(skymap.nside))
        prob = skymap.prob if skymap.nest else hp.reorder(skymap.prob, r2n=True)
        ipix = np.arange(prob.size, dtype=np.int64)
        density = prob / hp.nside2pixarea(skymap.nside)
        levels = np.full(prob.size, k, dtype=np.int64)
    else:
        levels, ipix = uniq_to_order_ipix(skymap.uniq)
        density = skymap.probdensity
    if order < int(levels.max()):
        raise ValueError(f"order {order} is shallower than the map's ({int(levels.max())})")
    shift = (order - levels) * 2
    start = ipix << shift
    stop = (ipix + 1) << shift
    sort = np.argsort(start, kind="stable")
    return Ranges(order, start[sort], stop[sort], np.asarray(density, dtype=np.float64)[sort])


def density_at_index(r: Ranges, index: IntArray) -> FloatArray:
    """Density of the range holding each nested index at ``r.order``; 0 where none does."""
    pos = np.searchsorted(r.start, index, side="right") - 1
    ok = pos >= 0
    pos_c = np.clip(pos, 0, None)
    inside = ok & (index < r.stop[pos_c])
    return np.where(inside, r.density[pos_c], 0.0)


def rasterize(skymap: MultiOrderSkyMap | FlatSkyMap, order: int) -> FlatSkyMap:
    """A flat nested map at ``order``: only when asked, never by default (nside 2048 is 400 MB).

    Tiles finer than ``order`` add their probability to the pixel holding them; coarser
    tiles spread theirs evenly over the pixels they cover. The cost is O(tiles + pixels)
    whatever the map's deepest order (a tile at order 16 or 29 costs no more than one at 7).
    """
    if isinstance(skymap, FlatSkyMap):
        levels = np.full(skymap.prob.size, int(np.log2(skymap.nside)), dtype=np.int64)
        ipix = np.arange(skymap.prob.size, dtype=np.int64)
        prob = skymap.prob if skymap.nest else hp.reorder(skymap.prob, r2n=True)
    else:
        levels, ipix = uniq_to_order_ipix(skymap.uniq)
        prob = skymap.probdensity * (4 * np.pi / (12 * 4.0**levels))
    npix = 12 * 4**order
    out = np.zeros(npix)
    fine = levels >= order
    parents = ipix[fine] >> (2 * (levels[fine] - order))
    out += np.bincount(parents, weights=prob[fine], minlength=npix)
    coarse = ~fine
    if coarse.any():
        spread = np.int64(1) << (2 * (order - levels[coarse]))  # pixels under each tile
        first = ipix[coarse] << (2 * (order - levels[coarse]))
        starts = np.repeat(first - np.cumsum(spread) + spread, spread)
        index = starts + np.arange(int(spread.sum()), dtype=np.int64)
        np.add.at(out, index, np.repeat(prob[coarse] / spread, spread))
    meta = dict(getattr(skymap, "meta", {}))
    return FlatSkyMap(nside=1 << order, nest=True, prob=out, meta=meta)
