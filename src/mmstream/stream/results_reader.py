"""Our own result topics, read for bookkeeping only (headers, never as alert inputs): every
result published so far before the first alert is taken, then what comes after."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from mmstream.errors import MmstreamError
from mmstream.formats.headers import parse
from mmstream.ops.logging import get_logger
from mmstream.stream.clients import Clients
from mmstream.stream.events import Events
from mmstream.stream.messages import headers_of, origin
from mmstream.stream.results_index import ResultsIndex

log = get_logger("mmstream.service")


class ResultsReader:
    def __init__(
        self, consumer: Consumer, clients: Clients, index: ResultsIndex,
        events: Events | None = None,
    ) -> None:  # fmt: skip
        self.consumer, self.clients, self.index = consumer, clients, index
        self.events = events if events is not None else Events()

    def catch_up(self, topics: list[str], timeout: float = 120.0) -> None:
        """Read every result the topics hold now, to their end."""
        c = self.clients
        parts = [TopicPartition(x, n, OFFSET_BEGINNING) for x in topics
                 for n in c.partitions(x) or []]  # fmt: skip
        self.consumer.assign(parts)
        ends = {(tp.topic, tp.partition): c.end_offset(tp.topic, tp.partition) for tp in parts}
        read: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + timeout
        while any(read.get(k, 0) < end for k, end in ends.items() if end > 0):
            if time.monotonic() > deadline:
                raise MmstreamError(f"could not read our result topics within {timeout:.0f} s")
            self._read(1000, 0.2, read)
            for k in ends:  # a transaction's commit marker occupies an offset past the last
                pos = self.consumer.position([TopicPartition(k[0], k[1])])[0].offset
                if pos >= 0:
                    read[k] = max(read.get(k, 0), pos)
        log.info("published results read", alerts=len({a for _, a, _ in self.index.by_alert}))

    def poll(self) -> None:
        """What was published since (by us, or by another instance of the group)."""
        self._read(500, 0, {})

    def _read(self, n: int, timeout: float, read: dict[tuple[str, int], int]) -> None:
        for msg in self.consumer.consume(num_messages=n, timeout=timeout):
            if msg.error() is None:
                topic, partition, offset = origin(msg)
                read[(topic, partition)] = offset + 1
                h = parse(headers_of(msg))
                self.index.record(h)
                if h.result_id is not None:  # the ledger settles a run left pending
                    kind = "notice" if h.format == "json" else "result"
                    self.events.result_seen(h.result_id, kind, topic, partition, offset,
                                            h.supersedes)  # fmt: skip
