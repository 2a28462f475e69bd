"""LIGO/Virgo/KAGRA ``igwn.gwalert`` packets: Avro container with an embedded sky map.

Both writer-schema names are accepted (1.0 ``igwn.alerts.v1_0.Alert`` and the later
``igwn.alerts.Alert``): fields are read by name, never by schema identity. IGWN alerts
carry no revision number, so the revision is ``<alert_type>@<time_created>``, followed by
``+<observatory>:<gcn_notice_id>`` when the notice reports an external coincidence (LVK
has sent an UPDATE and an external-coincidence UPDATE with the same ``time_created``):
identical for a re-sent notice, distinct for every new notice about the same superevent.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import Any

from mmstream.errors import DecodeError
from mmstream.formats.avro import read_container
from mmstream.formats.jsonsafe import load_json
from mmstream.formats.limits import DEFAULT_LIMITS, Limits
from mmstream.model import Alert, AlertType, Role, SourceRef
from mmstream.sky.moc import read_fits_bytes
from mmstream.times import parse_utc_ns, try_parse_utc_ns

FORMAT = "igwn.gwalert.avro"
JSON_FORMAT = "igwn.gwalert.json"
SCHEMA_NAMES = frozenset({"igwn.alerts.v1_0.Alert", "igwn.alerts.Alert"})
# The 1.0 schema's doc spells the first type EARLY_WARNING; VOEvents say EarlyWarning.
_TYPE_ALIASES = {"EARLY_WARNING": "EARLYWARNING"}


def role_of(superevent_id: str) -> Role:
    """LVK id prefixes: S = real superevent; M (mock data challenge) and T = tests."""
    return Role.OBSERVATION if superevent_id.startswith("S") else Role.TEST


def decode(data: bytes, ref: SourceRef, limits: Limits = DEFAULT_LIMITS) -> Alert:
    schema, records = read_container(data, max_records=1, untrusted=True)
    name = schema.get("name") if isinstance(schema, dict) else None
    if name not in SCHEMA_NAMES:
        raise DecodeError(f"Avro writer schema {name!r} is not an IGWN alert schema")
    if len(records) != 1:
        raise DecodeError(f"an IGWN alert holds exactly one record, this one {len(records)}")
    return from_record(records[0], ref, limits)


def decode_json(data: bytes, ref: SourceRef, limits: Limits = DEFAULT_LIMITS) -> Alert:
    """The JSON form GCN distributes: the same fields, sky maps as base64 strings."""
    rec = load_json(data)
    if not isinstance(rec, dict) or "superevent_id" not in rec:
        raise DecodeError("JSON is not an IGWN alert (no superevent_id)")
    try:
        for block, key in (("event", "skymap"), ("external_coinc", "combined_skymap")):
            if isinstance(rec.get(block), dict) and isinstance(rec[block].get(key), str):
                rec[block][key] = base64.b64decode(rec[block][key], validate=True)
    except binascii.Error as exc:
        raise DecodeError(f"sky map is not valid base64: {exc}") from exc
    return from_record(rec, replace(ref, format=JSON_FORMAT), limits)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    """A record (Avro) or object (JSON) field; anything else is a malformed alert."""
    if not isinstance(value, dict):
        raise DecodeError(f"IGWN {what} is a {type(value).__name__}, not a record")
    return value


def from_record(rec: dict[str, Any], ref: SourceRef, limits: Limits = DEFAULT_LIMITS) -> Alert:
    try:
        superevent_id = str(rec["superevent_id"])
        type_text = str(rec["alert_type"]).upper()
        alert_type = AlertType(_TYPE_ALIASES.get(type_text, type_text))
        time_created = str(rec["time_created"])
        event = rec.get("event")
    except (KeyError, ValueError, TypeError) as exc:
        raise DecodeError(f"IGWN alert lacks or misspells a required field: {exc}") from exc
    time_ns: int | None = None
    far_hz: float | None = None
    skymap = None
    extra: dict[str, Any] = {"time_created": time_created, "urls": rec.get("urls") or {}}
    if event is not None:
        event = _mapping(event, "event")
        try:
            time_ns = parse_utc_ns(str(event["time"]))
            far_hz = float(event["far"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"IGWN event block lacks time or far: {exc}") from exc
        if event.get("skymap"):
            if not isinstance(event["skymap"], bytes):
                raise DecodeError(f"IGWN event.skymap is a {type(event['skymap']).__name__}, "
                                  "not bytes (a FITS file)")  # fmt: skip
            skymap = read_fits_bytes(event["skymap"], limits.max_decompressed_bytes)
        for key in ("group", "pipeline", "search", "significant", "instruments"):
            extra[key] = event.get(key)
        classification = _mapping(event.get("classification") or {}, "event.classification")
        if not all(isinstance(v, int | float) for v in classification.values()):
            raise DecodeError("IGWN event.classification has values that are not numbers")
        extra["classification"] = dict(classification)
    elif alert_type is not AlertType.RETRACTION:
        raise DecodeError(f"IGWN {alert_type} alert has no event block")
    revision = f"{alert_type}@{time_created}"
    if (coinc := rec.get("external_coinc")) is not None:
        coinc = _mapping(coinc, "external_coinc")
        extra["external_coinc"] = {k: v for k, v in coinc.items() if k != "combined_skymap"}
        revision += f"+{coinc.get('observatory')}:{coinc.get('gcn_notice_id')}"
    return Alert(
        alert_id=superevent_id,
        revision=revision,
        alert_type=alert_type,
        role=role_of(superevent_id),
        source="LVK",
        time_ns=time_ns,
        far_hz=far_hz,
        localization=skymap,
        ref=ref,
        extra=extra,
        sent_ns=try_parse_utc_ns(time_created),
    )
