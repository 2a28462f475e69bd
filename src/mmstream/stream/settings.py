"""The stream's own settings: small frozen objects, one per stage, built by the caller.

Stages never read :mod:`mmstream.config`; ``Settings.stream()`` makes these from the typed
configuration, and a test or a benchmark can build them directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmstream.formats.detector_schema import DetectorSchema
from mmstream.formats.limits import Limits
from mmstream.stream.conditions import ContextRule


@dataclass(frozen=True)
class Topics:
    """Every topic the service reads or writes, by role."""

    alerts: tuple[str, ...] = ("igwn.gwalert",)  # names, or ^regex patterns
    detectors: tuple[str, ...] = ("icecube",)
    result_prefix: str = "mmstream.results."
    notice_prefix: str = "mmstream.notices."
    deadletter: str = "mmstream.deadletter"
    heartbeats: tuple[str, ...] = ()  # upstream heartbeat topics (e.g. gcn.heartbeat)
    stats: str = "mmstream.stats.runs"  # each run's cost (stream/runstats.py)

    def events(self, detector: str) -> str:
        return f"detector.{detector}.events"

    def status(self, detector: str) -> str:
        return f"detector.{detector}.status"

    def context(self, detector: str) -> str:
        return f"detector.{detector}.context"

    def result(self, analysis: str) -> str:
        return f"{self.result_prefix}{analysis}"

    def notice(self, analysis: str) -> str:
        return f"{self.notice_prefix}{analysis}"

    def detector_of(self) -> dict[str, str]:
        """A detector's name comes from the topic it is on (configuration), never content."""
        return {t: d for d in self.detectors
                for t in (self.events(d), self.status(d), self.context(d))}  # fmt: skip


@dataclass(frozen=True)
class AnalysisPolicy:
    """One analysis's configuration: on or off, its window, parameters and limits."""

    enabled: bool = True
    window: tuple[float, float] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    time_limit_s: float | None = None
    memory_limit_mb: float | None = None


@dataclass(frozen=True)
class SchedulePolicy:
    """When a job runs, and what happens to revisions, tests and late data."""

    max_wait_s: float = 600.0
    test_alerts: Literal["process", "skip"] = "process"
    late_events: Literal["count", "rerun"] = "count"
    late_watch_s: float = 3600.0
    late_settle_s: float = 2.0


@dataclass(frozen=True)
class RunLimits:
    """How analyses run: worker processes (0: inline, on the loop's thread) and limits."""

    workers: int = 1
    time_limit_s: float = 600.0
    memory_limit_mb: float | None = 4096.0
    measure_memory: bool = True
    max_status_gap_s: float = 300.0


@dataclass(frozen=True)
class StreamSettings:
    """Everything the service wires its stages from."""

    kafka: Mapping[str, Any]
    instance: str = "mmstream"
    group_id: str = "mmstream"
    topics: Topics = field(default_factory=Topics)
    schedule: SchedulePolicy = field(default_factory=SchedulePolicy)
    run: RunLimits = field(default_factory=RunLimits)
    limits: Limits = field(default_factory=Limits)
    analyses: Mapping[str, AnalysisPolicy] = field(default_factory=dict)
    routes: Mapping[str, str] = field(default_factory=dict)
    lookback_s: float = 6 * 3600.0
    stall_limit_s: float = 120.0
    create_topics: bool = True
    archive_dir: Path | None = None  # None: no raw archive
    heartbeat_max_gap_s: float = 60.0  # an upstream silent longer is reported down
    detector_schemas: Mapping[str, DetectorSchema] = field(default_factory=dict)
    context_rules: tuple[ContextRule, ...] = ()

    def policy(self, analysis: str) -> AnalysisPolicy:
        return self.analyses.get(analysis) or AnalysisPolicy()
