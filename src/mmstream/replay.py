"""Reprocess recorded alerts and detector data through the live service's own code path.

``mmstream replay`` reads a time range of the input topics (from Kafka by
``offsets_for_times``, or from the raw archive once Kafka has forgotten them), hands every
message to the same ``Service.handle_detector`` / ``handle_alert`` the live loop uses, runs
the analyses, and publishes the results to a sandbox topic instead of the live ones.

The messages keep their original topic, partition and offset, so the provenance a result
carries is the live one: with the same inputs and the same code, a replayed result payload
is byte-identical to the live one (the publication time is only in the headers).

Detector data are loaded first, then the alerts in the order they were written; every
analysis runs once all its data are in, so a window whose live result came out
INCOMPLETE (deadline passed) may replay as COMPLETED. An UPDATE supersedes the replayed
result of its earlier revision only if that revision is inside the replayed range.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from mmstream.analyses.registry import Registry
from mmstream.config import Settings
from mmstream.errors import ConfigError
from mmstream.ledger.store import sqlite_url
from mmstream.model import NS_PER_S
from mmstream.ops.logging import get_logger
from mmstream.stream.archive import read_archive
from mmstream.stream.history import history_reader, read_spans, spans
from mmstream.stream.service import Service, _Outgoing
from mmstream.stream.topics import ensure_topics, large_message_config

log = get_logger("mmstream.replay")


@dataclass
class ReplaySummary:
    detector_messages: int = 0
    alerts: int = 0
    results: int = 0
    sandbox: str = ""
    by_analysis: dict[str, int] = field(default_factory=dict)


class Progress:
    """A one-line progress bar on stderr (a line per update when not a terminal)."""

    def __init__(self, what: str, total: int, out: TextIO = sys.stderr) -> None:
        self.what, self.total, self.out = what, max(total, 1), out
        self.done = 0
        self._shown = 0.0
        self._tty = out.isatty()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._shown >= (0.2 if self._tty else 5.0) or self.done >= self.total:
            self._shown = now
            self._show()

    def _show(self) -> None:
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(30 * frac)
        line = f"[replay] {self.what:<9} |{bar:<30}| {self.done}/{self.total}"
        self.out.write(("\r" + line) if self._tty else (line + "\n"))
        self.out.flush()

    def close(self) -> None:
        self._show()
        if self._tty:
            self.out.write("\n")


class ReplayService(Service):
    """The service without consumers: fed by :func:`replay`, publishing to the sandbox."""

    def __init__(self, settings: Settings, registry: Registry, sandbox: str) -> None:
        super().__init__(settings, registry, on_stall=lambda call, s: None)
        self.sandbox = sandbox
        self.heartbeats: dict[str, int] = {}

    def _connect(self) -> None:
        ensure_topics(AdminClient(self.kafka), [self.sandbox, *self._side_topics()])
        self.producer = Producer(
            large_message_config({**self.kafka, "enable.idempotence": True, "linger.ms": 5})
        )
        self.plain_producer = self.producer

    def _side_topics(self) -> list[str]:
        return [f"{self.sandbox}.notices", f"{self.sandbox}.deadletter"]

    def _heartbeat(self, detector: str, time_ns: int) -> None:
        self.heartbeats[detector] = max(self.heartbeats.get(detector, time_ns), time_ns)

    def _route(self, topic: str) -> str:
        s = self.settings
        if topic.startswith(s.result_topic_prefix):
            return self.sandbox
        if topic.startswith(s.notice_topic_prefix):
            return f"{self.sandbox}.notices"
        return f"{self.sandbox}.deadletter"

    def _transact_once(self, item: _Outgoing) -> None:
        """No transaction and no consumer offsets: produce, wait for every acknowledgement."""
        errors = self._produce_all(item)
        if self.producer.flush(60) > 0:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "replay results unsent"))
        if errors:
            raise KafkaException(errors[0])

    def data_loaded(self) -> None:
        """All detector data are in: each watermark moves to its detector's last data."""
        self._flush_tally()
        for detector, time_ns in self.heartbeats.items():
            self.store.advance_watermark(detector, time_ns)
        for detector in self.settings.detectors:
            if (newest := self.store.newest_ns(detector)) is not None:
                self.store.advance_watermark(detector, newest)

    def finish(self) -> None:
        """Run the jobs still waiting (their data end early: INCOMPLETE), publish all."""
        self._run_ready_jobs()
        for job in self.jobs:
            marks = [self.store.watermark(d) for d in job.detectors]
            self._run_job(job, complete=all(m is not None and m >= job.window.end_ns
                                            for m in marks))  # fmt: skip
        self.jobs = []
        deadline = time.monotonic() + 120
        while self.outbox and time.monotonic() < deadline:
            self._outbox_retry_at = 0.0
            self._flush_outbox()
        if self.outbox:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "results left unsent"))


def replay_settings(settings: Settings, sandbox: str, ledger_url: str | None) -> Settings:
    """The live settings, with a ledger of its own and no archive (inputs are recorded)."""
    url = ledger_url or sqlite_url(settings.data_dir / "replays" / sandbox)
    return settings.model_copy(
        update={"ledger_url": url, "archive": False, "instance": f"replay:{sandbox}"}
    )


def _kafka_messages(
    settings: Settings, topics: list[str], start_ns: int, end_ns: int, what: str
) -> Iterator[Message]:
    """Committed messages of ``topics`` with start <= timestamp < end, partition by partition."""
    consumer = history_reader(settings.kafka_config(), "replay")
    try:
        ranges = spans(consumer, topics, start_ns // 1_000_000, end_ns // 1_000_000)
        progress = Progress(what, sum(last - tp.offset for tp, last in ranges))
        for msg in read_spans(consumer, ranges):
            progress.step()
            if start_ns // 1_000_000 <= msg.timestamp()[1]:  # producers may write out of order
                yield msg
        progress.close()
    finally:
        consumer.close()


def _archive_messages(
    root: Path, topics: list[str], start_ns: int, end_ns: int, what: str
) -> Iterator[Message]:
    found = list(read_archive(root, topics, start_ns // 1_000_000, end_ns // 1_000_000))
    progress = Progress(what, len(found))
    for msg in found:
        progress.step()
        yield cast(Message, msg)
    progress.close()


def replay(
    settings: Settings,
    registry: Registry,
    *,
    start_ns: int,
    end_ns: int,
    sandbox: str,
    source: Literal["kafka", "archive"] = "kafka",
    archive_dir: Path | None = None,
    margin_s: float | None = None,
) -> ReplaySummary:
    """Replay alerts written in [start, end) with the detector data around them."""
    if end_ns <= start_ns:
        raise ConfigError("replay: --to must be after --from")
    if sandbox in settings.alert_topics or sandbox.startswith(settings.result_topic_prefix):
        raise ConfigError(f"replay: {sandbox!r} is a live topic; choose a sandbox topic")
    margin = int((settings.lookback_s if margin_s is None else margin_s) * NS_PER_S)
    service = ReplayService(settings, registry, sandbox)
    if (url := settings.ledger_location()) is not None:
        from mmstream.ledger.store import Ledger
        from mmstream.stream.recording import Recorder

        service.recorder = Recorder(Ledger(url), settings.instance)
    service._connect()
    detector_topics = [
        t
        for d in settings.detectors
        for t in (settings.detector_topic(d), settings.status_topic(d))
    ]

    def read(topics: list[str], a: int, b: int, what: str) -> Iterable[Message]:
        if source == "archive":
            return _archive_messages(archive_dir or settings.archive_dir(), topics, a, b, what)
        return _kafka_messages(settings, topics, a, b, what)

    summary = ReplaySummary(sandbox=sandbox)
    heartbeats: dict[str, int] = {}
    for msg in read(detector_topics, start_ns - margin, end_ns + margin, "detector"):
        service.handle_detector(msg, heartbeats)
        summary.detector_messages += 1
    for detector, time_ns in heartbeats.items():
        service._heartbeat(detector, time_ns)
    service.data_loaded()
    alerts = sorted(
        read(list(settings.alert_topics), start_ns, end_ns, "alerts"),
        key=lambda m: (m.timestamp()[1], m.topic() or "", m.partition() or 0, m.offset() or 0),
    )
    for msg in alerts:
        service.handle_alert(msg, msg.timestamp()[1] * 1_000_000)
        summary.alerts += 1
        service._run_ready_jobs()
        service._flush_outbox()
    service.finish()
    for name, count in service.counters.items():
        if name.startswith("published:"):
            summary.by_analysis[name.removeprefix("published:")] = count
    summary.results = sum(
        n for t, n in summary.by_analysis.items() if t.startswith(settings.result_topic_prefix)
    )
    service.producer.flush(30)
    return summary
