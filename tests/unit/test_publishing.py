"""The transactional publishing state machine, driven by a producer that fails the way
librdkafka does (with its real KafkaError objects): abort and retry, an abort that must be
resumed, a fatal error that replaces the producer, a dead letter too large for its topic,
and the health check of a queue that stays stuck. No broker: only the error paths matter."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from mmstream.analyses.registry import Registry
from mmstream.config import load_settings
from mmstream.stream.service import Service

ABORTABLE = KafkaError(KafkaError._TIMED_OUT, "commit timed out", retriable=False,
                       txn_requires_abort=True)  # fmt: skip
FATAL = KafkaError(KafkaError._FENCED, "producer fenced", fatal=True)
TIMED_OUT = KafkaError(KafkaError._TIMED_OUT, "abort timed out", retriable=True)
TOO_LARGE = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large",
                       txn_requires_abort=True)  # fmt: skip


class FakeProducer:
    """Records calls; ``fail[call]`` lists errors to raise on that call's next uses."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: dict[str, list[KafkaError]] = {}
        self.open: list[tuple[str, bytes | None]] = []  # produced in the open transaction
        self.committed: list[tuple[str, bytes | None]] = []
        self._reports: list[Callable[[], None]] = []

    def _maybe_fail(self, call: str) -> None:
        self.calls.append(call)
        if self.fail.get(call):
            raise KafkaException(self.fail[call].pop(0))

    def init_transactions(self, timeout: float) -> None:
        self._maybe_fail("init_transactions")

    def begin_transaction(self) -> None:
        self._maybe_fail("begin_transaction")
        self.open = []

    def produce(self, topic: str, value: bytes | None = None, key: Any = None,
                headers: Any = None, on_delivery: Any = None) -> None:  # fmt: skip
        self._maybe_fail("produce")
        self.open.append((topic, value))

        class Msg:
            def topic(self) -> str:
                return topic

            def partition(self) -> int:
                return 0

            def offset(self) -> int:
                return len(self_.committed)

        self_ = self
        if on_delivery is not None:
            self._reports.append(lambda: on_delivery(None, Msg()))

    def send_offsets_to_transaction(self, offsets: Any, group: Any, timeout: float) -> None:
        self._maybe_fail("send_offsets_to_transaction")

    def commit_transaction(self, timeout: float) -> None:
        self._maybe_fail("commit_transaction")
        self.committed += self.open
        self.open = []

    def abort_transaction(self, timeout: float) -> None:
        self._maybe_fail("abort_transaction")
        self.open = []
        self._reports = []

    def poll(self, timeout: float = 0) -> int:
        reports, self._reports = self._reports, []
        for report in reports:
            report()
        return len(reports)

    def flush(self, timeout: float = 0) -> int:
        return 0

    def purge(self) -> None:
        self.open = []


class FakeConsumer:
    def consumer_group_metadata(self) -> object:
        return object()


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    settings = load_settings(kafka={"bootstrap.servers": "unused:9092"}, ledger=False,
                             archive=False, http_port=None, data_dir=tmp_path,
                             stall_limit_s=1.0)  # fmt: skip
    svc = Service(settings, Registry([]))
    producers: list[FakeProducer] = []

    def new_producer() -> FakeProducer:
        producers.append(FakeProducer())
        return producers[-1]

    monkeypatch.setattr(svc, "_transactional_producer", new_producer)
    svc.producer = new_producer()  # type: ignore[assignment]
    svc.alert_consumer = FakeConsumer()  # type: ignore[assignment]
    svc.producers = producers  # type: ignore[attr-defined]
    return svc


def _queue(svc: Service, offset: int, topic: str = "mmstream.results.x") -> None:
    svc.offsets.begin("alerts", 0, offset)
    svc._transact([(topic, "key", f"result {offset}".encode(), [("_id", bytes(16))])],
                  "alerts", 0, offset=offset)  # fmt: skip


def _retry_now(svc: Service) -> None:
    svc._outbox_retry_at = 0.0
    svc._flush_outbox()


def test_an_abortable_commit_error_aborts_and_the_retry_publishes_once(service: Service) -> None:
    fake = service.producer
    fake.fail["commit_transaction"] = [ABORTABLE]  # type: ignore[attr-defined]
    _queue(service, 0)
    assert fake.calls[-1] == "abort_transaction" and len(service.outbox) == 1  # type: ignore[attr-defined]
    assert service.offsets.committable("alerts", 0) == 0, "the offset did not move past it"
    _retry_now(service)
    assert service.outbox == []
    assert fake.committed == [("mmstream.results.x", b"result 0")]  # type: ignore[attr-defined]
    assert service.offsets.committable("alerts", 0) == 1


def test_an_abort_that_times_out_is_resumed_before_anything_else(service: Service) -> None:
    fake = service.producer
    fake.fail["commit_transaction"] = [ABORTABLE]  # type: ignore[attr-defined]
    fake.fail["abort_transaction"] = [TIMED_OUT]  # type: ignore[attr-defined]
    _queue(service, 0)
    assert service._abort_pending
    fake.calls.clear()  # type: ignore[attr-defined]
    _retry_now(service)
    assert fake.calls[:2] == ["abort_transaction", "begin_transaction"]  # type: ignore[attr-defined]
    assert not service._abort_pending and service.outbox == []
    assert len(fake.committed) == 1  # type: ignore[attr-defined]


def test_a_fatal_error_replaces_the_producer_and_the_outbox_is_published(service: Service) -> None:
    first = service.producer
    first.fail["commit_transaction"] = [FATAL]  # type: ignore[attr-defined]
    _queue(service, 0)
    _queue(service, 1)  # queued behind it
    assert service.producer is not first, "a new producer replaced the fenced one"
    _retry_now(service)
    assert service.outbox == []
    assert [v for _, v in service.producer.committed] == [b"result 0", b"result 1"]  # type: ignore[attr-defined]
    assert first.committed == []  # type: ignore[attr-defined]


def test_six_fatal_errors_in_a_row_stop_the_loop(service: Service) -> None:
    service.producer.fail["commit_transaction"] = [FATAL]  # type: ignore[attr-defined]
    _queue(service, 0)
    with pytest.raises(KafkaException):
        for _ in range(6):
            service.producer.fail["commit_transaction"] = [FATAL]  # type: ignore[attr-defined]
            _retry_now(service)


def test_a_dead_letter_too_large_for_its_topic_goes_again_without_its_value(
    service: Service,
) -> None:
    fake = service.producer
    fake.fail["commit_transaction"] = [TOO_LARGE]  # type: ignore[attr-defined]
    service.offsets.begin("alerts", 0, 0)
    big = b"x" * 1000
    service._transact([(service.settings.deadletter_topic, "", big, [("mmstream-dlq-reason", b"r")])],
                      "alerts", 0, offset=0)  # fmt: skip
    _retry_now(service)
    ((topic, value),) = fake.committed  # type: ignore[attr-defined]
    assert topic == service.settings.deadletter_topic and value is None
    assert service.outbox == []


def test_a_queue_stuck_longer_than_the_stall_limit_fails_the_health_check(
    service: Service,
) -> None:
    fake = service.producer
    fake.fail["commit_transaction"] = [ABORTABLE] * 100  # type: ignore[attr-defined]
    _queue(service, 0)
    assert service._alive()[0], "one failure is not yet a stuck queue"
    assert service._outbox_stuck_since is not None
    service._outbox_stuck_since -= 2.0  # as if 2 s had passed (stall_limit_s = 1)
    service._last_turn = time.monotonic()  # the loop itself keeps turning
    alive, why = service._alive()
    assert not alive and "results queue stuck" in why and "commit timed out" in why
    fake.fail["commit_transaction"] = []  # type: ignore[attr-defined]
    _retry_now(service)
    assert service._alive()[0]
