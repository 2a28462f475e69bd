"""Process settings for a long-running service, held for as long as its loop runs.

Start-up's objects (modules, settings, analyses: ~10^5) are frozen out of the garbage
collector: each full pass scanned them all, and the passes a busy detector stream's young
objects trigger took a third of ingest's CPU time (benchmarks/ingest.py).

glibc's allocator gets a fixed mmap threshold of 4 MiB (``mallopt``, process-wide, kept
after the loop: glibc cannot go back to its dynamic threshold). By default the threshold
rises after each large free, so the event store's grown-out column arrays stayed in the
heap as freed memory the allocator keeps: the resident set was ~2.7 times the columns
(benchmarks/memory.py: 184 MB per 10^6 events; 81 MB with it). glibc still serves a large
request from a free chunk of its heap that fits, so this bounds what grows from now on, not
what the heap already holds (tests/unit/test_process.py runs it in a fresh interpreter for
that reason). A threshold this high keeps smaller arrays, such as an alert's window
columns at 10^5 buffered events, in the heap as before: a 128 KiB one
(``MALLOC_TRIM_THRESHOLD_=131072``) mapped and faulted every one of them anew, and
alert-to-result p50/p99 at 10^5 went from 89/133 ms to 127/321 ms.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator
from contextlib import contextmanager

MMAP_THRESHOLD = 4 << 20  # bytes: an allocation this large gets its own mapping
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def fix_mmap_threshold() -> bool:
    """Large allocations get their own mapping, given back to the system when freed (see
    above); False where the C library has no ``mallopt`` (not glibc) or refuses. The heap's
    trim threshold is fixed too, at twice that, as glibc's own rule would set it: fixing
    one ends that rule, and the trim threshold would stay wherever start-up left it."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    trim = mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and trim)


@contextmanager
def settled() -> Iterator[None]:
    """Freeze what exists now out of the garbage collector's passes, for the run inside.

    Thawed at the end: frozen objects are never collected, so a service stopped inside a
    longer process (a test session, an embedding program) would otherwise keep its Kafka
    clients alive to the interpreter's exit, where librdkafka's threads outlive the objects
    they call back into (a test run ended in a segmentation fault that way). The allocator's
    threshold is fixed first (``fix_mmap_threshold``)."""
    fix_mmap_threshold()
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
