"""An alert's identity includes its role, and hop-client's ``_test`` header is honoured both
ways: a test notice never blocks the real one, test results are marked for hop consumers,
and every message (result, notice) has its own ``_id``."""

from __future__ import annotations

import json
import time

import pytest

from mmstream.analyses.registry import Registry
from mmstream.feeders import produce_heartbeat
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.provenance.headers import result_id
from mmstream.stream.messages import headers_of
from mmstream.times import format_utc, now_ns
from tests.integration.harness import read_to_end, running_service

pytestmark = pytest.mark.integration


def _notice(ident: str, tense: str = "current") -> bytes:
    return json.dumps({"mission": "IceCube", "id": [ident], "alert_type": "initial",
                       "record_number": 1, "alert_tense": tense,
                       "trigger_time": format_utc(now_ns() - 900 * NS_PER_S),
                       "ra": 10.0, "dec": 20.0, "ra_dec_error": 1.0}).encode()  # fmt: skip


def _results_until(h, topic: str, sentinel: str, timeout: float = 60) -> list:
    """Every result on ``topic`` once the sentinel alert's result is there (a barrier)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read_to_end(h.settings, topic)
        if any(decode_result(m.value())["alert"]["alert_id"] == sentinel for m in found):
            return found
        time.sleep(0.5)
    raise AssertionError(f"no result for the sentinel {sentinel}")


def test_test_notices_are_their_own_alerts_and_carry_hops_test_header(
    kafka_bootstrap: str,
) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry,
                         alert_topics=(f"gcn.notices.icecube.id{time.time_ns()}",)) as h:  # fmt: skip
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        h.produce(h.alert_topic, _notice("42", tense="test"))  # a test notice first,
        h.produce(h.alert_topic, _notice("42"))  # then the real one with the same id
        h.produce(h.alert_topic, _notice("43"), headers=[("_test", b"true")])  # hop publish -t
        h.produce(h.alert_topic, _notice("sentinel"))
        topic = h.settings.result_topic("temporal_coincidence")
        results = _results_until(h, topic, "IceCube-sentinel")

    by_alert: dict[str, list[tuple[dict, dict]]] = {}
    for m in results:
        rec = decode_result(m.value())
        by_alert.setdefault(rec["alert"]["alert_id"], []).append((rec, headers_dict(headers_of(m))))
    roles = sorted((rec["alert"]["role"], "_test" in hdr) for rec, hdr in by_alert["IceCube-42"])
    assert roles == [("observation", False), ("test", True)], "the real notice has its result"
    ids = {rec["result_id"] for rec, _ in by_alert["IceCube-42"]}
    assert ids == {str(result_id("temporal_coincidence@1.0.0", "IceCube-42", "INITIAL#1")),
                   str(result_id("temporal_coincidence@1.0.0", "IceCube-42", "INITIAL#1",
                                 "test"))}  # fmt: skip
    real = next(rec for rec, _ in by_alert["IceCube-42"] if rec["alert"]["role"] == "observation")
    assert real["supersedes"] is None, "a test result is never superseded by the real one"
    ((rec43, hdr43),) = by_alert["IceCube-43"]
    assert rec43["alert"]["role"] == "test" and hdr43["_test"] == b"true"
    ((sentinel, hdr_s),) = by_alert["IceCube-sentinel"]
    assert sentinel["alert"]["role"] == "observation" and "_test" not in hdr_s
