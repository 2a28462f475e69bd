"""Default coincidence windows, seconds relative to the alert time (start, end).

RAVEN's GRB windows as gwcelery configures them, and the neutrino windows used by
IceCube's realtime follow-up of GW alerts. An analysis picks its row by the alert's
``group`` (CBC or Burst); configuration can override any analysis's window.

| external | CBC | Burst |
| --- | --- | --- |
| GRB (RAVEN) | -1 .. +5 | -60 .. +600 |
| sub-threshold GRB, Fermi (RAVEN) | -11 .. +1 | -60 .. +600 |
| sub-threshold GRB, Swift (RAVEN) | -20 .. +10 | -60 .. +600 |
| SNEWS supernova neutrinos (RAVEN) | -10 .. +10 | -10 .. +10 |
| IceCube track neutrinos vs GW | -10 .. +10 (tight) / -500 .. +500 (IceCube LLAMA) | -500 .. +500 |
"""

from __future__ import annotations

from mmstream.model import Alert

WINDOWS: dict[tuple[str, str], tuple[float, float]] = {
    ("GRB", "CBC"): (-1.0, 5.0),
    ("GRB", "Burst"): (-60.0, 600.0),
    ("SubGRB-Fermi", "CBC"): (-11.0, 1.0),
    ("SubGRB-Fermi", "Burst"): (-60.0, 600.0),
    ("SubGRB-Swift", "CBC"): (-20.0, 10.0),
    ("SubGRB-Swift", "Burst"): (-60.0, 600.0),
    ("SNEWS", "CBC"): (-10.0, 10.0),
    ("SNEWS", "Burst"): (-10.0, 10.0),
    ("neutrino", "CBC"): (-10.0, 10.0),
    ("neutrino", "Burst"): (-500.0, 500.0),
}


def window_for(external: str, alert: Alert, default: tuple[float, float]) -> tuple[float, float]:
    """The table's window for this external kind and the alert's group, else ``default``."""
    group = str(alert.extra.get("group") or "")
    return WINDOWS.get((external, group), default)
