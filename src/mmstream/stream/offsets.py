"""Which alert offsets may be committed: never past one whose analyses have not published."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Partition:
    in_flight: set[int] = field(default_factory=set)
    highest_done: int = -1


class OffsetTracker:
    """Per (topic, partition): offsets taken but not finished, and the highest finished.

    The committable position is the lowest offset still in flight, or one past the highest
    finished when none is: a crash then re-reads every alert not fully published.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int], _Partition] = {}

    def begin(self, topic: str, partition: int, offset: int) -> None:
        self._parts.setdefault((topic, partition), _Partition()).in_flight.add(offset)

    def finish(self, topic: str, partition: int, offset: int) -> None:
        part = self._parts.setdefault((topic, partition), _Partition())
        part.in_flight.discard(offset)
        part.highest_done = max(part.highest_done, offset)

    def committable(self, topic: str, partition: int) -> int | None:
        part = self._parts.get((topic, partition))
        if part is None:
            return None
        if part.in_flight:
            return min(part.in_flight)
        return part.highest_done + 1 if part.highest_done >= 0 else None

    def forget(self, topic: str, partition: int) -> None:
        """After a partition is revoked: its uncommitted alerts belong to the next owner."""
        self._parts.pop((topic, partition), None)
