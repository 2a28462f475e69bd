"""The job-state rules of the ledger (ledger/jobs.py) and what a requeue sends back
(stream/requeue.py), without Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmstream.errors import MmstreamError
from mmstream.formats.headers import DLQ_REASON
from mmstream.ledger.jobs import (
    JobRow,
    history,
    interrupt_open,
    jobs,
    record_state,
    settle_state,
    stats,
    summarize,
)
from mmstream.ledger.store import Ledger, sqlite_url
from mmstream.stream.requeue import StoredDeadLetter, requeue


def _row(job_id: str, tag: str = "live") -> JobRow:
    return JobRow(job_id, tag, "temporal_coincidence@1.0.0", "S1", "rev1", "igwn.gwalert", 0, 7,
                  "alert")  # fmt: skip


def _state(ledger: Ledger, job_id: str) -> str:
    (found,) = [j for j in jobs(ledger) if j["job_id"] == job_id]
    return str(found["state"])


def test_a_publication_never_undoes_a_later_verdict(tmp_path: Path) -> None:
    ledger = Ledger(sqlite_url(tmp_path))
    for jid, verdict in (("a", "superseded"), ("b", "failed"), ("c", "retracted")):
        record_state(ledger, _row(jid), "running", "2026-12-01T10:00:00Z")
        settle_state(ledger, jid, verdict, "2026-12-01T10:00:01Z", "by result x")
        settle_state(ledger, jid, "published", "2026-12-01T10:00:02Z", "result completed")
        assert _state(ledger, jid) == verdict
    record_state(ledger, _row("d"), "running", "2026-12-01T10:00:00Z")
    settle_state(ledger, "d", "published", "2026-12-01T10:00:02Z", "result completed")
    assert [h["state"] for h in history(ledger, "d")] == ["running", "published"]


def test_a_restart_marks_its_own_open_jobs_interrupted_and_a_result_still_settles_them(
    tmp_path: Path,
) -> None:
    ledger = Ledger(sqlite_url(tmp_path))
    record_state(ledger, _row("mine"), "received", "2026-12-01T10:00:00Z",
                 deadline="2026-12-01T10:10:00Z")  # fmt: skip
    record_state(ledger, _row("mine"), "waiting", "2026-12-01T10:00:00Z", "waiting for x")
    record_state(ledger, _row("done"), "running", "2026-12-01T10:00:00Z")
    settle_state(ledger, "done", "published", "2026-12-01T10:00:01Z", "ok")
    record_state(ledger, _row("theirs", tag="other"), "waiting", "2026-12-01T10:00:00Z")
    assert interrupt_open(ledger, "live", "2026-12-01T11:00:00Z") == 1
    assert (_state(ledger, "mine"), _state(ledger, "done"), _state(ledger, "theirs")) == (
        "interrupted", "published", "waiting")  # fmt: skip
    (mine,) = jobs(ledger, states=["interrupted"])
    assert mine["received_at"] == "2026-12-01T10:00:00Z"
    assert mine["deadline"] == "2026-12-01T10:10:00Z"  # kept through later states
    settle_state(ledger, "mine", "published", "2026-12-01T11:00:05Z", "found in Kafka")
    assert _state(ledger, "mine") == "published"


def test_stats_are_summarized_by_analysis_with_percentiles_and_a_trend(tmp_path: Path) -> None:
    rows = [{"analysis": "a", "alert_to_result_s": float(v), "queue_wait_s": 0.0, "wall_s": 1.0,
             "cpu_s": 1.0, "publish_wait_s": 0.0, "peak_memory_bytes": 0, "events_read": 0}
            for v in (1, 1, 1, 1, 3, 3, 3, 3)]  # fmt: skip
    out = summarize(rows)["a"]
    assert out["runs"] == 8
    assert out["alert_to_result_s"]["p50"] == 2.0
    assert out["alert_to_result_s"]["trend"] == 3.0  # the newer half is 3 x slower
    assert out["wall_s"]["trend"] == 1.0
    ledger = Ledger(sqlite_url(tmp_path))
    assert stats(ledger, analysis="a@1.0.0") == []  # a version is ignored, not a mismatch


def _dead(headers: list[tuple[str, bytes]]) -> StoredDeadLetter:
    return StoredDeadLetter(0, 3, 0, b"k", b"value", headers, "bad", "decode", "DecodeError",
                            ("igwn.gwalert", 0, 9), False)  # fmt: skip


def test_a_requeue_sends_the_original_headers_only() -> None:
    forged = (DLQ_REASON, b"forged by the sender")
    ours = [(DLQ_REASON, b"bad"), ("mmstream-dlq-stage", b"decode"), ("_sender", b"us")]
    dl = _dead([("_sender", b"them"), forged, ("x", b"1"), *ours])
    assert dl.original_headers == [("_sender", b"them"), forged, ("x", b"1")]


def test_a_dead_letter_that_lost_headers_is_not_requeued() -> None:
    dl = _dead([("mmstream-dlq-headers-dropped", b"40"), (DLQ_REASON, b"bad")])
    with pytest.raises(MmstreamError, match="lost some of its original's headers"):
        requeue({"bootstrap.servers": "127.0.0.1:1"}, dl, "mmstream.deadletter")


def test_a_runs_events_are_marked_until_written_and_a_lost_job_is_made_from_its_run(
    tmp_path: Path,
) -> None:
    from tests.unit.test_ledger import _run

    ledger = Ledger(sqlite_url(tmp_path))
    ledger.record_run_head(_run("r1", "S9"), events_to_come=True)
    assert ledger.events_unrecorded("r1") and ledger.events("r1") == []  # a stop here: said so
    ledger.record_run_events("r1", [("r1", "e1", "ic", "detector.ic.events", 0, 5, 123)])
    assert not ledger.events_unrecorded("r1")
    assert [e["event_id"] for e in ledger.events("r1")] == ["e1"]
    # its job's states were still queued when the process stopped: the result found in
    # Kafka settles a job made from the run's row
    settle_state(ledger, "r1", "published", "2026-12-01T12:00:00Z", "found in Kafka")
    (job,) = jobs(ledger, alert="S9")
    assert (job["state"], job["analysis"], job["alert_offset"]) == ("published", "temporal@1.0", 7)
