"""The commands a new user types, run as subprocesses against a real broker."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mmstream.analyses.registry import Registry
from mmstream.broker import local
from mmstream.broker.local import LocalKafka
from mmstream.errors import BrokerError

pytestmark = pytest.mark.integration


def mmstream(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmstream.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_demo_prints_a_result_naming_the_planted_event(kafka_bootstrap: str) -> None:
    proc = mmstream("demo", "--bootstrap", kafka_bootstrap, "--exit")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    planted = next(w for w in out.split() if w.startswith("icecube-planted-"))
    assert f"lie in the 90% region of the GW alert's multiorder localization: {planted}" in out
    # every analysis a GW alert triggers (the supernova search waits for SNEWS or Super-K)
    lvk = [s for s in Registry.discover() if s.sources is None or "LVK" in s.sources]
    assert len(lvk) == 5 and out.count("[COMPLETED]") == len(lvk)
    # the simulated detector's conditions: its closed shutter is thrown out, with the reason
    assert "excluded: icecube" in out and ": shutter 3 closed" in out
    for header in ("_id:", "mmstream-code: mmstream==", "mmstream-inputs:", "mmstream-window:"):
        assert header in out


def test_broker_commands_start_report_and_stop_by_pid(tmp_path: Path) -> None:
    folder = tmp_path / "broker"
    assert mmstream("broker", "status", "--dir", str(folder)).returncode == 1
    started = mmstream("broker", "start", "--dir", str(folder))
    assert started.returncode == 0, started.stderr
    assert "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:" in started.stdout
    info = LocalKafka(folder).info()
    assert info is not None and Path(f"/proc/{info.pid}").exists()
    status = mmstream("broker", "status", "--dir", str(folder))
    assert status.returncode == 0 and info.bootstrap in status.stdout
    assert "stopped" in mmstream("broker", "stop", "--dir", str(folder)).stdout
    assert LocalKafka(folder).info() is None


def test_a_bad_broker_setting_is_reported_with_kafkas_own_words(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "bad", extra_properties={"num.network.threads": "not-a-number"})
    with pytest.raises(
        BrokerError, match=r"Invalid value not-a-number for configuration num\.network\.threads"
    ):
        broker.start(timeout=60)


def test_a_broker_that_cannot_bind_shows_the_tail_of_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as busy1, socket.socket() as busy2:
        ports = []
        for busy in (busy1, busy2):
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            ports.append(busy.getsockname()[1])
        handed_out = itertools.cycle(ports)
        monkeypatch.setattr(local, "free_port", lambda: next(handed_out))
        with pytest.raises(BrokerError, match="did not start") as excinfo:
            LocalKafka(tmp_path / "busy").start(timeout=60)
    assert "Address already in use" in str(excinfo.value)
    assert LocalKafka(tmp_path / "busy").info() is None


def test_analyses_lists_the_registered_handlers() -> None:
    proc = mmstream("analyses")
    assert proc.returncode == 0
    assert "temporal_coincidence@1.0.0" in proc.stdout
    assert "-500 s .. +500 s" in proc.stdout
