"""How the service is doing: liveness and readiness (``/healthz``, ``/readyz``), and the
gauges (lag, watermarks, waiting windows), measured on a thread of their own: with a frozen
broker each round trip blocks for its timeout, and the loop must not wait behind them."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException

from mmstream.ops.logging import get_logger
from mmstream.stream.clients import Clients
from mmstream.stream.events import Events
from mmstream.stream.scheduler import Scheduler
from mmstream.stream.store import EventStore

log = get_logger("mmstream.service")


def liveness(idle_s: float, stuck_s: float | None, error: str, limit_s: float) -> tuple[bool, str]:
    """Alive while the loop turns and the results queue is not stuck, within ``limit_s``."""
    if stuck_s is not None and stuck_s > limit_s:
        return False, f"results queue stuck: publishing has failed for {stuck_s:.0f} s ({error})"
    return idle_s < limit_s, f"service loop last turned {idle_s:.1f} s ago (limit {limit_s:g} s)"


def readiness(started: bool, broker_up: bool, idle_s: float) -> tuple[bool, str]:
    if not started:
        return False, "starting: connecting, rebuilding the detector store"
    if not broker_up:
        return False, "broker unreachable"
    if idle_s > 10:
        return False, f"not consuming: loop idle {idle_s:.0f} s"
    return True, "consuming"


class Gauges(threading.Thread):
    """Every ``every_s``: consumer lag per partition, watermarks, waiting windows, broker up."""

    def __init__(
        self, events: Events, consumers: Sequence[Consumer], clients: Clients,
        store: EventStore, scheduler: Scheduler, detectors: tuple[str, ...], every_s: float = 5.0,
    ) -> None:  # fmt: skip
        super().__init__(name="mmstream-gauges", daemon=True)
        self.events, self.consumers, self.clients = events, consumers, clients
        self.store, self.scheduler, self.detectors = store, scheduler, detectors
        self.every_s = every_s
        self.broker_up = False
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.measure()
            except Exception as exc:  # a gauge is a report: never a reason to stop
                log.warning("gauges not updated", error=str(exc))
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(15)
        if self.is_alive():  # a round trip to a frozen broker: it ends at its own timeout
            log.warning("gauges thread still in a broker call at stop")

    def measure(self) -> None:
        lag: dict[tuple[str, int], int] = {}
        try:
            for consumer in self.consumers:
                for tp in consumer.assignment():
                    pos = consumer.position([tp])[0].offset
                    if pos >= 0:
                        high = self.clients.end_offset(tp.topic, tp.partition)
                        lag[(tp.topic, tp.partition)] = max(0, high - pos)
            self.broker_up = True
        except KafkaException as exc:
            self.broker_up = False
            log.warning("broker round trip failed", error=str(exc))
        marks = {d: self.store.watermark(d) for d in self.detectors}
        self.events.gauges(len(self.scheduler.waiting), marks, lag, self.broker_up)
