"""Stop and restart the broker mid-stream (same data directory): nothing lost, nothing twice.

The service runs as the real `mmstream run` command. If a transactional call hangs past
the broker restart (a librdkafka bug, see mmstream.stream.watchdog), the watchdog restarts
the process; the result topic must still hold every alert exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from mmstream.broker.local import LocalKafka
from mmstream.config import load_settings
from mmstream.feeders import igwn_alert, produce_heartbeats
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.provenance.headers import result_id
from mmstream.stream.topics import ensure_topics
from tests.integration.harness import read_messages, read_to_end, start_mmstream, stop_process

pytestmark = pytest.mark.integration
N = 30


def _config(path: Path, bootstrap: str, tag: str) -> Path:
    path.write_text(
        f'instance = "restart-{tag}"\ngroup_id = "restart-{tag}"\n'
        f'alert_topics = ["igwn.gwalert.restart{tag}"]\ndetectors = ["det{tag}"]\n'
        f'result_topic_prefix = "mmstream.results.restart{tag}."\n'
        f'notice_topic_prefix = "mmstream.notices.restart{tag}."\n'
        f'deadletter_topic = "mmstream.deadletter.restart{tag}"\n'
        "max_wait_s = 3600\nstall_limit_s = 15\n"
        f'[kafka]\n"bootstrap.servers" = "{bootstrap}"\n'
        "[analyses.neutrino_llh]\nenabled = false\n"
        "[analyses.spacetime_coincidence]\nenabled = false\n"
        "[analyses.raven_temporal_coincidence]\nenabled = false\n"
    )
    return path


def test_broker_restart_mid_stream(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka")
    info = broker.start()
    tag = uuid.uuid4().hex[:8]
    cfg = _config(tmp_path / "restart.toml", info.bootstrap, tag)
    settings = load_settings(cfg)
    alert_topic, detector = settings.alert_topics[0], settings.detectors[0]
    ensure_topics(AdminClient({"bootstrap.servers": info.bootstrap}),
                  [alert_topic, settings.detector_topic(detector), settings.status_topic(detector)])  # fmt: skip
    end = time.time_ns()
    setup = Producer({"bootstrap.servers": info.bootstrap, "enable.idempotence": True})
    produce_heartbeats(setup, settings.status_topic(detector), detector,
                       end - 2000 * NS_PER_S, end)  # fmt: skip
    setup.flush(10)
    ids = [f"S{i:06d}r{uuid.uuid4().hex[:3]}" for i in range(N)]
    unsent: list[str] = []

    def send(batch: list[str]) -> None:
        """Send until the broker acknowledges each alert, with a fresh producer per attempt.

        An alert whose acknowledgement was lost in the restart is sent again: the service
        must then see the same notice twice and still publish one result.
        """
        left = list(batch)
        for _ in range(5):
            acked: set[str] = set()
            producer = Producer({"bootstrap.servers": info.bootstrap, "enable.idempotence": True,
                                 "message.timeout.ms": 30000})  # fmt: skip
            for aid in left:
                producer.produce(alert_topic, igwn_alert(aid, time_ns=end - 1500 * NS_PER_S,
                                                         ra_deg=1.0, dec_deg=2.0),
                                 on_delivery=lambda err, _m, a=aid, s=acked: err or s.add(a))  # fmt: skip
                time.sleep(0.05)
            producer.flush(40)
            left = [a for a in left if a not in acked]
            if not left:
                return
        unsent.extend(left)

    log_path = tmp_path / "service.log"
    proc = start_mmstream("run", "--config", str(cfg), log=log_path)
    try:
        send(ids[: N // 2])
        first = read_messages(settings, settings.result_topic("temporal_coincidence"), N // 2, 120)
        assert len(first) == N // 2, f"the service is not processing; see {log_path}"
        # Restart while the second half is being sent and processed.
        sender = threading.Thread(target=send, args=(ids[N // 2 :],))
        sender.start()
        time.sleep(0.3)
        assert broker.stop()
        restarted = broker.start()
        assert restarted.bootstrap == info.bootstrap, "same ports after a restart"
        sender.join(150)
        assert unsent == [], "alerts the broker never acknowledged"

        topic = settings.result_topic("temporal_coincidence")
        read_messages(settings, topic, N, timeout=150)
        results = [decode_result(m.value()) for m in read_to_end(settings, topic)]
        got = [r["alert"]["alert_id"] for r in results]
        assert sorted(got) == sorted(ids), f"every alert exactly once; see {log_path}"
        for r in results:
            expected = result_id("temporal_coincidence@1.0.0", r["alert"]["alert_id"],
                                 r["alert"]["revision"])  # fmt: skip
            assert r["result_id"] == str(expected)
        assert proc.poll() is None, "the service is still running"
    finally:
        stop_process(proc)
        broker.stop()
