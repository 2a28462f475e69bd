"""Process settings for a long-running service, made once before its loop starts.

- Start-up's objects (modules, settings, analyses: ~10^5) are frozen out of the garbage
  collector: each full pass scanned them all, and the passes a busy detector stream's young
  objects trigger took a third of ingest's CPU time (benchmarks/ingest.py).
- glibc's allocator keeps a fixed trim threshold: by default it raises its mmap threshold
  after each large free (up to 32 MB), so the event store's merged columns were allocated
  on the heap and freed ones kept: the resident set stayed at ~2.7 times the columns
  (benchmarks/memory.py: 180 MB for 68 MB of columns per 10^6 events; 74 MB with this).
  The same as ``MALLOC_TRIM_THRESHOLD_=131072`` in the environment; a no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

_M_TRIM_THRESHOLD = -1  # mallopt's parameter number (malloc.h)
_TRIM_BYTES = 128 * 1024


def settle() -> None:
    """Freeze what exists now out of the collector, and fix glibc's trim threshold."""
    gc.collect()
    gc.freeze()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES)
    except (OSError, AttributeError):  # not glibc: its allocator, as it is
        pass
