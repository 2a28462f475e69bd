"""What a service consumes follows its configuration: a topic added to ``alert_topics``
under the same instance name is consumed after a restart, and topic patterns work."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from mmstream.analyses.registry import Registry
from mmstream.feeders import produce_heartbeat
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.stream.topics import ensure_topics
from mmstream.times import format_utc, now_ns
from tests.integration.harness import read_messages, running_service

pytestmark = pytest.mark.integration


def _notice(ident: str) -> bytes:
    return json.dumps({"mission": "IceCube", "id": [ident], "ra": 1.0, "dec": 2.0,
                       "ra_dec_error": 1.0,
                       "trigger_time": format_utc(now_ns() - 900 * NS_PER_S)}).encode()  # fmt: skip


def test_a_topic_added_under_the_same_instance_is_consumed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    first, added = f"gcn.notices.icecube.a{tag}", f"gcn.notices.icecube.b{tag}"
    same = {"instance": f"sub-{tag}", "group_id": f"sub-{tag}", "data_dir": tmp_path,
            "result_topic_prefix": f"mmstream.results.sub{tag}.", "detectors": (f"sub{tag}",),
            "notice_topic_prefix": f"mmstream.notices.sub{tag}.",
            "deadletter_topic": f"mmstream.deadletter.sub{tag}"}  # fmt: skip
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry, alert_topics=(first,), **same) as h:
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        h.produce(first, _notice("one"))
        read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
    with running_service(kafka_bootstrap, registry=registry, alert_topics=(first, added),
                         **same) as h:  # fmt: skip
        h.produce(added, _notice("two"))
        got = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 2)
        assert [decode_result(m.value())["alert"]["alert_id"] for m in got] == [
            "IceCube-one", "IceCube-two"]  # fmt: skip


def test_alert_topics_may_be_patterns(kafka_bootstrap: str) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = [f"gcn.notices.pt{tag}.icecube", f"gcn.notices.pt{tag}.km3net"]
    ensure_topics(AdminClient({"bootstrap.servers": kafka_bootstrap}), topics)
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    pattern = f"^gcn\\.notices\\.pt{tag}\\..*"
    with running_service(kafka_bootstrap, registry=registry, alert_topics=(pattern,)) as h:
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        h.produce(topics[0], _notice("p1"))
        h.produce(topics[1], _notice("p2"))
        got = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 2)
        assert sorted(decode_result(m.value())["alert"]["alert_id"] for m in got) == [
            "IceCube-p1", "IceCube-p2"]  # fmt: skip
