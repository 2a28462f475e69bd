"""Kernels on the same inputs as the field's reference implementations (best of 3 runs):
probability density and credible level at sky positions (ligo.skymap's crossmatch), the
overlap integral of two multi-order maps (ligo-raven), and the likelihood test with 1,000
background trials (no peer: its absolute time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmstream.sky.credible import density_and_level
from mmstream.sky.flat import read_skymap_bytes
from mmstream.sky.overlap import overlap_integral

SKYMAPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "skymaps"
MAP_A = SKYMAPS / "userguide" / "bayestar.multiorder.fits"
MAP_B = SKYMAPS / "userguide" / "combined-ext.multiorder.fits"


def best_of(call: Callable[[], Any], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return min(times)


def crossmatch_positions(n: int) -> dict[str, float]:
    from astropy.coordinates import SkyCoord
    from ligo.skymap.io import read_sky_map
    from ligo.skymap.postprocess.crossmatch import crossmatch

    rng = np.random.default_rng(3)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    ours_map = read_skymap_bytes(MAP_A.read_bytes())
    theirs_map = read_sky_map(str(MAP_A), moc=True)
    coords = SkyCoord(ra, dec, unit="deg")

    def ours() -> tuple[Any, Any]:
        return density_and_level(ours_map, ra, dec)

    def theirs() -> Any:
        return crossmatch(theirs_map, coordinates=coords)

    mine, ref = ours(), theirs()
    agree = float(np.max(np.abs(mine[1] - np.asarray(ref.searched_prob))))
    return {"ours_s": best_of(ours), "theirs_s": best_of(theirs), "max_abs_diff": agree}


def overlap() -> dict[str, float]:
    from ligo.raven.search import skymap_overlap_integral
    from ligo.skymap.io import read_sky_map

    a, b = read_skymap_bytes(MAP_A.read_bytes()), read_skymap_bytes(MAP_B.read_bytes())
    ta, tb = read_sky_map(str(MAP_A), moc=True), read_sky_map(str(MAP_B), moc=True)

    ua, ub = np.asarray(ta["UNIQ"]), np.asarray(tb["UNIQ"])

    def theirs() -> float:
        return float(skymap_overlap_integral(ta["PROBDENSITY"], tb["PROBDENSITY"], ua, ub))

    rel = abs(overlap_integral(a, b) / theirs() - 1)
    return {"ours_s": best_of(lambda: overlap_integral(a, b)), "theirs_s": best_of(theirs),
            "rel_diff": rel}  # fmt: skip


def llh_trials(n_events: int = 2000) -> dict[str, float]:
    """The neutrino_llh handler on one alert with the real map, 1,000 background trials."""
    from mmstream.analyses.llh import neutrino_llh
    from mmstream.analyses.registry import AnalysisInput
    from mmstream.feeders import background_events, igwn_alert
    from mmstream.formats.router import decode_alert
    from mmstream.model import NS_PER_S, Window
    from mmstream.stream.store import EventStore

    t = 1_800_000_000 * NS_PER_S
    alert = decode_alert("igwn.gwalert", 0, 0, igwn_alert("S1", time_ns=t, ra_deg=0, dec_deg=0,
                         skymap_fits=MAP_A.read_bytes()))  # fmt: skip
    store = EventStore(retention_ns=10**18)
    for i, e in enumerate(background_events("ic", t - 3600 * NS_PER_S, t + 3600 * NS_PER_S,
                                            n_events / 7200, seed=2)):  # fmt: skip
        store.add(e, 0, i)
    spec = neutrino_llh
    window = Window.around(t, *spec.window)
    params = spec.validate_params({"n_trials": 1000})
    inp = AnalysisInput(alert, window, {"ic": store.window("ic", window)}, params, True, (),
                        {"ic": None})  # fmt: skip
    return {"ours_s": best_of(lambda: spec(inp), runs=2), "events": float(
        len(store.window("ic", window)))}  # fmt: skip
