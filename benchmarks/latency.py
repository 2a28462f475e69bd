"""Alert-to-result latency: the real service (in a thread, default settings: ledger on,
archive on) with N detector events buffered and the windows already closed; IGWN alerts
carrying a real LVK multi-order sky map are produced one at a time, and each is timed from
its produce call to its result arriving at a read_committed consumer."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, Producer

from mmstream.analyses.registry import Registry
from mmstream.app import App
from mmstream.config import Settings, load_settings
from mmstream.feeders import background_events, igwn_alert, produce_events, produce_heartbeats
from mmstream.model import NS_PER_S
from mmstream.times import now_ns

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_MAP = SHARED / "skymaps" / "userguide" / "bayestar.multiorder.fits"
ANALYSIS = "spacetime_coincidence"


def alert_to_result(
    bootstrap: str, buffered: int, alerts: int, live_rate: float = 0.0
) -> dict[str, float]:
    """With ``live_rate``, a detector process (benchmarks/feed_live.py) sends that many
    events per second all the while the alerts are timed; the events the service consumed
    meanwhile are counted (ingest must not stall while analyses run)."""
    tag = uuid.uuid4().hex[:6]
    detector = f"lat{tag}"
    span_s = 6 * 3600
    settings = load_settings(
        kafka={"bootstrap.servers": bootstrap}, instance=f"bench-{tag}", group_id=f"bench-{tag}",
        alert_topics=(f"igwn.gwalert.bench{tag}",), detectors=(detector,),
        result_topic_prefix=f"mmstream.results.bench{tag}.",
        notice_topic_prefix=f"mmstream.notices.bench{tag}.",
        deadletter_topic=f"mmstream.deadletter.bench{tag}", http_port=None,
        data_dir=Path(tempfile.mkdtemp(prefix="mmstream-bench-")), lookback_s=span_s + 600.0,
    )  # fmt: skip
    service = App(settings, Registry([Registry.discover().get(ANALYSIS)]))
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    end = now_ns()
    start = end - span_s * NS_PER_S
    from confluent_kafka.admin import AdminClient

    from mmstream.stream.topics import ensure_topics

    ensure_topics(AdminClient({"bootstrap.servers": bootstrap}), service.service.topics_needed())
    seq = 0
    for i in range(36):  # ten minutes at a time: 10^7 events at once would take gigabytes
        lo, hi = start + i * (end - start) // 36, start + (i + 1) * (end - start) // 36
        chunk = background_events(detector, lo, hi, buffered / span_s, seed=1 + i, first_seq=seq)
        produce_events(producer, settings.detector_topic(detector), chunk)
        seq += len(chunk)
        del chunk
    produce_heartbeats(producer, settings.status_topic(detector), detector, start, end)
    producer.flush(120)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        return _timed(service, settings, producer, bootstrap, seq, start, span_s, tag, alerts,
                      live_rate)  # fmt: skip
    finally:  # a failed row must not leave its service running beside the next rows
        service.stop()
        thread.join(60)


def _timed(
    service: App, settings: Settings, producer: Producer, bootstrap: str, seq: int,
    start: int, span_s: int, tag: str, alerts: int, live_rate: float,
) -> dict[str, float]:  # fmt: skip
    detector = settings.detectors[0]
    while not service.ready.wait(0.2):
        pass
    counts = service.service.counts.counts
    deadline = time.monotonic() + 1800  # 10^7 events take minutes to read
    while counts["detector_events"] < seq:  # every event produced is in the store
        if time.monotonic() > deadline:
            raise RuntimeError(f"{counts['detector_events']} of {seq} events read in 30 min")
        time.sleep(0.5)
    time.sleep(2)
    skymap = REAL_MAP.read_bytes() if REAL_MAP.exists() else None
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-r-{tag}",
                       "isolation.level": "read_committed", "auto.offset.reset": "latest",
                       "fetch.wait.max.ms": 5})  # fmt: skip
    reader.subscribe([settings.result_topic(ANALYSIS)])
    deadline = time.monotonic() + 30
    while not reader.assignment():
        if time.monotonic() > deadline:
            raise RuntimeError("the result reader got no partition in 30 s")
        reader.poll(0.1)
    feeder = None
    if live_rate:
        feeder = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.feed_live", bootstrap,
             settings.detector_topic(detector), settings.status_topic(detector), detector,
             str(live_rate)], stdout=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(3)  # under way
    consumed0, t_start = service.service.counts.counts["detector_events"], time.monotonic()
    rng = np.random.default_rng(7)
    took: list[float] = []
    after: list[float] = []  # from the result's produce (its timestamp) to its arrival here
    for i in range(alerts):
        t_alert = start + int(rng.uniform(1200, span_s - 1200) * NS_PER_S)
        value = igwn_alert(f"S{tag}{i:04d}", time_ns=t_alert, ra_deg=0.0, dec_deg=0.0,
                           skymap_fits=skymap)  # fmt: skip
        t0 = time.perf_counter()
        producer.produce(settings.alert_topics[0], value)
        producer.flush(10)
        deadline = time.monotonic() + 120
        while (msg := reader.poll(1.0)) is None or msg.error() is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"alert {i}: no result in 120 s")
        took.append(time.perf_counter() - t0)
        after.append(time.time() - msg.timestamp()[1] / 1000)
    elapsed = time.monotonic() - t_start
    consumed = service.service.counts.counts["detector_events"] - consumed0
    sent = 0.0
    if feeder is not None:
        feeder.send_signal(signal.SIGTERM)
        out, _ = feeder.communicate(60)
        sent = float(out.strip().splitlines()[-1])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reader.close()
    ms = np.array(took) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        # the share after the service produced the result: its commit, and the delivery
        "after_p50_ms": float(np.percentile(after, 50) * 1000),
        "after_p99_ms": float(np.percentile(after, 99) * 1000),
        "alerts": float(len(ms)),
        "buffered": float(service.service.counts.counts["detector_events"]),
        "real_map": float(skymap is not None),
        "ingest_per_s": consumed / elapsed,
        "fed_per_s": sent / (elapsed + 3) if live_rate else 0.0,
        "peak_rss_mb": rss_mb,
    }
