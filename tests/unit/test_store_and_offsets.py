from mmstream.model import NS_PER_S, DetectorEvent, Window
from mmstream.stream.offsets import OffsetTracker
from mmstream.stream.store import EventStore


def ev(i: int, t_s: float, detector: str = "icecube") -> DetectorEvent:
    return DetectorEvent(f"e{i}", detector, i, int(t_s * NS_PER_S), 1.0, 2.0, 0.5)


def test_window_is_inclusive_and_time_sorted_whatever_the_arrival_order() -> None:
    store = EventStore(retention_ns=3600 * NS_PER_S)
    for i, t in enumerate([105.0, 100.0, 110.0, 99.0, 111.0]):
        store.add(ev(i, t), partition=0, offset=i)
    cols = store.window("icecube", Window(100 * NS_PER_S, 110 * NS_PER_S))
    assert cols.event_id.tolist() == ["e1", "e0", "e2"]
    assert cols.offset.tolist() == [1, 0, 2]
    assert store.watermark("icecube") is None, "events alone do not promise completeness"
    assert len(store.window("other", Window(0, 1))) == 0


def test_a_past_window_while_newer_events_wait_then_a_late_event_inside_it() -> None:
    """Events waiting to be merged that are all later than a window leave it as it was; a
    late one inside the window is in the next query, and so are the newer ones later."""
    store = EventStore(retention_ns=3600 * NS_PER_S)
    for i, t in enumerate([100.0, 105.0, 110.0]):
        store.add(ev(i, t), partition=0, offset=i)
    past = Window(100 * NS_PER_S, 110 * NS_PER_S)
    assert store.window("icecube", past).event_id.tolist() == ["e0", "e1", "e2"]
    for i, t in enumerate([200.0, 111.0, 300.0], start=3):  # newer, waiting
        store.add(ev(i, t), partition=0, offset=i)
    assert store.window("icecube", past).event_id.tolist() == ["e0", "e1", "e2"]
    ends_at_e4 = Window(110 * NS_PER_S, 111 * NS_PER_S)  # e4 waits at its very end
    assert store.window("icecube", ends_at_e4).event_id.tolist() == ["e2", "e4"]
    store.add(ev(6, 107.0), partition=0, offset=6)  # late, inside the past window
    assert store.window("icecube", past).event_id.tolist() == ["e0", "e1", "e6", "e2"]
    assert store.window("icecube", Window(0, 400 * NS_PER_S)).offset.tolist() == [
        0, 1, 6, 2, 4, 3, 5]  # fmt: skip


def test_heartbeats_advance_the_watermark_but_never_back() -> None:
    store = EventStore(retention_ns=NS_PER_S)
    store.advance_watermark("icecube", 50)
    store.advance_watermark("icecube", 40)
    assert store.watermark("icecube") == 50


def test_eviction_drops_only_events_older_than_retention() -> None:
    store = EventStore(retention_ns=100 * NS_PER_S)
    for i, t in enumerate([10.0, 50.0, 150.0]):
        store.add(ev(i, t), 0, i)
    assert store.evict(now_ns=200 * NS_PER_S) == 2
    assert store.window("icecube", Window(0, 10**12)).event_id.tolist() == ["e2"]
    assert store.covered_from_ns == 100 * NS_PER_S


def test_offsets_never_pass_an_unfinished_alert() -> None:
    t = OffsetTracker()
    assert t.committable("a", 0) is None
    for off in (5, 6, 7):
        t.begin("a", 0, off)
    t.finish("a", 0, 6)
    assert t.committable("a", 0) == 5
    t.finish("a", 0, 5)
    assert t.committable("a", 0) == 7
    t.finish("a", 0, 7)
    assert t.committable("a", 0) == 8
    t.forget("a", 0)
    assert t.committable("a", 0) is None


def test_a_heartbeat_counts_only_after_the_events_before_it_are_read() -> None:
    from mmstream.stream.watermarks import Watermarks

    w = Watermarks()
    w.start_at("detector.ic.events", 0, 100)
    w.heartbeat("ic", 5_000, {("detector.ic.events", 0): 103})
    assert w.confirmed() == []
    w.read("detector.ic.events", 0, 101)
    assert w.confirmed() == []
    w.read("detector.ic.events", 0, 102)
    assert w.confirmed() == [("ic", 5_000)]
    assert w.confirmed() == []
