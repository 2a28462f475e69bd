"""Recent alerts, for analyses that read other alerts (alert × alert, as RAVEN does).

Each alert is held at its latest revision, with when its first revision reached Kafka (the
message timestamp, so a restart or a replay orders them the same) and whether it has been
retracted. Like the detector events, the book is rebuilt from Kafka at every start: the
alert topics are read from ``now - lookback`` to where they end (:func:`rebuild`).

Whichever of two alerts reaches us second owns their coincidence: its analysis reads the
first. A later revision or retraction of the first re-runs the owner's analysis
(:func:`partner_updates`), and that update supersedes the owner's result. The book follows
every alert partition, not only this member's (:func:`follow`), so that members of one group
pair alerts across their partitions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from mmstream.analyses.inputs import OtherAlert
from mmstream.analyses.registry import AnalysisSpec
from mmstream.analyses.windows import alert_kind
from mmstream.model import NS_PER_S, Alert, AlertType, Window
from mmstream.ops.logging import get_logger
from mmstream.stream.clients import Clients
from mmstream.stream.messages import message_time_ns
from mmstream.stream.results_index import Published
from mmstream.stream.runs import Job
from mmstream.times import now_ns

log = get_logger("mmstream.alertbook")
BookKey = tuple[str, str]  # alert id, role


@dataclass
class Held:
    alert: Alert  # the latest revision that is not a retraction (or the retraction, alone)
    first_seen_ns: int
    retracted: bool = False
    revisions: list[str] = field(default_factory=list)  # as they reached us

    def number(self, revision: str) -> int:
        """1 for the first notice about this alert that reached us, 2 for the next..."""
        return self.revisions.index(revision) + 1 if revision in self.revisions else 0

    def other(self) -> OtherAlert:
        return OtherAlert(self.alert, self.first_seen_ns, self.retracted)


def _before(a: Held, b: Held) -> bool:
    """Whether ``a`` reached us before ``b`` (ties: by alert id, so always one way)."""
    return (a.first_seen_ns, a.alert.alert_id) < (b.first_seen_ns, b.alert.alert_id)


class AlertBook:
    def __init__(self, retention_ns: int) -> None:
        self.retention_ns = retention_ns
        self.held: dict[BookKey, Held] = {}

    def add(self, alert: Alert, seen_ns: int) -> Held | None:
        """Hold this notice; the entry when it changed what is held (a newer revision, or a
        retraction), else None (a repeat, or an older revision that came late)."""
        key = (alert.alert_id, str(alert.role))
        held = self.held.get(key)
        if held is None:
            if alert.time_ns is None:
                return None  # a retraction of an alert we never saw: nothing to pair with
            self.held[key] = Held(alert, seen_ns, alert.alert_type is AlertType.RETRACTION,
                                  [alert.revision])  # fmt: skip
            return self.held[key]
        held.first_seen_ns = min(held.first_seen_ns, seen_ns)
        if alert.revision not in held.revisions:
            held.revisions.append(alert.revision)
        if alert.alert_type is AlertType.RETRACTION:
            if held.retracted:
                return None
            held.retracted = True
            return held
        if alert.revision == held.alert.revision or _older(alert, held.alert):
            return None
        held.alert = alert
        return held

    def entry(self, alert: Alert) -> Held | None:
        return self.held.get((alert.alert_id, str(alert.role)))

    def partners(
        self, alert: Alert, window: Window, kinds: frozenset[str]
    ) -> tuple[OtherAlert, ...]:
        """Alerts of these kinds, of the same role, in the window, that reached us before
        this one (the owner)."""
        own = self.entry(alert)
        if not kinds or own is None:
            return ()
        found = [
            h for h in self.held.values()
            if h.alert.alert_id != alert.alert_id and h.alert.role == alert.role
            and h.alert.time_ns is not None
            and window.start_ns <= h.alert.time_ns <= window.end_ns
            and alert_kind(h.alert) in kinds and _before(h, own)
        ]  # fmt: skip
        found.sort(key=lambda h: (h.alert.time_ns or 0, h.alert.alert_id))
        return tuple(h.other() for h in found)

    def owners(self, partner: Held) -> list[Held]:
        """Alerts that reached us after this one: those whose analyses may have read it."""
        return [h for h in self.held.values()
                if h.alert.alert_id != partner.alert.alert_id
                and h.alert.role == partner.alert.role and not h.retracted
                and _before(partner, h)]  # fmt: skip

    def evict(self, now_ns: int) -> None:
        cutoff = now_ns - self.retention_ns
        self.held = {k: h for k, h in self.held.items() if (h.alert.time_ns or 0) >= cutoff}


def _older(a: Alert, b: Alert) -> bool:
    """The sender made ``a`` before ``b`` (arrival order does not count)."""
    return a.sent_ns is not None and b.sent_ns is not None and a.sent_ns < b.sent_ns


def partner_updates(
    book: AlertBook,
    partner: Held,
    specs: Iterable[AnalysisSpec[Any]],
    params: dict[str, Any],
    window_of: Callable[[AnalysisSpec[Any], Alert], tuple[float, float]],
    detectors_of: Callable[[AnalysisSpec[Any]], tuple[str, ...]],
    state_of: Callable[[AnalysisSpec[Any], Alert], str | Published | None],
) -> list[Job]:
    """Re-runs of the owners' analyses whose result does not reflect ``partner`` as the book
    holds it now (its latest revision, retracted or not). Decided against what each owner's
    newest result says it read, not against what this process saw before, so a notice read
    again after a crash, or first read by another member of the group, still makes its
    update; each is named after the partner's state, so the same state makes the same id."""
    kind = alert_kind(partner.alert)
    time_ns = partner.alert.time_ns
    jobs: list[Job] = []
    if time_ns is None:
        return jobs
    mine = (partner.alert.alert_id, partner.alert.revision, partner.retracted)
    for owner in book.owners(partner):
        a = owner.alert
        for spec in specs:
            if kind not in spec.alert_kinds or not spec.matches(a) or a.time_ns is None:
                continue
            window = Window.around(a.time_ns, *window_of(spec, a))
            if not window.start_ns <= time_ns <= window.end_ns:
                continue
            state = state_of(spec, a)
            if state is None or state == "waiting":
                continue  # never ran, or will read the book when it starts
            if isinstance(state, Published) and (state.retraction or mine in state.partners):
                continue  # withdrawn, or it read this very state
            what = "retraction" if partner.retracted else f"revision {partner.alert.revision}"
            jobs.append(Job(a, spec, params[spec.name], window, detectors_of(spec),
                            deadline_ns=0, update=1,
                            trigger=f"partner alert {partner.alert.alert_id} {what}"))  # fmt: skip
    return jobs


def open_book(
    book: AlertBook, clients: Clients, topics: Iterable[str], lookback_s: float,
    read: Callable[[Message], Alert | None],
) -> tuple[Consumer | None, int]:  # fmt: skip
    """Read the alert topics (patterns too) from ``now - lookback`` to their end into the
    book, at start; the consumer returned stays on every partition (not only this member's),
    for :func:`follow` to keep the book whole. A message that does not decode is skipped
    here (the alert consumer dead-letters it). Returns it and how many alerts were read."""
    names = [t for t in topics if not t.startswith("^")]
    if patterns := [re.compile(t) for t in topics if t.startswith("^")]:
        listed = clients.admin.list_topics(timeout=30).topics
        names += [n for n in listed if any(p.match(n) for p in patterns)]
    since_ms = (now_ns() - int(lookback_s * NS_PER_S)) // 1_000_000
    wanted = [TopicPartition(t, p, since_ms) for t in sorted(set(names))
              for p in clients.partitions(t) or []]  # fmt: skip
    if not wanted:
        return None, 0
    ends = {(tp.topic, tp.partition): clients.end_offset(tp.topic, tp.partition) for tp in wanted}
    starts = clients.offsets_for_times(wanted)
    for tp in starts:
        if tp.offset < 0:  # nothing newer than the lookback: from the end
            tp.offset = ends[(tp.topic, tp.partition)]
    todo = {(tp.topic, tp.partition) for tp in starts if tp.offset < ends[(tp.topic, tp.partition)]}
    consumer = clients.consumer("alert-book")
    consumer.assign(starts)
    count = idle = 0
    while todo and idle < 50:  # 10 s without a message: give up, and say so
        batch = consumer.consume(num_messages=500, timeout=0.2)
        idle = idle + 1 if not batch else 0
        count += follow(book, batch, read)
        for msg in batch:
            key = (str(msg.topic()), int(msg.partition() or 0))
            if msg.error() is None and int(msg.offset() or 0) + 1 >= ends[key]:
                todo.discard(key)
    if todo:
        log.warning("alert book rebuilt in part: partitions not read to their end",
                    partitions=sorted(todo))  # fmt: skip
    return consumer, count


def follow(book: AlertBook, batch: list[Message], read: Callable[[Message], Alert | None]) -> int:
    """Alert messages of any partition into the book (no job: their own member runs them)."""
    count = 0
    for msg in batch:
        if msg.error() is None and (alert := read(msg)) is not None:
            book.add(alert, message_time_ns(msg))
            count += 1
    return count
