"""The likelihood test with 1,000 background trials (no peer: its absolute time), and what
the sky benchmarks (benchmarks/sky.py) share: the maps, best-of timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
