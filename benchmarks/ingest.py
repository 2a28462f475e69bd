"""Ingest throughput: the same Avro detector events on the same topic, read three ways.

- the limit: a bare confluent-kafka consume loop, fastavro decode into numpy columns;
- mmstream: the live service's own detector path (``DetectorFeed``) into its store;
- Quix Streams (peer): ``quix_ingest.py``, run in the peers' environment by ``suite.py``.

Each figure is events per second of wall time from the first message to the last, and events
per CPU-second of the process (librdkafka's threads included): "per core".
"""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import fastavro
import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from mmstream.feeders import background_events
from mmstream.formats.avro import load_schema, schema_fingerprint
from mmstream.formats.detector import encode_batch, encode_event
from mmstream.formats.limits import Limits
from mmstream.model import NS_PER_S
from mmstream.ops.process import settled
from mmstream.stream.archive import Keeper, RawArchive
from mmstream.stream.events import Counts
from mmstream.stream.feed import DetectorFeed
from mmstream.stream.latewatch import LateWatch
from mmstream.stream.refusals import Refusals
from mmstream.stream.settings import SchedulePolicy, Topics
from mmstream.stream.store import EventStore
from mmstream.stream.topics import ensure_topics
from mmstream.times import now_ns


@dataclass
class Rate:
    events: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.events / self.cpu_s


def produce_dataset(bootstrap: str, detector: str, n: int, batch: int) -> str:
    """A fresh topic with ``n`` events, one per message (batch=1) or ``batch`` per message."""
    topic = f"detector.{detector}.events"
    ensure_topics(AdminClient({"bootstrap.servers": bootstrap}), [topic])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "compression.type": "lz4", "batch.size": 1_000_000})  # fmt: skip
    end = now_ns()
    chunk = 100_000
    chunks = -(-n // chunk)
    for i, start in enumerate(range(0, n, chunk)):
        size = min(chunk, n - start)
        # the last hour, in time order as a detector sends it: chunk i in its own slice
        lo = end - (chunks - i) * 3600 * NS_PER_S // chunks
        hi = lo + 3600 * NS_PER_S // chunks
        # Poisson: ask for 2 % more than needed, keep exactly ``size``
        events = background_events(detector, lo, hi, 1.02 * size * chunks / 3600, seed=start,
                                   first_seq=start)[:size]  # fmt: skip
        assert len(events) == size
        if batch == 1:
            values = [encode_event(e) for e in events]
        else:
            values = [encode_batch(detector, events[i:i + batch])
                      for i in range(0, len(events), batch)]  # fmt: skip
        for v in values:
            while True:
                try:
                    producer.produce(topic, v, key=detector.encode())
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush(120)
    return topic


def _consumer(bootstrap: str, topic: str) -> Consumer:
    """Assigned at offset 0 and warmed up: connected, first fetch done, then rewound, so
    the timed loop measures steady-state reading of every message."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "fetch.max.bytes": 52428800})  # fmt: skip
    c.assign([TopicPartition(topic, 0, 0)])
    while not c.consume(1, 1.0):
        pass
    c.seek(TopicPartition(topic, 0, 0))
    return c


def bare_loop(bootstrap: str, topic: str, n: int) -> Rate:
    """The limit: consume, strip the single-object header, fastavro-decode into columns."""
    event_schema = load_schema("detector_event.avsc")
    batch_schema = load_schema("detector_batch.avsc")
    batch_fp = schema_fingerprint(batch_schema)
    cols = {k: np.empty(n, dtype=t) for k, t in
            (("time_ns", np.int64), ("ra", np.float64), ("dec", np.float64),
             ("sigma", np.float64), ("seq", np.int64))}  # fmt: skip
    ids: list[str] = []
    consumer = _consumer(bootstrap, topic)
    got = 0
    read = fastavro.schemaless_reader
    t0, cpu0 = time.perf_counter(), time.process_time()
    while got < n:
        msgs = consumer.consume(1000, 1.0)
        if not msgs and time.perf_counter() - t0 > 600:
            raise RuntimeError(f"only {got} of {n} events on the topic")
        for m in msgs:
            data = m.value()
            body = io.BytesIO(data[10:])
            if data[2:10] == batch_fp:
                records = read(body, batch_schema, None)["events"]  # type: ignore[index]
            else:
                records = [read(body, event_schema, None)]
            for r in records:
                i = got
                cols["time_ns"][i] = r["time_ns"]
                cols["ra"][i] = r["ra_deg"]
                cols["dec"][i] = r["dec_deg"]
                cols["sigma"][i] = r["sigma_deg"]
                cols["seq"][i] = r["seq"]
                ids.append(r["event_id"])
                got += 1
    rate = Rate(got, time.perf_counter() - t0, time.process_time() - cpu0)
    consumer.close()
    return rate


def mmstream_path(
    bootstrap: str, topic: str, detector: str, n: int, archive_dir: Path | None = None
) -> Rate:
    """The live service's detector stage (``DetectorFeed``), unchanged, on an assigned
    consumer, with the loop's batch size and poll timeout; with ``archive_dir``, the raw
    archive on as by default (every message appended, flushed each second as the loop does;
    the ledger writes nothing for detector events); start-up's objects frozen out of the
    garbage collector's passes, as ``mmstream serve`` does."""
    topics = Topics(detectors=(detector,))
    store = EventStore(retention_ns=10 * 86400 * NS_PER_S)
    counts = Counts()

    def no_alerts(item: object) -> None:
        raise AssertionError("no alert dead letters here")

    refusals = Refusals(topics.deadletter, "bench", Limits(), counts, no_alerts)
    archive = RawArchive(archive_dir, "bench") if archive_dir is not None else None
    keeper = Keeper(archive, counts.archive_error)
    feed = DetectorFeed(topics, Limits(), store, LateWatch(SchedulePolicy()), refusals,
                        keeper, counts)  # fmt: skip
    consumer = _consumer(bootstrap, topic)
    with settled():  # as the service does around its loop (app.py)
        t0, cpu0 = time.perf_counter(), time.process_time()
        while counts.counts["detector_events"] < n:
            batch = consumer.consume(num_messages=1000, timeout=0.01)
            feed.handle_batch([m for m in batch if m.error() is None])
            feed.end_batch(None)
            if time.monotonic() - keeper.flushed > 1.0:
                keeper.flush()
        keeper.close()
        rate = Rate(counts.counts["detector_events"], time.perf_counter() - t0,
                    time.process_time() - cpu0)  # fmt: skip
    consumer.close()
    return rate
