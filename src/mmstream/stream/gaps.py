"""Missing detector events, found from per-source sequence numbers.

Each of a detector's writers (``source``) numbers its events 0, 1, 2, ... in time order.
The tracker keeps, per source, the runs of consecutive numbers it has seen. Between two
runs some events are missing: the time between the last event before the hole and the
first event after it is a *data gap*, excluded from livetime with that reason. When the
missing events turn up later (a late delivery, a replay), the hole shrinks or closes and
the time counts as live again.

Per detector the tracker keeps how many events are missing now (``open_events``) and how
many arrived in a hole (*healed*): found = healed + open + forgotten (holes older than the
history held, dropped by :meth:`SequenceGaps.evict`). :meth:`SequenceGaps.take_changes`
hands the changes to the metrics once per batch.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mmstream.model import ExcludedInterval, Window


@dataclass
class _Run:
    """Consecutive sequence numbers lo..hi seen, with the times of the two ends."""

    lo: int
    hi: int
    t_lo: int
    t_hi: int


@dataclass(frozen=True, slots=True)
class Gap:
    """A hole in one source's sequence: events first..last missing between two times."""

    detector: str
    source: str
    first: int
    last: int
    start_ns: int
    end_ns: int

    @property
    def missing(self) -> int:
        return self.last - self.first + 1

    @property
    def reason(self) -> str:
        who = f"source {self.source!r}, " if self.source else ""
        return f"data gap: {self.missing} event(s) missing ({who}seq {self.first}..{self.last})"


@dataclass(frozen=True, slots=True)
class GapChange:
    """A detector's gap totals after a change: events missing now, and events that arrived
    in a hole (late) since the previous :meth:`SequenceGaps.take_changes`."""

    open_events: int
    healed_events: int


@dataclass
class _Source:
    runs: list[_Run] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # run.lo, for bisect

    def holes(self, upto: int | None = None) -> int:
        """Events missing between the runs (the first ``upto`` + 1 runs only, if given)."""
        runs = self.runs if upto is None else self.runs[: upto + 1]
        return sum(b.lo - a.hi - 1 for a, b in itertools.pairwise(runs))


class SequenceGaps:
    """Runs of sequence numbers per (detector, source); the holes between them are gaps."""

    def __init__(self) -> None:
        self._sources: dict[tuple[str, str], _Source] = {}
        self._per_detector: dict[str, int] = {}
        self._open: dict[str, int] = {}  # events missing now, per detector
        self._healed: dict[str, int] = {}  # arrived in a hole since take_changes()
        self._changed: set[str] = set()

    def open_events(self, detector: str) -> int:
        """The detector's events missing now (in the holes :meth:`gaps` lists)."""
        return self._open.get(detector, 0)

    def take_changes(self) -> dict[str, GapChange]:
        """Per detector whose gaps changed since the last call (a hole found, shrunk, closed
        or forgotten): its open count and the events healed in between."""
        out = {d: GapChange(self._open.get(d, 0), self._healed.get(d, 0)) for d in self._changed}
        self._changed.clear()
        self._healed.clear()
        return out

    def _count(self, detector: str, found: int = 0, healed: int = 0, forgotten: int = 0) -> None:
        self._open[detector] = self._open.get(detector, 0) + found - healed - forgotten
        if healed:
            self._healed[detector] = self._healed.get(detector, 0) + healed
        self._changed.add(detector)

    def admits(self, detector: str, sources: Iterable[str], limit: int) -> bool:
        """Whether events of these sources may be tracked: known sources, and new ones
        within ``limit`` sources per detector in all (source names come from content)."""
        new = sum((detector, s) not in self._sources for s in set(sources))
        return self._per_detector.get(detector, 0) + new <= limit

    def add_many(
        self, detector: str, sources: Sequence[str], seqs: Sequence[int], times: Sequence[int]
    ) -> Sequence[Gap]:
        """:meth:`add` for events in the order they arrived; a batch that continues its
        source's last run in order (the usual case) extends it in one step."""
        n = len(seqs)
        if n == 1:
            gap = self.add(detector, sources[0], seqs[0], times[0])
            return () if gap is None else (gap,)
        if n > 1 and sources.count(sources[0]) == n:
            src = self._sources.get((detector, sources[0]))
            first = seqs[0]
            if (src is not None and src.runs and src.runs[-1].hi == first - 1
                    and tuple(seqs) == tuple(range(first, first + n))):  # fmt: skip
                src.runs[-1].hi, src.runs[-1].t_hi = seqs[-1], times[-1]
                return ()
        return [g for s, q, t in zip(sources, seqs, times, strict=True)
                if (g := self.add(detector, s, q, t)) is not None]  # fmt: skip

    def add(self, detector: str, source: str, seq: int, time_ns: int) -> Gap | None:
        """Record one event; returns the new gap its arrival revealed, if any (after the
        source's latest event, or before its earliest one)."""
        src = self._sources.get((detector, source))
        if src is None:
            src = self._sources[(detector, source)] = _Source()
            self._per_detector[detector] = self._per_detector.get(detector, 0) + 1
        runs, starts = src.runs, src.starts
        if runs and runs[-1].hi == seq - 1:  # the next of the last run: in order, no hole
            runs[-1].hi, runs[-1].t_hi = seq, time_ns
            return None
        i = bisect.bisect_right(starts, seq) - 1  # the run starting at or before seq
        in_hole = 0 <= i < len(runs) - 1  # between run i and run i+1: a missing one, late
        if i >= 0 and runs[i].lo <= seq <= runs[i].hi:
            return None  # seen before
        if i >= 0 and runs[i].hi == seq - 1:  # extends run i (the usual, in-order case)
            run = runs[i]
            run.hi, run.t_hi = seq, time_ns
            if i + 1 < len(runs) and runs[i + 1].lo == seq + 1:  # closes the hole to run i+1
                nxt = runs.pop(i + 1)
                starts.pop(i + 1)
                run.hi, run.t_hi = nxt.hi, nxt.t_hi
        elif i + 1 < len(runs) and runs[i + 1].lo == seq + 1:  # extends run i+1 backwards
            runs[i + 1].lo, runs[i + 1].t_lo = seq, time_ns
            starts[i + 1] = seq
        else:
            runs.insert(i + 1, _Run(seq, seq, time_ns, time_ns))
            starts.insert(i + 1, seq)
            gap = None
            if i >= 0 and i + 2 == len(runs):  # a new run after the last one: a new hole
                before = runs[i]
                gap = Gap(detector, source, before.hi + 1, seq - 1, before.t_hi, time_ns)
            elif i < 0 and len(runs) > 1:  # before the first run: a new hole after it
                after = runs[1]
                gap = Gap(detector, source, seq + 1, after.lo - 1, time_ns, after.t_lo)
            if gap is not None:
                self._count(detector, found=gap.missing)
                return gap
        if in_hole:
            self._count(detector, healed=1)
        return None

    def gaps(self, detector: str, window: Window | None = None) -> list[Gap]:
        """The holes of a detector's sources (overlapping ``window`` if given), by time."""
        out = []
        for (det, source), src in self._sources.items():
            if det != detector:
                continue
            for a, b in zip(src.runs, src.runs[1:], strict=False):
                gap = Gap(detector, source, a.hi + 1, b.lo - 1, a.t_hi, b.t_lo)
                if window is None or (
                    gap.end_ns > window.start_ns and gap.start_ns < window.end_ns
                ):
                    out.append(gap)
        return sorted(out, key=lambda g: g.start_ns)

    def excluded(self, detector: str, window: Window) -> list[ExcludedInterval]:
        return [
            ExcludedInterval(g.start_ns, g.end_ns, g.reason) for g in self.gaps(detector, window)
        ]

    def evict(self, before_ns: int) -> None:
        """Forget runs that end before ``before_ns`` (keeping each source's latest run), and
        sources silent since then: writers that came and went free their place under
        ``max_sources``."""
        for key, src in list(self._sources.items()):
            if src.runs and src.runs[-1].t_hi < before_ns:
                if forgotten := src.holes():
                    self._count(key[0], forgotten=forgotten)
                del self._sources[key]
                self._per_detector[key[0]] -= 1
                continue
            keep = max(len(src.runs) - 1, 0)
            cut = 0
            while cut < keep and src.runs[cut].t_hi < before_ns:
                cut += 1
            if cut and (forgotten := src.holes(upto=cut)):
                self._count(key[0], forgotten=forgotten)
            del src.runs[:cut], src.starts[:cut]
