"""Checks every decoded alert must pass, whatever its format: finite, on-sky, plausible time.

Decoders stay pure; this is the one place that knows what "implausible" means.
"""

from __future__ import annotations

import math

from mmstream.errors import DecodeError
from mmstream.model import NS_PER_S, Alert, Circle, Ellipse

# An alert about an event more than a day after it reached us is a broken clock or a
# broken packet, not a prediction.
MAX_FUTURE_S = 86_400.0
# Nothing we follow up predates 1990 (BATSE); an earlier time is a unit or epoch mix-up.
MIN_TIME_NS = 631_152_000 * NS_PER_S


def check_position(ra_deg: float, dec_deg: float, what: str = "position") -> None:
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg)):
        raise DecodeError(f"{what} is not finite: ra={ra_deg}, dec={dec_deg}")
    if not (-90.0 <= dec_deg <= 90.0) or not (-360.0 <= ra_deg <= 360.0):
        raise DecodeError(f"{what} is off the sky: ra={ra_deg}, dec={dec_deg}")


def validate_alert(alert: Alert, received_ns: int) -> Alert:
    """Return ``alert`` if plausible, else raise DecodeError saying what is wrong."""
    if alert.time_ns is not None:
        if alert.time_ns > received_ns + int(MAX_FUTURE_S * NS_PER_S):
            ahead = (alert.time_ns - received_ns) / NS_PER_S / 86_400
            raise DecodeError(f"event time is {ahead:.1f} days after the message arrived")
        if alert.time_ns < MIN_TIME_NS:
            raise DecodeError("event time is before 1990: a unit or epoch mix-up")
    if alert.far_hz is not None and not (math.isfinite(alert.far_hz) and alert.far_hz >= 0):
        raise DecodeError(f"false-alarm rate {alert.far_hz} is not a non-negative number")
    loc = alert.localization
    if isinstance(loc, Circle | Ellipse):
        check_position(loc.ra_deg, loc.dec_deg)
        size = loc.radius_deg if isinstance(loc, Circle) else loc.semi_major_deg
        if not (math.isfinite(size) and size >= 0):
            raise DecodeError(f"error radius {size} is not a non-negative number")
    return alert
