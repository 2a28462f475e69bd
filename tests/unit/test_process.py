"""The service's run freezes start-up's objects out of the garbage collector and thaws them
when it ends, so a service stopped inside a longer process can be collected; and a large
array freed during the run goes back to the system, not into the allocator's heap."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

from mmstream.ops.process import settled


class _Client:
    """Stands for a Kafka client held in a reference cycle, as a service's clients are."""

    def __init__(self) -> None:
        self.me = self


def test_objects_frozen_for_a_run_are_collected_after_it() -> None:
    client = _Client()
    gone = weakref.ref(client)
    with settled():
        assert gc.get_freeze_count() > 0
        del client
        gc.collect()
        assert gone() is not None  # frozen: the collector's passes leave it alone
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None


def test_a_run_that_raises_thaws_too() -> None:
    try:
        with settled():
            raise RuntimeError("the loop failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0


# Run in a fresh interpreter: glibc serves a request from a free chunk of its heap that fits
# before it maps one, so in a long test session (hundreds of MB freed by earlier tests) the
# same allocation may land in the heap whatever the threshold.
_FREED = """
import os
import numpy as np
from mmstream.ops.process import MMAP_THRESHOLD, fix_mmap_threshold, settled

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

size = 2 * MMAP_THRESHOLD  # 8 MiB
with settled():
    np.ones(2 * size, dtype=np.uint8)  # a large free, as a grown column's
    big = np.ones(size, dtype=np.uint8)  # every page touched: resident
    pin = np.ones(MMAP_THRESHOLD // 8, dtype=np.uint8)  # in the heap after it
    before = resident()
    del big
    after = resident()
    del pin  # held until here: the heap's top stayed above the big array
print(fix_mmap_threshold(), size, before - after)
"""


def test_a_large_array_freed_during_a_run_leaves_the_resident_set() -> None:
    """glibc's own threshold would have risen past 8 MB after the 16 MB free, putting the
    8 MB array in the heap under the small one allocated after it, where its free keeps it."""
    out = subprocess.run([sys.executable, "-c", _FREED], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    took, size, released = out.stdout.split()
    assert took == "True"  # glibc took the setting
    assert int(released) >= 0.9 * int(size)
