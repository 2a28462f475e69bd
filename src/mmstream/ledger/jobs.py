"""Job states and run statistics in the ledger: written by the recorder, asked by
``mmstream jobs``, ``mmstream stats`` and the operator's console.

A job is one (alert revision, analysis) pair, or a re-run of one (late data, a partner
alert's change); its id is the result id it makes. It moves through states:

    received -> waiting -> running -> published | failed | timed_out
                                   -> superseded | retracted (later, by another result)
    or deadlettered (its alert could not be scheduled), handed_over (its partition went to
    another member), dropped (a partner update whose alert was retracted meanwhile), or
    interrupted (open when its process stopped: a restart re-reads its alert, unless the
    result was committed, and then the restart settles it published)

``jobs`` holds each job's state now, ``job_states`` every state with its time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select, update

from mmstream.ledger import schema
from mmstream.ledger.store import Ledger

STATES = ("received", "waiting", "running", "published", "failed", "timed_out", "superseded",
          "retracted", "deadlettered", "handed_over", "dropped", "interrupted")  # fmt: skip
OPEN_STATES = ("received", "waiting", "running")
# what a publication may settle: a job replaced meanwhile (superseded, retracted) or judged
# by its own run (failed, timed_out) keeps that state
PUBLISHABLE = (*OPEN_STATES, "interrupted")


@dataclass(frozen=True)
class JobRow:
    """A job's identity, as the recorder knows it when it first sees the job."""

    job_id: str
    run_tag: str
    analysis: str
    alert_id: str
    revision: str
    alert_topic: str | None
    alert_partition: int | None
    alert_offset: int | None
    kind: str


def record_state(
    ledger: Ledger, job: JobRow, state: str, at: str, detail: str | None = None, *,
    waiting_for: str | None = None, deadline: str | None = None,
) -> None:  # fmt: skip
    """One state of one job: its row now, and the history row."""
    row = dict(job_id=job.job_id, run_tag=job.run_tag, analysis=job.analysis,
               alert_id=job.alert_id, revision=job.revision, alert_topic=job.alert_topic,
               alert_partition=job.alert_partition, alert_offset=job.alert_offset, kind=job.kind,
               state=state, detail=detail, waiting_for=waiting_for, deadline=deadline,
               received_at=at if state == "received" else None, updated_at=at)  # fmt: skip
    ledger.upsert(schema.jobs, [row], key=("job_id",), replace=True,
                  keep=("received_at", "deadline", "alert_topic", "alert_partition",
                        "alert_offset"))  # fmt: skip
    with ledger.begin() as conn:
        conn.execute(schema.job_states.insert(), [dict(job_id=job.job_id, state=state, at=at,
                                                       detail=detail)])  # fmt: skip


def settle_state(ledger: Ledger, job_id: str, state: str, at: str, detail: str | None) -> None:
    """A job known by id only (a result that superseded or retracted it, a publication):
    its state moves, unless its own run failed or timed out (that verdict stays)."""
    with ledger.begin() as conn:
        t = schema.jobs
        found = conn.execute(select(t.c.state).where(t.c.job_id == job_id)).first()
        if found is None:  # its states were lost with its process: made from its run's row
            _job_from_run(conn, job_id, state, at, detail)
            return
        if state == "published" and found[0] not in PUBLISHABLE:
            return
        conn.execute(update(t).where(t.c.job_id == job_id)
                     .values(state=state, detail=detail, updated_at=at))  # fmt: skip
        conn.execute(schema.job_states.insert(), [dict(job_id=job_id, state=state, at=at,
                                                       detail=detail)])  # fmt: skip


def interrupt_open(ledger: Ledger, run_tag: str, at: str) -> int:
    """At a start: this instance's jobs still open are ``interrupted`` (their process
    stopped); a re-read alert makes them again, a result found in Kafka settles them."""
    t = schema.jobs
    detail = "its process stopped before it finished"
    open_here = select(t.c.job_id).where(t.c.run_tag == run_tag, t.c.state.in_(OPEN_STATES))
    runs = schema.runs
    with ledger.begin() as conn:
        ids = [r[0] for r in conn.execute(open_here)]
        if ids:
            conn.execute(update(t).where(t.c.job_id.in_(ids))
                         .values(state="interrupted", detail=detail, updated_at=at))  # fmt: skip
            rows = [dict(job_id=i, state="interrupted", at=at, detail=detail) for i in ids]
            conn.execute(schema.job_states.insert(), rows)
    # a run the ledger settled whose job state was still to be written (the run's status and
    # its job state are two transactions of the ledger's thread): the run's status says it
    settled = select(runs.c.result_id, runs.c.status).where(
        runs.c.result_id.in_(ids), runs.c.status != "pending"
    )
    with ledger.engine.connect() as conn:
        found = [(str(r[0]), str(r[1])) for r in conn.execute(settled)]
    for job_id, status in found:
        state = {"completed": "published"}.get(status, status)
        settle_state(ledger, job_id, state, at, f"run {status} (settled at start)")
    return len(ids)


def _job_from_run(conn: Any, job_id: str, state: str, at: str, detail: str | None) -> None:
    r = schema.runs
    run = conn.execute(select(r).where(r.c.result_id == job_id)).mappings().first()
    if run is None:
        return
    conn.execute(schema.jobs.insert(), [dict(
        job_id=job_id, run_tag=run["run_tag"], analysis=f"{run['analysis']}@{run['version']}",
        alert_id=run["alert_id"], revision=run["revision"], alert_topic=run["alert_topic"],
        alert_partition=run["alert_partition"], alert_offset=run["alert_offset"],
        kind="alert", state=state, detail=detail, updated_at=at)])  # fmt: skip
    conn.execute(schema.job_states.insert(), [dict(job_id=job_id, state=state, at=at,
                                                   detail=detail)])  # fmt: skip


def jobs(
    ledger: Ledger, *, states: Sequence[str] = (), analysis: str | None = None,
    alert: str | None = None, since: str | None = None, until: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:  # fmt: skip
    """Jobs newest first, filtered: by state, analysis (name or name@version), alert id,
    and last change within [since, until] (UTC ISO strings compare as times)."""
    t = schema.jobs
    q = select(t).order_by(t.c.updated_at.desc()).limit(limit)
    if states:
        q = q.where(t.c.state.in_(list(states)))
    if analysis:
        q = q.where((t.c.analysis == analysis) | t.c.analysis.startswith(f"{analysis}@"))
    if alert:
        q = q.where(t.c.alert_id == alert)
    return _rows_between(ledger, q, t.c.updated_at, since, until)


def _rows_between(
    ledger: Ledger, q: Any, column: Any, since: str | None, until: str | None
) -> list[dict[str, Any]]:
    """The query's rows with ``column`` in [since, until] (UTC ISO strings compare as times)."""
    if since:
        q = q.where(column >= since)
    if until:
        q = q.where(column <= until)
    with ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def history(ledger: Ledger, job_id: str) -> list[dict[str, Any]]:
    """Every state a job passed through, oldest first."""
    t = schema.job_states
    with ledger.engine.connect() as conn:
        q = select(t).where(t.c.job_id == job_id).order_by(t.c.at)
        return [dict(r) for r in conn.execute(q).mappings()]


def record_stats(ledger: Ledger, record: dict[str, Any], where: tuple[str, int, int],
                 transaction_s: float) -> None:  # fmt: skip
    """The statistics record of a published run, as it went out, with where it landed and
    the commit's duration (known only after it)."""
    topic, partition, offset = where
    row = {c.name: record.get(c.name) for c in schema.run_stats.columns}
    row |= dict(transaction_s=transaction_s, stats_topic=topic, stats_partition=partition,
                stats_offset=offset)  # fmt: skip
    ledger.upsert(schema.run_stats, [row], key=("result_id",), replace=True)


def stats(
    ledger: Ledger, *, analysis: str | None = None, since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The statistics records, oldest first (by when they were sent)."""
    t = schema.run_stats
    q = select(t).order_by(t.c.sent_at)
    if analysis:  # the records name the analysis without its version
        q = q.where(t.c.analysis == analysis.split("@")[0])
    return _rows_between(ledger, q, t.c.sent_at, since, until)


SUMMARY_FIELDS = ("alert_to_result_s", "queue_wait_s", "wall_s", "cpu_s", "publish_wait_s",
                  "peak_memory_bytes", "events_read")  # fmt: skip


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per analysis: the count, and p50/p95/p99 of each figure; the trend is the median of
    the newer half of the runs over the median of the older half (> 1: getting slower)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["analysis"], []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for name, runs in sorted(by.items()):
        entry: dict[str, Any] = {"runs": len(runs)}
        for f in SUMMARY_FIELDS:
            values = np.array([r[f] for r in runs if r[f] is not None], dtype=float)
            if values.size == 0:
                continue
            p50, p95, p99 = np.percentile(values, [50, 95, 99]).tolist()
            half = values.size // 2
            old, new = values[:half], values[half:]
            trend = (float(np.median(new) / np.median(old))
                     if half and float(np.median(old)) > 0 else None)  # fmt: skip
            entry[f] = {"p50": p50, "p95": p95, "p99": p99, "trend": trend}
        out[name] = entry
    return out
