"""The feed stores a consumed batch's events as one set of columns; a message at fault in
it is refused alone, with its reason, and refusals keep the order of the batch."""

from __future__ import annotations

import pytest
from confluent_kafka import Message

import mmstream.stream.feed as feed_module
from mmstream.formats.detector import encode_batch, encode_event
from mmstream.formats.limits import Limits
from mmstream.model import NS_PER_S, DetectorEvent, Window
from mmstream.stream.archive import Keeper
from mmstream.stream.events import Counts
from mmstream.stream.feed import DetectorFeed
from mmstream.stream.latewatch import LateWatch
from mmstream.stream.refusals import Refusals, reason_of
from mmstream.stream.settings import SchedulePolicy, Topics
from mmstream.stream.store import EventStore

DET = "batchdet"
T0 = 1_780_000_000 * NS_PER_S
TOPIC = f"detector.{DET}.events"


class Recorded(Refusals):
    """The feed's refusals as they are handed over (the dead letter itself: integration)."""

    def __init__(self, limits: Limits) -> None:
        super().__init__("deadletters", "test", limits, Counts(), lambda item: None)
        self.refused: list[tuple[int, str]] = []

    def detector(self, msg: Message, exc: BaseException, archive: str | None) -> None:
        self.refused.append((msg.offset() or 0, reason_of(exc)))


def event(seq: int, ra: float = 10.0, source: str = "daq-1") -> DetectorEvent:
    return DetectorEvent(f"ev{seq}", DET, seq, T0 + seq * NS_PER_S, ra, -5.0, 1.0,
                         source=source)  # fmt: skip


def message(offset: int, value: bytes) -> Message:
    return Message(topic=TOPIC, partition=0, offset=offset, value=value, key=DET.encode(),
                   timestamp=(1, T0 // 1_000_000 + 60_000), headers=None)  # fmt: skip


def feed_of(limits: Limits) -> tuple[DetectorFeed, EventStore, Recorded]:
    store, refusals = EventStore(retention_ns=86_400 * NS_PER_S), Recorded(limits)
    feed = DetectorFeed(Topics(detectors=(DET,)), limits, store, LateWatch(SchedulePolicy()),
                        refusals, Keeper(None, lambda: None), Counts())  # fmt: skip
    return feed, store, refusals


def stored(store: EventStore) -> list[tuple[str, int]]:
    got = store.window(DET, Window(T0 - NS_PER_S, T0 + 1000 * NS_PER_S))
    return list(zip(got.event_id.tolist(), got.offset.tolist(), strict=True))


@pytest.mark.parametrize("run_rows", [feed_module.RUN_ROWS, 4, 1])
def test_a_bad_message_in_a_batch_is_refused_alone_and_each_event_keeps_its_offset(
    run_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when the batch's records are stored a few at a time (``RUN_ROWS``), the bad
    messages then falling in different runs: refusals still come in message order."""
    monkeypatch.setattr(feed_module, "RUN_ROWS", run_rows)
    feed, store, refusals = feed_of(Limits())
    batch = [
        message(0, encode_event(event(0))),
        message(1, encode_batch(DET, [event(1), event(2), event(3)])),
        message(2, encode_event(event(4, ra=400.0))),  # off the sky
        message(3, encode_event(event(5))),
        message(4, b"not avro at all"),
        message(5, encode_batch(DET, [event(6), event(7, ra=-500.0)])),  # one bad event
        message(6, encode_event(event(8))),
    ]
    feed.handle_batch(batch)
    assert [o for o, _ in refusals.refused] == [2, 4, 5]
    assert "off the sky" in refusals.refused[0][1]
    assert "C3 01 marker" in refusals.refused[1][1]
    assert refusals.refused[2][1].startswith("event 1 position")  # the batch's event 1
    assert stored(store) == [("ev0", 0), ("ev1", 1), ("ev2", 1), ("ev3", 1), ("ev5", 3),
                             ("ev8", 6)]  # fmt: skip


def test_all_good_batches_are_stored_whole_with_their_message_offsets() -> None:
    feed, store, refusals = feed_of(Limits())
    feed.handle_batch([message(10, encode_batch(DET, [event(0), event(1)])),
                       message(11, encode_event(event(2)))])  # fmt: skip
    feed.handle_batch([message(12, encode_event(event(3)))])
    assert refusals.refused == []
    assert stored(store) == [("ev0", 10), ("ev1", 10), ("ev2", 11), ("ev3", 12)]
    assert store.gaps.gaps(DET) == []


def test_the_source_limit_counts_a_batchs_new_sources_in_message_order() -> None:
    feed, store, refusals = feed_of(Limits(max_sources=2))
    feed.handle_batch([
        message(0, encode_event(event(0, source="a"))),
        message(1, encode_event(event(1, source="b"))),
        message(2, encode_event(event(2, source="c"))),  # a third writer: refused
        message(3, encode_event(event(3, source="a"))),  # a known one: stored
    ])  # fmt: skip
    assert [o for o, _ in refusals.refused] == [2]
    assert "max_sources" in refusals.refused[0][1]
    assert [eid for eid, _ in stored(store)] == ["ev0", "ev1", "ev3"]
