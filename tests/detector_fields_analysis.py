"""A physicist's analysis in a module of its own, using what only this detector sends: each
event's signalness (the detector's own schema) and the calibration in effect at its time (the
detector's context stream)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mmstream.analyses import AnalysisInput, CoincidentEvent, Outcome, analysis
from mmstream.model import NS_PER_S


class SignalnessParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_signalness: float = Field(0.5, ge=0, le=1, description="Listed from this signalness on.")


@analysis(name="signalness_weighted", version="1.0.0", window=(-500.0, 500.0),
          params=SignalnessParams, requires=["time"], conditions=["calibration"])  # fmt: skip
def signalness_weighted(inp: AnalysisInput[SignalnessParams]) -> Outcome:
    """Events weighted by their signalness: the sum, and those above the threshold with the
    calibration their reconstruction used."""
    assert inp.alert.time_ns is not None
    listed: list[CoincidentEvent] = []
    total = 0.0
    calibrations: set[str] = set()
    for detector, cols in sorted(inp.events.items()):
        signalness = cols.fields.get("signalness")
        if signalness is None or not len(cols):
            continue
        total += float(np.sum(signalness))
        cal = inp.conditions[detector].at["calibration"] if detector in inp.conditions else None
        for i in np.flatnonzero(signalness >= inp.params.min_signalness):
            if cal is not None:
                calibrations.add(str(cal[i]))
            listed.append(CoincidentEvent(
                str(cols.event_id[i]), detector, int(cols.time_ns[i]), float(cols.ra_deg[i]),
                float(cols.dec_deg[i]), float(cols.sigma_deg[i]),
                {"signalness": float(signalness[i]),
                 "dt_s": (int(cols.time_ns[i]) - inp.alert.time_ns) / NS_PER_S}))  # fmt: skip
    return Outcome(
        summary=f"{len(listed)} event(s) with signalness >= {inp.params.min_signalness}; "
        f"signalness sum {total:.3f}",
        statistics={"signalness_sum": total, "n_signal_like": float(len(listed))},
        events=tuple(listed),
        details={"calibrations": sorted(calibrations)},
    )
