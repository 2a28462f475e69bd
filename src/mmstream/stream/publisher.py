"""Publishing: results, notices and alert dead letters, each alert's in one transaction
with its input offset.

An alert's offset counts as finished only inside the transaction that publishes its
results, and is never committed past an earlier alert still waiting (``OffsetTracker``).
A failed transaction is aborted and retried after a backoff, on a later turn of the loop
(a consumer that must rejoin its group after a broker restart can only do so while
polled); a fatal error replaces the producer, and the outbox is published again, so
nothing is lost or doubled. :class:`SandboxPublisher` is replay's: no transaction, no
offsets, every message to a sandbox topic.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from mmstream.formats.headers import parse
from mmstream.ops.logging import get_logger
from mmstream.stream.clients import retrying
from mmstream.stream.deadletter import without_value
from mmstream.stream.events import Delivered, Events
from mmstream.stream.messages import Headers, as_produce_headers
from mmstream.stream.offsets import OffsetTracker

log = get_logger("mmstream.publisher")
_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


class OutMessage(NamedTuple):
    topic: str
    key: str
    value: bytes | None
    headers: Headers
    # a statistics record (stream/runstats.py): its value is made when it is sent, from
    # the time.monotonic() of sending
    finish: Callable[[float], bytes] | None = None


@dataclass
class Outgoing:
    """Messages of one alert (results, or its dead letter), published with its offset."""

    messages: list[OutMessage]
    topic: str
    partition: int
    offset: int | None  # None: a late-data update, whose alert offset moved long ago
    keys: list[Any] | None = None
    alert_id: str | None = None
    arrived: float | None = None  # time.monotonic() the alert came in
    delivered: list[Delivered] = field(default_factory=list)
    errors: list[KafkaError] = field(default_factory=list)

    def too_large(self, err: KafkaError) -> bool:
        """Whether the broker (or the client) refused a message of this item for its size."""
        return bool({err.code(), *(e.code() for e in self.errors)} & _TOO_LARGE)


def _nothing() -> None:
    return None


class Publisher:
    """The outbox, published in order without blocking the loop."""

    def __init__(
        self,
        new_producer: Callable[[], Producer],
        events: Events,
        deadletter_topic: str,
        *,
        offsets: OffsetTracker | None = None,
        group: Callable[[], Any] | None = None,  # the alert consumer's group metadata
        before_commit: Callable[[], None] = _nothing,  # e.g. the archive, on disk first
        guard: Callable[[str], contextlib.AbstractContextManager[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.new_producer = new_producer
        self.producer = new_producer()
        self.events = events
        self.deadletter_topic = deadletter_topic
        self.offsets = offsets or OffsetTracker()
        self.group = group
        self.before_commit = before_commit
        self.guard = guard or (lambda call: contextlib.nullcontext())
        self.clock = clock
        self.outbox: list[Outgoing] = []
        self.listeners: list[Callable[[Outgoing], None]] = []
        self.retry_at = 0.0
        self.failures = 0
        self.stuck_since: float | None = None  # first failure of the queue's head
        self.error = ""
        self.abort_pending = False
        self.fatal_errors = 0

    def queue(self, item: Outgoing) -> None:
        self.outbox.append(item)
        self.flush()

    def flush(self) -> None:
        """Publish the outbox's head items, one transaction each, until one fails."""
        while self.outbox and self.clock() >= self.retry_at:
            item = self.outbox[0]
            if item.offset is not None:
                self.offsets.finish(item.topic, item.partition, item.offset)
                self.before_commit()
            failed: KafkaError | None = None  # handled after the except (stream/refusals.py)
            try:
                if self.abort_pending:
                    # An abort that timed out must be resumed before anything else:
                    # any other transactional call would fail with _CONFLICT.
                    with self.guard("abort_transaction"):
                        self.producer.abort_transaction(5)
                    self.abort_pending = False
                t0 = time.perf_counter()
                with self.guard("publish transaction"):
                    self._send(item)
                took = time.perf_counter() - t0
            except KafkaException as exc:
                failed = exc.args[0]
            if failed is not None:
                self._failed(item, failed)
                return
            self.outbox.pop(0)
            self.failures, self.stuck_since, self.fatal_errors = 0, None, 0
            self._published(item, took)

    def stuck_for(self) -> float | None:
        """How long the queue's head has failed to publish (None: it has not)."""
        return None if self.stuck_since is None else self.clock() - self.stuck_since

    def revoke(self, partitions: set[tuple[str, int]]) -> None:
        self.outbox = [o for o in self.outbox if (o.topic, o.partition) not in partitions]
        for topic, partition in partitions:
            self.offsets.forget(topic, partition)

    def drain(self, timeout_s: float) -> None:
        """Publish everything queued now, retrying without backoff (replay's end)."""
        deadline = time.monotonic() + timeout_s
        while self.outbox and time.monotonic() < deadline:
            self.retry_at = 0.0
            self.flush()
        if self.outbox:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "results left unsent"))

    # ------------------------------------------------------------------ inside
    def _send(self, item: Outgoing) -> None:
        position = self.offsets.committable(item.topic, item.partition)
        self.producer.begin_transaction()
        self._produce_all(item)  # delivery errors surface in commit_transaction too
        if position is not None and self.group is not None:
            offsets = [TopicPartition(item.topic, item.partition, position)]
            self.producer.send_offsets_to_transaction(offsets, self.group(), 10)
        retrying(lambda: self.producer.commit_transaction(10), "commit_transaction", attempts=3)
        self.producer.poll(0)  # serve the delivery reports: the ledger wants the offsets

    def route(self, topic: str) -> str:
        return topic

    def _produce_all(self, item: Outgoing) -> None:
        # this attempt's lists: a report of an aborted attempt served later lands in its own
        delivered_to: list[Delivered] = []
        errors: list[KafkaError] = []
        item.delivered, item.errors = delivered_to, errors
        for i, m in enumerate(item.messages):
            value = m.value if m.finish is None else m.finish(time.monotonic())

            def delivered(
                err: Any, msg: Message, m: OutMessage = m, value: bytes | None = value
            ) -> None:
                if err is not None:
                    errors.append(err)
                    return
                h = parse(m.headers)
                kind = ("stats" if m.finish is not None else "deadletter" if h.analysis is None
                        else "notice" if h.format == "json" else "result")  # fmt: skip
                delivered_to.append(Delivered(
                    m.topic, msg.topic() or "", msg.partition() or 0, msg.offset() or 0, kind,
                    h.label, h.result_id, h.supersedes,
                    value if kind == "stats" else None))  # fmt: skip

            self.producer.produce(
                self.route(m.topic),
                value=value,
                key=item.keys[i] if item.keys else m.key.encode(),
                headers=as_produce_headers(m.headers),
                on_delivery=delivered,
            )

    def _failed(self, item: Outgoing, err: KafkaError) -> None:
        self.error = str(err)[:300]
        if self.stuck_since is None:
            self.stuck_since = self.clock()
        if item.offset is not None:
            self.offsets.begin(item.topic, item.partition, item.offset)
        if err.fatal():
            self._replace_producer(err)
            self.retry_at = self.clock() + 1.0
            return
        if item.too_large(err):
            self._shrink_deadletters(item)
        self.events.transaction_failed()
        log.warning("transaction failed; will retry", error=str(err),
                    abortable=err.txn_requires_abort(), queued=len(self.outbox))  # fmt: skip
        self.abort_pending = True
        unfinished: KafkaError | None = None
        try:
            with self.guard("abort_transaction"):
                self.producer.abort_transaction(5)
            self.abort_pending = False
        except KafkaException as exc:
            unfinished = exc.args[0]
        if unfinished is not None and unfinished.fatal():
            self._replace_producer(unfinished)
        elif unfinished is not None:
            log.warning("abort did not finish; will resume it", error=str(unfinished))
        self.retry_at = self.clock() + min(5.0, 0.5 * 2**self.failures)
        self.failures += 1

    def _replace_producer(self, err: KafkaError) -> None:
        """After a fatal error the producer is unusable: a new one aborts what the old one
        left open, and the outbox goes again. Six in a row stop the loop."""
        self.fatal_errors += 1
        if self.fatal_errors > 5:
            raise KafkaException(err)
        log.warning("fatal producer error; replacing the producer", error=str(err))
        self.events.producer_replaced()
        with contextlib.suppress(Exception):
            self.producer.purge()
        self.producer = self.new_producer()
        self.abort_pending = False

    def _shrink_deadletters(self, item: Outgoing) -> None:
        """A dead letter the broker refuses for its size goes again without its value (the
        dead-letter topic's limit is lower than the input's): it must never wedge the queue."""
        for i, m in enumerate(item.messages):
            if m.topic == self.deadletter_topic and m.value:
                log.warning("dead letter too large for its topic; sent without its value",
                            bytes=len(m.value), origin=parse(m.headers).dlq_origin)  # fmt: skip
                shrunk = without_value(m.value, m.headers)
                item.messages[i] = m._replace(value=cast(bytes, None), headers=shrunk)

    def _published(self, item: Outgoing, took_s: float) -> None:
        for listener in self.listeners:
            listener(item)
        since = None if item.arrived is None else time.monotonic() - item.arrived
        self.events.published(item.alert_id, item.delivered, took_s, since)
        if item.messages and item.alert_id is not None:
            log.info("results published", alert_id=item.alert_id, count=len(item.messages),
                     topic=item.topic, partition=item.partition, offset=item.offset,
                     transaction_ms=round(took_s * 1000, 2))  # fmt: skip


class SandboxPublisher(Publisher):
    """Replay's publisher: no transaction and no offsets; results, notices and dead letters
    go to the sandbox topic and its ``.notices``, ``.stats`` and ``.deadletter`` siblings."""

    def __init__(
        self, new_producer: Callable[[], Producer], events: Events, deadletter_topic: str,
        sandbox: str, result_prefix: str, notice_prefix: str, stats_topic: str = "",
    ) -> None:  # fmt: skip
        super().__init__(new_producer, events, deadletter_topic)
        self.sandbox, self.prefixes = sandbox, (result_prefix, notice_prefix)
        self.stats_topic = stats_topic

    def route(self, topic: str) -> str:
        if topic.startswith(self.prefixes[0]):
            return self.sandbox
        if topic.startswith(self.prefixes[1]):
            return f"{self.sandbox}.notices"
        if topic == self.stats_topic:
            return f"{self.sandbox}.stats"
        return f"{self.sandbox}.deadletter"

    def _send(self, item: Outgoing) -> None:
        self._produce_all(item)
        if self.producer.flush(60) > 0:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "replay results unsent"))
        if item.errors:
            raise KafkaException(item.errors[0])
