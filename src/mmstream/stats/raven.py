"""Joint false-alarm rates as LIGO's RAVEN defines them (ligo-raven, coinc_far).

- Temporal: FAR_t = Δt · R_ext · FAR_GW, Δt the window length and R_ext the rate of
  external events of that kind (RAVEN's GRB rate: 310 per 365-day year).
- Targeted (sub-threshold searches): z = Δt · FAR_ext · FAR_GW, z_max = Δt · FAR_ext,max ·
  FAR_GW,max, FAR_t = z (1 − ln(z / z_max)): the tail of a product of two uniforms.
- Space-time: FAR_t / I, with I the sky-map overlap integral (sky/overlap.py).
"""

from __future__ import annotations

import math

SECONDS_PER_RAVEN_YEAR = 365.0 * 86_400.0
# Independent GRB discoveries per year (Fermi 236, Swift 65, INTEGRAL ~5, AGILE ~5).
GRB_RATE_HZ = 310.0 / SECONDS_PER_RAVEN_YEAR
# Sub-threshold GRBs add Swift's 65 per year on top.
SUBGRB_RATE_HZ = (310.0 + 65.0) / SECONDS_PER_RAVEN_YEAR
# Targeted-search thresholds (FAR_GW,max, FAR_ext,max), in Hz.
TARGETED_THRESHOLDS = {
    "Fermi": (1.0 / 86_400.0, 1.0 / 10_000.0),
    "Swift": (2.0 / 86_400.0, 1.0 / 1_000.0),
}


def temporal_far(window: tuple[float, float], rate_ext_hz: float, far_gw_hz: float) -> float:
    """FAR_t = Δt · R_ext · FAR_GW (Hz)."""
    return (window[1] - window[0]) * rate_ext_hz * far_gw_hz


def targeted_far(
    window: tuple[float, float],
    far_ext_hz: float,
    far_gw_hz: float,
    far_ext_max_hz: float,
    far_gw_max_hz: float,
) -> float:
    """z (1 − ln(z / z_max)) for a targeted sub-threshold search (Hz)."""
    dt = window[1] - window[0]
    z = dt * far_ext_hz * far_gw_hz
    z_max = dt * far_ext_max_hz * far_gw_max_hz
    if z <= 0:
        return 0.0
    return z * (1 - math.log(z / z_max))


def spacetime_far(temporal_far_hz: float, overlap: float) -> float:
    """FAR_t / I; infinite where the maps do not overlap at all."""
    return math.inf if overlap <= 0 else temporal_far_hz / overlap
