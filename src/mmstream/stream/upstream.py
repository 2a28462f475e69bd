"""Upstream liveness: heartbeats an alert broker sends (GCN's ``gcn.heartbeat``, once a second).

A silent alert topic means either that the sky is quiet or that the upstream (or our link to
it) is down, and only a heartbeat tells the two apart. Each configured heartbeat topic is
watched from the service's start: when none has come for ``max_gap_s`` the service warns
once in its log and reports the topic not alive (metric, dashboard); the next heartbeat ends
the warning. Pure apart from the message it reads; the clock is given.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from confluent_kafka import Consumer, Message, TopicPartition

from mmstream.ops.logging import get_logger
from mmstream.stream.clients import Clients
from mmstream.stream.events import Events
from mmstream.times import try_parse_utc_ns

log = get_logger("mmstream.upstream")


class UpstreamWatch:
    def __init__(
        self, topics: tuple[str, ...], max_gap_s: float, events: Events,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.topics, self.max_gap_s, self.events, self.clock = topics, max_gap_s, events, clock
        start = clock()
        self.last: dict[str, float] = {t: start for t in topics}  # silence counts from start
        self.sent_ns: dict[str, int | None] = {t: None for t in topics}
        self.silent: set[str] = set()

    def beat(self, msg: Message) -> None:
        """One heartbeat message (its ``alert_datetime`` kept where it has one)."""
        topic = str(msg.topic())
        self.last[topic] = self.clock()
        try:
            doc = json.loads(msg.value() or b"")
            self.sent_ns[topic] = try_parse_utc_ns(doc.get("alert_datetime"))
        except (ValueError, AttributeError):
            self.sent_ns[topic] = None  # a heartbeat all the same: it came
        if topic in self.silent:
            self.silent.discard(topic)
            log.info("upstream heartbeat resumed", topic=topic)
        self.events.upstream(topic, 0.0, True)

    def check(self) -> None:
        """Report each topic's silence; warn once when one passes ``max_gap_s``."""
        now = self.clock()
        for topic in self.topics:
            silent_s = now - self.last[topic]
            alive = silent_s <= self.max_gap_s
            if not alive and topic not in self.silent:
                self.silent.add(topic)
                log.warning("upstream heartbeat stopped: alerts from it may be lost",
                            topic=topic, silent_s=round(silent_s, 1),
                            max_gap_s=self.max_gap_s)  # fmt: skip
            self.events.upstream(topic, silent_s, alive)


def assign_heartbeats(consumer: Consumer, clients: Clients, topics: tuple[str, ...]) -> None:
    """Add the heartbeat topics to ``consumer``'s assignment, from their end (only what comes
    from now on tells whether the upstream is alive). A topic missing at start is not read
    (it stays reported silent until a restart), and the log says so."""
    for topic in topics:
        if not (parts := clients.partitions(topic) or []):
            log.warning("upstream heartbeat topic missing: it will be reported silent",
                        topic=topic)  # fmt: skip
        consumer.incremental_assign([TopicPartition(topic, n, clients.end_offset(topic, n))
                                     for n in parts])  # fmt: skip
