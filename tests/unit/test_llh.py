"""The likelihood test is calibrated under background and finds a bright coincident neutrino."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kstest

from mmstream.analyses.llh import LlhParams, neutrino_llh
from mmstream.analyses.registry import AnalysisInput
from mmstream.model import NS_PER_S, Alert, AlertType, EventColumns, Role, SourceRef, Window
from mmstream.sky.moc import gaussian_moc
from mmstream.stats.llh import BACKGROUND_DENSITY, background_ts, maximize_ts, p_value, signal_maps
from tests.gcn_schema import validator_for

T0 = 1_800_000_000 * NS_PER_S
MAP = gaussian_moc(150.0, 20.0, 2.0, max_order=8)
RATE = 6.7e-3
NB = RATE * 1000.0


def test_ts_is_zero_without_signal_like_events_and_grows_with_them() -> None:
    assert maximize_ts(np.array([]), NB) == (0.0, 0.0)
    assert maximize_ts(np.array([0.5, 0.1]), NB) == (0.0, 0.0)
    ts1, ns1 = maximize_ts(np.array([500.0]), NB)
    ts2, _ = maximize_ts(np.array([5000.0]), NB)
    assert 0 < ns1 <= 1 and 0 < ts1 < ts2
    # Analytic single-event maximum: n_s = 1 - n_b / r, TS = 2(-n_s + ln(r / n_b)).
    r = 500.0
    assert ns1 == pytest.approx(1 - NB / r, rel=1e-6)
    assert ts1 == pytest.approx(2 * (-(1 - NB / r) + np.log(r / NB)), rel=1e-6)


def test_p_values_are_uniform_under_background() -> None:
    maps = signal_maps(MAP)
    rng = np.random.default_rng(20261122)
    sigmas = np.array([0.5, 1.0, 2.0])
    trials = background_ts(maps, NB, sigmas, 2000, rng)
    observed = background_ts(maps, NB, sigmas, 1000, rng)  # 1000 background-only experiments
    pvals = np.array([p_value(ts, trials, rng) for ts in observed])
    assert kstest(pvals, "uniform").pvalue > 0.01
    assert 0.35 < np.mean(trials == 0) < 0.999, "most background trials have no signal-like event"


def _input(
    times_s: np.ndarray, ra: np.ndarray, dec: np.ndarray, sigma: np.ndarray, seed: int
) -> AnalysisInput[LlhParams]:
    alert = Alert("S1", f"r{seed}", AlertType.PRELIMINARY, Role.OBSERVATION, "LVK", T0, 1e-8, MAP,
                  SourceRef("t", 0, 0, "x"))  # fmt: skip
    n = times_s.size
    cols = EventColumns("icecube", np.array([f"e{i}" for i in range(n)]), T0 + (times_s * NS_PER_S).astype(np.int64),
                        ra, dec, sigma, np.full(n, np.nan), np.zeros(n, np.int32), np.arange(n))  # fmt: skip
    return AnalysisInput(alert, Window.around(T0, -500, 500), {"icecube": cols},
                         LlhParams(background_rate_hz=RATE, n_trials=300, seed=seed))  # fmt: skip


def test_a_bright_neutrino_at_the_map_maximum_is_found() -> None:
    rng = np.random.default_rng(7)
    found = 0
    runs = 40
    for k in range(runs):
        n_bg = rng.poisson(NB)
        ra = np.concatenate([rng.uniform(0, 360, n_bg), [150.0]])
        dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, n_bg))), [20.0]])
        sigma = np.concatenate([rng.uniform(0.5, 2.0, n_bg), [0.5]])
        times = rng.uniform(-500, 500, n_bg + 1)
        out = neutrino_llh(_input(times, ra, dec, sigma, seed=k))
        found += out.statistics["p_value"] < 0.01
        if k == 0:
            top = out.events[0]
            assert top.ra_deg == 150.0 and top.values["signal_weight"] > 0.5
            assert abs(out.statistics["most_probable_ra_deg"] - 150.0) < 1.0
    assert found / runs >= 0.95


def test_notice_is_valid_against_the_gcn_schema_and_recomputable() -> None:
    validate = validator_for("gcn/notices/icecube/lvk_nu_track_search.schema.json")
    inp = _input(
        np.array([3.0, -200.0]),
        np.array([150.2, 10.0]),
        np.array([20.1, -60.0]),
        np.array([0.6, 1.0]),
        seed=1,
    )
    out = neutrino_llh(inp)
    assert out.notice is not None
    notice = {**out.notice, "alert_datetime": "2027-01-15T08:00:00Z"}
    errors = sorted(str(e.message) for e in validate.iter_errors(notice))
    assert errors == []
    assert notice["ref_ID"] == "S1" and notice["n_events_coincident"] == 1
    assert notice["coincident_events"][0]["id"] == ["e0"]
    # Everything needed to recompute TS is in the result: ratios and the expected background.
    ratios = np.array([e.values["ratio"] for e in out.events])
    ts, _ = maximize_ts(ratios, out.statistics["expected_background"])
    assert ts == pytest.approx(out.statistics["ts"], rel=1e-9)
    assert ratios[0] == pytest.approx(
        out.events[0].values["signal_density_sr"] / BACKGROUND_DENSITY
    )


def test_same_inputs_same_numbers() -> None:
    inp = _input(np.array([3.0]), np.array([150.2]), np.array([20.1]), np.array([0.6]), seed=3)
    assert neutrino_llh(inp).statistics == neutrino_llh(inp).statistics
