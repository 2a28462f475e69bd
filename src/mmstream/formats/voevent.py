"""GCN classic VOEvent 2.0 XML into the normalized Alert.

Parsed with defusedxml (entity expansion and external references refused: this XML comes
from outside). Mapping: ``ivorn`` authority/stream -> source (``LVC`` is reported as LVK);
``GraceID`` (LVK) or ``TrigID`` / ``run_id``+``event_id`` (GCN, AMON) -> alert id;
``AlertType`` (LVK) or the ``Retraction`` flag -> alert type; ``Pkt_Ser_Num`` or the
ivorn -> revision; ``WhereWhen`` ISOTime -> time; ``Position2D`` C1/C2/Error2Radius ->
Circle; ``FAR`` in Hz (LVK) or yr^-1 (AMON IceCube, by its unit) -> far_hz. The sky-map
URL, where given, is kept in ``extra`` (never fetched).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from mmstream.errors import DecodeError
from mmstream.formats.validate import check_position
from mmstream.model import Alert, AlertType, Circle, Role, SourceRef
from mmstream.times import parse_utc_ns, try_parse_utc_ns

FORMAT = "gcn.voevent.xml"
SECONDS_PER_YEAR = 365.25 * 86_400
_LVK_TYPES = {
    "earlywarning": AlertType.EARLYWARNING,
    "preliminary": AlertType.PRELIMINARY,
    "initial": AlertType.INITIAL,
    "update": AlertType.UPDATE,
    "retraction": AlertType.RETRACTION,
}
_IVORN = re.compile(r"^ivo://(?P<authority>[^/#]+)/(?P<stream>[^#]*)#(?P<local>.*)$")
# Error2Radius containment where the mission documents it; 0.9 otherwise (GCN's usual).
CONTAINMENT = {
    "Fermi": 0.68,
    "INTEGRAL": 0.9,
    "Swift": 0.9,
    "MAXI": 0.9,
    "AMON": 0.5,
    "IceCube": 0.5,
}
SOURCE_NAMES = {"SWIFT": "Swift", "LVC": "LVK", "einsteinprobe": "EinsteinProbe", "svom": "SVOM"}
# AMON packet types carrying single IceCube events: Gold 173, Bronze 174, Cascade 176.
ICECUBE_PACKETS = frozenset({"173", "174", "176"})


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _params(root: Element) -> dict[str, str]:
    """Every <Param name value> under <What>, groups flattened (first wins)."""
    out: dict[str, str] = {}
    for el in root.iter():
        if _local(el.tag) == "Param" and "name" in el.attrib:
            out.setdefault(el.attrib["name"], el.attrib.get("value", ""))
    return out


def _param_units(root: Element) -> dict[str, str]:
    return {
        el.attrib["name"]: el.attrib.get("unit", "")
        for el in root.iter()
        if _local(el.tag) == "Param" and "name" in el.attrib
    }


def _find(root: Element, name: str) -> Element | None:
    for el in root.iter():
        if _local(el.tag) == name:
            return el
    return None


def _text(root: Element, name: str) -> str | None:
    el = _find(root, name)
    return None if el is None or el.text is None else el.text.strip()


def decode(data: bytes, ref: SourceRef) -> Alert:
    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise DecodeError(f"XML refused for safety: {type(exc).__name__}") from exc
    except Exception as exc:  # ParseError, UnicodeDecodeError
        raise DecodeError(f"not well-formed XML: {exc}") from exc
    if _local(root.tag) != "VOEvent":
        raise DecodeError(f"XML is not a VOEvent (root element <{_local(root.tag)}>)")
    return from_element(root, replace(ref, format=FORMAT))


def from_element(root: Element, ref: SourceRef) -> Alert:
    ivorn = root.attrib.get("ivorn", "")
    m = _IVORN.match(ivorn)
    if m is None:
        raise DecodeError(f"VOEvent ivorn {ivorn!r} is not ivo://authority/stream#local")
    role_text = root.attrib.get("role", "observation").lower()
    if role_text == "utility":
        raise DecodeError("utility VOEvent (e.g. a pointing direction), not an alert")
    role = Role.TEST if role_text == "test" else Role.OBSERVATION
    params = _params(root)
    units = _param_units(root)
    source = _source(m.group("authority"), m.group("stream"), params)

    if "GraceID" in params:
        alert_id = params["GraceID"]
        type_text = params.get("AlertType", "").lower()
        alert_type = _LVK_TYPES.get(type_text)
        if alert_type is None:
            raise DecodeError(f"LVK VOEvent has unknown AlertType {params.get('AlertType')!r}")
        revision = m.group("local").removeprefix(f"{alert_id}-")
    else:
        if "TrigID" in params:
            alert_id = f"{source}-{params['TrigID']}"
        elif "run_id" in params and "event_id" in params:
            alert_id = f"{source}-{params['run_id']}_{params['event_id']}"
        else:
            alert_id = f"{source}-{m.group('local')}"
        retracted = params.get("Retraction", "false").lower() == "true"
        alert_type = AlertType.RETRACTION if retracted else AlertType.INITIAL
        revision = params.get("Pkt_Ser_Num", m.group("local"))
        revision = f"{params.get('Packet_Type', '?')}#{revision}"

    iso = _text(root, "ISOTime")
    if iso is None:
        raise DecodeError("VOEvent has no WhereWhen ISOTime")
    time_ns = parse_utc_ns(iso)
    return Alert(
        alert_id=alert_id,
        revision=revision,
        alert_type=alert_type,
        role=role,
        source=source,
        time_ns=time_ns,
        far_hz=_far_hz(params, units),
        localization=None if alert_type is AlertType.RETRACTION else _circle(root, source),
        ref=ref,
        extra=_extra(ivorn, params),
        sent_ns=_sent_ns(root),
    )


def _sent_ns(root: Element) -> int | None:
    """When the notice was made: ``<Who><Date>``."""
    who = _find(root, "Who")
    return None if who is None else try_parse_utc_ns(_text(who, "Date"))


def _source(authority: str, stream: str, params: dict[str, str]) -> str:
    """Mission name as GCN JSON spells it, from the ivorn and, where needed, the packet."""
    if "GraceID" in params:
        return "LVK"
    if params.get("Packet_Type") in ICECUBE_PACKETS:
        return "IceCube"  # IceCube's own events, relayed through AMON
    if authority == "org.svom":
        return "SVOM"
    name = stream or authority
    return SOURCE_NAMES.get(name, name)


def _far_hz(params: dict[str, str], units: dict[str, str]) -> float | None:
    if "FAR" not in params:
        return None
    try:
        value = float(params["FAR"])
    except ValueError as exc:
        raise DecodeError(f"FAR {params['FAR']!r} is not a number") from exc
    unit = units.get("FAR", "").lower().replace(" ", "")
    if unit in ("yr^-1", "yr-1", "/yr", "peryear", "1/yr"):
        return value / SECONDS_PER_YEAR
    return value  # LVK VOEvents give Hz


def _circle(root: Element, source: str) -> Circle | None:
    pos = _find(root, "Position2D")
    if pos is None:
        return None
    c1, c2, err = _text(pos, "C1"), _text(pos, "C2"), _text(pos, "Error2Radius")
    if c1 is None or c2 is None:
        return None
    try:
        ra, dec = float(c1), float(c2)
        radius = float(err) if err is not None else math.nan
    except ValueError as exc:
        raise DecodeError(f"Position2D is not numeric: {exc}") from exc
    check_position(ra, dec)
    if ra == 0.0 and dec == 0.0 and (radius == 0.0 or math.isnan(radius)):
        return None  # LVK and AMON coincidence notices put 0,0,0 where there is no position
    if math.isnan(radius) or radius < 0:
        raise DecodeError(f"Error2Radius {err!r} is not a non-negative number")
    return Circle(ra, dec, radius, CONTAINMENT.get(source, 0.9))


def _extra(ivorn: str, params: dict[str, str]) -> dict[str, Any]:
    extra: dict[str, Any] = {"ivorn": ivorn}
    for key in (
        "Packet_Type",
        "Pkt_Ser_Num",
        "skymap_fits",
        "SKYMAP_URL",
        "Group",
        "Pipeline",
        "signalness",
        "energy",
        "Test",
    ):
        if key in params:
            extra[key] = params[key]
    return extra
