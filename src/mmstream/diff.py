"""``mmstream diff``: what changed between two runs' results (e.g. live vs a replay with a
new analysis version or parameter), matched by analysis, alert and revision."""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass, field
from typing import Any

from mmstream.config import Settings
from mmstream.errors import ConfigError
from mmstream.formats.results import decode_result
from mmstream.stream.history import history_reader, read_spans, spans

# A result's identity across runs: the analysis version may change, the alert may not.
Key = tuple[str, str, str, int]  # analysis, alert id, revision, late-data update number

COMPARED = ("status", "analysis_version", "parameters_json", "error")


@dataclass
class Change:
    key: Key
    what: str
    before: Any
    after: Any


@dataclass
class RunDiff:
    added: list[Key] = field(default_factory=list)
    removed: list[Key] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    same: int = 0

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)


def read_results(settings: Settings, run: str) -> dict[Key, dict[str, Any]]:
    """Every committed result of a run: a topic, or a glob of topics (``mmstream.results.*``),
    all partitions up to their current end."""
    consumer = history_reader(settings.kafka_config(), "diff")
    found: dict[Key, dict[str, Any]] = {}
    try:
        topics = consumer.list_topics(timeout=30).topics
        names = sorted(fnmatch.filter(topics, run)) if any(c in run for c in "*?[") else [run]
        if not names or any(n not in topics for n in names):
            raise ConfigError(f"no topic {run!r} on the broker")
        for msg in read_spans(consumer, spans(consumer, names)):
            headers = dict(msg.headers() or [])
            if headers.get("_format") != b"avro" or "mmstream-analysis" not in headers:
                continue  # a notice or a dead letter: not a result
            record = decode_result(msg.value() or b"")
            update = headers.get("mmstream-late-update")
            alert = record["alert"]
            key = (record["analysis"], alert["alert_id"], alert["revision"],
                   int(update) if update else 0)  # fmt: skip
            found[key] = record
    finally:
        consumer.close()
    return found


def _moved(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return not (a == b or (math.isnan(a) and math.isnan(b)))
    return bool(a != b)


def diff_runs(a: dict[Key, dict[str, Any]], b: dict[Key, dict[str, Any]]) -> RunDiff:
    out = RunDiff(added=sorted(set(b) - set(a)), removed=sorted(set(a) - set(b)))
    for key in sorted(set(a) & set(b)):
        ra, rb = a[key], b[key]
        changes = [Change(key, f, ra.get(f), rb.get(f)) for f in COMPARED
                   if _moved(ra.get(f), rb.get(f))]  # fmt: skip
        lt_a, lt_b = ra["window"]["livetime_fraction"], rb["window"]["livetime_fraction"]
        if _moved(lt_a, lt_b):
            changes.append(Change(key, "livetime_fraction", lt_a, lt_b))
        sa, sb = ra.get("statistics") or {}, rb.get("statistics") or {}
        for stat in sorted(set(sa) | set(sb)):
            if _moved(sa.get(stat), sb.get(stat)):
                changes.append(Change(key, f"statistics.{stat}", sa.get(stat), sb.get(stat)))
        ea = sorted(e["event_id"] for e in ra.get("events", []))
        eb = sorted(e["event_id"] for e in rb.get("events", []))
        if ea != eb:
            changes.append(Change(key, "events", ea, eb))
        out.changed += changes
        out.same += not changes
    return out


def render(d: RunDiff, name_a: str, name_b: str) -> str:
    def label(k: Key) -> str:
        return f"{k[0]} {k[1]} rev {k[2]}" + (f" (late-data update {k[3]})" if k[3] else "")

    lines = [f"--- {name_a}", f"+++ {name_b}"]
    lines += [f"+ {label(k)}" for k in d.added]
    lines += [f"- {label(k)}" for k in d.removed]
    for c in d.changed:
        before = json.dumps(c.before, sort_keys=True, default=str)
        after = json.dumps(c.after, sort_keys=True, default=str)
        lines.append(f"~ {label(c.key)}: {c.what} {before} -> {after}")
    lines.append(
        f"{len(d.added)} added, {len(d.removed)} removed, "
        f"{len({c.key for c in d.changed})} changed, {d.same} unchanged"
    )
    return "\n".join(lines) + "\n"
