"""The ledger on SQLite and on a real PostgreSQL server: the same tests for both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import inspect

from mmstream.ledger.store import Ledger, RunRecord, UsedEvent


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    else:
        # each test gets its own schema-free database state: drop what the last one wrote
        url = request.getfixturevalue("postgres_url")
    lg = Ledger(url)
    try:
        yield lg
    finally:
        from mmstream.ledger import schema

        schema.metadata.drop_all(lg.engine)
        lg.close()


def _run(result_id: str, alert_id: str = "S1", **changes: object) -> RunRecord:
    base = RunRecord(
        result_id=result_id, run_tag="inst", analysis="temporal", version="1.0",
        alert_id=alert_id, revision="1", alert_topic="igwn.gwalert", alert_partition=0,
        alert_offset=7, params_json='{"dt": 500}', params_sha256="ab" * 32,
        mmstream_version="0.1.0", git_commit="c0ffee", handler_sha256="cd" * 32, host="h",
        started_at="2026-01-01T00:00:00Z", ended_at="2026-01-01T00:00:01Z", cpu_s=0.5,
        peak_memory_bytes=1024, status="pending", result_status="COMPLETED", error=None,
        window_start_ns=10, window_end_ns=20, livetime_fraction=0.9, supersedes=None,
        statistics_json='{"n": 1}', summary="1 event",
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def _rid() -> str:
    return str(uuid.uuid4())


def test_run_with_intervals_events_and_outputs_reads_back(ledger: Ledger) -> None:
    rid = _rid()
    used = [UsedEvent("e1", "ic", "det.ic", 0, 5, 12), UsedEvent("e2", "ic", "det.ic", 1, 9, 15)]
    ledger.record_run(_run(rid), [("ic", 11, 13, "power cut")], used, [("e1", "raw1")])
    ledger.record_outputs(rid, [("result", "mmstream.results.temporal", 0, 42)])

    run = ledger.run(rid)
    assert run is not None
    assert (run["alert_offset"], run["params_sha256"], run["git_commit"]) == (
        7,
        "ab" * 32,
        "c0ffee",
    )
    assert [(e["start_ns"], e["end_ns"], e["reason"]) for e in ledger.excluded(rid)] == [
        (11, 13, "power cut")
    ]
    assert sorted((e["event_id"], e["partition"], e["offset"]) for e in ledger.events(rid)) == [
        ("e1", 0, 5),
        ("e2", 1, 9),
    ]
    assert [(o["topic"], o["offset"]) for o in ledger.outputs(rid)] == [
        ("mmstream.results.temporal", 42)
    ]


def test_rewriting_a_run_after_a_crash_adds_no_rows(ledger: Ledger) -> None:
    rid = _rid()
    for _ in range(3):
        ledger.record_run(
            _run(rid), [("ic", 1, 2, "data gap")], [UsedEvent("e", "ic", "t", 0, 1, 1)]
        )
        ledger.record_outputs(rid, [("result", "r", 0, 1)])
    assert len(ledger.excluded(rid)) == 1
    assert len(ledger.events(rid)) == 1
    assert len(ledger.outputs(rid)) == 1
    assert len(ledger.runs_of_alert("S1")) == 1


def test_a_unique_prefix_finds_a_run_and_an_ambiguous_one_does_not(ledger: Ledger) -> None:
    ledger.record_run(_run("aaaa1111-0000-0000-0000-000000000000"))
    ledger.record_run(_run("aaaa2222-0000-0000-0000-000000000000"))
    found = ledger.run("aaaa1")
    assert found is not None and found["result_id"].startswith("aaaa1111")
    assert ledger.run("aaaa") is None
    assert ledger.run("ffff") is None


def test_status_changes_and_input_upsert(ledger: Ledger) -> None:
    rid = _rid()
    ledger.record_run(_run(rid))
    ledger.set_status(rid, "superseded")
    run = ledger.run(rid)
    assert run is not None and run["status"] == "superseded"

    ledger.record_input("t", 0, 3, status="decoded", received_at="x", alert_id="S9")
    ledger.record_input("t", 0, 3, status="duplicate", received_at="y", alert_id="S9")
    (row,) = ledger.inputs_of("S9")
    assert (row["status"], row["offset"]) == ("duplicate", 3)


def test_lineage_walks_down_to_raw_events_and_up_to_every_result(ledger: Ledger) -> None:
    # raw r1, r2 -> level-2 a (from r1, r2), b (from r2) -> level-4 x (from a), y (from b)
    first, second = _rid(), _rid()
    ledger.record_run(
        _run(first), events=[UsedEvent("x", "ic", "t", 0, 1, 1)], parents=[("x", "a")]
    )
    ledger.record_run(
        _run(second, alert_id="S2"),
        events=[UsedEvent("y", "ic", "t", 0, 2, 2)],
        parents=[("y", "b"), ("b", "r2"), ("a", "r1"), ("a", "r2")],
    )
    down = {k: set(v) for k, v in ledger.ancestors(["x"]).items()}
    assert down == {"x": {"a"}, "a": {"r1", "r2"}}

    assert {r["result_id"] for r in ledger.results_using("r2")} == {first, second}
    assert {r["result_id"] for r in ledger.results_using("r1")} == {first}
    assert {r["result_id"] for r in ledger.results_using("b")} == {second}
    assert ledger.results_using("nobody") == []


def test_lineage_lookups_are_indexed(ledger: Ledger) -> None:
    insp = inspect(ledger.engine)

    def indexed(table: str) -> set[str]:
        cols = {c for ix in insp.get_indexes(table) for c in ix["column_names"][:1]}
        cols |= {u["column_names"][0] for u in insp.get_unique_constraints(table)}
        return cols

    assert {"event_id", "parent_id"} <= indexed("event_parents")
    assert {"event_id", "result_id"} <= indexed("run_events")
    assert "alert_id" in indexed("runs")


class _Stopped(Exception):
    """The process stopping between two of a run's event transactions."""


def test_events_go_in_transactions_and_a_stop_between_them_leaves_the_marker(
    ledger: Ledger,
) -> None:
    from mmstream.ledger.store import EVENTS_PER_TRANSACTION

    rid = _rid()
    n = 2 * EVENTS_PER_TRANSACTION + 5  # three transactions
    rows = [(rid, f"e{i}", "ic", "det.ic", 0, i, i) for i in range(n)]
    ledger.record_run_head(_run(rid), events_to_come=True)
    pauses: list[int] = []

    def stop_at_the_third() -> None:
        pauses.append(len(pauses))
        if len(pauses) == 3:
            raise _Stopped

    with pytest.raises(_Stopped):
        ledger.record_run_events(rid, rows, pause=stop_at_the_third)
    assert len(ledger.events(rid)) == 2 * EVENTS_PER_TRANSACTION
    assert ledger.events_unrecorded(rid), "a partial record must say so"
    ledger.record_run_events(rid, rows, pause=lambda: None)  # the re-run after a restart
    assert sorted(e["offset"] for e in ledger.events(rid)) == list(range(n))
    assert not ledger.events_unrecorded(rid)
