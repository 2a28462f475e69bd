"""What one analysis run costs: wall-clock span, CPU time, peak memory."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mmstream.times import format_utc, now_ns


@dataclass
class Cost:
    """Wall-clock span, CPU time and peak Python-heap memory (numpy included) of one run."""

    started_at: str = ""
    ended_at: str = ""
    cpu_s: float = 0.0
    peak_memory_bytes: int = 0


@contextmanager
def measured(track_memory: bool = True) -> Iterator[Cost]:
    cost = Cost(started_at=format_utc(now_ns()))
    cpu0 = time.process_time()
    tracing = track_memory and not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start()
    try:
        yield cost
    finally:
        if tracing:
            cost.peak_memory_bytes = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        cost.cpu_s = time.process_time() - cpu0
        cost.ended_at = format_utc(now_ns())
