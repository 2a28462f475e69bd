"""A hostile upstream through the real broker: thousands of bad messages of every kind in
tests/hostile.py, interleaved with good alerts and detector data, and a SIGKILL and restart
of `mmstream run` in the middle. The service must never exit or stall, stay under 1 GB,
dead-letter every hostile message exactly once with its reason, and publish every good
alert's results exactly once."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from mmstream.config import load_settings
from mmstream.feeders import background_events, igwn_alert, produce_events, produce_heartbeat
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.stream.messages import headers_of
from mmstream.stream.topics import ensure_topics
from mmstream.times import format_utc, now_ns
from tests.hostile import EVENTS, GCN, IGWN, STATUS, VOE, Hostile, _gcn, kinds, make
from tests.integration.harness import read_to_end, start_mmstream, stop_process

pytestmark = pytest.mark.integration
N_HOSTILE = 5200
N_GOOD = 24  # good alerts, half before the restart, half after
ANALYSES = ("temporal_coincidence", "spacetime_coincidence", "neutrino_llh")
# Costly kinds are sent less often; every kind at least 10 times.
FEW = {"gzip-bomb-skymap": 20, "oversize-alert": 10, "oversize-detector": 10,
       "large-undecodable-alert": 10,
       "moc-order-16": 20, "deep-json-gcn": 40, "deep-json-igwn": 40}  # fmt: skip
MAX_RSS_KB = 1 << 20  # 1 GiB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HealthProbe(threading.Thread):
    """Asks /healthz twice a second; remembers every answer that was not a quick 200."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.answers = 0
        self.failures: list[str] = []
        self.paused = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            if self.paused.is_set():
                continue
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    status = r.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError as exc:
                if not self.paused.is_set():
                    self.failures.append(f"no answer: {exc}")
                continue
            if self.paused.is_set():
                continue
            self.answers += 1
            if status != 200 or time.monotonic() - t0 > 5:
                self.failures.append(f"{status} after {time.monotonic() - t0:.1f} s")


def _wait_http(port: int, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{path} not 200 within {timeout} s")


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_thousands_of_hostile_messages_and_a_restart_stop_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(13)
    tag = uuid.uuid4().hex[:8]
    det = f"fz{tag}"
    topics = {IGWN: f"igwn.gwalert.fz{tag}", GCN: f"gcn.notices.icecube.fz{tag}",
              VOE: f"gcn.classic.voevent.fz{tag}", EVENTS: f"detector.{det}.events",
              STATUS: f"detector.{det}.status"}  # fmt: skip
    port = _free_port()
    cfg = tmp_path / "mmstream.toml"
    cfg.write_text(
        f'instance = "fuzz-{tag}"\ngroup_id = "fuzz-{tag}"\n'
        f"alert_topics = {json.dumps([topics[IGWN], topics[GCN], topics[VOE]])}\n"
        f'detectors = ["{det}"]\nresult_topic_prefix = "mmstream.results.fz{tag}."\n'
        f'notice_topic_prefix = "mmstream.notices.fz{tag}."\n'
        f'deadletter_topic = "mmstream.deadletter.fz{tag}"\n'
        f'lookback_s = 7200\nmax_wait_s = 60\ndata_dir = "{tmp_path / "data"}"\n'
        f'[kafka]\n"bootstrap.servers" = "{kafka_bootstrap}"\n'
        f"[analyses.raven_temporal_coincidence]\nenabled = false\n"
        f"[analyses.neutrino_llh]\nparams = {{ n_trials = 50 }}\n"
    )
    settings = load_settings(cfg)
    env = {**os.environ, "MMSTREAM_HTTP_PORT": str(port)}
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "compression.type": "gzip",
                         "message.max.bytes": 16 << 20, "linger.ms": 20})  # fmt: skip

    # The plan: every kind, then random kinds up to N_HOSTILE, shuffled; good alerts between.
    plan: list[Hostile] = []
    for kind in kinds():
        plan += [make(kind, rng, det) for _ in range(FEW.get(kind, 20))]
    common = [k for k in kinds() if k not in FEW]
    while len(plan) < N_HOSTILE:
        plan.append(make(rng.choice(common), rng, det))
    rng.shuffle(plan)
    assert len({h.kind for h in plan}) >= 15
    sent: dict[str, Hostile] = {}
    good: list[str] = []

    def send(batch: list[Hostile], n_good: int) -> None:
        every = max(1, len(batch) // n_good)
        for i, h in enumerate(batch):
            fid = f"{tag}-{len(sent)}"
            sent[fid] = h
            while True:
                try:
                    producer.produce(topics[h.role], value=h.value, headers=[
                        ("fuzz-id", fid.encode()), ("fuzz-kind", h.kind.encode())])  # fmt: skip
                    break
                except BufferError:
                    producer.poll(0.1)
            if i % every == every - 1 and len(good) < N_GOOD:
                _send_good()
            if i % 200 == 0:
                produce_heartbeat(producer, topics[STATUS], det, now_ns())
                producer.poll(0)
        producer.flush(60)

    def _send_good() -> None:
        t = now_ns() - 900 * NS_PER_S
        if len(good) % 2:
            gid = f"S{len(good):03d}fz{tag}"
            producer.produce(topics[IGWN], igwn_alert(gid, time_ns=t, ra_deg=30.0, dec_deg=10.0))
        else:
            gid = f"IceCube-good{len(good):03d}{tag}"
            producer.produce(topics[GCN], _gcn(rng, id=[f"good{len(good):03d}{tag}"],
                                              trigger_time=format_utc(t)))  # fmt: skip
        good.append(gid)

    ensure_topics(AdminClient({"bootstrap.servers": kafka_bootstrap}), list(topics.values()))
    end = now_ns()
    produce_events(producer, topics[EVENTS],
                   background_events(det, end - 1800 * NS_PER_S, end, 0.5, seed=5))  # fmt: skip
    produce_heartbeat(producer, topics[STATUS], det, end)
    producer.flush(30)

    log = tmp_path / "service.log"
    probe = HealthProbe(port)
    proc = start_mmstream("run", "--config", str(cfg), log=log, env=env)
    peaks = []
    try:
        _wait_http(port, "/readyz")
        probe.start()
        half = len(plan) // 2
        send(plan[:half], N_GOOD // 2)
        # Kill it mid-stream: once some, not all, of the first half is dead-lettered.
        deadline = time.monotonic() + 120
        while len(read_to_end(settings, settings.deadletter_topic, 30)) < half // 3:
            assert time.monotonic() < deadline, f"few dead letters; see {log}"
            assert proc.poll() is None, f"the service exited; see {log}"
            time.sleep(1)
        assert proc.poll() is None, f"the service exited; see {log}"
        peaks.append(_peak_rss_kb(proc.pid))
        probe.paused.set()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = start_mmstream("run", "--config", str(cfg), log=log, env=env)
        _wait_http(port, "/readyz")
        probe.paused.clear()
        send(plan[half:], N_GOOD - N_GOOD // 2)
        # Sentinels: one good alert per alert topic, after everything else.
        t = now_ns() - 900 * NS_PER_S
        sentinels = [f"S999fz{tag}", f"IceCube-sentinel{tag}"]
        producer.produce(topics[IGWN], igwn_alert(sentinels[0], time_ns=t, ra_deg=1.0, dec_deg=2.0))
        producer.produce(topics[GCN], _gcn(rng, id=[f"sentinel{tag}"],
                                          trigger_time=format_utc(t)))  # fmt: skip
        produce_heartbeat(producer, topics[STATUS], det, now_ns())
        producer.flush(30)
        deadline = time.monotonic() + 300
        while not set(sentinels) <= {
            decode_result(m.value())["alert"]["alert_id"]
            for m in read_to_end(settings, settings.result_topic(ANALYSES[0]))
        }:
            assert time.monotonic() < deadline, f"no result for the sentinels; see {log}"
            assert proc.poll() is None, f"the service exited; see {log}"
            time.sleep(2)
        # Detector dead letters are written as the events are read: wait for them to settle.
        expected_dead = sum(1 for h in sent.values() if not h.processed)
        deadline = time.monotonic() + 120
        while len(dead := read_to_end(settings, settings.deadletter_topic, 60)) < expected_dead:
            assert time.monotonic() < deadline, f"{len(dead)} of {expected_dead} dead letters"
            time.sleep(2)
        assert proc.poll() is None, f"the service exited; see {log}"
        peaks.append(_peak_rss_kb(proc.pid))
    finally:
        probe.done.set()
        stop_process(proc)

    by_id: Counter[str] = Counter()
    for m in dead:
        h = headers_dict(headers_of(m))
        fid = h.get("fuzz-id", b"").decode()
        assert fid in sent, f"a dead letter for no hostile message: {h}"
        by_id[fid] += 1
        original = sent[fid]
        reason = h["mmstream-dlq-reason"].decode()
        assert original.words is not None and original.words in reason, (original.kind, reason)
        if original.value is None:
            assert m.value() is None, original.kind
        elif b"mmstream-dlq-truncated" in (k.encode() for k in h):
            assert int(h["mmstream-dlq-original-length"]) == len(original.value)
            assert h["mmstream-dlq-original-sha256"].decode() == hashlib.sha256(
                original.value).hexdigest()  # fmt: skip
            assert original.value.startswith(m.value())
        else:
            assert m.value() == original.value, original.kind
    twice = {f: n for f, n in by_id.items() if n > 1}
    assert not twice, f"dead-lettered more than once: {sorted(twice.items())[:5]}"
    missing = [(f, h.kind) for f, h in sent.items() if not h.processed and f not in by_id]
    assert not missing, f"{len(missing)} hostile messages not dead-lettered: {missing[:5]}"
    odd = [f for f, h in sent.items() if h.processed]
    assert not set(odd) & set(by_id), "an odd but valid message was dead-lettered"

    for analysis in ANALYSES:
        results = read_to_end(settings, settings.result_topic(analysis), 60)
        ids = [decode_result(m.value())["result_id"] for m in results]
        assert len(ids) == len(set(ids)), f"{analysis}: a result published twice"
        alerts = {decode_result(m.value())["alert"]["alert_id"] for m in results}
        wanted = {g for g in good + sentinels if analysis == "temporal_coincidence"
                  or g.startswith("S")}  # fmt: skip
        assert wanted <= alerts, f"{analysis}: no result for {sorted(wanted - alerts)[:5]}"
    # The odd deep maps (order 16) are valid: they must have their likelihood results too.
    statuses = Counter(
        decode_result(m.value())["status"]
        for m in read_to_end(settings, settings.result_topic("neutrino_llh"), 60)
    )
    assert statuses["FAILED"] == 0, statuses
    assert probe.answers > 20 and not probe.failures, probe.failures[:5]
    assert max(peaks) < MAX_RSS_KB, f"peak resident memory {max(peaks) / 1024:.0f} MB"
    print(f"\nfuzz: {len(sent)} hostile messages of {len({h.kind for h in sent.values()})} kinds, "
          f"{len(dead)} dead letters, {len(good) + 2} good alerts, health answered "
          f"{probe.answers} times, peak RSS {[p // 1024 for p in peaks]} MB")  # fmt: skip
