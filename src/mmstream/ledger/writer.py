"""The ledger's writes on a thread of their own, off the alert's path: the detector events
each run used (thousands a run), and the inputs, outputs, statuses, job states and
statistics (recorder.py says which write stays on the loop).

Writes run in the order they were handed over. A run's own row is written before its result
is published (stream order), with a marker (``unrecorded_events``) in the same transaction;
the background write of its events removes the marker in its own. So a process that stops
in between leaves a marker, and the run says that its events were not all recorded, instead
of listing fewer events than it used. ``drain`` waits for everything handed over (the
service's stop, a replay's end, tests).

The events go 500 to a transaction, and before each the thread waits while an
alert the loop read still has results to come (``busy``, set by the service): SQLite's work
for a run's rows (~3 µs a row with its indexes, 46,000 rows a run at 10^6 buffered events)
took a core from the next alert on a 2-core host (benchmarks/latency.py, 60 alerts at 10^6:
p50 249 ms with these writes beside the alerts, 105 ms without them, 103 ms waiting). It
waits at most ``max_defer_s`` from when the loop was last seen idle, and only while fewer
than ``max_waiting_rows`` rows wait (each holds ~32 bytes of its run's columns: 160 MB at
the limit): a steady stream of alerts delays the record, never loses it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from mmstream.ledger.store import Ledger
from mmstream.ops.logging import get_logger

log = get_logger("mmstream.ledger")
Write = Callable[[Ledger], None]


class BackgroundWrites:
    def __init__(
        self, ledger: Ledger, on_error: Callable[[str, Exception], None],
        max_defer_s: float = 30.0, max_waiting_rows: int = 5_000_000,
    ) -> None:  # fmt: skip
        self.ledger, self.on_error = ledger, on_error
        self.max_defer_s, self.max_waiting_rows = max_defer_s, max_waiting_rows
        self.busy: Callable[[], bool] = lambda: False  # the service's: an alert in flight
        self._idle_at = time.monotonic()
        self._rows = 0  # rows handed over and not yet written (two threads: under _lock)
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, Write, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="mmstream-ledger", daemon=True)
        self._thread.start()

    def submit(self, what: str, write: Write, rows: int = 0) -> None:
        with self._lock:
            self._rows += rows
        self._queue.put((what, write, rows))

    def pause(self) -> None:
        """Between two transactions of a long write: wait while the loop is busy, but not
        past ``max_defer_s`` after it was last seen idle."""
        while (self.busy() and time.monotonic() - self._idle_at < self.max_defer_s
               and self._rows < self.max_waiting_rows):  # fmt: skip
            time.sleep(0.005)
        if not self.busy():
            self._idle_at = time.monotonic()

    def drain(self, timeout_s: float = 60.0) -> bool:
        """Wait until every write handed over so far is done (False: still busy)."""
        done = threading.Event()
        self._queue.put(("drain", lambda _: done.set(), 0))
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 60.0) -> None:
        self.busy = lambda: False  # the loop has stopped: nothing more to wait for
        if not self.drain(timeout_s):
            log.warning("ledger writes still queued at stop", queued=self._queue.qsize())
        self._queue.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            what, write, rows = item
            try:
                write(self.ledger)
            except Exception as exc:  # a record, never a reason to stop
                self.on_error(what, exc)
            with self._lock:
                self._rows -= rows
