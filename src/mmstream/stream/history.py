"""Reading what topics already hold: committed messages, partition by partition, between two
times or whole (``mmstream replay`` and ``mmstream diff``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition


def history_reader(kafka: dict[str, Any], purpose: str) -> Consumer:
    """A consumer of its own group that commits nothing and sees committed messages only."""
    return Consumer({
        **kafka,
        "group.id": f"mmstream-{purpose}-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })  # fmt: skip


Span = tuple[TopicPartition, int]  # where to start (in the TopicPartition), offset to stop at


def spans(
    consumer: Consumer, topics: list[str], start_ms: int | None = None, end_ms: int | None = None
) -> list[Span]:
    """Offset ranges of ``topics`` holding messages written from start_ms to before end_ms
    (by ``offsets_for_times``); without times, everything the partitions hold now."""
    metadata = consumer.list_topics(timeout=30).topics
    parts = [TopicPartition(t, p) for t in topics if t in metadata
             for p in sorted(metadata[t].partitions)]  # fmt: skip

    def at(ms: int | None, default: int) -> list[int]:
        if ms is None:
            return [consumer.get_watermark_offsets(tp, 30)[default] for tp in parts]
        found = consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, ms)
                                            for tp in parts], 30)  # fmt: skip
        return [tp.offset for tp in found]

    if not parts:
        return []
    out = []
    for tp, first, last in zip(parts, at(start_ms, 0), at(end_ms, 1), strict=True):
        high = consumer.get_watermark_offsets(tp, 30)[1]
        first, last = (high if first < 0 else first), (high if last < 0 else last)
        if last > first:
            out.append((TopicPartition(tp.topic, tp.partition, first), last))
    return out


def read_spans(
    consumer: Consumer, ranges: list[Span], deadline_s: float | None = None
) -> Iterator[Message]:
    """Every committed message in the ranges, in order; transaction markers are skipped.
    With ``deadline_s``, stops (TimeoutError) when reading takes longer: a reader serving a
    page must not wait on a broker that went away."""
    end = None if deadline_s is None else time.monotonic() + deadline_s
    for tp, last in ranges:
        consumer.assign([tp])
        position = tp.offset
        while position < last:
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"reading {tp.topic}[{tp.partition}] took over {deadline_s} s")
            msg = consumer.poll(1.0)
            if msg is None:
                if consumer.position([tp])[0].offset >= last:
                    break  # only transaction markers were left
                continue
            if (err := msg.error()) is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaException(err)
            position = (msg.offset() or 0) + 1
            if position <= last:
                yield msg


def message_at(
    kafka: dict[str, Any], topic: str, partition: int, offset: int, deadline_s: float = 15.0
) -> Message | None:
    """The committed message at one position (None: not there, or gone by retention)."""
    consumer = history_reader(kafka, "read-one")
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
        if not low <= offset < high:
            return None
        span = [(TopicPartition(topic, partition, offset), offset + 1)]
        for msg in read_spans(consumer, span, deadline_s):
            return msg if msg.offset() == offset else None
        return None
    finally:
        consumer.close()
