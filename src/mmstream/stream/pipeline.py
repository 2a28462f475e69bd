"""The stages between a message source and a publisher, wired once.

The live service feeds it from Kafka and publishes transactionally; replay feeds it from
Kafka by time or from the raw archive and publishes to a sandbox. Both call the same
public methods: :meth:`detector_messages`, :meth:`alert_message`, :meth:`step`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from confluent_kafka import Message

from mmstream.analyses.registry import AnalysisSpec, Registry
from mmstream.errors import RegistryError
from mmstream.formats.detector import DetectorCodec
from mmstream.formats.headers import parse
from mmstream.model import NS_PER_S, Alert, AlertType, ResultStatus, Window
from mmstream.ops.logging import get_logger
from mmstream.stream.alertbook import AlertBook, Held, partner_updates
from mmstream.stream.archive import Keeper
from mmstream.stream.compose import Composer
from mmstream.stream.conditions import Conditions
from mmstream.stream.events import Events
from mmstream.stream.feed import DetectorFeed
from mmstream.stream.intake import read_alert
from mmstream.stream.jobwatch import JobWatch
from mmstream.stream.latewatch import LateWatch
from mmstream.stream.messages import message_time_ns, origin
from mmstream.stream.publisher import Outgoing, OutMessage, Publisher
from mmstream.stream.refusals import Refusals
from mmstream.stream.results_index import Published, ResultsIndex
from mmstream.stream.runner import Runner
from mmstream.stream.runs import Job, RunReport
from mmstream.stream.runstats import stats_message
from mmstream.stream.scheduler import PendingAlert, Scheduler
from mmstream.stream.settings import StreamSettings
from mmstream.stream.store import EventStore
from mmstream.stream.workers import Pool, ProcessPool

log = get_logger("mmstream.service")


class Pipeline:
    def __init__(
        self, settings: StreamSettings, registry: Registry, events: Events,
        publisher: Publisher, pool: Pool, keeper: Keeper,
    ) -> None:  # fmt: skip
        s = settings
        self.settings, self.events, self.publisher, self.keeper = s, events, publisher, keeper
        self.specs: list[AnalysisSpec[Any]] = [x for x in registry if s.policy(x.name).enabled]
        if isinstance(pool, ProcessPool):
            for spec in self.specs:
                if not spec.importable():
                    raise RegistryError(
                        f"analysis {spec.label} runs in a worker process, which finds it by "
                        f"name: define it with @analysis at module level (or set workers = 0)"
                    )
        self.params = params = {x.name: x.validate_params(s.policy(x.name).params)
                                for x in registry}  # fmt: skip
        self.index = ResultsIndex()  # what our result topics hold
        self.store = EventStore(
            retention_ns=int(s.lookback_s * NS_PER_S),
            fields={d: x.fields for d, x in s.detector_schemas.items()},
        )
        self.conditions = Conditions(s.context_rules, s.limits.max_condition_keys)
        self.late = LateWatch(s.schedule)
        self.book = AlertBook(retention_ns=int(s.lookback_s * NS_PER_S))
        windows = {n: p.window for n, p in s.analyses.items() if p.window is not None}
        self.scheduler = Scheduler(self.specs, params, s.schedule, s.topics.detectors, self.index,
                                   windows=windows)  # fmt: skip
        self.refusals = Refusals(s.topics.deadletter, s.instance, s.limits, events,
                                 publisher.queue, publisher.route)  # fmt: skip
        self.feed = DetectorFeed(s.topics, s.limits, self.store, self.late, self.refusals,
                                 keeper, events, self.conditions,
                                 DetectorCodec(s.detector_schemas))  # fmt: skip
        self.runner = Runner(self.store, pool, s.run, s.topics, s.policy, self.book,
                             self.conditions)  # fmt: skip
        self.composer = Composer(s.topics, s.instance)
        self._arrivals: dict[tuple[str, int, int], float] = {}
        self._decode_s: dict[tuple[str, int, int], float] = {}  # for the runs' statistics
        self.jobwatch = JobWatch(events)
        self._livetime_told = 0.0
        publisher.listeners.append(self._index_published)

    # ------------------------------------------------------------------ inputs
    def detector_messages(self, msgs: Sequence[Message]) -> None:
        """A batch of detector messages, in the order consumed."""
        self.feed.handle_batch(msgs)

    def alert_message(self, msg: Message, received_ns: int) -> None:
        """Decode, validate and schedule one alert message (live, or replayed)."""
        key = origin(msg)
        topic, partition, offset = key
        self.events.message_consumed(topic)
        stored = self.keeper.keep(msg, commits=True)
        self._arrivals[key] = time.monotonic()
        self.publisher.offsets.begin(topic, partition, offset)
        if self.refusals.seen(topic, partition, offset):
            # Dead-lettered before a restart, but its offset could not move past an earlier
            # alert still waiting: move it now, with no second dead letter.
            self.publisher.queue(Outgoing([], topic, partition, offset))
            return
        t0 = time.perf_counter()
        failed: Exception | None = None  # dead letters go after the except blocks (refusals.py)
        try:
            alert = read_alert(msg, dict(self.settings.routes), self.settings.limits, received_ns)
        except Exception as exc:  # read_alert makes failures DecodeErrors; belt and braces
            failed = exc
        if failed is not None:
            self.refusals.alert(msg, failed, archive=stored)
            return
        self._decode_s[key] = time.perf_counter() - t0
        self.events.alert_input(key, "decoded", alert, archive=stored)
        try:
            self.book.add(alert, message_time_ns(msg, received_ns))
            self._admit(self._numbered(alert), self.book.entry(alert))
        except Exception as exc:  # a bug or a bad parameter: keep the message, say why
            log.exception("alert could not be scheduled", topic=topic, offset=offset)
            for job in self.scheduler.forget(key):
                self.jobwatch.left(job, "deadlettered", f"{type(exc).__name__}: {exc}")
            failed = exc
        if failed is not None:
            self.refusals.alert(msg, failed, stage="processing", archive=stored)

    def _numbered(self, alert: Alert) -> Alert:
        """An LVK alert with its notice number (``S230914ak-2-Preliminary``, as notices name
        it): from a VOEvent's ivorn, else counted as its notices reached us (the book is
        rebuilt from Kafka, so a restart counts the same)."""
        if alert.source != "LVK" or "notice_number" in alert.extra:
            return alert
        m = re.match(r"(\d+)-", alert.revision)
        held = self.book.entry(alert)
        number = int(m.group(1)) if m else held.number(alert.revision) if held else 0
        if not number:
            return alert
        return replace(alert, extra={**alert.extra, "notice_number": number})

    def read_quietly(self, msg: Message) -> Alert | None:
        """An alert message decoded, or None (rebuilding the book: no dead letter here)."""
        try:
            received = message_time_ns(msg)  # as when it first came
            return read_alert(msg, dict(self.settings.routes), self.settings.limits, received)
        except Exception:
            return None

    @property
    def reads_alerts(self) -> bool:
        """Whether an enabled analysis reads other alerts (the book is then rebuilt)."""
        return any(spec.alert_kinds for spec in self.specs)

    def _partner_updates(self, held: Held | None) -> list[Job]:
        """Re-runs of the analyses that read this alert (alertbook.py), not yet out."""
        if held is None or not self.reads_alerts:
            return []
        sch = self.scheduler

        def window_of(spec: AnalysisSpec[Any], alert: Alert) -> tuple[float, float]:
            return sch.windows.get(spec.name) or spec.window_for(alert, self.params[spec.name])

        def detectors_of(spec: AnalysisSpec[Any]) -> tuple[str, ...]:
            return tuple(sch.detectors if spec.detectors is None else spec.detectors)

        def state_of(spec: AnalysisSpec[Any], alert: Alert) -> str | Published | None:
            return sch.owner_state(spec.name, alert.alert_id, str(alert.role))

        jobs = partner_updates(self.book, held, self.specs, self.params, window_of,
                               detectors_of, state_of)  # fmt: skip
        out = []
        for job in jobs:
            rid, a = str(job.result_id), job.alert
            if any(i.has(job.spec.name, a.alert_id, str(a.role), rid)
                   for i in (self.index, sch.composed)):  # fmt: skip
                continue  # this notice was read before (a restart): its update is out
            if any(j.result_id == job.result_id for j in (*sch.waiting, *sch.running)):
                continue
            out.append(job)
        return out

    def _admit(self, alert: Alert, held: Held | None = None) -> None:
        ref = alert.ref
        key = (ref.topic, ref.partition, ref.offset)
        logger = log.bind(alert_id=alert.alert_id, revision=alert.revision, topic=ref.topic,
                          partition=ref.partition, offset=ref.offset)  # fmt: skip
        adm = self.scheduler.admit(alert)
        if adm.duplicates:
            logger.info("notice already processed; no second result", analyses=adm.duplicates)
            reason = f"already processed for {', '.join(adm.duplicates)}"
            self.events.alert_input(key, "duplicate", alert, reason)
        if alert.alert_type is AlertType.RETRACTION:
            self.late.forget(alert)
            for r in adm.retractions:
                self.events.retracted(r)
                assert adm.done is not None
                adm.done.messages.append(self.composer.retraction(r))
                self._composed(adm.done.messages[-1:])
            logger.info("alert retracted", withdrawn=len(adm.retractions))
        elif adm.why == "skipped:test":
            logger.info("test alert skipped by policy")
            self.events.alert_input(key, "skipped:test", alert)
        elif adm.why:
            logger.info("alert triggers no analysis", alert_type=str(alert.alert_type))
        else:
            logger.info("alert scheduled", analyses=[j.spec.label for j in adm.jobs])
        updates = self._partner_updates(held)
        if updates:
            logger.info(
                "re-running the analyses that read this alert",
                owners=sorted({f"{j.spec.name}:{j.alert.alert_id}" for j in updates}),
            )
        done = self.scheduler.add_updates(key, updates, adm.done)
        self.jobwatch.admitted([*adm.jobs, *updates], self.store.watermark)
        if done is not None:
            self._finish(done)

    # -------------------------------------------------------------------- turn
    def step(self) -> None:
        """Start the jobs that are ready, take the runs that finished, publish."""
        if time.monotonic() - self._livetime_told > 10:
            self._tell_livetime()
        for job, complete in self.scheduler.ready(self.store.watermark):
            self._start(job, complete)
        if self.keeper.unsynced():  # the alert's archive fsync while its analyses run
            self.keeper.flush(durable=True)
        # after the ready ones started: a job that runs now is not told "waiting" once more
        self.jobwatch.refresh(self.scheduler.waiting, self.store.watermark)
        self.collect()
        for job, late in self.late.due():
            log.info("re-running for late detector data", analysis=job.spec.label,
                     alert_id=job.alert.alert_id, late_events=late,
                     supersedes=job.supersedes)  # fmt: skip
            self.scheduler.rerun(job)
            self._start(job, True)
        self.collect()
        self.publisher.flush()

    def _tell_livetime(self) -> None:
        """Each detector's livetime over the last hours (the console's timeline)."""
        self._livetime_told = time.monotonic()
        now = time.time_ns()
        window = Window(now - int(min(self.settings.lookback_s, 6 * 3600) * NS_PER_S), now)
        max_gap = int(self.settings.run.max_status_gap_s * NS_PER_S)
        for d in self.settings.topics.detectors:
            excluded = self.conditions.excluded(d, window)
            if (lt := self.store.livetime(d, window, max_gap, excluded)) is not None:
                self.events.livetime(window, lt)

    def collect(self) -> None:
        for report in self.runner.collect():
            self._finished(report)

    def drain(self) -> None:
        """Run every waiting job now, wait for every run, publish everything (replay)."""
        for job, complete in self.scheduler.drain(self.store.watermark):
            self._start(job, complete)
        while self.runner.busy():  # each run is bounded by its time limit
            self.runner.wait(0.05)
            self.collect()
        self.publisher.drain(120)

    def evict(self, now: int) -> None:
        """Forget what is older than the lookback: events, alerts, superseded conditions."""
        self.store.evict(now)
        self.book.evict(now)
        self.conditions.evict(now - int(self.settings.lookback_s * NS_PER_S))

    def revoke(self, partitions: set[tuple[str, int]]) -> None:
        """Partitions another member owns now: their unfinished alerts go to it."""
        for job in self.scheduler.revoke(partitions):
            self.jobwatch.left(job, "handed_over", "its alert partition went to another member")
        for job in self.runner.revoke(partitions):
            self.events.run_abandoned(job)
        self.publisher.revoke(partitions)
        for key in [k for k in self._arrivals if k[:2] in partitions]:
            del self._arrivals[key]
            self._decode_s.pop(key, None)

    # ------------------------------------------------------------------ inside
    def _owner_retracted(self, job: Job) -> bool:
        """A partner update whose owner has been retracted since it was made: dropped, for
        nothing may supersede the retraction (the owner's results are withdrawn)."""
        if not job.trigger:
            return False
        latest = self.scheduler.latest(job)
        if latest is None or not latest.retraction:
            return False
        log.info(
            "partner update dropped: its alert was retracted meanwhile",
            analysis=job.spec.label,
            alert_id=job.alert.alert_id,
            trigger=job.trigger,
        )
        return True

    def _start(self, job: Job, complete: bool) -> None:
        if self._owner_retracted(job):
            self.jobwatch.left(job, "dropped", "its alert was retracted meanwhile")
            if (pending := self.scheduler.finished(job, [])) is not None:
                self._finish(pending)
            return
        self.jobwatch.left(job, "running")
        self.events.run_started(job)
        # watched from now: events that come while it runs are not in its input
        self.late.watch(job, str(job.result_id))
        a = job.alert
        previous = self.index.latest(job.spec.name, a.alert_id, str(a.role))
        self.runner.start(job, complete, supersedes=self.scheduler.supersedes(job),
                          newer=self.scheduler.newer_published(job), previous=previous)  # fmt: skip

    def _finished(self, report: RunReport) -> None:
        job = report.job
        dropped = self._owner_retracted(job)
        messages = [] if dropped else self.composer.run(report)
        if dropped:
            self.jobwatch.left(job, "dropped", "its alert was retracted while it ran")
        self._composed(messages)
        if messages:  # the run's cost, in the same transaction as its result
            arrived = self._arrivals.get(job.key) if job.commits_offset else None
            decode_s = self._decode_s.get(job.key) if arrived else None
            messages.append(stats_message(report, self.settings.topics.stats,
                                          self.settings.instance, decode_s=decode_s,
                                          arrived=arrived))  # fmt: skip
        self.events.run_finished(report)
        if report.status in (ResultStatus.FAILED, ResultStatus.TIMED_OUT):
            self.late.forget(job.alert, job.spec.name)  # nothing to update
        else:
            self.late.ran(job)
        pending = self.scheduler.finished(job, messages)
        if not job.commits_offset:  # the alert's offset was committed with the first result
            ref = job.alert.ref
            self.publisher.queue(Outgoing(messages, ref.topic, ref.partition, None,
                                          alert_id=job.alert.alert_id))  # fmt: skip
        elif pending is not None:
            self._finish(pending)

    def _finish(self, pending: PendingAlert) -> None:
        ref = pending.alert.ref
        key = (ref.topic, ref.partition, ref.offset)
        self.publisher.queue(Outgoing(pending.messages, ref.topic, ref.partition, ref.offset,
                                      alert_id=pending.alert.alert_id,
                                      arrived=self._arrivals.get(key)))  # fmt: skip

    def _composed(self, messages: list[OutMessage]) -> None:
        for m in messages:
            if m.topic.startswith(self.settings.topics.result_prefix):
                self.scheduler.composed.record(parse(m.headers))

    def in_flight(self) -> bool:
        """Whether an alert read is still waiting for its results to be published."""
        return bool(self._arrivals)

    def _index_published(self, item: Outgoing) -> None:
        if item.offset is not None:
            self._arrivals.pop((item.topic, item.partition, item.offset), None)
            self._decode_s.pop((item.topic, item.partition, item.offset), None)
        for m in item.messages:
            if m.topic.startswith(self.settings.topics.result_prefix):
                self.index.record(parse(m.headers))
