"""Small typed accessors for consumed Kafka messages."""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import Message

Headers = list[tuple[str, bytes]]


def origin(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message, which always has all three."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("message without topic/partition/offset: not from a consumer")
    return topic, partition, offset


def headers_of(msg: Message) -> Headers:
    """The message's headers as (name, bytes) pairs; a null header value becomes b''."""
    raw = msg.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else (v or b"")) for k, v in items]


def as_produce_headers(headers: Headers) -> Any:
    """confluent-kafka's stub wants list[tuple[str, str | bytes | None]]; ours is narrower."""
    return cast(Any, headers)
