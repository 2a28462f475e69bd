"""Small typed accessors for consumed Kafka messages."""

from __future__ import annotations

import time
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


def message_time_ns(msg: Message, fallback_ns: int | None = None) -> int:
    """When the message was written (its Kafka timestamp); ``fallback_ns`` (default: now)
    where it has none."""
    kind, ms = msg.timestamp()
    if kind != 0 and ms >= 0:
        return int(ms) * 1_000_000
    return time.time_ns() if fallback_ns is None else fallback_ns
