"""GCN's heartbeat topic watched on a real broker: alive while it beats, reported silent
(metric and dashboard) when it stops, alive again when it resumes."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from mmstream.analyses.registry import Registry
from mmstream.stream.topics import ensure_topics
from mmstream.times import format_utc, now_ns
from tests.integration.harness import metric, running_service, wait_until

pytestmark = pytest.mark.integration


def test_a_silent_upstream_is_reported(kafka_bootstrap: str) -> None:
    topic = f"gcn.heartbeat.test{uuid.uuid4().hex[:8]}"
    ensure_topics(AdminClient({"bootstrap.servers": kafka_bootstrap}), [topic])
    beats = Producer({"bootstrap.servers": kafka_bootstrap})

    def beat() -> None:
        beats.produce(topic, json.dumps({"alert_datetime": format_utc(now_ns())}).encode())
        beats.flush(10)

    beat()  # the topic exists before the service starts, as GCN's does
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry, heartbeat_topics=(topic,),
                         heartbeat_max_gap_s=3.0) as h:  # fmt: skip

        def alive() -> float:
            beat()
            return metric(h, "mmstream_upstream_alive", topic=topic)

        wait_until(lambda: alive() == 1, "alive while heartbeats come")
        wait_until(lambda: metric(h, "mmstream_upstream_alive", topic=topic) == 0,
                   "reported silent once heartbeats stop", timeout=30)  # fmt: skip
        assert metric(h, "mmstream_upstream_heartbeat_silent_seconds", topic=topic) > 3.0
        assert h.service.http is not None
        with urllib.request.urlopen(h.service.http.address, timeout=10) as r:
            page = r.read().decode()
        assert topic in page and "SILENT" in page
        wait_until(lambda: alive() == 1, "alive again when they resume")
