"""Alert intake: one consumed alert message becomes a valid :class:`Alert`, or a dead letter.

Everything that can go wrong in decoding and validating is a dead letter with its reason,
never a crash: a hostile upstream is normal. A message carrying our own output headers is
refused (a loop that re-triggers itself on its results is a known failure of peers), and
hop-client's ``_test`` header makes an alert a test one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from confluent_kafka import Message

from mmstream.errors import DecodeError, MmstreamError
from mmstream.formats.headers import OWN_OUTPUT_HEADERS
from mmstream.formats.limits import Limits
from mmstream.formats.router import decode_alert
from mmstream.formats.validate import validate_alert
from mmstream.model import Alert, Role
from mmstream.stream.messages import headers_of, origin
from mmstream.stream.settings import Topics


def check_no_loop(topics: Topics, analyses: Iterable[str]) -> None:
    """Refuse to start when an alert topic (or pattern) is one we write or read as data."""
    names = list(analyses)
    ours = [
        *(topics.result(n) for n in names),
        *(topics.notice(n) for n in names),
        topics.deadletter,
        topics.stats,
        *(t for d in topics.detectors for t in (topics.events(d), topics.status(d))),
    ]
    for entry in topics.alerts:
        if entry.startswith("^"):
            try:
                hits = [t for t in ours if re.match(entry, t)]
            except re.error as exc:
                raise MmstreamError(f"alert topic pattern {entry!r} is not a regex: {exc}") from exc
        else:
            prefixes = (topics.result_prefix, topics.notice_prefix)
            hits = [entry] if entry in ours or entry.startswith(prefixes) else []
        if hits:
            raise MmstreamError(
                f"alert topic {entry!r} would consume {hits[0]!r}, a topic mmstream writes or "
                "reads as detector data: consuming it would re-trigger analyses on their "
                "own output"
            )


def read_alert(msg: Message, routes: dict[str, str], limits: Limits, received_ns: int) -> Alert:
    """Decode and validate one alert message; any failure raises (the caller dead-letters)."""
    topic, partition, offset = origin(msg)
    headers = headers_of(msg)
    if own := [k for k, _ in headers if k in OWN_OUTPUT_HEADERS]:
        raise DecodeError(
            f"own output: the message carries mmstream's header {own[0]!r}; consuming "
            "it would re-trigger analyses on their own output"
        )
    alert = decode_alert(topic, partition, offset, msg.value(), routes, limits)
    if any(k == "_test" for k, _ in headers) and alert.role is not Role.TEST:
        alert = replace(alert, role=Role.TEST)  # published with `hop publish -t`
    validate_alert(alert, received_ns, limits)
    return alert
