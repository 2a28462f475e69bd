"""Replay and diff on the real broker: a day of recorded traffic replays to byte-identical
result payloads, from Kafka and (after the topics are deleted) from the raw archive; a
changed parameter shows up in `mmstream diff` as exactly the statistics it changed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from mmstream.analyses.registry import Registry
from mmstream.config import Settings
from mmstream.feeders import background_events, igwn_alert, produce_events, produce_heartbeats
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.times import format_utc, now_ns
from tests.integration.harness import read_messages, read_to_end, running_service

pytestmark = pytest.mark.integration

ANALYSES = ("temporal_coincidence", "spacetime_coincidence")
DAY_S = 86_400


def _mmstream(*args: str) -> subprocess.CompletedProcess[str]:
    # the config file names the data directory; the suite's MMSTREAM_DATA_DIR would win
    env = {k: v for k, v in os.environ.items() if k != "MMSTREAM_DATA_DIR"}
    return subprocess.run([sys.executable, "-m", "mmstream.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=env)  # fmt: skip


def _config(path: Path, s: Settings, params: dict[str, dict[str, Any]] | None = None) -> Path:
    """The live settings as a TOML file, as a user would have them."""
    lines = [
        f'alert_topics = ["{s.alert_topics[0]}"]',
        f'detectors = ["{s.detectors[0]}"]',
        f'result_topic_prefix = "{s.result_topic_prefix}"',
        f'notice_topic_prefix = "{s.notice_topic_prefix}"',
        f'deadletter_topic = "{s.deadletter_topic}"',
        f'data_dir = "{s.data_dir}"',
        f"lookback_s = {s.lookback_s}",
        "[kafka]",
        f'"bootstrap.servers" = "{s.kafka["bootstrap.servers"]}"',
    ]
    for spec in Registry.discover():
        lines.append(f"[analyses.{spec.name}]")
        lines.append(f"enabled = {'true' if spec.name in ANALYSES else 'false'}")
        if spec.name in (params or {}):
            lines.append("[analyses." + spec.name + ".params]")
            lines += [f"{k} = {v!r}" for k, v in (params or {})[spec.name].items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _payloads(settings: Settings, topics: list[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for topic in topics:
        for msg in read_to_end(settings, topic):
            headers = dict(msg.headers() or [])
            if headers.get("_format") == b"avro":
                rid = decode_result(msg.value())["result_id"]
                assert rid not in out, f"result {rid} twice"
                out[rid] = msg.value()
    return out


def _same_payloads(replayed: dict[str, bytes], live: dict[str, bytes]) -> None:
    def what(value: bytes) -> tuple[str, str, str, str]:
        r = decode_result(value)
        return r["analysis"], r["alert"]["alert_id"], r["alert"]["revision"], r["status"]

    extra = sorted(what(v) for k, v in replayed.items() if k not in live)
    missing = sorted(what(v) for k, v in live.items() if k not in replayed)
    assert (extra, missing) == ([], []), f"replay made {extra}, not {missing}"
    for rid, value in live.items():
        assert replayed[rid] == value, (
            f"{rid}: {decode_result(replayed[rid])} != {decode_result(value)}"
        )


def _recreate_empty(bootstrap: str, topics: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.delete_topics(topics, operation_timeout=30).values():
        f.result()
    deadline = time.monotonic() + 60
    while set(topics) & set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, "topics not deleted"
        time.sleep(0.5)
    while True:
        futures = admin.create_topics([NewTopic(t, 1, 1) for t in topics])
        try:
            for f in futures.values():
                f.result()
            return
        except Exception:  # deletion still settling on the controller
            assert time.monotonic() < deadline, "topics not re-created"
            time.sleep(0.5)


def test_replay_reproduces_results_and_diff_shows_a_changed_parameter(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    registry = Registry([Registry.discover().get(n) for n in ANALYSES])
    t_from = format_utc(now_ns() - 60 * NS_PER_S)
    with running_service(kafka_bootstrap, registry=registry, lookback_s=2 * DAY_S) as h:
        s = h.settings
        end = now_ns()
        start = end - DAY_S * NS_PER_S
        events = background_events(h.detector, start, end, 0.01, seed=3)
        produce_events(h.producer, s.detector_topic(h.detector), events)
        produce_heartbeats(h.producer, s.status_topic(h.detector), h.detector, start, end,
                           every_s=300, down=(end - 9 * 3600 * NS_PER_S, end - 8 * 3600 * NS_PER_S),
                           reason="power cut")  # fmt: skip
        h.producer.flush(30)
        created = end - 5 * NS_PER_S
        for i in range(8):
            t = start + (i * 3 + 1) * 3600 * NS_PER_S
            h.produce(h.alert_topic, igwn_alert(f"S{i:05d}r", time_ns=t, ra_deg=20.0 * i,
                      dec_deg=-30.0 + 8 * i, created_ns=created))  # fmt: skip
        # an UPDATE of the first alert: its results supersede the first ones
        h.produce(h.alert_topic, igwn_alert("S00000r", time_ns=start + 3600 * NS_PER_S,
                  ra_deg=5.0, dec_deg=-25.0, alert_type="UPDATE", created_ns=created + 1))  # fmt: skip
        live_topics = [s.result_topic(n) for n in ANALYSES]
        for topic in live_topics:
            read_messages(s, topic, 9, timeout=90)
    live = _payloads(s, live_topics)
    assert len(live) == 18
    t_to = format_utc(now_ns())
    cfg = _config(tmp_path / "live.toml", s)

    # 1. Replay from Kafka with the same code and parameters: the same bytes.
    same = f"sandbox.same.{s.instance}"
    out = _mmstream("replay", "--from", t_from, "--to", t_to, "--to-topic", same,
                    "--config", str(cfg))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "replayed 9 alerts" in out.stdout and "[replay] alerts" in out.stderr
    _same_payloads(_payloads(s, [same]), live)
    diff = _mmstream("diff", f"{s.result_topic_prefix}*", same, "--config", str(cfg))
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "0 added, 0 removed, 0 changed, 18 unchanged" in diff.stdout

    # 2. One changed parameter: diff lists exactly the statistics it moved.
    changed_cfg = _config(tmp_path / "changed.toml", s,
                          {"temporal_coincidence": {"background_rate_hz": 0.01}})  # fmt: skip
    changed = f"sandbox.changed.{s.instance}"
    out = _mmstream("replay", "--from", t_from, "--to", t_to, "--to-topic", changed,
                    "--analysis", "temporal_coincidence@1.0.0", "--config", str(changed_cfg))  # fmt: skip
    assert out.returncode == 0, out.stderr
    diff = _mmstream("diff", s.result_topic("temporal_coincidence"), changed, "--config", str(cfg))
    assert diff.returncode == 1, diff.stderr
    moved = sorted(line.split(": ", 1)[1].split(" ", 1)[0]
                   for line in diff.stdout.splitlines() if line.startswith("~ "))  # fmt: skip
    expected = []
    by_id = {
        decode_result(v)["result_id"]: decode_result(v) for v in _payloads(s, [changed]).values()
    }
    for rid, value in live.items():
        before = decode_result(value)
        if before["analysis"] != "temporal_coincidence":
            continue
        after = by_id[rid]
        expected.append("parameters_json")
        expected += [f"statistics.{k}" for k in set(before["statistics"]) | set(after["statistics"])
                     if before["statistics"].get(k) != after["statistics"].get(k)]  # fmt: skip
    assert moved == sorted(expected)
    assert moved.count("statistics.p_value") == 9 and "statistics.n_events" not in moved
    assert "0 added, 0 removed, 9 changed, 0 unchanged" in diff.stdout

    # 3. The archive: readable without mmstream, checksummed, and enough to replay from
    #    after the input topics are deleted and re-created empty.
    files = sorted(Path(s.archive_dir()).rglob("*.avro"))
    assert files, "nothing archived"
    for f in files:
        digest, name = f.with_name(f.name + ".sha256").read_text().split()
        assert (name, digest) == (f.name, hashlib.sha256(f.read_bytes()).hexdigest())
    archived = []
    for f in (f for f in files if f.parent.name == s.alert_topics[0]):
        with f.open("rb") as fh:
            archived += list(fastavro.reader(fh))
    assert sorted(o for r in archived for o in r["offset"]) == list(range(9))  # batch records
    inputs = [s.alert_topics[0], s.detector_topic(h.detector), s.status_topic(h.detector)]
    _recreate_empty(kafka_bootstrap, inputs)
    from_archive = f"sandbox.archive.{s.instance}"
    out = _mmstream("replay", "--from", t_from, "--to", t_to, "--to-topic", from_archive,
                    "--source", "archive", "--config", str(cfg))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "replayed 9 alerts" in out.stdout, out.stdout + out.stderr
    _same_payloads(_payloads(s, [from_archive]), live)
