"""Alert revisions on a real broker: duplicates, updates that supersede, retractions."""

from __future__ import annotations

import time
import uuid

import pytest

from mmstream.analyses.registry import Registry
from mmstream.feeders import igwn_alert, produce_heartbeats
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.provenance.headers import result_id
from mmstream.times import now_ns
from tests.integration.harness import read_messages, read_to_end, running_service

pytestmark = pytest.mark.integration


def test_duplicate_update_and_retraction(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    tag = uuid.uuid4().hex[:8]
    shared = {
        "group_id": f"mmstream-rev-{tag}",
        "instance": f"rev-{tag}",  # the same process slot, restarted
        "alert_topics": (f"igwn.gwalert.rev{tag}",),
        "detectors": (f"det{tag}",),
        "result_topic_prefix": f"mmstream.results.rev{tag}.",
        "notice_topic_prefix": f"mmstream.notices.rev{tag}.",
        "deadletter_topic": f"mmstream.deadletter.rev{tag}",
    }
    t = now_ns() - 900 * NS_PER_S
    created = now_ns() - 60 * NS_PER_S
    prelim = igwn_alert("S000020x", time_ns=t, ra_deg=1.0, dec_deg=2.0, created_ns=created)
    update = igwn_alert("S000020x", time_ns=t, ra_deg=1.5, dec_deg=2.5, alert_type="UPDATE",
                        created_ns=created + 30 * NS_PER_S)  # fmt: skip
    retraction = igwn_alert("S000020x", time_ns=t, ra_deg=0, dec_deg=0, alert_type="RETRACTION",
                            created_ns=created + 50 * NS_PER_S)  # fmt: skip

    def sentinel(n: int) -> bytes:
        return igwn_alert(f"S000020s{n}", time_ns=t, ra_deg=1.0, dec_deg=2.0)

    with running_service(kafka_bootstrap, registry=registry, **shared) as h:
        topic = h.settings.result_topic("temporal_coincidence")
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           now_ns() - 1200 * NS_PER_S, now_ns())  # fmt: skip
        h.produce(h.alert_topic, prelim)
        h.produce(h.alert_topic, prelim)  # the same notice twice
        h.produce(h.alert_topic, sentinel(1))  # a barrier: the duplicate was read before it
        first, barrier = read_messages(h.settings, topic, 2)
        assert decode_result(barrier.value())["alert"]["alert_id"] == "S000020s1", (
            "duplicate gave a result")  # fmt: skip
        first_rec = decode_result(first.value())
        assert first_rec["supersedes"] is None

        h.produce(h.alert_topic, update)
        second = read_messages(h.settings, topic, 3)[2]
        second_rec = decode_result(second.value())
        assert second_rec["alert"]["alert_type"] == "UPDATE"
        assert second_rec["supersedes"] == first_rec["result_id"]
        assert (
            headers_dict(second.headers())["mmstream-supersedes"] == first_rec["result_id"].encode()
        )

    # A restarted service rebuilds what it published from the result topic.
    with running_service(kafka_bootstrap, registry=registry, **shared) as h:
        h.produce(h.alert_topic, update)  # the update again, after a restart
        h.produce(h.alert_topic, retraction)
        third = read_messages(h.settings, topic, 4)[3]
        rec = decode_result(third.value())
        assert rec["status"] == "RETRACTED"
        assert rec["supersedes"] == second_rec["result_id"]
        assert rec["result_id"] == str(
            result_id("temporal_coincidence@1.0.0", "S000020x", rec["alert"]["revision"])
        )
        assert headers_dict(third.headers())["mmstream-retraction"] == b"true"
        h.produce(h.alert_topic, sentinel(2))  # barrier after the re-sent update
        fourth = read_messages(h.settings, topic, 5)[4]
        assert decode_result(fourth.value())["alert"]["alert_id"] == "S000020s2", (
            "a duplicate after restart gave a result")  # fmt: skip
        end = h.produce(h.alert_topic, retraction)  # retraction twice: nothing new
        deadline = time.monotonic() + 10
        while h.committed(h.alert_topic) != end + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert h.committed(h.alert_topic) == end + 1  # processed: its transaction committed
        assert len(read_to_end(h.settings, topic)) == 5, "the second retraction added nothing"


def test_an_update_that_overtakes_its_preliminary_is_not_superseded_by_it(
    kafka_bootstrap: str,
) -> None:
    """Revisions are ordered by when LVK made them (time_created), not by arrival."""
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        topic = h.settings.result_topic("temporal_coincidence")
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           now_ns() - 1200 * NS_PER_S, now_ns())  # fmt: skip
        t, created = now_ns() - 900 * NS_PER_S, now_ns() - 120 * NS_PER_S
        h.produce(
            h.alert_topic,
            igwn_alert(
                "S000040o",
                time_ns=t,
                ra_deg=1.0,
                dec_deg=2.0,
                alert_type="UPDATE",
                created_ns=created + 60 * NS_PER_S,
            ),
        )
        h.produce(
            h.alert_topic,
            igwn_alert("S000040o", time_ns=t, ra_deg=1.0, dec_deg=2.0, created_ns=created),
        )  # the PRELIMINARY, late
        h.produce(h.alert_topic, igwn_alert("S000041o", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        msgs = read_messages(h.settings, topic, 3)
        results = [decode_result(m.value()) for m in msgs]
        update, prelim, sentinel = results
        assert headers_dict(msgs[1].headers())["mmstream-superseded-by"] == (
            update["result_id"].encode())  # fmt: skip
        assert (update["alert"]["alert_type"], prelim["alert"]["alert_type"]) == (
            "UPDATE", "PRELIMINARY")  # fmt: skip
        assert update["supersedes"] is None and prelim["supersedes"] is None
        assert any("supersedes nothing" in n for n in prelim["notes"])
        assert sentinel["alert"]["alert_id"] == "S000041o"
        # The update stays the live result: a retraction withdraws it, superseding it.
        h.produce(h.alert_topic, igwn_alert("S000040o", time_ns=t, ra_deg=0, dec_deg=0,
                                            alert_type="RETRACTION",
                                            created_ns=created + 90 * NS_PER_S))  # fmt: skip
        retracted = decode_result(read_messages(h.settings, topic, 4)[3].value())
        assert retracted["status"] == "RETRACTED"
        assert retracted["supersedes"] == update["result_id"]
