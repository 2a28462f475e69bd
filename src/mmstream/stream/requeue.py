"""Dead letters read back, and sent back through (``mmstream deadletter``, the console).

A dead letter holds the original message byte-exact (unless it was cut to
``deadletter_max_bytes``: then its headers say so, and the raw archive has it whole),
the original's headers, then ours (deadletter.py). Requeueing produces the original value,
key and headers to the topic it came from (or another), with one header naming the dead
letter, as a new message: the service reads it like any other. Requeueing twice sends two
copies, and the second is the same notice again: the service publishes no second result
for it (a notice already published is a duplicate), so a requeue cannot double a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from mmstream.errors import MmstreamError
from mmstream.formats.headers import DLQ_REASON, Headers, headers_dict, parse
from mmstream.stream.history import history_reader, message_at, read_spans
from mmstream.stream.messages import as_produce_headers, headers_of

REQUEUED_FROM = "mmstream-requeued-from"


@dataclass(frozen=True)
class StoredDeadLetter:
    """One message of the dead-letter topic, with what our headers say about it."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    reason: str
    stage: str
    exception: str
    origin: tuple[str, int, int] | None
    truncated: bool

    @property
    def original_headers(self) -> Headers:
        """The original message's headers: those before our block (ours come last, so a
        forged reason header in the original stays the original's)."""
        last = max((i for i, (k, _) in enumerate(self.headers) if k == DLQ_REASON), default=-1)
        kept = self.headers if last < 0 else self.headers[:last]
        return [(k, v) for k, v in kept if k != "mmstream-dlq-headers-dropped"]


def _stored(msg: Any) -> StoredDeadLetter:
    headers = headers_of(msg)
    h = headers_dict(headers[max((i for i, (k, _) in enumerate(headers) if k == DLQ_REASON),
                                 default=0):])  # fmt: skip

    def text(name: str) -> str:
        return h.get(name, b"").decode(errors="replace")

    return StoredDeadLetter(
        msg.partition() or 0, msg.offset() or 0, msg.timestamp()[1], msg.key(), msg.value(),
        headers, text(DLQ_REASON), text("mmstream-dlq-stage") or "decode",
        text("mmstream-dlq-exception"), parse(headers).dlq_origin,
        text("mmstream-dlq-truncated") == "true",
    )  # fmt: skip


def recent(kafka: dict[str, Any], topic: str, per_partition: int = 200) -> list[StoredDeadLetter]:
    """The newest dead letters of each partition (at most ``per_partition``), newest first."""
    consumer = history_reader(kafka, "deadletter-view")
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        ranges = []
        for p in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), 10)
            if high > low:
                ranges.append((TopicPartition(topic, p, max(low, high - per_partition)), high))
        found = [_stored(m) for m in read_spans(consumer, ranges, deadline_s=15.0)]
    finally:
        consumer.close()
    return sorted(found, key=lambda d: (d.timestamp_ms, d.offset), reverse=True)


def fetch(kafka: dict[str, Any], topic: str, partition: int, offset: int) -> StoredDeadLetter:
    """The dead letter at one position (MmstreamError if there is none)."""
    msg = message_at(kafka, topic, partition, offset)
    if msg is None:
        raise MmstreamError(f"no dead letter at {topic}[{partition}]@{offset}")
    return _stored(msg)


def requeue(
    kafka: dict[str, Any], dl: StoredDeadLetter, dlq_topic: str, to_topic: str | None = None
) -> tuple[str, int, int]:
    """Send a dead letter's original back through; where the new message landed."""
    if dl.truncated:
        raise MmstreamError(
            f"dead letter {dlq_topic}[{dl.partition}]@{dl.offset} holds only the first bytes "
            "of its original (mmstream-dlq-truncated); the whole message is in the raw "
            "archive (mmstream-dlq-archive names the file)"
        )
    if any(k == "mmstream-dlq-headers-dropped" for k, _ in dl.headers):
        raise MmstreamError(
            f"dead letter {dlq_topic}[{dl.partition}]@{dl.offset} lost some of its original's "
            "headers (deadletter_max_header_bytes): sent back, it would not be the same "
            "message; the raw archive has it whole"
        )
    target = to_topic or (dl.origin[0] if dl.origin else None)
    if not target:
        raise MmstreamError("the dead letter names no origin topic: say where (--to-topic)")
    headers = [*dl.original_headers,
               (REQUEUED_FROM, f"{dlq_topic}[{dl.partition}]@{dl.offset}".encode())]  # fmt: skip
    landed: list[tuple[str, int, int]] = []
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            landed.append((msg.topic(), msg.partition(), msg.offset()))

    producer = Producer({**kafka, "enable.idempotence": True, "acks": "all"})
    producer.produce(target, value=dl.value, key=dl.key, headers=as_produce_headers(headers),
                     on_delivery=delivered)  # fmt: skip
    if producer.flush(30) > 0 or errors:
        raise KafkaException(errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT))
    return landed[0]
