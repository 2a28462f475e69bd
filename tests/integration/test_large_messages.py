"""Real alerts are larger than Kafka's 1 MiB default: mmstream's topics, clients and dead
letters carry up to 8 MiB end to end, and a dead-letter topic that takes less never wedges."""

from __future__ import annotations

import gc
import hashlib
import os
import uuid
import weakref
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from mmstream.analyses.registry import Registry
from mmstream.feeders import igwn_alert, produce_heartbeat
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.stream.messages import headers_of
from mmstream.stream.topics import wait_for_leaders
from mmstream.times import now_ns
from tests.integration.harness import read_messages, running_service

pytestmark = pytest.mark.integration


def test_the_real_ext_update_packet_and_its_dead_letter_travel_whole(
    kafka_bootstrap: str, shared_data: Path
) -> None:
    avro = (shared_data / "igwn/userguide/MS181101ab-ext-update.avro").read_bytes()
    js = (shared_data / "igwn/userguide/MS181101ab-ext-update.json").read_bytes()
    assert len(avro) > 1 << 20 and len(js) > 1 << 20  # both beyond Kafka's 1 MiB default
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry) as h:
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        h.produce(h.alert_topic, avro)
        # The same notice in JSON would be a duplicate (no second result): renamed, it is not.
        h.produce(h.alert_topic, js.replace(b'"MS181101ab"', b'"MS181101ac"'))
        garbage = b"\x00" + os.urandom(3 << 20)  # 3 MB that no decoder reads
        h.produce(h.alert_topic, garbage)
        results = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 2)
        assert [decode_result(m.value())["alert"]["alert_id"] for m in results] == [
            "MS181101ab", "MS181101ac"]  # fmt: skip
        formats = sorted(decode_result(m.value())["provenance"]["mmstream-inputs"].count("json")
                         for m in results)  # fmt: skip
        assert formats == [0, 1], "one from the Avro packet, one from the JSON one"
        (dead,) = read_messages(h.settings, h.settings.deadletter_topic, 1)
        assert dead.value() == garbage, "a 3 MB dead letter is kept whole"


def test_a_dead_letter_topic_that_takes_less_gets_the_dead_letter_without_its_value(
    kafka_bootstrap: str,
) -> None:
    dlq = f"mmstream.deadletter.small{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for f in admin.create_topics([NewTopic(dlq, 1, -1, config={"max.message.bytes": "200000"})]
                                 ).values():  # fmt: skip
        f.result(30)
    wait_for_leaders(admin, [dlq])
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(kafka_bootstrap, registry=registry, deadletter_topic=dlq) as h:
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        big = b"{" + b"x" * 500_000  # not JSON, and more than the dead-letter topic takes
        h.produce(h.alert_topic, big)
        h.produce(h.settings.detector_topic(h.detector), b"\x01" * 400_000)
        t = now_ns() - 900 * NS_PER_S
        h.produce(h.alert_topic, igwn_alert("S000888x", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        (result,) = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
        assert decode_result(result.value())["alert"]["alert_id"] == "S000888x", "not wedged"
        dead = read_messages(h.settings, dlq, 2)
        service = weakref.ref(h.service)
    # Stopped, the service is garbage: each dead letter too large for the client made
    # confluent-kafka keep the exception being handled, whose frames held the service
    # (and its Kafka clients, alive to the interpreter's exit).
    del h
    gc.collect()
    assert service() is None, "the stopped service is still referenced"
    originals = {len(big): big, 400_000: b"\x01" * 400_000}
    lengths = []
    for m in dead:
        hdr = headers_dict(headers_of(m))
        assert m.value() is None and hdr["mmstream-dlq-truncated"] == b"true"
        original = originals[int(hdr["mmstream-dlq-original-length"])]
        assert hdr["mmstream-dlq-original-sha256"] == hashlib.sha256(original).hexdigest().encode()
        lengths.append(len(original))
    assert sorted(lengths) == sorted(originals), "both dead letters, alert and detector"
