"""Alerts of a partition with a run in flight wait, in order; the partition's fetch is paused
only when too many wait, and revoked partitions forget theirs."""

from __future__ import annotations

from typing import Any

from mmstream.stream.hold import PartitionHold


class Msg:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self.offset = partition, offset

    def topic(self) -> str:
        return "alerts"

    def partition(self) -> int:
        return self._p


class FakeConsumer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, int]]]] = []

    def pause(self, tps: list[Any]) -> None:
        self.calls.append(("pause", [(tp.topic, tp.partition) for tp in tps]))

    def resume(self, tps: list[Any]) -> None:
        self.calls.append(("resume", [(tp.topic, tp.partition) for tp in tps]))


def test_held_alerts_come_back_in_order_once_their_partition_is_free() -> None:
    hold = PartitionHold(FakeConsumer(), limit=100)  # type: ignore[arg-type]
    busy = {("alerts", 0)}
    assert not hold.offer(Msg(1, 7), 1, busy), "another partition goes straight through"  # type: ignore[arg-type]
    assert hold.offer(Msg(0, 5), 2, busy) and hold.offer(Msg(0, 6), 3, busy)  # type: ignore[arg-type]
    assert hold.next(busy) is None, "still in flight"
    assert hold.offer(Msg(0, 8), 4, set()), "behind the held ones, even with nothing in flight"  # type: ignore[arg-type]
    got = [hold.next(set()), hold.next(set()), hold.next(set()), hold.next(set())]
    assert [(m.offset, t) for m, t in got[:3]] == [(5, 2), (6, 3), (8, 4)] and got[3] is None  # type: ignore[union-attr]


def test_too_many_held_alerts_pause_the_fetch_until_half_are_done() -> None:
    consumer = FakeConsumer()
    hold = PartitionHold(consumer, limit=4)  # type: ignore[arg-type]
    busy = {("alerts", 0)}
    for offset in range(4):
        hold.offer(Msg(0, offset), offset, busy)  # type: ignore[arg-type]
    assert consumer.calls == [], "up to the limit: held, not paused"
    hold.offer(Msg(0, 4), 4, busy)  # type: ignore[arg-type]
    assert consumer.calls == [("pause", [("alerts", 0)])]
    hold.next(set())
    hold.next(set())
    assert consumer.calls[-1][0] == "pause", "3 still wait: more than half the limit"
    hold.next(set())
    assert consumer.calls[-1] == ("resume", [("alerts", 0)])


def test_a_revoked_partition_forgets_what_it_held_and_is_not_left_paused() -> None:
    consumer = FakeConsumer()
    hold = PartitionHold(consumer, limit=1)  # type: ignore[arg-type]
    hold.offer(Msg(0, 1), 1, {("alerts", 0)})  # type: ignore[arg-type]
    hold.offer(Msg(0, 2), 2, {("alerts", 0)})  # type: ignore[arg-type]
    assert consumer.calls == [("pause", [("alerts", 0)])]
    hold.revoke({("alerts", 0)})
    assert consumer.calls[-1] == ("resume", [("alerts", 0)]), "a pause outlives a rebalance"
    assert hold.next(set()) is None
