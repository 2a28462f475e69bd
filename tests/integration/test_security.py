"""Secure connection settings against a local broker with a SASL/SCRAM listener: the right
credentials connect and work end to end, wrong ones fail at once with a clear error, and no
password ever reaches the logs."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmstream.analyses.registry import Registry
from mmstream.broker.local import LocalKafka
from mmstream.errors import ConfigError
from mmstream.feeders import igwn_alert, produce_heartbeat
from mmstream.model import NS_PER_S
from mmstream.stream.connection import check_connection
from mmstream.times import now_ns
from tests.integration.harness import read_messages, running_service, start_mmstream, stop_process

pytestmark = pytest.mark.integration

USER, PASSWORD = "alice", "alice-Secret-4711"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(tmp_path_factory.mktemp("scram-kafka"), scram_users={USER: PASSWORD})
    broker.start()
    try:
        yield broker
    finally:
        gc.collect()  # its services' clients first (see _release_clients in tests/conftest.py)
        broker.stop()


def _sasl(broker: LocalKafka, password: str) -> dict[str, str]:
    return {
        "bootstrap.servers": f"127.0.0.1:{broker.sasl_port}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": USER,
        "sasl.password": password,
    }


def _env(broker: LocalKafka, password: str) -> dict[str, str]:
    """The same settings the way a deployment gives them: KAFKA_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    for key, value in _sasl(broker, password).items():
        env["KAFKA_" + key.upper().replace(".", "_")] = value
    return env | {"PYTHONUNBUFFERED": "1"}


def test_right_credentials_carry_an_alert_to_its_result(scram_broker: LocalKafka) -> None:
    check_connection(_sasl(scram_broker, PASSWORD), timeout=20)
    registry = Registry([Registry.discover().get("temporal_coincidence")])
    with running_service(scram_broker.info().bootstrap, registry=registry,  # type: ignore[union-attr]
                         kafka=_sasl(scram_broker, PASSWORD)) as h:  # fmt: skip
        t = now_ns() - 600 * NS_PER_S
        produce_heartbeat(h.producer, h.settings.status_topic(h.detector), h.detector, now_ns())
        h.produce(h.alert_topic, igwn_alert("S00001s", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        # read back through the SASL listener too
        (msg,) = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 1)
        assert msg.key() == b"S00001s"


def test_wrong_credentials_fail_fast_and_clearly(scram_broker: LocalKafka) -> None:
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="rejected the credentials") as err:
        check_connection(_sasl(scram_broker, "not-the-password"), timeout=30)
    assert time.monotonic() - t0 < 25
    assert "SCRAM-SHA-256 as alice" in str(err.value) and "not-the-password" not in str(err.value)


def test_the_command_with_wrong_credentials_exits_with_the_reason(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    out = subprocess.run([sys.executable, "-m", "mmstream.cli", "run"],
                         env=_env(scram_broker, "wrong-Password-99"), capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert "cannot connect to Kafka" in out.stderr and "rejected the credentials" in out.stderr
    assert "wrong-Password-99" not in out.stderr + out.stdout


def test_no_password_in_the_logs(scram_broker: LocalKafka, tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    proc = start_mmstream("run", log=log, env=_env(scram_broker, PASSWORD))
    try:
        deadline = time.monotonic() + 90
        while not log.exists() or b"service started" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
    finally:
        stop_process(proc)
    text = log.read_text()
    assert '"sasl.password": "***"' in text  # the settings are logged, masked
    assert PASSWORD not in text
