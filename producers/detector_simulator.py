"""Simulate our neutrino detector: background events (and planted ones) on detector.<d>.events.

    python producers/detector_simulator.py --detector icecube --rate 0.02 \
        --backfill 1200 --inject-at 2026-11-22T12:00:00 --inject-ra 120 --inject-dec -30

Sends events from ``now - backfill`` to now, then a heartbeat on detector.<d>.status so
the service knows the stream has reached now. With ``--own-fields`` the events carry the
simulated detector's own fields (schemas/detectors/simulated.avsc: signalness, event class,
zenith, charge; configure ``[detector_schemas]`` to read them), and with ``--conditions`` its
context stream (detector.<d>.context) gets a calibration set a day ago, a calibration change
in the middle of the backfill, and shutter 3 closed for 120 s at ``--shutter-at`` (default:
the backfill's middle minus 5 minutes).
"""

from __future__ import annotations

import argparse
import os

from confluent_kafka import Producer

from mmstream.config import load_settings
from mmstream.feeders import (
    Injection,
    background_events,
    produce_context,
    produce_events,
    produce_heartbeats,
    simulated_schema,
    with_fields,
    with_injections,
)
from mmstream.model import NS_PER_S
from mmstream.times import now_ns, parse_utc_ns


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--detector", default="icecube")
    ap.add_argument("--rate", type=float, default=0.02, help="background rate, Hz")
    ap.add_argument("--backfill", type=float, default=1200.0, help="seconds of past data to send")
    ap.add_argument("--inject-at", help="UTC time of a planted event")
    ap.add_argument("--inject-ra", type=float, default=0.0)
    ap.add_argument("--inject-dec", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    ap.add_argument("--own-fields", action="store_true", help="events in the detector's schema")
    ap.add_argument("--conditions", action="store_true", help="send calibration and shutters")
    ap.add_argument("--shutter-at", help="UTC time shutter 3 closes for 120 s")
    args = ap.parse_args()
    settings = load_settings()
    producer = Producer({**settings.kafka_config(), "enable.idempotence": True})
    end = now_ns()
    events = background_events(
        args.detector, end - int(args.backfill * 1e9), end, args.rate, seed=args.seed
    )
    if args.inject_at:
        events = with_injections(
            args.detector,
            events,
            [Injection(parse_utc_ns(args.inject_at), args.inject_ra, args.inject_dec)],
        )
    schema = None
    if args.own_fields:
        events, schema = with_fields(events, seed=args.seed), simulated_schema()
    n = produce_events(producer, settings.detector_topic(args.detector), events, schema)
    if args.conditions:
        start = end - int(args.backfill * 1e9)
        middle = (start + end) // 2
        closed = parse_utc_ns(args.shutter_at) if args.shutter_at else middle - 300 * NS_PER_S
        changes = [(start - 86_400 * NS_PER_S, "calibration", "cal-A"),
                   (start - 86_400 * NS_PER_S, "shutter.3", "open"),
                   (closed, "shutter.3", "closed"), (closed + 120 * NS_PER_S, "shutter.3", "open"),
                   (middle, "calibration", "cal-B")]  # fmt: skip
        produce_context(producer, settings.topics().context(args.detector), args.detector,
                        sorted(changes))  # fmt: skip
    produce_heartbeats(
        producer,
        settings.status_topic(args.detector),
        args.detector,
        end - int(args.backfill * 1e9),
        end,
    )
    producer.flush(30)
    print(f"sent {n} events and a heartbeat for {args.detector}")


if __name__ == "__main__":
    main()
