"""NASA GCN unified JSON notices (``gcn.notices.*``) into the normalized Alert.

Field mapping (gcn-schema core): ``trigger_time`` -> time; ``far`` (Hz) -> far_hz;
``alert_type`` initial/update/subsequent/retraction; ``alert_tense`` test -> role test;
``<alert_type>#<record_number>`` -> revision. The mission comes from ``mission``, else from the
``$schema`` path, else from the topic.

Identity: ``ref_ID`` (IceCube's LVK follow-ups), else ``event_name``, else
``<mission>-<id[0]>``. The schema requires none of them (Einstein Probe WXT may send none),
so a notice lacking all three is named after its trigger: ``<mission>-<instrument>-<trigger
time as compact UTC, truncated to the millisecond>``, e.g. ``EinsteinProbe-WXT-
20240224T123456.789Z`` (``<mission>-<time>`` without an instrument). It is computed from the
notice alone, so a re-sent notice and every revision of the same trigger share it.

Localization (core/Localization.schema.json; angles in degrees): an embedded
``healpix_file`` (base64 FITS, inflated to at most ``max_decompressed_bytes``) is the
localization, multi-order for NUNIQ, else flat; the circle or ellipse the notice also states
is then kept in ``extra["error_region"]``. Without a map, ``ra``/``dec`` + ``ra_dec_error``
-> Circle (a number or ``[r]``) or Ellipse (``[a, b]`` or ``[a, b, angle]``; the angle is
that of the first axis, so it turns by 90 degrees where the second is the longer); a radius
of 180 degrees or more is the whole sky, i.e. none. Containment is ``containment_probability``,
else the schema default 0.9. ``healpix_url`` is kept in extra, never fetched. Variants the
samples show are tolerated: ``id`` as a string or a list, ``event_name`` as a string or a
list, times with or without a zone, the older ``ra_uncertainty: [x]``, null ``ra``/``dec``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import replace
from typing import Any

from mmstream.errors import DecodeError
from mmstream.formats.jsonsafe import load_json
from mmstream.formats.limits import DEFAULT_LIMITS, Limits
from mmstream.formats.validate import check_position
from mmstream.model import (
    Alert,
    AlertType,
    Circle,
    Ellipse,
    FlatSkyMap,
    Localization,
    MultiOrderSkyMap,
    Role,
    SourceRef,
)
from mmstream.sky.flat import read_skymap_bytes
from mmstream.sky.moc import gunzip_if_needed
from mmstream.times import format_utc, parse_utc_ns, try_parse_utc_ns

FORMAT = "gcn.notice.json"
DEFAULT_CONTAINMENT = 0.9  # core/Localization.schema.json: "if absent, default is 0.9"
WHOLE_SKY_DEG = 180.0  # a circle this wide holds the whole sphere: no localization
_TYPES = {
    "initial": AlertType.INITIAL,
    "preliminary": AlertType.PRELIMINARY,
    "update": AlertType.UPDATE,
    "subsequent": AlertType.UPDATE,
    "retraction": AlertType.RETRACTION,
}
# $schema path segment (or gcn.notices.<segment>) -> mission name as the missions write it.
MISSIONS = {
    "icecube": "IceCube",
    "km3net": "KM3NeT",
    "superk": "Super-Kamiokande",
    "fermi": "Fermi",
    "swift": "Swift",
    "einstein_probe": "EinsteinProbe",
    "ep": "EinsteinProbe",
    "svom": "SVOM",
    "chime": "CHIME",
    "dsa110": "DSA-110",
    "maxi": "MAXI",
    "burstcube": "BurstCube",
    "glowbug": "GLOWBUG",
    "lvk": "LVK",
}
_SCHEMA_PATH = re.compile(r"/notices/([a-z0-9_]+)/")
# Kept as sent (healpix_url is never fetched; src_error_50 is KM3NeT's 50 % radius).
_EXTRA_KEYS = (
    "instrument",
    "pipeline",
    "alert_datetime",
    "healpix_url",
    "alert_tense",
    "$schema",
    "ra",
    "dec",
    "reference",
    "systematic_included",
    "src_error_50",
)
SkyMap = MultiOrderSkyMap | FlatSkyMap


def decode(data: bytes, ref: SourceRef, limits: Limits = DEFAULT_LIMITS) -> Alert:
    rec = load_json(data)
    if not isinstance(rec, dict):
        raise DecodeError(f"a GCN notice is a JSON object, this is a {type(rec).__name__}")
    return from_record(rec, replace(ref, format=FORMAT), limits)


def mission_of(rec: dict[str, Any], topic: str) -> str:
    if isinstance(rec.get("mission"), str) and rec["mission"]:
        return str(rec["mission"])
    if m := _SCHEMA_PATH.search(str(rec.get("$schema", ""))):
        return MISSIONS.get(m.group(1), m.group(1))
    parts = topic.split(".")
    if len(parts) > 2 and parts[0] == "gcn" and parts[1] == "notices":
        return MISSIONS.get(parts[2].lower(), parts[2])
    return "unknown"


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def compact_utc(time_ns: int) -> str:
    """``20240224T123456.789Z``: the time truncated to the millisecond, without separators."""
    text = format_utc(time_ns)  # 2024-02-24T12:34:56.789000000Z
    return text[:19].replace("-", "").replace(":", "") + text[19:23] + "Z"


def _alert_id(rec: dict[str, Any], mission: str, time_ns: int) -> str:
    if (ref_id := rec.get("ref_ID")) is not None:  # IceCube's LVK follow-up notices
        return str(ref_id)
    if (name := _first(rec.get("event_name"))) is not None:
        return name
    if (ident := _first(rec.get("id"))) is not None:
        return f"{mission}-{ident}"
    instrument = rec.get("instrument")
    parts = [mission, str(instrument)] if instrument not in (None, "") else [mission]
    return "-".join([*parts, compact_utc(time_ns)])


def _region(rec: dict[str, Any]) -> Circle | Ellipse | None:
    """The notice's circle or ellipse, or None where it states no (finite) error region."""
    if rec.get("ra") is None or rec.get("dec") is None:
        return None  # absent, or null where the classic converter had no position
    ra, dec = _number(rec["ra"], "ra"), _number(rec["dec"], "dec")
    check_position(ra, dec)
    containment = _number(rec.get("containment_probability", DEFAULT_CONTAINMENT),
                          "containment_probability")  # fmt: skip
    if not 0 < containment <= 1:
        raise DecodeError(f"containment_probability {containment} is not in (0, 1]")
    error = rec.get("ra_dec_error")
    if error is None and isinstance(rec.get("ra_uncertainty"), list) and rec["ra_uncertainty"]:
        error = rec["ra_uncertainty"][0]
    if error is None:
        return None  # a position without an error region: kept in extra, not a region
    if not isinstance(error, list):
        error = [error]
    if not 1 <= len(error) <= 3:
        raise DecodeError(f"ra_dec_error has {len(error)} elements; expected 1, 2 or 3")
    axes = [_number(e, "ra_dec_error", positive=True) for e in error[:2]]
    if len(axes) == 1:  # the semi-minor axis defaults to the semi-major: a circle
        return None if axes[0] >= WHOLE_SKY_DEG else Circle(ra, dec, axes[0], containment)
    angle = _number(error[2], "ra_dec_error angle") if len(error) == 3 else 0.0
    if axes[1] > axes[0]:  # the angle is the first axis's: the major axis is across it
        angle = (angle + 90.0) % 180.0
    return Ellipse(ra, dec, max(axes), min(axes), angle, containment)


def _skymap(rec: dict[str, Any], limits: Limits) -> SkyMap | None:
    """The embedded ``healpix_file``: base64 of a FITS file, plain or gzip-compressed."""
    text = rec.get("healpix_file")
    if text is None:
        return None
    if not isinstance(text, str):
        raise DecodeError(f"healpix_file is a {type(text).__name__}, not a base64 string")
    try:  # line breaks are allowed in base64 text; anything else outside its alphabet is not
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"healpix_file is not valid base64: {exc}") from exc
    if not data:
        raise DecodeError("healpix_file is empty")
    data = gunzip_if_needed(data, limits.max_decompressed_bytes)
    if data[:2] == b"\x1f\x8b":  # inflating again would be unbounded (flat.py has no limit)
        raise DecodeError("healpix_file is gzip inside gzip")
    try:
        return read_skymap_bytes(data)
    except DecodeError as exc:
        raise DecodeError(f"healpix_file: {exc}") from exc
    except Exception as exc:  # e.g. a pixel count that is no HEALPix nside
        raise DecodeError(f"healpix_file is not a HEALPix map: {type(exc).__name__}: "
                          f"{str(exc)[:200]}") from exc  # fmt: skip


def _error_region(region: Circle | Ellipse) -> dict[str, Any]:
    error: float | list[float] = (
        region.radius_deg
        if isinstance(region, Circle)
        else [region.semi_major_deg, region.semi_minor_deg, region.position_angle_deg]
    )
    return {"ra": region.ra_deg, "dec": region.dec_deg, "error_deg": error,
            "containment": region.containment}  # fmt: skip


def _localization(
    rec: dict[str, Any], limits: Limits, extra: dict[str, Any]
) -> Localization | None:
    """The map where the notice embeds one (it is better than the circle), else the region."""
    region = _region(rec)
    skymap = _skymap(rec, limits)
    if skymap is None:
        return region
    if region is not None:
        extra["error_region"] = _error_region(region)
    return skymap


def _number(value: Any, what: str, *, positive: bool = False) -> float:
    """A finite number (a numeric string is tolerated; booleans, lists, objects are not)."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise DecodeError(f"{what} is a {type(value).__name__} ({str(value)[:40]!r}), "
                          "not a number") from None  # fmt: skip
    if not math.isfinite(number) or (positive and number < 0):
        kind = "non-negative " if positive else ""
        raise DecodeError(f"{what} {number} is not a finite {kind}number")
    return number


def from_record(rec: dict[str, Any], ref: SourceRef, limits: Limits = DEFAULT_LIMITS) -> Alert:
    if "detector_name" in rec and "machine_time" in rec:
        raise DecodeError("SNEWS 2.0 detector message (tier or heartbeat), not a follow-up alert")
    if "trigger_time" not in rec:
        raise DecodeError("not an alert notice: no trigger_time")
    mission = mission_of(rec, ref.topic)
    type_text = str(rec.get("alert_type", "initial")).lower()
    if type_text not in _TYPES:
        raise DecodeError(f"unknown alert_type {rec.get('alert_type')!r}")
    alert_type = _TYPES[type_text]
    far = rec.get("far")
    try:
        far_hz = None if far is None else float(far)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"far is not a number: {far!r}") from exc
    time_ns = parse_utc_ns(str(rec["trigger_time"]))
    # record_number where the mission counts notices; else the notice's own time. The type
    # is part of it because CHIME sends a detection and an update with neither.
    counter = rec.get("record_number", rec.get("alert_datetime"))
    revision = f"{alert_type}#{counter}" if counter is not None else str(alert_type)
    extra: dict[str, Any] = {k: rec[k] for k in _EXTRA_KEYS if k in rec}
    retracted = alert_type is AlertType.RETRACTION
    return Alert(
        alert_id=_alert_id(rec, mission, time_ns),
        revision=revision,
        alert_type=alert_type,
        role=Role.TEST if str(rec.get("alert_tense", "current")) == "test" else Role.OBSERVATION,
        source=mission,
        time_ns=time_ns,
        far_hz=far_hz,
        localization=None if retracted else _localization(rec, limits, extra),
        ref=ref,
        extra=extra,
        sent_ns=try_parse_utc_ns(rec.get("alert_datetime")),
    )
