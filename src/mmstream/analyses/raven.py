"""Alert × alert coincidence as RAVEN does it: a GW superevent against GRBs, sub-threshold
GRBs, neutrino and supernova alerts, and neutrino alerts against each other.

Whichever alert of a pair reaches us second runs this analysis and reads the first
(``inp.alerts``); a later revision or retraction of either updates the joint result (the
service re-runs it: stream/alertbook.py). Windows are RAVEN's (analyses/windows.py), as the
time of the external alert minus the GW's, by the GW's group (CBC or Burst); joint FARs
are RAVEN's (stats/raven.py): FAR_t = Δt·R_ext·FAR_GW, the targeted form for sub-threshold
GRBs with a FAR of their own, and FAR_st = FAR_t / I with I the overlap of the two
localizations (sky/localization.py), where both have one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mmstream.analyses.inputs import OtherAlert
from mmstream.analyses.registry import AnalysisInput, Outcome, analysis
from mmstream.analyses.windows import WINDOWS, alert_kind, sources_of
from mmstream.model import NS_PER_S, Alert
from mmstream.sky import localization as sky
from mmstream.stats.raven import (
    SECONDS_PER_RAVEN_YEAR,
    TARGETED_THRESHOLDS,
    spacetime_far,
    targeted_far,
    temporal_far,
)

PAIR_KINDS = ("GW", "GRB", "SubGRB", "neutrino", "supernova")
RATES_PER_YEAR = {"GRB": 310.0, "SubGRB": 375.0, "neutrino": 30.0, "supernova": 1.0}
SOURCES = sources_of(PAIR_KINDS)  # every source whose alerts RAVEN pairs
GROUPS = ("CBC", "Burst")


class RavenParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rates_per_year: dict[str, float] = Field(
        default_factory=lambda: dict(RATES_PER_YEAR),
        description="R_ext by kind, per 365-day year (RAVEN: 310 GRBs; 375 with "
        "sub-threshold ones; ~30 IceCube gold + bronze tracks).",
    )
    multiplet_window_s: tuple[float, float] = Field(
        (-500.0, 500.0), description="Neutrino alert against neutrino alert."
    )


def _external_row(external: Alert) -> str | None:
    kind = alert_kind(external)
    if kind == "SubGRB":
        return "SubGRB-Swift" if external.source == "Swift" else "SubGRB-Fermi"
    return {"GRB": "GRB", "neutrino": "neutrino", "supernova": "SNEWS"}.get(kind)


def allowed_dt(gw: Alert, external: Alert) -> tuple[float, float] | None:
    """RAVEN's range of t_external - t_GW for this pair, by the GW's group; None when RAVEN
    does not pair a GW with this kind."""
    group = str(gw.extra.get("group") or "CBC")
    row = _external_row(external)
    return None if row is None else WINDOWS.get((row, group))


def _kind_window(trigger_kind: str, params: RavenParams) -> tuple[float, float]:
    """Every partner time this trigger could pair with (the GW's group may be unknown)."""
    spans: list[tuple[float, float]] = []
    rows = {"GRB": ["GRB"], "SubGRB": ["SubGRB-Fermi", "SubGRB-Swift"],
            "neutrino": ["neutrino"], "supernova": ["SNEWS"]}  # fmt: skip
    if trigger_kind == "GW":
        spans = [WINDOWS[(r, g)] for rs in rows.values() for r in rs for g in GROUPS]
    elif trigger_kind in rows:  # the partner is the GW: t_GW - t_ext = -(t_ext - t_GW)
        spans = [(-WINDOWS[(r, g)][1], -WINDOWS[(r, g)][0]) for r in rows[trigger_kind]
                 for g in GROUPS]  # fmt: skip
    if trigger_kind == "neutrino":
        spans.append(params.multiplet_window_s)
    if not spans:
        return (0.0, 0.0)
    return min(s[0] for s in spans), max(s[1] for s in spans)


def _window(alert: Alert, params: RavenParams) -> tuple[float, float]:
    return _kind_window(alert_kind(alert), params)


@analysis(
    name="raven_coincidence",
    version="1.0.0",
    window=(-600.0, 600.0),
    window_by=_window,
    params=RavenParams,
    sources=SOURCES,
    requires=["time"],
    detectors=(),
    alerts=PAIR_KINDS,
)
def raven_coincidence(inp: AnalysisInput[RavenParams]) -> Outcome:
    """The other alerts that pair with this one in RAVEN's windows, each with the joint
    temporal FAR, the overlap of the localizations and the space-time FAR."""
    me = inp.alert
    assert me.time_ns is not None  # declared: the runner checks it
    kind = alert_kind(me)
    found: list[dict[str, Any]] = []
    withdrawn: list[dict[str, Any]] = []
    for other in inp.alerts:
        pair = _pair(me, other, inp.params)
        if pair is None:
            continue
        (withdrawn if other.retracted else found).append(pair)
    found.sort(key=lambda c: c.get("spacetime_far_hz", c.get("temporal_far_hz", 1.0)))
    stats: dict[str, float] = {"n_coincident": float(len(found)),
                               "n_alerts_read": float(len(inp.alerts))}  # fmt: skip
    for name in ("temporal_far_hz", "spacetime_far_hz"):
        values = [c[name] for c in found if c.get(name) is not None]
        if values:
            stats[f"min_{name}"] = min(values)
    details: dict[str, Any] = {"alert_kind": kind, "coincidences": found,
                               "localization": sky.describe(me.localization)}  # fmt: skip
    if withdrawn:
        details["retracted_partners"] = withdrawn
    if found:
        best = found[0]
        far = best.get("spacetime_far_hz", best.get("temporal_far_hz"))
        summary = (f"{kind} {me.alert_id} pairs with {len(found)} alert(s); best "
                   f"{best['alert_id']} ({best['kind']}, dt {best['dt_s']:+.3g} s"
                   + (f", joint FAR {far:.3g} Hz" if far is not None else "") + ")")  # fmt: skip
    else:
        summary = f"{kind} {me.alert_id}: no alert pairs with it in RAVEN's windows"
    if withdrawn:
        ids = ", ".join(w["alert_id"] for w in withdrawn)
        summary += f"; withdrawn by retraction: {ids}"
    return Outcome(summary=summary, statistics=stats, details=details)


def _pair(me: Alert, other: OtherAlert, p: RavenParams) -> dict[str, Any] | None:
    """The pair's numbers, or None when the two do not pair (kinds, or the window)."""
    you = other.alert
    assert me.time_ns is not None and you.time_ns is not None
    mine, yours = alert_kind(me), alert_kind(you)
    dt = (you.time_ns - me.time_ns) / NS_PER_S  # the partner's time minus the trigger's
    out: dict[str, Any] = {"alert_id": you.alert_id, "revision": you.revision,
                           "source": you.source, "kind": yours, "dt_s": dt,
                           "retracted": other.retracted}  # fmt: skip
    if "GW" in (mine, yours) and mine != yours:
        gw, ext = (me, you) if mine == "GW" else (you, me)
        span = allowed_dt(gw, ext)
        if span is None:
            return None
        dt_ext = dt if mine == "GW" else -dt  # t_ext - t_GW
        if not span[0] <= dt_ext <= span[1]:
            return None
        out["window_s"] = list(span)
        if gw.far_hz is not None and alert_kind(ext) != "supernova":  # RAVEN: no SNEWS FAR
            out["far_gw_hz"] = gw.far_hz
            out["temporal_far_hz"] = _temporal(span, alert_kind(ext), ext, gw.far_hz, p)
            targeted = alert_kind(ext) == "SubGRB" and ext.far_hz is not None
            out["far_formula"] = "targeted: z(1 - ln(z/z_max))" if targeted else "dt*R_ext*FAR_GW"
    elif mine == yours == "neutrino":
        span = p.multiplet_window_s
        if not span[0] <= dt <= span[1]:
            return None
        out["window_s"] = list(span)
        rate = p.rates_per_year.get("neutrino", 0.0) / SECONDS_PER_RAVEN_YEAR
        fars = [a.far_hz if a.far_hz is not None else rate for a in (me, you)]
        # RAVEN's form with the more significant alert in the GW's place: the same whichever
        # of the two came first
        out["temporal_far_hz"] = temporal_far(span, rate, min(fars))
        out["far_formula"] = "dt * R_neutrino * min(FAR_a, FAR_b) (a rate where no FAR)"
    else:
        return None
    if me.localization is not None and you.localization is not None:
        overlap = sky.overlap_integral(me.localization, you.localization)
        out["overlap"] = overlap
        # no space-time FAR for disjoint localizations (it would be infinite)
        if out.get("temporal_far_hz") is not None and overlap > 0:
            out["spacetime_far_hz"] = spacetime_far(out["temporal_far_hz"], overlap)
    out["localization"] = sky.describe(you.localization)
    return out


def _temporal(span: tuple[float, float], kind: str, ext: Alert, far_gw: float,
              p: RavenParams) -> float:  # fmt: skip
    if kind == "SubGRB" and ext.far_hz is not None:
        gw_max, ext_max = TARGETED_THRESHOLDS["Swift" if ext.source == "Swift" else "Fermi"]
        return targeted_far(span, ext.far_hz, far_gw, ext_max, gw_max)
    rate = p.rates_per_year.get(kind, 0.0) / SECONDS_PER_RAVEN_YEAR
    return temporal_far(span, rate, far_gw)
