"""Which decoder reads a message: by the topic's configured format, else by its content.

Routes map a topic prefix to a format name (longest prefix wins); ``auto`` sniffs the
bytes: an Avro container magic is IGWN Avro, ``<`` is VOEvent XML, ``{`` is IGWN JSON
when it has ``superevent_id`` and GCN unified JSON otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from mmstream.errors import DecodeError
from mmstream.formats import gcn_json, igwn, voevent
from mmstream.model import Alert, SourceRef

AlertDecoder = Callable[[bytes, SourceRef], Alert]
AVRO_CONTAINER_MAGIC = b"Obj\x01"
DEFAULT_ROUTES: dict[str, str] = {
    "igwn.gwalert": "igwn",
    "gcn.notices.": "gcn-json",
    "gcn.classic.voevent.": "voevent",
}


def _looks_like_json_object(value: bytes) -> bool:
    return value.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def _igwn(value: bytes, ref: SourceRef) -> Alert:
    if value.startswith(AVRO_CONTAINER_MAGIC):
        return igwn.decode(value, ref)
    if _looks_like_json_object(value):
        return igwn.decode_json(value, ref)
    raise DecodeError("IGWN alert is neither an Avro container nor JSON")


def _sniff(value: bytes, ref: SourceRef) -> Alert:
    if value.startswith(AVRO_CONTAINER_MAGIC):
        return igwn.decode(value, ref)
    head = value.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return voevent.decode(value, ref)
    if head.startswith(b"{"):
        try:
            is_igwn = "superevent_id" in json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            raise DecodeError(f"not JSON: {exc}") from exc
        return igwn.decode_json(value, ref) if is_igwn else gcn_json.decode(value, ref)
    raise DecodeError("content is not a known alert format (Avro container, JSON or XML)")


FORMATS: dict[str, AlertDecoder] = {
    "igwn": _igwn,
    "gcn-json": gcn_json.decode,
    "voevent": voevent.decode,
    "auto": _sniff,
}


def format_for(topic: str, routes: Mapping[str, str]) -> str:
    matches = [prefix for prefix in routes if topic.startswith(prefix)]
    return routes[max(matches, key=len)] if matches else "auto"


def decode_alert(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    routes: Mapping[str, str] = DEFAULT_ROUTES,
) -> Alert:
    if not value:
        raise DecodeError("empty message (no value)")
    name = format_for(topic, routes)
    try:
        decoder = FORMATS[name]
    except KeyError:
        raise DecodeError(f"route for {topic!r} names unknown format {name!r}") from None
    return decoder(value, SourceRef(topic, partition, offset, name))
