"""The live service: Kafka in, the pipeline's stages, Kafka out, on one polling loop.

Guarantees, and how:
- An alert's input offset is committed only in the same Kafka transaction that publishes
  all of its results (``send_offsets_to_transaction``), and never past an earlier alert of
  the same partition still waiting for its window. A crash re-reads unfinished alerts.
- A message that cannot be decoded goes to the dead-letter topic, byte-exact, in the same
  transaction that moves the offset past it: it is neither lost nor silently skipped.
- Detector events are read by assignment from ``now - lookback``: the store is rebuilt
  from Kafka on every start, so the service keeps no state of its own.
- Analyses run in worker processes: the loop keeps polling detectors, results and the
  outbox while they run; a partition's next alerts wait while one of its jobs is in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from mmstream.analyses.registry import Registry
from mmstream.ops.logging import get_logger, redacted
from mmstream.stream.alertbook import follow, open_book
from mmstream.stream.archive import Keeper, RawArchive
from mmstream.stream.clients import Clients
from mmstream.stream.connection import check_connection
from mmstream.stream.events import Counts, Events, Fanout
from mmstream.stream.health import Gauges, liveness, readiness
from mmstream.stream.hold import PartitionHold
from mmstream.stream.intake import check_no_loop
from mmstream.stream.pipeline import Pipeline
from mmstream.stream.publisher import Publisher
from mmstream.stream.results_reader import ResultsReader
from mmstream.stream.settings import StreamSettings
from mmstream.stream.topics import ensure_topics
from mmstream.stream.upstream import UpstreamWatch, assign_heartbeats
from mmstream.stream.watchdog import StallWatch, exit_process
from mmstream.stream.workers import make_pool
from mmstream.times import now_ns

log = get_logger("mmstream.service")


class Service:
    def __init__(
        self, settings: StreamSettings, registry: Registry, events: Events | None = None,
        on_stall: Callable[[str, float], None] = exit_process,
    ) -> None:  # fmt: skip
        self.settings, self.registry, self.on_stall = settings, registry, on_stall
        self.counts = Counts()
        self.events: Events = Fanout(self.counts, events) if events else self.counts
        self.ready = threading.Event()
        self._stop = threading.Event()
        self.last_turn = time.monotonic()
        self.watch: StallWatch | None = None
        self.pipeline: Pipeline | None = None
        self.gauges: Gauges | None = None

    def topics_needed(self) -> list[str]:
        t = self.settings.topics
        names = [s.name for s in self.registry if self.settings.policy(s.name).enabled]
        return [
            *(a for a in t.alerts if not a.startswith("^")),  # a pattern is no topic
            *(x for d in t.detectors for x in (t.events(d), t.status(d), t.context(d))),
            *(t.result(n) for n in names),
            *(t.notice(n) for n in names),
            t.deadletter,
            t.stats,
        ]

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        s = self.settings
        check_no_loop(s.topics, [spec.name for spec in self.registry])
        check_connection(dict(s.kafka))
        self.clients = c = Clients(s.kafka, s.instance, s.group_id)
        try:
            self._open(c)
            log.info("service started", instance=s.instance, alert_topics=list(s.topics.alerts),
                     analyses=[x.label for x in self.p.specs], kafka=redacted(dict(s.kafka)),
                     workers=s.run.workers)  # fmt: skip
            self.ready.set()
            self._loop()
        finally:
            self._close()

    @property
    def p(self) -> Pipeline:
        assert self.pipeline is not None, "the service has not started"
        return self.pipeline

    def _open(self, c: Clients) -> None:
        s = self.settings
        if s.create_topics:
            ensure_topics(c.admin, self.topics_needed())
        self.alerts = c.alert_consumer(s.topics.alerts)
        self.hold = PartitionHold(self.alerts)
        self.detectors = c.consumer("detectors")
        self.watch = StallWatch(s.stall_limit_s, self.on_stall)
        keeper = Keeper(RawArchive(s.archive_dir, s.instance) if s.archive_dir else None,
                        self.events.archive_error)  # fmt: skip
        # First: starting the producer aborts a transaction our predecessor left open, which
        # would hold every read_committed reader of our topics (the next reads) until then.
        publisher = Publisher(c.transactional_producer, self.events, s.topics.deadletter,
                              group=self.alerts.consumer_group_metadata,
                              before_commit=lambda: keeper.flush(durable=True),
                              guard=self.watch.guard)  # fmt: skip
        pool = make_pool(s.run.workers, sorted({x.func.__module__ for x in self.registry}))
        self.pipeline = p = Pipeline(s, self.registry, self.events, publisher, pool, keeper)
        if c.partitions(s.topics.deadletter) is not None:
            p.refusals.read_back(dict(s.kafka), s.lookback_s + 60)  # a minute for clock skew
        p.feed.assign(self.detectors, c, s.lookback_s)
        assign_heartbeats(self.detectors, c, s.topics.heartbeats)
        self.book: Consumer | None = None  # every alert partition, for the alert book
        if p.reads_alerts:  # other alerts, for the analyses that read them: from Kafka too
            self.book, n = open_book(p.book, c, s.topics.alerts, s.lookback_s, p.read_quietly)
            log.info("alert book rebuilt", alerts=n, lookback_s=s.lookback_s)
        self.results = ResultsReader(c.consumer("results-index"), c, p.index, self.events)
        self.results.catch_up([s.topics.result(x.name) for x in p.specs])
        p.refusals.producer = c.producer()
        # silence counts from here: the rebuild and catch-up above may take a while
        self.upstream = UpstreamWatch(s.topics.heartbeats, s.heartbeat_max_gap_s, self.events)
        self.alerts.subscribe(list(s.topics.alerts), on_assign=self._assigned,
                              on_revoke=self._revoked)  # fmt: skip

    def _loop(self) -> None:
        # Lag and broker round trips on a thread of their own: with a frozen broker each one
        # blocks for its timeout, and the loop must not (results would wait behind them).
        p = self.p
        self.gauges = Gauges(self.events, [self.alerts, self.detectors], self.clients, p.store,
                             p.scheduler, self.settings.topics.detectors)  # fmt: skip
        self.gauges.start()
        last_evict = 0.0
        while not self._stop.is_set():
            self.last_turn = now = time.monotonic()
            # While runs are in flight the loop sleeps on them, not in a poll timeout: a
            # result is published as soon as it comes back.
            busy = self.p.runner.busy()
            batch = self.detectors.consume(num_messages=1000, timeout=0 if busy else 0.01)
            ok = [m for m in batch if self._ok(m)]
            for msg in (m for m in ok if m.topic() in self.upstream.topics):
                self.upstream.beat(msg)
            self.p.detector_messages([m for m in ok if m.topic() not in self.upstream.topics])
            self.upstream.check()
            if self.book is not None:
                follow(self.p.book, self.book.consume(num_messages=100, timeout=0),
                       self.p.read_quietly)  # fmt: skip
            self.p.feed.end_batch(self.clients)
            self.p.refusals.serve()
            self.results.poll()
            # idle: back at the first alert (consume waits for as many as it asks, or its timeout)
            for msg in self.alerts.consume(*((20, 0.0) if busy else (1, 0.04))):  # held: hold.py
                if self._ok(msg) and not self.hold.offer(msg, now_ns(), self.p.runner.partitions()):
                    self.p.alert_message(msg, now_ns())
            self.p.step()
            if busy and len(batch) < 1000:  # a full batch: more detector data waits
                self.p.runner.wait(0.04)
                self.p.step()
            while (held := self.hold.next(self.p.runner.partitions())) is not None:
                self.p.alert_message(*held)
                self.p.step()
            if time.monotonic() - self.p.keeper.flushed > 1.0:
                self.p.keeper.flush()
            if now - last_evict > 60:
                self.p.evict(now_ns())
                last_evict = now

    def _ok(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.code() != KafkaError._PARTITION_EOF:
            log.error("consumer error", error=str(err), fatal=err.fatal())
            if err.fatal():
                raise KafkaException(err)
        return False

    def _assigned(self, consumer: object, partitions: list[TopicPartition]) -> None:
        log.info("alert partitions assigned",
                 partitions=sorted((tp.topic, tp.partition) for tp in partitions))  # fmt: skip

    def _revoked(self, consumer: object, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self.p.revoke(revoked)
        self.hold.revoke(revoked)
        log.info("alert partitions revoked; their unfinished alerts go to the next owner",
                 partitions=sorted(revoked))  # fmt: skip

    def alive(self) -> tuple[bool, str]:
        """Liveness: the loop turns and the outbox moves (a busy analysis is neither)."""
        pub = self.pipeline.publisher if self.pipeline else None
        return liveness(time.monotonic() - self.last_turn, pub.stuck_for() if pub else None,
                        pub.error if pub else "", self.settings.stall_limit_s)  # fmt: skip

    def readiness(self) -> tuple[bool, str]:
        up = self.gauges is not None and self.gauges.broker_up
        return readiness(self.ready.is_set(), up, time.monotonic() - self.last_turn)

    def _close(self) -> None:
        if self.gauges is not None:  # stopped before the clients close
            self.gauges.stop()
        if self.watch is not None:
            self.watch.close()
        if self.pipeline is not None:
            self.p.keeper.close()
            self.p.runner.close()
            self.p.refusals.close()
            try:
                self.p.publisher.producer.flush(10)
            except KafkaException as exc:  # do not hide the error that stopped the loop
                log.warning("producer flush at stop failed", error=str(exc))
        self.clients.close()
        log.info("service stopped", pending_jobs=len(self.p.scheduler.waiting)
                 if self.pipeline else 0)  # fmt: skip
