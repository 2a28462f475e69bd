"""What the stages tell the world: one interface that metrics, the dashboard and the ledger
recorder implement (in ``ops/`` and ``ledger/``), so that no stage imports them.

Every method is a no-op here: an observer overrides what it cares about. :class:`Fanout`
hands each event to several observers; :class:`Counts` keeps the totals replay and the
benchmarks report.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmstream.model import Alert, DetectorStatus, Livetime, Window
    from mmstream.stream.gaps import Gap
    from mmstream.stream.runs import Job, Retraction, RunReport


@dataclass(frozen=True)
class Delivered:
    """One committed message of ours, and where it landed."""

    topic: str  # the topic it was meant for
    landed: str  # where it went (replay sends everything to its sandbox)
    partition: int
    offset: int
    kind: str  # "result", "notice" or "deadletter"
    analysis: str | None  # name@version
    result_id: str | None
    supersedes: str | None
    value: bytes | None = None  # a statistics record, as sent (stream/runstats.py)


class Events:
    """The events of every stage. Implementations must not raise (they are records)."""

    def message_consumed(self, topic: str, count: int = 1) -> None: ...
    def alert_input(
        self, ref: tuple[str, int, int], status: str, alert: Alert | None = None,
        reason: str | None = None, archive: str | None = None,
    ) -> None: ...  # fmt: skip
    def deadlettered(self, stage: str, exception: str, detector: bool) -> None: ...
    def detector_events(self, detector: str, count: int) -> None: ...
    def detector_status(self, status: DetectorStatus) -> None: ...
    def duplicate_events(self, detector: str, count: int) -> None: ...
    def late_event(self, detector: str) -> None: ...
    def data_gap(self, gap: Gap) -> None: ...  # a hole found: its events missing
    # once per batch where a detector's holes changed: events missing now, and events that
    # arrived in a hole (late) since the last call
    def data_gap_totals(self, detector: str, open_events: int, healed_events: int) -> None: ...
    def gauges(
        self, waiting: int, watermarks: dict[str, int | None], lag: dict[tuple[str, int], int],
        broker_up: bool,
    ) -> None: ...  # fmt: skip
    # a job's state (stream/jobwatch.py; ledger/jobs.py lists them): received, waiting (for
    # the detectors named), deadlettered, dropped...; running and after: the run's events
    def job_state(
        self, job: Job, state: str, detail: str = "", waiting_for: tuple[str, ...] = ()
    ) -> None: ...
    def run_started(self, job: Job) -> None: ...
    def run_finished(self, report: RunReport) -> None: ...
    def run_abandoned(self, job: Job) -> None: ...  # its partition went to another member
    def retracted(self, retraction: Retraction) -> None: ...
    def published(
        self, alert_id: str | None, delivered: list[Delivered], took_s: float,
        since_arrival_s: float | None,
    ) -> None: ...  # fmt: skip
    def transaction_failed(self) -> None: ...
    def producer_replaced(self) -> None: ...
    def archive_error(self) -> None: ...
    def upstream(self, topic: str, silent_s: float, alive: bool) -> None: ...  # heartbeats
    # a detector's livetime over the recent past, with what was left out (every few seconds)
    def livetime(self, window: Window, livetime: Livetime) -> None: ...
    # one of our results, read back from Kafka (at start, then as they come)
    def result_seen(
        self, result_id: str, kind: str, topic: str, partition: int, offset: int,
        supersedes: str | None,
    ) -> None: ...  # fmt: skip


@dataclass
class Counts(Events):
    """Totals by name: ``published:<topic>``, ``detector_events``, ``deadletters``, ..."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def alert_input(
        self, ref: tuple[str, int, int], status: str, alert: Alert | None = None,
        reason: str | None = None, archive: str | None = None,
    ) -> None:  # fmt: skip
        if status == "decoded":
            self.counts["alerts_decoded"] += 1
        elif status == "duplicate":
            self.counts["duplicate_notices"] += 1

    def deadlettered(self, stage: str, exception: str, detector: bool) -> None:
        self.counts["deadletters"] += 1

    def detector_events(self, detector: str, count: int) -> None:
        self.counts["detector_events"] += count

    def late_event(self, detector: str) -> None:
        self.counts["late_events"] += 1

    def data_gap(self, gap: Gap) -> None:
        self.counts["data_gaps"] += 1
        self.counts["data_gap_events"] += gap.missing

    def data_gap_totals(self, detector: str, open_events: int, healed_events: int) -> None:
        self.counts["data_gap_events_healed"] += healed_events

    def published(
        self, alert_id: str | None, delivered: list[Delivered], took_s: float,
        since_arrival_s: float | None,
    ) -> None:  # fmt: skip
        for d in delivered:
            self.counts[f"published:{d.topic}"] += 1

    def transaction_failed(self) -> None:
        self.counts["transaction_aborts"] += 1

    def producer_replaced(self) -> None:
        self.counts["producer_replaced"] += 1


class Fanout(Events):
    """Every event to every observer, in order."""

    def __init__(self, *observers: Events) -> None:
        self.observers = observers

    def message_consumed(self, topic: str, count: int = 1) -> None:
        for o in self.observers:
            o.message_consumed(topic, count)

    def alert_input(
        self, ref: tuple[str, int, int], status: str, alert: Alert | None = None,
        reason: str | None = None, archive: str | None = None,
    ) -> None:  # fmt: skip
        for o in self.observers:
            o.alert_input(ref, status, alert, reason, archive)

    def deadlettered(self, stage: str, exception: str, detector: bool) -> None:
        for o in self.observers:
            o.deadlettered(stage, exception, detector)

    def detector_events(self, detector: str, count: int) -> None:
        for o in self.observers:
            o.detector_events(detector, count)

    def detector_status(self, status: DetectorStatus) -> None:
        for o in self.observers:
            o.detector_status(status)

    def duplicate_events(self, detector: str, count: int) -> None:
        for o in self.observers:
            o.duplicate_events(detector, count)

    def late_event(self, detector: str) -> None:
        for o in self.observers:
            o.late_event(detector)

    def data_gap(self, gap: Gap) -> None:
        for o in self.observers:
            o.data_gap(gap)

    def data_gap_totals(self, detector: str, open_events: int, healed_events: int) -> None:
        for o in self.observers:
            o.data_gap_totals(detector, open_events, healed_events)

    def gauges(
        self, waiting: int, watermarks: dict[str, int | None], lag: dict[tuple[str, int], int],
        broker_up: bool,
    ) -> None:  # fmt: skip
        for o in self.observers:
            o.gauges(waiting, watermarks, lag, broker_up)

    def job_state(
        self, job: Job, state: str, detail: str = "", waiting_for: tuple[str, ...] = ()
    ) -> None:
        for o in self.observers:
            o.job_state(job, state, detail, waiting_for)

    def run_started(self, job: Job) -> None:
        for o in self.observers:
            o.run_started(job)

    def run_finished(self, report: RunReport) -> None:
        for o in self.observers:
            o.run_finished(report)

    def run_abandoned(self, job: Job) -> None:
        for o in self.observers:
            o.run_abandoned(job)

    def retracted(self, retraction: Retraction) -> None:
        for o in self.observers:
            o.retracted(retraction)

    def published(
        self, alert_id: str | None, delivered: list[Delivered], took_s: float,
        since_arrival_s: float | None,
    ) -> None:  # fmt: skip
        for o in self.observers:
            o.published(alert_id, delivered, took_s, since_arrival_s)

    def transaction_failed(self) -> None:
        for o in self.observers:
            o.transaction_failed()

    def producer_replaced(self) -> None:
        for o in self.observers:
            o.producer_replaced()

    def archive_error(self) -> None:
        for o in self.observers:
            o.archive_error()

    def upstream(self, topic: str, silent_s: float, alive: bool) -> None:
        for o in self.observers:
            o.upstream(topic, silent_s, alive)

    def livetime(self, window: Window, livetime: Livetime) -> None:
        for o in self.observers:
            o.livetime(window, livetime)

    def result_seen(
        self, result_id: str, kind: str, topic: str, partition: int, offset: int,
        supersedes: str | None,
    ) -> None:  # fmt: skip
        for o in self.observers:
            o.result_seen(result_id, kind, topic, partition, offset, supersedes)
