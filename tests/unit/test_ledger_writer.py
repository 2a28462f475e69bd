"""The ledger's background thread: its bulk writes wait while an alert is in flight, but
never for ever, and never with more rows waiting than allowed."""

from __future__ import annotations

import threading
from pathlib import Path

from mmstream.ledger.store import Ledger, sqlite_url
from mmstream.ledger.writer import BackgroundWrites


def _writes(
    tmp_path: Path, max_defer_s: float, max_waiting_rows: int = 2_000_000
) -> BackgroundWrites:
    def failed(what: str, exc: Exception) -> None:
        raise AssertionError(f"{what} failed: {exc}")

    return BackgroundWrites(Ledger(sqlite_url(tmp_path)), failed, max_defer_s, max_waiting_rows)


def test_a_write_waits_until_the_loop_is_idle(tmp_path: Path) -> None:
    writes = _writes(tmp_path, max_defer_s=3600.0)
    order: list[str] = []
    in_flight, asked = threading.Event(), threading.Event()
    in_flight.set()

    def busy() -> bool:
        asked.set()
        return in_flight.is_set()

    writes.busy = busy
    writes.submit("run events", lambda lg: (writes.pause(), order.append("written")), 10)
    assert asked.wait(10), "the write never asked whether the loop is busy"
    order.append("results out")
    in_flight.clear()
    assert writes.drain(10)
    assert order == ["results out", "written"]
    writes.close()


def test_a_busy_loop_delays_a_write_at_most_max_defer_s(tmp_path: Path) -> None:
    writes = _writes(tmp_path, max_defer_s=0.05)
    writes.busy = lambda: True  # alerts without end
    done = threading.Event()
    writes.submit("run events", lambda lg: (writes.pause(), done.set()), 10)
    assert writes.drain(10) and done.is_set()
    writes.close()


def test_too_many_waiting_rows_stop_the_waiting(tmp_path: Path) -> None:
    writes = _writes(tmp_path, max_defer_s=3600.0, max_waiting_rows=100)
    writes.busy = lambda: True
    done = threading.Event()
    writes.submit("run events", lambda lg: (writes.pause(), done.set()), 1_000)
    assert writes.drain(10) and done.is_set()
    writes.close()
