"""The ops HTTP server: Prometheus metrics, health, readiness and the dashboard, on one port.

``/metrics``          Prometheus text format
``/healthz``          200 while the service loop turns (within ``stall_limit_s``); 503 when
                      it is stuck: an orchestrator should restart the process
``/readyz``           200 once connected, the detector store rebuilt and alerts consumed;
                      503 otherwise: route no traffic to it, but do not restart it
``/``                 dashboard: detectors and recent alerts (refreshes itself)
``/alert/<id>``       one alert: revisions, results, provenance, sky map
``/skymap/<id>.png``  the localization (Mollweide, 50/90 % contours, the window's events)
``/jobs``             waiting and running jobs with why they wait, failures with their error
``/deadletters``      dead letters by reason; ``/deadletter/<partition>/<offset>`` the original
``/livetime``         each detector's livetime timeline, excluded intervals and reasons
``/latency``          alert-to-result latency and consumer lag (``/plot/*.png``)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mmstream.ops.console import Console
from mmstream.ops.console_pages import deadletters_page, jobs_page, latency_page, livetime_page
from mmstream.ops.logging import get_logger
from mmstream.ops.pages import alert_page, index_page, missing_page
from mmstream.ops.plots import lag_png, latency_png
from mmstream.ops.skyplot import render_skymap_png
from mmstream.ops.state import AlertView, DashboardState

log = get_logger("mmstream.http")
IDLE_TIMEOUT_S = 10.0


@dataclass
class Health:
    """Answers for /healthz and /readyz, asked of the service each time."""

    alive: Callable[[], tuple[bool, str]]
    ready: Callable[[], tuple[bool, str]]


class OpsServer:
    def __init__(
        self,
        host: str,
        port: int,
        state: DashboardState,
        health: Health,
        provenance: Callable[[str], str | None] = lambda rid: None,
        console: Console | None = None,
    ) -> None:
        self.state, self.health, self.provenance = state, health, provenance
        self.console = console or Console(None, None, "mmstream.deadletter")
        self._png_cache: dict[tuple[str, str, int], bytes] = {}
        self._png_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            # an idle or slow client's connection is closed after this long, freeing its
            # thread (400 idle connections would otherwise hold 400 threads for ever)
            timeout = IDLE_TIMEOUT_S

            def _answer(self, body_too: bool) -> None:
                try:
                    status, ctype, body = server.route(unquote(self.path.split("?")[0]))
                except Exception as exc:  # a page bug must not take the service down
                    log.exception("dashboard page failed", path=self.path)
                    status, ctype, body = 500, "text/plain", f"error: {exc}\n".encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body_too:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(body_too=True)

            def do_HEAD(self) -> None:  # probes and load balancers use it
                self._answer(body_too=False)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds would drown the log

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.address = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="mmstream-http",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, path: str) -> tuple[int, str, bytes]:
        html = "text/html; charset=utf-8"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest()
        if path in ("/healthz", "/readyz"):
            ok, why = (self.health.alive if path == "/healthz" else self.health.ready)()
            return (
                (200 if ok else 503),
                "text/plain",
                f"{'ok' if ok else 'not ok'}: {why}\n".encode(),
            )
        if path == "/":
            return 200, html, index_page(self.state)
        if path.startswith("/alert/"):
            view = self.state.alert(path.removeprefix("/alert/"))
            if view is None:
                return 404, html, missing_page(f"no recent alert {path.removeprefix('/alert/')}")
            return 200, html, alert_page(view, self.provenance)
        if (page := self._console_page(path)) is not None:
            return page
        if path.startswith("/skymap/") and path.endswith(".png"):
            view = self.state.alert(path.removeprefix("/skymap/").removesuffix(".png"))
            if view is None:
                return 404, "text/plain", b"no such alert\n"
            return 200, "image/png", self._skymap(view)
        return 404, html, missing_page(f"no page {path}")

    def _console_page(self, path: str) -> tuple[int, str, bytes] | None:
        html, c = "text/html; charset=utf-8", self.console
        pages: dict[str, Callable[[], bytes]] = {
            "/jobs": lambda: jobs_page(c), "/deadletters": lambda: deadletters_page(c),
            "/livetime": lambda: livetime_page(self.state), "/latency": lambda: latency_page(c),
        }  # fmt: skip
        if path in pages:
            return 200, html, pages[path]()
        if path == "/plot/latency.png":
            return 200, "image/png", latency_png(c.run_stats())
        if path == "/plot/lag.png":
            return 200, "image/png", lag_png(self.state.lag_history())
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "deadletter" and all(x.isdigit() for x in parts[2:]):
            try:
                dl = c.deadletter(int(parts[2]), int(parts[3]))
            except Exception as exc:
                return 404, "text/plain", f"{exc}\n".encode()
            return 200, "application/octet-stream", dl.value or b""
        return None

    def _skymap(self, view: AlertView) -> bytes:
        """Rendered once per (alert, revision, events shown): a render takes about a second."""
        a = view.alert
        with_events = [r for r in view.results.values() if r.revision == a.revision and r.events]
        events = max((r.events for r in with_events), key=len, default=())
        key = (a.alert_id, a.revision, len(events))
        with self._png_lock:
            if key not in self._png_cache:
                title = f"{a.alert_id} {a.revision}: {len(events)} event(s) in the window"
                self._png_cache[key] = render_skymap_png(a.localization, events, title)
                while len(self._png_cache) > 100:
                    self._png_cache.pop(next(iter(self._png_cache)))
            return self._png_cache[key]
