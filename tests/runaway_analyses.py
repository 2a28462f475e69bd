"""Handlers that misbehave the ways a physicist's code can: slow, endless, greedy. Module
level, so that a worker process finds them by name."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from mmstream.analyses import AnalysisInput, Outcome, analysis


@analysis(name="takes_ten_seconds", version="0.0.1", window=(-10, 10))
def takes_ten_seconds(inp: AnalysisInput) -> Outcome:
    """A long but healthy analysis (10^6 background trials take about this long)."""
    time.sleep(10)
    return Outcome(summary=f"done after 10 s for {inp.alert.alert_id}")


@analysis(name="loops_forever", version="0.0.1", window=(-10, 10))
def loops_forever(inp: AnalysisInput) -> Outcome:
    """A handler with an endless loop."""
    n = 0
    while True:
        n += 1


@analysis(name="allocates_without_bound", version="0.0.1", window=(-10, 10))
def allocates_without_bound(inp: AnalysisInput) -> Outcome:
    """A handler that keeps every array it makes (64 MiB each, written: resident)."""
    kept = []
    while True:
        kept.append(np.ones(8 << 20))


@analysis(name="crashes_the_interpreter", version="0.0.1", window=(-10, 10))
def crashes_the_interpreter(inp: AnalysisInput) -> Outcome:
    """A handler whose C extension kills the process (as a segfault would)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return Outcome(summary="unreachable")


@analysis(name="returns_a_string", version="0.0.1", window=(-10, 10))
def returns_a_string(inp: AnalysisInput) -> Outcome:
    """A handler that forgets to wrap its answer."""
    return "42"  # type: ignore[return-value]


def _load_table(params: object) -> dict[str, object]:
    """A heavy resource: made once per process (its id tells which making a run saw)."""
    return {"table": np.arange(3.0), "made": f"{os.getpid()}:{time.monotonic_ns()}"}


@analysis(name="uses_a_table", version="0.0.1", window=(-10, 10), setup=_load_table)
def uses_a_table(inp: AnalysisInput) -> Outcome:
    """A handler that reads what its setup hook made."""
    resources = inp.context.resources
    return Outcome(summary=str(resources["made"]),
                   statistics={"sum": float(resources["table"].sum())})  # fmt: skip


def _missing_table(params: object) -> object:
    raise FileNotFoundError("no such PDF table: /data/pdf.npy")


@analysis(name="setup_fails", version="0.0.1", window=(-10, 10), setup=_missing_table)
def setup_fails(inp: AnalysisInput) -> Outcome:
    """Never runs: its setup hook fails."""
    return Outcome(summary="unreachable")


def _refuse() -> object:
    raise RuntimeError("cannot be rebuilt here")


class Unreadable:
    """Pickles, but does not unpickle (like an exception class with required arguments)."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_refuse, ())


@analysis(name="returns_an_unreadable_outcome", version="0.0.1", window=(-10, 10))
def returns_an_unreadable_outcome(inp: AnalysisInput) -> Outcome:
    """A handler whose outcome carries an object the service cannot rebuild."""
    return Outcome(summary="x", details={"obj": Unreadable()})
