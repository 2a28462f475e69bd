"""Kill -9 the service again and again: the committed results equal an uninterrupted run's."""

from __future__ import annotations

import random
import signal
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from mmstream.analyses.registry import Registry
from mmstream.config import load_settings
from mmstream.feeders import background_events, igwn_alert, produce_events, produce_heartbeats
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from tests.integration.harness import (
    read_messages,
    read_to_end,
    running_service,
    start_mmstream,
    stop_process,
)

pytestmark = pytest.mark.integration
ANALYSES = ("temporal_coincidence", "gw_neutrino_coincidence", "raven_temporal_coincidence")
N_ALERTS = 50
KILLS = 12


def _results(settings) -> dict[str, list[bytes]]:
    """Result payloads by result id (the publication time is only in the headers, so a
    re-run of the same inputs must give the same bytes)."""
    out: dict[str, list[bytes]] = {}
    for name in ANALYSES:
        for msg in read_to_end(settings, settings.result_topic(name)):
            out.setdefault(decode_result(msg.value())["result_id"], []).append(msg.value())
    return out


def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    inputs = {
        "alert_topics": (f"igwn.gwalert.chaos{tag}",),
        "detectors": (f"det{tag}",),
        "deadletter_topic": f"mmstream.deadletter.chaos{tag}",
        "analyses": {"neutrino_llh": {"enabled": False}},
    }
    rng = random.Random(20261122)
    end = time.time_ns()
    settings = load_settings(kafka={"bootstrap.servers": kafka_bootstrap}, **inputs)
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    from mmstream.stream.topics import ensure_topics

    ensure_topics(AdminClient({"bootstrap.servers": kafka_bootstrap}),
                  [settings.alert_topics[0], settings.detector_topic(settings.detectors[0]),
                   settings.status_topic(settings.detectors[0])])  # fmt: skip
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    detector = settings.detectors[0]
    produce_events(producer, settings.detector_topic(detector),
                   background_events(detector, end - 2400 * NS_PER_S, end, 0.05, seed=5))  # fmt: skip
    produce_heartbeats(
        producer, settings.status_topic(detector), detector, end - 2400 * NS_PER_S, end
    )
    for i in range(N_ALERTS):
        t = end - (2200 - 30 * i) * NS_PER_S
        producer.produce(settings.alert_topics[0], value=igwn_alert(
            f"S{i:06d}c", time_ns=t, ra_deg=rng.uniform(0, 360), dec_deg=rng.uniform(-60, 60),
            sigma_deg=5.0, created_ns=end - 10 * NS_PER_S))  # fmt: skip
    producer.flush(30)
    expected = N_ALERTS * len(ANALYSES)

    # Reference: one uninterrupted run, in its own consumer group and result topics.
    registry = Registry([Registry.discover().get(n) for n in ANALYSES])
    with running_service(kafka_bootstrap, registry=registry, **inputs) as ref:
        for name in ANALYSES:  # wait until the reference run is complete
            read_messages(ref.settings, ref.settings.result_topic(name), N_ALERTS)
        reference = _results(ref.settings)
    assert len(reference) == expected

    # Chaos: the real command, SIGKILLed at random moments, restarted each time.
    cfg = tmp_path / "chaos.toml"
    prefix = f"mmstream.results.chaos{tag}."
    cfg.write_text(
        f'instance = "chaos-{tag}"\ngroup_id = "chaos-{tag}"\nalert_topics = ["{inputs["alert_topics"][0]}"]\n'
        f'detectors = ["{detector}"]\nresult_topic_prefix = "{prefix}"\n'
        f'notice_topic_prefix = "mmstream.notices.chaos{tag}."\n'
        f'deadletter_topic = "{inputs["deadletter_topic"]}"\nmax_wait_s = 3600\n'
        f'[kafka]\n"bootstrap.servers" = "{kafka_bootstrap}"\n'
        f"[analyses.neutrino_llh]\nenabled = false\n"
    )
    chaos_settings = load_settings(cfg)
    log = tmp_path / "service.log"
    kills = 0
    for _ in range(KILLS):
        proc = start_mmstream("run", "--config", str(cfg), log=log)
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    proc = start_mmstream("run", "--config", str(cfg), log=log)
    try:
        checker = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"chaos-{tag}"})
        deadline = time.monotonic() + 180
        committed = -1
        while time.monotonic() < deadline:
            (tp,) = checker.committed([TopicPartition(inputs["alert_topics"][0], 0)], timeout=10)
            committed = tp.offset
            if committed == N_ALERTS:
                break
            time.sleep(1)
        checker.close()
        assert committed == N_ALERTS, (
            f"only {committed} alerts committed; see {tmp_path / 'service.log'}"
        )
    finally:
        stop_process(proc)
    assert kills >= 10

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
