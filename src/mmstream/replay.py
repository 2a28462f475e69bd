"""Reprocess recorded alerts and detector data through the live service's own code path.

``mmstream replay`` reads a time range of the input topics (from Kafka by
``offsets_for_times``, or streamed from the raw archive once Kafka has forgotten them),
hands every message to the same stages the live service wires (:class:`Pipeline`), runs
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

import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TextIO, cast

from confluent_kafka import Message, Producer
from confluent_kafka.admin import AdminClient

from mmstream.analyses.registry import Registry
from mmstream.config import Settings
from mmstream.errors import ConfigError
from mmstream.ledger.recorder import Recorder
from mmstream.ledger.store import Ledger, sqlite_url
from mmstream.model import NS_PER_S
from mmstream.ops.logging import get_logger
from mmstream.stream.archive import Keeper, read_archive
from mmstream.stream.events import Counts, Fanout
from mmstream.stream.history import history_reader, read_spans, spans
from mmstream.stream.pipeline import Pipeline
from mmstream.stream.publisher import SandboxPublisher
from mmstream.stream.topics import ensure_topics, large_message_config
from mmstream.stream.workers import make_pool

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


def _batches(messages: Iterable[Message], size: int = 1000) -> Iterator[list[Message]]:
    """Messages in lists of ``size`` (the feed's unit of work, as in the live loop)."""
    it = iter(messages)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _archive_messages(
    root: Path, topics: list[str], start_ns: int, end_ns: int, what: str
) -> Iterator[Message]:
    """Streamed from the archive's files (a first pass counts them, for the progress bar)."""
    span = (start_ns // 1_000_000, end_ns // 1_000_000)
    progress = Progress(what, sum(1 for _ in read_archive(root, topics, *span)))
    for msg in read_archive(root, topics, *span):
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
    stream = replace(settings.stream(registry.opt_in), archive_dir=None)
    kafka = dict(stream.kafka)
    siblings = [f"{sandbox}.{x}" for x in ("notices", "stats", "deadletter")]
    ensure_topics(AdminClient(kafka), [sandbox, *siblings])
    counts = Counts()
    url = settings.ledger_location()
    recorder = Recorder(Ledger(url) if url else None, settings.instance)
    events = Fanout(counts, recorder)
    topics = stream.topics

    def producer() -> Producer:
        return Producer(large_message_config({**kafka, "enable.idempotence": True,
                                              "linger.ms": 5}))  # fmt: skip

    publisher = SandboxPublisher(producer, events, topics.deadletter, sandbox,
                                 topics.result_prefix, topics.notice_prefix,
                                 topics.stats)  # fmt: skip
    pool = make_pool(stream.run.workers, sorted({x.func.__module__ for x in registry}))
    pipeline = Pipeline(stream, registry, events, publisher, pool,
                        Keeper(None, events.archive_error))  # fmt: skip
    pipeline.refusals.producer = dead_letters = producer()
    detector_topics = [t for d in topics.detectors for t in (topics.events(d), topics.status(d))]

    def read(names: list[str], a: int, b: int, what: str) -> Iterable[Message]:
        if source == "archive":
            return _archive_messages(archive_dir or settings.archive_dir(), names, a, b, what)
        return _kafka_messages(settings, names, a, b, what)

    summary = ReplaySummary(sandbox=sandbox)
    try:
        # conditions from their beginning, as the live service reads them: a calibration set
        # long before the range still applies in it
        context_topics = [topics.context(d) for d in topics.detectors]
        for batch in _batches(read(context_topics, 0, end_ns + margin, "context")):
            pipeline.detector_messages(batch)
        for batch in _batches(
            read(detector_topics, start_ns - margin, end_ns + margin, "detector")
        ):
            pipeline.detector_messages(batch)
            summary.detector_messages += len(batch)
        pipeline.feed.all_read()
        # alerts are few: sorted by when they were written, across topics
        alerts = sorted(
            read(list(topics.alerts), start_ns, end_ns, "alerts"),
            key=lambda m: (m.timestamp()[1], m.topic() or "", m.partition() or 0, m.offset() or 0),
        )
        for msg in alerts:
            pipeline.alert_message(msg, msg.timestamp()[1] * 1_000_000)
            summary.alerts += 1
            pipeline.step()
        pipeline.drain()
    finally:
        pipeline.runner.close()
        recorder.close()  # the ledger's background writes, finished
    for name, count in counts.counts.items():
        if name.startswith("published:"):
            summary.by_analysis[name.removeprefix("published:")] = count
    summary.results = sum(
        n for t, n in summary.by_analysis.items() if t.startswith(topics.result_prefix)
    )
    publisher.producer.flush(30)
    dead_letters.flush(30)
    return summary
