"""Creating the topics the service reads and writes, where they do not exist yet."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from mmstream.errors import BrokerError
from mmstream.formats.limits import DEFAULT_LIMITS

# Real alerts exceed Kafka's 1 MiB default (an IGWN packet with an external-coincidence
# map is 1.6 MB in Avro, 2.1 MB in JSON); GCN and GWCelery allow 8 MiB. Topics we create
# take a message of that size plus its headers, and our producers may send one.
MESSAGE_BYTES = DEFAULT_LIMITS.max_message_bytes
TOPIC_MAX_MESSAGE_BYTES = MESSAGE_BYTES + (256 << 10)
PRODUCER_LARGE_MESSAGES = {"message.max.bytes": MESSAGE_BYTES + (512 << 10)}


def large_message_config(kafka: dict[str, object]) -> dict[str, object]:
    """A client's settings, allowing 8 MiB messages unless the settings say otherwise."""
    return {**PRODUCER_LARGE_MESSAGES, **kafka}


def ensure_topics(
    admin: AdminClient, names: Iterable[str], partitions: int = 1, timeout: float = 30.0
) -> list[str]:
    """Create the missing topics among ``names``; returns those created."""
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = sorted(set(names) - existing)
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=-1,
                # a detector's conditions are read from the beginning: never deleted
                config={
                    "max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES),
                    **({"retention.ms": "-1"} if name.endswith(".context") else {}),
                },
            )
            for name in missing
        ],
        operation_timeout=timeout,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"could not create topic {name}: {exc}") from exc
    wait_for_leaders(admin, missing, timeout)
    return missing


def wait_for_leaders(admin: AdminClient, names: Iterable[str], timeout: float = 30.0) -> None:
    """Block until every partition of ``names`` has a leader: new topics need a moment."""
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout).topics
        pending = {
            n
            for n in pending
            if n not in topics
            or topics[n].error is not None
            or not topics[n].partitions
            or any(p.leader < 0 for p in topics[n].partitions.values())
        }
        if pending:
            time.sleep(0.1)
    if pending:
        raise BrokerError(
            f"topics without a partition leader after {timeout:.0f} s: {sorted(pending)}"
        )
