"""Sky kernels like for like (best of 3, the same positions and maps for every contender):

- density + credible level at random positions: ours (``density_and_level``), ligo.skymap's
  ``crossmatch`` on the **2-D** map (the distance columns removed, so it computes no distance
  layer; it also returns searched areas and offsets, which ours does not), and the roofline:
  a bare healpy ``ang2pix`` and one numpy ``searchsorted`` (multi-order) or one index
  (flat) into tables built beforehand, outside the timing. Ours keeps its per-map tables
  (the range table and its order-6 index, sky/lookup.py) across calls, as an alert's
  analyses share them, so they are built before its timing too. On a multi-order map ours
  beats that roofline (the index replaces most of the binary search), so the row also
  gives ``ang2pix`` alone: the floor of any lookup that starts from it;
- the overlap integral: ours, ligo-raven's ``skymap_overlap_integral`` (nearest-pixel
  matching, so its value differs a little) and hpmoc's product of two maps.

Flat maps: the user guide's nside-2048 NESTED map (``bayestar.slim.fits.gz``) and the same
summed to nside 1024.
"""

from __future__ import annotations

import importlib.util  # noqa: F401  (hpmoc uses importlib.util without importing it)
import tracemalloc
from pathlib import Path
from typing import Any

import healpy as hp
import numpy as np

from benchmarks.kernels import MAP_A, MAP_B, SKYMAPS, best_of
from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.credible import density_and_level
from mmstream.sky.flat import read_skymap_bytes
from mmstream.sky.lookup import range_table
from mmstream.sky.overlap import overlap_integral

FLAT_2048 = SKYMAPS / "userguide" / "bayestar.slim.fits.gz"


def positions(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def _ligo_2d(table: Any) -> Any:
    for col in ("DISTMU", "DISTSIGMA", "DISTNORM"):
        if col in table.colnames:
            table.remove_column(col)
    table.meta.pop("distmean", None)
    table.meta.pop("diststd", None)
    return table


def density_level_moc(n: int) -> dict[str, float]:
    from astropy.coordinates import SkyCoord
    from ligo.skymap.io import read_sky_map
    from ligo.skymap.postprocess.crossmatch import crossmatch

    ra, dec = positions(n)
    ours_map = read_skymap_bytes(MAP_A.read_bytes())
    assert isinstance(ours_map, MultiOrderSkyMap)
    theirs_map = _ligo_2d(read_sky_map(str(MAP_A), moc=True))
    coords = SkyCoord(ra, dec, unit="deg")
    t = range_table(ours_map)  # the roofline's tables, built outside its timing
    nside = 1 << t.order

    def roofline() -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(t.start, hp.ang2pix(nside, ra, dec, nest=True, lonlat=True),
                              side="right") - 1  # fmt: skip
        return t.density[pos], t.level[pos]

    mine = density_and_level(ours_map, ra, dec)  # builds and keeps the map's tables
    ref = crossmatch(theirs_map, coordinates=coords)
    bare = roofline()
    return {
        "ours_s": best_of(lambda: density_and_level(ours_map, ra, dec)),
        "theirs_s": best_of(lambda: crossmatch(theirs_map, coordinates=coords)),
        "roofline_s": best_of(roofline),
        "ang2pix_s": best_of(lambda: hp.ang2pix(nside, ra, dec, nest=True, lonlat=True)),
        "diff_ligo": float(np.max(np.abs(mine[1] - np.asarray(ref.searched_prob)))),
        "diff_roofline": float(
            max(np.max(np.abs(mine[0] - bare[0])), np.max(np.abs(mine[1] - bare[1])))
        ),
    }


def flat_maps() -> dict[int, FlatSkyMap]:
    m2048 = read_skymap_bytes(FLAT_2048.read_bytes())
    assert isinstance(m2048, FlatSkyMap) and m2048.nest
    m1024 = FlatSkyMap(1024, True, m2048.prob.reshape(-1, 4).sum(axis=1), dict(m2048.meta))
    return {1024: m1024, 2048: m2048}


def _moc_table_of(flat: FlatSkyMap) -> Any:
    """The flat map as ligo.skymap reads a flat file with moc=True: one row per pixel."""
    from astropy.table import Table

    npix = flat.prob.size
    order = int(np.log2(flat.nside))
    uniq = 4 * 4**order + np.arange(npix, dtype=np.int64)
    return Table({"UNIQ": uniq, "PROBDENSITY": flat.prob / hp.nside2pixarea(flat.nside)})


def density_level_flat(flat: FlatSkyMap, n: int) -> dict[str, float]:
    from astropy.coordinates import SkyCoord
    from ligo.skymap.postprocess.crossmatch import crossmatch

    ra, dec = positions(n)
    coords = SkyCoord(ra, dec, unit="deg")
    table = _moc_table_of(flat)
    area = hp.nside2pixarea(flat.nside)
    desc = np.argsort(-flat.prob, kind="stable")  # the roofline's per-pixel levels, untimed
    level_of = np.empty_like(flat.prob)
    level_of[desc] = np.cumsum(flat.prob[desc])
    del desc

    def roofline() -> tuple[np.ndarray, np.ndarray]:
        pix = hp.ang2pix(flat.nside, ra, dec, nest=True, lonlat=True)
        return flat.prob[pix] / area, level_of[pix]

    mine = density_and_level(flat, ra, dec)
    ref = crossmatch(table, coordinates=coords)
    return {
        "ours_s": best_of(lambda: density_and_level(flat, ra, dec)),
        "theirs_s": best_of(lambda: crossmatch(table, coordinates=coords), runs=1),
        "roofline_s": best_of(roofline),
        "diff_ligo": float(np.max(np.abs(mine[1] - np.asarray(ref.searched_prob)))),
    }


def _hpmoc_overlap(a: MultiOrderSkyMap, b: MultiOrderSkyMap) -> float:
    from hpmoc import PartialUniqSkymap

    pa, pb = PartialUniqSkymap(a.probdensity, a.uniq), PartialUniqSkymap(b.probdensity, b.uniq)

    def mass(p: Any) -> float:
        return float(np.sum(p.s * p.area().value))

    return float(4 * np.pi * mass(pa * pb) / (mass(pa) * mass(pb)))


def overlap_moc() -> dict[str, float]:
    from ligo.raven.search import skymap_overlap_integral

    a, b = read_skymap_bytes(MAP_A.read_bytes()), read_skymap_bytes(MAP_B.read_bytes())
    assert isinstance(a, MultiOrderSkyMap) and isinstance(b, MultiOrderSkyMap)

    def raven() -> float:
        return float(skymap_overlap_integral(a.probdensity, b.probdensity, a.uniq, b.uniq))

    ours = overlap_integral(a, b)
    return {"ours_s": best_of(lambda: overlap_integral(a, b)), "raven_s": best_of(raven),
            "hpmoc_s": best_of(lambda: _hpmoc_overlap(a, b)),
            "rel_raven": abs(raven() / ours - 1),
            "rel_hpmoc": abs(_hpmoc_overlap(a, b) / ours - 1)}  # fmt: skip


def overlap_flat(flat: FlatSkyMap) -> dict[str, float]:
    """A multi-order map against a flat one: ours, and ligo-raven (which takes both)."""
    from ligo.raven.search import skymap_overlap_integral

    moc = read_skymap_bytes(Path(MAP_B).read_bytes())
    assert isinstance(moc, MultiOrderSkyMap)
    tracemalloc.start()  # numpy's allocations included: the call's own peak, maps excluded
    ours = overlap_integral(moc, flat)
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    def raven() -> float:
        return float(skymap_overlap_integral(moc.probdensity, flat.prob, moc.uniq, [],
                                             ext_nested=True))  # fmt: skip

    return {"ours_s": best_of(lambda: overlap_integral(moc, flat)),
            "raven_s": best_of(raven, runs=1), "rel_raven": abs(raven() / ours - 1),
            "peak_mb": peak_mb}  # fmt: skip
