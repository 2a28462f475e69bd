"""Helpers for integration tests: a service in a thread on test-private topics, and readers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from mmstream.analyses.registry import Registry
from mmstream.app import App
from mmstream.config import Settings, load_settings
from mmstream.stream.topics import large_message_config


@dataclass
class Harness:
    settings: Settings
    service: App
    thread: threading.Thread
    producer: Producer

    @property
    def alert_topic(self) -> str:
        return self.settings.alert_topics[0]

    @property
    def detector(self) -> str:
        return self.settings.detectors[0]

    def produce(
        self, topic: str, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> int:
        """Produce one message and return its offset."""
        box: dict[str, Any] = {}
        self.producer.produce(
            topic,
            value=value,
            headers=headers,
            on_delivery=lambda err, msg: box.update(err=err, msg=msg),
        )
        self.producer.flush(30)
        assert box.get("err") is None, box.get("err")
        offset: int = box["msg"].offset()
        return offset

    def committed(self, topic: str, partition: int = 0) -> int:
        consumer = Consumer({**self.settings.kafka_config(), "group.id": self.settings.group_id})
        try:
            (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
            return int(tp.offset)
        finally:
            consumer.close()


def read_messages(
    settings: Settings, topic: str, count: int, timeout: float = 60.0, key: bytes | None = None
) -> list[Message]:
    """The first ``count`` committed messages of ``topic`` (optionally with this key)."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            if key is None or msg.key() == key:
                found.append(msg)
    finally:
        consumer.close()
    return found


def _data_dir(tag: str) -> Path:
    """A service's own ledger and archive folder, inside the test run's data folder
    (tests/conftest.py points $MMSTREAM_DATA_DIR into pytest's temporary directory, which
    pytest prunes), so that no run leaves folders in the system temp directory."""
    root = os.environ.get("MMSTREAM_DATA_DIR")
    if not root:
        raise RuntimeError("MMSTREAM_DATA_DIR is not set (tests/conftest.py sets it)")
    path = Path(root) / f"service-{tag}"
    path.mkdir(parents=True)
    return path


@contextmanager
def running_service(
    bootstrap: str, registry: Registry | None = None, **overrides: Any
) -> Iterator[Harness]:
    """A Service on topics no other test uses, running in a thread until the block ends."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "kafka": {"bootstrap.servers": bootstrap},
        "instance": f"test-{tag}",
        "group_id": f"mmstream-test-{tag}",
        "alert_topics": (f"igwn.gwalert.test{tag}",),
        "detectors": (f"det{tag}",),
        "result_topic_prefix": f"mmstream.results.test{tag}.",
        "notice_topic_prefix": f"mmstream.notices.test{tag}.",
        "deadletter_topic": f"mmstream.deadletter.test{tag}",
        "max_wait_s": 3600.0,
    }
    values.update(overrides)
    if "data_dir" not in values:
        values["data_dir"] = _data_dir(tag)
    settings = load_settings(**values)
    stalls: list[tuple[str, float]] = []  # an in-thread service must not exec the test run

    def on_stall(call: str, elapsed_s: float) -> None:
        stalls.append((call, elapsed_s))

    service = App(
        settings, registry if registry is not None else Registry.discover(), on_stall=on_stall
    )
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    while not service.ready.wait(0.2):
        assert thread.is_alive(), "the service thread died while starting"
        assert time.monotonic() < deadline, "the service did not start within 90 s"
    producer = Producer(large_message_config({"bootstrap.servers": bootstrap,
                                              "enable.idempotence": True}))  # fmt: skip
    try:
        yield Harness(settings, service, thread, producer)
    finally:
        producer.flush(10)
        del producer  # confluent-kafka closes a client when it is collected
        service.stop()
        thread.join(30)


def read_to_end(settings: Settings, topic: str, timeout: float = 60.0) -> list[Message]:
    """Every committed message of partition 0 of ``topic``, up to its current end."""
    consumer = Consumer({
        **settings.kafka_config(),
        "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })  # fmt: skip
    tp = TopicPartition(topic, 0, 0)
    end = consumer.get_watermark_offsets(tp, timeout=10)[1]
    consumer.assign([tp])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if consumer.position([TopicPartition(topic, 0)])[0].offset >= end:
                break
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                found.append(msg)
    finally:
        consumer.close()
    return found


def start_mmstream(
    *args: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`mmstream ARGS` as a user runs it, in a child process logging (appending) to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mmstream.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"},
        )


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Ask the child to stop (SIGTERM, or SIGINT like Ctrl-C); kill it after 30 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def sample(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text page (0 if absent), read with prometheus-client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


def metric(h: Harness, name: str, **labels: str) -> float:
    """A sample from the service's own /metrics page, as Prometheus scrapes it (0 if absent)."""
    import urllib.request

    assert h.service.http is not None, "the service serves no /metrics"
    with urllib.request.urlopen(h.service.http.address + "metrics", timeout=10) as r:
        return sample(r.read().decode(), name, **labels)


def log_events(log: Path, start: int = 0) -> list[dict[str, Any]]:
    """The JSON log lines `mmstream run` wrote to ``log`` from byte ``start`` on (a line torn
    by a kill is left out)."""
    import json

    out = []
    for line in log.read_bytes()[start:].decode(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def wait_until(condition: Any, what: str, timeout: float = 60.0) -> None:
    """Poll ``condition()`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.2)
