"""Feeders: simulated detector streams and IGWN-format alerts, for demos, tests and benchmarks.

The scripts in ``producers/`` are thin command lines over these functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Producer

from mmstream.formats.avro import load_schema, write_container
from mmstream.formats.detector import encode_context, encode_event, encode_status
from mmstream.formats.detector_schema import DetectorSchema, load_detector_schema
from mmstream.model import NS_PER_S, ContextChange, DetectorEvent, DetectorStatus
from mmstream.sky.moc import gaussian_moc, write_fits_bytes
from mmstream.times import format_utc, now_ns


@dataclass(frozen=True)
class Injection:
    """An event planted at a chosen time and position (e.g. coincident with an alert)."""

    time_ns: int
    ra_deg: float
    dec_deg: float
    sigma_deg: float = 0.5
    event_id: str = "planted-0"


def background_events(
    detector: str,
    start_ns: int,
    end_ns: int,
    rate_hz: float,
    *,
    seed: int = 0,
    first_seq: int = 0,
) -> list[DetectorEvent]:
    """Poisson-in-time, isotropic-on-the-sky events between start and end."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate_hz * (end_ns - start_ns) / NS_PER_S)
    times = np.sort(rng.integers(start_ns, end_ns, size=n))
    ra = rng.uniform(0, 360, size=n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, size=n)))
    sigma = rng.uniform(0.3, 3.0, size=n)
    energy = rng.lognormal(np.log(1e3), 1.0, size=n)
    return [
        DetectorEvent(
            event_id=f"{detector}-{first_seq + i}",
            detector=detector,
            seq=first_seq + i,
            time_ns=int(times[i]),
            ra_deg=float(ra[i]),
            dec_deg=float(dec[i]),
            sigma_deg=float(sigma[i]),
            energy_gev=float(energy[i]),
        )
        for i in range(n)
    ]


def with_injections(
    detector: str, events: list[DetectorEvent], injections: Iterable[Injection]
) -> list[DetectorEvent]:
    """Background plus planted events, re-sequenced in time order."""
    planted = [
        DetectorEvent(
            inj.event_id, detector, 0, inj.time_ns, inj.ra_deg, inj.dec_deg, inj.sigma_deg, 5e4
        )
        for inj in injections
    ]
    merged = sorted([*events, *planted], key=lambda e: e.time_ns)
    return [
        DetectorEvent(
            e.event_id,
            e.detector,
            seq,
            e.time_ns,
            e.ra_deg,
            e.dec_deg,
            e.sigma_deg,
            e.energy_gev,
            e.derived_from,
            e.source,
            e.fields,
        )
        for seq, e in enumerate(merged)
    ]


def with_fields(events: list[DetectorEvent], seed: int = 0) -> list[DetectorEvent]:
    """The events with the simulated detector's own fields (schemas/detectors/simulated.avsc):
    a planted event (id with "planted") is a bright track, the background mostly not."""
    rng = np.random.default_rng(seed)
    out = []
    for e in events:
        planted = "planted" in e.event_id
        fields = {"signalness": 0.9 if planted else float(rng.beta(1, 9)),
                  "event_class": "track" if planted or rng.uniform() < 0.7 else "cascade",
                  "zenith_deg": float(rng.uniform(0, 180)),
                  "charge_pe": float(rng.lognormal(6, 1))}  # fmt: skip
        out.append(replace(e, fields=fields))
    return out


def simulated_schema_paths() -> list[Path]:
    """The simulated detector's own event schema files: the current version, then v1."""
    root = Path(str(resources.files("mmstream").joinpath("schemas", "detectors")))
    return [root / "simulated.avsc", root / "history" / "simulated.v1.avsc"]


def simulated_schema() -> DetectorSchema:
    """The simulated detector's own event schema, with its older version."""
    return load_detector_schema("simulated", simulated_schema_paths())


def produce_context(
    producer: Producer, topic: str, detector: str, changes: Iterable[tuple[int, str, Any]]
) -> int:
    """Condition changes (time_ns, key, value) of ``detector`` on its context topic."""
    count = 0
    for seq, (t, key, value) in enumerate(changes):
        change = ContextChange(detector, seq, t, key, value)
        producer.produce(topic, value=encode_context(change), key=detector.encode(),
                         timestamp=t // 1_000_000)  # fmt: skip
        count += 1
    return count


def produce_events(
    producer: Producer, topic: str, events: Iterable[DetectorEvent],
    schema: DetectorSchema | None = None,
) -> int:  # fmt: skip
    count = 0
    for event in events:
        while True:
            try:
                producer.produce(
                    topic,
                    value=encode_event(event, schema),
                    key=event.detector.encode(),
                    timestamp=event.time_ns // 1_000_000,
                )
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    return count


def produce_heartbeat(
    producer: Producer, topic: str, detector: str, time_ns: int, seq: int = 0, state: str = "GOOD"
) -> None:
    status = DetectorStatus(detector, seq, time_ns, state)
    producer.produce(
        topic, value=encode_status(status), key=detector.encode(), timestamp=time_ns // 1_000_000
    )


def produce_heartbeats(
    producer: Producer,
    topic: str,
    detector: str,
    start_ns: int,
    end_ns: int,
    every_s: float = 60.0,
    down: tuple[int, int] | None = None,
    reason: str = "simulated downtime",
) -> int:
    """GOOD heartbeats every ``every_s`` from start to end (BAD inside ``down``); how many sent."""
    step = int(every_s * NS_PER_S)
    times = [*list(range(start_ns, end_ns, step)), end_ns]
    for seq, t in enumerate(times):
        bad = down is not None and down[0] < t <= down[1]
        status = DetectorStatus(detector, seq, t, "BAD" if bad else "GOOD", reason if bad else None)
        producer.produce(
            topic, value=encode_status(status), key=detector.encode(), timestamp=t // 1_000_000
        )
    return len(times)


def igwn_alert(
    superevent_id: str,
    *,
    time_ns: int,
    ra_deg: float,
    dec_deg: float,
    sigma_deg: float = 3.0,
    alert_type: str = "PRELIMINARY",
    far_hz: float = 1e-9,
    created_ns: int | None = None,
    skymap_fits: bytes | None = None,
) -> bytes:
    """An IGWN-format alert (Avro container, one record) with a multi-order Gaussian sky map,
    or with ``skymap_fits`` (e.g. a real LVK multi-order map) instead."""
    created = created_ns if created_ns is not None else now_ns()
    event = None
    if alert_type != "RETRACTION":
        skymap = gaussian_moc(
            ra_deg,
            dec_deg,
            sigma_deg,
            meta={"OBJECT": superevent_id, "CREATOR": "mmstream.feeders"},
        )
        event = {
            "time": format_utc(time_ns)[:23] + "Z",
            "far": far_hz,
            "significant": far_hz < 3.9e-7,
            "instruments": ["H1", "L1", "V1"],
            "group": "CBC",
            "pipeline": "mmstream-sim",
            "search": "MDC",
            "properties": {"HasNS": 0.9},
            "classification": {"BNS": 0.9, "Terrestrial": 0.1},
            "duration": None,
            "central_frequency": None,
            "skymap": skymap_fits if skymap_fits is not None else write_fits_bytes(skymap),
        }
    record = {
        "alert_type": alert_type,
        "time_created": format_utc(created)[:19] + "Z",
        "superevent_id": superevent_id,
        "urls": {},
        "event": event,
        "external_coinc": None,
    }
    return write_container(load_schema("igwn_alert.avsc"), [record])
