"""A result's provenance as a W3C PROV-JSON document.

Entities: the result, the alert message, the detector events (and the events they were
derived from), the parameters, the handler's code. One activity: the analysis run. Agents:
the mmstream software (with its version and commit) and the service instance that ran it.
Relations: used, wasGeneratedBy, wasDerivedFrom (a superseded result: prov:Revision),
wasAssociatedWith (the code is the plan). Ids are qualified names in the ``mmstream`` namespace.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from mmstream.provenance.report import Provenance
from mmstream.times import format_utc

NAMESPACE = "urn:mmstream:"


def _q(kind: str, local: str) -> str:
    """A qualified name whose local part is safe whatever the id contains."""
    return f"mmstream:{kind}/{quote(local, safe='-_.')}"


def _typed(value: Any, xsd: str) -> dict[str, Any]:
    return {"$": value, "type": f"xsd:{xsd}"}


def _time(value: str | None) -> str | None:
    """RFC 3339 with at most microseconds, as xsd:dateTime parsers expect."""
    if not value:
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    return f"{head}.{frac[:6]}Z" if frac else f"{head}Z"


def to_prov_json(p: Provenance) -> dict[str, Any]:
    r = p.run
    result = _q("result", p.result_id)
    run = _q("run", p.result_id)
    alert = _q("alert", f"{r['alert_id']}/{r['revision']}")
    params = _q("parameters", r["params_sha256"])
    code = _q("code", r["handler_sha256"])
    software = _q("software", f"mmstream-{r['mmstream_version']}")
    instance = _q("instance", r["run_tag"])

    entity: dict[str, dict[str, Any]] = {
        result: {
            "prov:type": "mmstream:Result",
            "prov:label": f"{r['analysis']}@{r['version']} on {r['alert_id']} rev {r['revision']}",
            "mmstream:status": r["status"],
            "mmstream:resultStatus": r["result_status"] or "",
            "mmstream:statistics": r["statistics_json"] or "{}",
            "mmstream:livetimeFraction": _typed(r["livetime_fraction"] or 0.0, "double"),
            "mmstream:windowStart": format_utc(r["window_start_ns"])
            if r["window_start_ns"] is not None
            else "",
            "mmstream:windowEnd": format_utc(r["window_end_ns"])
            if r["window_end_ns"] is not None
            else "",
            "mmstream:excluded": json.dumps(
                [[e["detector"], e["start_ns"], e["end_ns"], e["reason"]] for e in p.excluded]
            ),
            "mmstream:location": json.dumps(
                [[o["kind"], o["topic"], o["partition"], o["offset"]] for o in p.outputs]
            ),
        },
        alert: {
            "prov:type": "mmstream:AlertMessage",
            "mmstream:alertId": r["alert_id"],
            "mmstream:revision": r["revision"],
            "mmstream:topic": r["alert_topic"] or "",
            "mmstream:partition": _typed(r["alert_partition"] or 0, "int"),
            "mmstream:offset": _typed(r["alert_offset"] or 0, "long"),
        },
        params: {
            "prov:type": "mmstream:Parameters",
            "prov:value": r["params_json"],
            "mmstream:sha256": r["params_sha256"],
        },
        code: {
            "prov:type": "prov:Plan",
            "mmstream:analysis": f"{r['analysis']}@{r['version']}",
            "mmstream:handlerSha256": r["handler_sha256"],
        },
    }
    for e in p.events:
        entity[_q("event", e["event_id"])] = {
            "prov:type": "mmstream:DetectorEvent",
            "mmstream:detector": e["detector"],
            "mmstream:topic": e["topic"],
            "mmstream:partition": _typed(e["partition"], "int"),
            "mmstream:offset": _typed(e["offset"], "long"),
            "mmstream:time": format_utc(e["time_ns"]),
        }
    for child, parents in p.ancestry.items():
        for eid in (child, *parents):
            entity.setdefault(_q("event", eid), {"prov:type": "mmstream:DetectorEvent"})
    if r["supersedes"]:
        entity.setdefault(_q("result", r["supersedes"]), {"prov:type": "mmstream:Result"})
    conditions = []
    for c in p.conditions:  # each condition value in effect over the window, and when
        cid = _q("condition", f"{c['detector']}/{c['key']}/{c['start_ns']}")
        conditions.append(cid)
        entity[cid] = {
            "prov:type": "mmstream:DetectorCondition",
            "mmstream:detector": c["detector"],
            "mmstream:key": c["key"],
            "mmstream:value": c["value_json"],
            "mmstream:from": format_utc(c["start_ns"]),
            "mmstream:to": format_utc(c["end_ns"]),
        }

    activity_attrs: dict[str, Any] = {
        "prov:type": "mmstream:AnalysisRun",
        "mmstream:host": r["host"],
        "mmstream:cpuSeconds": _typed(r["cpu_s"] or 0.0, "double"),
        "mmstream:peakMemoryBytes": _typed(r["peak_memory_bytes"] or 0, "long"),
    }
    if start := _time(r["started_at"]):
        activity_attrs["prov:startTime"] = start
    if end := _time(r["ended_at"]):
        activity_attrs["prov:endTime"] = end
    if r["error"]:
        activity_attrs["mmstream:error"] = r["error"]

    used: dict[str, dict[str, Any]] = {}
    derived: dict[str, dict[str, Any]] = {}

    def use(entity_id: str) -> None:
        used[f"_:u{len(used)}"] = {"prov:activity": run, "prov:entity": entity_id}

    def derive(generated: str, source: str, kind: str | None = None) -> None:
        rel: dict[str, Any] = {"prov:generatedEntity": generated, "prov:usedEntity": source}
        if kind:
            rel["prov:type"] = kind
        derived[f"_:d{len(derived)}"] = rel

    for inp in (alert, params, *conditions):
        use(inp)
    derive(result, alert)
    for e in p.events:
        use(_q("event", e["event_id"]))
        derive(result, _q("event", e["event_id"]))
    for child, parents in sorted(p.ancestry.items()):
        for parent in parents:
            derive(_q("event", child), _q("event", parent))
    if r["supersedes"]:
        derive(result, _q("result", r["supersedes"]), "prov:Revision")

    return {
        "prefix": {"mmstream": NAMESPACE},
        "entity": entity,
        "activity": {run: activity_attrs},
        "agent": {
            software: {
                "prov:type": "prov:SoftwareAgent",
                "mmstream:version": r["mmstream_version"],
                "mmstream:gitCommit": r["git_commit"] or "unknown",
            },
            instance: {"prov:type": "prov:SoftwareAgent", "mmstream:host": r["host"]},
        },
        "used": used,
        "wasGeneratedBy": {"_:g0": {"prov:entity": result, "prov:activity": run}},
        "wasDerivedFrom": derived,
        "wasAssociatedWith": {
            "_:a0": {"prov:activity": run, "prov:agent": software, "prov:plan": code},
            "_:a1": {"prov:activity": run, "prov:agent": instance},
        },
    }
