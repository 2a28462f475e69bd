"""Our detector's streams, Avro single-object encoded (schemas in ``schemas/``).

``detector.<d>.events`` carries single events or batches of events (the fingerprint tells
which), in the core schema or in the detector's own (formats/detector_schema.py);
``detector.<d>.status`` carries heartbeats; ``detector.<d>.context`` the changes of its
conditions. Older schema versions stay readable: their files live in ``schemas/history/``
and are listed in ``HISTORY`` (a detector's own: in its configuration).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from operator import itemgetter
from typing import Any, NamedTuple

from mmstream.errors import DecodeError
from mmstream.formats.avro import (
    SingleObjectDecoder,
    encode_single,
    load_schema,
    schema_fingerprint,
)
from mmstream.formats.detector_schema import DetectorSchema
from mmstream.model import ContextChange, DetectorEvent, DetectorStatus

EVENT_SCHEMA = "detector_event.avsc"
BATCH_SCHEMA = "detector_batch.avsc"
STATUS_SCHEMA = "detector_status.avsc"
CONTEXT_SCHEMA = "detector_context.avsc"
FORMAT = "mmstream.detector.avro"
# Every earlier version of a schema that writers may still use.
HISTORY = {EVENT_SCHEMA: ("history/detector_event.v1.avsc",)}


def _readers(
    own: Mapping[str, DetectorSchema],
) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every kind of record, with its versions; a detector's own events are the kind
    ``event:<d>`` of the first detector with that very schema (its fingerprint), and the
    detectors sharing it are told apart by the topic (``DetectorCodec.sharing``)."""

    def kind(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return load_schema(name), [load_schema(old) for old in HISTORY.get(name, ())]

    readers = {"event": kind(EVENT_SCHEMA), "batch": kind(BATCH_SCHEMA),
               "status": kind(STATUS_SCHEMA), "context": kind(CONTEXT_SCHEMA)}  # fmt: skip
    taken = {schema_fingerprint(v) for r, old in readers.values() for v in (r, *old)}
    for d, schema in own.items():
        if schema_fingerprint(schema.current) in taken:
            continue  # the same schema as one registered already: one reader serves both
        taken.add(schema_fingerprint(schema.current))
        readers[f"event:{d}"] = (schema.current, list(schema.history))
        readers[f"batch:{d}"] = (schema.batch(0),
                                 [schema.batch(i) for i in range(1, len(schema.raw))])  # fmt: skip
    return readers


@cache
def _decoder() -> SingleObjectDecoder:
    return SingleObjectDecoder(_readers({}))


class DetectorCodec:
    """Reads a detector topic's messages knowing every detector's own schema (if any)."""

    def __init__(self, own: Mapping[str, DetectorSchema]) -> None:
        self.own = dict(own)
        readers = _readers(own)
        self._decoder = SingleObjectDecoder(readers) if own else _decoder()
        # detectors whose own schema is identical share its reader (and the core one's)
        core = schema_fingerprint(load_schema(EVENT_SCHEMA))
        self.sharing: dict[str, set[str]] = {}
        for d, schema in self.own.items():
            fp = schema_fingerprint(schema.current)
            first = "" if fp == core else next(
                k.split(":", 1)[1] for k, (r, _) in readers.items()
                if k.startswith("event:") and schema_fingerprint(r) == fp)  # fmt: skip
            self.sharing.setdefault(first, set()).add(d)

    def decode_columns(self, data: bytes, detector: str | None = None) -> DecodedEvents:
        """The events of one message as columns, straight from the decoded records (no
        object per event)."""
        return DecodedEvents.of_records(*self.decode_records(data, detector))

    def decode_records(
        self, data: bytes, detector: str | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """The records of one message's events, and the names of the detector's own fields
        they hold (the ingest path gathers a batch's records, then makes one set of
        columns: :meth:`DecodedEvents.of_records`); another detector's own schema on this
        one's topic is refused (its fields would be misread)."""
        kind, rec = self._decoder.decode(data)
        if kind == "event" and (detector is None or detector not in self.own):  # the usual
            return [rec], ()
        base, _, whose = kind.partition(":")
        if base not in ("event", "batch"):
            raise DecodeError(f"a {kind} record on an events topic")
        records = [rec] if base == "event" else rec["events"]
        if whose:  # a detector's own schema (maybe shared by several detectors)
            owners = self.sharing.get(whose, {whose})
            if detector is not None and detector not in owners:
                raise DecodeError(f"an event in {whose!r}'s own schema on {detector!r}'s topic")
            return records, tuple(n for n, _ in self.own[detector or whose].fields)
        if detector is not None and (mine := self.own.get(detector)) is not None:
            # a core-schema event: the own fields at their defaults
            return [{**mine.defaults, **r} for r in records], tuple(mine.defaults)
        return records, ()

    def decode_events(self, data: bytes, detector: str | None = None) -> list[DetectorEvent]:
        """The events of one message as objects (tools and tests; the service reads
        :meth:`decode_columns`)."""
        return self.decode_columns(data, detector).events()

    def decode_context(self, data: bytes) -> ContextChange:
        kind, rec = self._decoder.decode(data)
        if kind != "context":
            raise DecodeError(f"a {kind} record on a context topic")
        return ContextChange(rec["detector"], rec["seq"], rec["time_ns"], rec["key"],
                             rec["value"], rec["source"])  # fmt: skip


def _event_record(event: DetectorEvent) -> dict[str, Any]:
    return {
        **event.fields,
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


_CORE = ("event_id", "detector", "seq", "time_ns", "ra_deg", "dec_deg", "sigma_deg",
         "energy_gev", "derived_from", "source")  # fmt: skip
_CORE_GETTERS = tuple(map(itemgetter, _CORE))


def _columns(records: list[dict[str, Any]], names: Sequence[str]) -> tuple[tuple[Any, ...], ...]:
    """The records' values of ``names``, one tuple per name (a ``map`` per name runs in C;
    over a batch's 10^5 records it is 4 times faster than transposing with ``zip``)."""
    getters = _CORE_GETTERS if names is _CORE else tuple(map(itemgetter, names))
    return tuple(tuple(map(get, records)) for get in getters)


class DecodedEvents(NamedTuple):
    """One message's events, a tuple per field in message order, as decoded (not yet
    validated: formats/validate.py ``validate_events``)."""

    event_id: tuple[str, ...]
    detector: tuple[str, ...]
    seq: tuple[int, ...]
    time_ns: tuple[int, ...]
    ra_deg: tuple[float, ...]
    dec_deg: tuple[float, ...]
    sigma_deg: tuple[float, ...]
    energy_gev: tuple[float | None, ...]
    derived_from: tuple[list[str], ...]
    source: tuple[str, ...]
    own_names: tuple[str, ...] = ()  # the detector's own fields, in its schema's order
    own: tuple[tuple[Any, ...], ...] = ()  # their values, a tuple per name

    @property
    def size(self) -> int:
        """How many events (``len`` is the tuple's, of fields)."""
        return len(self.time_ns)

    def events(self) -> list[DetectorEvent]:
        owns = zip(*self.own, strict=True) if self.own else (() for _ in self.time_ns)
        cores = zip(*self[:10], strict=True)
        return [DetectorEvent(eid, det, seq, t, ra, dec, sigma, energy, tuple(parents), source,
                              dict(zip(self.own_names, own, strict=True)))
                for (eid, det, seq, t, ra, dec, sigma, energy, parents, source), own
                in zip(cores, owns, strict=True)]  # fmt: skip

    @classmethod
    def of_records(
        cls, records: list[dict[str, Any]], own_names: tuple[str, ...] = ()
    ) -> DecodedEvents:
        """Decoded records (of one message or of many) as columns."""
        return cls._make((*_columns(records, _CORE), own_names, _columns(records, own_names)))

    @classmethod
    def of(cls, events: Sequence[DetectorEvent], own_names: Sequence[str] = ()) -> DecodedEvents:
        """Events already made (tools, tests, the object API of the store)."""
        records = [_event_record(e) for e in events]
        for r in records:  # an event that lacks one of the detector's fields holds None
            for n in own_names:
                r.setdefault(n, None)
        return cls.of_records(records, tuple(own_names))


def encode_event(event: DetectorEvent, schema: DetectorSchema | None = None) -> bytes:
    """One event, in the core schema or (with its fields) in the detector's own."""
    parsed = load_schema(EVENT_SCHEMA) if schema is None else schema.current
    return encode_single(parsed, _event_record(event))


def encode_batch(
    detector: str, events: Sequence[DetectorEvent], schema: DetectorSchema | None = None
) -> bytes:
    record = {"detector": detector, "events": [_event_record(e) for e in events]}
    parsed = load_schema(BATCH_SCHEMA) if schema is None else schema.batch(0)
    return encode_single(parsed, record)


def encode_context(change: ContextChange) -> bytes:
    return encode_single(load_schema(CONTEXT_SCHEMA), {
        "detector": change.detector, "seq": change.seq, "time_ns": change.time_ns,
        "key": change.key, "value": change.value, "source": change.source})  # fmt: skip


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
    """The events of one ``detector.<d>.events`` message in the core schema: one, or a batch."""
    return DetectorCodec({}).decode_events(data)


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
