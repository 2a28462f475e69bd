"""What a handler receives and returns: typed, with no Kafka, no clock and no files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel

from mmstream.model import (
    NS_PER_S,
    Alert,
    AlertType,
    DetectorEvent,
    EventColumns,
    Livetime,
    Localization,
    Role,
    SourceRef,
    Window,
)
from mmstream.ops.logging import get_logger

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Previous:
    """The last result this analysis published for this alert (an earlier revision's)."""

    result_id: str
    revision: str
    retracted: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler may use beside its data: a logger bound to the run, the previous
    result for this alert, and what the analysis's ``setup`` hook made (once per process)."""

    fields: Mapping[str, str] = field(default_factory=dict)  # alert_id, revision, analysis
    previous: Previous | None = None
    resources: Any = None

    @property
    def log(self) -> Any:
        """A structlog logger bound to this run (analysis, alert, revision)."""
        return get_logger("mmstream.analysis").bind(**self.fields)


@dataclass(frozen=True, slots=True)
class OtherAlert:
    """Another alert in this one's window, as the service holds it: its latest revision,
    when its first revision reached Kafka, and whether it has been retracted since."""

    alert: Alert
    first_seen_ns: int
    retracted: bool = False


@dataclass(frozen=True, slots=True)
class DetectorConditions:
    """A detector's conditions for the keys an analysis declares (``@analysis(conditions=)``):
    the value in effect at each event of the window (aligned with ``inp.events[detector]``,
    None where unknown) and the (start_ns, end_ns, value) intervals over the window."""

    at: Mapping[str, Any] = field(default_factory=dict)  # key -> numpy object array
    intervals: Mapping[str, tuple[tuple[int, int, Any], ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AnalysisInput(Generic[P]):
    """Everything a handler may look at: no Kafka, no clock, no files."""

    alert: Alert
    window: Window
    events: Mapping[str, EventColumns]
    params: P
    complete: bool = True
    notes: tuple[str, ...] = ()
    livetime: Mapping[str, Livetime | None] = field(default_factory=dict)
    context: Context = field(default_factory=Context)
    # other alerts in the window, of the kinds the analysis reads (``@analysis(alerts=...)``),
    # that reached us before this one did: whichever of two arrives second triggers
    alerts: tuple[OtherAlert, ...] = ()
    conditions: Mapping[str, DetectorConditions] = field(default_factory=dict)  # per detector

    @classmethod
    def for_test(
        cls,
        params: P,
        events: Iterable[DetectorEvent] = (),
        *,
        alert_time_ns: int = 1_800_000_000 * NS_PER_S,
        window: tuple[float, float] = (-500.0, 500.0),
        localization: Localization | None = None,
        source: str = "LVK",
        alert_type: AlertType = AlertType.PRELIMINARY,
        livetime: Mapping[str, Livetime | None] | None = None,
        complete: bool = True,
        far_hz: float | None = None,
        alert_id: str = "TEST1",
        extra: Mapping[str, Any] | None = None,
        alerts: Iterable[OtherAlert] = (),
    ) -> AnalysisInput[P]:
        """An input for a unit test: the alert made up, the events as columns per detector
        (those outside the window dropped), no hand-built arrays."""
        alert = Alert(alert_id, "1", alert_type, Role.TEST, source, alert_time_ns, far_hz,
                      localization, SourceRef("test", 0, 0, "test"), dict(extra or {}))  # fmt: skip
        span = Window.around(alert_time_ns, *window)
        by_detector: dict[str, list[DetectorEvent]] = {}
        for e in sorted(events, key=lambda e: e.time_ns):
            if span.start_ns <= e.time_ns <= span.end_ns:
                by_detector.setdefault(e.detector, []).append(e)
        columns = {d: columns_of(d, es) for d, es in by_detector.items()}
        return cls(alert, span, columns, params, complete, (), dict(livetime or {}),
                   alerts=tuple(alerts))  # fmt: skip

    def livetime_fraction(self) -> float | None:
        """The lowest live fraction among the detectors that report status; None if none do."""
        known = [lt.fraction for lt in self.livetime.values() if lt is not None]
        return min(known) if known else None


@dataclass(frozen=True, slots=True)
class CoincidentEvent:
    """A detector event a result reports on, with per-event values (e.g. ``dt_s``)."""

    event_id: str
    detector: str
    time_ns: int
    ra_deg: float
    dec_deg: float
    sigma_deg: float
    values: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, cols: EventColumns, i: int, values: Mapping[str, float]) -> CoincidentEvent:
        """Event ``i`` of the window's columns, with the handler's values for it."""
        return cls(str(cols.event_id[i]), cols.detector, int(cols.time_ns[i]),
                   float(cols.ra_deg[i]), float(cols.dec_deg[i]), float(cols.sigma_deg[i]),
                   values)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler returns: a summary line, numbers, and the events it speaks of."""

    summary: str
    statistics: Mapping[str, float] = field(default_factory=dict)
    events: tuple[CoincidentEvent, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    insufficient_livetime: bool = False
    notice: Mapping[str, Any] | None = None  # a JSON notice for outside observatories


def columns_of(detector: str, events: list[DetectorEvent]) -> EventColumns:
    """Events as the columns a handler receives (partition 0, offsets in order), with the
    detector's own fields as columns (numbers as float, anything else as strings)."""
    n = len(events)
    names = sorted({k for e in events for k in e.fields})
    fields: dict[str, Any] = {}
    for name in names:
        values = [e.fields.get(name) for e in events]
        numeric = all(isinstance(v, int | float) or v is None for v in values)
        fields[name] = (np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                        if numeric else np.array(["" if v is None else str(v) for v in values],
                                                 dtype=np.dtypes.StringDType()))  # fmt: skip
    return EventColumns(
        detector=detector,
        event_id=np.array([e.event_id for e in events], dtype=object),
        time_ns=np.array([e.time_ns for e in events], dtype=np.int64),
        ra_deg=np.array([e.ra_deg for e in events], dtype=np.float64),
        dec_deg=np.array([e.dec_deg for e in events], dtype=np.float64),
        sigma_deg=np.array([e.sigma_deg for e in events], dtype=np.float64),
        energy_gev=np.array(
            [np.nan if e.energy_gev is None else e.energy_gev for e in events], dtype=np.float64
        ),
        partition=np.zeros(n, dtype=np.int32),
        offset=np.arange(n, dtype=np.int64),
        fields=fields,
    )


def livetime_shortfall(inp: AnalysisInput[Any], minimum: float) -> Outcome | None:
    """An "insufficient livetime" outcome when the detector was down too much, else None.

    Says so rather than "no coincidence": an empty window while the detector was off is
    not evidence of absence.
    """
    fraction = inp.livetime_fraction()
    if fraction is None or fraction >= minimum:
        return None
    reasons = sorted({e.reason for lt in inp.livetime.values() if lt for e in lt.excluded})
    return Outcome(
        summary=f"insufficient livetime: {fraction:.1%} of the window (< {minimum:.0%}); "
        f"excluded: {'; '.join(reasons) or 'unknown'}",
        statistics={"livetime_fraction": fraction, "min_livetime_fraction": minimum},
        insufficient_livetime=True,
    )
