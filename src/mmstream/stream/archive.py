"""The raw archive: every consumed input message, byte-exact, in append-only Avro files.

Kafka forgets (retention); the archive does not. Layout::

    <data_dir>/archive/<YYYY-MM-DD>/<topic>/<instance>-<start>.avro      (+ .sha256 when closed)

The day is the message's own timestamp (UTC), so a time range maps to a few folders. Files
are Avro object container files (any Avro library reads them, schema inside); the
``.sha256`` beside a closed file is in ``sha256sum`` format (``sha256sum -c`` checks it).
A file a crash left open has no checksum and may end in a torn block; readers stop there.

After a crash, messages not yet committed are consumed and archived again: readers drop
repeats by (topic, partition, offset).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any, BinaryIO, cast

import fastavro
from confluent_kafka import Message

from mmstream.formats.archive import ARCHIVE_SCHEMA
from mmstream.ops.logging import get_logger

log = get_logger("mmstream.archive")

_BATCH_MESSAGES = 10_000  # a segment's buffer is written out at this size, or at a flush
_NO_HEADERS = ()  # a tuple: a tuple of plain values is not tracked by the garbage collector
# (partition, offset, timestamp type, timestamp, key, value, headers) of a message
_Row = tuple[int, int, int, int, bytes | None, bytes | None, Any]


def _row(msg: Message) -> _Row:
    headers = cast(list[tuple[str, Any]] | None, msg.headers())
    return (msg.partition() or 0, msg.offset() or 0, *msg.timestamp(), msg.key(), msg.value(),
            [{"key": k, "value": v} for k, v in headers] if headers else _NO_HEADERS)  # fmt: skip


def _day_number(ts_ms: int) -> int:
    """The UTC day of a timestamp (now, for a message without one). By number: formatting
    a date for every message cost a quarter of the archive's time."""
    return (ts_ms if ts_ms >= 0 else time.time_ns() // 1_000_000) // 86_400_000


@dataclass(frozen=True)
class ArchivedMessage:
    """A message read back from the archive; quacks like a consumed confluent Message."""

    topic_: str
    partition_: int
    offset_: int
    timestamp_: tuple[int, int]
    key_: bytes | None
    value_: bytes | None
    headers_: list[tuple[str, bytes | None]]

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def timestamp(self) -> tuple[int, int]:
        return self.timestamp_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def headers(self) -> list[tuple[str, bytes | None]]:
        return self.headers_

    def error(self) -> None:
        return None


def _day(timestamp_ms: int) -> str:
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def _safe(topic: str) -> str:
    return topic.replace("/", "_")


def _private_dirs(path: Path) -> None:
    """Make ``path`` and its missing parents owner-only (0700): the archive holds every
    message consumed, byte-exact."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for p in reversed(missing):
        p.mkdir(mode=0o700, exist_ok=True)


def _private_file(path: Path) -> BinaryIO:
    """``path`` opened for writing, created owner-only (0600)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


class _Segment:
    def __init__(self, path: Path) -> None:
        _private_dirs(path.parent)
        self.path = path
        self.file: BinaryIO = _private_file(path)
        # zstandard: as small as deflate on these messages at a tenth of its CPU time; level
        # 1, not 3: an LVK alert's 780 KB of sky map took 9 ms at level 3, 4.5 ms at level 1
        # (and came out no bigger: its float tables hardly compress)
        self.writer = fastavro.write.Writer(self.file, ARCHIVE_SCHEMA, codec="zstandard",
                                            compression_level=1)  # fmt: skip
        self.topic = ""
        self.name = str(path)
        self.pending: list[_Row] = []
        self.last_used = time.monotonic()
        self.synced = True  # nothing written since the last fsync
        # it holds messages an offset commit moves past (alerts): fsynced before each commit
        self.commits = False

    def write(self) -> None:
        """The buffered messages as one record, into the writer's block."""
        if not self.pending:
            return
        # a map per column: transposing 10^4 tuples with zip(*...) costs 4 times as much
        parts, offsets, kinds, stamps, keys, values, headers = (
            tuple(map(itemgetter(i), self.pending)) for i in range(7)
        )
        self.pending = []
        self.last_used = time.monotonic()
        self.writer.write({"topic": self.topic, "partition": parts, "offset": offsets,
                           "timestamp_type": kinds, "timestamp_ms": stamps,
                           "key_size": _sizes(keys), "keys": b"".join(filter(None, keys)),
                           "value_size": _sizes(values),
                           "values": b"".join(filter(None, values)), "headers": headers,
                           "archived_at_ns": time.time_ns()})  # fmt: skip

    def close(self) -> None:
        self.write()
        self.writer.flush()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        with _private_file(self.path.with_name(self.path.name + ".sha256")) as f:
            f.write(f"{digest}  {self.path.name}\n".encode())


class RawArchive:
    """Appends consumed messages to the day's file for their topic; one writer per process."""

    def __init__(self, root: Path, instance: str) -> None:
        self.root = root
        self.stem = f"{_safe(instance)}-{time.time_ns()}"
        self._segments: dict[tuple[int, str], _Segment] = {}

    def append(self, msg: Message, *, commits: bool = False) -> Path:
        """Archive one message; returns the file it went to (kept by the ledger). ``commits``:
        an offset commit will move past it, so a durable flush fsyncs its file."""
        return self._segment(msg.topic() or "", _day_number(msg.timestamp()[1]),
                             [_row(msg)], commits).path  # fmt: skip

    def append_batch(self, msgs: Sequence[Message]) -> list[str]:
        """Archive a consumed batch (no offset commit moves past it); the file each message
        went to, in order. One pass over the batch: with a call per message (``append``),
        the archive's share of the ingest benchmark (10^6 single-event messages) was 9.6 µs
        a message on a slow day, against 4.2 µs so."""
        files: list[str] = []
        for topic, group in groupby(msgs, key=methodcaller("topic")):
            # a segment per day: a consumed batch is nearly always of one
            for day, part in groupby([_row(m) for m in group], key=lambda r: _day_number(r[3])):
                rows = list(part)
                files += [self._segment(topic or "", day, rows, False).name] * len(rows)
        return files

    def _segment(self, topic: str, day: int, rows: list[_Row], commits: bool) -> _Segment:
        seg = self._segments.get((day, topic))
        if seg is None:
            path = self.root / _day(day * 86_400_000) / _safe(topic) / f"{self.stem}.avro"
            seg = self._segments[(day, topic)] = _Segment(path)
            seg.topic = topic
        seg.pending += rows
        if len(seg.pending) >= _BATCH_MESSAGES:
            seg.write()
        seg.synced = False
        seg.commits = seg.commits or commits
        return seg

    def flush(self, idle_close_s: float = 3600.0, *, durable: bool = False) -> None:
        """Write buffered records out (and, ``durable``, fsync the files of messages an
        offset commit moves past: done before an alert's offset commits, so a host crash
        cannot lose an input whose results are out); close (with checksum) files idle for
        ``idle_close_s``. Detector messages commit no offset (they are read again from
        Kafka after a restart), so their files are fsynced only when they close."""
        now = time.monotonic()
        for key, seg in list(self._segments.items()):
            if not seg.pending and now - seg.last_used > idle_close_s:
                seg.close()
                del self._segments[key]
            else:
                seg.write()
                seg.writer.flush()
                seg.file.flush()
                if durable and seg.commits and not seg.synced:
                    os.fsync(seg.file.fileno())
                    seg.synced = True

    def unsynced(self) -> bool:
        """Whether a message an offset commit moves past is written and not yet fsynced."""
        return any(seg.commits and not seg.synced for seg in self._segments.values())

    def close(self) -> None:
        for seg in self._segments.values():
            seg.close()
        self._segments.clear()


def read_archive(
    root: Path, topics: Iterable[str], start_ms: int, end_ms: int
) -> Iterator[ArchivedMessage]:
    """Archived messages of ``topics`` with start_ms <= timestamp < end_ms, each position
    once, in (topic, partition, offset) order."""
    wanted = {_safe(t): t for t in topics}
    day = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).date()
    last = dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC).date()
    found: dict[tuple[str, int, int], ArchivedMessage] = {}
    while day <= last:
        for safe in wanted:
            for path in sorted((root / day.isoformat() / safe).glob("*.avro")):
                for rec in _records(path):
                    if start_ms <= rec["timestamp_ms"] < end_ms:
                        key = (rec["topic"], rec["partition"], rec["offset"])
                        found.setdefault(key, _message(rec))
        day += dt.timedelta(days=1)
    for key in sorted(found):
        yield found[key]


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """One record per message (a batch record unrolled), stopping (with a warning) at a
    block a crash tore."""
    data = io.BytesIO(path.read_bytes())
    try:
        reader = fastavro.reader(data)
        batches = cast(dict[str, Any], reader.writer_schema).get("name") == "mmstream.ArchivedBatch"
        for rec in reader:
            yield from _unrolled(cast(dict[str, Any], rec)) if batches else [cast(Any, rec)]
    except Exception as exc:  # a torn last block: what came before is good
        log.warning("archive file ends early", path=str(path), error=str(exc))


def _sizes(blobs: tuple[bytes | None, ...]) -> list[int]:
    return [-1 if b is None else len(b) for b in blobs]


def _cut(blob: bytes, sizes: list[int]) -> Iterator[bytes | None]:
    at = 0
    for size in sizes:
        yield None if size < 0 else blob[at : at + size]
        at += max(size, 0)


def _unrolled(r: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The messages of one batch record, each as the per-message record of before."""
    for part, offset, kind, ms, key, value, headers in zip(
        r["partition"], r["offset"], r["timestamp_type"], r["timestamp_ms"],
        _cut(r["keys"], r["key_size"]), _cut(r["values"], r["value_size"]), r["headers"],
        strict=True,
    ):  # fmt: skip
        yield {"topic": r["topic"], "partition": part, "offset": offset, "timestamp_type": kind,
               "timestamp_ms": ms, "key": key, "value": value, "headers": headers}  # fmt: skip


def _message(rec: dict[str, Any]) -> ArchivedMessage:
    return ArchivedMessage(
        rec["topic"],
        rec["partition"],
        rec["offset"],
        (rec["timestamp_type"], rec["timestamp_ms"]),
        rec["key"],
        rec["value"],
        [(h["key"], h["value"]) for h in rec["headers"]],
    )


class Keeper:
    """The archive as the loop uses it: a failed write is logged and reported, never raised
    (the archive is a record: a full disk must not stop alerts)."""

    def __init__(self, archive: RawArchive | None, on_error: Callable[[], None]) -> None:
        self.archive, self.on_error = archive, on_error
        self.flushed = 0.0

    def keep(self, msg: Message, *, commits: bool = False) -> str | None:
        """Keep the raw message; where it went (None when archiving is off or failed).
        ``commits``: its offset will be committed (an alert's), see RawArchive.append."""
        if self.archive is None:
            return None
        try:
            return str(self.archive.append(msg, commits=commits))
        except Exception as exc:
            self.on_error()
            log.error("archive write failed", topic=msg.topic(), error=str(exc))
            return None

    def unsynced(self) -> bool:
        """An alert kept and not yet fsynced (RawArchive.unsynced)."""
        return self.archive is not None and self.archive.unsynced()

    def keep_batch(self, msgs: Sequence[Message]) -> list[str | None]:
        """``keep`` for a consumed batch of detector messages, in one call."""
        if self.archive is not None and msgs:
            try:
                return list(self.archive.append_batch(msgs))
            except Exception as exc:
                self.on_error()
                log.error("archive write failed", topic=msgs[0].topic(), error=str(exc))
        return [None] * len(msgs)

    def flush(self, durable: bool = False) -> None:
        """Write out (``durable``: fsync, before an offset commits past what it holds)."""
        self.flushed = time.monotonic()
        if self.archive is not None:
            try:
                self.archive.flush(durable=durable)
            except Exception as exc:
                self.on_error()
                log.error("archive flush failed", error=str(exc))

    def close(self) -> None:
        if self.archive is not None:
            with contextlib.suppress(Exception):
                self.archive.close()
