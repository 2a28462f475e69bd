"""The JSON notices we publish for outside observatories (beside each result, on
``mmstream.notices.<analysis>``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmstream.model import Alert, AlertType, Role, Window
from mmstream.times import format_utc

NOTICE_SCHEMA = (
    "https://gcn.nasa.gov/schema/main/gcn/notices/icecube/lvk_nu_track_search.schema.json"
)
ONE_SIGMA_2D = 1 - np.exp(-0.5)  # probability within 1 sigma of a 2-D Gaussian


LVK_TYPE_NAMES = {AlertType.EARLYWARNING: "EarlyWarning", AlertType.PRELIMINARY: "Preliminary",
                  AlertType.INITIAL: "Initial", AlertType.UPDATE: "Update",
                  AlertType.RETRACTION: "Retraction"}  # fmt: skip


def lvk_notice_name(alert: Alert) -> str:
    """The LVK notice as LVK names it, ``S230914ak-2-Preliminary``: the superevent, the
    notice's number (``extra["notice_number"]``: from a VOEvent's ivorn, or counted as the
    notices reached us), its type. Without a number: ``<id>-<revision>``."""
    number = alert.extra.get("notice_number")
    if number is None:
        return f"{alert.alert_id}-{alert.revision}"
    return f"{alert.alert_id}-{number}-{LVK_TYPE_NAMES[alert.alert_type]}"


@dataclass(frozen=True)
class NoticeEvent:
    """One coincident event as the notice lists it."""

    dt_s: float
    ra_deg: float
    dec_deg: float
    sigma_deg: float
    event_id: str
    p_value: float


def lvk_nu_track_search(
    *,
    alert: Alert,
    first: bool,
    trigger_ns: int,
    window: Window,
    live_fraction: float | None,
    p_value: float,
    events: Sequence[NoticeEvent],
    direction: tuple[float, float],
) -> dict[str, object]:
    """IceCube's ``gcn.notices.icecube.lvk_nu_track_search`` fields, with the core Alert
    fields its example lacks: ``alert_tense`` (current or test) and ``alert_type`` (initial
    for the first notice about an alert, update after). Other alerts than LVK's are named in
    ``reference`` by the mission's key (``gcn.notices.<source>``) and the alert id."""
    live = 1.0 if live_fraction is None else live_fraction
    reference = (
        {"gcn.notices.LVK.alert": lvk_notice_name(alert)} if alert.source == "LVK"
        else {f"gcn.notices.{alert.source}": f"{alert.alert_id}-{alert.revision}"}
    )  # fmt: skip
    return {
        "$schema": NOTICE_SCHEMA,
        "type": "IceCube LVK Alert Nu Track Search",
        "alert_tense": "test" if alert.role is Role.TEST else "current",
        "alert_type": "initial" if first else "update",
        "reference": reference,
        "ref_ID": alert.alert_id,
        "trigger_time": format_utc(trigger_ns),
        "observation_start": format_utc(window.start_ns),
        "observation_stop": format_utc(window.end_ns),
        "observation_livetime": window.duration_s * live,
        "pval_generic": round(p_value, 6),
        "pval_bayesian": None,
        "n_events_coincident": len(events),
        "coincident_events": [
            {
                "event_dt": round(e.dt_s, 3),
                "localization": {
                    "ra": e.ra_deg,
                    "dec": e.dec_deg,
                    "ra_dec_error": e.sigma_deg,
                    "containment_probability": round(float(ONE_SIGMA_2D), 4),
                    "systematic_included": False,
                },
                "id": [e.event_id],
                "event_pval_generic": round(e.p_value, 6),
                "event_pval_bayesian": None,
            }
            for e in events
        ],
        "most_probable_direction": {"ra": round(direction[0], 4), "dec": round(direction[1], 4)},
    }
