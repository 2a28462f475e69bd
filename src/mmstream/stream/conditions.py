"""Detector conditions over time, from ``detector.<d>.context``: keyed state changes
(calibration set, geometry version, each shutter's state, beam, temperatures...).

Each (detector, key) keeps its history, sorted by time; the value in effect at time t is
the last change at or before t (an as-of join, vectorized with one ``searchsorted`` per key).
Context topics are read from their beginning at every start, so a calibration set a month
ago is known (they are created with unlimited retention: a change is small and rare).
Rules turn conditions into excluded time with a reason ("shutter 3 closed"), which the
livetime then carries like any downtime.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mmstream.model import ContextChange, ExcludedInterval, Window

Value = str | float | int | bool | None


@dataclass(frozen=True)
class ContextRule:
    """Time when ``key`` (of ``detector``, or of any detector) equals ``equals`` is excluded,
    with ``reason``."""

    key: str
    equals: Value
    reason: str
    detector: str | None = None


@dataclass
class KeyLog:
    times: list[int] = field(default_factory=list)
    values: list[Value] = field(default_factory=list)
    refs: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset)
    _arrays: tuple[npt.NDArray[np.int64], npt.NDArray[Any]] | None = None

    def add(self, time_ns: int, value: Value, ref: tuple[int, int]) -> bool:
        """Record a change; False for a repeat of one already held (same time and value)."""
        i = bisect.bisect_right(self.times, time_ns)
        if i > 0 and self.times[i - 1] == time_ns and same(self.values[i - 1], value):
            return False
        self.times.insert(i, time_ns)
        self.values.insert(i, value)
        self.refs.insert(i, ref)
        self._arrays = None
        return True

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        if self._arrays is None:
            values = np.empty(len(self.values) + 1, dtype=object)
            values[0] = None  # before the first change: unknown
            values[1:] = self.values
            self._arrays = (np.asarray(self.times, dtype=np.int64), values)
        return self._arrays

    def at(self, times_ns: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """The value in effect at each time (None before the first change)."""
        times, values = self.arrays()
        return values[np.searchsorted(times, times_ns, side="right")]

    def intervals(self, window: Window) -> list[tuple[int, int, Value]]:
        """(start, end, value) covering the window: the value at its start, then each change."""
        times, values = self.arrays()
        lo = int(np.searchsorted(times, window.start_ns, side="right"))
        hi = int(np.searchsorted(times, window.end_ns, side="right"))
        edges = [window.start_ns, *times[lo:hi].tolist(), window.end_ns]
        vals = [values[lo], *values[lo + 1 : hi + 1].tolist()]
        out: list[tuple[int, int, Value]] = []
        for a, b, v in zip(edges[:-1], edges[1:], vals, strict=True):
            if out and same(out[-1][2], v) and out[-1][1] == a:
                out[-1] = (out[-1][0], b, v)
            elif b > a or not out:
                out.append((a, b, v))
        return out

    def evict(self, before_ns: int) -> None:
        """Forget changes before the cut, keeping the one in effect at it."""
        cut = max(0, bisect.bisect_right(self.times, before_ns) - 1)
        if cut:
            del self.times[:cut], self.values[:cut], self.refs[:cut]
            self._arrays = None


def same(a: Value, b: Value) -> bool:
    """Equal values of one kind: a boolean never equals a number (``True == 1`` in Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


class Conditions:
    """Every detector's conditions, by key (at most ``max_keys`` keys a detector)."""

    def __init__(self, rules: tuple[ContextRule, ...] = (), max_keys: int = 1000) -> None:
        self.rules, self.max_keys = rules, max_keys
        self.logs: dict[tuple[str, str], KeyLog] = {}

    def admits(self, change: ContextChange) -> bool:
        """Whether the key is known, or one more still fits the detector's limit."""
        if (change.detector, change.key) in self.logs:
            return True
        return sum(d == change.detector for d, _ in self.logs) < self.max_keys  # a new key: rare

    def add(self, change: ContextChange, partition: int, offset: int) -> bool:
        """Record a change; False for a repeat of one held."""
        log = self.logs.setdefault((change.detector, change.key), KeyLog())
        return log.add(change.time_ns, change.value, (partition, offset))

    def effect(self, change: ContextChange) -> tuple[int, int] | None:
        """The span a change just added decides: from its time to the key's next change
        (None: the value before it was the same, so it changes nothing)."""
        log = self.logs[(change.detector, change.key)]
        t = change.time_ns
        i = bisect.bisect_left(log.times, t)
        while not same(log.values[i], change.value):  # it is among the changes at time t
            i += 1
        if i > 0 and same(log.values[i - 1], change.value):
            return None
        after = bisect.bisect_right(log.times, t)
        return t, log.times[after] if after < len(log.times) else 2**62

    def keys(self, detector: str) -> list[str]:
        return sorted(k for d, k in self.logs if d == detector)

    def at(self, detector: str, key: str, times_ns: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        log = self.logs.get((detector, key))
        if log is None:
            return np.full(np.shape(times_ns), None, dtype=object)
        return log.at(np.asarray(times_ns, dtype=np.int64))

    def intervals(self, detector: str, key: str, window: Window) -> list[tuple[int, int, Value]]:
        log = self.logs.get((detector, key))
        return [(window.start_ns, window.end_ns, None)] if log is None else log.intervals(window)

    def history(self, detector: str, window: Window) -> dict[str, list[tuple[int, int, Value]]]:
        """Every key of the detector over the window: the conditions a run used."""
        return {key: self.intervals(detector, key, window) for key in self.keys(detector)}

    def excluded(self, detector: str, window: Window) -> list[ExcludedInterval]:
        """The window's time the rules exclude, with their reasons."""
        out = []
        for rule in self.rules:
            if rule.detector not in (None, detector):
                continue
            for a, b, value in self.intervals(detector, rule.key, window):
                if same(value, rule.equals) and b > a:
                    out.append(ExcludedInterval(a, b, rule.reason))
        return sorted(out, key=lambda e: (e.start_ns, e.reason))

    def evict(self, before_ns: int) -> None:
        for log in self.logs.values():
            log.evict(before_ns)
