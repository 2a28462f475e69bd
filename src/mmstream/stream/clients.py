"""The Kafka clients of one service, made in one place, and the calls that must wait out a
leader election (a new topic, a restarted broker)."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from mmstream.ops.logging import get_logger
from mmstream.stream.topics import large_message_config

log = get_logger("mmstream.kafka")
_LEADER_ERRORS = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def leader_retry(call: Callable[[], Any], what: str, attempts: int = 20) -> Any:
    """Run ``call`` again while partitions have no leader yet (a new topic, a broker restart)."""
    for attempt in range(attempts):
        try:
            return call()
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in _LEADER_ERRORS:
                raise
            if attempt == attempts - 1:
                raise
            log.warning(f"{what} failed; retrying", error=str(exc), attempt=attempt)
            time.sleep(0.25)
    raise AssertionError("unreachable")


def retrying(call: Callable[[], Any], what: str, attempts: int = 10) -> None:
    """Run ``call``, repeating it while it fails with a retriable Kafka error."""
    for attempt in range(attempts):
        try:
            call()
            return
        except KafkaException as exc:
            log.warning("Kafka call failed", call=what, error=str(exc.args[0]),
                        retriable=exc.args[0].retriable(), attempt=attempt)  # fmt: skip
            if not exc.args[0].retriable() or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def member_id(instance: str, topics: tuple[str, ...]) -> str:
    """The static group member id: the instance name and a digest of what it subscribes.

    A static member that rejoins under the same id keeps its old assignment even when its
    subscription changed (a topic added to alert_topics stayed unassigned), so a new
    subscription is a new member; the old one's partitions move once its session expires.
    """
    digest = hashlib.sha256("\n".join(sorted(topics)).encode()).hexdigest()[:8]
    return f"{instance}.{digest}"


class Clients:
    """Consumers and producers of one service (made on :meth:`open`, closed on :meth:`close`)."""

    def __init__(self, kafka: Mapping[str, Any], instance: str, group_id: str) -> None:
        self.kafka = dict(kafka)
        self.instance, self.group_id = instance, group_id
        self.admin = AdminClient(self.kafka)
        self._consumers: list[Consumer] = []
        self._producers: list[Producer] = []
        # End-offset queries go through an idle client: a fetching consumer answers them
        # only after its long-poll fetch returns (about 0.5 s each).
        self.offsets = self.consumer("offsets", read_committed=False)

    def consumer(
        self, role: str, *, read_committed: bool = True, extra: dict[str, Any] | None = None
    ) -> Consumer:
        config = {**self.kafka, "group.id": f"{self.group_id}.{role}" if role else self.group_id,
                  "enable.auto.commit": False, **(extra or {})}  # fmt: skip
        if read_committed:
            config["isolation.level"] = "read_committed"
        consumer = Consumer(config)
        self._consumers.append(consumer)
        return consumer

    def alert_consumer(self, topics: tuple[str, ...]) -> Consumer:
        # Static membership: a restarted process with the same instance name gets its
        # partitions back at once, not after the dead one's session times out.
        static = {"group.instance.id": member_id(self.instance, topics),
                  "auto.offset.reset": "earliest"}  # fmt: skip
        return self.consumer("", extra=static)

    def transactional_producer(self) -> Producer:
        """A producer with our transactional id; starting it aborts what an earlier one left
        open (which would hold every read_committed reader of our topics until it expires)."""
        producer = Producer(
            large_message_config({
                **self.kafka,
                "transactional.id": f"{self.instance}.{self.group_id}",
                # A process that dies inside a transaction holds every read_committed reader
                # of our topics at that point until the broker aborts it: 30 s, not 60 s.
                # Our transactions take milliseconds; their calls time out after 10 s.
                "transaction.timeout.ms": 30_000,
                "enable.idempotence": True,
                "linger.ms": 5,
            })
        )  # fmt: skip
        leader_retry(lambda: producer.init_transactions(30), "init_transactions")
        self._producers.append(producer)  # closed with the others (after the service's flush)
        return producer  # the publisher owns it (and replaces it after a fatal error)

    def producer(self, **extra: Any) -> Producer:
        producer = Producer(large_message_config({**self.kafka, "enable.idempotence": True,
                                                  **extra}))  # fmt: skip
        self._producers.append(producer)
        return producer

    def end_offset(self, topic: str, partition: int) -> int:
        """The partition's end offset, waiting out a leader election."""
        _, high = leader_retry(
            lambda: self.offsets.get_watermark_offsets(TopicPartition(topic, partition), 10),
            "get_watermark_offsets",
        )
        return int(high)

    def start_offset(self, topic: str, partition: int) -> int:
        """The partition's first offset (its low watermark), waiting out a leader election."""
        low, _ = leader_retry(
            lambda: self.offsets.get_watermark_offsets(TopicPartition(topic, partition), 10),
            "get_watermark_offsets",
        )
        return int(low)

    def offsets_for_times(self, wanted: list[TopicPartition]) -> list[TopicPartition]:
        if not wanted:
            return []
        found: list[TopicPartition] = leader_retry(
            lambda: self.offsets.offsets_for_times(wanted, timeout=30), "offsets_for_times"
        )
        return found

    def partitions(self, topic: str) -> list[int] | None:
        """The topic's partitions; None when it does not exist."""
        metadata = self.admin.list_topics(timeout=30).topics
        return list(metadata[topic].partitions) if topic in metadata else None

    def close(self) -> None:
        for consumer in self._consumers:
            with contextlib.suppress(Exception):
                consumer.close()
        for producer in self._producers:
            try:
                left = producer.flush(10)
            except KafkaException as exc:  # do not hide the error that stopped the loop
                log.warning("producer flush at stop failed", error=str(exc))
                continue
            if left == 0:  # closed now, not when collected: a client collected after its
                # broker stopped logs "Connection refused" (close waits for nothing here)
                with contextlib.suppress(Exception):
                    producer.close()
