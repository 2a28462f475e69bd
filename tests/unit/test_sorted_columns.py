"""The event store's growable columns: merged in time order wherever new events fall,
repeats dropped, eviction and growth without losing or reordering an event."""

from __future__ import annotations

import numpy as np

from mmstream.stream.columns import SortedColumns
from mmstream.stream.store import _repeats


def _empty() -> SortedColumns:
    return SortedColumns({"t": np.empty(0, np.int64), "id": np.empty(0, np.dtypes.StringDType()),
                          "x": np.empty(0, np.int64)}, time="t", key="id")  # fmt: skip


def _batch(times: list[int], tag: str) -> dict[str, np.ndarray]:
    return {"t": np.array(times, np.int64),
            "id": np.array([f"{tag}{t}" for t in times], np.dtypes.StringDType()),
            "x": np.array(times, np.int64) * 10}  # fmt: skip


def test_batches_out_of_order_merge_into_time_order_and_repeats_drop() -> None:
    rng = np.random.default_rng(7)
    cols = _empty()
    seen: dict[tuple[int, str], int] = {}
    prev: list[int] = []
    for i in range(60):  # mostly increasing, with stragglers far back, and repeats
        times = sorted(int(v) for v in rng.integers(i * 100 - 300, i * 100 + 100, 50))
        if i % 7 == 3:  # the previous batch sent again: every event a repeat
            times = prev
        batch = _batch(times, "e")
        dropped = cols.merge(batch, _repeats)
        fresh = {(t, f"e{t}") for t in batch["t"].tolist()} - set(seen)
        assert dropped == batch["t"].size - len(fresh)
        for t in batch["t"].tolist():
            seen.setdefault((t, f"e{t}"), t * 10)
        prev = times
    t = cols.view("t")
    assert np.all(np.diff(t) >= 0)
    assert sorted(zip(t.tolist(), cols.view("id").tolist(), strict=True)) == sorted(seen)
    assert cols.view("x").tolist() == [
        seen[(a, b)] for a, b in zip(t.tolist(), cols.view("id").tolist(), strict=True)
    ]


def test_eviction_growth_and_a_wider_dtype_keep_every_event() -> None:
    cols = _empty()
    for start in range(0, 20_000, 500):  # in order: appended in place, grown as needed
        cols.merge(_batch(list(range(start, start + 500)), "a"), _repeats)
    cols.drop_before(15_000)  # most of it: the live part moves to the front
    assert cols.view("t").tolist() == list(range(15_000, 20_000))
    late = _batch([15_000, 15_001, 25_000], "b")
    late["x"] = np.array([0.5, 1.5, 2.5])  # a float where there were ints
    assert cols.merge(late, _repeats) == 0  # other ids at equal times are not repeats
    assert cols.view("x").dtype == np.float64 and len(cols) == 5_003
    t, ids = cols.view("t").tolist(), cols.view("id").tolist()
    assert t[:4] == [15_000, 15_000, 15_001, 15_001] and ids[:4] == [
        "a15000",
        "b15000",
        "a15001",
        "b15001",
    ]
    assert t[-1] == 25_000 and cols.view("x")[-1] == 2.5 and cols.view("x")[4] == 150_020.0
