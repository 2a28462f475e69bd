"""A detector's own event schema: the core fields of ``detector_event.avsc`` and its own.

A detector declares its schema in the configuration (``[detector_schemas] icecube =
["path/icecube.avsc", "path/history/icecube.v1.avsc"]``: the current version first, then
every older one its writers may still use). The schema must carry every core field with the
core field's type; its other fields (signalness, event class, zenith, charges...) reach
handlers as typed numpy columns (``EventColumns.fields``), are kept in the event store, and
are written into results beside the events a handler reports. Evolution follows
``schemas/README.md``: add fields with defaults only, keep older versions listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import fastavro

from mmstream.errors import ConfigError
from mmstream.formats.avro import load_schema

# Avro type -> the numpy column a handler gets. A nullable number is a float column with NaN
# for null; a nullable boolean is 0/1/NaN; strings and enums are strings ("" for null);
# anything else (arrays, maps, records) is a column of Python objects.
_KINDS = {"double": "float64", "float": "float32", "long": "int64", "int": "int32",
          "boolean": "bool", "string": "str"}  # fmt: skip


@dataclass(frozen=True)
class DetectorSchema:
    detector: str
    current: dict[str, Any]  # parsed
    history: tuple[dict[str, Any], ...]
    raw: tuple[dict[str, Any], ...]  # every version as written (current first)
    fields: tuple[tuple[str, str], ...]  # (name, column kind) of the detector's own fields
    defaults: dict[str, Any]  # per own field, what a record without it reads as
    batches: tuple[dict[str, Any], ...] = ()  # parsed batch records, one per version

    def batch(self, index: int) -> dict[str, Any]:
        """The batch record carrying events of version ``index`` (0: current), parsed once
        (a parsed schema is the key of its cached fingerprint)."""
        return self.batches[index] if self.batches else _batch(self.detector, self.raw[index])


def _batch(detector: str, items: dict[str, Any]) -> dict[str, Any]:
    name = f"DetectorBatch_{''.join(c if c.isalnum() else '_' for c in detector)}"
    events = {"name": "events", "type": {"type": "array", "items": items}}
    return _parse({"type": "record", "name": name, "namespace": "mmstream",
                   "fields": [{"name": "detector", "type": "string"}, events]})  # fmt: skip


def _parse(raw: Any) -> dict[str, Any]:
    """A schema parsed with its own named types (versions of one record never clash)."""
    parsed = fastavro.parse_schema(raw, named_schemas={})
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ConfigError("a detector's schema is an Avro record")
    return cast(dict[str, Any], parsed)


def core_fields() -> dict[str, Any]:
    """The core fields by name, with their types (from ``detector_event.avsc``)."""
    return {f["name"]: f["type"] for f in load_schema("detector_event.avsc")["fields"]}


def column_kind(avro_type: Any) -> str:
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(branches) == 1:
            kind = column_kind(branches[0])
            return "float64" if kind in ("float64", "float32", "int64", "int32", "bool") else kind
        return "object"
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "enum":
            return "str"
        if "logicalType" not in avro_type and avro_type.get("type") in _KINDS:
            return _KINDS[avro_type["type"]]
        return "object"
    return _KINDS.get(str(avro_type), "object")


def load_detector_schema(detector: str, paths: list[Path]) -> DetectorSchema:
    """Read and check a detector's schema files (current first); a ConfigError says what is
    wrong (a core field missing or retyped, a file unreadable, a field without a default
    that an older version lacks)."""
    if not paths:
        raise ConfigError(f"detector_schemas.{detector}: no schema file named")
    parsed, raws = [], []
    for path in paths:
        try:
            raws.append(json.loads(Path(path).read_text()))
            parsed.append(_parse(raws[-1]))
        except Exception as exc:
            raise ConfigError(f"detector_schemas.{detector}: {path}: {type(exc).__name__}: "
                              f"{exc}") from exc  # fmt: skip
    core = core_fields()
    for path, schema in zip(paths, parsed, strict=True):
        have = {f["name"]: f["type"] for f in schema.get("fields", [])}
        for name, kind in core.items():
            if name not in have:
                raise ConfigError(
                    f"detector_schemas.{detector}: {path} lacks the core field "
                    f"{name!r} (a detector's schema extends detector_event.avsc)"
                )
            if json.dumps(have[name], sort_keys=True) != json.dumps(kind, sort_keys=True):
                raise ConfigError(
                    f"detector_schemas.{detector}: {path} gives core field "
                    f"{name!r} the type {have[name]!r}, not {kind!r}"
                )
    current = parsed[0]
    own = [f for f in current["fields"] if f["name"] not in core]
    older = [{f["name"] for f in s["fields"]} for s in parsed[1:]]
    for f in own:
        if any(f["name"] not in names for names in older) and "default" not in f:
            raise ConfigError(
                f"detector_schemas.{detector}: field {f['name']!r} is new since an "
                "older version and has no default (schemas/README.md)"
            )
    return DetectorSchema(
        detector, current, tuple(parsed[1:]), tuple(raws),
        tuple((f["name"], column_kind(f["type"])) for f in own),
        {f["name"]: f.get("default") for f in own},
        tuple(_batch(detector, raw) for raw in raws),
    )  # fmt: skip
