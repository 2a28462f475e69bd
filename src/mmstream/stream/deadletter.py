"""Dead letters: a message we could not decode or process, kept with its reason.

The value is the original, byte-exact (a null value stays null), unless it is larger
than ``deadletter_max_bytes``: then only its first bytes are kept, and headers give the
original length and sha256 (the whole message is in the raw archive, which the
``mmstream-dlq-archive`` header names). Without that cut, a message the broker accepted
compressed could yield a dead letter the broker refuses, and the transaction carrying it
would be retried forever. Original headers are kept up to ``deadletter_max_header_bytes``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from mmstream.formats.headers import DLQ_ORIGIN, DLQ_REASON, Parsed
from mmstream.formats.limits import Limits
from mmstream.times import format_utc, now_ns

MAX_REASON_BYTES = 2000


@dataclass(frozen=True)
class DeadLetter:
    value: bytes | None
    headers: list[tuple[str, bytes]]


def deadletter(
    value: bytes | None,
    original: list[tuple[str, bytes]] | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    exception: BaseException,
    sender: str,
    limits: Limits,
    stage: str = "decode",
    archive: str | None = None,
) -> DeadLetter:
    """The dead letter for one message: the original (cut to size), its headers, then ours:
    reason, stage, exception type, origin, time, sender."""
    origin = json.dumps({"topic": topic, "partition": partition, "offset": offset})
    kept: list[tuple[str, bytes]] = []
    size = 0
    for k, v in original or []:
        size += len(k) + len(v)
        if size > limits.deadletter_max_header_bytes:
            kept.append(("mmstream-dlq-headers-dropped", str(len(original or [])).encode()))
            break
        kept.append((k, v))
    ours = [
        (DLQ_REASON, reason.encode()[:MAX_REASON_BYTES]),
        ("mmstream-dlq-stage", stage.encode()),
        ("mmstream-dlq-exception", type(exception).__name__.encode()),
        (DLQ_ORIGIN, origin.encode()),
        ("mmstream-dlq-at", format_utc(now_ns()).encode()),
        ("_sender", sender.encode()),
    ]
    if archive is not None:
        ours.append(("mmstream-dlq-archive", archive.encode()))
    headers = [*kept, *ours]
    if value is not None and len(value) > limits.deadletter_max_bytes:
        headers = without_value(value, headers)
        value = value[: limits.deadletter_max_bytes]
    return DeadLetter(value, headers)


def without_value(value: bytes, headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Headers for the same dead letter with its value cut or left out (too large): the
    original's length and sha256, added once."""
    if any(k == "mmstream-dlq-truncated" for k, _ in headers):
        return headers  # the original's length and sha256 are there already
    return [
        *headers,
        ("mmstream-dlq-truncated", b"true"),
        ("mmstream-dlq-original-length", str(len(value)).encode()),
        ("mmstream-dlq-original-sha256", hashlib.sha256(value).hexdigest().encode()),
    ]


@dataclass
class DeadLettered:
    """Which input messages are in the dead-letter topic already, by origin.

    Detector topics are read again from ``now - lookback_s`` on every start; without this,
    a bad detector message would be dead-lettered once more after each restart. Filled
    from the dead-letter topic's recent messages before any detector message is read; a
    running process reads each detector message once, so it needs nothing more (and the
    set does not grow with a hostile flood).
    """

    origins: set[tuple[str, int, int]] = field(default_factory=set)

    def record(self, h: Parsed) -> None:
        """Note one dead letter's origin (``parse`` reads the last origin header, ours: the
        original's headers come first, and a hostile message may carry a forged one)."""
        if h.dlq_origin is not None:
            self.origins.add(h.dlq_origin)

    def seen(self, topic: str, partition: int, offset: int) -> bool:
        return (topic, partition, offset) in self.origins
