"""Metrics and the dashboard, as observers of the stream's events (stream/events.py)."""

from __future__ import annotations

from mmstream.formats.run_stats import decode_run_stats
from mmstream.model import NS_PER_S as _NS
from mmstream.model import Alert, DetectorStatus, Livetime, Window
from mmstream.ops import metrics as m
from mmstream.ops.state import DashboardState, ResultView
from mmstream.stream.events import Delivered, Events
from mmstream.stream.gaps import Gap
from mmstream.stream.runs import Job, Retraction, RunReport
from mmstream.times import format_utc, now_ns


class Observer(Events):
    """Prometheus metrics, and what the dashboard shows."""

    def __init__(self, board: DashboardState) -> None:
        self.board = board
        # each made result's status, until it is published (its metric is labelled by it)
        self._status: dict[str, str] = {}

    def message_consumed(self, topic: str, count: int = 1) -> None:
        m.MESSAGES_CONSUMED.labels(topic).inc(count)

    def alert_input(
        self, ref: tuple[str, int, int], status: str, alert: Alert | None = None,
        reason: str | None = None, archive: str | None = None,
    ) -> None:  # fmt: skip
        if status == "decoded" and alert is not None:
            self.board.alert_seen(alert, status)

    def deadlettered(self, stage: str, exception: str, detector: bool) -> None:
        m.DEADLETTERS.labels(stage, exception).inc()

    def detector_events(self, detector: str, count: int) -> None:
        self.board.detector_events(detector, count)

    def detector_status(self, status: DetectorStatus) -> None:
        self.board.detector_status(status.detector, status.state, status.reason)
        m.DETECTOR_LIVE.labels(status.detector).set(1 if status.state == "GOOD" else 0)

    def duplicate_events(self, detector: str, count: int) -> None:
        m.DUPLICATE_EVENTS.labels(detector).inc(count)

    def late_event(self, detector: str) -> None:
        m.LATE_EVENTS.labels(detector).inc()

    def data_gap(self, gap: Gap) -> None:
        m.DATA_GAP_EVENTS.labels(gap.detector).inc(gap.missing)

    def data_gap_totals(self, detector: str, open_events: int, healed_events: int) -> None:
        m.DATA_GAP_HEALED_EVENTS.labels(detector).inc(healed_events)
        m.DATA_GAP_OPEN_EVENTS.labels(detector).set(open_events)

    def gauges(
        self, waiting: int, watermarks: dict[str, int | None], lag: dict[tuple[str, int], int],
        broker_up: bool,
    ) -> None:  # fmt: skip
        m.WINDOWS_WAITING.set(waiting)
        now = now_ns()
        for d, mark in watermarks.items():
            self.board.watermark(d, mark)
            if mark is not None:
                m.WATERMARK_DELAY_SECONDS.labels(d).set((now - mark) / _NS)
        by_topic: dict[str, int] = {}
        for (topic, partition), n in lag.items():
            m.CONSUMER_LAG.labels(topic, str(partition)).set(n)
            by_topic[topic] = by_topic.get(topic, 0) + n
        self.board.lag(by_topic)
        m.BROKER_UP.set(1 if broker_up else 0)

    def run_started(self, job: Job) -> None:
        m.ANALYSES_RUNNING.labels(job.spec.name).inc()

    def run_abandoned(self, job: Job) -> None:
        m.ANALYSES_RUNNING.labels(job.spec.name).dec()

    def run_finished(self, r: RunReport) -> None:
        name, inp, outcome = r.job.spec.name, r.inp, r.outcome
        self._status[r.result_id] = str(r.status)
        if len(self._status) > 10_000:  # runs whose result never went out (revoked)
            self._status.pop(next(iter(self._status)))
        m.ANALYSES_RUNNING.labels(name).dec()
        m.ANALYSIS_RUNS.labels(name, str(r.status)).inc()
        m.ANALYSIS_CPU_SECONDS.labels(name).observe(r.cost.cpu_s)
        m.ANALYSIS_PEAK_MEMORY_BYTES.labels(name).set(r.cost.peak_memory_bytes)
        for d, lt in inp.livetime.items():
            if lt is not None:
                m.DETECTOR_LIVETIME_FRACTION.labels(d).set(lt.fraction)
        hits = {e.event_id for e in outcome.events}
        shown = [
            (ra, dec, str(eid) in hits)
            for cols in inp.events.values()
            for eid, ra, dec in zip(cols.event_id[:5000].tolist(), cols.ra_deg[:5000].tolist(),
                                    cols.dec_deg[:5000].tolist(), strict=True)
        ][:5000]  # fmt: skip
        excluded = tuple(
            (d, format_utc(e.start_ns), format_utc(e.end_ns) + f": {e.reason}")
            for d, lt in sorted(inp.livetime.items()) if lt is not None for e in lt.excluded
        )  # fmt: skip
        self.board.result_made(
            r.job.alert.alert_id,
            ResultView(r.result_id, r.job.spec.label, r.job.alert.revision, str(r.status),
                       outcome.summary, dict(outcome.statistics), inp.livetime_fraction(),
                       excluded, tuple(shown)),
        )  # fmt: skip

    def published(
        self, alert_id: str | None, delivered: list[Delivered], took_s: float,
        since_arrival_s: float | None,
    ) -> None:  # fmt: skip
        m.TRANSACTION_SECONDS.observe(took_s)
        for d in delivered:
            m.MESSAGES_PRODUCED.labels(d.topic).inc()
            if d.kind == "stats" and d.value is not None:
                stats = decode_run_stats(d.value)
                m.RUN_QUEUE_WAIT_SECONDS.labels(stats["analysis"]).observe(stats["queue_wait_s"])
                m.RUN_WALL_SECONDS.labels(stats["analysis"]).observe(stats["wall_s"])
            if d.kind != "result" or d.analysis is None:
                continue
            status = self._status.pop(d.result_id or "", "unknown")
            m.RESULTS_PUBLISHED.labels(d.analysis, status).inc()
            if since_arrival_s is not None:
                name = d.analysis.split("@")[0]
                m.ALERT_TO_RESULT_SECONDS.labels(name).observe(since_arrival_s)
            if alert_id is not None and d.result_id is not None:
                self.board.result_published(alert_id, d.result_id)

    def retracted(self, retraction: Retraction) -> None:
        self._status[retraction.result_id] = "RETRACTED"

    def transaction_failed(self) -> None:
        m.TRANSACTION_ABORTS.inc()

    def upstream(self, topic: str, silent_s: float, alive: bool) -> None:
        m.UPSTREAM_SILENT_SECONDS.labels(topic).set(silent_s)
        m.UPSTREAM_ALIVE.labels(topic).set(1 if alive else 0)
        self.board.upstream(topic, silent_s, alive)

    def livetime(self, window: Window, livetime: Livetime) -> None:
        self.board.livetime(window, livetime)

    def archive_error(self) -> None:
        m.ARCHIVE_ERRORS.inc()
