"""Follow mmstream's result topics as an outside observatory would.

Needs only confluent-kafka and fastavro, nothing from mmstream: each result is an Avro
object container with its schema inside, and its provenance is in the message headers.

    python consumers/listen_results.py --bootstrap 127.0.0.1:9092 [--from-beginning]
"""

from __future__ import annotations

import argparse
import io
import json
import uuid

import fastavro
from confluent_kafka import Consumer


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--pattern", default=r"^mmstream\.results\..*", help="topic regex")
    ap.add_argument("--group", default=f"listener-{uuid.uuid4().hex[:8]}")
    ap.add_argument("--from-beginning", action="store_true")
    args = ap.parse_args()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest" if args.from_beginning else "latest",
            "isolation.level": "read_committed",  # only results whose transaction committed
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([args.pattern])
    seen: set[bytes] = set()
    try:
        while True:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            headers = dict(msg.headers() or [])
            rid = headers.get("_id", b"")
            if rid in seen:  # deterministic ids: a duplicate is the same result
                continue
            seen.add(rid)
            record = next(iter(fastavro.reader(io.BytesIO(msg.value()))))
            print(
                json.dumps(
                    {
                        "topic": msg.topic(),
                        "result_id": str(uuid.UUID(bytes=rid)) if len(rid) == 16 else None,
                        "summary": record["summary"],
                        "status": record["status"],
                        "alert": record["alert"]["alert_id"],
                        "headers": {
                            k: v.decode(errors="replace") for k, v in headers.items() if k != "_id"
                        },
                    },
                    indent=2,
                ),
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
