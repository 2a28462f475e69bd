"""The typed records stages hand each other: a job, a run's report, a retraction."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from mmstream.analyses.registry import AnalysisInput, AnalysisSpec, Outcome
from mmstream.model import Alert, ResultStatus, Window
from mmstream.provenance.headers import result_id
from mmstream.stream.cost import Cost
from mmstream.stream.results_index import Published


@dataclass(eq=False)  # compared by identity: alerts hold numpy arrays
class Job:
    """One (alert, analysis) pair: waiting for its window to close, or running."""

    alert: Alert
    spec: AnalysisSpec[Any]
    params: BaseModel
    window: Window
    detectors: tuple[str, ...]
    deadline_ns: int
    update: int = 0  # > 0: a re-run (late detector data, or a partner alert's change)
    supersedes: str | None = None
    # A re-run for another alert's revision or retraction (alertbook.py): what caused it,
    # and that alert's message, whose offset is committed with this result.
    trigger: str = ""
    answers: tuple[str, int, int] | None = None
    created: float = field(default_factory=time.monotonic)  # its queue wait counts from here

    @property
    def key(self) -> tuple[str, int, int]:
        """The alert message this job answers (a partner update: the partner's message)."""
        if self.answers is not None:
            return self.answers
        ref = self.alert.ref
        return (ref.topic, ref.partition, ref.offset)

    @property
    def result_id(self) -> uuid.UUID:
        """Deterministic; a late-data update is numbered after the alert's revision, a
        partner update named after the partner notice that caused it."""
        a = self.alert
        revision = a.revision
        if self.trigger:
            revision += f"\n{self.trigger}"
        elif self.update:
            revision += f"\nlate-data update {self.update}"
        return result_id(self.spec.label, a.alert_id, revision, str(a.role))

    @property
    def commits_offset(self) -> bool:
        """Whether an alert's offset waits for this job (all but late-data updates)."""
        return not self.update or self.answers is not None


@dataclass
class RunReport:
    """One run of one job: what went in, what came out, what it cost."""

    job: Job
    inp: AnalysisInput[Any]
    outcome: Outcome
    status: ResultStatus
    error: str | None
    cost: Cost
    supersedes: str | None
    newer: Published | None = None  # a later revision's result, out before this one came
    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    event_topics: dict[str, str] = field(default_factory=dict)
    # per detector, per key: the (start, end, value) intervals of its conditions in the window
    conditions: dict[str, dict[str, list[tuple[int, int, Any]]]] = field(default_factory=dict)
    # per detector, per key: the value at each event of the window (aligned with its columns)
    event_conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # measured by the runner around the handler (time.monotonic): job made -> run started,
    # run started -> outcome collected, and when it was collected
    queue_wait_s: float = 0.0
    wall_s: float = 0.0
    collected: float = 0.0

    @property
    def result_id(self) -> str:
        return str(self.job.result_id)


@dataclass(frozen=True)
class Retraction:
    """The RETRACTED result withdrawing one analysis's live result of a retracted alert."""

    alert: Alert
    spec: AnalysisSpec[Any]
    params: BaseModel
    supersedes: str | None

    @property
    def result_id(self) -> str:
        a = self.alert
        return str(result_id(self.spec.label, a.alert_id, a.revision, str(a.role)))
