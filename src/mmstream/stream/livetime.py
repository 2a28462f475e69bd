"""Livetime of a window from a detector's status reports (heartbeats).

A report at time t in state S vouches for the detector from the previous report up to t.
So a window's time is live where a GOOD report covers it, and excluded otherwise:
``BAD: <reason>`` where a BAD report covers it, ``no status for N s`` where two reports
are further apart than ``max_gap_ns``, and ``no status report`` before the first or after
the last report.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from mmstream.model import NS_PER_S, DetectorStatus, ExcludedInterval, Livetime, Window


@dataclass
class StatusLog:
    """One detector's status reports, kept sorted by time."""

    times: list[int] = field(default_factory=list)
    good: list[bool] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, status: DetectorStatus) -> None:
        t = status.time_ns
        i = bisect.bisect_right(self.times, t)  # O(log n); reports mostly come in order
        if i > 0 and self.times[i - 1] == t:
            return  # the same report seen twice
        self.times.insert(i, t)
        self.good.insert(i, status.state == "GOOD")
        self.reasons.insert(i, f"BAD: {status.reason or 'no reason given'}")

    def evict(self, before_ns: int) -> None:
        # Keep the last report before the cut: it vouches for time after it.
        cut = max(0, int(np.searchsorted(np.asarray(self.times), before_ns)) - 1)
        del self.times[:cut], self.good[:cut], self.reasons[:cut]

    def livetime(
        self,
        detector: str,
        window: Window,
        max_gap_ns: int,
        data_gaps: list[ExcludedInterval] | None = None,
    ) -> Livetime | None:
        """Live fraction of the window; None when the detector never reported its status.

        ``data_gaps`` (missing events, see gaps.py) turn otherwise live time into excluded time.
        """
        if not self.times:
            return None
        pieces: list[tuple[int, int, str | None]] = []  # (start, end, None if live else reason)
        t = self.times
        pieces.append((window.start_ns, min(t[0], window.end_ns), "no status report"))
        lo = max(1, int(np.searchsorted(np.asarray(t), window.start_ns, side="left")))
        for i in range(lo, len(t)):
            start, end = t[i - 1], t[i]
            if start >= window.end_ns:
                break
            if end - start > max_gap_ns:
                reason: str | None = f"no status for {(end - start) / NS_PER_S:.0f} s"
            else:
                reason = None if self.good[i] else self.reasons[i]
            pieces.append((start, end, reason))
        pieces.append((max(t[-1], window.start_ns), window.end_ns, "no status report"))
        if data_gaps:
            pieces = _carve(pieces, data_gaps)
        live = 0
        excluded: list[ExcludedInterval] = []
        for start, end, reason in pieces:
            a, b = max(start, window.start_ns), min(end, window.end_ns)
            if b <= a:
                continue
            if reason is None:
                live += b - a
            elif excluded and excluded[-1].reason == reason and excluded[-1].end_ns == a:
                excluded[-1] = ExcludedInterval(excluded[-1].start_ns, b, reason)
            else:
                excluded.append(ExcludedInterval(a, b, reason))
        duration = max(window.end_ns - window.start_ns, 1)
        return Livetime(detector, live / duration, live / NS_PER_S, tuple(excluded))


def _carve(
    pieces: list[tuple[int, int, str | None]], gaps: list[ExcludedInterval]
) -> list[tuple[int, int, str | None]]:
    """Split live pieces where a data gap lies over them; excluded pieces keep their reason."""
    out: list[tuple[int, int, str | None]] = []
    for start, end, reason in pieces:
        if reason is not None:
            out.append((start, end, reason))
            continue
        cursor = start
        for gap in sorted(gaps, key=lambda g: g.start_ns):
            a, b = max(gap.start_ns, cursor), min(gap.end_ns, end)
            if b <= a:
                continue
            if a > cursor:
                out.append((cursor, a, None))
            out.append((a, b, gap.reason))
            cursor = b
        if cursor < end:
            out.append((cursor, end, None))
    return out
