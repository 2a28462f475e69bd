"""Supernova burst search: our event count at a SNEWS or Super-K alert against the rate before.

A galactic core-collapse supernova shows in a neutrino detector as an excess of events over
~10 s, seen all over the detector rather than from one direction, so the search counts
every event in the signal window and compares it with the rate measured in the hour before
it, each over its live time only (excluded intervals are neither signal nor background).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import norm, poisson

from mmstream.analyses.registry import AnalysisInput, CoincidentEvent, Outcome, analysis
from mmstream.analyses.windows import FOLLOW_UP_WINDOWS
from mmstream.model import NS_PER_S, Alert, Livetime

SIGNAL = FOLLOW_UP_WINDOWS["supernova"]


class BurstParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signal_window_s: tuple[float, float] = Field(
        SIGNAL, description="Signal window around the alert time (SNEWS's ±10 s)."
    )
    background_s: float = Field(3600.0, gt=0, description="Background span before the signal.")
    max_listed: int = Field(1000, ge=0)


def _window(alert: Alert, params: BurstParams) -> tuple[float, float]:
    start, end = params.signal_window_s
    return start - params.background_s, end


@analysis(
    name="supernova_burst",
    version="1.0.0",
    window=(SIGNAL[0] - 3600.0, SIGNAL[1]),
    window_by=_window,
    params=BurstParams,
    sources=["SNEWS", "Super-Kamiokande"],
    requires=["time"],
)
def supernova_burst(inp: AnalysisInput[BurstParams]) -> Outcome:
    """Events in the signal window against the live-time rate in the span before it:
    the Poisson p-value of at least that many, its one-sided Gaussian significance, and the
    signal window's events listed."""
    t0 = inp.alert.time_ns
    assert t0 is not None  # declared: the runner checks it
    p = inp.params
    sig_start = t0 + round(p.signal_window_s[0] * NS_PER_S)
    sig_end = t0 + round(p.signal_window_s[1] * NS_PER_S)
    bg_start = sig_start - round(p.background_s * NS_PER_S)
    n_sig = n_bg = 0
    expected = live_sig = live_bg = 0.0
    listed: list[CoincidentEvent] = []
    # each detector's rate over its own live time; the expectations add up
    for detector in sorted(set(inp.events) | set(inp.livetime)):
        cols = inp.events.get(detector)
        lt = inp.livetime.get(detector)
        d_live_sig = _live_s(lt, sig_start, sig_end)
        d_live_bg = _live_s(lt, bg_start, sig_start)
        d_sig = d_bg = 0
        if cols is not None:
            in_sig = (cols.time_ns >= sig_start) & (cols.time_ns <= sig_end)
            d_sig = int(in_sig.sum())
            d_bg = int(((cols.time_ns >= bg_start) & (cols.time_ns < sig_start)).sum())
            for i in np.flatnonzero(in_sig)[: max(0, p.max_listed - len(listed))]:
                dt = (int(cols.time_ns[i]) - t0) / NS_PER_S
                listed.append(CoincidentEvent.of(cols, i, {"dt_s": dt}))
        n_sig, n_bg = n_sig + d_sig, n_bg + d_bg
        live_sig, live_bg = max(live_sig, d_live_sig), max(live_bg, d_live_bg)
        if d_live_bg > 0:
            expected += d_bg / d_live_bg * d_live_sig
    stats: dict[str, float] = {
        "n_signal": float(n_sig),
        "n_background": float(n_bg),
        "live_signal_s": live_sig,
        "live_background_s": live_bg,
    }
    if live_bg <= 0:
        return Outcome(
            summary=f"{n_sig} event(s) in the signal window; no live background span before "
            "it to measure the rate against",
            statistics=stats,
            events=tuple(listed),
        )
    pval = float(poisson.sf(n_sig - 1, expected)) if n_sig else 1.0
    stats.update(expected=expected, p_value=pval,
                 significance_sigma=float(max(norm.isf(pval), 0.0)))  # fmt: skip
    summary = (
        f"{n_sig} event(s) in [{p.signal_window_s[0]:+g}, {p.signal_window_s[1]:+g}] s against "
        f"{expected:.3g} expected ({n_bg} in the {live_bg:.0f} live s before): p = {pval:.3g}, "
        f"{stats['significance_sigma']:.1f} sigma"
    )
    return Outcome(
        summary=summary,
        statistics=stats,
        events=tuple(listed),
        details={"method": "Poisson, background rate from the live span before the signal"},
    )


def _live_s(lt: Livetime | None, start_ns: int, end_ns: int) -> float:
    """Seconds of [start, end) outside the detector's excluded intervals (all of it when
    the detector reports no status)."""
    span = (end_ns - start_ns) / NS_PER_S
    if lt is None:
        return span
    lost = sum(max(0, min(e.end_ns, end_ns) - max(e.start_ns, start_ns)) for e in lt.excluded)
    return max(0.0, span - lost / NS_PER_S)
