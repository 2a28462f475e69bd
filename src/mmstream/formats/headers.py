"""Our Kafka headers: the one encoder and the one parser of what mmstream writes.

| header | value |
| --- | --- |
| ``_id`` | result UUID, 16 raw bytes (hop-client convention); a notice has its own |
| ``_format`` | ``avro`` (result) or ``json`` (notice) |
| ``_sender`` | service instance name |
| ``mmstream-analysis`` | ``name@version`` |
| ``mmstream-code`` | ``mmstream==X.Y.Z git=<commit> handler-sha256=<hex> [dist==version]`` |
| ``mmstream-config-sha256`` | sha256 of the validated parameters' canonical JSON |
| ``mmstream-inputs`` | JSON: the alert message, the detector offsets and the other alerts used |
| ``mmstream-conditions`` | JSON: per detector and key, each condition value and its seconds |
| ``mmstream-window`` | JSON: event-time window and livetime fraction |
| ``mmstream-produced-at`` | RFC 3339 UTC |
| ``mmstream-retraction`` | ``true`` on the RETRACTED result of a retraction |
| ``_test`` | ``true`` on results of test and mock alerts (hop consumers skip them by default) |
| ``mmstream-supersedes`` | the result this one replaces |
| ``mmstream-late-update`` | n: the n-th re-run for detector data that came late |
| ``mmstream-superseded-by`` | on an older revision that came late: the newer result |
| ``mmstream-result-id`` | on a JSON notice: the result it accompanies (its own ``_id`` differs) |

Stages build a :class:`ResultHeaders` and read our own topics through :func:`parse`; no
other code names these headers.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PRODUCED_AT = "mmstream-produced-at"
ANALYSIS = "mmstream-analysis"
INPUTS = "mmstream-inputs"
CONDITIONS = "mmstream-conditions"
DLQ_REASON = "mmstream-dlq-reason"
DLQ_ORIGIN = "mmstream-dlq-origin"
# Headers only mmstream writes: a consumed alert carrying one is our own result, notice or
# dead letter (or a replay's), relayed back to us.
OWN_OUTPUT_HEADERS = frozenset({ANALYSIS, INPUTS, DLQ_REASON})
Headers = list[tuple[str, bytes]]


def compact_json(value: Any) -> str:
    """Canonical JSON of our headers and payload JSON fields: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def headers_dict(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, bytes]:
    """Kafka headers as a dict (last value wins), for readers."""
    return {k: v for k, v in (headers or [])}


@dataclass(frozen=True)
class ResultHeaders:
    """The provenance of one result message, as it goes on the wire."""

    rid: uuid.UUID
    sender: str
    analysis_label: str
    code: str
    config_sha256: str
    inputs: dict[str, Any]
    window: dict[str, Any]
    produced_at: str
    retraction: bool = False
    test: bool = False
    supersedes: str | None = None
    late_update: int = 0
    superseded_by: str | None = None
    # per detector, per condition key: [[value, seconds in effect in the window], ...]
    conditions: dict[str, Any] | None = None

    def encode(self) -> Headers:
        out: Headers = [
            ("_id", self.rid.bytes),
            ("_format", b"avro"),
            ("_sender", self.sender.encode()),
            (ANALYSIS, self.analysis_label.encode()),
            ("mmstream-code", self.code.encode()),
            ("mmstream-config-sha256", self.config_sha256.encode()),
            (INPUTS, compact_json(self.inputs).encode()),
            ("mmstream-window", compact_json(self.window).encode()),
            (PRODUCED_AT, self.produced_at.encode()),
        ]
        if self.retraction:
            out.append(("mmstream-retraction", b"true"))
        if self.test:
            out.append(("_test", b"true"))  # hop-client: consumers skip it by default
        if self.supersedes:
            out.append(("mmstream-supersedes", self.supersedes.encode()))
        if self.late_update:
            out.append(("mmstream-late-update", str(self.late_update).encode()))
        if self.superseded_by:
            out.append(("mmstream-superseded-by", self.superseded_by.encode()))
        if self.conditions:
            out.append((CONDITIONS, compact_json(self.conditions).encode()))
        return out

    def provenance(self) -> dict[str, str]:
        """The headers as the payload repeats them, without the publication time: the same
        inputs and code give byte-identical payloads (the time is only in the header)."""
        return {
            k: v.decode()
            for k, v in self.encode()
            if k.startswith("mmstream-") and k != PRODUCED_AT
        }

    def for_notice(self, notice_id: uuid.UUID) -> Headers:
        """The same provenance on the JSON notice beside the result: its own id and format."""
        own = {"_format": b"json", "_id": notice_id.bytes}
        return [*((k, own.get(k, v)) for k, v in self.encode()),
                ("mmstream-result-id", str(self.rid).encode())]  # fmt: skip


@dataclass(frozen=True)
class Parsed:
    """What our own headers on a consumed message say (fields are None when absent)."""

    id: uuid.UUID | None = None
    format: str | None = None
    analysis: str | None = None  # name, without the version
    label: str | None = None  # name@version
    alert: dict[str, Any] = field(default_factory=dict)  # from mmstream-inputs
    retraction: bool = False
    supersedes: str | None = None
    result_link: str | None = None  # a notice's result
    dlq_origin: tuple[str, int, int] | None = None
    # other alerts the result read: (alert id, revision, retracted), from mmstream-inputs
    partners: tuple[tuple[str, str, bool], ...] = ()

    @property
    def result_id(self) -> str | None:
        """The result this message is or accompanies."""
        if self.format == "json" and self.result_link:
            return self.result_link
        return str(self.id) if self.id is not None else None


def _text(value: bytes | None) -> str | None:
    return value.decode(errors="replace") if value is not None else None


def parse(headers: Iterable[tuple[str, bytes]] | None) -> Parsed:
    """Read our headers; anything malformed reads as absent (a hostile copy is no result)."""
    pairs = list(headers or [])
    h = headers_dict(pairs)
    rid = None
    with contextlib.suppress(ValueError):
        rid = uuid.UUID(bytes=h["_id"]) if "_id" in h else None
    alert: dict[str, Any] = {}
    partners: tuple[tuple[str, str, bool], ...] = ()
    try:
        inputs = json.loads(h[INPUTS]) if INPUTS in h else {}
        found = inputs["alert"] if inputs else {}
        alert = found if isinstance(found, dict) else {}
        partners = tuple((str(o["alert_id"]), str(o["revision"]), bool(o.get("retracted")))
                         for o in inputs.get("alerts", []))  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    origin = None
    origins = [v for k, v in pairs if k == DLQ_ORIGIN]  # the last one is ours
    if origins:
        try:
            o = json.loads(origins[-1])
            origin = (str(o["topic"]), int(o["partition"]), int(o["offset"]))
        except (ValueError, KeyError, TypeError):
            pass
    analysis = _text(h.get(ANALYSIS))
    return Parsed(
        id=rid,
        format=_text(h.get("_format")),
        analysis=analysis.split("@", 1)[0] if analysis else None,
        label=analysis,
        alert=alert,
        retraction=h.get("mmstream-retraction") == b"true",
        supersedes=_text(h.get("mmstream-supersedes")),
        result_link=_text(h.get("mmstream-result-id")),
        dlq_origin=origin,
        partners=partners,
    )
