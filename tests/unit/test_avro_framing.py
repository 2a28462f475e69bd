"""Single-object framing as the Avro specification has it (C3 01, CRC-64-AVRO fingerprint
little-endian, datum), checked against the ``avro`` package, an implementation not ours."""

from __future__ import annotations

import io
import json

import avro.io
import avro.schema

from mmstream.formats.avro import _schema_json
from mmstream.formats.detector import decode_events, decode_status, encode_status
from mmstream.model import DetectorStatus

STATUS = {"detector": "icecube", "seq": 7, "time_ns": 1_700_000_000_000_000_000,
          "state": "GOOD", "reason": None}  # fmt: skip


def _spec_encoded(schema_file: str, record: dict[str, object]) -> bytes:
    """What a spec-following writer sends, built with the avro package only."""
    schema = avro.schema.parse(json.dumps(_schema_json(schema_file)))
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(buf))
    return b"\xc3\x01" + schema.fingerprint("CRC-64-AVRO") + buf.getvalue()


def test_a_spec_encoded_status_decodes() -> None:
    status = decode_status(_spec_encoded("detector_status.avsc", STATUS))
    assert (status.detector, status.seq, status.time_ns) == ("icecube", 7, STATUS["time_ns"])


def test_we_write_what_the_spec_writes() -> None:
    ours = encode_status(DetectorStatus("icecube", 7, STATUS["time_ns"], "GOOD"))
    assert ours == _spec_encoded("detector_status.avsc", STATUS)


def test_a_spec_encoded_event_decodes() -> None:
    event = {"event_id": "e1", "detector": "icecube", "seq": 1, "time_ns": 5, "ra_deg": 1.0,
             "dec_deg": 2.0, "sigma_deg": 0.5, "energy_gev": None, "derived_from": ["p"],
             "source": "w1"}  # fmt: skip
    (got,) = decode_events(_spec_encoded("detector_event.avsc", event))
    assert (got.event_id, got.derived_from, got.source) == ("e1", ("p",), "w1")


def test_messages_written_with_the_old_byte_order_stay_readable() -> None:
    spec = _spec_encoded("detector_status.avsc", STATUS)
    legacy = spec[:2] + spec[2:10][::-1] + spec[10:]  # mmstream until 2026-12-01
    assert decode_status(legacy).seq == 7
