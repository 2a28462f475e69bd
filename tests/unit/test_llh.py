"""The likelihood test is calibrated under background and finds a bright coincident neutrino."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mmstream.analyses.llh import LlhParams, neutrino_llh
from mmstream.analyses.registry import AnalysisInput
from mmstream.model import (
    NS_PER_S,
    Alert,
    AlertType,
    Circle,
    EventColumns,
    Localization,
    Role,
    SourceRef,
    Window,
)
from mmstream.sky.flat import read_skymap_bytes
from mmstream.sky.localization import as_map
from mmstream.sky.moc import gaussian_moc
from mmstream.stats.llh import BACKGROUND_DENSITY, background_ts, maximize_ts, p_value, signal_maps
from tests.conftest import SHARED_DATA
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


CIRCLE = Circle(150.0, 20.0, 3.0, 0.9)  # a 3° 90 % circle, as an IceCube or MAXI notice gives
GBM_MAP = SHARED_DATA / "skymaps/growth-too-marshal/glg_healpix_all_bn180116026.fit"


def _gbm() -> Localization:
    return read_skymap_bytes(GBM_MAP.read_bytes())  # a real flat Fermi GBM map, nside 128


def _peak(loc: Localization) -> tuple[float, float]:
    from mmstream.sky.localization import centre

    c = centre(loc)
    assert c is not None
    return c


LOCALIZATIONS = {"multiorder": lambda: MAP, "circle": lambda: CIRCLE, "flat": _gbm}


@pytest.mark.parametrize("name", sorted(LOCALIZATIONS))
def test_p_values_are_valid_and_uniform_where_ts_is_positive(name: str) -> None:
    """Under background, P(p ≤ α) = α for every α below the share of experiments with
    TS > 0 (p has a point mass at 1 for TS = 0, by convention)."""
    maps = signal_maps(as_map(LOCALIZATIONS[name]()))
    rng = np.random.default_rng(20261122)
    sigmas = np.array([0.5, 1.0, 2.0])
    nb = 30.0  # enough events that a good share of experiments has TS > 0, for every map
    trials = background_ts(maps, nb, sigmas, 4000, rng)
    observed = background_ts(maps, nb, sigmas, 2000, rng)  # background-only experiments
    pvals = np.array([p_value(ts, trials) for ts in observed])
    positive = float(np.mean(observed > 0))
    assert 0.05 < positive < 0.95, "some, not all, experiments have a signal-like event"
    assert np.all(pvals[observed == 0] == 1.0)
    for alpha in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5):
        if alpha >= positive:
            continue
        frac = float(np.mean(pvals <= alpha))
        tol = 4 * np.sqrt(alpha * (1 - alpha) / pvals.size) + 2 / trials.size
        assert abs(frac - alpha) < tol, (alpha, frac)


def test_p_is_one_at_ts_zero_whatever_the_trials() -> None:
    trials = np.array([0.0, 0.0, 1.5, 3.0])
    assert p_value(0.0, trials) == 1.0
    assert p_value(1.5, trials) == pytest.approx(3 / 5)  # 2 trials ≥ 1.5, plus the observation
    assert p_value(10.0, trials) == pytest.approx(1 / 5)


def test_identical_empty_inputs_give_p_one_for_every_revision() -> None:
    empty = np.array([])
    for seed in (1, 2, 3):
        out = neutrino_llh(_input(empty, empty, empty, empty, seed=seed))
        assert out.statistics["ts"] == 0.0 and out.statistics["p_value"] == 1.0
    assert "p = 1 at TS = 0" in out.details["p_value_convention"]


def _input(
    times_s: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    sigma: np.ndarray,
    seed: int,
    loc: Localization = MAP,
    source: str = "LVK",
) -> AnalysisInput[LlhParams]:
    alert = Alert("S1", f"r{seed}", AlertType.PRELIMINARY, Role.OBSERVATION, source, T0, 1e-8, loc,
                  SourceRef("t", 0, 0, "x"))  # fmt: skip
    n = times_s.size
    cols = EventColumns("icecube", np.array([f"e{i}" for i in range(n)]), T0 + (times_s * NS_PER_S).astype(np.int64),
                        ra, dec, sigma, np.full(n, np.nan), np.zeros(n, np.int32), np.arange(n))  # fmt: skip
    return AnalysisInput(alert, Window.around(T0, -500, 500), {"icecube": cols},
                         LlhParams(background_rate_hz=RATE, n_trials=300, seed=seed))  # fmt: skip


@pytest.mark.parametrize("name", sorted(LOCALIZATIONS))
def test_a_bright_neutrino_at_the_localization_peak_is_found(name: str) -> None:
    loc = LOCALIZATIONS[name]()
    ra0, dec0 = _peak(loc)
    source = {"multiorder": "LVK", "circle": "IceCube", "flat": "Fermi"}[name]
    # The GBM map's 90 % region is 570 deg² (S/B = 240 at its peak, against ~1500 for the
    # 56-deg² GW map): one event there is a ~2σ hint, so the flat map's source sends two.
    n_sig = 2 if name == "flat" else 1
    rng = np.random.default_rng(7)
    found = 0
    runs = 40
    for k in range(runs):
        n_bg = rng.poisson(NB)
        ra = np.concatenate([rng.uniform(0, 360, n_bg), [ra0] * n_sig])
        dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, n_bg))), [dec0] * n_sig])
        sigma = np.concatenate([rng.uniform(0.5, 2.0, n_bg), [0.5] * n_sig])
        times = rng.uniform(-500, 500, n_bg + n_sig)
        out = neutrino_llh(_input(times, ra, dec, sigma, seed=k, loc=loc, source=source))
        found += out.statistics["p_value"] < 0.01
        if k == 0:
            top = out.events[0]
            assert top.ra_deg == ra0 and top.values["signal_weight"] > 0.5
            assert out.details["localization"]["kind"] == name
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
    # the second notice LVK sent about S1, a preliminary: named as LVK names it
    inp = replace(inp, alert=replace(inp.alert, extra={"notice_number": 2}))
    out = neutrino_llh(inp)
    assert out.notice is not None
    notice = {**out.notice, "alert_datetime": "2027-01-15T08:00:00Z"}
    assert notice["reference"] == {"gcn.notices.LVK.alert": "S1-2-Preliminary"}
    assert notice["alert_tense"] == "current" and notice["alert_type"] == "initial"
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
