"""Resident memory per 10^6 events buffered in mmstream's EventStore (a fresh process)."""

from __future__ import annotations

import gc
import json
import sys

from mmstream.feeders import background_events
from mmstream.model import NS_PER_S, Window
from mmstream.stream.store import EventStore


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def main(n: int) -> None:
    t = 1_800_000_000 * NS_PER_S
    chunk = 100_000
    # warm up imports and numpy before the baseline
    warm = EventStore(retention_ns=10**18)
    for i, e in enumerate(background_events("x", t, t + NS_PER_S, 1000, seed=0)):
        warm.add(e, 0, i)
    warm.window("x", Window(t, t + NS_PER_S))
    del warm
    gc.collect()
    store = EventStore(retention_ns=10**18)
    base = rss_bytes()
    for start in range(0, n, chunk):
        events = background_events("ic", t, t + 3600 * NS_PER_S, 1.02 * chunk / 3600,
                                   seed=start, first_seq=start)[:chunk]  # fmt: skip
        assert len(events) == chunk
        for i, e in enumerate(events):
            store.add(e, 0, start + i)
        del events
        gc.collect()
    store.window("ic", Window(t, t + 3600 * NS_PER_S))  # columns built, row buffer flushed
    gc.collect()
    print(json.dumps({"events": n, "rss_delta_bytes": rss_bytes() - base}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
