"""Published windows, watched for detector events that arrive after their result.

A late event is always counted; with ``late_events = "rerun"`` the analysis runs again once
no late event has come for ``late_settle_s``, and its result supersedes the first. Windows
are watched for ``late_watch_s``. Pure: the clock is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from mmstream.model import Alert, DetectorEvent
from mmstream.stream.runs import Job
from mmstream.stream.settings import SchedulePolicy


@dataclass
class ClosedWindow:
    job: Job
    result_id: str
    watch_until: float  # on the watch's clock
    late: int = 0
    last_late: float = 0.0
    updates: int = 0
    running: bool = True  # its run has not finished: no re-run before it has


class LateWatch:
    def __init__(self, policy: SchedulePolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self.closed: list[ClosedWindow] = []
        self._horizon_ns = 0  # no watched window ends later: a cheap test per event

    def watch(self, job: Job, result_id: str) -> None:
        """Watch a window whose run starts (replacing the alert's earlier one)."""
        self.forget(job.alert, job.spec.name)
        until = self.clock() + self.policy.late_watch_s
        self.closed.append(ClosedWindow(job, result_id, until, updates=job.update))
        self._horizon_ns = max(cw.job.window.end_ns for cw in self.closed)

    def ran(self, job: Job) -> None:
        """The window's run finished: its late events may now make a re-run."""
        for cw in self.closed:
            if cw.job is job:
                cw.running = False

    def hits(self, event: DetectorEvent) -> list[ClosedWindow]:
        """The watched windows this event falls in."""
        return self.hits_at(event.detector, event.time_ns)

    def may_hit(self, earliest_ns: int) -> bool:
        """Whether events from ``earliest_ns`` on could fall in a watched window (a cheap
        test per message: live data is newer than every published window)."""
        return bool(self.closed) and earliest_ns <= self._horizon_ns

    def hits_at(self, detector: str, time_ns: int) -> list[ClosedWindow]:
        """The watched windows an event of ``detector`` at ``time_ns`` falls in."""
        if not self.closed or time_ns > self._horizon_ns:
            return []
        return [cw for cw in self.closed if detector in cw.job.detectors
                and cw.job.window.start_ns <= time_ns <= cw.job.window.end_ns]  # fmt: skip

    def hits_span(self, detector: str, start_ns: int, end_ns: int) -> list[ClosedWindow]:
        """The watched windows of this detector overlapping [start, end): a late condition
        change decides its key from its time to the next change, also before a window."""
        if not self.closed or start_ns > self._horizon_ns:
            return []
        return [cw for cw in self.closed if detector in cw.job.detectors
                and cw.job.window.start_ns < end_ns
                and start_ns <= cw.job.window.end_ns]  # fmt: skip

    def late(self, hits: list[ClosedWindow]) -> None:
        """A late event came into these windows."""
        now = self.clock()
        for cw in hits:
            cw.late += 1
            cw.last_late = now

    def due(self) -> list[tuple[Job, int]]:
        """The re-runs due now (late events settled), with how many late events each had;
        windows past their watch are dropped."""
        if not self.closed:
            return []
        now = self.clock()
        due = []
        if self.policy.late_events == "rerun":
            settle = self.policy.late_settle_s
            due = [cw for cw in self.closed
                   if cw.late and not cw.running and now - cw.last_late >= settle]  # fmt: skip
        self.closed = [cw for cw in self.closed if cw not in due and now < cw.watch_until]
        self._horizon_ns = max((cw.job.window.end_ns for cw in self.closed), default=0)
        # a partner update's late re-run stays in its partner notice's namespace of ids
        return [(replace(cw.job, update=cw.updates + 1, supersedes=cw.result_id, answers=None,
                         created=time.monotonic(),
                         trigger=f"{cw.job.trigger}, late-data update {cw.updates + 1}"
                         if cw.job.trigger else ""), cw.late)
                for cw in due]  # fmt: skip

    def forget(self, alert: Alert, analysis: str | None = None) -> None:
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
