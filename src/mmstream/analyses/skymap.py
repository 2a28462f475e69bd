"""Sky-map coincidence: is each detector event in the window inside the alert's credible region?"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mmstream.analyses.registry import AnalysisInput, CoincidentEvent, Outcome, analysis
from mmstream.model import NS_PER_S
from mmstream.sky.moc import credible_level_at, probdensity_at


class SkymapParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    credible_level: float = Field(
        default=0.9, gt=0, le=1, description="An event is coincident inside this credible region."
    )


@analysis(
    name="skymap_coincidence",
    version="0.1.0",
    window=(-500.0, 500.0),
    params=SkymapParams,
)
def skymap_coincidence(inp: AnalysisInput[SkymapParams]) -> Outcome:
    """Events in the time window whose position lies in the alert's credible region.

    Uses the sky-map value at each event's best-fit position (no convolution with the
    event's angular uncertainty yet).
    """
    alert = inp.alert
    if alert.skymap is None or alert.time_ns is None:
        return Outcome(summary="alert has no sky map or no time; nothing to compare")
    coincident: list[CoincidentEvent] = []
    n_total = 0
    for detector, cols in sorted(inp.events.items()):
        n_total += len(cols)
        if not len(cols):
            continue
        level = credible_level_at(alert.skymap, cols.ra_deg, cols.dec_deg)
        dens = probdensity_at(alert.skymap, cols.ra_deg, cols.dec_deg)
        dt = (cols.time_ns - alert.time_ns) / NS_PER_S
        for i in np.flatnonzero(level <= inp.params.credible_level):
            coincident.append(
                CoincidentEvent(
                    event_id=str(cols.event_id[i]),
                    detector=detector,
                    time_ns=int(cols.time_ns[i]),
                    ra_deg=float(cols.ra_deg[i]),
                    dec_deg=float(cols.dec_deg[i]),
                    sigma_deg=float(cols.sigma_deg[i]),
                    values={
                        "dt_s": float(dt[i]),
                        "credible_level": float(level[i]),
                        "probdensity_sr": float(dens[i]),
                    },
                )
            )
    coincident.sort(key=lambda e: e.values["credible_level"])
    pct = round(100 * inp.params.credible_level)
    summary = f"{len(coincident)} of {n_total} event(s) in the window lie in the {pct}% region"
    if coincident:
        summary += ": " + ", ".join(e.event_id for e in coincident[:10])
    return Outcome(
        summary=summary,
        statistics={"n_events": float(n_total), "n_coincident": float(len(coincident))},
        events=tuple(coincident),
    )
