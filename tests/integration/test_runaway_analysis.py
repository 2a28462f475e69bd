"""Analyses run off the polling thread, inside limits: while a 10 s analysis runs, detector
events keep being ingested and /healthz stays 200; a handler that loops forever is stopped
at its time limit (TIMED_OUT), one that allocates without bound fails at its memory limit
(FAILED), and the next alert is processed."""

from __future__ import annotations

import urllib.request

import pytest

from mmstream.analyses.registry import Registry
from mmstream.feeders import background_events, igwn_alert, produce_events, produce_heartbeat
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.times import now_ns
from tests import runaway_analyses as runaway
from tests.integration.harness import metric, read_messages, running_service, wait_until

pytestmark = pytest.mark.integration


def _healthz(h) -> int:  # type: ignore[no-untyped-def]
    assert h.service.http is not None
    with urllib.request.urlopen(h.service.http.address + "healthz", timeout=5) as r:
        return int(r.status)


def test_ingestion_goes_on_while_a_ten_second_analysis_runs(kafka_bootstrap: str) -> None:
    registry = Registry([runaway.takes_ten_seconds])
    with running_service(kafka_bootstrap, registry=registry, stall_limit_s=5.0) as h:
        events_topic = h.settings.detector_topic(h.detector)
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        h.produce(h.alert_topic, igwn_alert("S000060r", time_ns=now_ns() - 600 * NS_PER_S,
                                            ra_deg=1.0, dec_deg=2.0))  # fmt: skip

        def running() -> float:
            return metric(h, "mmstream_analyses_running", analysis="takes_ten_seconds")

        wait_until(lambda: running() == 1, "the analysis to start", timeout=30)
        seen = metric(h, "mmstream_messages_consumed_total", topic=events_topic)
        for batch in range(3):  # three batches, each read while the analysis runs
            t = now_ns() - 60 * NS_PER_S
            events = background_events(h.detector, t, t + 10 * NS_PER_S, 20.0, seed=batch,
                                       first_seq=batch * 10_000)  # fmt: skip
            seen += produce_events(h.producer, events_topic, events)  # a message per event
            h.producer.flush(10)

            def ingested(n: float = seen) -> bool:
                return metric(h, "mmstream_messages_consumed_total", topic=events_topic) >= n

            wait_until(ingested, f"detector batch {batch} to be ingested", timeout=8)
            assert running() == 1, "ingested while the analysis was still running"
            assert _healthz(h) == 200, "a busy analysis is not a stuck service"
        (msg,) = read_messages(h.settings, h.settings.result_topic("takes_ten_seconds"), 1)
        result = decode_result(msg.value())
        assert result["status"] == "COMPLETED" and "done after 10 s" in result["summary"]


@pytest.mark.parametrize(
    ("handler", "status", "reason"),
    [
        (runaway.loops_forever, "TIMED_OUT", "stopped at the time limit of 3 s"),
        (runaway.allocates_without_bound, "FAILED", "MemoryError: memory limit of 256 MiB"),
    ],
)
def test_a_runaway_handler_yields_its_status_and_the_next_alert_is_processed(
    kafka_bootstrap: str, handler: object, status: str, reason: str
) -> None:
    registry = Registry([handler, Registry.discover().get("temporal_coincidence")])  # type: ignore[list-item]
    name = handler.name  # type: ignore[attr-defined]
    with running_service(kafka_bootstrap, registry=registry, analysis_time_limit_s=3.0,
                         analysis_memory_limit_mb=256.0) as h:  # fmt: skip
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        t = now_ns() - 900 * NS_PER_S
        h.produce(h.alert_topic, igwn_alert("S000061r", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        h.produce(h.alert_topic, igwn_alert("S000062r", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        results = [decode_result(m.value())
                   for m in read_messages(h.settings, h.settings.result_topic(name), 2)]  # fmt: skip
        assert [r["alert"]["alert_id"] for r in results] == ["S000061r", "S000062r"]
        for r in results:
            assert r["status"] == status
            assert reason in r["error"]
        others = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 2)
        assert [decode_result(m.value())["status"] for m in others] == ["COMPLETED"] * 2
        assert metric(h, "mmstream_analysis_runs_total", analysis=name, status=status) == 2
        assert h.thread.is_alive()
