"""Prometheus metrics (conventional names, base units). Served over HTTP by the ops server."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter(
    "mmstream_messages_consumed_total", "Messages consumed, by topic", ["topic"]
)
DEADLETTERS = Counter(
    "mmstream_deadletters_total",
    "Messages sent to the dead-letter topic, by stage (decode/processing) and exception type",
    ["stage", "exception"],
)
RESULTS_PUBLISHED = Counter(
    "mmstream_results_published_total",
    "Results published, by analysis and status",
    ["analysis", "status"],
)
DATA_GAP_EVENTS = Counter(
    "mmstream_detector_missing_events_total",
    "Detector events found missing from per-source sequence numbers (holes found, whether or "
    "not they closed later), by detector",
    ["detector"],
)
DATA_GAP_HEALED_EVENTS = Counter(
    "mmstream_detector_healed_events_total",
    "Detector events that arrived late in a sequence hole (the hole shrank or closed)",
    ["detector"],
)
DATA_GAP_OPEN_EVENTS = Gauge(
    "mmstream_detector_open_gap_events",
    "Detector events missing now: the holes still open in the history held, by detector",
    ["detector"],
)
DUPLICATE_EVENTS = Counter(
    "mmstream_detector_duplicate_events_total",
    "Detector events delivered again (same detector, event_id and time): dropped",
    ["detector"],
)
LATE_EVENTS = Counter(
    "mmstream_detector_late_events_total",
    "Detector events that arrived in a window whose result was already published",
    ["detector"],
)
TRANSACTION_SECONDS = Histogram(
    "mmstream_publish_transaction_seconds",
    "Time to publish one alert's results with its offset in a Kafka transaction",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
MESSAGES_PRODUCED = Counter(
    "mmstream_messages_produced_total", "Messages published (committed), by topic", ["topic"]
)
CONSUMER_LAG = Gauge(
    "mmstream_consumer_lag_messages",
    "Messages not yet consumed, by topic and partition (alert and detector partitions)",
    ["topic", "partition"],
)
ALERT_TO_RESULT_SECONDS = Histogram(
    "mmstream_alert_to_result_seconds",
    "From an alert's arrival to its result's publication, by analysis",
    ["analysis"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
ANALYSIS_CPU_SECONDS = Histogram(
    "mmstream_analysis_cpu_seconds",
    "CPU time of one analysis run, by analysis",
    ["analysis"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60),
)
ANALYSIS_PEAK_MEMORY_BYTES = Gauge(
    "mmstream_analysis_peak_memory_bytes",
    "Peak Python-heap memory (numpy included) of the last run, by analysis",
    ["analysis"],
)
WINDOWS_WAITING = Gauge(
    "mmstream_windows_waiting", "Analysis jobs waiting for their window to close"
)
WATERMARK_DELAY_SECONDS = Gauge(
    "mmstream_detector_watermark_delay_seconds",
    "Wall-clock now minus the detector's watermark (event time known complete)",
    ["detector"],
)
DETECTOR_LIVE = Gauge(
    "mmstream_detector_live", "1 if the detector's last status was GOOD, else 0", ["detector"]
)
DETECTOR_LIVETIME_FRACTION = Gauge(
    "mmstream_detector_livetime_fraction",
    "Livetime fraction of the latest analysis window, by detector",
    ["detector"],
)
TRANSACTION_ABORTS = Counter(
    "mmstream_transaction_aborts_total", "Kafka transactions aborted (and retried)"
)
BROKER_UP = Gauge(
    "mmstream_broker_up", "1 while the last broker round trip (end offsets) succeeded"
)
UPSTREAM_SILENT_SECONDS = Gauge(
    "mmstream_upstream_heartbeat_silent_seconds",
    "Seconds since the last heartbeat on an upstream heartbeat topic (e.g. gcn.heartbeat)",
    ["topic"],
)
UPSTREAM_ALIVE = Gauge(
    "mmstream_upstream_alive", "1 while the upstream's heartbeats keep coming", ["topic"]
)
ARCHIVE_ERRORS = Counter("mmstream_archive_errors_total", "Raw-archive writes that failed")
ANALYSES_RUNNING = Gauge(
    "mmstream_analyses_running", "Analysis runs in flight (in a worker), by analysis", ["analysis"]
)
ANALYSIS_RUNS = Counter(
    "mmstream_analysis_runs_total",
    "Analysis runs finished, by analysis and result status (TIMED_OUT, FAILED, ...)",
    ["analysis", "status"],
)
RUN_QUEUE_WAIT_SECONDS = Histogram(
    "mmstream_run_queue_wait_seconds",
    "From a job's creation to its run's start (its window, the detectors' data, a worker), "
    "by analysis; from the statistics records",
    ["analysis"],
    buckets=(0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 900, 3600),
)
RUN_WALL_SECONDS = Histogram(
    "mmstream_run_wall_seconds",
    "From a run's start to its outcome collected, by analysis; from the statistics records",
    ["analysis"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300),
)
LOOP_SECONDS_SINCE_TURN = Gauge(
    "mmstream_loop_seconds_since_turn",
    "Seconds since the service loop last turned (read at each scrape; what /healthz judges)",
)
