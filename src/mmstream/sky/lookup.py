"""Density and credible level at many positions: one ``ang2pix``, then an index lookup.

A multi-order map is a table of disjoint nested-index ranges at its deepest order
(ranges.py), each with its density and its credible level: the probability of every tile at
least as dense as it, computed once per table by sorting the tiles (a few ten thousand).
A position's pixel at the deepest order falls in one range, which gives both numbers.
Which range: a binary search over the range starts costs ~90 ns a position (random
positions miss the cache at every step: 10^6 of them took 84 ms of a 140 ms call), so for
many positions the table also holds an index at order 6 (49,152 pixels, 192 KB): each
coarse pixel's range, or "split" where several ranges share it; only positions in split
pixels (1.6 % of the sky on the LVK userguide map) are searched.

A flat map needs no search for the density (its pixel indexes the array). Its levels would
need the whole map sorted (50 million pixels at nside 2048: seconds, and 800 MB for the
sorted copy and its running sum), so they are counted the other way round: the distinct
densities of the positions asked, sorted, bin every pixel's probability (one pass over the
map, log N per pixel) and a running sum over the bins gives each level, exactly.

Tables are kept for the last few maps (by the identity of their arrays, weakly held), so
the several analyses of one alert in one process build a table once.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import cached_property

import healpy as hp
import numpy as np
import numpy.typing as npt

from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.ranges import deepest_order, to_ranges

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RangeTable:
    """A multi-order map's ranges at ``order``, with a density and a level per range, and
    the running sums of probability and area over the ranges from the densest down (a
    leading 0 each): the credible region of any level without sorting again."""

    order: int
    start: IntArray
    stop: IntArray
    density: FloatArray
    level: FloatArray
    cum_prob: FloatArray
    cum_area_sr: FloatArray

    @cached_property
    def coarse(self) -> npt.NDArray[np.int32]:
        """Per pixel at order ``min(order, COARSE_ORDER)``: the one range whose start is
        the last at or before each of its fine pixels (-1: before the first range), or
        SPLIT where a range starts inside it. Whether a fine pixel is in that range is
        still checked against its stop. Built on first use (2 ms on the LVK userguide
        map), kept with the table."""
        shift = self.coarse_shift
        first = np.arange(12 * 4 ** min(self.order, COARSE_ORDER), dtype=np.int64) << shift
        at_first = np.searchsorted(self.start, first, side="right") - 1
        at_last = np.searchsorted(self.start, first + ((1 << shift) - 1), side="right") - 1
        return np.where(at_first == at_last, at_first, SPLIT).astype(np.int32)

    @property
    def coarse_shift(self) -> int:
        """Bits between a pixel's nested index at ``order`` and its coarse pixel's."""
        return 2 * (self.order - min(self.order, COARSE_ORDER))

    def locate(self, index: IntArray) -> npt.NDArray[np.intp]:
        """The range whose start is the last at or before each pixel (-1: none)."""
        if index.size < INDEXED_FROM:  # the coarse index would cost more than it saves
            return np.asarray(np.searchsorted(self.start, index, side="right") - 1, np.intp)
        pos: npt.NDArray[np.intp] = self.coarse[index >> self.coarse_shift].astype(np.intp)
        split = np.flatnonzero(pos == SPLIT)
        pos[split] = np.searchsorted(self.start, index[split], side="right") - 1
        return pos


COARSE_ORDER = 6
SPLIT = -2
INDEXED_FROM = 1 << 14  # positions: below this a plain binary search is as fast
CHUNK = 1 << 22  # flat-map pixels binned at a time (32 MB of int64 bin numbers)
_TABLES: dict[int, tuple[weakref.ref[np.ndarray], RangeTable]] = {}
_KEEP = 8


def range_table(skymap: MultiOrderSkyMap) -> RangeTable:
    """The map's table, built once per density array (cached, weakly)."""
    key = id(skymap.probdensity)
    found = _TABLES.get(key)
    if found is not None and found[0]() is skymap.probdensity:
        return found[1]
    r = to_ranges(skymap, deepest_order(skymap))
    area = (r.stop - r.start) * r.pixel_area
    desc = np.argsort(-r.density)  # ties: one level, and one slope of area on probability
    cum = np.cumsum((r.density * area)[desc])
    cum /= cum[-1]
    # a tile's level: the probability of every tile at least as dense (ties share the last
    # of theirs: a running minimum from the end; a binary search per tile took 2 ms)
    dens = r.density[desc]
    n = dens.size
    last = np.where(np.append(dens[1:] != dens[:-1], True), np.arange(n), n)
    level = np.empty(n)
    level[desc] = cum[np.minimum.accumulate(last[::-1])[::-1]]
    level[r.density <= 0] = 1.0
    cum_area = np.concatenate([[0.0], np.cumsum(area[desc])])
    table = RangeTable(r.order, r.start, r.stop, r.density, level, np.concatenate([[0.0], cum]),
                       cum_area)  # fmt: skip
    while len(_TABLES) >= _KEEP:
        _TABLES.pop(next(iter(_TABLES)))

    def forget(_: object, k: int = key) -> None:  # the map's array is gone: so is its id
        _TABLES.pop(k, None)

    _TABLES[key] = (weakref.ref(skymap.probdensity, forget), table)
    return table


def moc_density_and_level(
    skymap: MultiOrderSkyMap, ra_deg: FloatArray, dec_deg: FloatArray
) -> tuple[FloatArray, FloatArray]:
    t = range_table(skymap)
    index = hp.ang2pix(1 << t.order, ra_deg, dec_deg, nest=True, lonlat=True).astype(np.int64)
    pos = t.locate(index)
    pos_c = np.maximum(pos, 0)
    inside = (pos >= 0) & (index < t.stop[pos_c])
    return np.where(inside, t.density[pos_c], 0.0), np.where(inside, t.level[pos_c], 1.0)


def flat_density(skymap: FlatSkyMap, ra_deg: FloatArray, dec_deg: FloatArray) -> FloatArray:
    pix = hp.ang2pix(skymap.nside, ra_deg, dec_deg, nest=skymap.nest, lonlat=True)
    return np.asarray(skymap.prob[pix] / hp.nside2pixarea(skymap.nside), dtype=np.float64)


def flat_density_and_level(
    skymap: FlatSkyMap, ra_deg: FloatArray, dec_deg: FloatArray
) -> tuple[FloatArray, FloatArray]:
    pix = hp.ang2pix(skymap.nside, ra_deg, dec_deg, nest=skymap.nest, lonlat=True)
    prob = skymap.prob
    asked = prob[pix]
    thresholds = np.unique(asked)  # ascending
    mass = np.zeros(thresholds.size)
    for first in range(0, prob.size, CHUNK):  # bounded temporaries, whatever the nside
        part = prob[first : first + CHUNK]
        # bin b: thresholds[b] <= p < thresholds[b + 1]; -1: below every threshold
        bins = np.searchsorted(thresholds, part, side="right") - 1
        keep = bins >= 0
        mass += np.bincount(bins[keep], weights=part[keep], minlength=thresholds.size)
    at_least = np.cumsum(mass[::-1])[::-1] / prob.sum()  # mass of pixels >= each threshold
    level = at_least[np.searchsorted(thresholds, asked)]
    area = hp.nside2pixarea(skymap.nside)
    return asked / area, np.where(asked > 0, level, 1.0)
