"""Our detector's event stream: one Avro single-object-encoded ``DetectorEvent`` per message."""

from __future__ import annotations

from functools import cache

from mmstream.formats.avro import SingleObjectDecoder, encode_single, load_schema
from mmstream.model import DetectorEvent, DetectorStatus

EVENT_SCHEMA = "detector_event.avsc"
FORMAT = "mmstream.detector_event.avro1"


@cache
def _decoder() -> SingleObjectDecoder:
    # Older schema versions go in the writers list as schemas evolve (schemas/README.md).
    return SingleObjectDecoder(load_schema(EVENT_SCHEMA), writers=[])


def encode_event(event: DetectorEvent) -> bytes:
    return encode_single(
        load_schema(EVENT_SCHEMA),
        {
            "event_id": event.event_id,
            "detector": event.detector,
            "seq": event.seq,
            "time_ns": event.time_ns,
            "ra_deg": event.ra_deg,
            "dec_deg": event.dec_deg,
            "sigma_deg": event.sigma_deg,
            "energy_gev": event.energy_gev,
            "derived_from": list(event.derived_from),
        },
    )


def decode_event(data: bytes) -> DetectorEvent:
    rec = _decoder().decode(data)
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
    )


STATUS_SCHEMA = "detector_status.avsc"


@cache
def _status_decoder() -> SingleObjectDecoder:
    return SingleObjectDecoder(load_schema(STATUS_SCHEMA), writers=[])


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


def decode_status(data: bytes) -> DetectorStatus:
    rec = _status_decoder().decode(data)
    return DetectorStatus(rec["detector"], rec["seq"], rec["time_ns"], rec["state"], rec["reason"])
