"""Checks every decoded input must pass, whatever its format: finite, on-sky, plausible time,
a sky map that is a probability map, detector data from the detector whose topic it is on.

Decoders stay pure; this is the one place that knows what "implausible" means. The limits
come from ``formats/limits.py`` (``[limits]`` in the settings).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from mmstream.errors import DecodeError
from mmstream.formats.detector import DecodedEvents
from mmstream.formats.limits import DEFAULT_LIMITS, Limits
from mmstream.model import (
    NS_PER_S,
    Alert,
    Circle,
    ContextChange,
    DetectorEvent,
    DetectorStatus,
    Ellipse,
    FlatSkyMap,
    MultiOrderSkyMap,
)
from mmstream.sky.moc import uniq_to_order_ipix

# Nothing we follow up predates 1990 (BATSE); an earlier time is a unit or epoch mix-up.
MIN_TIME_NS = 631_152_000 * NS_PER_S
MAX_ORDER = 29  # HEALPix's deepest order: 12 * 4**29 pixels


def check_size(value: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
    """Any input message: at most ``max_message_bytes`` (it is decoded in memory)."""
    if len(value) > limits.max_message_bytes:
        raise DecodeError(f"message of {len(value)} bytes is larger than max_message_bytes "
                          f"({limits.max_message_bytes})")  # fmt: skip


def check_position(ra_deg: float, dec_deg: float, what: str = "position") -> None:
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg)):
        raise DecodeError(f"{what} is not finite: ra={ra_deg}, dec={dec_deg}")
    if not (-90.0 <= dec_deg <= 90.0) or not (-360.0 <= ra_deg <= 360.0):
        raise DecodeError(f"{what} is off the sky: ra={ra_deg}, dec={dec_deg}")


def validate_alert(alert: Alert, received_ns: int, limits: Limits = DEFAULT_LIMITS) -> Alert:
    """Return ``alert`` if plausible, else raise DecodeError saying what is wrong."""
    if alert.time_ns is not None:
        if alert.time_ns > received_ns + int(limits.alert_max_future_s * NS_PER_S):
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
        if not (0 < loc.containment <= 1):
            raise DecodeError(f"containment_probability {loc.containment} is not in (0, 1]")
    elif isinstance(loc, MultiOrderSkyMap):
        validate_moc(loc, limits)
    elif isinstance(loc, FlatSkyMap):
        _check_probabilities(loc.prob, np.ones_like(loc.prob), limits)
    return alert


def validate_moc(skymap: MultiOrderSkyMap, limits: Limits = DEFAULT_LIMITS) -> None:
    """Tiles in HEALPix's range and the configured limits, disjoint, a normalized density."""
    uniq = skymap.uniq
    if uniq.size == 0:
        raise DecodeError("sky map has no tiles")
    if uniq.size > limits.max_skymap_tiles:
        raise DecodeError(f"sky map has {uniq.size} tiles, more than max_skymap_tiles "
                          f"({limits.max_skymap_tiles})")  # fmt: skip
    if int(uniq.min()) < 4:
        raise DecodeError(f"sky map UNIQ {int(uniq.min())} is not a HEALPix NUNIQ index (>= 4)")
    if int(uniq.max()) >= 16 << (2 * MAX_ORDER):
        raise DecodeError(f"sky map tile of order > {MAX_ORDER}, beyond HEALPix's deepest order")
    order, ipix = uniq_to_order_ipix(uniq)
    deepest = int(order.max())
    if deepest > limits.max_skymap_order:
        raise DecodeError(f"sky map tiles of order {deepest}, deeper than max_skymap_order "
                          f"({limits.max_skymap_order})")  # fmt: skip
    shift = (deepest - order) * 2
    start = ipix << shift
    stop = (ipix + 1) << shift
    sort = np.argsort(start, kind="stable")
    if np.any(start[sort][1:] < stop[sort][:-1]):
        raise DecodeError("sky map tiles overlap (a UNIQ twice, or a tile and its parent)")
    area = 4 * np.pi / (12 * 4.0**order)
    _check_probabilities(skymap.probdensity, area, limits)


def _check_probabilities(values: np.ndarray, area: np.ndarray, limits: Limits) -> None:
    if not np.all(np.isfinite(values)):
        raise DecodeError(f"sky map has {int(np.sum(~np.isfinite(values)))} values not finite")
    if np.any(values < 0):
        raise DecodeError(f"sky map has {int(np.sum(values < 0))} negative probabilities")
    total = float(np.sum(values * area))
    if not abs(total - 1.0) <= limits.probability_tolerance:
        raise DecodeError(f"sky map probability sums to {total:.6g}, not 1 "
                          f"(within {limits.probability_tolerance:g})")  # fmt: skip


def _check_detector(what: str, says: str, detector: str) -> None:
    """The record names the detector its topic belongs to (a topic is one detector's)."""
    if says != detector:
        raise DecodeError(f"{what} says detector {says[:100]!r}, but its topic is {detector!r}'s")


def _check_detector_time(what: str, time_ns: int, message_ns: int, limits: Limits) -> None:
    ahead = int(limits.detector_max_future_s * NS_PER_S)
    age = int(limits.detector_max_age_s * NS_PER_S)
    if time_ns > message_ns + ahead:
        raise DecodeError(
            f"{what} time is {(time_ns - message_ns) / NS_PER_S:.3g} s after its message was "
            f"written (detector_max_future_s {limits.detector_max_future_s:g})"
        )
    if time_ns < message_ns - age:
        raise DecodeError(
            f"{what} time is {(message_ns - time_ns) / NS_PER_S:.3g} s before its message was "
            f"written (detector_max_age_s {limits.detector_max_age_s:g})"
        )


def validate_event(
    event: DetectorEvent, detector: str, message_ns: int, limits: Limits = DEFAULT_LIMITS,
    index: int | None = None,
) -> DetectorEvent:  # fmt: skip
    """An event of ``detector`` (the one its topic names), on the sky, at a plausible time
    (relative to ``message_ns``, its Kafka message's timestamp)."""
    what = "event" if index is None else f"event {index}"
    _check_event(what, event.detector, event.ra_deg, event.dec_deg, event.sigma_deg,
                 event.energy_gev, event.time_ns, detector, message_ns, limits)  # fmt: skip
    return event


def validate_events(
    events: DecodedEvents, detector: str, message_ns: int, limits: Limits = DEFAULT_LIMITS
) -> None:
    """:func:`validate_event` for every event of one message, as columns: one combined
    test per column (numpy for a batch), and the per-event checks, for their reason, only
    when something failed. NaN fails every comparison, so the ranges also refuse it."""
    n = events.size
    lo = message_ns - int(limits.detector_max_age_s * NS_PER_S)
    hi = message_ns + int(limits.detector_max_future_s * NS_PER_S)
    if n == 1:
        ra, dec, sigma, energy = (events.ra_deg[0], events.dec_deg[0], events.sigma_deg[0],
                                  events.energy_gev[0])  # fmt: skip
        if (events.detector[0] == detector and -360.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0
                and 0.0 < sigma <= 180.0 and lo <= events.time_ns[0] <= hi
                and (energy is None or -math.inf < energy < math.inf)):  # fmt: skip
            return
    elif n > 1:
        if all_events_pass(events, detector, message_ns, limits):
            return
    else:
        return
    for i, (says, ra, dec, sigma, energy, t) in enumerate(zip(
            events.detector, events.ra_deg, events.dec_deg, events.sigma_deg, events.energy_gev,
            events.time_ns, strict=True)):  # fmt: skip
        _check_event("event" if n == 1 else f"event {i}", says, ra, dec, sigma, energy, t,
                     detector, message_ns, limits)  # fmt: skip
    raise DecodeError("an event failed validation (no single check says which)")  # unreachable


def all_events_pass(
    events: DecodedEvents, detector: str, message_ns: int | npt.NDArray[np.int64],
    limits: Limits = DEFAULT_LIMITS,
) -> bool:  # fmt: skip
    """Whether every event passes :func:`validate_events`'s checks, tested a column at a
    time (numpy); ``message_ns`` is one message's time, or each event's own message's (a
    batch of messages is tested at once). Says no reason: on False the caller checks
    message by message with :func:`validate_events`."""
    n = events.size
    lo = message_ns - int(limits.detector_max_age_s * NS_PER_S)
    hi = message_ns + int(limits.detector_max_future_s * NS_PER_S)
    ras, decs, sigmas = (np.asarray(c, dtype=np.float64) for c in
                         (events.ra_deg, events.dec_deg, events.sigma_deg))  # fmt: skip
    given = (
        [e for e in events.energy_gev if e is not None]
        if None in events.energy_gev
        else events.energy_gev
    )
    times = np.asarray(events.time_ns, dtype=np.int64)
    return (events.detector.count(detector) == n
            and bool(np.all((ras >= -360.0) & (ras <= 360.0) & (decs >= -90.0) & (decs <= 90.0)
                            & (sigmas > 0.0) & (sigmas <= 180.0)))
            and bool(np.all(np.isfinite(np.asarray(given, dtype=np.float64))))
            and bool(np.all((times >= lo) & (times <= hi))))  # fmt: skip


def _check_event(
    what: str, says: str, ra_deg: float, dec_deg: float, sigma_deg: float,
    energy_gev: float | None, time_ns: int, detector: str, message_ns: int, limits: Limits,
) -> None:  # fmt: skip
    """One event's checks, each with its reason (the one place they are written)."""
    _check_detector(what, says, detector)
    check_position(ra_deg, dec_deg, f"{what} position")
    if not (math.isfinite(sigma_deg) and 0 < sigma_deg <= 180):
        raise DecodeError(f"{what} sigma_deg {sigma_deg} is not in (0, 180]")
    if energy_gev is not None and not math.isfinite(energy_gev):
        raise DecodeError(f"{what} energy_gev {energy_gev} is not finite")
    _check_detector_time(what, time_ns, message_ns, limits)


def validate_context(
    change: ContextChange, detector: str, message_ns: int, limits: Limits = DEFAULT_LIMITS
) -> ContextChange:
    """A condition change of ``detector``, at a plausible time, with a bounded key."""
    _check_detector("context", change.detector, detector)
    if not change.key or len(change.key) > 200:
        raise DecodeError(f"context key of {len(change.key)} characters (1 to 200)")
    if isinstance(change.value, float) and not math.isfinite(change.value):
        raise DecodeError(f"context value {change.value} for {change.key[:100]!r} is not finite")
    if isinstance(change.value, str) and len(change.value) > 10_000:
        raise DecodeError(f"context value of {len(change.value)} characters (at most 10,000)")
    _check_detector_time("context", change.time_ns, message_ns, limits)
    return change


def validate_status(
    status: DetectorStatus, detector: str, message_ns: int, limits: Limits = DEFAULT_LIMITS
) -> DetectorStatus:
    """A heartbeat of ``detector`` at a plausible time: one from the future closes windows."""
    _check_detector("status", status.detector, detector)
    _check_detector_time("status", status.time_ns, message_ns, limits)
    return status
