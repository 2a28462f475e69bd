"""The service as ``mmstream run`` starts it: the stream's stages, with the ledger, metrics,
the dashboard and the HTTP server observing them. The one place that reads ``Settings``
for the service (stages take their own small settings objects)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

from mmstream.analyses.registry import Registry
from mmstream.config import SECRET_KAFKA_KEYS, Settings
from mmstream.ledger.recorder import Recorder
from mmstream.ledger.store import Ledger
from mmstream.model import Alert
from mmstream.ops.console import Console, restore
from mmstream.ops.logging import get_logger, register_secrets
from mmstream.ops.metrics import LOOP_SECONDS_SINCE_TURN
from mmstream.ops.observer import Observer
from mmstream.ops.process import settled
from mmstream.ops.server import Health, OpsServer
from mmstream.ops.state import DashboardState
from mmstream.provenance.report import gather, render_text
from mmstream.stream.events import Fanout
from mmstream.stream.history import message_at
from mmstream.stream.intake import read_alert
from mmstream.stream.messages import message_time_ns
from mmstream.stream.service import Service
from mmstream.stream.watchdog import exit_process, restart_process

log = get_logger("mmstream.service")


class App:
    def __init__(
        self, settings: Settings, registry: Registry,
        on_stall: Callable[[str, float], None] | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.stream = stream = settings.stream(registry.opt_in)
        for name in sorted(registry.opt_in):
            if not stream.policy(name).enabled:
                log.info("analysis installed but not enabled (enable it in [analyses.NAME])",
                         analysis=name)  # fmt: skip
        register_secrets(v for k, v in stream.kafka.items() if k in SECRET_KAFKA_KEYS)
        url = settings.ledger_location()
        self.recorder = Recorder(Ledger(url) if url else None, settings.instance)
        self.board = DashboardState(list(settings.detectors))
        stall = on_stall or (restart_process if settings.on_stall == "restart" else exit_process)
        self.service = Service(stream, registry, Fanout(Observer(self.board), self.recorder),
                               stall)  # fmt: skip
        self.http: OpsServer | None = None
        # read when scraped: a stuck loop cannot update a gauge of its own (a weak reference:
        # the process-wide gauge must not keep a stopped service and its clients alive)
        service = weakref.ref(self.service)
        LOOP_SECONDS_SINCE_TURN.set_function(
            lambda: time.monotonic() - s.last_turn if (s := service()) else float("nan")
        )
        if self.recorder.writes is not None:  # bulk writes wait out an alert in flight
            self.recorder.writes.busy = lambda: bool(
                (s := service()) and s.pipeline and s.pipeline.in_flight()
            )

    @property
    def ready(self) -> threading.Event:
        return self.service.ready

    def stop(self) -> None:
        self.service.stop()

    def run(self) -> None:
        self._start_http()
        if self.recorder.ledger is not None:  # the dashboard's alerts from before a restart
            threading.Thread(target=self._restore, name="mmstream-restore", daemon=True).start()
        try:
            with settled():  # the garbage collector, for a long run (ops/process.py)
                self.service.run()
        finally:
            if self.http is not None:
                self.http.stop()
            self.recorder.close()  # the ledger's background writes, finished

    def _read_alert(self, topic: str, partition: int, offset: int) -> Alert | None:
        s = self.stream
        try:
            msg = message_at(dict(s.kafka), topic, partition, offset)
            if msg is None:
                return None
            return read_alert(msg, dict(s.routes), s.limits, message_time_ns(msg))
        except Exception:  # gone, or no longer decodable with this configuration
            return None

    def _restore(self) -> None:
        assert self.recorder.ledger is not None
        try:
            n = restore(self.board, self.recorder.ledger, self._read_alert)
            log.info("dashboard: alerts restored from the ledger", alerts=n)
        except Exception as exc:  # the dashboard matters less than the alerts
            log.error("dashboard: restoring alerts from the ledger failed", error=str(exc))

    def _start_http(self) -> None:
        s = self.settings
        if s.http_port is None:
            return
        ledger = self.recorder.ledger

        def provenance(rid: str) -> str | None:
            found = gather(ledger, rid) if ledger is not None else None
            return None if found is None else render_text(found)

        health = Health(self.service.alive, self.service.readiness)
        try:
            console = Console(ledger, dict(self.stream.kafka), self.stream.topics.deadletter)
            self.http = OpsServer(s.http_host, s.http_port, self.board, health, provenance,
                                  console)  # fmt: skip
        except OSError as exc:  # alerts matter more than the dashboard: say so, go on
            log.error("dashboard and metrics NOT served: cannot listen",
                      host=s.http_host, port=s.http_port, error=str(exc))  # fmt: skip
            return
        self.http.start()
        log.info("dashboard and metrics", address=self.http.address)
