"""A detector's own fields and conditions on the real broker: a shutter closed for 120 s
inside the window is excluded with the rule's reason, a calibration change mid-window shows
on each reported event as the one in effect at its time, the provenance command says it all,
and a replay of the same day gives byte-identical results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from mmstream.analyses.registry import Registry
from mmstream.config import Settings
from mmstream.feeders import (
    Injection,
    background_events,
    igwn_alert,
    produce_context,
    produce_events,
    produce_heartbeats,
    simulated_schema,
    with_fields,
    with_injections,
)
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.times import format_utc, now_ns
from tests.integration.harness import read_messages, read_to_end, running_service

pytestmark = pytest.mark.integration

ANALYSES = ("temporal_coincidence", "signalness_weighted")
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "detectors"
RULE = {"key": "shutter.3", "equals": "closed", "reason": "shutter 3 closed"}


def _mmstream(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MMSTREAM_DATA_DIR"}
    return subprocess.run([sys.executable, "-m", "mmstream.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=env)  # fmt: skip


def _config(path: Path, s: Settings) -> Path:
    """The live settings as a TOML file, as a user would write them."""
    d = s.detectors[0]
    lines = [
        f'alert_topics = ["{s.alert_topics[0]}"]',
        f'detectors = ["{d}"]',
        f'result_topic_prefix = "{s.result_topic_prefix}"',
        f'notice_topic_prefix = "{s.notice_topic_prefix}"',
        f'deadletter_topic = "{s.deadletter_topic}"',
        f'data_dir = "{s.data_dir}"',
        "[kafka]",
        f'"bootstrap.servers" = "{s.kafka["bootstrap.servers"]}"',
        "[detector_schemas]",
        f'{d} = ["{SCHEMAS / "simulated.avsc"}", "{SCHEMAS / "history" / "simulated.v1.avsc"}"]',
        "[[context_rules]]",
        *(f"{k} = {json.dumps(v)}" for k, v in RULE.items()),
    ]
    for name in sorted({x.name for x in Registry.discover()}):
        lines += [f"[analyses.{name}]", f"enabled = {'true' if name in ANALYSES else 'false'}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_conditions_exclude_time_and_travel_with_events(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from tests.detector_fields_analysis import signalness_weighted

    registry = Registry([Registry.discover().get("temporal_coincidence"), signalness_weighted])
    t_from = format_utc(now_ns() - 60 * NS_PER_S)
    detector = f"det{uuid.uuid4().hex[:8]}"
    paths = [SCHEMAS / "simulated.avsc", SCHEMAS / "history" / "simulated.v1.avsc"]
    with running_service(kafka_bootstrap, registry=registry, detectors=(detector,),
                         detector_schemas={detector: paths}, context_rules=[RULE]) as h:  # fmt: skip
        s = h.settings
        end = now_ns()
        t_alert = end - 700 * NS_PER_S
        start = end - 1800 * NS_PER_S
        planted = Injection(t_alert + 150 * NS_PER_S, 30.0, -10.0, 0.5, "planted-cal-b")
        events = with_fields(with_injections(detector, background_events(
            detector, start, end, 0.05, seed=17), [planted]), seed=17)  # fmt: skip
        produce_events(h.producer, s.detector_topic(detector), events, simulated_schema())
        shutter_closed = (t_alert - 200 * NS_PER_S, t_alert - 80 * NS_PER_S)  # 120 s
        calibration_b = t_alert + 100 * NS_PER_S
        produce_context(h.producer, s.topics().context(detector), detector, [
            (start - 86_400 * NS_PER_S, "calibration", "cal-A"),  # set a day before: known
            (start - 86_400 * NS_PER_S, "shutter.3", "open"),
            (shutter_closed[0], "shutter.3", "closed"),
            (shutter_closed[1], "shutter.3", "open"),
            (calibration_b, "calibration", "cal-B"),
        ])  # fmt: skip
        produce_heartbeats(h.producer, s.status_topic(detector), detector, start, end)
        h.producer.flush(30)
        h.produce(h.alert_topic, igwn_alert("S26120cc", time_ns=t_alert, ra_deg=30.0,
                                            dec_deg=-10.0))  # fmt: skip
        (msg,) = read_messages(s, s.result_topic("temporal_coincidence"), 1, timeout=90)
        read_messages(s, s.result_topic("signalness_weighted"), 1, timeout=90)
    rec = decode_result(msg.value())
    # exactly the shutter's 120 s are thrown out, with the rule's reason
    assert [(e["start_ns"], e["end_ns"], e["reason"]) for e in rec["excluded"]] == [
        (*shutter_closed, "shutter 3 closed")
    ]
    assert rec["window"]["livetime_fraction"] == pytest.approx(880 / 1000, abs=1e-5)
    # each event carries its own fields and the calibration in effect at its own time
    assert rec["events"], "the window has events"
    for e in rec["events"]:
        cond = json.loads(e["conditions_json"])
        assert cond["calibration"] == ("cal-B" if e["time_ns"] >= calibration_b else "cal-A")
        assert cond["shutter.3"] == ("closed" if shutter_closed[0] <= e["time_ns"]
                                     < shutter_closed[1] else "open")  # fmt: skip
        assert 0 <= json.loads(e["fields_json"])["signalness"] <= 1
    planted_rec = next(e for e in rec["events"] if e["event_id"] == "planted-cal-b")
    assert json.loads(planted_rec["fields_json"])["signalness"] == 0.9
    # the whole window's conditions, in the payload and (values and seconds) in a header
    cal = json.loads(rec["conditions_json"])[detector]["calibration"]
    assert [c[2] for c in cal] == ["cal-A", "cal-B"] and cal[0][1] == calibration_b
    header = json.loads(headers_dict(msg.headers())["mmstream-conditions"])[detector]
    # (the window is around the alert time as the packet carries it, to the millisecond)
    assert {v: pytest.approx(s, abs=1e-3) for v, s in header["calibration"]} == {
        "cal-A": 600.0,
        "cal-B": 400.0,
    }
    assert {v: pytest.approx(s, abs=1e-3) for v, s in header["shutter.3"]} == {
        "closed": 120.0,
        "open": 880.0,
    }

    # One command answers: which calibration, geometry, shutter states, and what was thrown out
    cfg = _config(tmp_path / "live.toml", s)
    report = _mmstream("provenance", rec["result_id"], "--config", str(cfg))
    assert report.returncode == 0, report.stderr
    text = report.stdout
    assert "shutter 3 closed" in text and '"cal-A"' in text and '"cal-B"' in text
    assert "(120 s)" in text and f"{detector} calibration:" in text

    # The lineage of an event reaches the results that used it and the conditions in effect
    lineage = _mmstream("lineage", "planted-cal-b", "--config", str(cfg))
    assert lineage.returncode == 0, lineage.stderr
    assert rec["result_id"] in lineage.stdout
    assert f'conditions: {detector} calibration = "cal-A", "cal-B"' in lineage.stdout

    # A replay of the same day: the same bytes
    sandbox = f"sandbox.conditions.{s.instance}"
    out = _mmstream("replay", "--from", t_from, "--to", format_utc(now_ns()), "--to-topic",
                    sandbox, "--config", str(cfg), "--module",
                    "tests.detector_fields_analysis")  # fmt: skip
    assert out.returncode == 0, out.stderr
    replayed: dict[str, Any] = {}
    for m in read_to_end(s, sandbox):
        if headers_dict(m.headers()).get("_format") == b"avro":
            replayed[decode_result(m.value())["result_id"]] = m.value()
    assert replayed[rec["result_id"]] == msg.value()
