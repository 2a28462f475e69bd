"""Result messages: an Avro object container file with the writer schema embedded.

Self-describing on purpose: an outside observatory reads a result with any Avro library
and nothing from us. :func:`decode_result` is what our own consumers use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmstream.errors import DecodeError
from mmstream.formats.avro import load_schema, read_container, write_container
from mmstream.formats.headers import compact_json

RESULT_SCHEMA = "result.avsc"


@dataclass
class ResultRecord:
    """One result as the schema (``result.avsc``) has it; :meth:`encode` writes the message."""

    result_id: str
    analysis: str
    analysis_version: str
    status: str
    summary: str
    alert: dict[str, Any]  # alert_id, revision, alert_type, role, source, time, time_ns, far_hz
    window: dict[str, Any]  # start, end, start_ns, end_ns, livetime_fraction
    provenance: dict[str, str]
    parameters: dict[str, Any]
    statistics: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    details: Any = field(default_factory=dict)
    supersedes: str | None = None
    excluded: list[dict[str, Any]] = field(default_factory=list)
    conditions: dict[str, Any] = field(default_factory=dict)  # detector -> key -> intervals

    def as_avro(self) -> dict[str, Any]:
        return {
            "result_id": self.result_id,
            "analysis": self.analysis,
            "analysis_version": self.analysis_version,
            "status": self.status,
            "summary": self.summary,
            "alert": self.alert,
            "window": {
                k: self.window[k]
                for k in ("start", "end", "start_ns", "end_ns", "livetime_fraction")
            },
            "statistics": dict(self.statistics),
            "events": self.events,
            "notes": self.notes,
            "error": self.error,
            "details_json": compact_json(self.details),
            "conditions_json": compact_json(self.conditions),
            "parameters_json": compact_json(self.parameters),
            "provenance": self.provenance,
            "supersedes": self.supersedes,
            "excluded": self.excluded,
        }

    def encode(self) -> bytes:
        return encode_result(self.as_avro())


def encode_notice(notice: dict[str, Any]) -> bytes:
    """A JSON notice for outside observatories (canonical: sorted keys, no spaces)."""
    return compact_json(notice).encode()


def encode_result(record: dict[str, Any]) -> bytes:
    return write_container(load_schema(RESULT_SCHEMA), [record])


def decode_result(data: bytes) -> dict[str, Any]:
    schema, records = read_container(data)
    if schema.get("name") not in ("mmstream.Result", "Result") or len(records) != 1:
        raise DecodeError("not an mmstream result message")
    return records[0]
