"""One path for every refused input: its dead letter, its log line and its event.

An alert's dead letter goes into the transaction that moves the alert partition's offset
past it (:class:`~mmstream.stream.publisher.Outgoing`); a detector message's moves no
offset (detector topics are read by assignment) and goes out on a plain producer. A dead
letter the broker refuses for its size goes again without its value: it never wedges.
Messages dead-lettered before a restart (read back from the topic) are not sent twice.

Callers refuse a message after their ``except`` block, never inside it: a confluent-kafka
``produce()`` that raises (a dead letter too large for the client) keeps a reference to the
exception being handled (confluent-kafka 2.16), whose traceback holds the service's frames,
so each such dead letter leaked the service's objects and kept its clients alive to the
interpreter's exit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from mmstream.errors import DecodeError
from mmstream.formats.headers import parse
from mmstream.formats.limits import Limits
from mmstream.model import NS_PER_S
from mmstream.ops.logging import get_logger
from mmstream.stream.clients import leader_retry
from mmstream.stream.deadletter import DeadLettered, deadletter, without_value
from mmstream.stream.events import Events
from mmstream.stream.history import history_reader, read_spans, spans
from mmstream.stream.messages import Headers, as_produce_headers, headers_of, origin
from mmstream.stream.publisher import Outgoing, OutMessage
from mmstream.times import now_ns

log = get_logger("mmstream.deadletter")


def reason_of(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, DecodeError) else f"{type(exc).__name__}: {exc}"


class Refusals:
    def __init__(
        self, topic: str, sender: str, limits: Limits, events: Events,
        publish: Callable[[Outgoing], None], route: Callable[[str], str] = str,
    ) -> None:  # fmt: skip
        self.topic, self.sender, self.limits, self.events = topic, sender, limits, events
        self.publish = publish  # the transactional path, for alerts
        self.route = route  # where a detector message's dead letter goes (replay: a sandbox)
        self.producer: Producer | None = None  # for detector messages (set by the service)
        self.dead = DeadLettered()
        self._refused: list[tuple[bytes | None, Headers]] = []  # to send again, valueless

    def read_back(self, kafka: dict[str, object], since_s: float) -> None:
        """Which messages the dead-letter topic holds already, from ``since_s`` ago."""
        consumer = history_reader(kafka, "deadletters")
        try:
            since_ms = (now_ns() - int(since_s * NS_PER_S)) // 1_000_000
            # a topic created a moment ago may not have its partition leader yet
            ranges = leader_retry(lambda: spans(consumer, [self.route(self.topic)], since_ms),
                                  "offsets_for_times")  # fmt: skip
            for msg in read_spans(consumer, ranges):
                self.dead.record(parse(headers_of(msg)))
        finally:
            consumer.close()
        log.info("dead letters read", topic=self.topic, origins=len(self.dead.origins))

    def seen(self, topic: str, partition: int, offset: int) -> bool:
        return self.dead.seen(topic, partition, offset)

    def alert(
        self, msg: Message, exc: BaseException, stage: str = "decode", archive: str | None = None
    ) -> None:
        """Dead-letter an alert message, in the transaction that moves its offset."""
        topic, partition, offset = origin(msg)
        self.events.alert_input((topic, partition, offset), f"deadletter:{stage}",
                                reason=str(exc), archive=archive)  # fmt: skip
        log.error(f"alert message failed at {stage}; sent to the dead-letter topic",
                  topic=topic, partition=partition, offset=offset, reason=str(exc))  # fmt: skip
        dl = deadletter(msg.value(), headers_of(msg), topic=topic, partition=partition,
                        offset=offset, reason=str(exc), exception=exc, sender=self.sender,
                        limits=self.limits, stage=stage, archive=archive)  # fmt: skip
        out = OutMessage(self.topic, "", cast(bytes, dl.value), dl.headers)
        self.publish(Outgoing([out], topic, partition, offset, keys=[msg.key()]))
        self.events.deadlettered(stage, type(exc).__name__, detector=False)

    def detector(self, msg: Message, exc: BaseException, archive: str | None) -> None:
        """Dead-letter a detector message, outside any transaction (it moves no offset)."""
        topic, partition, offset = origin(msg)
        if not isinstance(exc, DecodeError):
            log.error("detector decoder raised", exc_info=exc, topic=topic, offset=offset)
        reason = reason_of(exc)
        log.error("detector message refused; sent to the dead-letter topic", topic=topic,
                  partition=partition, offset=offset, reason=reason[:500])  # fmt: skip
        dl = deadletter(msg.value(), headers_of(msg), topic=topic, partition=partition,
                        offset=offset, reason=reason, exception=exc, sender=self.sender,
                        limits=self.limits, archive=archive)  # fmt: skip
        self._produce(dl.value, msg.key(), dl.headers)
        self.events.deadlettered("decode", type(exc).__name__, detector=True)

    def serve(self) -> None:
        """Delivery reports, and the dead letters refused for their size, sent valueless."""
        if self.producer is None:
            return
        self.producer.poll(0)
        while self._refused:
            key, headers = self._refused.pop(0)
            self._produce(None, key, headers)

    def close(self) -> None:
        if self.producer is None:
            return
        try:
            self.producer.flush(10)
            if self._refused:
                self.serve()
                self.producer.flush(10)
        except KafkaException as exc:
            log.warning("dead-letter flush at stop failed", error=str(exc))

    def _produce(self, value: bytes | None, key: bytes | None, headers: Headers) -> None:
        assert self.producer is not None, "no dead-letter producer"
        topic = self.route(self.topic)

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                return
            too_large = err.code() in (KafkaError.MSG_SIZE_TOO_LARGE,
                                       KafkaError.RECORD_LIST_TOO_LARGE)  # fmt: skip
            if too_large and value:
                log.warning("dead letter too large for its topic; sent without its value",
                            bytes=len(value))  # fmt: skip
                # produced on the loop's next turn: never from inside a delivery callback
                self._refused.append((key, without_value(value, headers)))
            else:
                log.error("dead letter not delivered", error=str(err))

        while True:
            try:
                self.producer.produce(topic, value=value, key=key,
                                      headers=as_produce_headers(headers),
                                      on_delivery=delivered)  # fmt: skip
                break
            except BufferError:  # the local queue is full: let it drain
                self.producer.poll(0.1)
            except KafkaException as exc:  # larger than the client's message.max.bytes
                if not value or exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise
                headers = without_value(value, headers)
                value = None
        self.producer.poll(0)
