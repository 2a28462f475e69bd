"""The detector feed: events and heartbeats read by time, into the event store.

Detector topics are read by assignment from ``now - lookback`` (the store is rebuilt from
Kafka on every start). A heartbeat advances its detector's watermark only once the events
partitions have been read up to where they ended when it was seen (watermarks.py). Events
inside a published window are late data (the late watch decides); a repeat of an event
already held is dropped. A message that cannot be read is a dead letter, and the feed
reads the next one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from mmstream.errors import DecodeError
from mmstream.formats.detector import DecodedEvents, DetectorCodec, decode_status
from mmstream.formats.limits import Limits
from mmstream.formats.validate import (
    all_events_pass,
    check_size,
    validate_context,
    validate_events,
    validate_status,
)
from mmstream.model import NS_PER_S, DetectorEvent
from mmstream.ops.logging import get_logger
from mmstream.stream.archive import Keeper
from mmstream.stream.clients import Clients
from mmstream.stream.conditions import Conditions
from mmstream.stream.events import Events
from mmstream.stream.gaps import Gap
from mmstream.stream.latewatch import ClosedWindow, LateWatch
from mmstream.stream.messages import message_time_ns, origin
from mmstream.stream.refusals import Refusals
from mmstream.stream.settings import Topics
from mmstream.stream.store import EventStore
from mmstream.stream.watermarks import Watermarks
from mmstream.times import format_utc, now_ns

log = get_logger("mmstream.feed")

# A detector's records are stored once this many have gathered, not at the batch's end: a
# consumed batch of 100-event messages held 10^5 decoded dicts at once, out of the CPU's
# caches and through the garbage collector's full passes (benchmarks/ingest.py: batched
# messages' events per CPU-second rose by a quarter).
RUN_ROWS = 2048

# (index in the batch, message, why refused, where archived)
_Refused = tuple[int, Message, Exception, str | None]


@dataclass
class _Run:
    """One detector's events of a batch, in message order, with each message's place."""

    detector: str
    names: tuple[str, ...]  # the detector's own fields the records hold
    records: list[dict[str, Any]] = field(default_factory=list)
    places: list[tuple[int, Message, str | None]] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # events per message
    written: list[int] = field(default_factory=list)  # each message's Kafka timestamp

    def add(
        self, records: list[dict[str, Any]], place: tuple[int, Message, str | None],
        partition: int, offset: int, written_ns: int,
    ) -> None:  # fmt: skip
        self.records += records
        self.places.append(place)
        self.partitions.append(partition)
        self.offsets.append(offset)
        self.sizes.append(len(records))
        self.written.append(written_ns)


class DetectorFeed:
    def __init__(
        self, topics: Topics, limits: Limits, store: EventStore, late: LateWatch,
        refusals: Refusals, keeper: Keeper, events: Events, conditions: Conditions | None = None,
        codec: DetectorCodec | None = None,
    ) -> None:  # fmt: skip
        self.topics, self.limits, self.store, self.late = topics, limits, store, late
        self.conditions = conditions if conditions is not None else Conditions()
        self.codec = codec if codec is not None else DetectorCodec({})
        self.refusals, self.keeper, self.events = refusals, keeper, events
        self.watermarks = Watermarks()
        self.detector_of = topics.detector_of()
        self.partitions: dict[str, list[int]] = {}  # events topic -> partitions
        self.heartbeats: dict[str, int] = {}  # latest heartbeat per detector, this batch
        self._messages: dict[str, int] = defaultdict(int)  # counted per message,
        self._events: dict[str, int] = defaultdict(int)  # reported per batch

    def assign(self, consumer: Consumer, clients: Clients, lookback_s: float) -> None:
        """Start every detector partition at ``now - lookback`` (the end, if nothing newer)."""
        since_ns = now_ns() - int(lookback_s * NS_PER_S)
        self.store.covered_from_ns = since_ns
        wanted: list[TopicPartition] = []
        context: list[TopicPartition] = []  # from their beginning: a condition set long ago
        for d in self.topics.detectors:
            for p in clients.partitions(self.topics.context(d)) or []:
                topic = self.topics.context(d)
                context.append(TopicPartition(topic, p, clients.start_offset(topic, p)))
                # a heartbeat also waits for the conditions sent before it
                self.watermarks.start_at(topic, p, context[-1].offset)
                self.partitions.setdefault(topic, []).append(p)
            for topic in (self.topics.events(d), self.topics.status(d)):
                parts = clients.partitions(topic)
                if parts is None:
                    log.warning("detector topic missing", topic=topic)
                    continue
                wanted += [TopicPartition(topic, p, since_ns // 1_000_000) for p in parts]
        starts = clients.offsets_for_times(wanted)
        for tp in starts:
            if tp.offset < 0:  # nothing newer than the lookback: the end, as a number (a
                # logical "end" resolves only when fetching starts, after messages may come)
                tp.offset = clients.end_offset(tp.topic, tp.partition)
            if tp.topic.endswith(".events"):
                self.watermarks.start_at(tp.topic, tp.partition, tp.offset)
                self.partitions.setdefault(tp.topic, []).append(tp.partition)
        consumer.assign([*starts, *context])
        log.info("detector partitions assigned", count=len(starts) + len(context),
                 lookback_s=lookback_s)  # fmt: skip

    def handle_batch(self, msgs: Sequence[Message]) -> None:
        """Store a consumed batch of detector event, status and context messages (live, or
        replayed). Each message is decoded on its own; a detector's events of the batch
        are then validated and stored as one set of columns once ``RUN_ROWS`` or more have
        gathered (a message is never split), or at a schema change, or at the end (the
        per-message work of the ingest path is the decode), and checked message by message
        only when that fails, so that exactly the messages at fault are refused. Refusals
        go out at the batch's end, in message order."""
        refused: list[_Refused] = []
        runs: dict[str, _Run] = {}
        ordered: list[_Run] = []
        files = self.keeper.keep_batch(msgs)
        # Read, whatever comes of it: a heartbeat waits for the events (and conditions)
        # partitions to be read up to their end; a refused last message must not hold it.
        # Each partition's last offset of the batch, told once (the next batch's heartbeats
        # are checked against it).
        read: dict[tuple[str, int], int] = {}
        for i, msg in enumerate(msgs):
            stored = files[i]
            topic, partition, offset = origin(msg)
            events_topic = topic.endswith(".events")
            if events_topic or topic.endswith(".context"):
                read[(topic, partition)] = offset
            if self.refusals.seen(topic, partition, offset):
                continue  # dead-lettered before a restart: once is enough
            done: _Run | None = None  # a run no later message joins: stored now
            try:
                detector, value, written_ns = self._opened(msg, topic)
                if events_topic:
                    self._messages[topic] += 1
                    records, names = self.codec.decode_records(value, detector)
                    run = runs.get(detector)
                    if run is None or run.names != names:  # a schema change: a new run
                        done = run  # before the new run's events, in message order
                        run = runs[detector] = _Run(detector, names)
                        ordered.append(run)
                    run.add(records, (i, msg, stored), partition, offset, written_ns)
                    if done is None and len(run.records) >= RUN_ROWS:
                        done = runs.pop(detector)
                else:
                    self._status_or_context(msg, topic, detector, value, written_ns)
            except Exception as exc:  # DecodeError, or a decoder's bug: never a crash loop
                refused.append((i, msg, exc, stored))
            if done is not None:  # after the except: its failure is no fault of this message
                ordered = [r for r in ordered if r is not done]
                self._store_run(done, refused)
        for (topic, partition), offset in read.items():
            self.watermarks.read(topic, partition, offset)
        for run in ordered:
            self._store_run(run, refused)
        refused.sort(key=itemgetter(0))
        for _, msg, why, stored in refused:  # sent after the except blocks (refusals.py)
            self.refusals.detector(msg, why, archive=stored)

    def _store_run(self, run: _Run, refused: list[_Refused]) -> None:
        """A run's events at once if all pass; else message by message, for the reasons."""
        events = DecodedEvents.of_records(run.records, run.names)
        written = np.repeat(np.asarray(run.written, dtype=np.int64), run.sizes)
        limit = self.limits.max_sources
        try:
            passed = all_events_pass(events, run.detector, written, self.limits)
            passed = passed and self.store.gaps.admits(run.detector, events.source, limit)
        except Exception:  # a value no check foresaw: the checks below say which message
            passed = False
        if passed:
            self._store(events, run.partitions, run.offsets, run.sizes)
            return
        start = 0
        for place, size, partition, offset, written_ns in zip(
            run.places, run.sizes, run.partitions, run.offsets, run.written, strict=True
        ):
            one = DecodedEvents.of_records(run.records[start : start + size], run.names)
            start += size
            try:
                validate_events(one, run.detector, written_ns, self.limits)
                if not self.store.gaps.admits(run.detector, one.source, limit):
                    raise DecodeError(f"event sources {sorted(set(one.source))[:3]!r:.200} "
                                      f"would take {run.detector!r} past {limit} sources "
                                      "(limit max_sources)")  # fmt: skip
            except Exception as exc:  # DecodeError, or a check's bug: never a crash loop
                i, msg, stored = place
                refused.append((i, msg, exc, stored))
                continue
            self._store(one, (partition,), (offset,), (size,))

    def _store(
        self, events: DecodedEvents, partitions: Sequence[int], offsets: Sequence[int],
        sizes: Sequence[int],
    ) -> None:  # fmt: skip
        """Validated events of one detector into the store; late ones flagged."""
        if not events.size:
            return
        self._events[events.detector[0]] += events.size
        if not self.late.may_hit(min(events.time_ns)):
            for gap in self.store.add_messages(events, partitions, offsets, sizes):
                self._gap(gap)
            return
        places = zip(np.repeat(partitions, sizes).tolist(), np.repeat(offsets, sizes).tolist(),
                     strict=True)  # fmt: skip
        for event, (partition, offset) in zip(events.events(), places, strict=True):
            hits = self.late.hits(event)  # some may be late: one by one (rare)
            if hits and self.store.holds(event.detector, event.event_id, event.time_ns):
                self.events.duplicate_events(event.detector, 1)  # a repeat is not late data
                continue
            if (found := self.store.add(event, partition, offset)) is not None:
                self._gap(found)
            if hits:
                self._late(event, hits)

    def _gap(self, gap: Gap) -> None:
        self.events.data_gap(gap)
        log.warning("detector data gap: events missing; excluded from livetime until they "
                    "arrive", detector=gap.detector, source=gap.source, first_seq=gap.first,
                    last_seq=gap.last, start=format_utc(gap.start_ns),
                    end=format_utc(gap.end_ns))  # fmt: skip

    def _opened(self, msg: Message, topic: str) -> tuple[str, bytes, int]:
        """(detector, value, when written) of a message on a detector topic, size-checked."""
        detector = self.detector_of.get(topic)
        if detector is None:
            raise DecodeError(f"{topic} is not a configured detector's topic")
        value = msg.value()
        if value is None:
            raise DecodeError("detector message with no value (null)")
        check_size(value, self.limits)
        return detector, value, message_time_ns(msg)

    def _status_or_context(
        self, msg: Message, topic: str, detector: str, value: bytes, written_ns: int
    ) -> None:
        """Decode and validate a status or context message, into its store."""
        if topic.endswith(".context"):
            change = self.codec.decode_context(value)
            validate_context(change, detector, written_ns, self.limits)
            _, partition, offset = origin(msg)
            if not self.conditions.admits(change):
                raise DecodeError(f"context key {change.key[:100]!r} would be {detector!r}'s "
                                  f"key number {self.conditions.max_keys + 1} (limit "
                                  "max_condition_keys)")  # fmt: skip
            new = self.conditions.add(change, partition, offset)
            span = self.conditions.effect(change) if new else None
            if span is not None and (hits := self.late.hits_span(detector, *span)):
                self.events.late_event(detector)
                self.late.late(hits)
                log.info("late condition change in a closed window", detector=detector,
                         key=change.key, time=format_utc(change.time_ns),
                         results=[cw.result_id for cw in hits])  # fmt: skip
            return
        status = validate_status(decode_status(value), detector, written_ns, self.limits)
        self.store.add_status(status)
        self.events.detector_status(status)
        latest = self.heartbeats.get(status.detector, status.time_ns)
        self.heartbeats[status.detector] = max(latest, status.time_ns)

    def _late(self, event: DetectorEvent, hits: list[ClosedWindow]) -> None:
        """An event inside a window whose result is out: count it, mark it for a re-run."""
        self.events.late_event(event.detector)
        self.late.late(hits)
        log.info("late detector event in a closed window", detector=event.detector,
                 event_id=event.event_id, time=format_utc(event.time_ns),
                 results=[cw.result_id for cw in hits])  # fmt: skip

    def end_batch(self, clients: Clients | None) -> None:
        """Once per batch: counts, duplicates, heartbeats into watermarks (``clients`` None:
        replay, where every message is read before any alert)."""
        for topic, n in self._messages.items():
            self.events.message_consumed(topic, n)
        for detector, n in self._events.items():
            self.events.detector_events(detector, n)
        self._messages.clear()
        self._events.clear()
        for det, repeats in self.store.take_duplicates().items():
            self.events.duplicate_events(det, repeats)
        for det, change in self.store.gaps.take_changes().items():
            self.events.data_gap_totals(det, change.open_events, change.healed_events)
        if clients is None:
            return
        for detector, time_ns in self.heartbeats.items():
            self._heartbeat(clients, detector, time_ns)
        self.heartbeats.clear()
        for detector, time_ns in self.watermarks.confirmed():
            self.store.advance_watermark(detector, time_ns)

    def _heartbeat(self, clients: Clients, detector: str, time_ns: int) -> None:
        """Count the heartbeat once the events sent before it have been read."""
        topics = (self.topics.events(detector), self.topics.context(detector))
        try:
            ends = {(topic, p): clients.end_offset(topic, p)
                    for topic in topics for p in self.partitions.get(topic, [])}  # fmt: skip
        except KafkaException as exc:  # the watermark only waits for the next heartbeat
            log.warning("heartbeat not counted: end offsets unknown", detector=detector,
                        error=str(exc))  # fmt: skip
            return
        self.watermarks.heartbeat(detector, time_ns, ends)

    def all_read(self) -> None:
        """Replay: every message is in; each watermark moves to its detector's last data."""
        self.end_batch(None)
        for detector, time_ns in self.heartbeats.items():
            self.store.advance_watermark(detector, time_ns)
        for detector in self.topics.detectors:
            if (newest := self.store.newest_ns(detector)) is not None:
                self.store.advance_watermark(detector, newest)
