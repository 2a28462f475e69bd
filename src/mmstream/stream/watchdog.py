"""A watchdog for Kafka calls that can block past their own timeout.

librdkafka's ``send_offsets_to_transaction`` may wait forever for a group coordinator
that went away with a broker restart, ignoring its timeout (confluentinc/librdkafka
issues 5456 and 5511, open in 2.16). The transaction is still open, so nothing was
published and no offset moved: the safe way out is the same as after ``kill -9`` —
restart the process, which aborts the open transaction and re-reads the alert.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

import structlog

log = structlog.get_logger("mmstream.watchdog")

EXIT_STALLED = 75  # EX_TEMPFAIL: a supervisor should start us again


def restart_process(call: str, elapsed_s: float) -> None:
    """Replace this process with a fresh copy of itself (same command line)."""
    log.critical("Kafka call stalled; restarting the process", call=call, elapsed_s=elapsed_s)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    except OSError:
        os._exit(EXIT_STALLED)


def exit_process(call: str, elapsed_s: float) -> None:
    """Leave with EXIT_STALLED for a supervisor (systemd, Kubernetes) to restart us."""
    log.critical("Kafka call stalled; exiting for the supervisor", call=call, elapsed_s=elapsed_s)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_STALLED)


class StallWatch:
    """Calls ``on_stall`` once if a guarded call lasts longer than ``limit_s``."""

    def __init__(self, limit_s: float, on_stall: Callable[[str, float], None]) -> None:
        self.limit_s = limit_s
        self.on_stall = on_stall
        self._call: str | None = None
        self._since = 0.0
        self._fired = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mmstream-watchdog", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def guard(self, call: str) -> Iterator[None]:
        with self._lock:
            self._call, self._since = call, time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._call = None

    def close(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self.limit_s / 4)):
            with self._lock:
                call, since = self._call, self._since
            if call is None or self._fired:
                continue
            elapsed = time.monotonic() - since
            if elapsed > self.limit_s:
                self._fired = True
                self.on_stall(call, elapsed)
