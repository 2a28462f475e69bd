"""Hostile and broken inputs, made here from scratch: what a broken or malicious upstream sends.

Each builder returns a ``Hostile``: the kind, which kind of topic it goes to, the bytes (or
None for a Kafka message without a value), and what must happen: ``words`` that the
dead-letter reason must contain, or ``processed`` for an input that is odd but valid (it
must be processed, with the outcome docs/formats.md documents). ``kinds()`` lists them all;
``random_kind`` draws one with fresh random content, for fuzz runs.
"""

from __future__ import annotations

import copy
import io
import json
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import fastavro
import numpy as np

from mmstream.formats.avro import _schema_json, encode_single, load_schema
from mmstream.formats.detector import BATCH_SCHEMA, EVENT_SCHEMA, STATUS_SCHEMA
from mmstream.model import NS_PER_S, MultiOrderSkyMap
from mmstream.sky.moc import gaussian_moc, pixel_area_sr, uniq_to_order_ipix, write_fits_bytes
from mmstream.times import format_utc, now_ns

# Topic roles: where a message is sent.
IGWN, GCN, VOE, EVENTS, STATUS = "igwn", "gcn", "voevent", "events", "status"
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


@dataclass(frozen=True)
class Hostile:
    kind: str
    role: str
    value: bytes | None
    words: str | None = None  # the dead-letter reason must contain this; None: processed

    @property
    def processed(self) -> bool:
        return self.words is None


# ---------------------------------------------------------------- good pieces to spoil
def gcn_record(rng: random.Random, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "mission": "IceCube",
        "id": [f"fz{rng.getrandbits(40):x}"],
        "alert_type": "initial",
        "record_number": 1,
        "trigger_time": format_utc(now_ns() - 900 * NS_PER_S),
        "ra": rng.uniform(0, 360),
        "dec": rng.uniform(-89, 89),
        "ra_dec_error": 1.0,
    }
    rec.update(fields)
    return rec


def _gcn(rng: random.Random, **fields: Any) -> bytes:
    return json.dumps(gcn_record(rng, **fields)).encode()


def igwn_record(rng: random.Random, skymap: bytes | None = None) -> dict[str, Any]:
    sid = f"S{rng.getrandbits(40):x}fz"
    if skymap is None:
        skymap = write_fits_bytes(gaussian_moc(rng.uniform(0, 360), rng.uniform(-60, 60), 5.0,
                                               max_order=6))  # fmt: skip
    return {
        "alert_type": "PRELIMINARY",
        "time_created": format_utc(now_ns())[:19] + "Z",
        "superevent_id": sid,
        "urls": {},
        "event": {
            "time": format_utc(now_ns() - 900 * NS_PER_S)[:23] + "Z",
            "far": 1e-9,
            "significant": True,
            "instruments": ["H1", "L1"],
            "group": "CBC",
            "pipeline": "fuzz",
            "search": "MDC",
            "properties": {},
            "classification": {"BNS": 1.0},
            "duration": None,
            "central_frequency": None,
            "skymap": skymap,
        },
        "external_coinc": None,
    }


def _container(schema: dict[str, Any], records: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), records, codec="null")
    return buf.getvalue()


def _igwn_schema_with(path: tuple[str, ...], new_type: Any) -> dict[str, Any]:
    """The IGWN writer schema with the field at ``path`` (record field names) retyped."""
    schema = copy.deepcopy(_schema_json("igwn_alert.avsc"))
    node = schema
    for i, name in enumerate(path):
        field = next(f for f in node["fields"] if f["name"] == name)
        if i == len(path) - 1:
            field["type"] = new_type
            field.pop("default", None)
        else:
            t = field["type"]
            node = next(x for x in t if isinstance(x, dict)) if isinstance(t, list) else t
    return schema


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _container_with_block(schema: dict[str, Any], count: int, datum: bytes) -> bytes:
    """An Avro container whose one data block claims ``count`` records of ``datum`` bytes."""
    header = _container(schema, [])
    sync = header[-16:]
    return header + _zigzag(count) + _zigzag(len(datum)) + datum + sync


def _moc_bytes(skymap: MultiOrderSkyMap) -> bytes:
    """A NUNIQ FITS table of whatever the arrays hold (write_fits_bytes wants valid tiles)."""
    from astropy.io import fits

    hdu = fits.BinTableHDU.from_columns([
        fits.Column(name="UNIQ", format="K", array=skymap.uniq),
        fits.Column(name="PROBDENSITY", format="D", unit="sr-1", array=skymap.probdensity),
    ])  # fmt: skip
    hdu.header["PIXTYPE"], hdu.header["ORDERING"] = "HEALPIX", "NUNIQ"
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    return buf.getvalue()


def _spoiled_moc(rng: random.Random, how: str) -> bytes:
    m = gaussian_moc(rng.uniform(0, 360), rng.uniform(-60, 60), 4.0, max_order=6)
    uniq, dens = m.uniq.copy(), m.probdensity.copy()
    if how == "nan":
        dens[rng.randrange(dens.size)] = np.nan
    elif how == "negative":
        dens[int(np.argmax(dens))] *= -1
    elif how == "zero":
        dens[:] = 0.0
    elif how == "scaled":
        dens *= 3.0
    elif how == "uniq0":
        uniq[0] = 0
    elif how == "uniq-negative":
        uniq[0] = -12345
    elif how == "duplicate":
        uniq[1] = uniq[0]
    elif how == "order30":
        uniq[0] = 4 * 4**30 + 7
    return _moc_bytes(MultiOrderSkyMap(uniq=uniq, probdensity=dens))


def deep_moc(rng: random.Random, order: int = 16) -> bytes:
    """A valid, normalized map whose densest tile is split, one quarter at a time, down to
    ``order``: three tiles at each order in between and four at ``order``."""
    m = gaussian_moc(rng.uniform(0, 360), rng.uniform(-60, 60), 4.0, max_order=6)
    top = int(np.argmax(m.probdensity))
    levels, ipixes = uniq_to_order_ipix(m.uniq[top : top + 1])
    k, ipix = int(levels[0]), int(ipixes[0])
    tiles: list[int] = []
    while k < order:  # keep child 0 to split further; at ``order`` keep all four
        k, ipix = k + 1, ipix * 4
        tiles += [4 * 4**k + ipix + c for c in range(0 if k == order else 1, 4)]
    uniq = np.concatenate([np.delete(m.uniq, top), np.array(tiles, dtype=np.int64)])
    dens = np.concatenate([np.delete(m.probdensity, top), np.full(len(tiles), m.probdensity[top])])
    dens /= np.sum(dens * pixel_area_sr(uniq))
    sort = np.argsort(uniq)
    return _moc_bytes(MultiOrderSkyMap(uniq=uniq[sort], probdensity=dens[sort]))


@cache
def gzip_bomb(inflated: int = 128 << 20) -> bytes:
    """A gzip stream of ``inflated`` zero bytes (about 1/1000 of that on the wire)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [z.compress(chunk) for _ in range(inflated >> 20)]
    return b"".join(parts) + z.flush()


@cache
def _deflate_bomb() -> bytes:
    """An Avro container whose one deflate block inflates to 64 MiB of one string."""
    schema = {"type": "record", "name": "Alert", "namespace": "igwn.alerts",
              "fields": [{"name": "a", "type": "string"}]}  # fmt: skip
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), [{"a": "x" * (64 << 20)}], codec="deflate")
    return buf.getvalue()


def _igwn_avro(rng: random.Random, record: dict[str, Any] | None = None,
               schema: dict[str, Any] | None = None) -> bytes:  # fmt: skip
    return _container(schema or _schema_json("igwn_alert.avsc"), [record or igwn_record(rng)])


def event_record(rng: random.Random, det: str, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "event_id": f"fz-{rng.getrandbits(48):x}",
        "detector": det,
        "seq": rng.getrandbits(20),
        "time_ns": now_ns() - rng.randrange(600) * NS_PER_S,
        "ra_deg": rng.uniform(0, 360),
        "dec_deg": rng.uniform(-90, 90),
        "sigma_deg": 1.0,
        "energy_gev": None,
        "derived_from": [],
        "source": "fuzz",
    }
    rec.update(fields)
    return rec


def _event(rng: random.Random, det: str, **fields: Any) -> bytes:
    return encode_single(load_schema(EVENT_SCHEMA), event_record(rng, det, **fields))


def _status(detector: str, time_ns: int) -> bytes:
    rec = {"detector": detector, "seq": 0, "time_ns": time_ns, "state": "GOOD", "reason": None}
    return encode_single(load_schema(STATUS_SCHEMA), rec)


def _voevent(iso: str, extra: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>{extra}<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" '
        f'ivorn="ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_1-1" role="observation">'
        f'<What><Param name="TrigID" value="1"/><Param name="Packet_Type" value="61"/></What>'
        f"<WhereWhen><ObsDataLocation><ObservationLocation><AstroCoords><Time><TimeInstant>"
        f"<ISOTime>{iso}</ISOTime></TimeInstant></Time><Position2D><Value2><C1>10</C1><C2>20</C2>"
        f"</Value2><Error2Radius>0.05</Error2Radius></Position2D></AstroCoords>"
        f"</ObservationLocation></ObsDataLocation></WhereWhen></voe:VOEvent>"
    ).encode()


BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)
XXE = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def _deep_json(depth: int, head: str = "") -> bytes:
    return (head + '"x":' + "[" * depth + "]" * depth + "}").encode()


# ---------------------------------------------------------------------------- the kinds
Builder = Callable[[random.Random, str], Hostile]


def _k(kind: str, role: str, words: str | None, make: Callable[[random.Random, str], bytes | None]
       ) -> tuple[str, Builder]:  # fmt: skip
    return kind, lambda rng, det: Hostile(kind, role, make(rng, det), words)


def _ts(text: str) -> Callable[[random.Random, str], bytes]:
    return lambda rng, det: _gcn(rng, trigger_time=text)


# One wrong field of an otherwise good event, and words of the reason it must get.
BAD_EVENT_FIELDS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("nan-ra", {"ra_deg": float("nan")}, "not finite"),
    ("inf-sigma", {"sigma_deg": float("inf")}, "sigma"),
    ("negative-sigma", {"sigma_deg": -1.0}, "sigma"),
    ("dec-100", {"dec_deg": 100.0}, "off the sky"),
    ("inf-energy", {"energy_gev": float("inf")}, "energy_gev"),
    ("nan-energy", {"energy_gev": float("nan")}, "energy_gev"),
    ("time-0", {"time_ns": 0}, "before its message"),
    ("time-minus-1", {"time_ns": -1}, "before its message"),
    ("time-int64-min", {"time_ns": INT64_MIN}, "before its message"),
    ("time-int64-max", {"time_ns": INT64_MAX}, "after its message"),
    ("time-100-years", {"time_ns": now_ns() + 100 * 365 * 86_400 * NS_PER_S}, "after its message"),
    ("wrong-detector", {"detector": "made-up"}, "detector"),
)  # fmt: skip


KINDS: dict[str, Builder] = dict([
    # crash loops: exceptions from inside the decoders
    _k("deep-json-gcn", GCN, "nested too deeply",
       lambda rng, det: _deep_json(100_000, '{"mission":"IceCube","trigger_time":"2026-01-01T00:00:00Z",')),
    _k("deep-json-igwn", IGWN, "nested too deeply",
       lambda rng, det: _deep_json(100_000, '{"superevent_id":"S1","alert_type":"PRELIMINARY",')),
    _k("igwn-skymap-string", IGWN, "skymap",
       lambda rng, det: _igwn_avro(rng, {**igwn_record(rng), "event": {**igwn_record(rng)["event"],
                                   "skymap": "not bytes"}},
                                   _igwn_schema_with(("event", "skymap"), "string"))),
    _k("igwn-skymap-huge-int", IGWN, "skymap",
       lambda rng, det: _igwn_avro(rng, {**igwn_record(rng), "event": {**igwn_record(rng)["event"],
                                   "skymap": 2**62}},
                                   _igwn_schema_with(("event", "skymap"), "long"))),
    _k("igwn-coinc-string", IGWN, "external_coinc",
       lambda rng, det: _igwn_avro(rng, {**igwn_record(rng), "external_coinc": "oops"},
                                   _igwn_schema_with(("external_coinc",), ["null", "string"]))),
    _k("igwn-classification-list", IGWN, "classification",
       lambda rng, det: _igwn_avro(rng, {**igwn_record(rng), "event": {**igwn_record(rng)["event"],
                                   "classification": [1.0, 2.0]}},
                                   _igwn_schema_with(("event", "classification"),
                                                     {"type": "array", "items": "double"}))),
    _k("igwn-json-coinc-list", IGWN, "external_coinc",
       lambda rng, det: json.dumps({**_jsonable(igwn_record(rng)), "external_coinc": [1, 2]}).encode()),
    _k("igwn-json-classification-str", IGWN, "classification",
       lambda rng, det: json.dumps({**_jsonable(igwn_record(rng)),
                                    "event": {**_jsonable(igwn_record(rng))["event"],
                                              "classification": "BNS"}}).encode()),
    _k("gcn-error-string", GCN, "ra_dec_error", lambda rng, det: _gcn(rng, ra_dec_error="1 deg")),
    _k("gcn-error-dict", GCN, "ra_dec_error", lambda rng, det: _gcn(rng, ra_dec_error={"a": 1})),
    _k("gcn-error-strings", GCN, "ra_dec_error", lambda rng, det: _gcn(rng, ra_dec_error=["a", "b"])),
    _k("gcn-containment-string", GCN, "containment_probability",
       lambda rng, det: _gcn(rng, containment_probability="90%")),
    _k("gcn-containment-2", GCN, "containment_probability",
       lambda rng, det: _gcn(rng, containment_probability=2.0)),
    # memory bombs
    _k("avro-array-of-nulls", IGWN, "zero-size",
       lambda rng, det: _container_with_block(
           {"type": "record", "name": "Alert", "namespace": "igwn.alerts",
            "fields": [{"name": "x", "type": {"type": "array", "items": "null"}}]},
           1, _zigzag(2**62) + b"\x00")),
    _k("avro-block-of-empties", IGWN, "zero-size",
       lambda rng, det: _container_with_block(
           {"type": "record", "name": "Alert", "namespace": "igwn.alerts", "fields": []}, 2**62, b"")),
    _k("avro-array-of-empty-fixed", IGWN, "refused",
       lambda rng, det: _container_with_block(
           {"type": "record", "name": "Alert", "namespace": "igwn.alerts",
            "fields": [{"name": "z", "type": {"type": "fixed", "name": "Z", "size": 0}},
                       {"name": "b", "type": {"type": "array", "items": "igwn.alerts.Z"}}]},
           1, _zigzag(2**62) + b"\x00")),
    _k("avro-array-of-tiny-records", IGWN, "repeats a record",
       lambda rng, det: _container_with_block(
           {"type": "record", "name": "Alert", "namespace": "igwn.alerts",
            "fields": [{"name": "b", "type": {"type": "array", "items": {
                "type": "record", "name": "B", "fields": [{"name": "x", "type": "boolean"}]}}}]},
           1, _zigzag(1 << 20) + b"\x01" * (1 << 20) + b"\x00")),
    _k("avro-deflate-bomb", IGWN, "codec 'deflate' refused", lambda rng, det: _deflate_bomb()),
    _k("gzip-bomb-skymap", IGWN, "inflates to more than",
       lambda rng, det: _igwn_avro(rng, igwn_record(rng, gzip_bomb()))),
    # hangs, and sky maps that are not probability maps
    _k("moc-order-16", IGWN, None, lambda rng, det: _igwn_avro(rng, igwn_record(rng, deep_moc(rng)))),
    *(_k(f"moc-{how}", IGWN, words, lambda rng, det, how=how: _igwn_avro(
        rng, igwn_record(rng, _spoiled_moc(rng, how))))
      for how, words in (("order30", "order"), ("nan", "not finite"), ("negative", "negative"),
                         ("zero", "sums to"), ("scaled", "sums to"), ("uniq0", "UNIQ"),
                         ("uniq-negative", "UNIQ"), ("duplicate", "overlap"))),
    # times out of range (int64 nanoseconds hold 1677-09-21 .. 2262-04-11)
    _k("time-9999", GCN, "outside", _ts("9999-12-31T00:00:00Z")),
    _k("time-2611", GCN, "outside", _ts("2611-01-01T00:00:00Z")),
    _k("time-1500", GCN, "outside", _ts("1500-01-01T00:00:00Z")),
    _k("time-2100", GCN, "days after the message arrived", _ts("2100-01-01T00:00:00Z")),
    _k("voevent-time-9999", VOE, "outside", lambda rng, det: _voevent("9999-12-31T00:00:00")),
    _k("voevent-billion-laughs", VOE, "refused for safety",
       lambda rng, det: _voevent("2026-01-01T00:00:00", BILLION_LAUGHS)),
    _k("voevent-xxe", VOE, "refused for safety", lambda rng, det: _voevent("2026-01-01T00:00:00", XXE)),
    # wedges: larger than the broker takes (sent compressed), on both kinds of topic, and
    # larger than Kafka's default 1 MiB but within the 8 MiB mmstream's topics take
    _k("oversize-alert", GCN, "larger than max_message_bytes",
       lambda rng, det: b"{" + bytes([rng.randrange(97, 100)]) * (12 << 20)),
    _k("oversize-detector", EVENTS, "larger than max_message_bytes", lambda rng, det: b"\x00" * (12 << 20)),
    _k("large-undecodable-alert", GCN, "not JSON", lambda rng, det: b"{" + b"x" * (3 << 20)),
    # silent wrong answers from detector data
    *(_k(f"event-{name}", EVENTS, words, lambda rng, det, f=f: _event(rng, det, **f))
      for name, f, words in BAD_EVENT_FIELDS),
    _k("batch-one-bad", EVENTS, "event 3",
       lambda rng, det: encode_single(load_schema(BATCH_SCHEMA), {"detector": det, "events": [
           event_record(rng, det, **({"ra_deg": float("nan")} if i == 3 else {})) for i in range(5)]})),
    _k("status-future", STATUS, "after its message",
       lambda rng, det: _status(det, now_ns() + 10 * 86_400 * NS_PER_S)),
    _k("status-int64-max", STATUS, "after its message", lambda rng, det: _status(det, INT64_MAX)),
    _k("status-made-up-detector", STATUS, "detector",
       lambda rng, det: _status(f"made-up-{rng.getrandbits(32):x}", now_ns())),
    # the plain garbage of every day
    _k("null-alert", GCN, "no value", lambda rng, det: None),
    _k("null-detector", EVENTS, "no value", lambda rng, det: None),
    _k("random-bytes", GCN, "not JSON", lambda rng, det: b"{" + rng.randbytes(rng.randrange(1, 2000))),
    _k("detector-garbage", EVENTS, "fingerprint",
       lambda rng, det: b"\xc3\x01" + rng.randbytes(8) + rng.randbytes(rng.randrange(0, 200))),
    _k("truncated-avro", IGWN, "Avro", lambda rng, det: (lambda b: b[: len(b) // 2])(_igwn_avro(rng))),
])  # fmt: skip


def _jsonable(rec: dict[str, Any]) -> dict[str, Any]:
    """An IGWN record as GCN's JSON carries it: sky map as base64."""
    import base64

    out = copy.deepcopy(rec)
    if out.get("event") and isinstance(out["event"].get("skymap"), bytes):
        out["event"]["skymap"] = base64.b64encode(out["event"]["skymap"]).decode()
    return out


def kinds() -> list[str]:
    return sorted(KINDS)


def make(kind: str, rng: random.Random, detector: str) -> Hostile:
    return KINDS[kind](rng, detector)
