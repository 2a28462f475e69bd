"""GCN classic VOEvent 2.0 XML into the normalized Alert.

Parsed with defusedxml (entity expansion and external references refused: this XML comes
from outside). Mapping: ``ivorn`` authority/stream -> source (``LVC`` is reported as LVK);
``GraceID`` (LVK) or ``TrigID`` / ``run_id``+``event_id`` (GCN, AMON) -> alert id;
``AlertType`` (LVK) or the ``Retraction`` flag -> alert type; ``Pkt_Ser_Num`` or the
ivorn -> revision; ``WhereWhen`` ISOTime -> time; ``FAR`` in Hz (LVK) or yr^-1 (AMON IceCube,
by its unit) -> far_hz. The sky-map URL, where given, is kept in ``extra`` (never fetched).

``Position2D`` C1/C2/Error2Radius (degrees, an equatorial FK5/ICRS frame; anything else is
refused) -> Circle. Classic VOEvents do not say what Error2Radius contains, so the level is
taken from the packet where it tells (AMON's ``src_error_90``/``src_error_50`` Params: the
one equal to Error2Radius), else from the mission's GCN documentation (``CONTAINMENT``;
docs/formats.md gives the sources). ``0,0,0`` (no position) and a radius of 180 degrees or
more (SNEWS's 360: the whole sky) are no localization.
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
# Error2Radius containment by source, as each mission's GCN documentation states it, where
# the packet itself does not (see _containment); 0.9, GCN's usual level, otherwise.
DEFAULT_CONTAINMENT = 0.9
CONTAINMENT = {
    "Fermi": 0.68,  # gcn.gsfc.nasa.gov/fermi.html: GBM (and LAT) uncertainties are 1 sigma
    "Swift": 0.9,  # BAT, XRT, UVOT positions: 90 % containment radius
    "INTEGRAL": 0.9,  # IBAS: "uncertainty radius ... (90 % c.l.)"
    "MAXI": 0.9,  # gcn.gsfc.nasa.gov/maxi.html: "stat+sys, 90 % containment"
    "SVOM": 0.9,  # ECLAIRs: "90 % confidence level radius (including systematic error)"
    "EinsteinProbe": 0.9,  # WXT: "radius (90 % C.L. statistical and systematic)"
    "IceCube": 0.9,  # Gold/Bronze/Cascade: Error2Radius is src_error_90
    "AMON": 0.9,  # ICECUBE_HESE (158): "radius, stat+sys, 90 % containment"
}
WHOLE_SKY_DEG = 180.0
_SRC_ERROR = re.compile(r"^src_error_(\d{2})$")  # AMON: src_error_90, src_error_50
_EQUATORIAL = ("FK5", "ICRS")
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
        localization=None if alert_type is AlertType.RETRACTION else _circle(root, source, params),
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


def _circle(root: Element, source: str, params: dict[str, str]) -> Circle | None:
    pos = _find(root, "Position2D")
    if pos is None:
        return None
    c1, c2, err = _text(pos, "C1"), _text(pos, "C2"), _text(pos, "Error2Radius")
    if c1 is None or c2 is None:
        return None
    if (unit := pos.attrib.get("unit", "deg").strip().lower()) != "deg":
        raise DecodeError(f"Position2D unit {unit!r} is not deg")
    system = _find(root, "AstroCoordSystem")
    frame = "" if system is None else system.attrib.get("id", "")
    if frame and not any(name in frame.upper() for name in _EQUATORIAL):
        raise DecodeError(f"AstroCoordSystem {frame!r} is not equatorial (FK5 or ICRS)")
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
    if radius >= WHOLE_SKY_DEG:
        return None  # SNEWS: 0,0 and 360 degrees, i.e. anywhere on the sky
    return Circle(ra, dec, radius, _containment(params, radius, source))


def _containment(params: dict[str, str], radius: float, source: str) -> float:
    """The packet's own word where it has one (``src_error_NN`` equal to Error2Radius,
    both printed to 4 decimals), else the mission's documented level."""
    for name, value in params.items():
        if (m := _SRC_ERROR.match(name)) is None:
            continue
        try:
            stated = float(value)
        except ValueError:
            continue
        if math.isclose(stated, radius, rel_tol=1e-9, abs_tol=5e-5):
            return int(m.group(1)) / 100
    return CONTAINMENT.get(source, DEFAULT_CONTAINMENT)


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
        "src_error_90",
        "src_error_50",
        "Test",
    ):
        if key in params:
            extra[key] = params[key]
    return extra
