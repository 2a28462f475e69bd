"""Follow mmstream's result topics as an outside observatory would.

Needs only confluent-kafka and fastavro, nothing from mmstream: each result is an Avro
object container with its schema inside (``_format: avro``), each notice is JSON
(``_format: json``), and the provenance is in the message headers.

    python consumers/listen_results.py --bootstrap 127.0.0.1:9092 [--from-beginning]
"""

from __future__ import annotations

import argparse
import io
import json
import uuid
from typing import Any

import fastavro
from confluent_kafka import Consumer


def describe(
    topic: str | None, value: bytes | None, headers: list[tuple[str, bytes]] | None
) -> dict[str, Any]:
    """One message of a result or notice topic, read the way its ``_format`` header says:
    ``avro`` (a result: an Avro container), ``json`` (a GCN-style notice), else raw."""
    h = dict(headers or [])
    rid = h.get("_id", b"")
    fmt = h.get("_format", b"").decode(errors="replace")
    out: dict[str, Any] = {
        "topic": topic,
        "format": fmt,
        "id": str(uuid.UUID(bytes=rid)) if len(rid) == 16 else None,
        "headers": {k: v.decode(errors="replace") for k, v in h.items() if k != "_id"},
    }
    if fmt == "avro":
        record = next(iter(fastavro.reader(io.BytesIO(value or b""))))
        out.update(summary=record["summary"], status=record["status"],
                   alert=record["alert"]["alert_id"])  # fmt: skip
    elif fmt == "json":
        notice = json.loads(value or b"null")
        out["notice"] = notice
    else:
        out["bytes"] = len(value or b"")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--pattern", default=r"^mmstream\.(results|notices)\..*", help="topic regex")
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
            rid = dict(msg.headers() or []).get("_id", b"")
            if rid in seen:  # deterministic ids: a duplicate is the same message
                continue
            seen.add(rid)
            print(json.dumps(describe(msg.topic(), msg.value(), msg.headers()), indent=2),
                  flush=True)  # fmt: skip
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
