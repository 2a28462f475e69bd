"""The walking skeleton on a real broker: alert in, analyses run, results with provenance out."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from mmstream import __version__
from mmstream.analyses.registry import Registry, params_sha256
from mmstream.feeders import (
    Injection,
    background_events,
    igwn_alert,
    produce_events,
    produce_heartbeat,
    produce_heartbeats,
    with_injections,
)
from mmstream.formats import igwn
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S, SourceRef
from mmstream.provenance.headers import notice_id, result_id
from mmstream.times import now_ns, parse_utc_ns
from tests.integration.harness import (
    metric,
    read_messages,
    read_to_end,
    running_service,
    wait_until,
)

pytestmark = pytest.mark.integration

EXPECTED_HEADERS = {
    "_id",
    "_format",
    "_sender",
    "mmstream-analysis",
    "mmstream-code",
    "mmstream-config-sha256",
    "mmstream-inputs",
    "mmstream-window",
    "mmstream-produced-at",
}


def _feed_detector(h, t_alert: int, planted: Injection, rate_hz: float = 0.02) -> int:
    end = now_ns()
    events = with_injections(
        h.detector,
        background_events(h.detector, end - 1200 * NS_PER_S, end, rate_hz, seed=7),
        [planted],
    )
    produce_events(h.producer, h.settings.detector_topic(h.detector), events)
    produce_heartbeats(
        h.producer, h.settings.status_topic(h.detector), h.detector, end - 1200 * NS_PER_S, end
    )
    h.producer.flush(30)
    return len(events)


def test_alert_produces_results_with_full_provenance(kafka_bootstrap: str) -> None:
    with running_service(kafka_bootstrap) as h:
        t_alert = now_ns() - 600 * NS_PER_S
        planted = Injection(t_alert + 3 * NS_PER_S, 200.3, 40.2, 0.5, event_id="planted-e2e")
        _feed_detector(h, t_alert, planted)
        alert_offset = h.produce(
            h.alert_topic,
            igwn_alert("MS000001x", time_ns=t_alert, ra_deg=200.0, dec_deg=40.0, sigma_deg=2.0),
        )
        sent_alert = igwn.decode(
            igwn_alert("MS000001x", time_ns=t_alert, ra_deg=200.0, dec_deg=40.0),
            SourceRef("t", 0, 0, igwn.FORMAT),
        )
        registry = Registry.discover()
        # the analyses of our detector's data that a GW alert triggers (alert x alert ones
        # read no detector data, and the supernova search waits for SNEWS or Super-K)
        for spec in [s for s in registry if s.matches(sent_alert) and s.detectors is None]:
            (msg,) = read_messages(
                h.settings, h.settings.result_topic(spec.name), 1, key=b"MS000001x"
            )
            record = decode_result(msg.value())
            headers = headers_dict(msg.headers())

            # Payload
            assert record["analysis"] == spec.name and record["analysis_version"] == spec.version
            assert record["status"] == "COMPLETED"
            assert record["alert"]["alert_id"] == "MS000001x"
            assert record["alert"]["alert_type"] == "PRELIMINARY"
            assert record["alert"]["role"] == "test"
            # The IGWN packet carries milliseconds; the alert time is that, exactly.
            assert record["alert"]["time_ns"] == t_alert // 1_000_000 * 1_000_000
            event_ids = [e["event_id"] for e in record["events"]]
            assert "planted-e2e" in event_ids
            planted_rec = record["events"][event_ids.index("planted-e2e")]
            assert planted_rec["values"]["dt_s"] == pytest.approx(3.0, abs=1e-3)
            if spec.name == "spacetime_coincidence":
                assert event_ids == ["planted-e2e"], (
                    "background is not in a 2-degree map's 90% region"
                )
                assert planted_rec["values"]["credible_level"] < 0.2
            else:
                assert record["statistics"]["n_events"] == len(record["events"]) >= 1
                assert all(abs(e["values"]["dt_s"]) <= 500 for e in record["events"])

            # Every provenance header, each with the value it must have
            # MS... is a mock event: the result carries hop-client's test marker
            assert set(headers) == EXPECTED_HEADERS | {"_test"} and headers["_test"] == b"true"
            rid = result_id(spec.label, "MS000001x", record["alert"]["revision"], "test")
            assert headers["_id"] == rid.bytes and record["result_id"] == str(rid)
            assert headers["_format"] == b"avro"
            assert headers["_sender"] == h.settings.instance.encode()
            assert headers["mmstream-analysis"] == spec.label.encode()
            code = headers["mmstream-code"].decode()
            assert code.startswith(f"mmstream=={__version__}")
            assert f"handler-sha256={spec.source_sha256}" in code
            params = spec.validate_params({})
            assert headers["mmstream-config-sha256"] == params_sha256(params).encode()
            inputs = json.loads(headers["mmstream-inputs"])
            assert inputs["alert"]["topic"] == h.alert_topic
            assert inputs["alert"]["offset"] == alert_offset
            assert inputs["alert"]["alert_id"] == "MS000001x"
            (det,) = inputs["detectors"]
            assert det["topic"] == h.settings.detector_topic(h.detector)
            assert det["count"] == record["statistics"]["n_events"]
            window = json.loads(headers["mmstream-window"])
            alert_ns = record["alert"]["time_ns"]
            before, after = spec.window_for(sent_alert)
            assert window["start_ns"] == alert_ns + int(before * NS_PER_S)
            assert window["end_ns"] == alert_ns + int(after * NS_PER_S)
            assert parse_utc_ns(window["start"]) == window["start_ns"]
            produced = parse_utc_ns(headers["mmstream-produced-at"].decode())
            assert abs(produced - now_ns()) < 120 * NS_PER_S
            # The payload repeats the mmstream-* headers, so it stands alone.
            assert record["provenance"]["mmstream-inputs"] == headers["mmstream-inputs"].decode()
        assert h.committed(h.alert_topic) == alert_offset + 1


def test_offset_is_committed_only_after_results_are_published(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        # The alert's window ends 100 s after the detector's watermark: it must wait.
        t_alert = now_ns() - 400 * NS_PER_S
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        h.producer.flush(10)
        offset = h.produce(
            h.alert_topic, igwn_alert("MS000002x", time_ns=t_alert, ra_deg=10.0, dec_deg=5.0)
        )
        result_topic = h.settings.result_topic("temporal_coincidence")
        # Sentinel: a later alert whose window is closed gets its result; the first has none,
        # and its offset (so the sentinel's, behind it) is not committed.
        h.produce(h.alert_topic, igwn_alert("MS000002s", time_ns=now_ns() - 3000 * NS_PER_S,
                                            ra_deg=10.0, dec_deg=5.0))  # fmt: skip
        (sentinel,) = read_messages(h.settings, result_topic, 1)
        assert decode_result(sentinel.value())["alert"]["alert_id"] == "MS000002s"
        assert h.committed(h.alert_topic) < offset + 1, "offset committed before any result"
        wait_until(lambda: metric(h, "mmstream_windows_waiting") == 1, "one window waiting")

        # The detector's heartbeat passes the window end: the analysis runs and publishes.
        produce_heartbeat(
            h.producer, h.settings.status_topic(h.detector), h.detector, t_alert + 501 * NS_PER_S
        )
        h.producer.flush(10)
        msg = read_messages(h.settings, result_topic, 2)[1]
        assert decode_result(msg.value())["alert"]["alert_id"] == "MS000002x"
        wait_until(lambda: h.committed(h.alert_topic) == offset + 2, "both offsets committed")


def test_malformed_alert_is_dead_lettered_and_service_goes_on(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        dead_before = metric(h, "mmstream_deadletters_total", stage="decode",
                             exception="DecodeError")  # fmt: skip
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        garbage = b"Obj\x01 this is not an Avro container" + uuid.uuid4().bytes
        bad_offset = h.produce(h.alert_topic, garbage, headers=[("origin-header", b"kept")])
        t_alert = now_ns() - 900 * NS_PER_S
        good_offset = h.produce(
            h.alert_topic, igwn_alert("MS000003x", time_ns=t_alert, ra_deg=1.0, dec_deg=2.0)
        )

        (dead,) = read_messages(h.settings, h.settings.deadletter_topic, 1)
        assert dead.value() == garbage  # byte-exact
        dh = headers_dict(dead.headers())
        assert dh["origin-header"] == b"kept"
        origin = json.loads(dh["mmstream-dlq-origin"])
        assert origin == {"topic": h.alert_topic, "partition": 0, "offset": bad_offset}
        assert b"Avro" in dh["mmstream-dlq-reason"]
        assert dh["mmstream-dlq-exception"] == b"DecodeError"

        (msg,) = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
        assert decode_result(msg.value())["alert"]["alert_id"] == "MS000003x"
        assert h.thread.is_alive()
        deadline = time.monotonic() + 10
        while h.committed(h.alert_topic) != good_offset + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert h.committed(h.alert_topic) == good_offset + 1
        after = metric(h, "mmstream_deadletters_total", stage="decode", exception="DecodeError")
        assert after == dead_before + 1


def test_public_lvk_packet_runs_and_says_its_window_is_not_covered(
    kafka_bootstrap: str, shared_data
) -> None:
    path = shared_data / "igwn" / "userguide" / "MS181101ab-preliminary.avro"
    if not path.exists():
        pytest.skip(f"{path} not present")
    registry = Registry.discover()
    with running_service(kafka_bootstrap, registry=registry, max_wait_s=0.0,
                         analyses={"neutrino_llh": {"params": {"n_trials": 20}}}) as h:  # fmt: skip
        # The detector reports its status today: for 2018 it has no reports in its history,
        # which is unknown time, not dead time.
        status = h.settings.status_topic(h.detector)
        sent = produce_heartbeats(h.producer, status, h.detector, now_ns() - 600 * NS_PER_S,
                                  now_ns())  # fmt: skip
        h.producer.flush(10)
        wait_until(lambda: metric(h, "mmstream_detector_live", detector=h.detector) == 1,
                   "the heartbeats read")  # fmt: skip
        assert sent > 5
        h.produce(h.alert_topic, path.read_bytes())
        # every analysis of our data that a GW triggers, sky map or not, by one rule
        for spec in [
            s for s in registry if "LVK" in (s.sources or {"LVK"}) and s.detectors is None
        ]:
            (msg,) = read_messages(h.settings, h.settings.result_topic(spec.name), 1)
            record = decode_result(msg.value())
            assert record["alert"]["alert_id"] == "MS181101ab"
            assert record["alert"]["time"].startswith("2018-11-01T22:22:46.654")
            # A 2018 alert is far older than the store's lookback: the result must say so.
            assert record["status"] == "INCOMPLETE", (spec.name, record["summary"])
            assert any("coverage" in note for note in record["notes"])


def test_emitted_notice_validates_against_gcn_schema(kafka_bootstrap: str) -> None:
    from tests.gcn_schema import validator_for

    validate = validator_for("gcn/notices/icecube/lvk_nu_track_search.schema.json")
    registry = Registry([Registry.discover().get("neutrino_llh")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        t_alert = now_ns() - 600 * NS_PER_S
        _feed_detector(
            h, t_alert, Injection(t_alert + 5 * NS_PER_S, 80.1, -5.1, 0.5, event_id="nu-1")
        )
        h.produce(
            h.alert_topic,
            igwn_alert("S000012x", time_ns=t_alert, ra_deg=80.0, dec_deg=-5.0, sigma_deg=2.0),
        )
        (msg,) = read_messages(h.settings, h.settings.notice_topic("neutrino_llh"), 1)
        notice = json.loads(msg.value())
        assert sorted(str(e.message) for e in validate.iter_errors(notice)) == []
        assert notice["ref_ID"] == "S000012x"
        assert "nu-1" in [e["id"][0] for e in notice["coincident_events"]]
        assert notice["pval_generic"] < 0.05
        headers = headers_dict(msg.headers())
        assert (
            headers["_format"] == b"json" and headers["mmstream-analysis"] == b"neutrino_llh@2.0.0"
        )
        assert "_test" not in headers, "S... is a real superevent"
        # The notice is a message of its own, with an id of its own, naming its result.
        (result,) = read_messages(h.settings, h.settings.result_topic("neutrino_llh"), 1)
        rid = uuid.UUID(bytes=headers_dict(result.headers())["_id"])
        assert headers["mmstream-result-id"] == str(rid).encode()
        assert headers["_id"] == notice_id(rid).bytes != rid.bytes


def test_downtime_in_the_window_says_insufficient_livetime(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("spacetime_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        end = now_ns()
        t_alert = end - 600 * NS_PER_S
        down = (t_alert - 300 * NS_PER_S, t_alert + 300 * NS_PER_S)
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           end - 1200 * NS_PER_S, end, down=down, reason="power cut")  # fmt: skip
        h.producer.flush(10)
        h.produce(h.alert_topic, igwn_alert("S000013x", time_ns=t_alert, ra_deg=80.0, dec_deg=-5.0))
        (msg,) = read_messages(h.settings, h.settings.result_topic("spacetime_coincidence"), 1)
        record = decode_result(msg.value())
        assert record["status"] == "INSUFFICIENT_LIVETIME"
        assert "insufficient livetime" in record["summary"] and "power cut" in record["summary"]
        assert record["window"]["livetime_fraction"] == pytest.approx(0.4, abs=0.07)
        (excluded,) = [e for e in record["excluded"] if e["reason"] == "BAD: power cut"]
        assert abs(excluded["start_ns"] - down[0]) <= 60 * NS_PER_S
        assert abs(excluded["end_ns"] - down[1]) <= 60 * NS_PER_S
        window = json.loads(headers_dict(msg.headers())["mmstream-window"])
        assert window["excluded"][0]["reason"] == "BAD: power cut"


def test_missing_detector_events_are_a_data_gap_in_the_result(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        end = now_ns()
        t_alert = end - 900 * NS_PER_S
        events = background_events(h.detector, end - 1500 * NS_PER_S, end, 0.2, seed=11)
        lost = [
            e for e in events if t_alert - 100 * NS_PER_S < e.time_ns < t_alert + 100 * NS_PER_S
        ]
        assert len(lost) > 10
        kept = [e for e in events if e not in lost]
        produce_events(h.producer, h.settings.detector_topic(h.detector), kept)
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           end - 1500 * NS_PER_S, end)  # fmt: skip
        h.producer.flush(10)
        h.produce(h.alert_topic, igwn_alert("S000021g", time_ns=t_alert, ra_deg=10.0, dec_deg=5.0))
        (msg,) = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
        record = decode_result(msg.value())
        gaps = [e for e in record["excluded"] if e["reason"].startswith("data gap")]
        assert len(gaps) == 1, record["excluded"]
        assert f"{len(lost)} event(s) missing" in gaps[0]["reason"]
        neighbours = [e for e in kept if e.seq in (lost[0].seq - 1, lost[-1].seq + 1)]
        assert (gaps[0]["start_ns"], gaps[0]["end_ns"]) == (
            neighbours[0].time_ns,
            neighbours[1].time_ns,
        )
        gap_s = (gaps[0]["end_ns"] - gaps[0]["start_ns"]) / NS_PER_S
        assert record["window"]["livetime_fraction"] == pytest.approx(1 - gap_s / 1000, abs=1e-6)
        missing = "mmstream_detector_missing_events_total"
        assert metric(h, missing, detector=h.detector) == len(lost)


def test_late_events_heal_the_gap_and_update_the_result(kafka_bootstrap: str) -> None:

    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry, late_events="rerun",
                         late_settle_s=1.0) as h:  # fmt: skip
        end = now_ns()
        t_alert = end - 900 * NS_PER_S
        events = background_events(h.detector, end - 1500 * NS_PER_S, end, 0.2, seed=12)
        lost = [e for e in events if t_alert - 50 * NS_PER_S < e.time_ns < t_alert + 150 * NS_PER_S]
        kept = [e for e in events if e not in lost]
        produce_events(h.producer, h.settings.detector_topic(h.detector), kept)
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           end - 1500 * NS_PER_S, end)  # fmt: skip
        h.producer.flush(10)
        h.produce(h.alert_topic, igwn_alert("S000022h", time_ns=t_alert, ra_deg=10.0, dec_deg=5.0))
        topic = h.settings.result_topic("temporal_coincidence")
        (first_msg,) = read_messages(h.settings, topic, 1)
        first = decode_result(first_msg.value())
        assert any(e["reason"].startswith("data gap") for e in first["excluded"])
        assert first["window"]["livetime_fraction"] < 0.85

        produce_events(h.producer, h.settings.detector_topic(h.detector), lost)  # late
        h.producer.flush(10)
        first_msg, second_msg = read_messages(h.settings, topic, 2, timeout=60)
        second = decode_result(second_msg.value())
        assert second["supersedes"] == first["result_id"]
        assert second["result_id"] != first["result_id"]
        assert second["alert"]["revision"] == first["alert"]["revision"]
        assert headers_dict(second_msg.headers())["mmstream-late-update"] == b"1"
        assert second["excluded"] == [] and second["window"]["livetime_fraction"] == 1.0
        assert second["statistics"]["n_events"] == first["statistics"]["n_events"] + len(lost)
        assert any("late-data update 1" in n for n in second["notes"])
        late = "mmstream_detector_late_events_total"
        assert metric(h, late, detector=h.detector) == len(lost)
        # Sentinel: a later alert's result; still no further update without late events.
        h.produce(h.alert_topic, igwn_alert("S000022s", time_ns=t_alert, ra_deg=1.0, dec_deg=5.0))
        wait_until(lambda: "S000022s" in _alerts(h, topic), "the sentinel's result")
        assert _alerts(h, topic).count("S000022h") == 2


def test_late_events_are_counted_without_a_new_result_by_default(kafka_bootstrap: str) -> None:

    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry, late_settle_s=0.1) as h:
        end = now_ns()
        t_alert = end - 900 * NS_PER_S
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           end - 1500 * NS_PER_S, end)  # fmt: skip
        h.producer.flush(10)
        h.produce(h.alert_topic, igwn_alert("S000023k", time_ns=t_alert, ra_deg=10.0, dec_deg=5.0))
        topic = h.settings.result_topic("temporal_coincidence")
        read_messages(h.settings, topic, 1)
        late = background_events(h.detector, t_alert - 100 * NS_PER_S, t_alert + 100 * NS_PER_S,
                                 0.1, seed=4)  # fmt: skip
        outside = background_events(h.detector, end - 100 * NS_PER_S, end, 0.1, seed=5,
                                    first_seq=len(late))  # fmt: skip
        produce_events(h.producer, h.settings.detector_topic(h.detector), late + outside)
        h.producer.flush(10)
        events_topic = h.settings.detector_topic(h.detector)
        wait_until(lambda: metric(h, "mmstream_messages_consumed_total", topic=events_topic)
              >= len(late) + len(outside), "every event read")  # fmt: skip
        assert (
            metric(h, "mmstream_detector_late_events_total", detector=h.detector) == len(late) > 0
        )
        # Sentinel: a later alert's result; the first alert still has its one result only.
        h.produce(h.alert_topic, igwn_alert("S000023s", time_ns=t_alert, ra_deg=1.0, dec_deg=5.0))
        wait_until(lambda: "S000023s" in _alerts(h, topic), "the sentinel's result")
        assert _alerts(h, topic).count("S000023k") == 1


def _alerts(h, topic: str) -> list[str]:
    return [decode_result(m.value())["alert"]["alert_id"] for m in read_to_end(h.settings, topic)]
