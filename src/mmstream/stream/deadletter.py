"""Dead letters: a message we could not decode or process, kept byte-exact with its reason."""

from __future__ import annotations

import json

from mmstream.times import format_utc, now_ns


def deadletter_headers(
    original: list[tuple[str, bytes]] | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    exception: BaseException,
    sender: str,
    stage: str = "decode",
) -> list[tuple[str, bytes]]:
    """The original headers, then ours: reason, stage, exception type, origin, time, sender."""
    origin = json.dumps({"topic": topic, "partition": partition, "offset": offset})
    return [
        *(original or []),
        ("mmstream-dlq-reason", reason.encode()[:4000]),
        ("mmstream-dlq-stage", stage.encode()),
        ("mmstream-dlq-exception", type(exception).__name__.encode()),
        ("mmstream-dlq-origin", origin.encode()),
        ("mmstream-dlq-at", format_utc(now_ns()).encode()),
        ("_sender", sender.encode()),
    ]
