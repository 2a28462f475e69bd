"""Process settings for a long-running service, held for as long as its loop runs.

Start-up's objects (modules, settings, analyses: ~10^5) are frozen out of the garbage
collector: each full pass scanned them all, and the passes a busy detector stream's young
objects trigger took a third of ingest's CPU time (benchmarks/ingest.py).

The C allocator is left as it is, knowingly: glibc keeps freed column arrays in its heap
(its mmap threshold rises after each large free), so the resident set is ~2.7 times the
event store's columns (benchmarks/memory.py). ``MALLOC_TRIM_THRESHOLD_=131072`` in the
environment brings it to ~1.1 times, but every large array is then mapped and faulted in
anew: alert-to-result p50/p99 at 10^5 buffered events went from 89/133 ms to 127/321 ms.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def settled() -> Iterator[None]:
    """Freeze what exists now out of the garbage collector's passes, for the run inside.

    Thawed at the end: frozen objects are never collected, so a service stopped inside a
    longer process (a test session, an embedding program) would otherwise keep its Kafka
    clients alive to the interpreter's exit, where librdkafka's threads outlive the objects
    they call back into (a test run ended in a segmentation fault that way)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
