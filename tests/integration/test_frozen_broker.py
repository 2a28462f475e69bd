"""The broker freezes (SIGSTOP) while an alert's results are being published: the transaction
fails and is aborted, the abort itself may time out and be resumed, and once the broker
thaws the results are published exactly once and the offset moves."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from mmstream.broker.local import LocalKafka
from mmstream.config import load_settings
from mmstream.feeders import igwn_alert
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.stream.topics import ensure_topics
from tests.integration.harness import log_events, read_to_end, start_mmstream, stop_process

pytestmark = pytest.mark.integration


def _events(log: Path) -> list[str]:
    return [e.get("event", "") for e in log_events(log)]


def _wait_for(log: Path, event: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while event not in _events(log):
        assert time.monotonic() < deadline, f"no {event!r} in {log}"
        time.sleep(0.05)


def test_a_broker_frozen_inside_the_transaction_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    broker = LocalKafka(tmp_path / "kafka")
    info = broker.start()
    tag = uuid.uuid4().hex[:8]
    cfg = tmp_path / "frozen.toml"
    # No heartbeats: the job runs at its deadline (max_wait_s after its window closes), a
    # moment the test can freeze the broker before.
    cfg.write_text(
        f'instance = "frozen-{tag}"\ngroup_id = "frozen-{tag}"\n'
        f'alert_topics = ["igwn.gwalert.frozen{tag}"]\ndetectors = ["det{tag}"]\n'
        f'result_topic_prefix = "mmstream.results.frozen{tag}."\n'
        f'notice_topic_prefix = "mmstream.notices.frozen{tag}."\n'
        f'deadletter_topic = "mmstream.deadletter.frozen{tag}"\nmax_wait_s = 6\n'
        f'[kafka]\n"bootstrap.servers" = "{info.bootstrap}"\n'
        "[analyses.temporal_coincidence]\nwindow = [-5.0, 5.0]\n"
        "[analyses.neutrino_llh]\nenabled = false\n"
        "[analyses.spacetime_coincidence]\nenabled = false\n"
        "[analyses.raven_temporal_coincidence]\nenabled = false\n"
    )
    settings = load_settings(cfg)
    alert_topic = settings.alert_topics[0]
    ensure_topics(AdminClient({"bootstrap.servers": info.bootstrap}), [alert_topic])
    log = tmp_path / "service.log"
    proc = start_mmstream("run", "--config", str(cfg), log=log)
    frozen = False
    try:
        _wait_for(log, "service started", 90)
        producer = Producer({"bootstrap.servers": info.bootstrap})
        producer.produce(alert_topic, igwn_alert(f"S{tag[:6]}z", time_ns=time.time_ns()
                                                 - 10 * NS_PER_S, ra_deg=1.0, dec_deg=2.0))  # fmt: skip
        producer.flush(10)
        _wait_for(log, "alert scheduled", 30)
        os.kill(info.pid, signal.SIGSTOP)  # frozen before the deadline comes
        frozen = True
        _wait_for(log, "result ready", 30)
        _wait_for(log, "transaction failed; will retry", 60)
        os.kill(info.pid, signal.SIGCONT)
        frozen = False
        _wait_for(log, "results published", 120)
        assert proc.poll() is None, "the service kept running"
    finally:
        if frozen:
            os.kill(info.pid, signal.SIGCONT)
        stop_process(proc)
        results = read_to_end(settings, settings.result_topic("temporal_coincidence"))
        broker.stop()
    assert [decode_result(m.value())["alert"]["alert_id"] for m in results] == [f"S{tag[:6]}z"]
    events = _events(log)
    assert events.count("results published") == 1
    assert events.count("transaction failed; will retry") >= 1
