"""Every job's state and every run's cost, as an operator asks for them: `mmstream jobs`, the
statistics topic against the ledger, the console's pages, and a dead letter downloaded
byte-exact and requeued after its route is fixed."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from mmstream.analyses import AnalysisInput, Outcome, analysis
from mmstream.analyses.registry import Registry
from mmstream.feeders import igwn_alert, produce_heartbeat
from mmstream.formats.results import decode_result
from mmstream.formats.run_stats import decode_run_stats
from mmstream.ledger.jobs import history, stats
from mmstream.ledger.store import Ledger
from mmstream.model import NS_PER_S
from mmstream.times import now_ns
from tests.integration.harness import (
    Harness,
    read_messages,
    read_to_end,
    running_service,
    wait_until,
)

pytestmark = pytest.mark.integration


@analysis(name="console_raises", version="0.0.1", window=(-10, 10))
def console_raises(inp: AnalysisInput) -> Outcome:
    """A handler with a bug."""
    raise ZeroDivisionError(f"no events to divide by in {inp.alert.alert_id}")


def _mmstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmstream.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})  # fmt: skip


def _get(h: Harness, path: str) -> bytes:
    assert h.service.http is not None
    with urllib.request.urlopen(h.service.http.address + path.lstrip("/"), timeout=30) as r:
        return bytes(r.read())


def _jobs(url: str, *args: str) -> list[dict[str, Any]]:
    out = _mmstream("jobs", "--ledger", url, "--format", "json", *args)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def test_a_job_waits_for_a_late_detector_then_publishes_and_a_failure_shows_its_error(
    kafka_bootstrap: str,
) -> None:
    registry = Registry([console_raises, Registry.discover().get("temporal_coincidence")])
    stats_topic = f"mmstream.stats.test{uuid.uuid4().hex[:8]}"
    with running_service(kafka_bootstrap, registry=registry, http_port=0,
                         stats_topic=stats_topic) as h:  # fmt: skip
        url = h.settings.ledger_location()
        assert url is not None
        t = now_ns() - 900 * NS_PER_S  # the window has closed; the detector has sent nothing
        h.produce(h.alert_topic, igwn_alert("S000070a", time_ns=t, ra_deg=1.0, dec_deg=2.0))

        def waiting() -> list[dict[str, Any]]:
            return _jobs(url, "--state", "waiting", "--alert", "S000070a")

        wait_until(lambda: len(waiting()) == 2, "both jobs waiting")
        seen_waiting = time.monotonic()
        for job in waiting():
            assert job["waiting_for"] == h.detector
            assert "detector data past" in job["detail"] and h.detector in job["detail"]
            assert "none yet" in job["detail"] and "at the latest" in job["detail"]
            assert [s["state"] for s in job["history"]] == ["received", "waiting"]
        page = _get(h, "/jobs").decode()
        assert "Waiting and running (2)" in page and h.detector in page
        text = _mmstream("jobs", "--ledger", url, "--state", "waiting")
        assert "S000070a" in text.stdout and h.detector in text.stdout

        time.sleep(1.0)  # the queue wait measured below must include this
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        released = time.monotonic()
        results = [decode_result(m.value()) for name in ("temporal_coincidence", "console_raises")
                   for m in read_messages(h.settings, h.settings.result_topic(name), 1)]  # fmt: skip
        assert [r["status"] for r in results] == ["COMPLETED", "FAILED"]
        records = [decode_run_stats(m.value()) for m in read_messages(h.settings, stats_topic, 2)]

        wait_until(lambda: len(stats(Ledger(url))) == 2, "both runs' statistics in the ledger")
        done = {j["analysis"].split("@")[0]: j for j in _jobs(url, "--alert", "S000070a")}
        assert done["temporal_coincidence"]["state"] == "published"
        states = [s["state"] for s in history(Ledger(url), done["temporal_coincidence"]["job_id"])]
        # (a job may be told "waiting" again when what it waits for changes)
        assert [k for k, _ in itertools.groupby(states)] == [
            "received", "waiting", "running", "published"]  # fmt: skip
        failed = done["console_raises"]
        assert failed["state"] == "failed"
        assert "ZeroDivisionError: no events to divide by in S000070a" in failed["detail"]
        assert _jobs(url, "--state", "failed")[0]["job_id"] == failed["job_id"]
        page = _get(h, "/jobs").decode()
        assert "Failures (1)" in page and "ZeroDivisionError" in page

        # one statistics record per published result, with the ledger's values
        assert sorted(r["result_id"] for r in records) == sorted(r["result_id"] for r in results)
        kept = {r["result_id"]: r for r in stats(Ledger(url))}
        for rec in records:
            row = kept[rec["result_id"]]
            assert {k: row[k] for k in rec} == rec
            assert row["stats_topic"] == stats_topic and row["transaction_s"] > 0
            # arrival <= job made <= run start <= outcome <= sent; the job waited >= 1 s
            assert rec["queue_wait_s"] >= released - seen_waiting
            assert rec["alert_to_result_s"] >= rec["queue_wait_s"] + rec["wall_s"]
            assert rec["decode_s"] > 0 and rec["events_read"] == 0
        summary = _mmstream("stats", "--ledger", url, "--format", "json")
        assert json.loads(summary.stdout)["temporal_coincidence"]["runs"] == 1
        assert "temporal_coincidence" in _get(h, "/latency").decode()
        assert _get(h, "/plot/latency.png").startswith(b"\x89PNG")


def _topics(tag: str, data_dir: Path, **extra: Any) -> dict[str, Any]:
    """The same topics, group and ledger for two services one after the other."""
    return {"instance": f"test-{tag}", "group_id": f"mmstream-test-{tag}",
            "alert_topics": (f"igwn.gwalert.test{tag}",), "detectors": (f"det{tag}",),
            "result_topic_prefix": f"mmstream.results.test{tag}.",
            "notice_topic_prefix": f"mmstream.notices.test{tag}.",
            "deadletter_topic": f"mmstream.deadletter.test{tag}",
            "stats_topic": f"mmstream.stats.test{tag}", "data_dir": data_dir, "http_port": 0,
            **extra}  # fmt: skip


def test_a_dead_letter_is_downloaded_byte_exact_and_requeued_once_its_route_is_fixed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    tag = uuid.uuid4().hex[:8]
    t = now_ns() - 900 * NS_PER_S
    alert = igwn_alert("S000071b", time_ns=t, ra_deg=1.0, dec_deg=2.0)
    wrong = {"igwn.gwalert": "voevent"}  # a route that sends LVK's Avro to the XML decoder
    with running_service(kafka_bootstrap, registry=registry,
                         **_topics(tag, tmp_path, routes=wrong)) as h:  # fmt: skip
        offset = h.produce(h.alert_topic, alert)
        (dead,) = read_messages(h.settings, h.settings.deadletter_topic, 1)
        assert dead.value() == alert
        page = _get(h, "/deadletters").decode()
        assert f"{dead.partition()}@{dead.offset()}" in page and "requeue" in page
        assert _get(h, f"/deadletter/{dead.partition()}/{dead.offset()}") == alert
        assert h.committed(h.alert_topic) == offset + 1  # the service moved past it
        with pytest.raises(urllib.error.HTTPError) as missing:  # past the end: no wait for it
            _get(h, "/deadletter/0/999999")
        assert missing.value.code == 404

    env = {"MMSTREAM_DEADLETTER_TOPIC": f"mmstream.deadletter.test{tag}"}
    where = ["--bootstrap", kafka_bootstrap, "--offset", str(dead.offset())]
    got = _mmstream("deadletter", "get", *where, "--output", str(tmp_path / "original"), env=env)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "original").read_bytes() == alert
    listed = _mmstream("deadletter", "list", "--bootstrap", kafka_bootstrap, env=env)
    assert "decode" in listed.stdout and f"igwn.gwalert.test{tag}[0]@{offset}" in listed.stdout

    with running_service(kafka_bootstrap, registry=registry, **_topics(tag, tmp_path)) as h:
        for _ in range(2):  # twice by mistake: still one result
            out = _mmstream("deadletter", "requeue", *where, env=env)
            assert out.returncode == 0, out.stderr
            assert f"as igwn.gwalert.test{tag}[0]@" in out.stdout
        sentinel = igwn_alert("S000072c", time_ns=t, ra_deg=1.0, dec_deg=2.0)
        h.produce(h.alert_topic, sentinel)  # read after both copies: a barrier
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        topic = h.settings.result_topic("temporal_coincidence")
        assert read_messages(h.settings, topic, 1, key=b"S000072c")  # the barrier's result
        ids = [
            decode_result(m.value())["alert"]["alert_id"] for m in read_to_end(h.settings, topic)
        ]
        assert ids == ["S000071b", "S000072c"]
