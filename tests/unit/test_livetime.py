from mmstream.model import NS_PER_S, DetectorStatus, Window
from mmstream.stream.livetime import StatusLog

S = NS_PER_S


def log_of(*reports: tuple[int, str, str | None]) -> StatusLog:
    log = StatusLog()
    for t, state, reason in reports:
        log.add(DetectorStatus("ic", 0, t * S, state, reason))
    return log


def test_heartbeats_every_minute_make_the_window_fully_live() -> None:
    log = log_of(*[(t, "GOOD", None) for t in range(0, 1201, 60)])
    lt = log.livetime("ic", Window(100 * S, 1100 * S), max_gap_ns=120 * S)
    assert lt is not None and lt.fraction == 1.0 and lt.live_s == 1000 and lt.excluded == ()


def test_downtime_and_gaps_are_excluded_with_their_reasons() -> None:
    log = log_of((0, "GOOD", None), (60, "GOOD", None), (120, "BAD", "power cut"), (180, "BAD", "power cut"),
                 (240, "GOOD", None), (600, "GOOD", None))  # fmt: skip
    lt = log.livetime("ic", Window(0, 600 * S), max_gap_ns=120 * S)
    assert lt is not None
    assert [(e.start_ns // S, e.end_ns // S, e.reason) for e in lt.excluded] == [
        (60, 180, "BAD: power cut"),
        (240, 600, "no status for 360 s"),
    ]
    assert lt.live_s == 120 and lt.fraction == 0.2


def test_time_not_yet_reported_is_not_live() -> None:
    lt = log_of((0, "GOOD", None), (60, "GOOD", None)).livetime(
        "ic", Window(30 * S, 90 * S), 120 * S
    )
    assert lt is not None and lt.fraction == 0.5
    assert lt.excluded[0].reason == "no status report"


def test_no_reports_at_all_means_unknown_not_dead() -> None:
    assert StatusLog().livetime("ic", Window(0, S), S) is None


def test_duplicate_report_is_ignored_and_order_restored() -> None:
    log = log_of((120, "GOOD", None), (60, "GOOD", None), (60, "GOOD", None))
    assert log.times == [60 * S, 120 * S]
