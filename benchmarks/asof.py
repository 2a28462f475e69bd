"""The as-of join of detector conditions: the value in effect at each of 10^6 event times
among 10^4 changes of one key, by mmstream's conditions store, against the bare numpy
limit (one ``searchsorted`` and one take on prepared arrays) in the same run, on the same
inputs, with the same outputs (checked equal)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mmstream.model import NS_PER_S, ContextChange
from mmstream.stream.conditions import Conditions

T0 = 1_800_000_000 * NS_PER_S


def _best(call: Callable[[], Any], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return min(times)


def asof(n_events: int = 1_000_000, n_changes: int = 10_000) -> dict[str, float]:
    rng = np.random.default_rng(5)
    day = 86_400 * NS_PER_S
    change_t = np.sort(rng.integers(T0, T0 + day, n_changes))
    values = [f"cal-{i}" for i in range(n_changes)]
    events_t = np.sort(rng.integers(T0, T0 + day, n_events))
    cond = Conditions()
    for i, (t, v) in enumerate(zip(change_t.tolist(), values, strict=True)):
        cond.add(ContextChange("icecube", i, t, "calibration", v), 0, i)
    cond.at("icecube", "calibration", events_t[:10])  # the key's arrays, built once

    bare_values = np.array([None, *values], dtype=object)

    def ours() -> Any:
        return cond.at("icecube", "calibration", events_t)

    def bare() -> Any:
        return bare_values[np.searchsorted(change_t, events_t, side="right")]

    assert np.array_equal(ours(), bare()), "the two joins disagree"
    return {"ours_s": _best(ours), "bare_s": _best(bare), "events": n_events,
            "changes": n_changes}  # fmt: skip


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(json.dumps(asof(n)))
