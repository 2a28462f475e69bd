"""An analysis that raises: its result says FAILED with the error, the other analyses of the
alert publish as usual, and the service goes on to the next alert."""

from __future__ import annotations

import pytest

from mmstream.analyses import AnalysisInput, Outcome, analysis
from mmstream.analyses.registry import Registry
from mmstream.feeders import igwn_alert, produce_heartbeat
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.times import now_ns
from tests.integration.harness import read_messages, running_service

pytestmark = pytest.mark.integration


@analysis(name="always_raises", version="0.0.1", window=(-10, 10))
def always_raises(inp: AnalysisInput) -> Outcome:
    """A handler with a bug."""
    raise ZeroDivisionError(f"no events to divide by in {inp.alert.alert_id}")


def test_a_raising_analysis_publishes_failed_and_the_service_goes_on(kafka_bootstrap: str) -> None:
    registry = Registry([always_raises, Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        t = now_ns() - 900 * NS_PER_S
        h.produce(h.alert_topic, igwn_alert("S000050f", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        h.produce(h.alert_topic, igwn_alert("S000051f", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        failed = [decode_result(m.value())
                  for m in read_messages(h.settings, h.settings.result_topic("always_raises"), 2)]  # fmt: skip
        assert [r["alert"]["alert_id"] for r in failed] == ["S000050f", "S000051f"]
        for r in failed:
            assert r["status"] == "FAILED"
            assert "ZeroDivisionError: no events to divide by in" in r["error"]
            assert r["summary"].startswith("analysis failed")
        others = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 2)
        assert [decode_result(m.value())["status"] for m in others] == ["COMPLETED"] * 2
        assert h.thread.is_alive()
