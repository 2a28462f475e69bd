"""Temporal coincidence: which detector events fall in a window around the alert time."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import poisson

from mmstream.analyses.registry import AnalysisInput, CoincidentEvent, Outcome, analysis
from mmstream.analyses.windows import window_for
from mmstream.model import NS_PER_S, Alert
from mmstream.stats.raven import temporal_far


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
    requires=["time"],
)
def temporal_coincidence(inp: AnalysisInput[TemporalParams]) -> Outcome:
    """Detector events within the window around the alert time, with their time offsets.

    With a background rate, also the Poisson probability of seeing at least this many.
    """
    t0 = inp.alert.time_ns
    assert t0 is not None  # declared: the runner checks it
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
        # over the live part of the window only: no background accrues while the detector
        # is down (unknown livetime counts as live)
        live = inp.livetime_fraction()
        expected = (
            inp.params.background_rate_hz * inp.window.duration_s * (1.0 if live is None else live)
        )
        stats["expected_background"] = expected
        stats["p_value"] = float(poisson.sf(n_total - 1, expected)) if n_total else 1.0
        summary += f" (expected {expected:.3g}, p = {stats['p_value']:.3g})"
    return Outcome(summary=summary, statistics=stats, events=tuple(listed))


def _s(inp: AnalysisInput[TemporalParams], edge: str) -> str:
    assert inp.alert.time_ns is not None
    value = getattr(inp.window, f"{edge}_ns") - inp.alert.time_ns
    return f"{value / NS_PER_S:+g}"


class RavenTemporalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    external: str = Field("neutrino", description="Row of the RAVEN window table (windows.py).")
    external_rate_hz: float = Field(
        6.7e-3, gt=0, description="Rate of such external events: R_ext in FAR = Δt·R_ext·FAR_GW."
    )


def _raven_window(alert: Alert) -> tuple[float, float]:
    return window_for("neutrino", alert, (-500.0, 500.0))


@analysis(
    name="raven_temporal_coincidence",
    version="1.0.0",
    window=(-500.0, 500.0),
    window_by=_raven_window,
    params=RavenTemporalParams,
    sources=["LVK"],
    requires=["time"],
)
def raven_temporal_coincidence(inp: AnalysisInput[RavenTemporalParams]) -> Outcome:
    """Events in RAVEN's window for the alert's group, with the temporal joint FAR.

    FAR = Δt · R_ext · FAR_GW for the coincidence of the GW with any such event.
    """
    alert = inp.alert
    if alert.time_ns is None:
        return Outcome(summary="alert has no event time; nothing to compare")
    base = temporal_coincidence.func(
        AnalysisInput(
            alert, inp.window, inp.events, TemporalParams(), inp.complete, inp.notes, inp.livetime
        )
    )
    window_s = (
        (inp.window.start_ns - alert.time_ns) / NS_PER_S,
        (inp.window.end_ns - alert.time_ns) / NS_PER_S,
    )
    stats = dict(base.statistics)
    details: dict[str, object] = {"window_s": list(window_s), "group": alert.extra.get("group")}
    summary = base.summary
    if alert.far_hz is not None and stats.get("n_events", 0) > 0:
        far = temporal_far(window_s, inp.params.external_rate_hz, alert.far_hz)
        stats["temporal_far_hz"] = far
        details["joint_far_inputs"] = {
            "window_s": list(window_s),
            "far_gw_hz": alert.far_hz,
            "rate_ext_hz": inp.params.external_rate_hz,
        }
        summary += f"; joint temporal FAR {far:.3g} Hz"
    return Outcome(summary=summary, statistics=stats, events=base.events, details=details)
