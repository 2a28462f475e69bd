"""Space-time coincidence of our events with any localized alert, with RAVEN joint FARs.

Any localization the decoders make serves: a GW or Fermi GBM sky map, a Swift or IceCube
circle, an Einstein Probe or MAXI ellipse (sky/localization.py). The window comes from the
table by the alert's kind (analyses/windows.py), held in the ``windows`` parameter.
"""

from __future__ import annotations

import numpy as np
from pydantic import ConfigDict, Field

from mmstream.analyses.registry import (
    AnalysisInput,
    CoincidentEvent,
    Outcome,
    analysis,
)
from mmstream.analyses.windows import FOLLOW_UP_WINDOWS, KindWindows, alert_kind, by_kind
from mmstream.model import NS_PER_S
from mmstream.sky import localization as sky
from mmstream.stats.raven import spacetime_far, temporal_far


class CoincidenceParams(KindWindows):
    model_config = ConfigDict(extra="forbid", frozen=True)

    credible_level: float = Field(0.9, gt=0, le=1, description="Coincident inside this region.")
    neutrino_rate_hz: float | None = Field(
        None, ge=0, description="Rate of such neutrino events, R_ext for the joint FAR."
    )
    min_livetime_fraction: float = Field(0.9, ge=0, le=1)


@analysis(
    name="spacetime_coincidence",
    version="2.0.0",
    window=FOLLOW_UP_WINDOWS["other"],
    window_by=by_kind,
    params=CoincidenceParams,
    requires=["time", "localization"],
    min_livetime="min_livetime_fraction",
)
def spacetime_coincidence(inp: AnalysisInput[CoincidenceParams]) -> Outcome:
    """Our events in the window inside the alert's credible region, each with its joint FAR.

    Per event: the localization's density at the event and its credible level (for a circle
    or an ellipse, of the region widened by the event's error), the localization convolved
    with the event's PSF (S, sr^-1), I = 4πS (RAVEN's overlap with the event), the angular
    separation from a region's centre, and where a neutrino rate and the alert's FAR are
    known FAR_t = Δt·R·FAR_alert and FAR_st = FAR_t / I.
    """
    alert, p = inp.alert, inp.params
    loc = alert.localization
    assert loc is not None and alert.time_ns is not None  # declared: the runner checks it
    window_s = (
        (inp.window.start_ns - alert.time_ns) / NS_PER_S,
        (inp.window.end_ns - alert.time_ns) / NS_PER_S,
    )
    t_far = None
    if p.neutrino_rate_hz is not None and alert.far_hz is not None:
        t_far = temporal_far(window_s, p.neutrino_rate_hz, alert.far_hz)
    coincident: list[CoincidentEvent] = []
    n_total = 0
    for _, cols in sorted(inp.events.items()):
        n_total += len(cols)
        if not len(cols):
            continue
        dens, level = sky.density_and_level(loc, cols.ra_deg, cols.dec_deg, cols.sigma_deg)
        inside = np.flatnonzero(level <= p.credible_level)
        # a map's PSF convolution costs ~0.4 ms an event: only for the events reported
        conv = sky.psf_density(
            loc, cols.ra_deg[inside], cols.dec_deg[inside], cols.sigma_deg[inside]
        )
        sep = sky.separation_deg(loc, cols.ra_deg[inside], cols.dec_deg[inside])
        dt = (cols.time_ns - alert.time_ns) / NS_PER_S
        for k, i in enumerate(inside):
            values = {
                "dt_s": float(dt[i]),
                "credible_level": float(level[i]),
                "probdensity_sr": float(dens[i]),
                "psf_probdensity_sr": float(conv[k]),
                "overlap": float(4 * np.pi * conv[k]),
            }
            if sep is not None:
                values["separation_deg"] = float(sep[k])
            if t_far is not None:
                values["temporal_far_hz"] = t_far
                if values["overlap"] > 0:  # else infinite: left out
                    values["spacetime_far_hz"] = spacetime_far(t_far, values["overlap"])
            coincident.append(CoincidentEvent.of(cols, int(i), values))
    coincident.sort(key=lambda e: e.values["credible_level"])
    stats: dict[str, float] = {
        "n_events": float(n_total),
        "n_coincident": float(len(coincident)),
        "window_s": window_s[1] - window_s[0],
    }
    if (lt := inp.livetime_fraction()) is not None:
        stats["livetime_fraction"] = lt
    details: dict[str, object] = {
        "credible_level": p.credible_level,
        "alert_kind": alert_kind(alert),
        "localization": sky.describe(loc),
    }
    if t_far is not None:
        stats["temporal_far_hz"] = t_far
        best = min((e.values["spacetime_far_hz"] for e in coincident
                    if "spacetime_far_hz" in e.values), default=None)  # fmt: skip
        if best is not None:
            stats["min_spacetime_far_hz"] = best
        details["joint_far_inputs"] = {
            "window_s": list(window_s),
            "rate_ext_hz": p.neutrino_rate_hz,
            "far_alert_hz": alert.far_hz,
            "formula": "RAVEN: dt*R*FAR_alert / I",
        }
    pct = round(100 * p.credible_level)
    summary = (
        f"{len(coincident)} of {n_total} event(s) in the window lie in the {pct}% region "
        f"of the {alert_kind(alert)} alert's {sky.kind(loc)} localization"
    )
    if coincident:
        summary += ": " + ", ".join(e.event_id for e in coincident[:10])
    return Outcome(summary=summary, statistics=stats, events=tuple(coincident), details=details)
