"""Upstream heartbeats: silence is reported from the start, warned once, and ended by a beat."""

from __future__ import annotations

from dataclasses import dataclass

from mmstream.stream.events import Events
from mmstream.stream.upstream import UpstreamWatch


@dataclass
class _Msg:
    _topic: str
    _value: bytes

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes:
        return self._value


class _Seen(Events):
    def __init__(self) -> None:
        self.reports: list[tuple[str, float, bool]] = []

    def upstream(self, topic: str, silent_s: float, alive: bool) -> None:
        self.reports.append((topic, silent_s, alive))


def test_a_heartbeat_topic_is_alive_while_beats_come_and_silent_after_the_gap() -> None:
    now = [100.0]
    seen = _Seen()
    watch = UpstreamWatch(("gcn.heartbeat",), 5.0, seen, clock=lambda: now[0])
    now[0] = 104.0
    watch.check()
    assert seen.reports[-1] == ("gcn.heartbeat", 4.0, True)
    now[0] = 106.0  # never a heartbeat since the start: silent
    watch.check()
    assert seen.reports[-1] == ("gcn.heartbeat", 6.0, False) and watch.silent == {"gcn.heartbeat"}
    watch.beat(_Msg("gcn.heartbeat", b'{"alert_datetime": "2026-12-01T15:00:00.0Z"}'))  # type: ignore[arg-type]
    assert seen.reports[-1] == ("gcn.heartbeat", 0.0, True) and not watch.silent
    assert watch.sent_ns["gcn.heartbeat"] == 1_796_137_200_000_000_000
    now[0] = 110.0
    watch.check()
    assert seen.reports[-1][2] is True
    watch.beat(_Msg("gcn.heartbeat", b"not json"))  # type: ignore[arg-type]
    assert seen.reports[-1][2] is True and watch.sent_ns["gcn.heartbeat"] is None


def test_fanout_hands_on_every_event() -> None:
    """A method Fanout lacks would be the base class's no-op: an event silently lost."""
    import inspect

    from mmstream.stream.events import Fanout

    names = [n for n, _ in inspect.getmembers(Events, inspect.isfunction) if not n.startswith("_")]
    assert "upstream" in names
    assert [n for n in names if getattr(Fanout, n) is getattr(Events, n)] == []
