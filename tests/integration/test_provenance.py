"""`mmstream provenance` and `mmstream lineage` answer from the ledger, checked against what
was actually sent through the real broker."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from mmstream import __version__
from mmstream.analyses.registry import Registry, params_sha256
from mmstream.feeders import background_events, igwn_alert, produce_events, produce_heartbeats
from mmstream.formats.headers import headers_dict
from mmstream.ledger.store import Ledger
from mmstream.model import NS_PER_S, DetectorEvent
from mmstream.provenance.headers import git_commit
from mmstream.provenance.report import gather
from mmstream.times import format_utc, now_ns
from tests.integration.harness import read_messages, running_service

pytestmark = pytest.mark.integration


def _mmstream(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmstream.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _events(detector: str, t_alert: int, end: int) -> list[DetectorEvent]:
    """Background, plus a level-4 event in the window derived from a level-2 event (outside
    the window, in the stream earlier) that was itself derived from two raw hits."""
    level2 = DetectorEvent("l2-a", detector, 0, t_alert - 900 * NS_PER_S, 10.0, 10.0, 1.0,
                           derived_from=("raw-1", "raw-2"))  # fmt: skip
    level4 = DetectorEvent("l4-x", detector, 0, t_alert + 3 * NS_PER_S, 10.1, 10.2, 0.5,
                           derived_from=("l2-a",))  # fmt: skip
    base = background_events(detector, end - 1200 * NS_PER_S, end, 0.02, seed=11)
    merged = sorted([*base, level2, level4], key=lambda e: e.time_ns)
    return [dataclasses.replace(e, seq=i) for i, e in enumerate(merged)]


def _await_outputs(ledger: Ledger, rid: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ledger.run(rid)
        if run is not None and run["status"] != "pending" and ledger.outputs(rid):
            return run
        time.sleep(0.2)
    raise AssertionError(f"the ledger never recorded the publication of {rid}")


def test_provenance_answers_match_what_was_sent(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    spec = registry.get("temporal_coincidence")
    with running_service(kafka_bootstrap, registry=registry) as h:
        end = now_ns()
        t_alert = end - 600 * NS_PER_S
        down = (t_alert + 100 * NS_PER_S, t_alert + 220 * NS_PER_S)
        events = _events(h.detector, t_alert, end)
        produce_events(h.producer, h.settings.detector_topic(h.detector), events)
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           end - 1200 * NS_PER_S, end, down=down, reason="power cut")  # fmt: skip
        h.producer.flush(30)
        alert_offset = h.produce(
            h.alert_topic, igwn_alert("S000077p", time_ns=t_alert, ra_deg=10.0, dec_deg=10.0)
        )
        (msg,) = read_messages(h.settings, h.settings.result_topic(spec.name), 1)
        headers = headers_dict(msg.headers())
        rid = str(uuid.UUID(bytes=headers["_id"]))
        url = h.settings.ledger_location()
        assert url is not None
        ledger = Ledger(url)
        run = _await_outputs(ledger, rid)

    # the run: code, parameters, alert position, window
    assert (run["analysis"], run["version"]) == (spec.name, spec.version)
    assert run["params_sha256"] == params_sha256(spec.params_model())
    assert run["params_sha256"] == headers["mmstream-config-sha256"].decode()
    assert run["handler_sha256"] == spec.source_sha256
    assert run["mmstream_version"] == __version__ and run["git_commit"] == git_commit()
    assert (run["alert_topic"], run["alert_partition"], run["alert_offset"]) == (
        h.alert_topic, 0, alert_offset)  # fmt: skip
    window = json.loads(headers["mmstream-window"])
    assert (run["window_start_ns"], run["window_end_ns"]) == (window["start_ns"], window["end_ns"])
    assert run["status"] == "completed" and run["cpu_s"] > 0 and run["peak_memory_bytes"] > 0

    # the events: exactly those in the window, at the offsets they were produced at
    topic = h.settings.detector_topic(h.detector)
    sent = {e.event_id: (i, e.time_ns) for i, e in enumerate(events)}
    in_window = {eid for eid, (_, t) in sent.items() if window["start_ns"] <= t <= window["end_ns"]}
    used = ledger.events(rid)
    assert {e["event_id"] for e in used} == in_window and "l4-x" in in_window
    for e in used:
        assert (e["topic"], e["partition"], e["offset"]) == (topic, 0, sent[e["event_id"]][0])

    # excluded: the power cut, with its reason
    (cut,) = [x for x in ledger.excluded(rid) if "power cut" in x["reason"]]
    assert abs(cut["start_ns"] - down[0]) <= 60 * NS_PER_S
    assert abs(cut["end_ns"] - down[1]) <= 60 * NS_PER_S

    # outputs: where the result actually is
    assert [(o["topic"], o["partition"], o["offset"]) for o in ledger.outputs(rid)] == [
        (msg.topic(), msg.partition(), msg.offset())
    ]

    # lineage, down and up
    found = gather(ledger, rid)
    assert found is not None
    assert {"raw-1", "raw-2"} <= set(found.lowest_events())
    assert "l4-x" not in found.lowest_events() and "l2-a" not in found.lowest_events()

    # the commands, as a user runs them
    text = _mmstream("provenance", rid[:13], "--ledger", url)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert f"{h.alert_topic}[0] offset {alert_offset}" in out
    assert f"archived     {h.settings.archive_dir()}" in out  # where the raw message is kept
    assert f"{topic}[0] offsets" in out
    assert run["params_sha256"] in out and spec.source_sha256 in out
    assert "power cut" in out and format_utc(window["start_ns"]) in out
    assert f"{msg.topic()}[{msg.partition()}] offset {msg.offset()}" in out
    assert re.search(r"l4-x .* derived from l2-a", out)

    for ident in ("raw-1", "l4-x", "S000077p"):
        lineage = _mmstream("lineage", ident, "--ledger", url)
        assert lineage.returncode == 0, lineage.stderr
        assert rid in lineage.stdout and "completed" in lineage.stdout
    unknown = _mmstream("lineage", "raw-999", "--ledger", url)
    assert unknown.returncode == 1 and "nothing in the ledger used" in unknown.stderr

    prov = _mmstream("provenance", rid, "--format", "prov-json", "--ledger", url)
    assert prov.returncode == 0, prov.stderr
    doc = json.loads(prov.stdout)
    check_prov_json(doc)
    derived = {(d["prov:generatedEntity"], d["prov:usedEntity"])
               for d in doc["wasDerivedFrom"].values()}  # fmt: skip
    assert ("mmstream:event/l4-x", "mmstream:event/l2-a") in derived
    assert ("mmstream:event/l2-a", "mmstream:event/raw-1") in derived


RELATION_ENDPOINTS = {
    "used": {"prov:activity": "activity", "prov:entity": "entity"},
    "wasGeneratedBy": {"prov:entity": "entity", "prov:activity": "activity"},
    "wasDerivedFrom": {"prov:generatedEntity": "entity", "prov:usedEntity": "entity"},
    "wasAssociatedWith": {
        "prov:activity": "activity",
        "prov:agent": "agent",
        "prov:plan": "entity",
    },
}


def check_prov_json(doc: dict[str, Any]) -> None:
    """The structural rules of PROV-JSON (W3C member submission), then a full parse by the
    ``prov`` library, which rejects what does not map onto the PROV data model."""
    allowed = {"prefix", "entity", "activity", "agent", *RELATION_ENDPOINTS}
    assert set(doc) <= allowed, set(doc) - allowed
    prefixes = {"prov", "xsd", *doc["prefix"]}

    def qualified(name: str) -> None:
        prefix, sep, _ = name.partition(":")
        assert sep and prefix in prefixes, f"{name!r} is not a qualified name with a known prefix"

    for kind in ("entity", "activity", "agent"):
        for ident, attrs in doc.get(kind, {}).items():
            qualified(ident)
            for key, value in attrs.items():
                qualified(key)
                if isinstance(value, dict):
                    assert set(value) == {"$", "type"}, value
                    qualified(value["type"])
    for relation, ends in RELATION_ENDPOINTS.items():
        for ident, attrs in doc.get(relation, {}).items():
            assert ident.startswith("_:") or ":" in ident
            for key, kind in ends.items():
                if key in attrs:
                    assert attrs[key] in doc[kind], f"{relation} {key} -> undeclared {attrs[key]}"
    for activity in doc["activity"].values():
        for key in ("prov:startTime", "prov:endTime"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", activity[key])

    from prov.model import ProvDocument

    parsed = ProvDocument.deserialize(content=json.dumps(doc), format="json")
    assert len(parsed.get_records()) == sum(len(doc.get(k, {})) for k in allowed - {"prefix"})
