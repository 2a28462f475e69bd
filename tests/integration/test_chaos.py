"""Kill -9 the service again and again while alerts keep coming, each kill landing on work in
flight: the committed results equal an uninterrupted run's, byte for byte, none twice.

Alerts arrive live with 10 s windows that close only as the detector's heartbeats pass
them, so every alert is scheduled but uncommitted for a few seconds. Each kill comes at a
random delay after the process logs "alert scheduled"; a kill *hit* in-flight work when the
process had scheduled an alert whose results it had not published (results and the offset
are one transaction, logged "results published") when it died.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from mmstream.analyses.registry import Registry
from mmstream.config import load_settings
from mmstream.feeders import igwn_alert, produce_events, produce_heartbeat
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S, DetectorEvent
from mmstream.stream.topics import ensure_topics
from tests.integration.harness import (
    log_events,
    read_to_end,
    running_service,
    start_mmstream,
    stop_process,
)

pytestmark = pytest.mark.integration
ANALYSES = ("temporal_coincidence", "spacetime_coincidence", "raven_temporal_coincidence")
KILLS = 12
MIN_HITS = 8
WINDOW = [-5.0, 5.0]


def _results(settings) -> dict[str, list[bytes]]:
    """Result payloads by result id (the publication time is only in the headers, so a
    re-run of the same inputs must give the same bytes)."""
    out: dict[str, list[bytes]] = {}
    for name in ANALYSES:
        for msg in read_to_end(settings, settings.result_topic(name)):
            out.setdefault(decode_result(msg.value())["result_id"], []).append(msg.value())
    return out


class Feeder(threading.Thread):
    """The detector, live: events then a heartbeat every 0.25 s (each event later than the
    heartbeat before it, so no event is ever late), and alerts every ``alert_every_s``."""

    def __init__(self, bootstrap: str, settings, alert_every_s: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        self.settings, self.every = settings, alert_every_s
        self.rng = random.Random(seed)
        self.alerts = 0
        self.alerts_on = threading.Event()
        self.alerts_on.set()
        self.alerts_off = threading.Event()  # set once no more alert will be sent
        self.done = threading.Event()

    def run(self) -> None:
        s, det = self.settings, self.settings.detectors[0]
        last_beat, seq, next_alert = time.time_ns(), 0, time.monotonic()
        while not self.done.is_set():
            if not self.alerts_on.is_set():
                self.alerts_off.set()
            now = time.time_ns()
            events = []
            for _ in range(self.rng.randrange(0, 3)):
                events.append(DetectorEvent(f"{det}-{seq}", det, seq,
                                            self.rng.randrange(last_beat + 1, now + 1),
                                            self.rng.uniform(0, 360), self.rng.uniform(-60, 60),
                                            self.rng.uniform(0.5, 3.0)))  # fmt: skip
                seq += 1
            produce_events(self.producer, s.detector_topic(det), sorted(events,
                           key=lambda e: e.time_ns))  # fmt: skip
            produce_heartbeat(self.producer, s.status_topic(det), det, now)
            last_beat = now
            if self.alerts_on.is_set() and time.monotonic() >= next_alert:
                self.producer.produce(s.alert_topics[0], value=igwn_alert(
                    f"S{self.alerts:06d}c", time_ns=now - 1 * NS_PER_S,
                    ra_deg=self.rng.uniform(0, 360), dec_deg=self.rng.uniform(-60, 60),
                    sigma_deg=5.0, created_ns=now))  # fmt: skip
                self.alerts += 1
                next_alert = time.monotonic() + self.every
            self.producer.flush(10)
            time.sleep(0.25)


def _committed(consumer: Consumer, topic: str) -> int:
    """The group's committed offset; a transaction left open by a killed process blocks the
    answer until the next start aborts it (KIP-447), so a timeout is asked again."""
    for _ in range(10):
        try:
            (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
            return max(int(tp.offset), 0)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._TIMED_OUT:
                raise
    raise AssertionError("committed offsets unavailable for 100 s")


def test_sigkill_on_work_in_flight_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    windows = {name: {"window": WINDOW} for name in ANALYSES}
    inputs = {
        "alert_topics": (f"igwn.gwalert.chaos{tag}",),
        "detectors": (f"det{tag}",),
        "deadletter_topic": f"mmstream.deadletter.chaos{tag}",
        "analyses": {**windows, "neutrino_llh": {"enabled": False}},
    }
    settings = load_settings(kafka={"bootstrap.servers": kafka_bootstrap}, **inputs)
    alert_topic, detector = settings.alert_topics[0], settings.detectors[0]
    ensure_topics(AdminClient({"bootstrap.servers": kafka_bootstrap}),
                  [alert_topic, settings.detector_topic(detector),
                   settings.status_topic(detector)])  # fmt: skip
    rng = random.Random(20261201)

    cfg = tmp_path / "chaos.toml"
    cfg.write_text(
        f'instance = "chaos-{tag}"\ngroup_id = "chaos-{tag}"\nalert_topics = ["{alert_topic}"]\n'
        f'detectors = ["{detector}"]\nresult_topic_prefix = "mmstream.results.chaos{tag}."\n'
        f'notice_topic_prefix = "mmstream.notices.chaos{tag}."\n'
        f'deadletter_topic = "{inputs["deadletter_topic"]}"\nmax_wait_s = 3600\n'
        f'[kafka]\n"bootstrap.servers" = "{kafka_bootstrap}"\n'
        "[analyses.neutrino_llh]\nenabled = false\n"
        + "".join(f"[analyses.{n}]\nwindow = {WINDOW}\n" for n in ANALYSES)
    )
    chaos_settings = load_settings(cfg)
    log = tmp_path / "service.log"
    checker = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"chaos-{tag}"})
    feeder = Feeder(kafka_bootstrap, settings, alert_every_s=1.0, seed=7)
    feeder.start()
    hits = 0
    try:
        for _ in range(KILLS):
            start = log.stat().st_size if log.exists() else 0
            proc = start_mmstream("run", "--config", str(cfg), log=log)
            deadline = time.monotonic() + 90
            while not any(e.get("event") == "alert scheduled" for e in log_events(log, start)):
                assert time.monotonic() < deadline, f"nothing scheduled; see {log}"
                assert proc.poll() is None, f"the service exited; see {log}"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 2.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            lines = log_events(log, start)
            scheduled = {e["offset"] for e in lines if e.get("event") == "alert scheduled"}
            published = {e["offset"] for e in lines if e.get("event") == "results published"}
            if scheduled - published:
                hits += 1  # it died holding an alert whose results (and offset) were not out
        feeder.alerts_on.clear()
        assert feeder.alerts_off.wait(30), "the feeder stopped sending alerts"
        n_alerts = feeder.alerts
        proc = start_mmstream("run", "--config", str(cfg), log=log)
        try:
            deadline = time.monotonic() + 180
            while _committed(checker, alert_topic) < n_alerts:
                assert time.monotonic() < deadline, f"not every alert committed; see {log}"
                time.sleep(1)
        finally:
            stop_process(proc)
    finally:
        feeder.done.set()
        feeder.join(30)
        checker.close()
    print(f"\nchaos: {KILLS} SIGKILLs, {hits} on uncommitted work, {n_alerts} alerts")
    assert hits >= MIN_HITS, f"only {hits} of {KILLS} kills hit work in flight"

    # Reference: one uninterrupted run over the same, now complete, inputs.
    registry = Registry([Registry.discover().get(n) for n in ANALYSES])
    with running_service(kafka_bootstrap, registry=registry, **inputs) as ref:
        deadline = time.monotonic() + 180
        while len(reference := _results(ref.settings)) < n_alerts * len(ANALYSES):
            assert time.monotonic() < deadline, f"reference: {len(reference)} results"
            time.sleep(1)

    chaos = _results(chaos_settings)
    duplicates = {rid: len(v) for rid, v in chaos.items() if len(v) > 1}
    assert duplicates == {}, f"duplicated results: {duplicates}"
    assert set(chaos) == set(reference)
    for rid, (rec,) in chaos.items():
        ref_rec = reference[rid][0]
        if rec != ref_rec:
            a, b = decode_result(rec), decode_result(ref_rec)
            moved = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
            raise AssertionError(f"result {rid} differs from the uninterrupted run: {moved}")
