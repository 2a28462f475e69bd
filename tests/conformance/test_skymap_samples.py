"""Every sample sky map reads, with its tile count, ordering and total probability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmstream.model import FlatSkyMap, MultiOrderSkyMap
from mmstream.sky.flat import read_skymap_bytes
from mmstream.sky.moc import pixel_area_sr
from tests.conformance.conftest import ids, samples

FILES = samples("skymaps/**/*.fit*")
# (kind, tiles) where the file says so; probability sums to 1 within 1e-6 unless listed.
EXPECTED = {
    "bayestar.multiorder.fits": ("moc", 19200),
    "rrt_small_area_G1028259_cwb.fits": ("moc", 345),
    "glg_healpix_all_bn180116026.fit": ("flat", 196608),
    "fermi_skymap.fits.gz": ("flat", 768),
    "bayestar.slim.fits.gz": ("flat", 50331648),
}
# Swift BAT's multi-order map stores PROBDENSITY as float32: it sums to 0.99905.
LOOSE = {"swift_skymap.multiorder.fits": 1e-3}


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_map_reads_and_is_normalized(path: Path) -> None:
    m = read_skymap_bytes(path.read_bytes())
    if isinstance(m, MultiOrderSkyMap):
        total = float(np.sum(m.probdensity * pixel_area_sr(m.uniq)))
        kind, tiles = "moc", m.uniq.size
        assert np.all(np.diff(m.uniq) > 0), "NUNIQ tiles sorted and unique"
    else:
        assert isinstance(m, FlatSkyMap)
        total = float(m.prob.sum())
        kind, tiles = "flat", m.prob.size
        assert tiles == 12 * m.nside**2
    assert total == pytest.approx(1.0, abs=LOOSE.get(path.name, 1e-6))
    if path.name in EXPECTED:
        assert (kind, tiles) == EXPECTED[path.name]
