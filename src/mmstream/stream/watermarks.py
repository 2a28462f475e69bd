"""When a detector's heartbeat may move its watermark.

A heartbeat at time t on ``detector.<d>.status`` promises that every event up to t has
been sent to ``detector.<d>.events``. The two topics are read independently, so the
heartbeat can be read before those events are. It therefore counts only once the events
partitions have been read up to the end offsets they had when the heartbeat was read;
until then an analysis could run on a window that is still filling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Partition = tuple[str, int]


@dataclass
class Watermarks:
    positions: dict[Partition, int] = field(default_factory=dict)
    pending: list[tuple[str, int, dict[Partition, int]]] = field(default_factory=list)

    def start_at(self, topic: str, partition: int, offset: int) -> None:
        """Where reading of an events partition starts (its next offset)."""
        self.positions[(topic, partition)] = offset

    def read(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        self.positions[key] = max(self.positions.get(key, 0), offset + 1)

    def heartbeat(self, detector: str, time_ns: int, ends: dict[Partition, int]) -> None:
        """A heartbeat read now, with the events partitions' end offsets as of now."""
        self.pending.append((detector, time_ns, ends))

    def confirmed(self) -> list[tuple[str, int]]:
        """(detector, time) of the heartbeats whose preceding events have all been read."""
        done, waiting = [], []
        for detector, t, ends in self.pending:
            if all(self.positions.get(tp, 0) >= end for tp, end in ends.items()):
                done.append((detector, t))
            else:
                waiting.append((detector, t, ends))
        self.pending = waiting
        return done
