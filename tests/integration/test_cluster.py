"""A three-node KRaft cluster (replication factor 3, min.insync.replicas 2): the broker leading
the alert partition is SIGKILLed during processing; every alert still has exactly one result."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, PartitionMetadata

from mmstream.broker.cluster import LocalCluster
from mmstream.config import load_settings
from mmstream.feeders import igwn_alert, produce_heartbeats
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.stream.topics import ensure_topics
from tests.integration.harness import read_messages, read_to_end, start_mmstream, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
N_ALERTS = 40


def test_broker_killed_in_a_three_node_cluster_loses_nothing(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "cluster")
    try:  # every broker stops, whatever fails
        _run_with(cluster, tmp_path)
    finally:
        cluster.stop()


def _partition_zero(admin: AdminClient, topic: str, timeout: float = 60) -> PartitionMetadata:
    """Partition 0 of a topic just created, once the broker answering knows its leader and
    replicas (a node that has not learned the new topic yet answers without it)."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(topic, timeout=10).topics
        part = topics[topic].partitions.get(0) if topic in topics else None
        if part is not None and part.leader >= 0 and len(part.replicas) == 3:
            return part
        assert time.monotonic() < deadline, f"no metadata for {topic} partition 0"
        time.sleep(0.2)


def _run_with(cluster: LocalCluster, tmp_path: Path) -> None:
    infos = cluster.start()
    print(f"\n3-node cluster ready; slowest node {max(i.startup_seconds for i in infos):.1f} s")
    bootstrap = cluster.bootstrap
    tag = uuid.uuid4().hex[:8]
    cfg = tmp_path / "cluster.toml"
    cfg.write_text(
        f'instance = "cluster-{tag}"\ngroup_id = "cluster-{tag}"\n'
        f'alert_topics = ["igwn.gwalert.cluster{tag}"]\ndetectors = ["det{tag}"]\n'
        f'result_topic_prefix = "mmstream.results.cluster{tag}."\n'
        f'notice_topic_prefix = "mmstream.notices.cluster{tag}."\n'
        f'deadletter_topic = "mmstream.deadletter.cluster{tag}"\nmax_wait_s = 3600\n'
        f'stall_limit_s = 30\n[kafka]\n"bootstrap.servers" = "{bootstrap}"\n'
        "[analyses.neutrino_llh]\nenabled = false\n"
        "[analyses.spacetime_coincidence]\nenabled = false\n"
        "[analyses.raven_temporal_coincidence]\nenabled = false\n"
    )
    settings = load_settings(cfg)
    alert_topic, detector = settings.alert_topics[0], settings.detectors[0]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    ensure_topics(admin, [alert_topic, settings.detector_topic(detector),
                          settings.status_topic(detector)])  # fmt: skip
    meta = _partition_zero(admin, alert_topic)
    assert len(meta.replicas) == 3, "topics are replicated on all three nodes"
    end = time.time_ns()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "message.timeout.ms": 60000})  # fmt: skip
    produce_heartbeats(producer, settings.status_topic(detector), detector,
                       end - 2000 * NS_PER_S, end)  # fmt: skip
    producer.flush(30)

    log_path = tmp_path / "service.log"
    proc = start_mmstream("run", "--config", str(cfg), log=log_path)
    try:
        ids = [f"S{i:06d}k{tag[:4]}" for i in range(N_ALERTS)]

        def send() -> None:
            for aid in ids:
                producer.produce(alert_topic, igwn_alert(aid, time_ns=end - 1500 * NS_PER_S,
                                                         ra_deg=1.0, dec_deg=2.0))  # fmt: skip
                producer.poll(0)
                time.sleep(0.1)
            assert producer.flush(90) == 0

        sender = threading.Thread(target=send)
        sender.start()
        topic = settings.result_topic("temporal_coincidence")
        assert len(read_messages(settings, topic, 5, timeout=120)) == 5, f"see {log_path}"
        leader = meta.leader  # the node leading the alert partition goes down hard
        cluster.nodes[leader - 1].kill()
        sender.join(120)
        assert not sender.is_alive()

        read_messages(settings, topic, N_ALERTS, timeout=120)
        got = Counter(
            decode_result(m.value())["alert"]["alert_id"] for m in read_to_end(settings, topic)
        )
        assert {a: n for a, n in got.items() if n > 1} == {}, "duplicated results"
        assert sorted(got) == sorted(ids), f"every alert has a result; see {log_path}"
        assert proc.poll() is None, "the service kept running"
    finally:
        stop_process(proc)
