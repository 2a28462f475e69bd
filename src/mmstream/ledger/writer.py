"""The ledger's bulk writes on a thread of their own: the detector events each run used
(thousands a run) are written after the result is out, never on the alert's path.

Writes run in the order they were handed over. A run's own row is written before its result
is published (stream order), with a marker (``unrecorded_events``) in the same transaction;
the background write of its events removes the marker in its own. So a process that stops
in between leaves a marker, and the run says that its events were not all recorded, instead
of listing fewer events than it used. ``drain`` waits for everything handed over (the
service's stop, a replay's end, tests).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from mmstream.ledger.store import Ledger
from mmstream.ops.logging import get_logger

log = get_logger("mmstream.ledger")
Write = Callable[[Ledger], None]


class BackgroundWrites:
    def __init__(self, ledger: Ledger, on_error: Callable[[str, Exception], None]) -> None:
        self.ledger, self.on_error = ledger, on_error
        self._queue: queue.Queue[tuple[str, Write] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="mmstream-ledger", daemon=True)
        self._thread.start()

    def submit(self, what: str, write: Write) -> None:
        self._queue.put((what, write))

    def drain(self, timeout_s: float = 60.0) -> bool:
        """Wait until every write handed over so far is done (False: still busy)."""
        done = threading.Event()
        self._queue.put(("drain", lambda _: done.set()))
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 60.0) -> None:
        if not self.drain(timeout_s):
            log.warning("ledger writes still queued at stop", queued=self._queue.qsize())
        self._queue.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            what, write = item
            try:
                write(self.ledger)
            except Exception as exc:  # a record, never a reason to stop
                self.on_error(what, exc)
