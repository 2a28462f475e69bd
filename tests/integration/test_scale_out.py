"""Three `mmstream run` processes in one group share the alert partitions; one is SIGKILLed
mid-stream; the others take its partitions over: every alert has exactly one result."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from mmstream.config import load_settings
from mmstream.feeders import igwn_alert, produce_heartbeats
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.stream.topics import ensure_topics
from tests.integration.harness import read_to_end, start_mmstream, stop_process

pytestmark = pytest.mark.integration
N_ALERTS = 60
PARTITIONS = 3


def _config(path: Path, bootstrap: str, tag: str, i: int) -> Path:
    path.write_text(
        f'instance = "scale{i}-{tag}"\ngroup_id = "scale-{tag}"\n'
        f'alert_topics = ["igwn.gwalert.scale{tag}"]\ndetectors = ["det{tag}"]\n'
        f'result_topic_prefix = "mmstream.results.scale{tag}."\n'
        f'notice_topic_prefix = "mmstream.notices.scale{tag}."\n'
        f'deadletter_topic = "mmstream.deadletter.scale{tag}"\nmax_wait_s = 3600\n'
        # A killed member's partitions move to the others once its session expires.
        f'[kafka]\n"bootstrap.servers" = "{bootstrap}"\n"session.timeout.ms" = "8000"\n'
        "[analyses.neutrino_llh]\nenabled = false\n"
        "[analyses.spacetime_coincidence]\nenabled = false\n"
        "[analyses.raven_temporal_coincidence]\nenabled = false\n"
    )
    return path


def _wait_for_line(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} never said {text!r}")


def test_three_processes_one_killed_every_alert_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    configs = [_config(tmp_path / f"scale{i}.toml", kafka_bootstrap, tag, i) for i in range(3)]
    settings = load_settings(configs[0])
    alert_topic, detector = settings.alert_topics[0], settings.detectors[0]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    ensure_topics(admin, [alert_topic], partitions=PARTITIONS)
    ensure_topics(admin, [settings.detector_topic(detector), settings.status_topic(detector)])
    end = time.time_ns()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    produce_heartbeats(producer, settings.status_topic(detector), detector,
                       end - 2000 * NS_PER_S, end)  # fmt: skip
    producer.flush(10)

    logs = [tmp_path / f"service{i}.log" for i in range(3)]
    procs = [
        start_mmstream("run", "--config", str(cfg), log=log)
        for cfg, log in zip(configs, logs, strict=True)
    ]
    try:
        for log in logs:
            _wait_for_line(log, "service started", 90)
        ids = [f"S{i:06d}s{tag[:4]}" for i in range(N_ALERTS)]

        def send() -> None:
            for aid in ids:
                producer.produce(alert_topic, key=aid.encode(), value=igwn_alert(
                    aid, time_ns=end - 1500 * NS_PER_S, ra_deg=1.0, dec_deg=2.0))  # fmt: skip
                producer.poll(0)
                time.sleep(0.1)
            producer.flush(30)

        sender = threading.Thread(target=send)
        sender.start()
        # Kill the first process once it has published something, mid-stream.
        victim: int | None = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            victim = next((i for i, log in enumerate(logs) if _published(log)), None)
            time.sleep(0.1)
        assert victim is not None, "no process published a result"
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        sender.join(60)

        checker = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"scale-{tag}"})
        per_partition = Counter(
            m.partition() for m in read_to_end(settings, alert_topic)
        )  # how many alerts landed in each partition
        deadline = time.monotonic() + 120
        committed: dict[int, int] = {}
        while time.monotonic() < deadline:
            tps = [TopicPartition(alert_topic, p) for p in range(PARTITIONS)]
            try:
                found = checker.committed(tps, timeout=10)
            except KafkaException as exc:  # the coordinator busy with the rebalance: ask again
                if exc.args[0].code() != KafkaError._TIMED_OUT:
                    raise
                continue
            committed = {tp.partition: tp.offset for tp in found}
            if all(committed[p] >= per_partition[p] for p in range(PARTITIONS)):
                break
            time.sleep(1)
        checker.close()
        assert all(committed[p] >= per_partition[p] for p in range(PARTITIONS)), (
            f"committed {committed}, alerts per partition {dict(per_partition)}; see {tmp_path}"
        )

        topic = settings.result_topic("temporal_coincidence")
        # The victim's open transaction holds read_committed readers at the partition's last
        # stable offset until the broker aborts it (transaction.timeout.ms): wait for that.
        deadline = time.monotonic() + 180
        while len(messages := read_to_end(settings, topic)) < N_ALERTS:
            assert time.monotonic() < deadline, f"{len(messages)} of {N_ALERTS} results"
            time.sleep(1)
        got = Counter(decode_result(m.value())["alert"]["alert_id"] for m in messages)
        assert {a: n for a, n in got.items() if n > 1} == {}, "duplicated results"
        assert sorted(got) == sorted(ids), "every alert has a result"
        senders = Counter(headers_dict(m.headers())["_sender"].decode() for m in messages)
        assert len(senders) >= 2, f"the partitions were not shared: {senders}"
        survivors = {f"scale{i}-{tag}" for i in range(3) if i != victim}
        assert survivors & set(senders), senders
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # all at once, then wait for each
        for proc in procs:
            stop_process(proc)


def _published(log: Path) -> bool:
    return log.exists() and '"results published"' in log.read_text(errors="replace")
