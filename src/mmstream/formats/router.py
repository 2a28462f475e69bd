"""Which decoder reads a message: by the topic's configured format, else by its content.

Routes map a topic prefix to a format name (longest prefix wins); ``auto`` sniffs the
bytes: an Avro container magic is IGWN Avro, ``<`` is VOEvent XML, ``{`` is IGWN JSON
when it has ``superevent_id`` and GCN unified JSON otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mmstream.errors import DecodeError
from mmstream.formats import gcn_json, igwn, voevent
from mmstream.formats.jsonsafe import load_json
from mmstream.formats.limits import DEFAULT_LIMITS, Limits
from mmstream.formats.validate import check_size
from mmstream.model import Alert, SourceRef

AlertDecoder = Callable[[bytes, SourceRef, Limits], Alert]
AVRO_CONTAINER_MAGIC = b"Obj\x01"
DEFAULT_ROUTES: dict[str, str] = {
    "igwn.gwalert": "igwn",
    "gcn.notices.": "gcn-json",
    "gcn.classic.voevent.": "voevent",
}


def _looks_like_json_object(value: bytes) -> bool:
    return value.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def _igwn(value: bytes, ref: SourceRef, limits: Limits) -> Alert:
    if value.startswith(AVRO_CONTAINER_MAGIC):
        return igwn.decode(value, ref, limits)
    if _looks_like_json_object(value):
        return igwn.decode_json(value, ref, limits)
    raise DecodeError("IGWN alert is neither an Avro container nor JSON")


def _sniff(value: bytes, ref: SourceRef, limits: Limits) -> Alert:
    if value.startswith(AVRO_CONTAINER_MAGIC):
        return igwn.decode(value, ref, limits)
    head = value.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return voevent.decode(value, ref)
    if head.startswith(b"{"):
        doc = load_json(value)
        is_igwn = isinstance(doc, dict) and "superevent_id" in doc
        if is_igwn:
            return igwn.decode_json(value, ref, limits)
        return gcn_json.decode(value, ref, limits)
    raise DecodeError("content is not a known alert format (Avro container, JSON or XML)")


FORMATS: dict[str, AlertDecoder] = {
    "igwn": _igwn,
    "gcn-json": lambda value, ref, limits: gcn_json.decode(value, ref, limits),
    "voevent": lambda value, ref, limits: voevent.decode(value, ref),
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
    limits: Limits = DEFAULT_LIMITS,
) -> Alert:
    """The alert in one message, or a DecodeError saying why not: this is the decoders'
    boundary, and no other exception leaves it (a decoder's bug must not become a crash
    loop on the message that triggers it)."""
    if value is None:
        raise DecodeError("empty message (no value)")
    if not value:
        raise DecodeError("empty message (a zero-length value)")
    check_size(value, limits)
    name = format_for(topic, routes)
    try:
        decoder = FORMATS[name]
    except KeyError:
        raise DecodeError(f"route for {topic!r} names unknown format {name!r}") from None
    try:
        return decoder(value, SourceRef(topic, partition, offset, name), limits)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError(f"malformed {name} alert: nested too deeply") from None
    except MemoryError:
        raise DecodeError(f"malformed {name} alert: decoding it needs more memory than "
                          "there is") from None  # fmt: skip
    except Exception as exc:
        raise DecodeError(f"malformed {name} alert: {type(exc).__name__}: "
                          f"{str(exc)[:300]}") from exc  # fmt: skip
