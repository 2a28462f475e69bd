"""The normalized data model shared by decoders, the event store, analyses and publishers.

All times are UTC nanoseconds since the Unix epoch as Python ints / numpy int64: exact,
cheap to compare, and independent of any library's time type. astropy Time is used only
at the edges (parsing and printing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

NS_PER_S = 1_000_000_000


class AlertType(StrEnum):
    EARLYWARNING = "EARLYWARNING"
    PRELIMINARY = "PRELIMINARY"
    INITIAL = "INITIAL"
    UPDATE = "UPDATE"
    RETRACTION = "RETRACTION"


class ResultStatus(StrEnum):
    """A result's status, as the result schema's enum spells it."""

    COMPLETED = "COMPLETED"  # every detector's data passed the window end
    INCOMPLETE = "INCOMPLETE"  # ran at the deadline, or without data for part of the window
    INSUFFICIENT_LIVETIME = "INSUFFICIENT_LIVETIME"  # below the analysis's minimum livetime
    NOT_APPLICABLE = "NOT_APPLICABLE"  # the alert lacks what the analysis needs
    FAILED = "FAILED"  # the handler raised, exceeded its memory, or its worker died
    TIMED_OUT = "TIMED_OUT"  # stopped at the analysis's time limit
    RETRACTED = "RETRACTED"  # withdraws the result named in supersedes


class Role(StrEnum):
    OBSERVATION = "observation"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a message came from: enough to fetch the exact bytes again from Kafka."""

    topic: str
    partition: int
    offset: int
    format: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "format": self.format,
        }


@dataclass(frozen=True, slots=True)
class MultiOrderSkyMap:
    """A multi-order (NUNIQ) HEALPix map: probability density per pixel, in sr^-1."""

    uniq: npt.NDArray[np.int64]
    probdensity: npt.NDArray[np.float64]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlatSkyMap:
    """A single-resolution HEALPix map of probability per pixel (sums to 1)."""

    nside: int
    nest: bool
    prob: npt.NDArray[np.float64]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Circle:
    """A circular error region: ``radius_deg`` contains ``containment`` of the probability."""

    ra_deg: float
    dec_deg: float
    radius_deg: float
    containment: float


@dataclass(frozen=True, slots=True)
class Ellipse:
    """An elliptical error region (semi-axes in degrees, position angle east of north)."""

    ra_deg: float
    dec_deg: float
    semi_major_deg: float
    semi_minor_deg: float
    position_angle_deg: float
    containment: float


Localization = MultiOrderSkyMap | FlatSkyMap | Circle | Ellipse


@dataclass(frozen=True, slots=True)
class Alert:
    """One external alert, normalized across wire formats.

    ``revision`` distinguishes successive notices about the same ``alert_id``; a notice
    seen twice has the same (alert_id, revision) and must yield the same result id.
    """

    alert_id: str
    revision: str
    alert_type: AlertType
    role: Role
    source: str
    time_ns: int | None
    far_hz: float | None
    localization: Localization | None
    ref: SourceRef
    extra: dict[str, Any] = field(default_factory=dict)
    # When the sender made this notice (IGWN time_created, GCN alert_datetime, VOEvent
    # Who/Date): revisions are ordered by it, not by when they reached us.
    sent_ns: int | None = None

    @property
    def skymap(self) -> MultiOrderSkyMap | None:
        """The multi-order sky map, where the localization is one."""
        loc = self.localization
        return loc if isinstance(loc, MultiOrderSkyMap) else None


@dataclass(frozen=True, slots=True)
class DetectorEvent:
    """One event of our own detector, as carried by a single ``detector.<d>.events`` message."""

    event_id: str
    detector: str
    seq: int
    time_ns: int
    ra_deg: float
    dec_deg: float
    sigma_deg: float
    energy_gev: float | None = None
    derived_from: tuple[str, ...] = ()
    source: str = ""
    # the detector's own fields (its schema's beyond the core ones: formats/detector_schema.py)
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContextChange:
    """From ``time_ns`` on, the detector's condition ``key`` has ``value`` (None: unknown)."""

    detector: str
    seq: int
    time_ns: int
    key: str
    value: str | float | int | bool | None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Window:
    """An event-time window [start_ns, end_ns] around an alert."""

    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        if self.end_ns < self.start_ns:
            raise ValueError(f"window ends before it starts: {self.start_ns} > {self.end_ns}")

    @classmethod
    def around(cls, t_ns: int, before_s: float, after_s: float) -> Window:
        """Window [t + before_s, t + after_s]; ``before_s`` is usually negative."""
        return cls(t_ns + round(before_s * NS_PER_S), t_ns + round(after_s * NS_PER_S))

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S


@dataclass(frozen=True, slots=True)
class EventColumns:
    """Detector events as parallel numpy columns, sorted by time: what a handler receives."""

    detector: str
    event_id: npt.NDArray[Any]
    time_ns: npt.NDArray[np.int64]
    ra_deg: npt.NDArray[np.float64]
    dec_deg: npt.NDArray[np.float64]
    sigma_deg: npt.NDArray[np.float64]
    energy_gev: npt.NDArray[np.float64]
    partition: npt.NDArray[np.int32]
    offset: npt.NDArray[np.int64]
    # the detector's own fields, one typed column each (formats/detector_schema.py)
    fields: Mapping[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])

    def nbytes(self) -> int:
        """Bytes of the columns' arrays (object columns: their pointers, not the strings)."""
        arrays = (self.event_id, self.time_ns, self.ra_deg, self.dec_deg, self.sigma_deg,
                  self.energy_gev, self.partition, self.offset, *self.fields.values())  # fmt: skip
        return sum(int(a.nbytes) for a in arrays)

    def take(self, index: npt.NDArray[Any]) -> EventColumns:
        return EventColumns(
            detector=self.detector,
            event_id=self.event_id[index],
            time_ns=self.time_ns[index],
            ra_deg=self.ra_deg[index],
            dec_deg=self.dec_deg[index],
            sigma_deg=self.sigma_deg[index],
            energy_gev=self.energy_gev[index],
            partition=self.partition[index],
            offset=self.offset[index],
            fields={k: v[index] for k, v in self.fields.items()},
        )


@dataclass(frozen=True, slots=True)
class DetectorStatus:
    """A heartbeat: data up to ``time_ns`` has been sent, and the detector is GOOD or BAD."""

    detector: str
    seq: int
    time_ns: int
    state: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExcludedInterval:
    """A stretch of a window without good detector data, and why."""

    start_ns: int
    end_ns: int
    reason: str


@dataclass(frozen=True, slots=True)
class Livetime:
    """How much of a window a detector was taking good data, and what was left out."""

    detector: str
    fraction: float
    live_s: float
    excluded: tuple[ExcludedInterval, ...] = ()
