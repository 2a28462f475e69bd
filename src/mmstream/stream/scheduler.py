"""Which analyses an alert triggers, and when each may run: pure, no Kafka, a given clock.

An alert becomes one :class:`Job` per matching analysis. A job waits until every detector's
watermark has passed its window end, or until its deadline (``max_wait_s`` after the later
of its arrival and its window end). Revisions are ordered by when the sender made them; a
notice already published, queued or waiting gets no second job; a retraction withdraws every
live result of its alert. An alert's offset may be committed only once all its jobs ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from mmstream.analyses.registry import AnalysisSpec
from mmstream.model import NS_PER_S, Alert, AlertType, Role, Window
from mmstream.stream.results_index import Published, ResultsIndex, newest_of
from mmstream.stream.runs import Job, Retraction
from mmstream.stream.settings import SchedulePolicy
from mmstream.times import now_ns

Key = tuple[str, int, int]  # the alert message: topic, partition, offset


@dataclass
class PendingAlert:
    """An alert whose jobs are not all done; its results, gathered for one transaction."""

    alert: Alert
    jobs_left: int
    messages: list[Any] = field(default_factory=list)


@dataclass
class Admission:
    """What admitting one alert decided."""

    jobs: list[Job] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # analyses that published it already
    retractions: list[Retraction] = field(default_factory=list)
    done: PendingAlert | None = None  # nothing to wait for: publish (or just commit) now
    why: str = ""  # a note for the log when no job was made


def older(alert: Alert, published: Published) -> bool:
    """Whether the sender made this alert's notice before the published one's (arrival order
    does not count: an UPDATE can overtake its PRELIMINARY)."""
    return (
        alert.sent_ns is not None
        and published.sent_ns is not None
        and (alert.sent_ns < published.sent_ns)
    )


class Scheduler:
    def __init__(
        self,
        specs: Iterable[AnalysisSpec[Any]],
        params: dict[str, BaseModel],
        policy: SchedulePolicy,
        detectors: tuple[str, ...],
        index: ResultsIndex,
        *,
        windows: dict[str, tuple[float, float]] | None = None,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self.specs = list(specs)
        self.params = params
        self.policy = policy
        self.detectors = detectors
        self.index = index  # what our result topics hold
        self.windows = windows or {}
        # results made here but maybe not committed yet (waiting for the alert's other
        # jobs, or in the outbox); their ids are deterministic, so they stay true
        self.composed = ResultsIndex()
        self.clock = clock
        self.waiting: list[Job] = []
        self.running: list[Job] = []
        self.pending: dict[Key, PendingAlert] = {}

    def admit(self, alert: Alert) -> Admission:
        """Decide what this (decoded, valid) alert triggers; its jobs start waiting."""
        if alert.role is Role.TEST and self.policy.test_alerts == "skip":
            return Admission(done=PendingAlert(alert, 0), why="skipped:test")
        if alert.alert_type is AlertType.RETRACTION:
            return Admission(retractions=self._retractions(alert), done=PendingAlert(alert, 0))
        specs = [s for s in self.specs if s.matches(alert)]
        duplicates = [s.label for s in specs if self.seen(s, alert)]
        specs = [s for s in specs if s.label not in duplicates]
        if alert.time_ns is None or not specs:
            return Admission(duplicates=duplicates, done=PendingAlert(alert, 0),
                             why="triggers no analysis")  # fmt: skip
        arrived = self.clock()
        max_wait = int(self.policy.max_wait_s * NS_PER_S)
        jobs = []
        for spec in specs:
            before, after = self.windows.get(spec.name) or spec.window_for(
                alert, self.params[spec.name]
            )
            window = Window.around(alert.time_ns, before, after)
            job = Job(alert, spec, self.params[spec.name], window,
                      tuple(self.detectors if spec.detectors is None else spec.detectors),
                      deadline_ns=max(arrived, window.end_ns) + max_wait)  # fmt: skip
            jobs.append(job)
        self.waiting.extend(jobs)
        self.pending[jobs[0].key] = PendingAlert(alert, len(jobs))
        return Admission(jobs=jobs, duplicates=duplicates)

    def seen(self, spec: AnalysisSpec[Any], alert: Alert) -> bool:
        """Published already, queued, or waiting here (the same notice twice in quick
        succession)."""
        role = str(alert.role)
        for index in (self.index, self.composed):
            if index.published(spec.name, alert.alert_id, alert.revision, role):
                return True
        return any(
            j.spec.name == spec.name
            and (j.alert.alert_id, j.alert.revision, j.alert.role)
            == (alert.alert_id, alert.revision, alert.role)
            for j in (*self.waiting, *self.running)
        )

    def _retractions(self, alert: Alert) -> list[Retraction]:
        role = str(alert.role)
        out = []
        for spec in self.specs:
            if spec.name not in self.index.analyses_with_results(alert.alert_id, role):
                continue
            if self.index.published(spec.name, alert.alert_id, alert.revision, role):
                continue  # this retraction was already processed
            latest = self.index.latest(spec.name, alert.alert_id, role)
            out.append(Retraction(alert, spec, self.params[spec.name],
                                  latest.result_id if latest else None))  # fmt: skip
        return out

    def ready(self, watermark: Callable[[str], int | None]) -> list[tuple[Job, bool]]:
        """Jobs whose window closed (True) or whose deadline passed (False): now running."""
        if not self.waiting:
            return []
        now = self.clock()
        out, waiting = [], []
        busy = {self._thread(j) for j in self.running}
        held: set[tuple[str, int]] = set()  # partitions with a ready job held back
        for job in self.waiting:
            closed = self.closed(job, watermark)
            if not (closed or now >= job.deadline_ns):
                waiting.append(job)
            elif self._thread(job) in busy or job.key[:2] in held:
                # Revisions of one alert run one after the other (each sees what the one
                # before it made, which it supersedes); the partition's later alerts, ready
                # with it, wait behind it: results come out in the order alerts came in.
                waiting.append(job)
                held.add(job.key[:2])
            else:
                busy.add(self._thread(job))
                out.append((job, closed))
        self.waiting = waiting
        self.running.extend(job for job, _ in out)
        return out

    def drain(self, watermark: Callable[[str], int | None]) -> list[tuple[Job, bool]]:
        """Every waiting job, now (replay's end: the data will not grow)."""
        out = [(job, self.closed(job, watermark)) for job in self.waiting]
        self.running.extend(self.waiting)
        self.waiting = []
        return out

    @staticmethod
    def _thread(job: Job) -> tuple[str, str, str]:
        return (job.spec.name, job.alert.alert_id, str(job.alert.role))

    @staticmethod
    def closed(job: Job, watermark: Callable[[str], int | None]) -> bool:
        marks = [watermark(d) for d in job.detectors]
        return all(m is not None and m >= job.window.end_ns for m in marks)

    def rerun(self, job: Job) -> None:
        """A late-data update starts running (it has no alert offset to wait for)."""
        self.running.append(job)

    def finished(self, job: Job, messages: list[Any]) -> PendingAlert | None:
        """A job ran: its alert, with every result, once the alert's last job is done."""
        self.running = [j for j in self.running if j is not job]
        if not job.commits_offset:
            return None
        pending = self.pending.get(job.key)
        if pending is None:
            return None  # its partition was revoked meanwhile
        pending.messages.extend(messages)
        pending.jobs_left -= 1
        if pending.jobs_left > 0:
            return None
        del self.pending[job.key]
        return pending

    def add_updates(
        self, key: Key, jobs: list[Job], done: PendingAlert | None
    ) -> PendingAlert | None:
        """Partner updates answering the alert message ``key``: its offset waits for them
        too. ``done`` comes back when there are none (nothing else to wait for)."""
        if not jobs:
            return done
        for job in jobs:
            job.answers = key
        pending = self.pending.get(key)
        if pending is None:
            pending = done if done is not None else PendingAlert(jobs[0].alert, 0)
            self.pending[key] = pending
        pending.jobs_left += len(jobs)
        self.waiting.extend(jobs)
        return None

    def owner_state(self, name: str, alert_id: str, role: str) -> str | Published | None:
        """Where this analysis stands for this alert: "waiting" (a job of its own that will
        read the book when it starts), "running", its newest result, or None (never ran)."""
        key = (name, alert_id, role)
        if any(self._thread(j) == key and not j.trigger for j in self.waiting):
            return "waiting"
        if any(self._thread(j) == key for j in (*self.running, *self.waiting)):
            return "running"
        published = self.index.by_alert.get(key, [])
        ids = {p.result_id for p in published}
        queued = [q for q in self.composed.by_alert.get(key, []) if q.result_id not in ids]
        return newest_of([*published, *queued])

    def forget(self, key: Key) -> list[Job]:
        """An alert that could not be scheduled: drop its jobs (returned)."""
        dropped = [j for j in self.waiting if j.key == key]
        self.waiting = [j for j in self.waiting if j.key != key]
        self.pending.pop(key, None)
        return dropped

    def revoke(self, partitions: set[tuple[str, int]]) -> list[Job]:
        """Partitions another member owns now: their unfinished alerts are its to do (the
        waiting jobs dropped are returned)."""
        dropped = [j for j in self.waiting if j.key[:2] in partitions]
        self.waiting = [j for j in self.waiting if j.key[:2] not in partitions]
        self.running = [j for j in self.running if j.key[:2] not in partitions]
        for key in [k for k in self.pending if k[:2] in partitions]:
            del self.pending[key]
        return dropped

    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def latest(self, job: Job) -> Published | None:
        """The newest result of this job's analysis and alert, published or queued (a
        revision that ran just before this one may not be committed yet)."""
        key = (job.spec.name, job.alert.alert_id, str(job.alert.role))
        published = self.index.by_alert.get(key, [])
        ids = {p.result_id for p in published}
        queued = [q for q in self.composed.by_alert.get(key, []) if q.result_id not in ids]
        return newest_of([*published, *queued])

    def newer_published(self, job: Job) -> Published | None:
        """The published result of a revision made after this job's (which came late)."""
        latest = self.latest(job)
        if job.update or latest is None or not older(job.alert, latest):
            return None
        return latest

    def supersedes(self, job: Job) -> str | None:
        """The result this one replaces: the last revision's, or the one a late update redoes."""
        if job.update and not job.trigger:
            return job.supersedes
        latest = self.latest(job)
        if job.trigger:  # a partner update replaces whatever this alert has out
            return latest.result_id if latest is not None else None
        # by id, not revision: a partner update of this very revision is superseded too
        if latest is None or latest.result_id == str(job.result_id) or older(job.alert, latest):
            return None
        return latest.result_id
