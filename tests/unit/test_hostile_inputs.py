"""Every decoder, fed hostile input: a DecodeError with a specific reason, never another
exception, a hang or a memory blow-up; odd but valid input is decoded."""

from __future__ import annotations

import random
import resource
import time
from pathlib import Path

import pytest

from mmstream.errors import DecodeError
from mmstream.formats.avro import encode_single, load_schema
from mmstream.formats.detector import BATCH_SCHEMA, DetectorCodec, decode_status
from mmstream.formats.limits import DEFAULT_LIMITS
from mmstream.formats.router import decode_alert
from mmstream.formats.validate import check_size, validate_alert, validate_events, validate_status
from mmstream.times import now_ns
from tests.hostile import (
    BAD_EVENT_FIELDS,
    EVENTS,
    GCN,
    IGWN,
    STATUS,
    VOE,
    event_record,
    igwn_record,
    kinds,
    make,
)

DETECTOR = "icecube"
TOPICS = {IGWN: "igwn.gwalert", GCN: "gcn.notices.icecube.lvk", VOE: "gcn.classic.voevent.X"}


def _decode(role: str, value: bytes | None, received_ns: int) -> object:
    """What the service does with one message of this role, up to scheduling."""
    if role in TOPICS:
        alert = decode_alert(TOPICS[role], 0, 0, value, limits=DEFAULT_LIMITS)
        return validate_alert(alert, received_ns, DEFAULT_LIMITS)
    if value is None:
        raise DecodeError("a detector message with no value")
    check_size(value, DEFAULT_LIMITS)
    if role == EVENTS:  # as the detector feed reads them: columns, no object per event
        events = DetectorCodec({}).decode_columns(value, DETECTOR)
        validate_events(events, DETECTOR, received_ns, DEFAULT_LIMITS)
        return events
    status = decode_status(value)
    return validate_status(status, DETECTOR, received_ns, DEFAULT_LIMITS)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("kind", kinds())
def test_each_hostile_kind_gets_its_reason(kind: str) -> None:
    rng = random.Random(kind)
    h = make(kind, rng, DETECTOR)
    assert h.role in (IGWN, GCN, VOE, EVENTS, STATUS)
    rss = _peak_rss_mb()
    t0 = time.monotonic()
    if h.processed:
        assert _decode(h.role, h.value, now_ns()) is not None
    else:
        with pytest.raises(DecodeError) as err:
            _decode(h.role, h.value, now_ns())
        assert h.words in str(err.value), f"{kind}: {err.value}"
    assert time.monotonic() - t0 < 30, f"{kind} took {time.monotonic() - t0:.0f} s"
    # Peak resident memory of this process may grow by at most 300 MB for any one input.
    assert _peak_rss_mb() - rss < 300, f"{kind} raised peak memory by {_peak_rss_mb() - rss:.0f} MB"


@pytest.mark.parametrize(("name", "fields", "words"), BAD_EVENT_FIELDS,
                         ids=[n for n, _, _ in BAD_EVENT_FIELDS])  # fmt: skip
def test_one_bad_event_in_a_batch_refuses_the_message_naming_it(
    name: str, fields: dict[str, object], words: str
) -> None:
    """The batch check runs over whole columns: the one bad event among good ones (with and
    without energies) is found, and named by its place in the message."""
    rng = random.Random(name)
    records = [event_record(rng, DETECTOR, **({"energy_gev": 10.0 * i} if i % 2 else {}))
               for i in range(5)]  # fmt: skip
    batch = load_schema(BATCH_SCHEMA)
    good = encode_single(batch, {"detector": DETECTOR, "events": records})
    assert _decode(EVENTS, good, now_ns()).size == 5  # type: ignore[attr-defined]
    records[2] = {**records[2], **fields}
    with pytest.raises(DecodeError) as err:
        _decode(EVENTS, encode_single(batch, {"detector": DETECTOR, "events": records}), now_ns())
    assert words in str(err.value) and str(err.value).startswith("event 2 "), str(err.value)


def _mutations(good: bytes, rng: random.Random, n: int) -> list[bytes]:
    """Bit flips, byte runs, truncations, splices and repeats of a good message."""
    out = []
    for _ in range(n):
        b = bytearray(good)
        op = rng.randrange(5)
        if op == 0:
            for _ in range(rng.randrange(1, 8)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            i = rng.randrange(len(b))
            b[i : i + rng.randrange(1, 16)] = bytes([rng.choice((0, 0xFF, 0x7F, 0x80))]) * 8
        elif op == 2:
            b = b[: rng.randrange(len(b))]
        elif op == 3:
            i, j = sorted(rng.randrange(len(b)) for _ in range(2))
            b[i:i] = b[j : j + rng.randrange(1, 64)]
        else:
            i = rng.randrange(len(b))
            b[i:i] = b[i : i + 4] * rng.randrange(1, 200)
        out.append(bytes(b))
    return out


def _seeds(shared_data: Path | None) -> dict[str, list[bytes]]:
    from mmstream.formats.detector import encode_batch, encode_event, encode_status
    from mmstream.model import DetectorEvent, DetectorStatus
    from tests.hostile import _gcn, _igwn_avro, _voevent

    rng = random.Random(1)
    t = now_ns()
    ev = DetectorEvent("e1", DETECTOR, 1, t, 10.0, 20.0, 1.0, 5.0, ("p1",), "s")
    seeds = {
        IGWN: [_igwn_avro(rng, igwn_record(rng))],
        GCN: [_gcn(rng)],
        VOE: [_voevent("2026-01-01T00:00:00")],
        EVENTS: [encode_event(ev), encode_batch(DETECTOR, [ev, ev])],
        STATUS: [encode_status(DetectorStatus(DETECTOR, 1, t, "GOOD"))],
    }
    if shared_data is not None:  # real packets too, where the samples are beside the project
        for role, pattern in ((IGWN, "igwn/*.avro"), (GCN, "gcn/**/*.json"),
                              (VOE, "voevent/**/*.xml")):  # fmt: skip
            files = sorted(shared_data.glob(pattern))
            seeds[role] += [f.read_bytes() for f in files[:: max(1, len(files) // 6)][:6]]
    return seeds


@pytest.mark.parametrize("role", [IGWN, GCN, VOE, EVENTS, STATUS])
def test_mutated_messages_decode_or_fail_with_a_decode_error(role: str, shared_data: Path) -> None:
    rng = random.Random(role)
    seeds = _seeds(shared_data)[role]
    assert seeds
    refused = 0
    n = 0
    for good in seeds:
        for value in _mutations(good, rng, 400 if role in (EVENTS, STATUS, GCN) else 60):
            n += 1
            try:
                _decode(role, value, now_ns())
            except DecodeError:
                refused += 1
    # Most mutations break a message; none may escape as anything but a DecodeError.
    assert refused > n // 4, f"{role}: only {refused} of {n} mutations refused"
