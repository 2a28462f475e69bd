"""Shared fixtures. The broker is a real Apache Kafka, never a fake.

Which broker, by $MMSTREAM_TEST_KAFKA:
- ``local`` (default): the project's own KRaft node from Maven Central jars, in a temporary
  folder on free ports, started once per session and stopped by its PID at the end;
- ``testcontainers``: testcontainers' Kafka module, where a Docker engine answers;
- ``external``: the broker at $KAFKA_BOOTSTRAP_SERVERS.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true a skipped test is a failed one: CI installs everything every test needs
    (sample data, reference packages, PostgreSQL, chromium), so a skip means a missing step."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """The same for a whole module skipped at import (``pytest.importorskip``)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") and report.outcome == "skipped":
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Services started by tests (threads and subprocesses) keep their ledger and archive out
    of $HOME, and their HTTP servers off the default port."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MMSTREAM_DATA_DIR", str(tmp_path_factory.mktemp("mmstream-data")))
    mp.setenv("MMSTREAM_HTTP_PORT", "0")  # any free port: many services run side by side
    yield
    mp.undo()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public alert samples beside the project; tests using them skip where absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public alert samples not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    kind = os.environ.get("MMSTREAM_TEST_KAFKA", "local")
    if kind == "external":
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif kind == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
            _release_clients()
    else:
        from mmstream.broker.local import LocalKafka

        broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
        info = broker.start()
        print(
            f"\nlocal Kafka {info.kafka_version} at {info.bootstrap}, "
            f"ready in {info.startup_seconds:.1f} s"
        )
        try:
            yield info.bootstrap
        finally:
            _release_clients()
            broker.stop()


def _release_clients() -> None:
    """Destroy the Kafka clients nobody holds any more before their broker stops. A service
    run in a thread (tests/integration/harness.py) lives in reference cycles (the HTTP
    server's handler class refers to the server, which refers to the service and its
    clients), so its admin client and producers go only when the cycle collector runs; the
    last ones, left for the interpreter's exit, printed librdkafka "Connection refused" lines
    after the test summary."""
    gc.collect()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server started for this test run (skipped where not installed,
    except in CI, where scripts/test installs it and its absence is a failure)."""
    from tests.postgres import postgres_bindir, postgres_server

    if postgres_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (scripts/test installs it as root)")
        pytest.skip("PostgreSQL not installed (Debian package postgresql)")
    with postgres_server() as url:
        yield url
