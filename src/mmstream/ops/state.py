"""What the dashboard shows: recent alerts with their revisions and results, and detector status.

The service loop writes, the HTTP threads read; every access holds one lock, and readers get
copies. Bounded: the newest ``max_alerts`` alerts are kept, older ones are dropped (the ledger
and the result topics keep everything).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Any

from mmstream.model import Alert, Livetime, Window


@dataclass(frozen=True)
class RevisionView:
    revision: str
    alert_type: str
    received_at: float  # unix seconds
    status: str  # decoded / duplicate / skipped:test ...


@dataclass(frozen=True)
class ResultView:
    result_id: str
    analysis: str  # name@version
    revision: str
    status: str
    summary: str
    statistics: dict[str, float]
    livetime_fraction: float | None
    excluded: tuple[tuple[str, str, str], ...]  # detector, start, end... with reason
    events: tuple[tuple[float, float, bool], ...]  # ra, dec, coincident
    published: bool = False


@dataclass
class AlertView:
    alert: Alert
    revisions: list[RevisionView] = field(default_factory=list)
    results: dict[str, ResultView] = field(default_factory=dict)  # by result id


@dataclass
class DetectorView:
    name: str
    state: str = "unknown"  # GOOD / BAD / unknown (no status yet)
    reason: str | None = None
    last_status_s: float | None = None
    watermark_ns: int | None = None
    event_times: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=600))

    def rate_hz(self, now: float, span_s: float = 600.0) -> float:
        """Events per second over the last ``span_s`` of arrival (counted per batch)."""
        n = sum(count for t, count in self.event_times if now - t <= span_s)
        return n / span_s


class DashboardState:
    def __init__(self, detectors: list[str], max_alerts: int = 200) -> None:
        self._lock = threading.Lock()
        self._alerts: OrderedDict[str, AlertView] = OrderedDict()
        self._detectors = {d: DetectorView(d) for d in detectors}
        self._upstream: dict[str, tuple[float, bool]] = {}
        self._lag: deque[tuple[float, dict[str, int]]] = deque(maxlen=2000)  # total per topic
        self._livetime: dict[str, tuple[Window, Livetime]] = {}
        self.max_alerts = max_alerts

    # ------------------------------------------------------------ the service writes
    def alert_seen(self, alert: Alert, status: str) -> None:
        with self._lock:
            view = self._alerts.pop(alert.alert_id, None)
            if view is None:
                view = AlertView(alert)
            if status == "decoded":
                view.alert = alert
            view.revisions.append(
                RevisionView(alert.revision, str(alert.alert_type), time.time(), status)
            )
            self._alerts[alert.alert_id] = view  # newest last
            while len(self._alerts) > self.max_alerts:
                self._alerts.popitem(last=False)

    def restored(self, view: AlertView) -> None:
        """An alert read back from the ledger after a restart: older than any seen live."""
        with self._lock:
            if view.alert.alert_id in self._alerts or len(self._alerts) >= self.max_alerts:
                return
            self._alerts[view.alert.alert_id] = view
            self._alerts.move_to_end(view.alert.alert_id, last=False)

    def lag(self, by_topic: dict[str, int]) -> None:
        with self._lock:
            self._lag.append((time.time(), by_topic))

    def lag_history(self) -> list[tuple[float, dict[str, int]]]:
        with self._lock:
            return list(self._lag)

    def livetime(self, window: Window, livetime: Livetime) -> None:
        with self._lock:
            self._livetime[livetime.detector] = (window, livetime)

    def livetimes(self) -> list[tuple[Window, Livetime]]:
        with self._lock:
            return [self._livetime[d] for d in sorted(self._livetime)]

    def result_made(self, alert_id: str, result: ResultView) -> None:
        with self._lock:
            view = self._alerts.get(alert_id)
            if view is not None:
                view.results[result.result_id] = result

    def result_published(self, alert_id: str, result_id: str) -> None:
        with self._lock:
            view = self._alerts.get(alert_id)
            if view is not None and result_id in view.results:
                view.results[result_id] = replace(view.results[result_id], published=True)

    def detector_events(self, detector: str, count: int) -> None:
        with self._lock:
            view = self._detectors.setdefault(detector, DetectorView(detector))
            view.event_times.append((time.time(), count))

    def detector_status(self, detector: str, state: str, reason: str | None) -> None:
        with self._lock:
            view = self._detectors.setdefault(detector, DetectorView(detector))
            view.state, view.reason, view.last_status_s = state, reason, time.time()

    def upstream(self, topic: str, silent_s: float, alive: bool) -> None:
        with self._lock:
            self._upstream[topic] = (silent_s, alive)

    def upstreams(self) -> list[tuple[str, float, bool]]:
        """(topic, seconds since its last heartbeat, alive) of each watched upstream."""
        with self._lock:
            return [(t, s, a) for t, (s, a) in sorted(self._upstream.items())]

    def watermark(self, detector: str, time_ns: int | None) -> None:
        with self._lock:
            self._detectors.setdefault(detector, DetectorView(detector)).watermark_ns = time_ns

    # ------------------------------------------------------------- the pages read
    def alerts(self) -> list[AlertView]:
        """Newest first; copies."""
        with self._lock:
            return [
                AlertView(v.alert, list(v.revisions), dict(v.results))
                for v in reversed(self._alerts.values())
            ]

    def alert(self, alert_id: str) -> AlertView | None:
        with self._lock:
            v = self._alerts.get(alert_id)
            return None if v is None else AlertView(v.alert, list(v.revisions), dict(v.results))

    def detectors(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [
                {
                    "name": v.name,
                    "state": v.state,
                    "reason": v.reason,
                    "status_age_s": None if v.last_status_s is None else now - v.last_status_s,
                    "rate_hz": v.rate_hz(now),
                    "watermark_delay_s": None
                    if v.watermark_ns is None
                    else now - v.watermark_ns / 1e9,
                }
                for v in self._detectors.values()
            ]
