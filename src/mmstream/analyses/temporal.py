"""Temporal coincidence: which detector events fall in a window around the alert time."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import poisson

from mmstream.analyses.registry import AnalysisInput, CoincidentEvent, Outcome, analysis
from mmstream.model import NS_PER_S


class TemporalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    background_rate_hz: float | None = Field(
        default=None,
        ge=0,
        description="Known background event rate; when set, the result has a Poisson p-value.",
    )
    max_listed: int = Field(default=1000, ge=0, description="Most events listed in a result.")


@analysis(
    name="temporal_coincidence",
    version="1.0.0",
    window=(-500.0, 500.0),
    params=TemporalParams,
)
def temporal_coincidence(inp: AnalysisInput[TemporalParams]) -> Outcome:
    """Detector events within the window around the alert time, with their time offsets.

    With a background rate, also the Poisson probability of seeing at least this many.
    """
    t0 = inp.alert.time_ns
    if t0 is None:
        return Outcome(summary="alert has no event time; nothing to compare")
    listed: list[CoincidentEvent] = []
    n_total = 0
    for detector, cols in sorted(inp.events.items()):
        n_total += len(cols)
        dt = (cols.time_ns - t0) / NS_PER_S
        for i in np.argsort(np.abs(dt), kind="stable")[
            : max(0, inp.params.max_listed - len(listed))
        ]:
            listed.append(
                CoincidentEvent(
                    event_id=str(cols.event_id[i]),
                    detector=detector,
                    time_ns=int(cols.time_ns[i]),
                    ra_deg=float(cols.ra_deg[i]),
                    dec_deg=float(cols.dec_deg[i]),
                    sigma_deg=float(cols.sigma_deg[i]),
                    values={"dt_s": float(dt[i])},
                )
            )
    stats: dict[str, float] = {"n_events": float(n_total), "window_s": inp.window.duration_s}
    summary = f"{n_total} detector event(s) within [{_s(inp, 'start')}, {_s(inp, 'end')}] s"
    if inp.params.background_rate_hz is not None:
        expected = inp.params.background_rate_hz * inp.window.duration_s
        stats["expected_background"] = expected
        stats["p_value"] = float(poisson.sf(n_total - 1, expected)) if n_total else 1.0
        summary += f" (expected {expected:.3g}, p = {stats['p_value']:.3g})"
    return Outcome(summary=summary, statistics=stats, events=tuple(listed))


def _s(inp: AnalysisInput[TemporalParams], edge: str) -> str:
    assert inp.alert.time_ns is not None
    value = getattr(inp.window, f"{edge}_ns") - inp.alert.time_ns
    return f"{value / NS_PER_S:+g}"
