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

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from mmstream.errors import DecodeError
from mmstream.formats.detector import DecodedEvents, DetectorCodec, decode_status
from mmstream.formats.limits import Limits
from mmstream.formats.validate import check_size, validate_context, validate_events, validate_status
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

    def handle(self, msg: Message) -> None:
        """Store one detector event or status message (live, or replayed)."""
        stored = self.keeper.keep(msg)
        topic, partition, offset = origin(msg)
        if topic.endswith((".events", ".context")):
            # Read, whatever comes of it: a heartbeat waits for the events (and conditions)
            # partitions to be read up to their end; a refused last message must not hold it.
            self.watermarks.read(topic, partition, offset)
        if self.refusals.seen(topic, partition, offset):
            return  # dead-lettered before a restart: once is enough
        failed: Exception | None = None
        try:
            events = self._read(msg, topic)
        except Exception as exc:  # DecodeError, or a decoder's bug: never a crash loop
            failed = exc
        if failed is not None:  # sent after the except block (refusals.py)
            self.refusals.detector(msg, failed, archive=stored)
            return
        if events is None or not events.size:
            return
        self._events[events.detector[0]] += events.size
        if not self.late.may_hit(min(events.time_ns)):
            for gap in self.store.add_events(events, partition, offset):
                self._gap(gap)
            return
        for event in events.events():  # some may be late: one by one (rare)
            hits = self.late.hits(event)
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

    def _read(self, msg: Message, topic: str) -> DecodedEvents | None:
        """Decode and validate; a status or context message goes into its store here."""
        detector = self.detector_of.get(topic)
        if detector is None:
            raise DecodeError(f"{topic} is not a configured detector's topic")
        value = msg.value()
        if value is None:
            raise DecodeError("detector message with no value (null)")
        check_size(value, self.limits)
        written_ns = message_time_ns(msg)
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
            return None
        if topic.endswith(".status"):
            status = validate_status(decode_status(value), detector, written_ns, self.limits)
            self.store.add_status(status)
            self.events.detector_status(status)
            latest = self.heartbeats.get(status.detector, status.time_ns)
            self.heartbeats[status.detector] = max(latest, status.time_ns)
            return None
        self._messages[topic] += 1
        events = self.codec.decode_columns(value, detector)
        validate_events(events, detector, written_ns, self.limits)
        for source in set(events.source):  # once per writer, not per event
            if not self.store.gaps.admits(detector, source, self.limits.max_sources):
                raise DecodeError(f"event source {source[:100]!r} would be {detector!r}'s "
                                  f"source number {self.limits.max_sources + 1} "
                                  "(limit max_sources)")  # fmt: skip
        return events

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
