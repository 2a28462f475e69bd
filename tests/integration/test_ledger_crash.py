"""`kill -9` between the Kafka commit and the ledger write, then a restart: no run is left
`pending` whose result is on its topic (the ledger is reconciled with the result topics)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from mmstream.config import load_settings
from mmstream.feeders import igwn_alert, produce_heartbeat
from mmstream.formats.results import decode_result
from mmstream.ledger.jobs import jobs
from mmstream.ledger.store import Ledger
from mmstream.model import NS_PER_S
from mmstream.times import now_ns
from tests.integration.harness import read_to_end, start_mmstream, stop_process, wait_until

pytestmark = pytest.mark.integration
ANALYSES = ("temporal_coincidence", "spacetime_coincidence")


def test_a_run_killed_before_its_ledger_write_is_settled_at_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    cfg = tmp_path / "crash.toml"
    off = "".join(f"[analyses.{n}]\nenabled = false\n" for n in (
        "neutrino_llh", "raven_temporal_coincidence", "raven_coincidence", "supernova_burst"))  # fmt: skip
    cfg.write_text(
        f'instance = "crash-{tag}"\ngroup_id = "crash-{tag}"\n'
        f'alert_topics = ["igwn.gwalert.crash{tag}"]\ndetectors = ["crash{tag}"]\n'
        f'result_topic_prefix = "mmstream.results.crash{tag}."\n'
        f'notice_topic_prefix = "mmstream.notices.crash{tag}."\n'
        f'deadletter_topic = "mmstream.deadletter.crash{tag}"\n'
        f'stats_topic = "mmstream.stats.crash{tag}"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[kafka]\n"bootstrap.servers" = "{kafka_bootstrap}"\n{off}'
    )
    settings = load_settings(cfg)
    url = settings.ledger_location()
    assert url is not None
    log = tmp_path / "service.log"
    with log.open("ab") as out:
        child = subprocess.Popen([sys.executable, "-m", "tests.crash_after_commit", "--config",
                                  str(cfg)], stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_until(lambda: "service started" in log.read_text(), "the service started", 90)
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        det = settings.detectors[0]
        produce_heartbeat(producer, settings.status_topic(det), det, now_ns())
        t = now_ns() - 900 * NS_PER_S
        producer.produce(settings.alert_topics[0],
                         igwn_alert("S000080k", time_ns=t, ra_deg=1.0, dec_deg=2.0))  # fmt: skip
        producer.flush(30)
        assert child.wait(120) == -9, log.read_text()  # killed at the ledger write
    finally:
        if child.poll() is None:
            child.kill()

    in_kafka = {}
    for name in ANALYSES:
        for msg in read_to_end(settings, settings.result_topic(name)):
            in_kafka[decode_result(msg.value())["result_id"]] = (msg.topic(), msg.partition(),
                                                                 msg.offset())  # fmt: skip
    assert len(in_kafka) == 2  # committed before the kill
    ledger = Ledger(url)
    assert ledger.pending_ids() == set(in_kafka)  # the crash left both pending

    service = start_mmstream("run", "--config", str(cfg), log=log)
    try:
        wait_until(lambda: not Ledger(url).pending_ids(), "the ledger reconciled", 90)
    finally:
        stop_process(service)
    for rid, (topic, partition, offset) in in_kafka.items():
        run = ledger.run(rid)
        assert run is not None and run["status"] == "completed"
        assert [(o["topic"], o["partition"], o["offset"]) for o in ledger.outputs(rid)] == [
            (topic, partition, offset)]  # fmt: skip
    states = {j["job_id"]: j["state"] for j in jobs(ledger, alert="S000080k")}
    assert states == {rid: "published" for rid in in_kafka}
