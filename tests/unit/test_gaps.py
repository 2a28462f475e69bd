"""Sequence gaps: found, reported once, filled by late events, excluded from livetime."""

from __future__ import annotations

import random

from mmstream.model import NS_PER_S, DetectorEvent, DetectorStatus, Window
from mmstream.stream.gaps import GapChange, SequenceGaps
from mmstream.stream.store import EventStore

S = NS_PER_S


def test_a_jump_in_sequence_is_a_gap_between_the_neighbouring_event_times() -> None:
    g = SequenceGaps()
    for seq in range(5):
        assert g.add("ic", "a", seq, seq * 10 * S) is None
    gap = g.add("ic", "a", 9, 90 * S)
    assert gap is not None
    assert (gap.first, gap.last, gap.missing) == (5, 8, 4)
    assert (gap.start_ns, gap.end_ns) == (40 * S, 90 * S)
    assert "4 event(s) missing" in gap.reason and "seq 5..8" in gap.reason
    assert g.gaps("ic") == [gap]


def test_late_events_shrink_then_close_the_gap() -> None:
    g = SequenceGaps()
    for seq in [0, 1, 2, 8, 9]:
        g.add("ic", "", seq, seq * S)
    assert [(x.first, x.last) for x in g.gaps("ic")] == [(3, 7)]
    g.add("ic", "", 5, 5 * S)  # splits the hole in two
    assert [(x.first, x.last) for x in g.gaps("ic")] == [(3, 4), (6, 7)]
    for seq in (3, 4, 6):
        g.add("ic", "", seq, seq * S)
    assert [(x.first, x.last) for x in g.gaps("ic")] == [(7, 7)]
    g.add("ic", "", 7, 7 * S)
    assert g.gaps("ic") == []


def test_sources_are_numbered_independently_and_duplicates_are_ignored() -> None:
    g = SequenceGaps()
    for seq in range(10):
        g.add("ic", "north", seq, seq * S)
        g.add("ic", "south", seq, seq * S + 1)
        g.add("ic", "north", seq, seq * S)  # delivered twice
    assert g.gaps("ic") == []
    gap = g.add("ic", "south", 12, 12 * S)
    assert gap is not None and gap.source == "south"
    assert g.gaps("other") == []


def test_any_arrival_order_leaves_exactly_the_missing_ranges() -> None:
    rng = random.Random(7)
    for _ in range(50):
        present = sorted(rng.sample(range(200), 150))
        shuffled = present[:]
        rng.shuffle(shuffled)
        g = SequenceGaps()
        for seq in shuffled:
            g.add("ic", "", seq, seq * S)
        missing = sorted(set(range(present[0], present[-1] + 1)) - set(present))
        found = [s for gap in g.gaps("ic") for s in range(gap.first, gap.last + 1)]
        assert found == missing


def test_a_data_gap_is_excluded_from_livetime_with_its_reason() -> None:
    store = EventStore(retention_ns=10_000 * S)
    for t in range(0, 1081, 60):
        store.add_status(DetectorStatus("ic", t, t * S, "GOOD"))
    for seq, t in enumerate([100, 200, 300]):
        store.add(DetectorEvent(f"e{seq}", "ic", seq, t * S, 0.0, 0.0, 1.0), 0, seq)
    assert store.livetime("ic", Window(0, 1000 * S), 120 * S).fraction == 1.0  # type: ignore[union-attr]
    gap = store.add(DetectorEvent("e9", "ic", 9, 700 * S, 0.0, 0.0, 1.0), 0, 9)
    assert gap is not None
    lt = store.livetime("ic", Window(0, 1000 * S), 120 * S)
    assert lt is not None and abs(lt.fraction - 0.6) < 1e-12
    (excluded,) = lt.excluded
    assert (excluded.start_ns, excluded.end_ns) == (300 * S, 700 * S)
    assert excluded.reason.startswith("data gap: 6 event(s) missing")
    # A window that misses the gap is untouched.
    assert store.livetime("ic", Window(0, 250 * S), 120 * S).fraction == 1.0  # type: ignore[union-attr]
    for seq in range(3, 9):  # the missing events arrive late
        store.add(
            DetectorEvent(f"e{seq}", "ic", seq, (300 + 50 * (seq - 2)) * S, 0.0, 0.0, 1.0), 0, seq
        )
    assert store.livetime("ic", Window(0, 1000 * S), 120 * S).fraction == 1.0  # type: ignore[union-attr]


def test_events_from_several_partitions_merge_in_time_order() -> None:
    store = EventStore(retention_ns=10_000 * S)
    rng = random.Random(3)
    times = sorted(rng.sample(range(1, 5000), 400))
    by_source: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for t in times:
        by_source[rng.randrange(3)].append(t)
    # Deliver the partitions one after the other, in chunks that straddle each other.
    for part, ts in by_source.items():
        for seq, t in enumerate(ts):
            store.add(
                DetectorEvent(f"{part}-{seq}", "ic", seq, t * S, 0.0, 0.0, 1.0, source=str(part)),
                part,
                seq,
            )
        got = store.window("ic", Window(0, 5000 * S))
        assert list(got.time_ns) == sorted(got.time_ns)
    got = store.window("ic", Window(0, 5000 * S))
    assert list(got.time_ns // S) == times
    assert store.gaps.gaps("ic") == []


def test_sources_per_detector_are_bounded() -> None:
    gaps = SequenceGaps()
    for i in range(3):
        assert gaps.admits("d", [f"s{i}"], limit=3)
        gaps.add("d", f"s{i}", 0, 0)
    assert not gaps.admits("d", ["s-new"], limit=3)
    assert gaps.admits("d", ["s1"], limit=3)  # a known source always
    assert gaps.admits("other", ["s-new"], limit=3)  # per detector
    gaps.add("d", "s2", 1, 100)  # s2 speaks again later; s0 and s1 fall silent
    gaps.evict(before_ns=50)
    assert gaps.admits("d", ["s-new"], limit=3), "silent writers free their places"
    assert gaps.admits("d", ["s-other"], limit=3) and gaps.admits("d", ["s2"], limit=3)
    assert gaps.admits("d", ["s2", "s-a", "s-b"], limit=3), "one known, two new: three"
    assert not gaps.admits("d", ["s-a", "s-b", "s-c"], limit=3), "three new and s2: four"


def test_open_and_healed_events_are_counted_apart() -> None:
    """found = healed + open + forgotten, whatever the order the events come in."""
    g = SequenceGaps()
    for seq in (10, 11, 12):
        g.add("ic", "", seq, seq * S)
    assert g.take_changes() == {}  # in order: nothing found, nothing changed
    gap = g.add("ic", "", 20, 20 * S)  # 13..19 missing
    assert gap is not None and gap.missing == 7
    (change,) = g.take_changes().values()
    assert (change.open_events, change.healed_events) == (7, 0)
    for seq in (13, 16, 19):  # extends a run, splits the hole, extends a run backwards
        assert g.add("ic", "", seq, seq * S) is None
    g.add("ic", "", 16, 16 * S)  # a repeat heals nothing
    assert g.take_changes()["ic"] == GapChange(open_events=4, healed_events=3)
    before = g.add("ic", "", 5, 5 * S)  # before the first event seen: 6..9 missing
    assert before is not None and (before.first, before.last) == (6, 9)
    assert (before.start_ns, before.end_ns) == (5 * S, 10 * S)
    assert g.open_events("ic") == 8
    assert g.open_events("ic") == sum(x.missing for x in g.gaps("ic"))
    for seq in (6, 7, 8, 9, 14, 15, 17, 18):
        g.add("ic", "", seq, seq * S)
    assert g.take_changes()["ic"] == GapChange(open_events=0, healed_events=8)
    assert g.gaps("ic") == [] and g.take_changes() == {}


def test_holes_older_than_the_history_are_forgotten_not_healed() -> None:
    g = SequenceGaps()
    for seq in (0, 5, 9, 20):  # holes 1..4, 6..8, 10..19: 17 missing
        g.add("ic", "a", seq, seq * S)
    g.add("ic", "b", 0, 0)
    g.add("ic", "b", 3, 3 * S)  # 2 missing, a source that then falls silent
    g.take_changes()
    g.evict(before_ns=7 * S)  # a's runs 0 and 5 go (holes 1..4, 6..8), b goes
    assert g.open_events("ic") == 10 == sum(x.missing for x in g.gaps("ic"))
    assert g.take_changes()["ic"].healed_events == 0


def test_the_metrics_report_missing_healed_and_open_events_apart() -> None:
    from prometheus_client import REGISTRY

    from mmstream.formats.limits import Limits
    from mmstream.ops.observer import Observer
    from mmstream.ops.state import DashboardState
    from mmstream.stream.events import Counts, Fanout
    from mmstream.stream.feed import DetectorFeed
    from mmstream.stream.settings import Topics

    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"detector": "gapdet"}) or 0.0

    store, counts = EventStore(retention_ns=10_000 * S), Counts()
    events = Fanout(Observer(DashboardState([])), counts)
    feed = DetectorFeed(Topics(detectors=("gapdet",)), Limits(), store, None, None, None,  # type: ignore[arg-type]
                        events)  # fmt: skip

    def add(seq: int) -> None:
        gap = store.add(DetectorEvent(f"e{seq}", "gapdet", seq, seq * S, 0.0, 0.0, 1.0), 0, seq)
        if gap is not None:  # as DetectorFeed.handle reports it
            events.data_gap(gap)

    missing0 = value("mmstream_detector_missing_events_total")
    healed0 = value("mmstream_detector_healed_events_total")
    for seq in (0, 1, 6):
        add(seq)
    feed.end_batch(None)
    assert value("mmstream_detector_missing_events_total") - missing0 == 4
    assert value("mmstream_detector_open_gap_events") == 4
    assert value("mmstream_detector_healed_events_total") - healed0 == 0
    for seq in (2, 3, 4):  # three of the four come late
        add(seq)
    feed.end_batch(None)
    assert value("mmstream_detector_missing_events_total") - missing0 == 4  # found once
    assert value("mmstream_detector_healed_events_total") - healed0 == 3
    assert value("mmstream_detector_open_gap_events") == 1
    add(5)
    feed.end_batch(None)
    assert value("mmstream_detector_healed_events_total") - healed0 == 4
    assert value("mmstream_detector_open_gap_events") == 0
    assert counts.counts["data_gap_events"] == 4 and counts.counts["data_gap_events_healed"] == 4
