"""EventStore: recent detector events per detector, as time-sorted numpy columns.

A consumed batch's events arrive as columns (formats/detector.py ``DecodedEvents``) and
wait in a buffer, merged into the sorted columns lazily (by a query that needs them, or
when the buffer is large), so ingestion costs a list append per batch and no object per
event, and a window query costs two binary searches. Events older than the retention are evicted.

An event's identity is (detector, event_id, time_ns): the schema promises ids unique
within a detector, and an at-least-once writer's repeat is the same record again. Repeats
are dropped when the rows are merged (only equal times need comparing) and counted; a
handler never sees one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from mmstream.formats.detector import DecodedEvents
from mmstream.model import (
    DetectorEvent,
    DetectorStatus,
    EventColumns,
    ExcludedInterval,
    Livetime,
    Window,
)
from mmstream.stream.columns import SortedColumns
from mmstream.stream.gaps import Gap, SequenceGaps
from mmstream.stream.livetime import StatusLog

_FLUSH_ROWS = 50_000
_STR = np.dtypes.StringDType()


_CORE_COLUMNS = (("event_id", _STR), ("time_ns", np.int64), ("ra_deg", np.float64),
                 ("dec_deg", np.float64), ("sigma_deg", np.float64), ("energy_gev", np.float64),
                 ("partition", np.int32), ("offset", np.int64))  # fmt: skip
_NAMES = tuple(n for n, _ in _CORE_COLUMNS)


# One batch's events waiting to be merged: (event_id, time_ns, ra_deg, dec_deg, sigma_deg,
# energy_gev, own_names, own, partitions, offsets, sizes), each column a tuple, and each of
# the batch's messages' partition, offset and number of events. A plain tuple of plain
# values, so the garbage collector stops tracking it (it never untracks a subclass, such as
# a NamedTuple: with 10^5 of those waiting, full collections took a third of ingest).
_Chunk = tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], tuple[float, ...],
               tuple[float, ...], tuple[float | None, ...], tuple[str, ...],
               tuple[tuple[Any, ...], ...], tuple[int, ...], tuple[int, ...],
               tuple[int, ...]]  # fmt: skip
_IDS: Final = 0
_TIMES: Final = 1
_RA: Final = 2
_DEC: Final = 3
_SIGMA: Final = 4
_ENERGY: Final = 5
_OWN_NAMES: Final = 6
_OWN: Final = 7
_PARTITIONS: Final = 8
_OFFSETS: Final = 9
_SIZES: Final = 10


@dataclass
class _DetectorBuffer:
    cols: SortedColumns
    chunks: list[_Chunk] = field(default_factory=list)  # not yet merged into ``cols``
    size: int = 0  # events in ``chunks``
    pending: set[tuple[int, str]] = field(default_factory=set)  # (time, id) in chunks
    indexed: int = 0  # chunks[:indexed] are in ``pending`` (built on a late event only)
    watermark_ns: int | None = None
    own: tuple[tuple[str, str], ...] = ()  # (name, column kind) of the detector's own fields


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
        """Buffer one event made as an object (tools, tests); the feed adds columns."""
        own = [n for n, _ in self.own_fields.get(event.detector, ())]
        gaps = self.add_events(DecodedEvents.of([event], own), partition, offset)
        return gaps[0] if gaps else None

    def add_events(self, events: DecodedEvents, partition: int, offset: int) -> Sequence[Gap]:
        """Buffer one message's (validated) events; returns the holes in their sources'
        sequences they revealed."""
        return self.add_messages(events, (partition,), (offset,), (events.size,))

    def add_messages(
        self, events: DecodedEvents, partitions: Sequence[int], offsets: Sequence[int],
        sizes: Sequence[int],
    ) -> Sequence[Gap]:  # fmt: skip
        """Buffer the (validated) events of several messages of one detector, in message
        order: message i holds ``sizes[i]`` of them and came from ``partitions[i]`` at
        ``offsets[i]``. Returns the holes in their sources' sequences they revealed."""
        n = events.size
        if not n:
            return ()
        detector = events.detector[0]
        buf = self._buffer(detector)
        buf.chunks.append((events.event_id, events.time_ns, events.ra_deg, events.dec_deg,
                           events.sigma_deg, events.energy_gev, events.own_names, events.own,
                           tuple(partitions), tuple(offsets), tuple(sizes)))  # fmt: skip
        buf.size += n
        if buf.size >= _FLUSH_ROWS:
            self._flush(buf)
        if any(events.derived_from):
            for eid, t, parents in zip(events.event_id, events.time_ns, events.derived_from,
                                       strict=True):  # fmt: skip
                if parents:
                    self._parents[eid] = (t, tuple(parents))
        return self.gaps.add_many(detector, events.source, events.seq, events.time_ns)

    def _buffer(self, detector: str) -> _DetectorBuffer:
        buf = self._detectors.get(detector)
        if buf is None:
            own = self.own_fields.get(detector, ())
            empty = {n: np.empty(0, t) for n, t in _CORE_COLUMNS}
            empty.update((n, _column([], k)) for n, k in own)
            cols = SortedColumns(empty, time="time_ns", key="event_id")
            buf = self._detectors[detector] = _DetectorBuffer(cols=cols, own=own)
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

    def holds(self, detector: str, event_id: str, time_ns: int) -> bool:
        """Whether an event with this identity (detector, event_id, time) is in the store."""
        buf = self._detectors.get(detector)
        if buf is None:
            return False
        for chunk in buf.chunks[buf.indexed :]:  # indexed on demand: late events only
            buf.pending.update(zip(chunk[_TIMES], chunk[_IDS], strict=True))
        buf.indexed = len(buf.chunks)
        if (time_ns, event_id) in buf.pending:
            return True
        times = buf.cols.view("time_ns")  # searched as they are: no merge for this
        lo = int(np.searchsorted(times, time_ns, side="left"))
        hi = int(np.searchsorted(times, time_ns, side="right"))
        return bool(np.any(buf.cols.view("event_id")[lo:hi] == event_id))

    def take_duplicates(self) -> dict[str, int]:
        """Repeated events dropped since the last call, per detector (for the metrics). They
        are found when rows are merged (a window query reaching the waiting events, the
        eviction every minute, or every 50,000 events), not before: merging on every call
        would cost a copy of the columns each turn of the loop."""
        taken, self._duplicates = self._duplicates, {}
        return taken

    def newest_ns(self, detector: str) -> int | None:
        """The latest event time held for ``detector`` (None before its first event)."""
        buf = self._detectors.get(detector)
        if buf is None:
            return None
        self._flush(buf)  # columns are in time order
        return int(buf.cols.view("time_ns")[-1]) if len(buf.cols) else None

    def watermark(self, detector: str) -> int | None:
        buf = self._detectors.get(detector)
        return None if buf is None else buf.watermark_ns

    def detectors(self) -> list[str]:
        return sorted(self._detectors)

    def __len__(self) -> int:
        return sum(len(b.cols) + b.size for b in self._detectors.values())

    def window(self, detector: str, window: Window) -> EventColumns:
        """Copies of the events with start <= time <= end, in time order. Events still
        waiting to be merged are merged first, unless all are later than the window: while
        a detector streams live, an alert's (closed) window is in the past, and merging up
        to 50,000 waiting rows took ~10-20 ms of its latency."""
        buf = self._detectors.get(detector)
        if buf is None:
            return self._empty(detector)
        # the waiting events' earliest time, found here (an alert's query), not kept on ingest
        if buf.chunks and min(min(c[_TIMES]) for c in buf.chunks) <= window.end_ns:
            self._flush(buf)
        c = buf.cols
        lo = int(np.searchsorted(c.view("time_ns"), window.start_ns, side="left"))
        hi = int(np.searchsorted(c.view("time_ns"), window.end_ns, side="right"))
        return EventColumns(detector=detector,
                            **{n: c.view(n)[lo:hi].copy() for n in _NAMES},
                            fields={n: c.view(n)[lo:hi].copy() for n, _ in buf.own})  # fmt: skip

    def evict(self, now_ns: int) -> int:
        """Drop events older than the retention; returns how many were dropped."""
        cutoff = now_ns - self.retention_ns
        dropped = 0
        for buf in self._detectors.values():
            self._flush(buf)
            cut = int(np.searchsorted(buf.cols.view("time_ns"), cutoff, side="left"))
            if cut:
                buf.cols.drop_before(cut)
                dropped += cut
        for log in self._status.values():
            log.evict(cutoff)
        self.gaps.evict(cutoff)
        self._parents = {k: v for k, v in self._parents.items() if v[0] >= cutoff}
        if dropped:
            self.covered_from_ns = max(self.covered_from_ns or cutoff, cutoff)
        return dropped

    def _flush(self, buf: _DetectorBuffer) -> None:
        if not buf.chunks:
            return
        chunks = buf.chunks

        def column(i: int) -> list[Any]:
            return list(itertools.chain.from_iterable(cast(tuple[Any, ...], c[i]) for c in chunks))

        sizes = column(_SIZES)
        new = {
            "event_id": np.array(column(_IDS), dtype=_STR),
            "time_ns": np.array(column(_TIMES), np.int64),
            "ra_deg": np.array(column(_RA), np.float64),
            "dec_deg": np.array(column(_DEC), np.float64),
            "sigma_deg": np.array(column(_SIGMA), np.float64),
            "energy_gev": np.array(column(_ENERGY), np.float64),  # None (no energy): NaN
            "partition": np.repeat(np.array(column(_PARTITIONS), np.int32), sizes),
            "offset": np.repeat(np.array(column(_OFFSETS), np.int64), sizes),
        }
        new.update((name, _column(_own_values(chunks, name), kind)) for name, kind in buf.own)
        buf.chunks, buf.size, buf.pending, buf.indexed = [], 0, set(), 0
        if repeats := buf.cols.merge(new, _repeats):
            detector = next(d for d, b in self._detectors.items() if b is buf)
            self._duplicates[detector] = self._duplicates.get(detector, 0) + repeats

    def _empty(self, detector: str) -> EventColumns:
        fields = {n: _column([], k) for n, k in self.own_fields.get(detector, ())}
        return EventColumns(detector=detector, **{n: np.empty(0, t) for n, t in _CORE_COLUMNS},
                            fields=fields)  # fmt: skip


def _own_values(chunks: list[_Chunk], name: str) -> list[Any]:
    """One own field's values over the chunks (None where a message lacks the field)."""
    out: list[Any] = []
    for c in chunks:
        names = c[_OWN_NAMES]
        out.extend(c[_OWN][names.index(name)] if name in names else [None] * len(c[_TIMES]))
    return out


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
