"""EventStore: recent detector events per detector, as time-sorted numpy columns.

Appends go to a small row buffer and are merged into the sorted columns lazily (on a
query, or when the buffer is large), so ingestion costs a list append per event and a
window query costs two binary searches. Events older than the retention are evicted.

An event's identity is (detector, event_id, time_ns): the schema promises ids unique
within a detector, and an at-least-once writer's repeat is the same record again. Repeats
are dropped when the rows are merged (only equal times need comparing) and counted; a
handler never sees one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mmstream.model import (
    DetectorEvent,
    DetectorStatus,
    EventColumns,
    ExcludedInterval,
    Livetime,
    Window,
)
from mmstream.stream.gaps import Gap, SequenceGaps
from mmstream.stream.livetime import StatusLog

_FLUSH_ROWS = 50_000
_STR = np.dtypes.StringDType()


@dataclass
class _Columns:
    event_id: npt.NDArray[Any] = field(default_factory=lambda: np.empty(0, dtype=_STR))
    time_ns: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    ra_deg: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    dec_deg: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    sigma_deg: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    energy_gev: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    partition: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    offset: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    fields: dict[str, npt.NDArray[Any]] = field(default_factory=dict)  # the detector's own

    NAMES = (
        "event_id",
        "time_ns",
        "ra_deg",
        "dec_deg",
        "sigma_deg",
        "energy_gev",
        "partition",
        "offset",
    )


@dataclass
class _DetectorBuffer:
    cols: _Columns = field(default_factory=_Columns)
    rows: list[tuple[str, int, float, float, float, float, int, int]] = field(default_factory=list)
    pending: set[tuple[int, str]] = field(default_factory=set)  # (time, id) of the rows
    watermark_ns: int | None = None
    own: tuple[tuple[str, str], ...] = ()  # (name, column kind) of the detector's own fields
    own_rows: list[tuple[Any, ...]] = field(default_factory=list)  # beside ``rows``


class EventStore:
    """Per-detector time-sorted events; ``covered_from_ns`` is where the store's memory begins."""

    def __init__(
        self, retention_ns: int, covered_from_ns: int | None = None,
        fields: dict[str, tuple[tuple[str, str], ...]] | None = None,
    ) -> None:  # fmt: skip
        self.retention_ns = retention_ns
        self.covered_from_ns = covered_from_ns
        self.own_fields = dict(fields or {})  # per detector: (name, kind) of its own fields
        self._detectors: dict[str, _DetectorBuffer] = {}
        self._status: dict[str, StatusLog] = {}
        self.gaps = SequenceGaps()
        # derived-from ids of the events that have them (for the ledger's lineage)
        self._parents: dict[str, tuple[int, tuple[str, ...]]] = {}
        self._duplicates: dict[str, int] = {}  # repeats dropped, per detector, not yet taken

    def add(self, event: DetectorEvent, partition: int, offset: int) -> Gap | None:
        """Buffer one event; returns the hole in its source's sequence it revealed, if any."""
        buf = self._buffer(event.detector)
        energy = np.nan if event.energy_gev is None else event.energy_gev
        if buf.own:
            buf.own_rows.append(tuple(event.fields.get(n) for n, _ in buf.own))
        buf.rows.append(
            (
                event.event_id,
                event.time_ns,
                event.ra_deg,
                event.dec_deg,
                event.sigma_deg,
                energy,
                partition,
                offset,
            )
        )
        buf.pending.add((event.time_ns, event.event_id))
        if len(buf.rows) >= _FLUSH_ROWS:
            self._flush(buf)
        if event.derived_from:
            self._parents[event.event_id] = (event.time_ns, tuple(event.derived_from))
        return self.gaps.add(event.detector, event.source, event.seq, event.time_ns)

    def _buffer(self, detector: str) -> _DetectorBuffer:
        buf = self._detectors.get(detector)
        if buf is None:
            own = self.own_fields.get(detector, ())
            buf = self._detectors[detector] = _DetectorBuffer(
                cols=_Columns(fields={n: _column([], k) for n, k in own}), own=own
            )
        return buf

    def advance_watermark(self, detector: str, time_ns: int) -> None:
        """Move a detector's watermark: all its events up to ``time_ns`` are in the store."""
        buf = self._buffer(detector)
        if buf.watermark_ns is None or time_ns > buf.watermark_ns:
            buf.watermark_ns = time_ns

    def add_status(self, status: DetectorStatus) -> None:
        """Record the detector's state; the service moves the watermark (watermarks.py)."""
        self._status.setdefault(status.detector, StatusLog()).add(status)

    def livetime(
        self, detector: str, window: Window, max_gap_ns: int,
        excluded: list[ExcludedInterval] | None = None,
    ) -> Livetime | None:  # fmt: skip
        """The window's livetime from the status reports, less the data gaps and ``excluded``
        (time a condition rule throws out)."""
        log = self._status.get(detector)
        if log is None:
            return None
        out = [*self.gaps.excluded(detector, window), *(excluded or [])]
        return log.livetime(detector, window, max_gap_ns, out)

    def parents_of(self, event_id: str) -> tuple[str, ...]:
        """The ids this event was derived from (empty if none, or unknown)."""
        entry = self._parents.get(event_id)
        return entry[1] if entry else ()

    def ancestry(self, event_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Derived-from edges reachable from these events, as far down as the store knows."""
        edges: dict[str, tuple[str, ...]] = {}
        if not self._parents:
            return edges
        frontier = [e for e in map(str, event_ids) if e in self._parents]
        while frontier:
            nxt: list[str] = []
            for eid in frontier:
                if eid not in edges and (parents := self.parents_of(eid)):
                    edges[eid] = parents
                    nxt.extend(parents)
            frontier = nxt
        return edges

    def holds(self, event: DetectorEvent) -> bool:
        """Whether an event with this identity (detector, event_id, time) is in the store."""
        buf = self._detectors.get(event.detector)
        if buf is None:
            return False
        if (event.time_ns, event.event_id) in buf.pending:
            return True
        c = buf.cols  # searched as they are: merging the rows would copy every column
        lo = int(np.searchsorted(c.time_ns, event.time_ns, side="left"))
        hi = int(np.searchsorted(c.time_ns, event.time_ns, side="right"))
        return bool(np.any(c.event_id[lo:hi] == event.event_id))

    def take_duplicates(self) -> dict[str, int]:
        """Repeated events dropped since the last call, per detector (for the metrics). They
        are found when rows are merged (a window query, or every 50,000 events), not before:
        merging on every call would cost a copy of the columns each turn of the loop."""
        taken, self._duplicates = self._duplicates, {}
        return taken

    def newest_ns(self, detector: str) -> int | None:
        """The latest event time held for ``detector`` (None before its first event)."""
        buf = self._detectors.get(detector)
        if buf is None:
            return None
        self._flush(buf)  # columns are in time order
        return int(buf.cols.time_ns[-1]) if buf.cols.time_ns.size else None

    def watermark(self, detector: str) -> int | None:
        buf = self._detectors.get(detector)
        return None if buf is None else buf.watermark_ns

    def detectors(self) -> list[str]:
        return sorted(self._detectors)

    def __len__(self) -> int:
        return sum(b.cols.time_ns.size + len(b.rows) for b in self._detectors.values())

    def window(self, detector: str, window: Window) -> EventColumns:
        """Copies of the events with start <= time <= end, in time order."""
        buf = self._detectors.get(detector)
        if buf is None:
            return self._empty(detector)
        self._flush(buf)
        c = buf.cols
        lo = int(np.searchsorted(c.time_ns, window.start_ns, side="left"))
        hi = int(np.searchsorted(c.time_ns, window.end_ns, side="right"))
        return EventColumns(detector=detector,
                            **{n: getattr(c, n)[lo:hi].copy() for n in _Columns.NAMES},
                            fields={k: v[lo:hi].copy() for k, v in c.fields.items()})  # fmt: skip

    def evict(self, now_ns: int) -> int:
        """Drop events older than the retention; returns how many were dropped."""
        cutoff = now_ns - self.retention_ns
        dropped = 0
        for buf in self._detectors.values():
            self._flush(buf)
            cut = int(np.searchsorted(buf.cols.time_ns, cutoff, side="left"))
            if cut:
                for name in _Columns.NAMES:
                    setattr(buf.cols, name, getattr(buf.cols, name)[cut:])
                buf.cols.fields = {k: v[cut:] for k, v in buf.cols.fields.items()}
                dropped += cut
        for log in self._status.values():
            log.evict(cutoff)
        self.gaps.evict(cutoff)
        self._parents = {k: v for k, v in self._parents.items() if v[0] >= cutoff}
        if dropped:
            self.covered_from_ns = max(self.covered_from_ns or cutoff, cutoff)
        return dropped

    def _flush(self, buf: _DetectorBuffer) -> None:
        if not buf.rows:
            return
        ids, times, ras, decs, sigmas, energies, parts, offs = zip(*buf.rows, strict=True)
        own = list(zip(*buf.own_rows, strict=True)) if buf.own_rows else [()] * len(buf.own)
        buf.rows, buf.own_rows = [], []
        buf.pending = set()
        new = [
            np.array(ids, dtype=_STR),
            np.array(times, np.int64),
            np.array(ras),
            np.array(decs),
            np.array(sigmas),
            np.array(energies),
            np.array(parts, np.int32),
            np.array(offs, np.int64),
        ]
        names = [*_Columns.NAMES, *(n for n, _ in buf.own)]
        new += [_column(list(v), k) for (_, k), v in zip(buf.own, own, strict=True)]
        old = [*(getattr(buf.cols, n) for n in _Columns.NAMES),
               *(buf.cols.fields[n] for n, _ in buf.own)]  # fmt: skip
        merged = [np.concatenate([o, a]) for o, a in zip(old, new, strict=True)]
        order = np.argsort(merged[1], kind="stable")
        if not np.all(order[:-1] < order[1:]):
            merged = [m[order] for m in merged]
        repeats = _repeats(merged[1], merged[0])
        if repeats.size:
            keep = np.ones(merged[1].size, dtype=bool)
            keep[repeats] = False
            merged = [m[keep] for m in merged]
            detector = next(d for d, b in self._detectors.items() if b is buf)
            self._duplicates[detector] = self._duplicates.get(detector, 0) + int(repeats.size)
        for name, arr in zip(_Columns.NAMES, merged, strict=False):
            setattr(buf.cols, name, arr)
        buf.cols.fields = dict(zip(names[len(_Columns.NAMES):], merged[len(_Columns.NAMES):],
                                   strict=True))  # fmt: skip

    def _empty(self, detector: str) -> EventColumns:
        c = _Columns()
        fields = {n: _column([], k) for n, k in self.own_fields.get(detector, ())}
        return EventColumns(detector=detector, **{n: getattr(c, n) for n in _Columns.NAMES},
                            fields=fields)  # fmt: skip


def _column(values: list[Any], kind: str) -> npt.NDArray[Any]:
    """A typed column of one of the detector's own fields (formats/detector_schema.py)."""
    if kind == "str":
        return np.array(["" if v is None else str(v) for v in values], dtype=_STR)
    if kind == "object":
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    if any(v is None for v in values):  # an integer or boolean field may lack a value too
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values, dtype=kind)


def _repeats(times: npt.NDArray[np.int64], ids: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Indices of later copies of an (event_id, time) seen earlier, in time-sorted columns.
    Only runs of equal times can hold repeats; they are rare, so they are looped over."""
    tied = np.flatnonzero(times[1:] == times[:-1])
    if tied.size == 0:
        return np.empty(0, dtype=np.intp)
    out: list[int] = []
    starts = tied[np.r_[True, np.diff(tied) > 1]]  # first index of each run of equal times
    for start in starts.tolist():
        end = start + 1
        while end < times.size and times[end] == times[start]:
            end += 1
        seen: set[str] = set()
        for i in range(start, end):
            eid = str(ids[i])
            if eid in seen:
                out.append(i)
            seen.add(eid)
    return np.asarray(out, dtype=np.intp)
