"""Nothing counted twice: repeated detector events are dropped (and are not late data), and a
bad detector message is dead-lettered once however often the service restarts."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mmstream.analyses.registry import Registry
from mmstream.feeders import background_events, igwn_alert, produce_events, produce_heartbeats
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S, DetectorEvent
from mmstream.stream.messages import headers_of
from mmstream.times import now_ns
from tests.integration.harness import (
    metric,
    read_messages,
    read_to_end,
    running_service,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_repeated_events_count_once_and_are_not_late_data(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry, late_events="rerun",
                         late_settle_s=0.5) as h:  # fmt: skip
        end, tag = now_ns(), uuid.uuid4().hex[:6]
        t_alert = end - 900 * NS_PER_S
        events = background_events(h.detector, end - 1500 * NS_PER_S, end, 0.2, seed=21)
        in_window = [e for e in events if abs(e.time_ns - t_alert // 1_000_000 * 1_000_000)
                     <= 500 * NS_PER_S]  # fmt: skip
        assert len(in_window) > 50
        topic = h.settings.detector_topic(h.detector)
        produce_events(h.producer, topic, events)
        produce_events(h.producer, topic, in_window[:40])  # an at-least-once writer's repeats
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           end - 1500 * NS_PER_S, end)  # fmt: skip
        h.producer.flush(10)
        h.produce(h.alert_topic, igwn_alert("S000031r", time_ns=t_alert, ra_deg=1.0, dec_deg=2.0))
        results = h.settings.result_topic("temporal_coincidence")
        (first_msg,) = read_messages(h.settings, results, 1)
        first = decode_result(first_msg.value())
        assert first["statistics"]["n_events"] == len(in_window)
        assert len({e["event_id"] for e in first["events"]}) == len(first["events"])
        dup = "mmstream_detector_duplicate_events_total"
        late = "mmstream_detector_late_events_total"
        wait_until(lambda: metric(h, dup, detector=h.detector) == 40, "40 repeats counted")

        # Repeats of events in the published window: dropped, not late, no re-run.
        produce_events(h.producer, topic, in_window[40:50])
        h.producer.flush(10)
        wait_until(lambda: metric(h, dup, detector=h.detector) == 50, "10 more repeats counted")
        assert metric(h, late, detector=h.detector) == 0
        # Sentinel: one genuinely new late event; its update is the only one, with one more event.
        newcomer = DetectorEvent(f"late-{tag}", h.detector, 0, t_alert + 10 * NS_PER_S, 1.0, 2.0,
                                 1.0, source="late writer")  # fmt: skip
        produce_events(h.producer, topic, [newcomer])
        h.producer.flush(10)
        wait_until(lambda: len(read_to_end(h.settings, results)) >= 2, "the late-data update")
        msgs = read_to_end(h.settings, results)
        assert len(msgs) == 2
        update = decode_result(msgs[1].value())
        assert update["supersedes"] == first["result_id"]
        assert update["statistics"]["n_events"] == len(in_window) + 1
        assert metric(h, late, detector=h.detector) == 1


def test_a_bad_detector_message_is_dead_lettered_once_across_restarts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    same = {"instance": f"rs-{tag}", "group_id": f"rs-{tag}", "detectors": (f"rs{tag}",),
            "alert_topics": (f"igwn.gwalert.rs{tag}",), "deadletter_topic": f"mmstream.dl.rs{tag}",
            "result_topic_prefix": f"mmstream.results.rs{tag}.",
            "notice_topic_prefix": f"mmstream.notices.rs{tag}.", "data_dir": tmp_path}  # fmt: skip
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    for start in range(3):
        with running_service(kafka_bootstrap, registry=registry, **same) as h:
            if start == 0:
                h.produce(h.settings.detector_topic(h.detector), b"\xc3\x01garbage",
                          headers=[("case", b"the bad one")])  # fmt: skip
            # Barrier: a new bad message after it in the same partition, dead-lettered in turn.
            h.produce(h.settings.detector_topic(h.detector), b"not avro",
                      headers=[("case", f"barrier {start}".encode())])  # fmt: skip
            read_messages(h.settings, h.settings.deadletter_topic, start + 2)
            cases = [headers_dict(headers_of(m)).get("case", b"").decode()
                     for m in read_to_end(h.settings, h.settings.deadletter_topic)]  # fmt: skip
            assert f"barrier {start}" in cases
            assert cases.count("the bad one") == 1, f"after start {start + 1}: {cases}"
            assert all(cases.count(f"barrier {i}") == 1 for i in range(start + 1)), cases
