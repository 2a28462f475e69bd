"""The transactional publishing state machine, driven by a producer that fails the way
librdkafka does (with its real KafkaError objects): abort and retry, an abort that must be
resumed, a fatal error that replaces the producer, a dead letter too large for its topic,
and the health check of a queue that stays stuck. No broker: only the error paths matter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from mmstream.stream.events import Counts
from mmstream.stream.health import liveness
from mmstream.stream.publisher import Outgoing, OutMessage, Publisher

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


DEADLETTERS = "mmstream.deadletter"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def publisher() -> Publisher:
    producers: list[FakeProducer] = []

    def new_producer() -> Any:
        producers.append(FakeProducer())
        return producers[-1]

    return Publisher(new_producer, Counts(), DEADLETTERS, group=object, clock=Clock())


def _queue(pub: Publisher, offset: int, topic: str = "mmstream.results.x") -> None:
    pub.offsets.begin("alerts", 0, offset)
    out = OutMessage(topic, "key", f"result {offset}".encode(), [("_id", bytes(16))])
    pub.queue(Outgoing([out], "alerts", 0, offset))


def _retry_now(pub: Publisher) -> None:
    pub.retry_at = 0.0
    pub.flush()


def _fake(pub: Publisher) -> Any:
    return pub.producer


def test_an_abortable_commit_error_aborts_and_the_retry_publishes_once(
    publisher: Publisher,
) -> None:
    fake = _fake(publisher)
    fake.fail["commit_transaction"] = [ABORTABLE]
    _queue(publisher, 0)
    assert fake.calls[-1] == "abort_transaction" and len(publisher.outbox) == 1
    assert publisher.offsets.committable("alerts", 0) == 0, "the offset did not move past it"
    _retry_now(publisher)
    assert publisher.outbox == []
    assert fake.committed == [("mmstream.results.x", b"result 0")]
    assert publisher.offsets.committable("alerts", 0) == 1


def test_a_failed_transaction_backs_off_before_the_next_try(publisher: Publisher) -> None:
    fake = _fake(publisher)
    fake.fail["commit_transaction"] = [ABORTABLE, ABORTABLE]
    _queue(publisher, 0)
    fake.calls.clear()
    publisher.flush()  # same instant: within the backoff, nothing is tried
    assert fake.calls == [] and len(publisher.outbox) == 1
    publisher.clock.now += 0.6  # type: ignore[attr-defined]
    publisher.flush()  # the second try fails too; the backoff doubles
    assert "commit_transaction" in fake.calls and len(publisher.outbox) == 1
    publisher.clock.now += 0.6  # type: ignore[attr-defined]
    fake.calls.clear()
    publisher.flush()
    assert fake.calls == [], "a second failure waits 1 s, not 0.5 s"
    publisher.clock.now += 0.5  # type: ignore[attr-defined]
    publisher.flush()
    assert publisher.outbox == [] and len(fake.committed) == 1


def test_an_abort_that_times_out_is_resumed_before_anything_else(publisher: Publisher) -> None:
    fake = _fake(publisher)
    fake.fail["commit_transaction"] = [ABORTABLE]
    fake.fail["abort_transaction"] = [TIMED_OUT]
    _queue(publisher, 0)
    assert publisher.abort_pending
    fake.calls.clear()
    _retry_now(publisher)
    assert fake.calls[:2] == ["abort_transaction", "begin_transaction"]
    assert not publisher.abort_pending and publisher.outbox == []
    assert len(fake.committed) == 1


def test_a_fatal_error_replaces_the_producer_and_the_outbox_is_published(
    publisher: Publisher,
) -> None:
    first = _fake(publisher)
    first.fail["commit_transaction"] = [FATAL]
    _queue(publisher, 0)
    _queue(publisher, 1)  # queued behind it
    assert publisher.producer is not first, "a new producer replaced the fenced one"
    _retry_now(publisher)
    assert publisher.outbox == []
    assert [v for _, v in _fake(publisher).committed] == [b"result 0", b"result 1"]
    assert first.committed == []
    assert publisher.events.counts["producer_replaced"] == 1  # type: ignore[attr-defined]


def test_six_fatal_errors_in_a_row_stop_the_loop(publisher: Publisher) -> None:
    _fake(publisher).fail["commit_transaction"] = [FATAL]
    _queue(publisher, 0)
    with pytest.raises(KafkaException):
        for _ in range(6):
            _fake(publisher).fail["commit_transaction"] = [FATAL]
            _retry_now(publisher)


def test_an_alert_is_not_committed_past_an_earlier_one_still_waiting(
    publisher: Publisher,
) -> None:
    fake = _fake(publisher)
    publisher.offsets.begin("alerts", 0, 0)  # offset 0 waits for its window
    _queue(publisher, 1)  # offset 1 is done first
    assert fake.committed == [("mmstream.results.x", b"result 1")]
    assert publisher.offsets.committable("alerts", 0) == 0, "0 is unfinished: commit 0, not 2"


def test_a_dead_letter_too_large_for_its_topic_goes_again_without_its_value(
    publisher: Publisher,
) -> None:
    fake = _fake(publisher)
    fake.fail["commit_transaction"] = [TOO_LARGE]
    publisher.offsets.begin("alerts", 0, 0)
    big = b"x" * 1000
    dl = OutMessage(DEADLETTERS, "", big, [("mmstream-dlq-reason", b"r")])
    publisher.queue(Outgoing([dl], "alerts", 0, 0))
    _retry_now(publisher)
    ((topic, value),) = fake.committed
    assert topic == DEADLETTERS and value is None
    assert publisher.outbox == []


def test_a_queue_stuck_longer_than_the_stall_limit_fails_the_health_check(
    publisher: Publisher,
) -> None:
    fake = _fake(publisher)
    fake.fail["commit_transaction"] = [ABORTABLE] * 100
    _queue(publisher, 0)

    def alive() -> tuple[bool, str]:  # the loop itself keeps turning: idle 0 s
        return liveness(0.0, publisher.stuck_for(), publisher.error, limit_s=1.0)

    assert alive()[0], "one failure is not yet a stuck queue"
    publisher.clock.now += 2.0  # type: ignore[attr-defined]
    ok, why = alive()
    assert not ok and "results queue stuck" in why and "commit timed out" in why
    fake.fail["commit_transaction"] = []
    _retry_now(publisher)
    assert alive()[0]


def test_a_loop_that_stops_turning_fails_the_health_check() -> None:
    assert liveness(0.5, None, "", limit_s=1.0)[0]
    ok, why = liveness(3.0, None, "", limit_s=1.0)
    assert not ok and "last turned 3.0 s ago" in why
