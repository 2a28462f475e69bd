"""Bad input of every kind lands in the dead-letter topic with a readable reason; nothing stops."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from prometheus_client import REGISTRY

from mmstream.analyses.registry import Registry
from mmstream.feeders import igwn_alert, produce_heartbeat
from mmstream.formats.detector import encode_status
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S, DetectorStatus
from mmstream.stream.messages import headers_of
from mmstream.times import format_utc, now_ns
from tests.integration.harness import read_messages, read_to_end, running_service

pytestmark = pytest.mark.integration

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://x/y#z">&lol2;</voe:VOEvent>"""


def gcn_notice(**fields: object) -> bytes:
    base = {"mission": "IceCube", "id": ["1"], "alert_type": "initial", "record_number": 1,
            "trigger_time": format_utc(now_ns() - 900 * NS_PER_S), "ra": 10.0, "dec": 20.0,
            "ra_dec_error": 1.0}  # fmt: skip
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def test_every_kind_of_bad_input_is_dead_lettered_and_the_next_good_one_processed(
    kafka_bootstrap: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = {
        "igwn": f"igwn.gwalert.bad{tag}",
        "gcn": f"gcn.notices.icecube.bad{tag}",
        "voe": f"gcn.classic.voevent.bad{tag}",
        "any": f"other.alerts.bad{tag}",
    }
    good_igwn = igwn_alert("MS000009x", time_ns=now_ns() - 900 * NS_PER_S, ra_deg=1.0, dec_deg=2.0)
    cases = [
        # (name, topic, payload, words the reason must contain)
        ("truncated avro", "igwn", good_igwn[: len(good_igwn) // 2], "Avro"),
        ("wrong magic", "igwn", b"Obj\x02" + good_igwn[4:], "neither an Avro container nor JSON"),
        ("random bytes", "any", os.urandom(64).replace(b"{", b"").replace(b"<", b"") + b"\x00", "not a known alert format"),
        ("xml of the wrong kind", "voe", b"<html><body>hello</body></html>", "not a VOEvent"),
        ("entity expansion", "voe", BILLION_LAUGHS, "refused for safety"),
        ("json missing fields", "gcn", gcn_notice(trigger_time=None), "no trigger_time"),
        ("nan coordinates", "gcn", gcn_notice(ra=float("nan")), "not a finite number"),
        ("far-future time", "gcn", gcn_notice(trigger_time="2100-01-01T00:00:00Z"), "days after the message arrived"),
        ("not json", "gcn", b"{this is not json", "not JSON"),
        ("empty", "gcn", b"", "empty message"),
    ]  # fmt: skip
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    before = (
        REGISTRY.get_sample_value(
            "mmstream_deadletters_total", {"stage": "decode", "exception": "DecodeError"}
        )
        or 0.0
    )
    with running_service(
        kafka_bootstrap, registry=registry, alert_topics=tuple(topics.values())
    ) as h:
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        for name, key, payload, _ in cases:
            h.produce(topics[key], payload, headers=[("case", name.encode())])
        # A garbage detector message too: it must not stop event ingestion.
        h.produce(h.settings.detector_topic(h.detector), b"\xc3\x01" + os.urandom(20),
                  headers=[("case", b"detector garbage")])  # fmt: skip
        # Then good messages on every alert topic.
        h.produce(topics["gcn"], gcn_notice(id=["good-gcn"]))
        h.produce(topics["igwn"], good_igwn)

        dead = read_messages(h.settings, h.settings.deadletter_topic, len(cases) + 1, timeout=60)
        by_case = {headers_dict(headers_of(m))["case"].decode(): m for m in dead}
        assert set(by_case) == {c[0] for c in cases} | {"detector garbage"}
        for name, key, payload, words in cases:
            msg = by_case[name]
            hdr = headers_dict(headers_of(msg))
            assert msg.value() == payload or (payload == b"" and not msg.value()), name
            reason = hdr["mmstream-dlq-reason"].decode()
            assert words in reason, f"{name}: reason {reason!r} lacks {words!r}"
            assert json.loads(hdr["mmstream-dlq-origin"])["topic"] == topics[key]
            assert hdr["mmstream-dlq-stage"] == b"decode"
        assert (
            b"fingerprint"
            in headers_dict(headers_of(by_case["detector garbage"]))["mmstream-dlq-reason"]
        )

        results = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 2)
        assert {decode_result(m.value())["alert"]["alert_id"] for m in results} == {
            "IceCube-good-gcn", "MS000009x"}  # fmt: skip
        assert h.thread.is_alive()
        for topic in topics.values():
            deadline = time.monotonic() + 10
            end = read_end(h, topic)
            while h.committed(topic) != end and time.monotonic() < deadline:
                time.sleep(0.2)
            if end > 0:
                assert h.committed(topic) == end, f"{topic}: offsets stuck behind a bad message"
    after = REGISTRY.get_sample_value(
        "mmstream_deadletters_total", {"stage": "decode", "exception": "DecodeError"}
    )
    assert after == before + len(cases) + 1


def read_end(h, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**h.settings.kafka_config(), "group.id": "watermarks"})
    try:
        return int(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        c.close()


def test_test_alerts_can_be_skipped_by_policy(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry, test_alerts="skip") as h:
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        t = now_ns() - 900 * NS_PER_S
        skipped = h.produce(
            h.alert_topic, igwn_alert("MS000010x", time_ns=t, ra_deg=1.0, dec_deg=2.0)
        )
        real = h.produce(h.alert_topic, igwn_alert("S000010x", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        (msg,) = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
        assert decode_result(msg.value())["alert"]["alert_id"] == "S000010x"
        deadline = time.monotonic() + 10
        while h.committed(h.alert_topic) != real + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        # Both offsets committed (the skipped one first): nothing more can come of them.
        assert h.committed(h.alert_topic) == real + 1 > skipped + 1
        assert len(read_to_end(h.settings, h.settings.result_topic("temporal_coincidence"))) == 1


def test_detector_batches_feed_the_store(kafka_bootstrap: str) -> None:
    from mmstream.feeders import background_events
    from mmstream.formats.detector import encode_batch

    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        end = now_ns()
        events = background_events(h.detector, end - 1200 * NS_PER_S, end, 0.5, seed=3)
        for i in range(0, len(events), 100):
            h.produce(
                h.settings.detector_topic(h.detector), encode_batch(h.detector, events[i : i + 100])
            )
        h.produce(
            h.settings.status_topic(h.detector),
            encode_status(DetectorStatus(h.detector, 0, end, "GOOD")),
        )
        t = end - 600 * NS_PER_S
        h.produce(h.alert_topic, igwn_alert("MS000011x", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        (msg,) = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
        record = decode_result(msg.value())
        t_ms = t // 1_000_000 * 1_000_000
        expected = sum(
            1 for e in events if t_ms - 500 * NS_PER_S <= e.time_ns <= t_ms + 500 * NS_PER_S
        )
        assert record["statistics"]["n_events"] == expected > 300


def test_a_heartbeat_read_before_its_events_does_not_close_the_window_early(
    kafka_bootstrap: str,
) -> None:
    """The status topic can be read ahead of the events topic; results must still be complete."""
    from mmstream.feeders import background_events, produce_events, produce_heartbeats

    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        end = now_ns()
        events = background_events(h.detector, end - 1200 * NS_PER_S, end, 16.0, seed=11)
        assert len(events) > 15_000
        produce_events(h.producer, h.settings.detector_topic(h.detector), events)
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           end - 1200 * NS_PER_S, end)  # fmt: skip
        h.producer.flush(30)
        t = end - 600 * NS_PER_S
        h.produce(h.alert_topic, igwn_alert("S000014x", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        (msg,) = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
        t_ms = t // 1_000_000 * 1_000_000
        expected = sum(
            1 for e in events if t_ms - 500 * NS_PER_S <= e.time_ns <= t_ms + 500 * NS_PER_S
        )
        assert decode_result(msg.value())["statistics"]["n_events"] == expected


def test_a_refused_last_detector_message_does_not_hold_the_watermark_back(
    kafka_bootstrap: str,
) -> None:
    """A heartbeat counts once the events partitions are read to their end: a dead-lettered
    message at the end is read too, so the window closes on the heartbeat (not max_wait_s)."""
    from mmstream.feeders import background_events, produce_events

    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:  # max_wait_s = 3600
        end = now_ns()
        events = background_events(h.detector, end - 1200 * NS_PER_S, end, 0.05, seed=8)
        produce_events(h.producer, h.settings.detector_topic(h.detector), events)
        h.producer.produce(h.settings.detector_topic(h.detector), value=None)  # refused, last
        h.producer.flush(10)
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, end)
        h.producer.flush(10)
        h.produce(h.alert_topic, igwn_alert("S000060w", time_ns=end - 600 * NS_PER_S,
                                            ra_deg=1.0, dec_deg=2.0))  # fmt: skip
        (msg,) = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
        assert decode_result(msg.value())["status"] == "COMPLETED"
        (dead,) = read_messages(h.settings, h.settings.deadletter_topic, 1)
        assert dead.value() is None
