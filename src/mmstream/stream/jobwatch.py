"""Why each waiting job waits, told to the observers (the ledger's job states, the console).

A job waits for its window to close and for every detector it reads to have sent data
past the window's end (its watermark), at most until its deadline. The detectors it still
waits for change as their data comes: checked at most once a second, told when they do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from mmstream.stream.events import Events
from mmstream.stream.runs import Job
from mmstream.times import format_utc, now_ns

Watermark = Callable[[str], int | None]


def kind_of(job: Job) -> str:
    if job.trigger:
        return "partner update"
    return "late-data update" if job.update else "alert"


def blockers(job: Job, watermark: Watermark) -> tuple[str, ...]:
    """The detectors whose data has not yet passed the job's window end."""
    return tuple(d for d in job.detectors
                 if (m := watermark(d)) is None or m < job.window.end_ns)  # fmt: skip


def reason(job: Job, waiting_for: tuple[str, ...], watermark: Watermark, now: int) -> str:
    """One line a shifter can act on: what the job waits for, and until when at most."""
    end = format_utc(job.window.end_ns)
    if job.trigger:  # a partner alert's change: it runs as soon as its turn comes
        return f"waiting for its turn: an update for {job.trigger}"
    if now < job.window.end_ns:
        why = f"the window to close at {end}"
    elif waiting_for:
        marks = ", ".join(
            f"{d} (data up to {format_utc(m) if (m := watermark(d)) is not None else 'none yet'})"
            for d in waiting_for
        )
        why = f"detector data past {end}: {marks}"
    else:
        why = "its turn (an earlier job of its alert or partition runs)"
    return f"waiting for {why}; runs at the latest at {format_utc(job.deadline_ns)}"


class JobWatch:
    def __init__(self, events: Events, every_s: float = 1.0) -> None:
        self.events, self.every_s = events, every_s
        self._told: dict[int, tuple[bool, tuple[str, ...]]] = {}  # id(job) -> last told
        self._checked = 0.0

    def admitted(self, jobs: Iterable[Job], watermark: Watermark) -> None:
        for job in jobs:
            self.events.job_state(job, "received")
        self.refresh(jobs, watermark, force=True)

    def refresh(self, waiting: Iterable[Job], watermark: Watermark, force: bool = False) -> None:
        """Tell each waiting job's reason where it changed (at most once a second)."""
        if not force and time.monotonic() - self._checked < self.every_s:
            return
        self._checked = time.monotonic()
        now = now_ns()
        for job in waiting:
            state = (now < job.window.end_ns, blockers(job, watermark))
            if self._told.get(id(job)) == state:
                continue
            self._told[id(job)] = state
            self.events.job_state(job, "waiting", reason(job, state[1], watermark, now),
                                  state[1])  # fmt: skip

    def left(self, job: Job, state: str, detail: str = "") -> None:
        """The job is no longer waiting (running, dropped, handed over...)."""
        self._told.pop(id(job), None)
        if state != "running":  # running is told with run_started
            self.events.job_state(job, state, detail)
