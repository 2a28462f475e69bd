"""Which decoder reads a message: by topic name first, by content where the topic is unknown."""

from __future__ import annotations

from collections.abc import Callable

from mmstream.errors import DecodeError
from mmstream.formats import igwn
from mmstream.model import Alert, SourceRef

AlertDecoder = Callable[[bytes, SourceRef], Alert]

# Topic prefixes and their decoders, most specific first.
TOPIC_DECODERS: tuple[tuple[str, str, AlertDecoder], ...] = (
    ("igwn.gwalert", igwn.FORMAT, igwn.decode),
)
AVRO_CONTAINER_MAGIC = b"Obj\x01"


def decode_alert(topic: str, partition: int, offset: int, value: bytes | None) -> Alert:
    if not value:
        raise DecodeError("empty message (no value)")
    for prefix, fmt, decoder in TOPIC_DECODERS:
        if topic.startswith(prefix):
            return decoder(value, SourceRef(topic, partition, offset, fmt))
    if value.startswith(AVRO_CONTAINER_MAGIC):
        return igwn.decode(value, SourceRef(topic, partition, offset, igwn.FORMAT))
    raise DecodeError(f"no decoder for topic {topic!r} and the content is not a known format")
