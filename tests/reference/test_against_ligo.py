"""Our sky-map numbers agree with ligo.skymap and ligo-raven on the same public files.

Needs the ``reference`` extra (installed by scripts/test); skips cleanly without it or
without ../shared/data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmstream.sky.credible import credible_area_deg2
from mmstream.sky.flat import read_skymap_bytes
from mmstream.sky.overlap import overlap_integral, overlap_with_point
from tests.conformance.conftest import ids, samples

pytest.importorskip("ligo.skymap")
pytest.importorskip("ligo.raven")
from ligo.raven.search import skymap_overlap_integral
from ligo.skymap.io import read_sky_map
from ligo.skymap.postprocess.crossmatch import crossmatch

MOCS = samples("skymaps/**/*.multiorder.fits", "skymaps/gwcelery/rrt_small_area_*.fits")
# flat (Fermi GBM) maps, looked up in place, against ligo.skymap's own reading of them
FLATS = samples("skymaps/growth-too-marshal/*.fit*", "skymaps/gwcelery/fermi_skymap.fits.gz")


@pytest.mark.parametrize("path", MOCS + FLATS, ids=ids(MOCS + FLATS))
def test_credible_areas_match_ligo_skymap(path: Path) -> None:
    ours = read_skymap_bytes(path.read_bytes())
    theirs = crossmatch(read_sky_map(str(path), moc=True), contours=(0.5, 0.9)).contour_areas
    for level, area in zip((0.5, 0.9), theirs, strict=True):
        assert credible_area_deg2(ours, level) == pytest.approx(area, rel=0.01)


def _pair(a: str, b: str) -> tuple[float, float]:
    root = samples("skymaps")[0]
    pa, pb = root / a, root / b
    if not (pa.exists() and pb.exists()):
        pytest.skip("sky maps absent")
    ours = overlap_integral(read_skymap_bytes(pa.read_bytes()), read_skymap_bytes(pb.read_bytes()))
    ta = read_sky_map(str(pa), moc=True)
    if b.endswith(".multiorder.fits") or "rrt_" in b:
        tb = read_sky_map(str(pb), moc=True)
        theirs = skymap_overlap_integral(
            ta["PROBDENSITY"], tb["PROBDENSITY"], np.asarray(ta["UNIQ"]), np.asarray(tb["UNIQ"])
        )
    else:
        flat, _ = read_sky_map(str(pb), nest=True)
        theirs = skymap_overlap_integral(
            ta["PROBDENSITY"], flat, np.asarray(ta["UNIQ"]), [], se_nested=True, ext_nested=True
        )
    return ours, float(theirs)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("userguide/bayestar.multiorder.fits", "userguide/combined-ext.multiorder.fits"),
        ("gwcelery/rrt_small_area_G495305.fits", "gwcelery/rrt_small_area_G495305.fits"),
        (
            "userguide/bayestar.multiorder.fits",
            "growth-too-marshal/glg_healpix_all_bn180116026.fit",
        ),
    ],
)
def test_overlaps_match_ligo_raven(a: str, b: str) -> None:
    ours, theirs = _pair(a, b)
    assert ours == pytest.approx(theirs, rel=0.01)


def test_nearly_disjoint_maps_agree_that_they_are() -> None:
    # RAVEN matches each GW tile to the nearest external tile; we intersect tiles exactly.
    # Where two maps barely touch the two differ by a few percent of a number near zero.
    ours, theirs = _pair(
        "userguide/bayestar.multiorder.fits", "gwcelery/MS220722v_bayestar.multiorder.fits"
    )
    assert ours < 1e-4 and theirs < 1e-4
    assert ours == pytest.approx(theirs, rel=0.05)


def test_map_times_point_matches_ligo_raven() -> None:
    path = samples("skymaps/userguide/bayestar.multiorder.fits")
    if not path:
        pytest.skip("sky map absent")
    table = read_sky_map(str(path[0]), moc=True)
    theirs = skymap_overlap_integral(
        table["PROBDENSITY"], [], np.asarray(table["UNIQ"]), [], ra=194.3, dec=-17.86
    )
    ours = overlap_with_point(read_skymap_bytes(path[0].read_bytes()), 194.3, -17.86)
    assert ours == pytest.approx(float(theirs), rel=1e-6)
