"""The supernova burst search: counts against the live-time rate before the alert."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from mmstream.analyses.registry import AnalysisInput, Outcome
from mmstream.analyses.supernova import BurstParams, supernova_burst
from mmstream.model import NS_PER_S, DetectorEvent, ExcludedInterval, Livetime

T0 = 1_800_000_000 * NS_PER_S


def _events(times_s: np.ndarray) -> list[DetectorEvent]:
    return [DetectorEvent(f"e{i}", "icecube", i, T0 + int(t * NS_PER_S), 10.0, 20.0, 1.0)
            for i, t in enumerate(sorted(times_s))]  # fmt: skip


def _run(times_s: np.ndarray, livetime: dict[str, Livetime | None] | None = None) -> Outcome:
    p = BurstParams()
    inp = AnalysisInput.for_test(p, _events(times_s), source="SNEWS",
                                 window=(-10.0 - 3600.0, 10.0), livetime=livetime)  # fmt: skip
    return supernova_burst(inp)


def test_a_burst_over_a_steady_background_is_significant_and_listed() -> None:
    rng = np.random.default_rng(3)
    background = rng.uniform(-3610, 10, rng.poisson(0.5 * 3620))  # 0.5 Hz everywhere
    burst = rng.uniform(0, 10, 40)
    out = _run(np.concatenate([background, burst]))
    n_sig = int(np.sum((background >= -10) & (background <= 10))) + 40
    n_bg = int(np.sum(background < -10))
    assert out.statistics["n_signal"] == n_sig and out.statistics["n_background"] == n_bg
    expected = n_bg / 3600.0 * 20.0
    assert out.statistics["expected"] == pytest.approx(expected)
    assert out.statistics["p_value"] == pytest.approx(poisson.sf(n_sig - 1, expected))
    assert out.statistics["significance_sigma"] > 5
    assert len(out.events) == n_sig and all(-10 <= e.values["dt_s"] <= 10 for e in out.events)


def test_background_alone_is_not_significant() -> None:
    rng = np.random.default_rng(4)
    out = _run(rng.uniform(-3610, 10, rng.poisson(0.5 * 3620)))
    assert out.statistics["p_value"] > 0.01


def test_the_rate_is_measured_over_live_time_only() -> None:
    # the detector was off for the first 1800 s of the background span: the 900 events of
    # the live 1800 s are a 0.5 Hz rate, not 0.25 Hz
    times = np.linspace(-1805, -11, 900)
    off = ExcludedInterval(T0 - 3610 * NS_PER_S, T0 - 1810 * NS_PER_S, "detector down")
    lt = Livetime("icecube", 0.5, 1810.0, (off,))
    out = _run(times, {"icecube": lt})
    assert out.statistics["live_background_s"] == pytest.approx(1800.0)
    assert out.statistics["expected"] == pytest.approx(900 / 1800 * 20.0)
    assert out.statistics["n_signal"] == 0 and out.statistics["p_value"] == 1.0


def test_no_live_background_says_so_without_a_p_value() -> None:
    off = ExcludedInterval(T0 - 3610 * NS_PER_S, T0 - 10 * NS_PER_S, "detector down")
    out = _run(np.array([1.0, 2.0]), {"icecube": Livetime("icecube", 0.0, 20.0, (off,))})
    assert "p_value" not in out.statistics and "no live background" in out.summary
