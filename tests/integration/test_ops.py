"""Metrics, health and the dashboard, scraped over HTTP after a run through the real broker."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from mmstream.analyses.registry import Registry
from mmstream.feeders import background_events, igwn_alert, produce_events, produce_heartbeats
from mmstream.model import NS_PER_S
from mmstream.times import now_ns
from tests.integration.harness import read_messages, running_service, sample

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def test_metrics_health_and_dashboard_after_a_run(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get(n) for n in ("temporal_coincidence",
                                                              "spacetime_coincidence")])  # fmt: skip
    with running_service(kafka_bootstrap, registry=registry) as h:
        s = h.settings
        assert h.service.http is not None
        base = h.service.http.address
        before = get(base + "metrics")[2].decode()
        assert get(base + "healthz")[0] == 200
        end = now_ns()
        events = background_events(h.detector, end - 1200 * NS_PER_S, end, 0.05, seed=4)
        produce_events(h.producer, s.detector_topic(h.detector), events)
        beats = produce_heartbeats(h.producer, s.status_topic(h.detector), h.detector,
                                   end - 1200 * NS_PER_S, end)  # fmt: skip
        h.producer.flush(30)
        for i in range(3):
            h.produce(h.alert_topic, igwn_alert(f"S{i:05d}m", time_ns=end - (900 - 100 * i)
                      * NS_PER_S, ra_deg=40.0 * i, dec_deg=10.0))  # fmt: skip
        h.produce(h.alert_topic, b"not an alert at all")
        for name in ("temporal_coincidence", "spacetime_coincidence"):
            read_messages(s, s.result_topic(name), 3)
        read_messages(s, s.deadletter_topic, 1)
        time.sleep(6)  # gauges (lag, watermark delay) refresh every 5 s

        status, ctype, body = get(base + "metrics")
        assert status == 200 and ctype.startswith("text/plain")
        text = body.decode()

        def delta(name: str, **labels: str) -> float:
            return sample(text, name, **labels) - sample(before, name, **labels)

        assert sample(text, "mmstream_messages_consumed_total", topic=h.alert_topic) == 4
        assert sample(text, "mmstream_messages_consumed_total",
                      topic=s.detector_topic(h.detector)) == len(events)  # fmt: skip
        for name in ("temporal_coincidence", "spacetime_coincidence"):
            assert sample(text, "mmstream_messages_produced_total", topic=s.result_topic(name)) == 3
            assert delta("mmstream_alert_to_result_seconds_count", analysis=name) == 3
            assert delta("mmstream_analysis_cpu_seconds_count", analysis=name) == 3
            assert sample(text, "mmstream_analysis_peak_memory_bytes", analysis=name) > 0
        assert sample(text, "mmstream_messages_produced_total", topic=s.deadletter_topic) == 1
        assert delta("mmstream_deadletters_total", stage="decode", exception="DecodeError") == 1
        assert sample(text, "mmstream_consumer_lag_messages", topic=h.alert_topic,
                      partition="0") == 0  # fmt: skip
        assert sample(text, "mmstream_detector_live", detector=h.detector) == 1
        assert sample(text, "mmstream_broker_up") == 1
        assert sample(text, "mmstream_windows_waiting") == 0
        delay = sample(text, "mmstream_detector_watermark_delay_seconds", detector=h.detector)
        assert 0 < delay < 120, delay
        assert beats > 0

        status, _, body = get(base + "readyz")
        assert status == 200 and body.startswith(b"ok"), body
        assert get(base + "healthz")[0] == 200

        status, ctype, page = get(base)
        assert status == 200 and "text/html" in ctype
        assert b"S00002m" in page and h.detector.encode() in page and b"GOOD" in page
        status, _, page = get(base + "alert/S00001m")
        assert status == 200
        assert b"COMPLETED" in page and b"temporal_coincidence@1.0.0" in page
        assert b"params_sha256" not in page and b"selection" in page  # the provenance report
        status, ctype, png = get(base + "skymap/S00001m.png")
        assert status == 200 and ctype == "image/png" and png.startswith(b"\x89PNG\r\n\x1a\n")
        assert get(base + "alert/nothing")[0] == 404
