"""Everything the ledger knows about one result, gathered once and rendered as text.

The report answers the questions an analyst asks months later: which inputs (and where
they are in Kafka), which time range and what was left out of it and why, which selection
parameters, which code, where it ran and what it cost, where the result went, and what
replaced it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from mmstream.ledger.store import Ledger
from mmstream.times import format_utc


@dataclass
class Provenance:
    run: dict[str, Any]
    alert_input: dict[str, Any] | None
    alert_history: list[dict[str, Any]]
    excluded: list[dict[str, Any]]
    events: list[dict[str, Any]]
    ancestry: dict[str, list[str]]
    outputs: list[dict[str, Any]]
    superseded_by: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    events_unrecorded: bool = False  # its process stopped before its events were written

    @property
    def result_id(self) -> str:
        return str(self.run["result_id"])

    def lowest_events(self) -> list[str]:
        """The lowest-level events the result rests on (those with no known parents)."""
        found: set[str] = set()
        stack = [str(e["event_id"]) for e in self.events]
        seen: set[str] = set()
        while stack:
            eid = stack.pop()
            if eid in seen:
                continue
            seen.add(eid)
            parents = self.ancestry.get(eid, [])
            if parents:
                stack.extend(parents)
            else:
                found.add(eid)
        return sorted(found)


def gather(ledger: Ledger, result_id: str) -> Provenance | None:
    """The provenance of ``result_id`` (or a unique prefix of it); None if unknown."""
    run = ledger.run(result_id)
    if run is None:
        return None
    rid = run["result_id"]
    history = sorted(ledger.inputs_of(run["alert_id"]), key=lambda r: str(r["received_at"]))
    position = (run["alert_topic"], run["alert_partition"], run["alert_offset"])
    alert_input = next(
        (r for r in history if (r["topic"], r["partition"], r["offset"]) == position), None
    )
    events = sorted(ledger.events(rid), key=lambda e: (e["time_ns"], e["event_id"]))
    return Provenance(
        run=run,
        alert_input=alert_input,
        alert_history=history,
        excluded=sorted(ledger.excluded(rid), key=lambda e: (e["detector"], e["start_ns"])),
        conditions=sorted(
            ledger.conditions(rid), key=lambda c: (c["detector"], c["key"], c["start_ns"])
        ),
        events=events,
        ancestry=ledger.ancestors(e["event_id"] for e in events),
        outputs=ledger.outputs(rid),
        superseded_by=ledger.superseded_by(rid),
        events_unrecorded=ledger.events_unrecorded(rid),
    )


def _when(ns: int | None) -> str:
    return "-" if ns is None else format_utc(int(ns))


def _offset_ranges(events: list[dict[str, Any]]) -> list[str]:
    spans: dict[tuple[str, int], list[int]] = defaultdict(list)
    for e in events:
        spans[(e["topic"], e["partition"])].append(int(e["offset"]))
    return [
        f"{topic}[{part}] offsets {min(offs)}..{max(offs)} ({len(offs)} events)"
        for (topic, part), offs in sorted(spans.items())
    ]


def render_text(p: Provenance, max_events: int = 20) -> str:
    """A readable report, one section per question."""
    r = p.run
    lines = [
        f"result {r['result_id']}",
        f"  analysis     {r['analysis']}@{r['version']}",
        f"  status       {r['status']} (result says {r['result_status']})"
        + (f"; error: {r['error']}" if r["error"] else ""),
        f"  summary      {r['summary']}",
        "",
        "inputs: the alert",
        f"  alert        {r['alert_id']} revision {r['revision']}",
        f"  message      {r['alert_topic']}[{r['alert_partition']}] offset {r['alert_offset']}",
    ]
    if p.alert_input:
        lines.append(
            f"  read         {p.alert_input['received_at']} as {p.alert_input['format']}, "
            f"status {p.alert_input['status']}"
        )
        if p.alert_input.get("archive"):
            lines.append(f"  archived     {p.alert_input['archive']}")
    if len(p.alert_history) > 1:
        lines.append("  all messages of this alert:")
        lines += [
            f"    {h['topic']}[{h['partition']}]@{h['offset']} rev {h['revision']} "
            f"{h['status']}{' (' + h['reason'] + ')' if h['reason'] else ''}"
            for h in p.alert_history
        ]
    lines += ["", "inputs: detector data"]
    if p.events_unrecorded:
        lines.append("  NOT ALL RECORDED: the process stopped before the ledger had written "
                     "this run's events; the result's mmstream-inputs header has their "
                     "offset ranges")  # fmt: skip
    if p.events:
        lines += [f"  {span}" for span in _offset_ranges(p.events)]
        for e in p.events[:max_events]:
            parents = p.ancestry.get(e["event_id"])
            lines.append(
                f"    {e['event_id']} {e['detector']} {_when(e['time_ns'])} "
                f"{e['topic']}[{e['partition']}]@{e['offset']}"
                + (f" derived from {', '.join(parents)}" if parents else "")
            )
        if len(p.events) > max_events:
            lines.append(f"    ... and {len(p.events) - max_events} more")
        if p.ancestry:
            lowest = p.lowest_events()
            lines.append(f"  rests on {len(lowest)} lowest-level events: {', '.join(lowest[:10])}")
    else:
        lines.append("  no detector event in the window")
    lines += [
        "",
        "time",
        f"  window       {_when(r['window_start_ns'])} .. {_when(r['window_end_ns'])}",
        f"  livetime     {r['livetime_fraction']}",
    ]
    if p.excluded:
        lines.append("  excluded:")
        lines += [
            f"    {e['detector']} {_when(e['start_ns'])} .. {_when(e['end_ns'])}: {e['reason']}"
            for e in p.excluded
        ]
    else:
        lines.append("  excluded     nothing")
    lines += ["", "conditions (detector.<d>.context, in effect over the window)"]
    if p.conditions:
        for (detector, key), spans in _by_key(p.conditions).items():
            lines.append(f"  {detector} {key}:")
            lines += [f"    {_when(c['start_ns'])} .. {_when(c['end_ns'])}  "
                      f"{c['value_json']}  ({(c['end_ns'] - c['start_ns']) / 1e9:.0f} s)"
                      for c in spans]  # fmt: skip
    else:
        lines.append("  none recorded (the detector sends no conditions)")
    params = json.dumps(json.loads(r["params_json"]), sort_keys=True)
    lines += [
        "",
        "selection",
        f"  parameters   {params}",
        f"  sha256       {r['params_sha256']}",
        "",
        "code",
        f"  mmstream     {r['mmstream_version']} (git {r['git_commit'] or 'unknown'})",
        f"  handler      sha256 {r['handler_sha256']}",
        "",
        "run",
        f"  by           {r['run_tag']} on {r['host']}",
        f"  from .. to   {r['started_at']} .. {r['ended_at']}",
        f"  cost         CPU {r['cpu_s']} s, peak memory {r['peak_memory_bytes']} bytes",
        "",
        "outputs",
    ]
    lines += [
        f"  {o['kind']:<7} {o['topic']}[{o['partition']}] offset {o['offset']}" for o in p.outputs
    ] or ["  none recorded (not yet published?)"]
    if r["supersedes"]:
        lines.append(f"  supersedes   {r['supersedes']}")
    for s in p.superseded_by:
        lines.append(f"  replaced by  {s['result_id']} ({s['result_status']}, rev {s['revision']})")
    return "\n".join(lines) + "\n"


def _by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in rows:
        out[(c["detector"], c["key"])].append(c)
    return out


def conditions_line(rows: list[dict[str, Any]]) -> str:
    """The conditions of a run on one line: each key's values over the window."""
    return "; ".join(f"{d} {k} = {', '.join(dict.fromkeys(c['value_json'] for c in spans))}"
                     for (d, k), spans in _by_key(rows).items())  # fmt: skip


def lineage_rows(ledger: Ledger, ident: str) -> list[dict[str, Any]]:
    """Every run that used an alert (by alert id) or a detector event (directly or through
    events derived from it), oldest first."""
    runs = ledger.runs_of_alert(ident) or ledger.results_using(ident)
    return sorted(runs, key=lambda r: (str(r["started_at"]), str(r["analysis"])))
