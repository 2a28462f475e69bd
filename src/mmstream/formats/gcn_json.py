"""NASA GCN unified JSON notices (``gcn.notices.*``) into the normalized Alert.

Field mapping (gcn-schema core): ``trigger_time`` -> time; ``far`` (Hz) -> far_hz;
``ra``/``dec``/``ra_dec_error`` -> Circle (scalar error) or Ellipse (``[a, b]`` or
``[a, b, angle]``), containment from ``containment_probability`` (schema default 0.9);
``alert_type`` initial/update/subsequent/retraction; ``alert_tense`` test -> role test;
``<alert_type>#<record_number>`` -> revision. The mission comes from ``mission``, else from the
``$schema`` path, else from the topic. What the samples vary in, this tolerates: ``id``
as a string, a list of strings or a list of ints; ``event_name`` as a string or a list;
times with or without a zone; the older ``ra_uncertainty: [x]`` form.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from mmstream.errors import DecodeError
from mmstream.formats.jsonsafe import load_json
from mmstream.formats.validate import check_position
from mmstream.model import Alert, AlertType, Circle, Ellipse, Localization, Role, SourceRef
from mmstream.times import parse_utc_ns, try_parse_utc_ns

FORMAT = "gcn.notice.json"
DEFAULT_CONTAINMENT = 0.9
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


def decode(data: bytes, ref: SourceRef) -> Alert:
    rec = load_json(data)
    if not isinstance(rec, dict):
        raise DecodeError(f"a GCN notice is a JSON object, this is a {type(rec).__name__}")
    return from_record(rec, replace(ref, format=FORMAT))


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


def _alert_id(rec: dict[str, Any], mission: str) -> str:
    if (ref_id := rec.get("ref_ID")) is not None:  # IceCube's LVK follow-up notices
        return str(ref_id)
    if (name := _first(rec.get("event_name"))) is not None:
        return name
    if (ident := _first(rec.get("id"))) is not None:
        return f"{mission}-{ident}"
    raise DecodeError("GCN notice has no id, event_name or ref_ID")


def _localization(rec: dict[str, Any]) -> Localization | None:
    if "ra" not in rec or "dec" not in rec:
        return None
    try:
        ra, dec = float(rec["ra"]), float(rec["dec"])
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"ra/dec are not numbers: {exc}") from exc
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
    if isinstance(error, list):
        if len(error) not in (2, 3):
            raise DecodeError(f"ra_dec_error has {len(error)} elements; expected 1, 2 or 3")
        a, b = (_number(e, "ra_dec_error", positive=True) for e in error[:2])
        angle = _number(error[2], "ra_dec_error angle") if len(error) == 3 else 0.0
        return Ellipse(ra, dec, max(a, b), min(a, b), angle, containment)
    return Circle(ra, dec, _number(error, "ra_dec_error", positive=True), containment)


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


def from_record(rec: dict[str, Any], ref: SourceRef) -> Alert:
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
    # record_number where the mission counts notices; else the notice's own time. The type
    # is part of it because CHIME sends a detection and an update with neither.
    counter = rec.get("record_number", rec.get("alert_datetime"))
    revision = f"{alert_type}#{counter}" if counter is not None else str(alert_type)
    extra: dict[str, Any] = {
        k: rec[k]
        for k in (
            "instrument",
            "pipeline",
            "alert_datetime",
            "healpix_url",
            "alert_tense",
            "$schema",
            "ra",
            "dec",
            "reference",
        )
        if k in rec
    }
    return Alert(
        alert_id=_alert_id(rec, mission),
        revision=revision,
        alert_type=alert_type,
        role=Role.TEST if str(rec.get("alert_tense", "current")) == "test" else Role.OBSERVATION,
        source=mission,
        time_ns=parse_utc_ns(str(rec["trigger_time"])),
        far_hz=far_hz,
        localization=None if alert_type is AlertType.RETRACTION else _localization(rec),
        ref=ref,
        extra=extra,
        sent_ns=try_parse_utc_ns(rec.get("alert_datetime")),
    )
