import pytest

from mmstream.errors import DecodeError
from mmstream.feeders import igwn_alert
from mmstream.formats import igwn
from mmstream.formats.detector import decode_event, decode_status, encode_event, encode_status
from mmstream.formats.router import decode_alert
from mmstream.model import AlertType, DetectorEvent, DetectorStatus, Role, SourceRef

REF = SourceRef("igwn.gwalert", 0, 42, igwn.FORMAT)


def test_detector_event_round_trip_with_single_object_framing() -> None:
    event = DetectorEvent(
        "ev-1", "icecube", 7, 1_700_000_000_123_456_789, 12.5, -33.0, 0.7, None, ("raw-1", "raw-2")
    )
    data = encode_event(event)
    assert data[:2] == b"\xc3\x01"
    assert decode_event(data) == event


def test_detector_status_round_trip() -> None:
    status = DetectorStatus("icecube", 3, 1_700_000_000_000_000_000, "BAD", "power cut")
    assert decode_status(encode_status(status)) == status


@pytest.mark.parametrize(
    "data", [b"", b"\xc3\x01short", b"\xc3\x01" + b"\0" * 8 + b"xx", b"hello world!"]
)
def test_bad_detector_bytes_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_event(data)


def test_truncated_detector_datum_is_a_decode_error() -> None:
    data = encode_event(DetectorEvent("ev-1", "icecube", 7, 1, 1.0, 2.0, 0.5))
    with pytest.raises(DecodeError, match="corrupt"):
        decode_event(data[:-5])


def test_generated_igwn_alert_decodes() -> None:
    data = igwn_alert("S261122ab", time_ns=1_795_000_000_123_000_000, ra_deg=50.0, dec_deg=20.0)
    alert = igwn.decode(data, REF)
    assert alert.alert_id == "S261122ab" and alert.role is Role.OBSERVATION
    assert alert.alert_type is AlertType.PRELIMINARY
    assert alert.time_ns == 1_795_000_000_123_000_000
    assert alert.skymap is not None and alert.skymap.uniq.size > 100
    assert alert.revision.startswith("PRELIMINARY@")


def test_generated_retraction_has_no_event() -> None:
    alert = igwn.decode(
        igwn_alert("S1", time_ns=0, ra_deg=0, dec_deg=0, alert_type="RETRACTION"), REF
    )
    assert (
        alert.alert_type is AlertType.RETRACTION and alert.time_ns is None and alert.skymap is None
    )


def test_router_sniffs_unknown_topics_and_says_why_it_rejects() -> None:
    with pytest.raises(DecodeError, match="not a VOEvent"):
        decode_alert("some.topic", 0, 0, b"<xml/>")
    with pytest.raises(DecodeError, match="not a known alert format"):
        decode_alert("some.topic", 0, 0, b"\x00\x01garbage")
    with pytest.raises(DecodeError, match="no trigger_time"):
        decode_alert("some.topic", 0, 0, b'{"mission": "X"}')
    with pytest.raises(DecodeError, match="empty"):
        decode_alert("igwn.gwalert", 0, 0, None)


def test_batches_and_single_events_share_a_topic() -> None:
    from mmstream.formats.detector import decode_events, encode_batch

    events = [
        DetectorEvent(f"e{i}", "icecube", i, 1_000 + i, 1.0, 2.0, 0.5, source="s1")
        for i in range(3)
    ]
    assert decode_events(encode_batch("icecube", events)) == events
    assert decode_events(encode_event(events[0])) == [events[0]]
    with pytest.raises(DecodeError, match="status record on an events topic"):
        decode_events(encode_status(DetectorStatus("icecube", 0, 1, "GOOD")))


def test_current_schema_reads_events_written_with_the_previous_version() -> None:
    from mmstream.formats.avro import encode_single, load_schema

    v1 = load_schema("history/detector_event.v1.avsc")
    assert "source" not in {f["name"] for f in v1["fields"]}
    old = {"event_id": "old-1", "detector": "icecube", "seq": 5, "time_ns": 123, "ra_deg": 1.0,
           "dec_deg": 2.0, "sigma_deg": 0.5, "energy_gev": None, "derived_from": ["raw-9"]}  # fmt: skip
    event = decode_event(encode_single(v1, old))
    assert event == DetectorEvent(
        "old-1", "icecube", 5, 123, 1.0, 2.0, 0.5, None, ("raw-9",), source=""
    )


def test_stray_bytes_after_a_datum_are_refused() -> None:
    data = encode_event(DetectorEvent("ev-1", "icecube", 7, 1, 1.0, 2.0, 0.5))
    with pytest.raises(DecodeError, match="stray bytes"):
        decode_event(data + b"\x00\x01")


def test_container_bytes_depend_only_on_schema_and_records() -> None:
    """Results must be byte-identical when re-made: no random sync marker."""
    import io

    import fastavro

    from mmstream.formats.avro import load_schema, read_container, write_container

    schema = load_schema("igwn_alert.avsc")
    _, (record,) = read_container(igwn_alert("S1", time_ns=10**18, ra_deg=1.0, dec_deg=2.0))
    first = write_container(schema, [record])
    assert write_container(schema, [record]) == first
    # Avro maps keep insertion order: the same map built in another order, the same bytes
    one = write_container(schema, [{**record, "urls": {"gracedb": "g", "gcn": "n"}}])
    assert write_container(schema, [{**record, "urls": {"gcn": "n", "gracedb": "g"}}]) == one
    other = write_container(schema, [{**record, "superevent_id": "S2"}])
    assert other != first
    assert [r["superevent_id"] for r in fastavro.reader(io.BytesIO(other))] == ["S2"]


def test_container_bytes_do_not_depend_on_the_process_hash_seed() -> None:
    """fastavro orders some schema keys by set iteration; our header must not vary with it."""
    import os
    import subprocess
    import sys

    code = (
        "import hashlib, sys; from mmstream.formats.avro import load_schema, write_container;"
        "sys.stdout.write(hashlib.sha256(write_container(load_schema('result.avsc'), []))"
        ".hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(1, 6)
    }
    assert len(digests) == 1, digests
