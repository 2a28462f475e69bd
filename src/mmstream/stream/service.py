"""The service loop: ingest detector events and alerts, run analyses, publish transactionally.

Guarantees, and how:
- An alert's input offset is committed only in the same Kafka transaction that publishes
  all of its results (``send_offsets_to_transaction``), and never past an earlier alert of
  the same partition still waiting for its window. A crash re-reads unfinished alerts.
- A message that cannot be decoded goes to the dead-letter topic, byte-exact, in the same
  transaction that moves the offset past it: it is neither lost nor silently skipped.
- Detector events are read by assignment from ``now - lookback``: the store is rebuilt
  from Kafka on every start, so the service keeps no state of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from pydantic import BaseModel

from mmstream.analyses.registry import AnalysisInput, AnalysisSpec, Outcome, Registry, params_sha256
from mmstream.config import SECRET_KAFKA_KEYS, Settings
from mmstream.errors import DecodeError, MmstreamError
from mmstream.formats.detector import decode_events, decode_status
from mmstream.formats.results import encode_result
from mmstream.formats.router import decode_alert
from mmstream.formats.validate import (
    check_size,
    validate_alert,
    validate_event,
    validate_status,
)
from mmstream.ledger.store import Ledger
from mmstream.model import NS_PER_S, Alert, AlertType, DetectorEvent, Role, Window
from mmstream.ops.logging import get_logger, redacted, register_secrets
from mmstream.ops.metrics import (
    ALERT_TO_RESULT_SECONDS,
    ANALYSIS_CPU_SECONDS,
    ANALYSIS_PEAK_MEMORY_BYTES,
    BROKER_UP,
    CONSUMER_LAG,
    DATA_GAP_EVENTS,
    DEADLETTERS,
    DETECTOR_LIVE,
    DETECTOR_LIVETIME_FRACTION,
    DUPLICATE_EVENTS,
    LATE_EVENTS,
    MESSAGES_CONSUMED,
    MESSAGES_PRODUCED,
    RESULTS_PUBLISHED,
    TRANSACTION_ABORTS,
    TRANSACTION_SECONDS,
    WATERMARK_DELAY_SECONDS,
    WINDOWS_WAITING,
)
from mmstream.ops.server import Health, OpsServer
from mmstream.ops.state import DashboardState, ResultView
from mmstream.provenance.headers import (
    build_headers,
    code_string,
    headers_dict,
    notice_id,
    result_id,
)
from mmstream.provenance.report import gather, render_text
from mmstream.stream.archive import ARCHIVE_ERRORS, RawArchive
from mmstream.stream.connection import check_connection
from mmstream.stream.deadletter import DeadLettered, deadletter, without_value
from mmstream.stream.gaps import Gap
from mmstream.stream.history import history_reader, read_spans, spans
from mmstream.stream.messages import as_produce_headers, headers_of, origin
from mmstream.stream.offsets import OffsetTracker
from mmstream.stream.recording import Cost, Recorder, measured
from mmstream.stream.results_index import Published, ResultsIndex
from mmstream.stream.store import EventStore
from mmstream.stream.topics import ensure_topics, large_message_config
from mmstream.stream.watchdog import StallWatch, exit_process, restart_process
from mmstream.stream.watermarks import Watermarks
from mmstream.times import format_utc, now_ns, parse_utc_ns

PRODUCED_AT = "mmstream-produced-at"
# Headers only mmstream writes: a consumed alert carrying one is our own result, notice or
# dead letter (or a replay's), relayed back to us.
OWN_OUTPUT_HEADERS = frozenset({"mmstream-analysis", "mmstream-inputs", "mmstream-dlq-reason"})
log = get_logger("mmstream.service")
_LEADER_ERRORS = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


@dataclass
class Job:
    """One (alert, analysis) pair waiting for its window to close."""

    alert: Alert
    spec: AnalysisSpec[Any]
    params: BaseModel
    window: Window
    detectors: tuple[str, ...]
    deadline_ns: int
    update: int = 0  # > 0: a re-run for late detector data, superseding ``supersedes``
    supersedes: str | None = None


@dataclass
class ClosedWindow:
    """A published result whose window is watched for detector events arriving late."""

    job: Job
    result_id: str
    watch_until: float  # time.monotonic()
    late: int = 0
    last_late: float = 0.0
    updates: int = 0


@dataclass
class PendingAlert:
    alert: Alert
    jobs_left: int
    messages: list[tuple[str, str, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)


class Service:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        on_stall: Callable[[str, float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_stall = on_stall or (
            restart_process if settings.on_stall == "restart" else exit_process
        )
        self.watch: StallWatch | None = None
        self.recorder = Recorder(None, settings.instance)
        self.archive: RawArchive | None = None
        self._archive_flushed = 0.0
        self.board = DashboardState(list(settings.detectors))
        self.http: OpsServer | None = None
        self._arrivals: dict[tuple[str, int, int], float] = {}
        # counted per message, reported per batch (see _flush_tally)
        self._tally_messages: dict[str, int] = defaultdict(int)  # by topic
        self._tally_events: dict[str, int] = defaultdict(int)  # by detector
        self._last_turn = time.monotonic()
        self._gauges_at = 0.0
        self._broker_up = False
        self.registry = registry
        self.kafka = settings.kafka_config()
        register_secrets(v for k, v in self.kafka.items() if k in SECRET_KAFKA_KEYS)
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.store = EventStore(retention_ns=int(settings.lookback_s * NS_PER_S))
        self.watermarks = Watermarks()
        self.index = ResultsIndex()
        self.outbox: list[_Outgoing] = []
        self._outbox_retry_at = 0.0
        self._outbox_failures = 0
        self._outbox_stuck_since: float | None = None  # first failure of the queue's head
        self._outbox_error = ""
        self._abort_pending = False
        self._fatal_errors = 0
        self._event_partitions: dict[str, list[int]] = {}
        self.offsets = OffsetTracker()
        self.jobs: list[Job] = []
        self.pending: dict[tuple[str, int, int], PendingAlert] = {}
        self.counters: dict[str, int] = defaultdict(int)
        self.closed: list[ClosedWindow] = []
        self._late_horizon_ns = 0
        self._params = {spec.name: self._validated_params(spec) for spec in registry}
        self.limits = settings.limits
        self.dead = DeadLettered()
        # detector dead letters the broker refused for their size, to send without a value
        self._refused_deadletters: list[tuple[bytes | None, list[tuple[str, bytes]]]] = []
        # A detector's name comes from the topic it is on (configuration), never from content.
        self._detector_of = {
            topic: d
            for d in settings.detectors
            for topic in (settings.detector_topic(d), settings.status_topic(d))
        }

    # ----------------------------------------------------------------- set-up
    def _validated_params(self, spec: AnalysisSpec[Any]) -> BaseModel:
        overrides = self.settings.analyses.get(spec.name)
        params: BaseModel = spec.validate_params(overrides.params if overrides else {})
        return params

    def _enabled(self) -> list[AnalysisSpec[Any]]:
        return [
            spec
            for spec in self.registry
            if (o := self.settings.analyses.get(spec.name)) is None or o.enabled
        ]

    def topics_needed(self) -> list[str]:
        s = self.settings
        return [
            *(t for t in s.alert_topics if not t.startswith("^")),  # a pattern is no topic
            *(s.detector_topic(d) for d in s.detectors),
            *(s.status_topic(d) for d in s.detectors),
            *(s.result_topic(spec.name) for spec in self._enabled()),
            *(s.notice_topic(spec.name) for spec in self._enabled()),
            s.deadletter_topic,
        ]

    def _check_no_loop(self) -> None:
        """Refuse to start when an alert topic (or pattern) is one we write or read as data."""
        s = self.settings
        ours = [
            *(s.result_topic(spec.name) for spec in self.registry),
            *(s.notice_topic(spec.name) for spec in self.registry),
            s.deadletter_topic,
            *(t for d in s.detectors for t in (s.detector_topic(d), s.status_topic(d))),
        ]
        for entry in s.alert_topics:
            if entry.startswith("^"):
                try:
                    hits = [t for t in ours if re.match(entry, t)]
                except re.error as exc:
                    raise MmstreamError(
                        f"alert topic pattern {entry!r} is not a regex: {exc}"
                    ) from exc
            else:
                prefixes = (s.result_topic_prefix, s.notice_topic_prefix)
                hits = [entry] if entry in ours or entry.startswith(prefixes) else []
            if hits:
                raise MmstreamError(
                    f"alert topic {entry!r} would consume {hits[0]!r}, a topic mmstream writes or "
                    "reads as detector data: consuming it would re-trigger analyses on their "
                    "own output"
                )

    @staticmethod
    def _subscription_instance(instance: str, topics: tuple[str, ...]) -> str:
        """The static group member id: the instance name and a digest of what it subscribes.

        A static member that rejoins under the same id keeps its old assignment even when its
        subscription changed (a topic added to alert_topics stayed unassigned), so a new
        subscription is a new member; the old one's partitions move once its session expires.
        """
        digest = hashlib.sha256("\n".join(sorted(topics)).encode()).hexdigest()[:8]
        return f"{instance}.{digest}"

    def _connect(self) -> None:
        s = self.settings
        self._check_no_loop()
        check_connection(self.kafka)
        admin = AdminClient(self.kafka)
        if s.create_topics:
            ensure_topics(admin, self.topics_needed())
        self.alert_consumer = Consumer(
            {
                **self.kafka,
                "group.id": s.group_id,
                # Static membership: a restarted process with the same instance name gets its
                # partitions back at once, not after the dead one's session times out.
                "group.instance.id": self._subscription_instance(s.instance, s.alert_topics),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        self.alert_consumer.subscribe(
            list(s.alert_topics), on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self.detector_consumer = Consumer(
            {
                **self.kafka,
                "group.id": f"{s.group_id}.detectors",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        # End-offset queries go through an idle client: the fetching consumer answers them
        # only after its long-poll fetch returns (about 0.5 s each).
        self.offsets_client = Consumer({**self.kafka, "group.id": f"{s.group_id}.offsets"})
        # First: starting the producer aborts a transaction our predecessor left open, which
        # would hold every read_committed reader of our topics (the next two) until it expires.
        self.producer = self._transactional_producer()
        self._read_deadletters(admin)
        self._assign_detectors(admin)
        self._catch_up_results(admin)
        self.plain_producer = Producer(
            large_message_config({**self.kafka, "enable.idempotence": True})
        )

    def _transactional_producer(self) -> Producer:
        """A producer with our transactional id; starting it aborts what an earlier one left."""
        s = self.settings
        producer = Producer(
            large_message_config({
                **self.kafka,
                "transactional.id": f"{s.instance}.{s.group_id}",
                # A process that dies inside a transaction holds every read_committed reader
                # of our topics at that point until the broker aborts it: 30 s, not 60 s.
                # Our transactions take milliseconds; their calls time out after 10 s.
                "transaction.timeout.ms": 30_000,
                "enable.idempotence": True,
                "linger.ms": 5,
            })
        )  # fmt: skip
        _leader_retry(lambda: producer.init_transactions(30), "init_transactions")
        return producer

    def _replace_producer(self, err: KafkaError) -> None:
        """After a fatal transactional error the producer is unusable: start a new one.

        The open transaction (if any) is aborted by the new producer's init_transactions, and
        the queued results are published again from the outbox, so nothing is lost or doubled.
        """
        self._fatal_errors += 1
        if self._fatal_errors > 5:
            raise KafkaException(err)
        log.warning("fatal producer error; replacing the producer", error=str(err))
        self.counters["producer_replaced"] += 1
        with contextlib.suppress(Exception):
            self.producer.purge()
        self.producer = self._transactional_producer()
        self._abort_pending = False

    def _assign_detectors(self, admin: AdminClient) -> None:
        since_ns = now_ns() - int(self.settings.lookback_s * NS_PER_S)
        self.store.covered_from_ns = since_ns
        metadata = admin.list_topics(timeout=30).topics
        wanted: list[TopicPartition] = []
        for detector in self.settings.detectors:
            for topic in (
                self.settings.detector_topic(detector),
                self.settings.status_topic(detector),
            ):
                if topic not in metadata:
                    log.warning("detector topic missing", topic=topic)
                    continue
                for p in metadata[topic].partitions:
                    wanted.append(TopicPartition(topic, p, since_ns // 1_000_000))
        starts = self._offsets_for_times(wanted)
        for tp in starts:
            if tp.topic.endswith(".events"):
                offset = tp.offset
                if offset < 0:  # nothing newer than the lookback: start at the end
                    offset = self._end_offset(tp.topic, tp.partition)
                self.watermarks.start_at(tp.topic, tp.partition, offset)
                self._event_partitions.setdefault(tp.topic, []).append(tp.partition)
        self.detector_consumer.assign(starts)
        log.info(
            "detector partitions assigned", count=len(starts), lookback_s=self.settings.lookback_s
        )

    def _read_deadletters(self, admin: AdminClient) -> None:
        """Which messages the dead-letter topic holds already, since the detector history
        starts (a minute earlier, for clock skew): those are not dead-lettered again."""
        topic = self.settings.deadletter_topic
        if topic not in admin.list_topics(timeout=30).topics:
            return
        since_ms = (now_ns() - int((self.settings.lookback_s + 60) * NS_PER_S)) // 1_000_000
        consumer = history_reader(self.kafka, "deadletters")
        try:
            # a topic created a moment ago may not have its partition leader yet
            ranges = _leader_retry(lambda: spans(consumer, [topic], since_ms), "offsets_for_times")
            for msg in read_spans(consumer, ranges):
                self.dead.record(headers_of(msg))
        finally:
            consumer.close()
        log.info("dead letters read", topic=topic, origins=len(self.dead.origins))

    def _catch_up_results(self, admin: AdminClient, timeout: float = 120.0) -> None:
        """Read every result we published (headers only) before taking any alert."""
        self.results_consumer = Consumer(
            {
                **self.kafka,
                "group.id": f"{self.settings.group_id}.results-index",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        metadata = admin.list_topics(timeout=30).topics
        parts = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic in (self.settings.result_topic(s.name) for s in self._enabled())
            if topic in metadata
            for p in metadata[topic].partitions
        ]
        self.results_consumer.assign(parts)
        ends = {(tp.topic, tp.partition): self._end_offset(tp.topic, tp.partition) for tp in parts}
        read: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + timeout
        while any(read.get(k, 0) < end for k, end in ends.items() if end > 0):
            if time.monotonic() > deadline:
                raise MmstreamError(f"could not read our result topics within {timeout:.0f} s")
            for msg in self.results_consumer.consume(num_messages=1000, timeout=0.2):
                if msg.error() is None:
                    topic, partition, offset = origin(msg)
                    read[(topic, partition)] = offset + 1
                    self.index.record(headers_dict(headers_of(msg)))
            # A transaction's commit marker occupies an offset past the last result.
            for k in ends:
                pos = self.results_consumer.position([TopicPartition(k[0], k[1])])[0].offset
                if pos >= 0:
                    read[k] = max(read.get(k, 0), pos)
        log.info("published results read", alerts=len({a for _, a, _ in self.index.by_alert}))

    def _poll_results(self) -> None:
        for msg in self.results_consumer.consume(num_messages=500, timeout=0):
            if msg.error() is None:
                self.index.record(headers_dict(headers_of(msg)))

    def _offsets_for_times(self, wanted: list[TopicPartition]) -> list[TopicPartition]:
        if not wanted:
            return []
        result: list[TopicPartition] = _leader_retry(
            lambda: self.detector_consumer.offsets_for_times(wanted, timeout=30),
            "offsets_for_times",
        )
        return result

    def _end_offset(self, topic: str, partition: int) -> int:
        """The partition's end offset, waiting out a leader election (new or restarted broker)."""
        _, high = _leader_retry(
            lambda: self.offsets_client.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            ),
            "get_watermark_offsets",
        )
        return int(high)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("alert partitions assigned", partitions=sorted((tp.topic, tp.partition)
                                                                for tp in partitions))  # fmt: skip

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self.jobs = [
            j for j in self.jobs if (j.alert.ref.topic, j.alert.ref.partition) not in revoked
        ]
        for key in [k for k in self.pending if (k[0], k[1]) in revoked]:
            del self.pending[key]
        self.outbox = [o for o in self.outbox if (o.topic, o.partition) not in revoked]
        for topic, partition in revoked:
            self.offsets.forget(topic, partition)
        log.info(
            "alert partitions revoked; their unfinished alerts go to the next owner",
            partitions=sorted(revoked),
        )

    # ------------------------------------------------------------------- loop
    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        if (url := self.settings.ledger_location()) is not None:
            self.recorder = Recorder(Ledger(url), self.settings.instance)
        if self.settings.archive:
            self.archive = RawArchive(self.settings.archive_dir(), self.settings.instance)
        self._start_http()
        self._connect()
        log.info(
            "service started",
            instance=self.settings.instance,
            analyses=[s.label for s in self._enabled()],
            alert_topics=list(self.settings.alert_topics),
            kafka=redacted(self.kafka),
        )
        self.watch = StallWatch(self.settings.stall_limit_s, self.on_stall)
        self.ready.set()
        last_evict = time.monotonic()
        try:
            while not self._stop.is_set():
                self._last_turn = time.monotonic()
                if self._last_turn - self._gauges_at > 5.0:
                    self._update_gauges()
                self._poll_detectors()
                self._poll_results()
                self._poll_alerts()
                self._run_ready_jobs()
                self._rerun_late()
                self._flush_outbox()
                if time.monotonic() - self._archive_flushed > 1.0:
                    self._flush_archive()
                if time.monotonic() - last_evict > 60:
                    self.store.evict(now_ns())
                    last_evict = time.monotonic()
        finally:
            self._close()

    def _start_http(self) -> None:
        s = self.settings
        if s.http_port is None:
            return
        ledger = self.recorder.ledger

        def provenance(rid: str) -> str | None:
            found = gather(ledger, rid) if ledger is not None else None
            return None if found is None else render_text(found)

        try:
            self.http = OpsServer(s.http_host, s.http_port, self.board,
                                  Health(self._alive, self._is_ready), provenance)  # fmt: skip
        except OSError as exc:  # alerts matter more than the dashboard: say so, go on
            log.error("dashboard and metrics NOT served: cannot listen",
                      host=s.http_host, port=s.http_port, error=str(exc))  # fmt: skip
            return
        self.http.start()
        log.info("dashboard and metrics", address=self.http.address)

    def _alive(self) -> tuple[bool, str]:
        idle = time.monotonic() - self._last_turn
        limit = self.settings.stall_limit_s
        stuck = self._outbox_stuck_since
        if stuck is not None and time.monotonic() - stuck > limit:
            return False, (f"results queue stuck: publishing has failed for "
                           f"{time.monotonic() - stuck:.0f} s ({self._outbox_error})")  # fmt: skip
        return idle < limit, f"service loop last turned {idle:.1f} s ago (limit {limit:g} s)"

    def _is_ready(self) -> tuple[bool, str]:
        if not self.ready.is_set():
            return False, "starting: connecting, rebuilding the detector store"
        if not self._broker_up:
            return False, "broker unreachable"
        idle = time.monotonic() - self._last_turn
        if idle > 10:
            return False, f"not consuming: loop idle {idle:.0f} s"
        return True, "consuming"

    def _update_gauges(self) -> None:
        """Lag, watermark delays, waiting windows: every few seconds, from an idle client."""
        self._gauges_at = time.monotonic()
        WINDOWS_WAITING.set(len(self.jobs))
        now = now_ns()
        for d in self.settings.detectors:
            mark = self.store.watermark(d)
            self.board.watermark(d, mark)
            if mark is not None:
                WATERMARK_DELAY_SECONDS.labels(d).set((now - mark) / NS_PER_S)
        try:
            parts = list(self.alert_consumer.assignment())
            parts += list(self.detector_consumer.assignment())
            for tp, pos in zip(parts, self._positions(parts), strict=True):
                high = self._end_offset(tp.topic, tp.partition)
                if pos >= 0:
                    CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - pos))
            self._broker_up = True
        except KafkaException as exc:
            self._broker_up = False
            log.warning("broker round trip failed", error=str(exc))
        BROKER_UP.set(1 if self._broker_up else 0)

    def _positions(self, parts: list[TopicPartition]) -> list[int]:
        alert = set(self.alert_consumer.assignment())
        out = []
        for tp in parts:
            consumer = self.alert_consumer if tp in alert else self.detector_consumer
            out.append(consumer.position([tp])[0].offset)
        return out

    def _flush_archive(self, durable: bool = False) -> None:
        self._archive_flushed = time.monotonic()
        if self.archive is not None:
            try:
                self.archive.flush(durable=durable)
            except Exception as exc:
                ARCHIVE_ERRORS.inc()
                log.error("archive flush failed", error=str(exc))

    def _close(self) -> None:
        if self.watch is not None:
            self.watch.close()
        if self.http is not None:
            self.http.stop()
        if self.archive is not None:
            with contextlib.suppress(Exception):
                self.archive.close()
        for name in ("alert_consumer", "detector_consumer", "offsets_client", "results_consumer"):
            if (consumer := getattr(self, name, None)) is not None:
                consumer.close()
        for name in ("producer", "plain_producer"):
            if (producer := getattr(self, name, None)) is not None:
                try:
                    producer.flush(10)
                    if name == "plain_producer" and self._refused_deadletters:
                        for key, headers in self._refused_deadletters:
                            self._produce_deadletter(None, key, headers)
                        producer.flush(10)
                except KafkaException as exc:  # do not hide the error that stopped the loop
                    log.warning("producer flush at stop failed", error=str(exc))
        log.info("service stopped", pending_jobs=len(self.jobs))

    def _poll_detectors(self) -> None:
        heartbeats: dict[str, int] = {}  # latest heartbeat per detector in this batch
        for msg in self.detector_consumer.consume(num_messages=1000, timeout=0.01):
            if msg.error() is not None:
                self._consumer_error(msg)
                continue
            self.handle_detector(msg, heartbeats)
        self._flush_tally()
        for det, repeats in self.store.take_duplicates().items():
            DUPLICATE_EVENTS.labels(det).inc(repeats)
        self.plain_producer.poll(0)  # serve dead-letter delivery reports
        while self._refused_deadletters:
            key, headers = self._refused_deadletters.pop(0)
            self._produce_deadletter(None, key, headers)
        for detector, time_ns in heartbeats.items():
            self._heartbeat(detector, time_ns)
        for detector, time_ns in self.watermarks.confirmed():
            self.store.advance_watermark(detector, time_ns)

    def handle_detector(self, msg: Message, heartbeats: dict[str, int]) -> None:
        """Store one detector event or status message (live, or replayed); a status message's
        time goes into ``heartbeats`` (latest per detector) for the watermark."""
        stored = self._archived(msg)
        topic, partition, offset = origin(msg)
        if topic.endswith(".events"):
            # Read, whatever comes of it: a heartbeat waits for the events partitions to be
            # read up to their end, and a refused last message must not hold it back.
            self.watermarks.read(topic, partition, offset)
        if self.dead.seen(topic, partition, offset):
            return  # dead-lettered before a restart: once is enough
        try:
            detector = self._detector_of.get(topic)
            if detector is None:
                raise DecodeError(f"{topic} is not a configured detector's topic")
            value = msg.value()
            if value is None:
                raise DecodeError("detector message with no value (null)")
            check_size(value, self.limits)
            written_ns = _message_time_ns(msg)
            if topic.endswith(".status"):
                status = validate_status(decode_status(value), detector, written_ns, self.limits)
                self.store.add_status(status)
                self.board.detector_status(status.detector, status.state, status.reason)
                DETECTOR_LIVE.labels(status.detector).set(1 if status.state == "GOOD" else 0)
                latest = heartbeats.get(status.detector, status.time_ns)
                heartbeats[status.detector] = max(latest, status.time_ns)
                return
            self._tally_messages[topic] += 1
            events = decode_events(value)
            for i, event in enumerate(events):
                validate_event(event, detector, written_ns, self.limits,
                               index=i if len(events) > 1 else None)  # fmt: skip
            for source in {e.source for e in events}:  # once per writer, not per event
                if not self.store.gaps.admits(detector, source, self.limits.max_sources):
                    raise DecodeError(f"event source {source[:100]!r} would be {detector!r}'s "
                                      f"source number {self.limits.max_sources + 1} "
                                      "(limit max_sources)")  # fmt: skip
        except Exception as exc:  # DecodeError, or a decoder's bug: never a crash loop
            self._deadletter_detector(msg, exc, archive=stored)
            return
        for event in events:
            hits = self._closed_windows_of(event) if self.closed else []
            if hits and self.store.holds(event):
                DUPLICATE_EVENTS.labels(detector).inc()  # a repeat is not late data
                continue
            if (gap := self.store.add(event, partition, offset)) is not None:
                self._data_gap(gap)
            if hits:
                self._late_event(event, hits)
        self.counters["detector_events"] += len(events)
        if events:
            self._tally_events[events[0].detector] += len(events)

    def _flush_tally(self) -> None:
        """Per-topic metrics and the dashboard's rates, once per batch (not per message:
        a labelled counter costs microseconds, a lot at 10^5 messages a second)."""
        for topic, messages in self._tally_messages.items():
            MESSAGES_CONSUMED.labels(topic).inc(messages)
        for detector, events in self._tally_events.items():
            self.board.detector_events(detector, events)
        self._tally_messages.clear()
        self._tally_events.clear()

    def _closed_windows_of(self, event: DetectorEvent) -> list[ClosedWindow]:
        """The published windows (still watched) this event falls in."""
        if event.time_ns > self._late_horizon_ns:
            return []
        return [
            cw
            for cw in self.closed
            if event.detector in cw.job.detectors
            and cw.job.window.start_ns <= event.time_ns <= cw.job.window.end_ns
        ]

    def _late_event(self, event: DetectorEvent, hits: list[ClosedWindow]) -> None:
        """An event inside a window whose result is out: count it, and mark it for a re-run."""
        self.counters["late_events"] += 1
        LATE_EVENTS.labels(event.detector).inc()
        for cw in hits:
            cw.late += 1
            cw.last_late = time.monotonic()
        log.info(
            "late detector event in a closed window",
            detector=event.detector,
            event_id=event.event_id,
            time=format_utc(event.time_ns),
            results=[cw.result_id for cw in hits],
        )

    def _watch(self, job: Job, rid: str) -> None:
        """Watch a window whose result was just made for late events (see late_events)."""
        self._forget_windows(job.alert, job.spec.name)
        self.closed.append(
            ClosedWindow(
                job, rid, time.monotonic() + self.settings.late_watch_s, updates=job.update
            )
        )
        self._late_horizon_ns = max(cw.job.window.end_ns for cw in self.closed)

    def _rerun_late(self) -> None:
        """Re-run analyses whose windows got late events, once the late events settle."""
        if not self.closed:
            return
        now = time.monotonic()
        due = []
        if self.settings.late_events == "rerun":
            settle = self.settings.late_settle_s
            due = [cw for cw in self.closed if cw.late and now - cw.last_late >= settle]
        self.closed = [cw for cw in self.closed if cw not in due and now < cw.watch_until]
        for cw in due:
            job = cw.job
            log.info(
                "re-running for late detector data",
                analysis=job.spec.label,
                alert_id=job.alert.alert_id,
                late_events=cw.late,
                supersedes=cw.result_id,
            )
            update = replace(job, update=cw.updates + 1, supersedes=cw.result_id)
            self._run_job(update, complete=True)
        self._late_horizon_ns = max((cw.job.window.end_ns for cw in self.closed), default=0)

    def _forget_windows(self, alert: Alert, analysis: str | None = None) -> None:
        """Stop watching this alert's (and role's: a test never touches the real one) windows."""
        self.closed = [
            cw
            for cw in self.closed
            if not (
                cw.job.alert.alert_id == alert.alert_id
                and cw.job.alert.role == alert.role
                and (analysis is None or cw.job.spec.name == analysis)
            )
        ]

    def _data_gap(self, gap: Gap) -> None:
        self.counters["data_gaps"] += 1
        DATA_GAP_EVENTS.labels(gap.detector).inc(gap.missing)
        log.warning(
            "detector data gap: events missing; excluded from livetime until they arrive",
            detector=gap.detector,
            source=gap.source,
            first_seq=gap.first,
            last_seq=gap.last,
            start=format_utc(gap.start_ns),
            end=format_utc(gap.end_ns),
        )

    def _heartbeat(self, detector: str, time_ns: int) -> None:
        """Count the heartbeat once the events sent before it have been read (watermarks.py)."""
        topic = self.settings.detector_topic(detector)
        try:
            ends = {
                (topic, p): self._end_offset(topic, p)
                for p in self._event_partitions.get(topic, [])
            }
        except KafkaException as exc:  # the watermark only waits for the next heartbeat
            log.warning(
                "heartbeat not counted: end offsets unknown", detector=detector, error=str(exc)
            )
            return
        self.watermarks.heartbeat(detector, time_ns, ends)

    def _poll_alerts(self) -> None:
        for msg in self.alert_consumer.consume(num_messages=20, timeout=0.04):
            if msg.error() is not None:
                self._consumer_error(msg)
                continue
            self.handle_alert(msg, now_ns())

    def handle_alert(self, msg: Message, received_ns: int) -> None:
        """Decode, validate and schedule one alert message (live, or replayed)."""
        self.counters["alerts_consumed"] += 1
        MESSAGES_CONSUMED.labels(msg.topic()).inc()
        topic, partition, offset = origin(msg)
        stored = self._archived(msg)
        self._arrivals[(topic, partition, offset)] = time.monotonic()
        self.offsets.begin(topic, partition, offset)
        if self.dead.seen(topic, partition, offset):
            # Dead-lettered before a restart, but its offset could not move past an earlier
            # alert still waiting: move it now, with no second dead letter.
            self._transact([], topic, partition, offset=offset)
            return
        try:
            if own := [k for k, _ in headers_of(msg) if k in OWN_OUTPUT_HEADERS]:
                raise DecodeError(
                    f"own output: the message carries mmstream's header {own[0]!r}; consuming "
                    "it would re-trigger analyses on their own output"
                )
            alert = decode_alert(
                topic, partition, offset, msg.value(), self.settings.routes, self.limits
            )
            if any(k == "_test" for k, _ in headers_of(msg)) and alert.role is not Role.TEST:
                alert = replace(alert, role=Role.TEST)  # published with `hop publish -t`
            validate_alert(alert, received_ns, self.limits)
        except Exception as exc:  # decode_alert makes every failure a DecodeError; belt and braces
            self._deadletter_alert(msg, exc, archive=stored)
            return
        self.recorder.input(topic, partition, offset, "decoded", alert, archive=stored)
        self.board.alert_seen(alert, "decoded")
        try:
            self._schedule(alert)
        except Exception as exc:  # a bug or a bad parameter: keep the message, say why
            log.exception("alert could not be scheduled", topic=topic, offset=offset)
            self.pending.pop((topic, partition, offset), None)
            self.jobs = [j for j in self.jobs if j.alert is not alert]
            self._deadletter_alert(msg, exc, stage="processing", archive=stored)

    def _archived(self, msg: Message) -> str | None:
        """Keep the raw message in the archive; where it went (None when archiving is off)."""
        if self.archive is None:
            return None
        try:
            return str(self.archive.append(msg))
        except Exception as exc:  # the archive is a record: a full disk must not stop alerts
            ARCHIVE_ERRORS.inc()
            log.error("archive write failed", topic=msg.topic(), error=str(exc))
            return None

    def _consumer_error(self, msg: Message) -> None:
        err = msg.error()
        if err is None or err.code() == KafkaError._PARTITION_EOF:
            return
        log.error("consumer error", error=str(err), fatal=err.fatal())
        if err.fatal():
            raise KafkaException(err)

    def _schedule(self, alert: Alert) -> None:
        ref = alert.ref
        key = (ref.topic, ref.partition, ref.offset)
        logger = log.bind(
            alert_id=alert.alert_id,
            revision=alert.revision,
            topic=ref.topic,
            partition=ref.partition,
            offset=ref.offset,
        )
        if alert.role is Role.TEST and self.settings.test_alerts == "skip":
            logger.info("test alert skipped by policy")
            self.recorder.input(ref.topic, ref.partition, ref.offset, "skipped:test", alert)
            self._finish_alert(PendingAlert(alert, 0))
            return
        if alert.alert_type is AlertType.RETRACTION:
            self._forget_windows(alert)
            self._retract(alert, logger)
            return
        specs = [s for s in self._enabled() if s.matches(alert)]
        duplicates = [s.label for s in specs if self._seen(s, alert)]
        if duplicates:
            logger.info("notice already processed; no second result", analyses=duplicates)
            reason = f"already processed for {', '.join(duplicates)}"
            self.recorder.input(ref.topic, ref.partition, ref.offset, "duplicate", alert, reason)
            self.counters["duplicate_notices"] += 1
            specs = [s for s in specs if s.label not in duplicates]
        if alert.time_ns is None or not specs:
            logger.info("alert triggers no analysis", alert_type=str(alert.alert_type))
            self._finish_alert(PendingAlert(alert, 0))
            return
        arrived = now_ns()
        max_wait = int(self.settings.max_wait_s * NS_PER_S)
        for spec in specs:
            overrides = self.settings.analyses.get(spec.name)
            before, after = (
                overrides.window if overrides and overrides.window else spec.window_for(alert)
            )
            window = Window.around(alert.time_ns, before, after)
            detectors = spec.detectors or self.settings.detectors
            self.jobs.append(
                Job(
                    alert,
                    spec,
                    self._params[spec.name],
                    window,
                    tuple(detectors),
                    deadline_ns=max(arrived, window.end_ns) + max_wait,
                )
            )
        self.pending[key] = PendingAlert(alert, len(specs))
        logger.info("alert scheduled", analyses=[s.label for s in specs])

    def _seen(self, spec: AnalysisSpec[Any], alert: Alert) -> bool:
        """Published already, or waiting here (the same notice twice in quick succession)."""
        role = str(alert.role)
        if self.index.published(spec.name, alert.alert_id, alert.revision, role):
            return True
        queued = ResultsIndex()
        for item in self.outbox:
            for topic, _, _, headers in item.messages:
                if topic.startswith(self.settings.result_topic_prefix):
                    queued.record(dict(headers))
        if queued.published(spec.name, alert.alert_id, alert.revision, role):
            return True
        return any(
            j.spec.name == spec.name
            and j.alert.alert_id == alert.alert_id
            and j.alert.revision == alert.revision
            and j.alert.role == alert.role
            for j in self.jobs
        )

    def _retract(self, alert: Alert, logger: Any) -> None:
        """A retraction withdraws every live result of the alert, one RETRACTED result each."""
        names = [
            n
            for n in self.index.analyses_with_results(alert.alert_id, str(alert.role))
            if any(s.name == n for s in self._enabled())
        ]
        pending = PendingAlert(alert, 0)
        for name in names:
            spec = self.registry.get(name)
            if self.index.published(name, alert.alert_id, alert.revision, str(alert.role)):
                continue  # this retraction was already processed
            pending.messages.append(self._retraction_message(spec, alert))
        logger.info("alert retracted", withdrawn=len(pending.messages))
        self._finish_alert(pending)

    def _retraction_message(
        self, spec: AnalysisSpec[Any], alert: Alert
    ) -> tuple[str, str, bytes, list[tuple[str, bytes]]]:
        latest = self.index.latest(spec.name, alert.alert_id, str(alert.role))
        rid = result_id(spec.label, alert.alert_id, alert.revision, str(alert.role))
        created = alert.extra.get("time_created")
        at = parse_utc_ns(str(created)) if created else now_ns()
        window = {
            "start": format_utc(at),
            "end": format_utc(at),
            "start_ns": at,
            "end_ns": at,
            "livetime_fraction": None,
            "complete": True,
            "excluded": [],
        }
        inputs = {
            "alert": {
                **alert.ref.as_dict(),
                "alert_id": alert.alert_id,
                "revision": alert.revision,
                "role": str(alert.role),
                "sent_ns": alert.sent_ns,
            },
            "detectors": [],
        }
        headers = build_headers(
            rid=rid,
            sender=self.settings.instance,
            analysis_label=spec.label,
            code=code_string(spec.source_sha256),
            config_sha256=params_sha256(self._params[spec.name]),
            inputs=inputs,
            window=window,
            produced_at=format_utc(now_ns()),
        )
        headers.append(("mmstream-retraction", b"true"))
        if alert.role is Role.TEST:
            headers.append(("_test", b"true"))  # hop-client: consumers skip it by default
        supersedes = latest.result_id if latest else None
        if supersedes:
            headers.append(("mmstream-supersedes", supersedes.encode()))
        params_json = _json(self._params[spec.name].model_dump(mode="json"))
        self.recorder.retraction(
            result_id=str(rid),
            spec=spec,
            params=self._params[spec.name],
            params_json=params_json,
            alert=alert,
            supersedes=supersedes,
        )
        record: dict[str, Any] = {
            "result_id": str(rid),
            "analysis": spec.name,
            "analysis_version": spec.version,
            "status": "RETRACTED",
            "summary": f"{alert.alert_id} was retracted by {alert.source}",
            "alert": {
                "alert_id": alert.alert_id,
                "revision": alert.revision,
                "alert_type": str(alert.alert_type),
                "role": str(alert.role),
                "source": alert.source,
                "time": None,
                "time_ns": None,
                "far_hz": None,
            },
            "window": {
                k: window[k] for k in ("start", "end", "start_ns", "end_ns", "livetime_fraction")
            },
            "statistics": {},
            "events": [],
            "notes": [],
            "error": None,
            "details_json": "{}",
            "parameters_json": params_json,
            "provenance": _payload_provenance(headers),
            "supersedes": supersedes,
            "excluded": [],
        }
        return self.settings.result_topic(spec.name), alert.alert_id, encode_result(record), headers

    def _run_ready_jobs(self) -> None:
        if not self.jobs:
            return
        now = now_ns()
        waiting: list[Job] = []
        for job in self.jobs:
            marks = [self.store.watermark(d) for d in job.detectors]
            closed = all(m is not None and m >= job.window.end_ns for m in marks)
            if closed or now >= job.deadline_ns:
                self._run_job(job, complete=closed)
            else:
                waiting.append(job)
        self.jobs = waiting

    def _run_job(self, job: Job, *, complete: bool) -> None:
        alert, spec = job.alert, job.spec
        notes: list[str] = []
        if not complete:
            notes.append("ran at the deadline before every detector's data passed the window end")
        if job.update:
            notes.append(
                f"late-data update {job.update}: run again after detector events arrived "
                f"in the window once its result {job.supersedes} was out"
            )
        newer = self._newer_published(job)
        if newer is not None:
            notes.append(f"a later revision ({newer.revision}, result {newer.result_id}) was "
                         "published before this one came: it supersedes nothing")  # fmt: skip
        covered = self.store.covered_from_ns
        # One rule for every analysis: data we do not hold is unknown, not dead time.
        uncovered = covered is not None and job.window.start_ns < covered
        if covered is not None and uncovered:
            complete = False
            notes.append(f"window starts before the event store's coverage ({format_utc(covered)})")
        events = {d: self.store.window(d, job.window) for d in job.detectors}
        max_gap = int(self.settings.max_status_gap_s * NS_PER_S)
        livetime = {d: self.store.livetime(d, job.window, max_gap) for d in job.detectors}
        inp = AnalysisInput(alert, job.window, events, job.params, complete, tuple(notes), livetime)
        error: str | None = None
        try:
            with measured(self.settings.measure_memory) as cost:
                outcome = spec(inp)
            status = "COMPLETED" if complete else "INCOMPLETE"
            if outcome.insufficient_livetime and not uncovered:
                status = "INSUFFICIENT_LIVETIME"
        except Exception as exc:
            error = "".join(traceback.format_exception_only(exc)).strip()
            outcome = Outcome(summary=f"analysis failed: {error}")
            status = "FAILED"
            log.error(
                "analysis failed",
                analysis=spec.label,
                alert_id=alert.alert_id,
                error=error,
                traceback=traceback.format_exc(),
            )
        messages = self._result_messages(job, inp, outcome, status, error)
        rid = str(self._result_id(job))
        self._observe_run(job, inp, outcome, status, rid, cost)
        self.recorder.run(
            result_id=rid,
            spec=spec,
            params=job.params,
            params_json=_json(job.params.model_dump(mode="json")),
            alert=alert,
            window=job.window,
            cost=cost,
            result_status=status,
            error=error,
            livetime=livetime,
            livetime_fraction=inp.livetime_fraction(),
            events=events,
            event_topic=self.settings.detector_topic,
            parents=self.store.ancestry(eid for c in events.values() for eid in c.event_id),
            supersedes=self._supersedes(job),
            statistics=dict(outcome.statistics),
            summary=outcome.summary,
        )
        if status != "FAILED":
            self._watch(job, rid)
        if job.update:  # the alert's offset was committed with the first result
            ref = alert.ref
            self._transact(messages, ref.topic, ref.partition, alert_id=alert.alert_id)
            return
        key = (alert.ref.topic, alert.ref.partition, alert.ref.offset)
        pending = self.pending[key]
        pending.messages.extend(messages)
        pending.jobs_left -= 1
        if pending.jobs_left == 0:
            del self.pending[key]
            self._finish_alert(pending)

    def _observe_run(
        self, job: Job, inp: AnalysisInput[Any], outcome: Outcome, status: str, rid: str,
        cost: Cost,
    ) -> None:  # fmt: skip
        """Metrics and the dashboard's view of one run."""
        ANALYSIS_CPU_SECONDS.labels(job.spec.name).observe(cost.cpu_s)
        ANALYSIS_PEAK_MEMORY_BYTES.labels(job.spec.name).set(cost.peak_memory_bytes)
        for d, lt in inp.livetime.items():
            if lt is not None:
                DETECTOR_LIVETIME_FRACTION.labels(d).set(lt.fraction)
        hits = {e.event_id for e in outcome.events}
        shown = [
            (ra, dec, str(eid) in hits)
            for cols in inp.events.values()
            for eid, ra, dec in zip(cols.event_id[:5000].tolist(), cols.ra_deg[:5000].tolist(),
                                    cols.dec_deg[:5000].tolist(), strict=True)
        ][:5000]  # fmt: skip
        excluded = tuple(
            (d, format_utc(e.start_ns), format_utc(e.end_ns) + f": {e.reason}")
            for d, lt in sorted(inp.livetime.items()) if lt is not None for e in lt.excluded
        )  # fmt: skip
        self.board.result_made(
            job.alert.alert_id,
            ResultView(rid, job.spec.label, job.alert.revision, status, outcome.summary,
                       dict(outcome.statistics), inp.livetime_fraction(), excluded,
                       tuple(shown)),
        )  # fmt: skip

    def _newer_published(self, job: Job) -> Published | None:
        """The published result of a revision made after this job's (which came late)."""
        latest = self.index.latest(job.spec.name, job.alert.alert_id, str(job.alert.role))
        if job.update or latest is None or not _older(job.alert, latest):
            return None
        return latest

    def _supersedes(self, job: Job) -> str | None:
        """The result this one replaces: the last revision's, or the one a late update redoes."""
        if job.update:
            return job.supersedes
        latest = self.index.latest(job.spec.name, job.alert.alert_id, str(job.alert.role))
        if latest is None or latest.revision == job.alert.revision or _older(job.alert, latest):
            return None
        return latest.result_id

    @staticmethod
    def _result_id(job: Job) -> uuid.UUID:
        """Deterministic; a late-data update is numbered after the alert's revision."""
        revision = job.alert.revision + (f"\nlate-data update {job.update}" if job.update else "")
        return result_id(job.spec.label, job.alert.alert_id, revision, str(job.alert.role))

    def _result_messages(
        self, job: Job, inp: AnalysisInput[Any], outcome: Outcome, status: str, error: str | None
    ) -> list[tuple[str, str, bytes, list[tuple[str, bytes]]]]:
        """The Avro result, and the JSON notice where the analysis wrote one."""
        alert, spec = job.alert, job.spec
        rid = self._result_id(job)
        detector_inputs = []
        for detector, cols in sorted(inp.events.items()):
            for part in sorted(set(cols.partition.tolist())):
                sel = cols.offset[cols.partition == part]
                detector_inputs.append(
                    {
                        "topic": self.settings.detector_topic(detector),
                        "partition": part,
                        "first_offset": int(sel.min()),
                        "last_offset": int(sel.max()),
                        "count": int(sel.size),
                    }
                )
        inputs = {
            "alert": {
                **alert.ref.as_dict(),
                "alert_id": alert.alert_id,
                "revision": alert.revision,
                "role": str(alert.role),
                "sent_ns": alert.sent_ns,
            },
            "detectors": detector_inputs,
        }
        excluded = [
            {"detector": d, "start_ns": e.start_ns, "end_ns": e.end_ns, "reason": e.reason}
            for d, lt in sorted(inp.livetime.items())
            if lt is not None
            for e in lt.excluded
        ]
        window = {
            "start": format_utc(job.window.start_ns),
            "end": format_utc(job.window.end_ns),
            "start_ns": job.window.start_ns,
            "end_ns": job.window.end_ns,
            "livetime_fraction": inp.livetime_fraction(),
            "complete": inp.complete,
            "excluded": excluded,
        }
        produced_at = format_utc(now_ns())
        supersedes = self._supersedes(job)
        headers = build_headers(
            rid=rid,
            sender=self.settings.instance,
            analysis_label=spec.label,
            code=code_string(spec.source_sha256),
            config_sha256=params_sha256(job.params),
            inputs=inputs,
            window=window,
            produced_at=produced_at,
        )
        if alert.role is Role.TEST:
            headers.append(("_test", b"true"))  # hop-client: consumers skip it by default
        provenance = _payload_provenance(headers)
        record: dict[str, Any] = {
            "result_id": str(rid),
            "analysis": spec.name,
            "analysis_version": spec.version,
            "status": status,
            "summary": outcome.summary,
            "alert": {
                "alert_id": alert.alert_id,
                "revision": alert.revision,
                "alert_type": str(alert.alert_type),
                "role": str(alert.role),
                "source": alert.source,
                "time": format_utc(alert.time_ns) if alert.time_ns is not None else None,
                "time_ns": alert.time_ns,
                "far_hz": alert.far_hz,
            },
            "window": {
                k: window[k] for k in ("start", "end", "start_ns", "end_ns", "livetime_fraction")
            },
            "statistics": dict(outcome.statistics),
            "events": [
                {
                    "event_id": e.event_id,
                    "detector": e.detector,
                    "time_ns": e.time_ns,
                    "ra_deg": e.ra_deg,
                    "dec_deg": e.dec_deg,
                    "sigma_deg": e.sigma_deg,
                    "values": dict(e.values),
                }
                for e in outcome.events
            ],
            "notes": list(inp.notes),
            "error": error,
            "details_json": _json(outcome.details),
            "parameters_json": _json(job.params.model_dump(mode="json")),
            "provenance": provenance,
            "supersedes": supersedes,
            "excluded": excluded,
        }
        topic = self.settings.result_topic(spec.name)
        log.info(
            "result ready",
            analysis=spec.label,
            alert_id=alert.alert_id,
            revision=alert.revision,
            result_id=str(rid),
            status=status,
            summary=outcome.summary,
        )
        if supersedes:
            headers.append(("mmstream-supersedes", supersedes.encode()))
            record["provenance"] = {**provenance, "mmstream-supersedes": supersedes}
        if job.update:
            headers.append(("mmstream-late-update", str(job.update).encode()))
            record["provenance"]["mmstream-late-update"] = str(job.update)
        if (newer := self._newer_published(job)) is not None:
            # An older revision that came late: born superseded by the newer one, so that a
            # reader (and a later retraction of the newer one) leaves nothing of it live.
            headers.append(("mmstream-superseded-by", newer.result_id.encode()))
            record["provenance"]["mmstream-superseded-by"] = newer.result_id
        messages = [(topic, alert.alert_id, encode_result(record), headers)]
        if outcome.notice is not None:
            notice = {**outcome.notice, "alert_datetime": produced_at}
            own = {"_format": b"json", "_id": notice_id(rid).bytes}  # a message, an id
            notice_headers = [(k, own.get(k, v)) for k, v in headers]
            notice_headers.append(("mmstream-result-id", str(rid).encode()))
            body = _json(notice).encode()
            messages.append(
                (self.settings.notice_topic(spec.name), alert.alert_id, body, notice_headers)
            )
        return messages

    # -------------------------------------------------------------- publishing
    def _finish_alert(self, pending: PendingAlert) -> None:
        ref = pending.alert.ref
        self._transact(
            pending.messages,
            ref.topic,
            ref.partition,
            offset=ref.offset,
            alert_id=pending.alert.alert_id,
        )

    def _deadletter_alert(
        self, msg: Message, exc: Exception, stage: str = "decode", archive: str | None = None
    ) -> None:
        topic, partition, offset = origin(msg)
        self.recorder.input(
            topic, partition, offset, f"deadletter:{stage}", reason=str(exc), archive=archive
        )
        log.error(
            f"alert message failed at {stage}; sent to the dead-letter topic",
            topic=topic,
            partition=partition,
            offset=offset,
            reason=str(exc),
        )
        dl = deadletter(
            msg.value(),
            headers_of(msg),
            topic=topic,
            partition=partition,
            offset=offset,
            reason=str(exc),
            exception=exc,
            sender=self.settings.instance,
            limits=self.limits,
            stage=stage,
            archive=archive,
        )
        self._transact(
            [(self.settings.deadletter_topic, "", cast(bytes, dl.value), dl.headers)],
            topic,
            partition,
            keys=[msg.key()],
            offset=offset,
        )
        self.counters["deadletters"] += 1
        DEADLETTERS.labels(stage, type(exc).__name__).inc()

    def _deadletter_detector(self, msg: Message, exc: Exception, archive: str | None) -> None:
        topic, partition, offset = origin(msg)
        if not isinstance(exc, DecodeError):
            log.error("detector decoder raised", exc_info=exc, topic=topic, offset=offset)
        reason = str(exc) if isinstance(exc, DecodeError) else f"{type(exc).__name__}: {exc}"
        log.error(
            "detector message refused; sent to the dead-letter topic",
            topic=topic,
            partition=partition,
            offset=offset,
            reason=reason[:500],
        )
        dl = deadletter(
            msg.value(),
            headers_of(msg),
            topic=topic,
            partition=partition,
            offset=offset,
            reason=reason,
            exception=exc,
            sender=self.settings.instance,
            limits=self.limits,
            archive=archive,
        )
        self._produce_deadletter(dl.value, msg.key(), dl.headers)
        self.counters["deadletters"] += 1
        DEADLETTERS.labels("decode", type(exc).__name__).inc()

    def _produce_deadletter(
        self, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        """A detector message's dead letter, outside any transaction (it moves no offset).
        Refused for its size, it goes again without its value; other failures are logged."""

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                return
            too_large = err.code() in (KafkaError.MSG_SIZE_TOO_LARGE,
                                       KafkaError.RECORD_LIST_TOO_LARGE)  # fmt: skip
            if too_large and value:
                log.warning("dead letter too large for its topic; sent without its value",
                            bytes=len(value))  # fmt: skip
                # produced on the loop's next turn: never from inside a delivery callback
                self._refused_deadletters.append((key, without_value(value, headers)))
            else:
                log.error("dead letter not delivered", error=str(err))

        while True:
            try:
                self.plain_producer.produce(
                    self._route(self.settings.deadletter_topic),
                    value=value,
                    key=key,
                    headers=as_produce_headers(headers),
                    on_delivery=delivered,
                )
                break
            except BufferError:  # the local queue is full: let it drain
                self.plain_producer.poll(0.1)
            except KafkaException as exc:  # larger than the client's message.max.bytes
                if not value or exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise
                headers = without_value(value, headers)
                value = None
        self.plain_producer.poll(0)

    def _transact(
        self,
        messages: list[tuple[str, str, bytes, list[tuple[str, bytes]]]],
        topic: str,
        partition: int,
        keys: list[Any] | None = None,
        offset: int | None = None,
        alert_id: str | None = None,
    ) -> None:
        """Queue ``messages`` to be published together with moving the alert's offset."""
        self.outbox.append(_Outgoing(messages, topic, partition, offset, keys, alert_id))
        self._flush_outbox()

    def _flush_outbox(self) -> None:
        """Publish queued results in order, one transaction each, without blocking the loop.

        A failed transaction is aborted and retried on a later turn of the loop, after the
        consumers have been polled (a consumer that must rejoin its group after a broker
        restart can only do so while polled). An alert's offset counts as finished only
        inside the transaction that publishes its results, so no later alert's offset is
        ever committed ahead of an earlier alert's unpublished results.
        """
        while self.outbox and time.monotonic() >= self._outbox_retry_at:
            item = self.outbox[0]
            if item.offset is not None:
                self.offsets.finish(item.topic, item.partition, item.offset)
            if item.offset is not None:
                self._flush_archive(durable=True)  # on disk before the offset commits
            try:
                if self._abort_pending:
                    # An abort that timed out must be resumed before anything else:
                    # any other transactional call would fail with _CONFLICT.
                    with self._guarded("abort_transaction"):
                        self.producer.abort_transaction(5)
                    self._abort_pending = False
                t0 = time.perf_counter()
                self._transact_once(item)
                took = time.perf_counter() - t0
            except KafkaException as exc:
                err = exc.args[0]
                self._outbox_error = str(err)[:300]
                if self._outbox_stuck_since is None:
                    self._outbox_stuck_since = time.monotonic()
                if item.offset is not None:
                    self.offsets.begin(item.topic, item.partition, item.offset)
                if err.fatal():
                    self._replace_producer(err)
                    self._outbox_retry_at = time.monotonic() + 1.0
                    return
                if item.too_large(err):
                    self._shrink_deadletters(item)
                self._transaction_failed(err)
                return
            self.outbox.pop(0)
            self._outbox_failures = 0
            self._outbox_stuck_since = None
            self._fatal_errors = 0
            TRANSACTION_SECONDS.observe(took)
            self._published(item, took)

    def _shrink_deadletters(self, item: _Outgoing) -> None:
        """A dead letter the broker refuses for its size goes again without its value (the
        dead-letter topic's limit is lower than the input's): it must never wedge the queue."""
        for i, (topic, key, value, headers) in enumerate(item.messages):
            if topic == self.settings.deadletter_topic and value:
                origin_ = dict(headers).get("mmstream-dlq-origin")
                log.warning("dead letter too large for its topic; sent without its value",
                            bytes=len(value), origin=origin_)  # fmt: skip
                item.messages[i] = (topic, key, cast(bytes, None), without_value(value, headers))

    def _transaction_failed(self, err: KafkaError) -> None:
        """Abort the open transaction (or remember to) and back off before the next try."""
        TRANSACTION_ABORTS.inc()
        self.counters["transaction_aborts"] += 1
        log.warning(
            "transaction failed; will retry",
            error=str(err),
            abortable=err.txn_requires_abort(),
            queued=len(self.outbox),
        )
        self._abort_pending = True
        try:
            with self._guarded("abort_transaction"):
                self.producer.abort_transaction(5)
            self._abort_pending = False
        except KafkaException as exc:
            if exc.args[0].fatal():
                self._replace_producer(exc.args[0])
            else:
                log.warning("abort did not finish; will resume it", error=str(exc.args[0]))
        self._outbox_retry_at = time.monotonic() + min(5.0, 0.5 * 2**self._outbox_failures)
        self._outbox_failures += 1

    def _published(self, item: _Outgoing, took_s: float) -> None:
        """Account for messages whose transaction has committed."""
        self._record_outputs(item)
        arrived = (
            self._arrivals.pop((item.topic, item.partition, item.offset), None)
            if item.offset is not None
            else None
        )
        for out_topic, _, _, headers in item.messages:
            self.counters[f"published:{out_topic}"] += 1
            MESSAGES_PRODUCED.labels(out_topic).inc()
            if out_topic.startswith(self.settings.result_topic_prefix):
                h = dict(headers)
                self.index.record(h)
                analysis = h.get("mmstream-analysis", b"").decode()
                RESULTS_PUBLISHED.labels(analysis, "published").inc()
                if arrived is not None:
                    ALERT_TO_RESULT_SECONDS.labels(analysis.split("@")[0]).observe(
                        time.monotonic() - arrived
                    )
                if item.alert_id is not None and "_id" in h:
                    self.board.result_published(item.alert_id, str(uuid.UUID(bytes=h["_id"])))
        if item.messages and item.alert_id is not None:
            log.info(
                "results published",
                alert_id=item.alert_id,
                count=len(item.messages),
                topic=item.topic,
                partition=item.partition,
                offset=item.offset,
                transaction_ms=round(took_s * 1000, 2),
            )

    def _record_outputs(self, item: _Outgoing) -> None:
        outputs: dict[str, list[tuple[str, str, int, int]]] = {}
        supersedes: dict[str, str | None] = {}
        for topic, partition, offset, headers in item.delivered:
            h = dict(headers)
            if "mmstream-analysis" not in h or "_id" not in h:
                continue  # a dead letter
            kind = "notice" if h.get("_format") == b"json" else "result"
            link = h.get("mmstream-result-id")
            rid = link.decode() if kind == "notice" and link else str(uuid.UUID(bytes=h["_id"]))
            outputs.setdefault(rid, []).append((kind, topic, partition, offset))
            sup = h.get("mmstream-supersedes")
            supersedes[rid] = sup.decode() if sup else None
        for rid, outs in outputs.items():
            self.recorder.published(rid, outs, supersedes[rid])

    def _guarded(self, call: str) -> contextlib.AbstractContextManager[None]:
        return self.watch.guard(call) if self.watch else contextlib.nullcontext()

    def _transact_once(self, item: _Outgoing) -> None:
        with self._guarded("publish transaction"):
            self._transact_unguarded(item)

    def _transact_unguarded(self, item: _Outgoing) -> None:
        position = self.offsets.committable(item.topic, item.partition)
        self.producer.begin_transaction()
        item.errors = self._produce_all(item)  # they surface in commit_transaction too
        if position is not None:
            offsets = [TopicPartition(item.topic, item.partition, position)]
            group = self.alert_consumer.consumer_group_metadata()
            self.producer.send_offsets_to_transaction(offsets, group, 10)
        _retrying(partial(self.producer.commit_transaction, 10), attempts=3)
        self.producer.poll(0)  # serve the delivery reports: the ledger wants the offsets

    def _route(self, topic: str) -> str:
        """The topic a message goes to (a replay sends everything to its sandbox)."""
        return topic

    def _produce_all(self, item: _Outgoing) -> list[KafkaError]:
        """Produce the item's messages; ``item.delivered`` learns where each one landed (for
        the ledger), the returned list fills with delivery errors as reports are served."""
        item.delivered = []
        errors: list[KafkaError] = []
        for i, (out_topic, key, value, headers) in enumerate(item.messages):

            def delivered(err: Any, msg: Message, h: list[tuple[str, bytes]] = headers) -> None:
                if err is not None:
                    errors.append(err)
                else:
                    item.delivered.append((msg.topic() or "", msg.partition() or 0,
                                           msg.offset() or 0, h))  # fmt: skip

            self.producer.produce(
                self._route(out_topic),
                value=value,
                key=item.keys[i] if item.keys else key.encode(),
                headers=as_produce_headers(headers),
                on_delivery=delivered,
            )
        return errors


@dataclass
class _Outgoing:
    """Results (or a dead letter) of one alert, waiting to be published with its offset."""

    messages: list[tuple[str, str, bytes, list[tuple[str, bytes]]]]
    topic: str
    partition: int
    offset: int | None
    keys: list[Any] | None = None
    alert_id: str | None = None
    delivered: list[tuple[str, int, int, list[tuple[str, bytes]]]] = field(default_factory=list)
    errors: list[KafkaError] = field(default_factory=list)

    def too_large(self, err: KafkaError) -> bool:
        """Whether the broker (or the client) refused a message of this item for its size."""
        codes = {err.code(), *(e.code() for e in self.errors)}
        return bool(codes & {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


def _older(alert: Alert, published: Published) -> bool:
    """Whether the sender made this alert's notice before the published one's (arrival order
    does not count: an UPDATE can overtake its PRELIMINARY)."""
    return (
        alert.sent_ns is not None
        and published.sent_ns is not None
        and (alert.sent_ns < published.sent_ns)
    )


def _message_time_ns(msg: Message) -> int:
    """When the message was written (its Kafka timestamp), or now where it has none."""
    kind, ms = msg.timestamp()
    return ms * 1_000_000 if kind != 0 and ms >= 0 else now_ns()


def _payload_provenance(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    """The provenance headers as the payload repeats them, without the publication time:
    the same inputs and code must give byte-identical payloads (the time is in the header)."""
    return {k: v.decode() for k, v in headers if k.startswith("mmstream-") and k != PRODUCED_AT}


def _leader_retry(call: Callable[[], Any], what: str, attempts: int = 20) -> Any:
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


def _retrying(call: Any, attempts: int = 10) -> None:
    """Run ``call``, repeating it while it fails with a retriable Kafka error."""
    for attempt in range(attempts):
        try:
            call()
            return
        except KafkaException as exc:
            log.warning(
                "Kafka call failed",
                call=getattr(call, "func", call).__name__,
                error=str(exc.args[0]),
                retriable=exc.args[0].retriable(),
                attempt=attempt,
            )
            if not exc.args[0].retriable() or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
