"""Coincidence windows, seconds relative to the alert time (start, end), and alert kinds.

**Follow-up of one alert with our detector's events** (``FOLLOW_UP_WINDOWS``, by the alert's
kind; each analysis takes it as its ``windows`` parameter, so configuration can change any
row and the result's parameters record it):

| kind | window (s) | why |
| --- | --- | --- |
| GW | -500 .. +500 | IceCube's realtime GW follow-up (LLAMA, UML) |
| GRB, SubGRB | -500 .. +500 | the 1000-s window of IceCube's Fast Response Analysis |
| neutrino | -500 .. +500 | the same, for another observatory's neutrino alert |
| xray | -500 .. +500 | the same, for X-ray transients (Einstein Probe, MAXI) |
| FRB | -500 .. +500 | the same, for fast radio bursts (CHIME, DSA-110) |
| supernova | -10 .. +10 | SNEWS's coincidence window for a core-collapse burst |
| other | -500 .. +500 | any other localized alert |

**Alert × alert** (``WINDOWS``): RAVEN's windows as gwcelery configures them, written here
as the time of the external event minus the GW time (gwcelery writes them as the GW time
minus the external event's: its GRB row [-5, +1] is our -1 .. +5), by the GW's ``group``:

| external | CBC | Burst |
| --- | --- | --- |
| GRB (RAVEN) | -1 .. +5 | -60 .. +600 |
| sub-threshold GRB, Fermi (RAVEN) | -1 .. +11 | -60 .. +600 |
| sub-threshold GRB, Swift (RAVEN) | -10 .. +20 | -60 .. +600 |
| SNEWS supernova neutrinos (RAVEN) | -10 .. +10 | -10 .. +10 |
| IceCube track neutrinos vs GW | -10 .. +10 (tight) / -500 .. +500 (IceCube LLAMA) | -500 .. +500 |
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mmstream.model import Alert

KINDS = ("GW", "GRB", "SubGRB", "neutrino", "xray", "FRB", "supernova", "other")
FOLLOW_UP_WINDOWS: dict[str, tuple[float, float]] = {
    "GW": (-500.0, 500.0),
    "GRB": (-500.0, 500.0),
    "SubGRB": (-500.0, 500.0),
    "neutrino": (-500.0, 500.0),
    "xray": (-500.0, 500.0),
    "FRB": (-500.0, 500.0),
    "supernova": (-10.0, 10.0),
    "other": (-500.0, 500.0),
}

WINDOWS: dict[tuple[str, str], tuple[float, float]] = {
    ("GRB", "CBC"): (-1.0, 5.0),
    ("GRB", "Burst"): (-60.0, 600.0),
    ("SubGRB-Fermi", "CBC"): (-1.0, 11.0),
    ("SubGRB-Fermi", "Burst"): (-60.0, 600.0),
    ("SubGRB-Swift", "CBC"): (-10.0, 20.0),
    ("SubGRB-Swift", "Burst"): (-60.0, 600.0),
    ("SNEWS", "CBC"): (-10.0, 10.0),
    ("SNEWS", "Burst"): (-10.0, 10.0),
    ("neutrino", "CBC"): (-10.0, 10.0),
    ("neutrino", "Burst"): (-500.0, 500.0),
}

_GRB_MISSIONS = frozenset({"Fermi", "Swift", "INTEGRAL", "AGILE", "SVOM", "GECAM", "BurstCube",
                           "GLOWBUG", "Konus", "CALET", "IPN"})  # fmt: skip
_KIND_OF_SOURCE = {
    "LVK": "GW",
    "IceCube": "neutrino",
    "KM3NeT": "neutrino",
    "AMON": "neutrino",
    "ANTARES": "neutrino",
    "Baikal-GVD": "neutrino",
    "EinsteinProbe": "xray",
    "MAXI": "xray",
    "Super-Kamiokande": "supernova",
    "SNEWS": "supernova",
    "CHIME": "FRB",
    "DSA-110": "FRB",
}


def alert_kind(alert: Alert) -> str:
    """The alert's kind (one of ``KINDS``), from its source and, for gamma-ray missions,
    whether the notice is a sub-threshold (targeted or sub-threshold search) one."""
    if alert.source in _GRB_MISSIONS:
        return "SubGRB" if is_subthreshold(alert) else "GRB"
    return _KIND_OF_SOURCE.get(alert.source, "other")


def is_subthreshold(alert: Alert) -> bool:
    """Fermi GBM sub-threshold and Swift BAT-GUANO targeted notices, as they say so."""
    x = alert.extra
    text = " ".join(str(x.get(k, "")) for k in ("ivorn", "instrument", "$schema", "pipeline"))
    return any(tag in text for tag in ("SubThresh", "GUANO", "Guano", "subthreshold",
                                       "targeted", "Targeted"))  # fmt: skip


def sources_of(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """Every source whose alerts are of one of these kinds (for an analysis's ``sources``)."""
    grb = _GRB_MISSIONS if {"GRB", "SubGRB"} & set(kinds) else frozenset()
    return tuple(sorted(grb | {s for s, k in _KIND_OF_SOURCE.items() if k in kinds}))


def follow_up_window(
    alert: Alert, table: dict[str, tuple[float, float]] | None = None
) -> tuple[float, float]:
    """The follow-up window of this alert's kind, from ``table`` (default the one above)."""
    rows = FOLLOW_UP_WINDOWS if table is None else table
    return rows.get(alert_kind(alert), rows.get("other", FOLLOW_UP_WINDOWS["other"]))


class KindWindows(BaseModel):
    """Parameters holding the follow-up table, so that configuration can change a row and
    the result's parameters record it (``[analyses.<name>.params] windows = {GRB = [...]}``)."""

    windows: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(FOLLOW_UP_WINDOWS),
        description="Window (s around the alert time) by alert kind; see analyses/windows.py.",
    )


def by_kind(alert: Alert, params: Any) -> tuple[float, float]:
    """``window_by`` for an analysis whose parameters are :class:`KindWindows`."""
    return follow_up_window(alert, params.windows)


def window_for(external: str, alert: Alert, default: tuple[float, float]) -> tuple[float, float]:
    """The RAVEN table's window for this external kind and the alert's group, else ``default``."""
    group = str(alert.extra.get("group") or "")
    return WINDOWS.get((external, group), default)
