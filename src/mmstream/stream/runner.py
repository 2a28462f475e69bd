"""Running a job: its input built from the event store, the handler run in the pool, the
run reported with its status and cost.

One rule for every analysis: data the store does not hold (the window starts before its
coverage) is unknown, not dead time, so such a run is INCOMPLETE, never "insufficient
livetime". The runner never blocks: :meth:`collect` returns what has finished.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmstream.analyses.inputs import Context, DetectorConditions, Previous
from mmstream.analyses.registry import AnalysisInput, Outcome
from mmstream.model import NS_PER_S, ResultStatus
from mmstream.ops.logging import get_logger
from mmstream.stream.alertbook import AlertBook
from mmstream.stream.conditions import Conditions
from mmstream.stream.results_index import Published
from mmstream.stream.runs import Job, RunReport
from mmstream.stream.settings import AnalysisPolicy, RunLimits, Topics
from mmstream.stream.store import EventStore
from mmstream.stream.workers import Done, MiB, Pool, Task
from mmstream.times import format_utc

log = get_logger("mmstream.runner")


@dataclass
class _Running:
    job: Job
    inp: AnalysisInput[Any]
    uncovered: bool
    supersedes: str | None
    newer: Published | None
    # the conditions as the run saw them when it started (a change arriving meanwhile is
    # late data): every key over the window, and at each event's time
    conditions: dict[str, dict[str, list[tuple[int, int, Any]]]] = field(default_factory=dict)
    at_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: float = 0.0  # time.monotonic() when its input began to be built


class Runner:
    def __init__(
        self, store: EventStore, pool: Pool, limits: RunLimits, topics: Topics,
        policy: Callable[[str], AnalysisPolicy], book: AlertBook | None = None,
        conditions: Conditions | None = None,
    ) -> None:  # fmt: skip
        self.store, self.pool, self.limits, self.topics = store, pool, limits, topics
        self.book = book  # other alerts, for analyses that read them
        self.conditions = conditions if conditions is not None else Conditions()
        self.policy = policy
        self._ids = itertools.count()
        self.running: dict[int, _Running] = {}
        self._decided: list[Done] = []  # by a precondition, without running the handler

    def start(
        self, job: Job, complete: bool, *, supersedes: str | None, newer: Published | None,
        previous: Published | None = None,
    ) -> None:  # fmt: skip
        """Build the job's input and hand it to the pool."""
        started = time.monotonic()
        notes: list[str] = []
        if not complete:
            notes.append("ran at the deadline before every detector's data passed the window end")
        if job.trigger:
            notes.append(f"update: run again because of {job.trigger}, superseding "
                         f"{supersedes or 'nothing'}")  # fmt: skip
        elif job.update:
            notes.append(
                f"late-data update {job.update}: run again after detector events "
                f"arrived in the window once its result {job.supersedes} was out"
            )
        if newer is not None:
            notes.append(f"a later revision ({newer.revision}, result {newer.result_id}) was "
                         "published before this one came: it supersedes nothing")  # fmt: skip
        covered = self.store.covered_from_ns
        # (an analysis that reads no detector, such as alert x alert, is never uncovered)
        uncovered = covered is not None and bool(job.detectors) and job.window.start_ns < covered
        if covered is not None and uncovered:
            complete = False
            notes.append(f"window starts before the event store's coverage ({format_utc(covered)})")
        events = {d: self.store.window(d, job.window) for d in job.detectors}
        max_gap = int(self.limits.max_status_gap_s * NS_PER_S)
        cond = self.conditions
        livetime = {d: self.store.livetime(d, job.window, max_gap, cond.excluded(d, job.window))
                    for d in job.detectors}  # fmt: skip
        keys = job.spec.condition_keys
        conditions = {d: DetectorConditions(
            {k: cond.at(d, k, events[d].time_ns) for k in keys},
            {k: tuple(cond.intervals(d, k, job.window)) for k in keys}) for d in job.detectors
        } if keys else {}  # fmt: skip
        a = job.alert
        context = Context(
            {"analysis": job.spec.label, "alert_id": a.alert_id, "revision": a.revision},
            None if previous is None else Previous(previous.result_id, previous.revision,
                                                   previous.retraction),
        )  # fmt: skip
        partners = self.book.partners(a, job.window, job.spec.alert_kinds) if self.book else ()
        inp = AnalysisInput(a, job.window, events, job.params, complete, tuple(notes), livetime,
                            context, partners, conditions)  # fmt: skip
        policy = self.policy(job.spec.name)
        memory = policy.memory_limit_mb or self.limits.memory_limit_mb
        task = Task(next(self._ids), job.spec, inp,
                    policy.time_limit_s or self.limits.time_limit_s,
                    int(memory * MiB) if memory else None, self.limits.measure_memory)  # fmt: skip
        history = {d: h for d in job.detectors if (h := cond.history(d, job.window))}
        at_events = {d: {k: cond.at(d, k, events[d].time_ns) for k in history[d]}
                     for d in history}  # fmt: skip
        self.running[task.id] = _Running(job, inp, uncovered, supersedes, newer, history,
                                         at_events, started)  # fmt: skip
        try:
            verdict = job.spec.precondition(inp)
        except Exception as exc:  # e.g. a min_livetime parameter set to None
            self._decided.append(
                Done(
                    task.id,
                    None,
                    f"precondition failed: {type(exc).__name__}: {exc}",
                    ResultStatus.FAILED,
                )
            )
            return
        if verdict is not None:  # the handler need not run
            self._decided.append(Done(task.id, verdict[1], status=verdict[0]))
        else:
            self.pool.submit(task)

    def collect(self) -> list[RunReport]:
        """The runs that finished since the last call."""
        done, self._decided = [*self._decided, *self.pool.collect()], []
        return [self._report(d) for d in done if d.id in self.running]

    def _report(self, done: Done) -> RunReport:
        run = self.running.pop(done.id)
        job = run.job
        if done.outcome is not None:
            outcome = done.outcome
            status = ResultStatus.COMPLETED if run.inp.complete else ResultStatus.INCOMPLETE
            if done.status is ResultStatus.NOT_APPLICABLE:
                status = done.status
            elif outcome.insufficient_livetime and not run.uncovered:
                status = ResultStatus.INSUFFICIENT_LIVETIME
        else:
            status = done.status or ResultStatus.FAILED
            verb = "timed out" if status is ResultStatus.TIMED_OUT else "failed"
            outcome = Outcome(summary=f"analysis {verb}: {done.error}")
            log.error(f"analysis {verb}", analysis=job.spec.label, alert_id=job.alert.alert_id,
                      error=done.error, traceback=done.traceback)  # fmt: skip
        events = run.inp.events
        collected = time.monotonic()
        return RunReport(
            job,
            run.inp,
            outcome,
            status,
            done.error,
            done.cost,
            run.supersedes,
            run.newer,
            parents=self.store.ancestry(eid for c in events.values() for eid in c.event_id),
            event_topics={d: self.topics.events(d) for d in events},
            conditions=run.conditions,
            event_conditions=run.at_events,
            queue_wait_s=run.started - job.created,
            wall_s=collected - run.started,
            collected=collected,
        )

    def partitions(self) -> set[tuple[str, int]]:
        """Alert partitions with a run in flight (the service pauses them)."""
        return {r.job.key[:2] for r in self.running.values() if r.job.commits_offset}

    def busy(self) -> bool:
        return bool(self.running)

    def wait(self, timeout_s: float) -> None:
        """Until a run may have finished, at most ``timeout_s``."""
        if self._decided:
            return
        self.pool.wait(timeout_s)

    def revoke(self, partitions: set[tuple[str, int]]) -> list[Job]:
        """Runs of revoked partitions: their results are the next owner's to publish."""
        gone = [t for t, r in self.running.items() if r.job.key[:2] in partitions]
        return [self.running.pop(t).job for t in gone]  # what the pool returns is dropped

    def close(self) -> None:
        self.pool.close()
