"""Unbinned likelihood test of our neutrinos against any alert's localization, with a notice.

The localization (a GW or GBM map, a circle, an ellipse: sky/localization.py) is the signal's
spatial prior; the window comes from the table by alert kind (analyses/windows.py)."""

from __future__ import annotations

import hashlib

import healpy as hp
import numpy as np
from pydantic import ConfigDict, Field

from mmstream.analyses.registry import (
    AnalysisInput,
    CoincidentEvent,
    Outcome,
    analysis,
)
from mmstream.analyses.windows import FOLLOW_UP_WINDOWS, KindWindows, alert_kind, by_kind
from mmstream.formats.notices import NoticeEvent, lvk_nu_track_search
from mmstream.model import NS_PER_S
from mmstream.sky import localization as sky
from mmstream.stats.llh import BACKGROUND_DENSITY, background_ts, maximize_ts, p_value, signal_maps


class LlhParams(KindWindows):
    model_config = ConfigDict(extra="forbid", frozen=True)

    background_rate_hz: float = Field(6.7e-3, gt=0, description="Detector event rate in the map.")
    n_trials: int = Field(1000, ge=10, le=1_000_000, description="Background trials for p.")
    min_livetime_fraction: float = Field(0.9, ge=0, le=1)
    seed: int | None = Field(None, description="Trial seed; default: from alert id and revision.")


@analysis(
    name="neutrino_llh",
    version="2.0.0",
    window=FOLLOW_UP_WINDOWS["other"],
    window_by=by_kind,
    params=LlhParams,
    requires=["time", "localization"],
    min_livetime="min_livetime_fraction",
)
def neutrino_llh(inp: AnalysisInput[LlhParams]) -> Outcome:
    """Likelihood test (TS, n̂_s, p from background trials) of the window's neutrinos against
    the alert's localization. With TS = 0 (no event more signal- than background-like, or no
    event at all) p = 1 by convention; otherwise p is the fraction of trials with TS ≥ TS_obs."""
    alert, p = inp.alert, inp.params
    loc = alert.localization
    assert loc is not None and alert.time_ns is not None  # declared: the runner checks it
    seed = p.seed if p.seed is not None else _seed(alert.alert_id, alert.revision)
    rng = np.random.default_rng(seed)
    maps = signal_maps(sky.as_map(loc))
    live = inp.livetime_fraction()
    n_b = p.background_rate_hz * inp.window.duration_s * (1.0 if live is None else live)

    cols = [c for _, c in sorted(inp.events.items()) if len(c)]
    ra = np.concatenate([c.ra_deg for c in cols]) if cols else np.empty(0)
    dec = np.concatenate([c.dec_deg for c in cols]) if cols else np.empty(0)
    sig = np.concatenate([c.sigma_deg for c in cols]) if cols else np.empty(0)
    s = maps.at(ra, dec, sig)
    ratio = s / BACKGROUND_DENSITY
    ts, ns = maximize_ts(ratio, n_b)
    trials = background_ts(maps, n_b, sig if sig.size else np.array([1.0]), p.n_trials, rng)
    pval = p_value(ts, trials)
    single = np.sort(
        background_ts(maps, n_b, sig if sig.size else np.array([1.0]), p.n_trials, rng)
    )

    weights = ns * ratio / (n_b + ns * ratio) if ns > 0 else np.zeros_like(ratio)
    direction = _most_probable_direction(ra, dec, weights, maps)
    events: list[CoincidentEvent] = []
    i = 0
    for c in cols:
        for j in range(len(c)):
            ev_ts = maximize_ts(ratio[i : i + 1], n_b)[0]
            ev_p = float((np.sum(single >= ev_ts) + 1) / (single.size + 1)) if ev_ts > 0 else 1.0
            events.append(
                CoincidentEvent(
                    str(c.event_id[j]),
                    c.detector,
                    int(c.time_ns[j]),
                    float(c.ra_deg[j]),
                    float(c.dec_deg[j]),
                    float(c.sigma_deg[j]),
                    {
                        "dt_s": (int(c.time_ns[j]) - alert.time_ns) / NS_PER_S,
                        "signal_density_sr": float(s[i]),
                        "ratio": float(ratio[i]),
                        "signal_weight": float(weights[i]),
                        "p_value": ev_p,
                    },
                )
            )
            i += 1
    events.sort(key=lambda e: -e.values["ratio"])
    coincident = [e for e in events if e.values["ratio"] > 1.0]
    stats = {
        "ts": ts,
        "ns_hat": ns,
        "p_value": pval,
        "n_trials": float(p.n_trials),
        "n_events": float(len(events)),
        "n_coincident": float(len(coincident)),
        "expected_background": n_b,
        "seed": float(seed),
        "most_probable_ra_deg": direction[0],
        "most_probable_dec_deg": direction[1],
    }
    if live is not None:
        stats["livetime_fraction"] = live
    assert alert.time_ns is not None
    notice = lvk_nu_track_search(
        alert=alert,
        first=inp.context.previous is None,
        trigger_ns=alert.time_ns,
        window=inp.window,
        live_fraction=live,
        p_value=pval,
        events=[NoticeEvent(e.values["dt_s"], e.ra_deg, e.dec_deg, e.sigma_deg, e.event_id,
                            e.values["p_value"]) for e in coincident],
        direction=direction,
    )  # fmt: skip
    summary = (
        f"TS = {ts:.2f}, n_s = {ns:.2f}, p = {pval:.3g} ({p.n_trials} trials); "
        f"{len(coincident)} of {len(events)} event(s) more signal- than background-like"
    )
    return Outcome(
        summary=summary,
        statistics=stats,
        events=tuple(events),
        notice=notice,
        details={
            "background": "isotropic",
            "psf_sigma_bins_deg": maps.sigmas_deg.tolist(),
            "p_value_convention": "p = 1 at TS = 0; else (#trials with TS >= TS_obs + 1) / "
            "(n_trials + 1)",
            "alert_kind": alert_kind(alert),
            "localization": sky.describe(loc),
        },
    )


def _seed(alert_id: str, revision: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{alert_id}\n{revision}".encode()).digest()[:4], "little")


def _most_probable_direction(
    ra: np.ndarray, dec: np.ndarray, weights: np.ndarray, maps: object
) -> tuple[float, float]:
    """Signal-weighted mean event direction; the map's densest pixel when there is no signal."""
    if weights.size and weights.sum() > 0:
        vec = hp.ang2vec(ra, dec, lonlat=True)
        mean = (weights[:, None] * vec).sum(axis=0)
        lon, lat = hp.vec2ang(mean / np.linalg.norm(mean), lonlat=True)
        return float(lon[0]), float(lat[0])
    density = maps.density[0]  # type: ignore[attr-defined]
    lon, lat = hp.pix2ang(maps.nside, int(np.argmax(density)), lonlat=True)  # type: ignore[attr-defined]
    return float(lon), float(lat)
