"""Resident memory per 10^6 events buffered in mmstream's EventStore (a fresh process).

The events reach the store as the service's feed hands them over: encoded messages of 100
events, decoded into columns (no object per event) and validated. The figure is the rise of
the process's resident set from before the first message to after the last merge, beside
the bytes of the store's own columns (the floor this layout can reach)."""

from __future__ import annotations

import gc
import json
import sys

from mmstream.feeders import background_events
from mmstream.formats.detector import DetectorCodec, encode_batch
from mmstream.formats.validate import validate_events
from mmstream.model import NS_PER_S, Window
from mmstream.ops.process import settled
from mmstream.stream.store import EventStore

BATCH = 100


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _messages(t: int, start: int, n: int) -> list[bytes]:
    events = background_events("ic", t, t + 3600 * NS_PER_S, 1.02 * n / 3600, seed=start,
                               first_seq=start)[:n]  # fmt: skip
    assert len(events) == n
    return [encode_batch("ic", events[i : i + BATCH]) for i in range(0, n, BATCH)]


def main(n: int) -> None:
    t = 1_800_000_000 * NS_PER_S
    codec = DetectorCodec({})
    chunk = 100_000
    batches = [_messages(t, start, min(chunk, n - start)) for start in range(0, n, chunk)]
    warm = EventStore(retention_ns=10**18)  # imports, numpy and the decoder warmed up
    for i, v in enumerate(batches[0][:10]):
        warm.add_events(codec.decode_columns(v, "ic"), 0, i)
    warm.window("ic", Window(t, t + NS_PER_S))
    del warm
    with settled():  # as the service does around its loop (app.py)
        store = EventStore(retention_ns=10**18)
        base = rss_bytes()
        offset = 0
        for values in batches:
            for v in values:
                events = codec.decode_columns(v, "ic")
                validate_events(events, "ic", t + 3600 * NS_PER_S)
                store.add_events(events, 0, offset)
                offset += 1
        newest = store.newest_ns("ic")  # merges the buffer (a window query would copy it all)
        assert newest is not None
        gc.collect()
        dtypes = store.window("ic", Window(newest + 1, newest + 1))  # no events: the dtypes
        per_event = sum(getattr(dtypes, n).itemsize for n in _CORE)
        print(json.dumps({"events": len(store), "rss_delta_bytes": rss_bytes() - base,
                          "column_bytes": per_event * len(store)}))  # fmt: skip


_CORE = ("event_id", "time_ns", "ra_deg", "dec_deg", "sigma_deg", "energy_gev", "partition",
         "offset")  # fmt: skip

if __name__ == "__main__":
    main(int(sys.argv[1]))
