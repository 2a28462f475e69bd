"""Time-sorted columns that grow in place: the event store's memory.

Columns live in arrays with spare capacity; the events in use are ``[start, stop)``. New
events (sorted among themselves) are merged in where they belong: only the old events
later than the earliest new one move, so data arriving in time order (the usual case, a
little out of order across partitions) costs a copy of the new rows, not of the store.
Concatenating everything at each merge copied the whole store every 50,000 events and
left the resident set at twice the columns (freed temporaries the allocator keeps).
Evicting moves ``start``; the live part is moved to the front when that frees half.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

_GROWTH = 1.25  # capacity after a grow: room for a quarter more (amortized copies)
_MIN_CAPACITY = 1024

Repeats = Callable[[npt.NDArray[np.int64], npt.NDArray[Any]], npt.NDArray[np.intp]]


class SortedColumns:
    """Named columns sorted by the ``time`` column; ``view(name)`` is the live part."""

    def __init__(self, empty: dict[str, npt.NDArray[Any]], time: str, key: str) -> None:
        self._arrays = dict(empty)  # capacity-sized; only [start, stop) holds events
        self.time, self.key = time, key  # key: with time, an event's identity
        self.start = self.stop = 0

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def names(self) -> list[str]:
        return list(self._arrays)

    def view(self, name: str) -> npt.NDArray[Any]:
        """The live events' column (a view: copy it before handing it out)."""
        return self._arrays[name][self.start : self.stop]

    def merge(self, new: dict[str, npt.NDArray[Any]], repeats: Repeats) -> int:
        """Add events (any order, every column of the same length); identities already
        held (``repeats`` finds later copies among equal times) are dropped. Returns how
        many were dropped."""
        times = new[self.time]
        if not times.size:
            return 0
        order = np.argsort(times, kind="stable")
        if np.any(order[:-1] > order[1:]):
            new = {k: v[order] for k, v in new.items()}
            times = new[self.time]
        live = self.view(self.time)
        # old events from the earliest new time on are merged with the new ones (equal times
        # included: a repeat has the same time as its original)
        k = int(np.searchsorted(live, times[0], side="left"))
        moved = len(live) - k
        if moved:
            tail = {n: np.concatenate([self.view(n)[k:], new[n]]) for n in new}
            order = np.argsort(tail[self.time], kind="stable")  # old first among equals
            new = {n: v[order] for n, v in tail.items()}
        drop = repeats(new[self.time], new[self.key])
        if drop.size:
            keep = np.ones(new[self.time].size, dtype=bool)
            keep[drop] = False
            new = {n: v[keep] for n, v in new.items()}
        size = k + new[self.time].size
        self._room(size)
        at = self.start + k
        for name, values in new.items():
            target = self._arrays[name]
            if values.dtype != target.dtype:  # e.g. an integer field that lacked a value
                target = self._arrays[name] = target.astype(
                    np.result_type(target.dtype, values.dtype)
                )
            target[at : at + values.size] = values
        self.stop = self.start + size
        return int(drop.size)

    def drop_before(self, index: int) -> None:
        """Forget the first ``index`` live events (eviction)."""
        self.start += index
        if self.start > (self.stop - self.start) and self.start > _MIN_CAPACITY:
            self._move(self.stop - self.start, self._capacity())

    def _capacity(self) -> int:
        return next(iter(self._arrays.values())).size

    def _room(self, size: int) -> None:
        """Capacity for ``size`` live events from ``start`` on (grown, or compacted)."""
        if self.start + size <= self._capacity():
            return
        if size <= self._capacity() // 2:
            self._move(self.stop - self.start, self._capacity())
        else:
            self._move(self.stop - self.start, max(_MIN_CAPACITY, int(size * _GROWTH)))

    def _move(self, live: int, capacity: int) -> None:
        """The live events to the front of arrays of ``capacity``."""
        for name, arr in self._arrays.items():
            out = np.empty(capacity, dtype=arr.dtype)
            out[:live] = arr[self.start : self.start + live]
            self._arrays[name] = out
        self.start, self.stop = 0, live
