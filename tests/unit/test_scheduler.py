"""The scheduler and the late watch, with no broker and a clock the test moves: when a job
runs, what a repeated notice, a late revision or a retraction does, and when late data make
a re-run."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from mmstream.analyses import AnalysisInput, Outcome, analysis
from mmstream.formats.headers import ResultHeaders, parse
from mmstream.model import NS_PER_S, Alert, AlertType, DetectorEvent, Role, SourceRef
from mmstream.stream.latewatch import LateWatch
from mmstream.stream.results_index import ResultsIndex
from mmstream.stream.scheduler import Scheduler
from mmstream.stream.settings import SchedulePolicy

T0 = 1_800_000_000 * NS_PER_S  # the alert's time


@analysis(name="count", version="1.0", window=(-10, 10))
def count(inp: AnalysisInput) -> Outcome:
    return Outcome(summary="n")


@analysis(name="other", version="2.0", window=(-100, 100), detectors=["icecube", "km3net"])
def other(inp: AnalysisInput) -> Outcome:
    return Outcome(summary="m")


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _alert(revision: str = "1", offset: int = 0, *, sent_s: int | None = None,
           kind: AlertType = AlertType.PRELIMINARY, role: Role = Role.OBSERVATION) -> Alert:  # fmt: skip
    return Alert("S1", revision, kind, role, "LVK", T0, None, None,
                 SourceRef("igwn.gwalert", 0, offset, "igwn"),
                 sent_ns=None if sent_s is None else sent_s * NS_PER_S)  # fmt: skip


def _published(index: ResultsIndex, analysis_label: str, alert: Alert, rid: str,
               retraction: bool = False) -> None:  # fmt: skip
    h = ResultHeaders(rid=uuid.UUID(rid), sender="x", analysis_label=analysis_label, code="c",
                      config_sha256="0", window={}, produced_at="t", retraction=retraction,
                      inputs={"alert": {"alert_id": alert.alert_id, "revision": alert.revision,
                                        "role": str(alert.role), "sent_ns": alert.sent_ns}})  # fmt: skip
    index.record(parse(h.encode()))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 3600 * NS_PER_S)  # an hour after the alert


def _scheduler(clock: Clock, index: ResultsIndex | None = None, **policy: object) -> Scheduler:
    params = {s.name: s.validate_params({}) for s in (count, other)}
    return Scheduler([count, other], params, SchedulePolicy(max_wait_s=600, **policy),  # type: ignore[arg-type]
                     ("icecube",), index or ResultsIndex(), clock=clock)  # fmt: skip


def test_a_job_waits_for_every_detector_watermark_past_its_window(clock: Clock) -> None:
    s = _scheduler(clock)
    adm = s.admit(_alert())
    assert sorted(j.spec.name for j in adm.jobs) == ["count", "other"] and adm.done is None
    marks: dict[str, int | None] = {"icecube": T0 + 10 * NS_PER_S, "km3net": None}
    (ready,) = s.ready(marks.get)
    assert ready == (adm.jobs[0], True) and ready[0].spec.name == "count"
    assert s.ready(marks.get) == [], "the other job needs km3net's data too"
    marks["km3net"] = T0 + 100 * NS_PER_S
    assert s.ready(marks.get) == [], "and icecube's up to its own (longer) window end"
    marks["icecube"] = T0 + 100 * NS_PER_S
    assert [(j.spec.name, complete) for j, complete in s.ready(marks.get)] == [("other", True)]


def test_a_job_runs_incomplete_at_its_deadline(clock: Clock) -> None:
    s = _scheduler(clock)
    s.admit(_alert())
    assert s.ready(lambda d: None) == []
    clock.now += 599 * NS_PER_S
    assert s.ready(lambda d: None) == []
    clock.now += 1 * NS_PER_S  # max_wait_s after arrival (the windows ended long ago)
    assert [complete for _, complete in s.ready(lambda d: None)] == [False, False]


def test_the_alert_is_done_only_when_its_last_job_finished(clock: Clock) -> None:
    s = _scheduler(clock)
    s.admit(_alert())
    (a, _), (b, _) = s.drain(lambda d: T0 * 2)
    assert s.finished(a, ["result a"]) is None
    pending = s.finished(b, ["result b"])
    assert pending is not None and pending.messages == ["result a", "result b"]
    assert not s.busy()


def test_a_notice_seen_twice_gets_no_second_job(clock: Clock) -> None:
    index = ResultsIndex()
    s = _scheduler(clock, index)
    s.admit(_alert())
    again = s.admit(_alert(offset=1))  # waiting: the same notice in quick succession
    assert again.jobs == [] and sorted(again.duplicates) == ["count@1.0", "other@2.0"]
    assert again.done is not None, "its offset is committed with no result"
    _published(index, "count@1.0", _alert(), str(uuid.uuid4()))
    later = _scheduler(clock, index).admit(_alert(offset=2))  # after a restart
    assert later.duplicates == ["count@1.0"] and [j.spec.name for j in later.jobs] == ["other"]


def test_a_test_alert_is_skipped_by_policy_and_not_a_duplicate_of_the_real_one(
    clock: Clock,
) -> None:
    index = ResultsIndex()
    _published(index, "count@1.0", _alert(), str(uuid.uuid4()))
    test = _alert(role=Role.TEST)
    assert _scheduler(clock, index, test_alerts="skip").admit(test).why == "skipped:test"
    assert len(_scheduler(clock, index).admit(test).jobs) == 2


def test_an_update_supersedes_the_last_revision_and_a_late_older_one_supersedes_nothing(
    clock: Clock,
) -> None:
    index = ResultsIndex()
    first = str(uuid.uuid4())
    _published(index, "count@1.0", _alert("1", sent_s=100), first)
    s = _scheduler(clock, index)
    (update, _) = s.admit(_alert("2", offset=1, sent_s=200)).jobs
    assert s.supersedes(update) == first and s.newer_published(update) is None
    second = str(uuid.uuid4())
    _published(index, "count@1.0", _alert("2", sent_s=200), second)
    (late, _) = s.admit(_alert("0", offset=2, sent_s=50)).jobs  # made before both, came last
    assert s.supersedes(late) is None
    newer = s.newer_published(late)
    assert newer is not None and newer.result_id == second


def test_a_retraction_withdraws_each_live_result_once(clock: Clock) -> None:
    index = ResultsIndex()
    live = str(uuid.uuid4())
    _published(index, "count@1.0", _alert(), live)
    s = _scheduler(clock, index)
    retraction = _alert("R", offset=1, kind=AlertType.RETRACTION)
    adm = s.admit(retraction)
    assert [(r.spec.name, r.supersedes) for r in adm.retractions] == [("count", live)]
    assert adm.jobs == [] and adm.done is not None
    _published(index, "count@1.0", retraction, adm.retractions[0].result_id, retraction=True)
    assert (
        s.admit(replace(retraction, ref=SourceRef("igwn.gwalert", 0, 2, "igwn"))).retractions == []
    )


def test_revisions_of_one_alert_run_one_after_the_other_and_each_supersedes_the_last(
    clock: Clock,
) -> None:
    s = _scheduler(clock)
    s.admit(_alert("1", sent_s=100))
    s.admit(_alert("2", offset=1, sent_s=200))
    s.admit(replace(_alert("1", offset=2), alert_id="S2"))  # another alert, behind them
    ready = s.ready(lambda d: T0 * 2)
    assert sorted((j.spec.name, j.alert.revision) for j, _ in ready) == [
        ("count", "1"),
        ("other", "1"),
    ], "revision 2 waits for revision 1 of the same analysis"
    first = next(j for j, _ in ready if j.spec.name == "count")
    rid = str(first.result_id)
    _published(s.composed, "count@1.0", first.alert, rid)  # made, not committed yet
    s.finished(first, [])
    ((second, _),) = s.ready(lambda d: T0 * 2)
    assert (second.alert.revision, second.spec.name) == ("2", "count")
    assert s.supersedes(second) == rid, "it sees the result made just before it"
    assert s.waiting and all(j.alert.alert_id == "S2" or j.spec.name == "other"
                             for j in s.waiting), "S2 waits behind revision 2's held job"  # fmt: skip
    s.finished(next(j for j, _ in ready if j.spec.name == "other"), [])
    later = s.ready(lambda d: T0 * 2)
    assert [(j.alert.alert_id, j.spec.name) for j, _ in later] == [
        ("S1", "other"), ("S2", "count"), ("S2", "other")], "in the order the alerts came"  # fmt: skip


def test_revoked_partitions_lose_their_waiting_and_running_jobs(clock: Clock) -> None:
    s = _scheduler(clock)
    s.admit(_alert())
    (running, _), _ = s.drain(lambda d: None)
    s.admit(_alert("2", offset=5))
    s.revoke({("igwn.gwalert", 0)})
    assert not s.busy() and s.pending == {}
    assert s.finished(running, ["late result"]) is None, "the next owner publishes it"


def test_late_events_in_a_published_window_make_one_rerun_once_they_settle() -> None:
    now = [0.0]
    watch = LateWatch(SchedulePolicy(late_events="rerun", late_settle_s=2.0, late_watch_s=60),
                      clock=lambda: now[0])  # fmt: skip
    clock = Clock(T0)
    (job, _) = _scheduler(clock).admit(_alert()).jobs
    watch.watch(job, "rid-1")  # its run starts

    def event(dt_s: float, detector: str = "icecube") -> DetectorEvent:
        return DetectorEvent("e", detector, 0, T0 + int(dt_s * NS_PER_S), 1.0, 2.0, 0.5)

    assert watch.hits(event(20)) == [] and watch.hits(event(5, "km3net")) == []
    hits = watch.hits(event(5))  # while the run runs: not in its input
    assert len(hits) == 1
    watch.late(hits)
    now[0] = 3.0
    assert watch.due() == [], "no re-run before the run itself is done"
    watch.ran(job)
    now[0] = 4.0
    watch.late(watch.hits(event(6)))
    now[0] = 5.0
    assert watch.due() == [], "late events have not settled yet"
    now[0] = 6.0
    ((rerun, late),) = watch.due()
    assert (rerun.update, rerun.supersedes, late) == (1, "rid-1", 2)
    assert watch.due() == [] and watch.hits(event(5)) == [], "one re-run; then unwatched"


def test_late_events_are_only_counted_by_default() -> None:
    now = [0.0]
    watch = LateWatch(SchedulePolicy(late_watch_s=60), clock=lambda: now[0])
    (job, _) = _scheduler(Clock(T0)).admit(_alert()).jobs
    watch.watch(job, "rid-1")
    watch.ran(job)
    watch.late(watch.hits(DetectorEvent("e", "icecube", 0, T0, 1.0, 2.0, 0.5)))
    now[0] = 10.0
    assert watch.due() == []
    now[0] = 61.0
    watch.due()
    assert watch.closed == [], "a window is watched for late_watch_s"
