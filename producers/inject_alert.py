"""Publish IGWN alerts on igwn.gwalert: given Avro files, or one generated here.

python producers/inject_alert.py ../shared/data/igwn/userguide/MS181101ab-preliminary.avro
python producers/inject_alert.py --generate MS260101a --ra 120 --dec -30 --time 2026-11-22T12:00:00
"""

from __future__ import annotations

import argparse
from pathlib import Path

from confluent_kafka import Producer

from mmstream.config import load_settings
from mmstream.feeders import igwn_alert
from mmstream.times import now_ns, parse_utc_ns


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("files", nargs="*", type=Path, help="IGWN Avro alert files to publish")
    ap.add_argument("--topic", default="igwn.gwalert")
    ap.add_argument("--generate", metavar="SUPEREVENT_ID", help="generate an alert instead")
    ap.add_argument("--time", help="event time (UTC); default now - 600 s")
    ap.add_argument("--ra", type=float, default=120.0)
    ap.add_argument("--dec", type=float, default=-30.0)
    ap.add_argument("--sigma", type=float, default=3.0, help="sky-map width, degrees")
    args = ap.parse_args()
    producer = Producer({**load_settings().kafka_config(), "enable.idempotence": True})
    payloads = [(str(f), f.read_bytes()) for f in args.files]
    if args.generate:
        t = parse_utc_ns(args.time) if args.time else now_ns() - 600 * 10**9
        payloads.append(
            (
                args.generate,
                igwn_alert(
                    args.generate, time_ns=t, ra_deg=args.ra, dec_deg=args.dec, sigma_deg=args.sigma
                ),
            )
        )
    if not payloads:
        ap.error("give alert files or --generate")
    for name, value in payloads:
        producer.produce(args.topic, value=value)
        print(f"published {name} ({len(value)} bytes) to {args.topic}")
    producer.flush(30)


if __name__ == "__main__":
    main()
