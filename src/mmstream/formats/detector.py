"""Our detector's streams, Avro single-object encoded (schemas in ``schemas/``).

``detector.<d>.events`` carries single events or batches of events (the fingerprint tells
which); ``detector.<d>.status`` carries heartbeats. Older schema versions stay readable:
their files live in ``schemas/history/`` and are listed in ``HISTORY``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from mmstream.errors import DecodeError
from mmstream.formats.avro import SingleObjectDecoder, encode_single, load_schema
from mmstream.model import DetectorEvent, DetectorStatus

EVENT_SCHEMA = "detector_event.avsc"
BATCH_SCHEMA = "detector_batch.avsc"
STATUS_SCHEMA = "detector_status.avsc"
FORMAT = "mmstream.detector.avro"
# Every earlier version of a schema that writers may still use.
HISTORY = {EVENT_SCHEMA: ("history/detector_event.v1.avsc",)}


@cache
def _decoder() -> SingleObjectDecoder:
    def kind(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return load_schema(name), [load_schema(old) for old in HISTORY.get(name, ())]

    return SingleObjectDecoder(
        {"event": kind(EVENT_SCHEMA), "batch": kind(BATCH_SCHEMA), "status": kind(STATUS_SCHEMA)}
    )


def _event_record(event: DetectorEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "detector": event.detector,
        "seq": event.seq,
        "time_ns": event.time_ns,
        "ra_deg": event.ra_deg,
        "dec_deg": event.dec_deg,
        "sigma_deg": event.sigma_deg,
        "energy_gev": event.energy_gev,
        "derived_from": list(event.derived_from),
        "source": event.source,
    }


def _event(rec: dict[str, Any]) -> DetectorEvent:
    return DetectorEvent(
        event_id=rec["event_id"],
        detector=rec["detector"],
        seq=rec["seq"],
        time_ns=rec["time_ns"],
        ra_deg=rec["ra_deg"],
        dec_deg=rec["dec_deg"],
        sigma_deg=rec["sigma_deg"],
        energy_gev=rec["energy_gev"],
        derived_from=tuple(rec["derived_from"]),
        source=rec["source"],
    )


def encode_event(event: DetectorEvent) -> bytes:
    return encode_single(load_schema(EVENT_SCHEMA), _event_record(event))


def encode_batch(detector: str, events: Sequence[DetectorEvent]) -> bytes:
    record = {"detector": detector, "events": [_event_record(e) for e in events]}
    return encode_single(load_schema(BATCH_SCHEMA), record)


def encode_status(status: DetectorStatus) -> bytes:
    return encode_single(
        load_schema(STATUS_SCHEMA),
        {
            "detector": status.detector,
            "seq": status.seq,
            "time_ns": status.time_ns,
            "state": status.state,
            "reason": status.reason,
        },
    )


def decode_events(data: bytes) -> list[DetectorEvent]:
    """The events of one ``detector.<d>.events`` message: one, or a whole batch."""
    kind, rec = _decoder().decode(data)
    if kind == "event":
        return [_event(rec)]
    if kind == "batch":
        return [_event(r) for r in rec["events"]]
    raise DecodeError(f"a {kind} record on an events topic")


def decode_event(data: bytes) -> DetectorEvent:
    events = decode_events(data)
    if len(events) != 1:
        raise DecodeError(f"expected one event, the message holds {len(events)}")
    return events[0]


def decode_status(data: bytes) -> DetectorStatus:
    kind, rec = _decoder().decode(data)
    if kind != "status":
        raise DecodeError(f"a {kind} record on a status topic")
    return DetectorStatus(rec["detector"], rec["seq"], rec["time_ns"], rec["state"], rec["reason"])
