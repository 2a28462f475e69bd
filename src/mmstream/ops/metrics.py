"""Prometheus metrics (conventional names, base units). Served over HTTP by the ops server."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
    "Detector events found missing from per-source sequence numbers, by detector",
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
