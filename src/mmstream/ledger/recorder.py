"""What the service tells the ledger: an observer of the stream's events.

The ledger is a record, not a gate: a failed ledger write is logged and counted, and the
service goes on (results are already safe in Kafka, and a re-run rewrites the same rows).

Only a run's own row is written on the loop, before its result is published: a process
that stops after the commit leaves it ``pending``, and the next one settles it when it
reads the result back from Kafka. Everything else (inputs, outputs, statuses, job states,
statistics, the events a run used) goes to the ledger's thread in the order it happened
(ledger/writer.py), off the alert's path: a stop can lose the last of these rows, never a
result, and the run's row names its alert's topic, partition and offset.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from itertools import repeat
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel

from mmstream import __version__
from mmstream.analyses.registry import AnalysisSpec, params_sha256
from mmstream.formats.headers import compact_json
from mmstream.formats.run_stats import decode_run_stats
from mmstream.ledger.jobs import JobRow, interrupt_open, record_state, record_stats, settle_state
from mmstream.ledger.store import Ledger, RunRecord
from mmstream.ledger.writer import BackgroundWrites
from mmstream.model import Alert, ResultStatus
from mmstream.ops.logging import get_logger
from mmstream.provenance.headers import git_commit
from mmstream.stream.events import Delivered, Events
from mmstream.stream.jobwatch import kind_of
from mmstream.stream.runs import Job, Retraction, RunReport
from mmstream.stream.runstats import process_host
from mmstream.times import format_utc, now_ns

log = get_logger("mmstream.ledger")
RUN_STATUS = {"FAILED": "failed", "TIMED_OUT": "failed", "RETRACTED": "retracted"}  # by result
LEDGER_ERRORS = Counter("mmstream_ledger_errors_total", "Ledger writes that failed")


class Recorder(Events):
    """Writes inputs, runs and outputs to the ledger; never raises."""

    def __init__(self, ledger: Ledger | None, run_tag: str) -> None:
        self.ledger = ledger
        self.run_tag = run_tag
        self.host = process_host()  # by whom, where
        self._pending: set[str] | None = None  # runs left pending, loaded at the first result
        self._born_superseded: set[str] = set()  # a later revision's result was out first
        self.writes = BackgroundWrites(ledger, self._failed) if ledger is not None else None
        at = format_utc(now_ns())
        self._safely("interrupted jobs", lambda lg: log.info(
            "ledger: jobs left open by a stopped process", run_tag=run_tag,
            interrupted=interrupt_open(lg, run_tag, at)))  # fmt: skip

    def _failed(self, what: str, exc: Exception) -> None:
        LEDGER_ERRORS.inc()
        log.error("ledger write failed", what=what, error=str(exc))

    def close(self) -> None:
        """Finish the writes handed to the background (the service's stop, a replay's end)."""
        if self.writes is not None:
            self.writes.close()

    def _safely(self, what: str, write: Callable[[Ledger], None]) -> None:
        if self.ledger is None:
            return
        try:
            write(self.ledger)
        except Exception as exc:
            LEDGER_ERRORS.inc()
            log.error("ledger write failed", what=what, error=str(exc))

    def _later(self, what: str, write: Callable[[Ledger], None]) -> None:
        """On the ledger's thread, in order: writes nothing on the loop waits for."""
        if self.writes is not None:
            self.writes.submit(what, write)

    def alert_input(
        self, ref: tuple[str, int, int], status: str, alert: Alert | None = None,
        reason: str | None = None, archive: str | None = None,
    ) -> None:  # fmt: skip
        topic, partition, offset = ref
        self._later("input", lambda lg: lg.record_input(
            topic, partition, offset, status=status, received_at=format_utc(now_ns()),
            archive=archive,
            alert_id=alert.alert_id if alert else None,
            revision=alert.revision if alert else None,
            fmt=alert.ref.format if alert else None, reason=reason))  # fmt: skip

    def _job(self, job: Job) -> JobRow:
        a, answers = job.alert, job.key
        return JobRow(str(job.result_id), self.run_tag, job.spec.label, a.alert_id, a.revision,
                      answers[0], answers[1], answers[2] if job.commits_offset else None,
                      kind_of(job))  # fmt: skip

    def job_state(
        self, job: Job, state: str, detail: str = "", waiting_for: tuple[str, ...] = ()
    ) -> None:
        due = job.deadline_ns if state in ("received", "waiting") and not job.trigger else None
        deadline = format_utc(due) if due else None
        row, at = self._job(job), format_utc(now_ns())
        if self.writes is not None:  # a record: on the ledger's thread, in order
            self.writes.submit("job state", lambda lg: record_state(
                lg, row, state, at, detail or None, waiting_for=",".join(waiting_for) or None,
                deadline=deadline))  # fmt: skip

    def run_started(self, job: Job) -> None:
        self.job_state(job, "running")

    def run_abandoned(self, job: Job) -> None:
        self.job_state(job, "handed_over", "its alert partition went to another member")

    def _record(
        self, result_id: str, spec: AnalysisSpec[Any], params: BaseModel, params_json: str,
        alert: Alert, supersedes: str | None, **fields: Any,
    ) -> RunRecord:  # fmt: skip
        """A run's row: what every run shares (code, parameters, alert, where), plus ``fields``."""
        ref = alert.ref
        return RunRecord(
            result_id=result_id, run_tag=self.run_tag, analysis=spec.name, version=spec.version,
            alert_id=alert.alert_id, revision=alert.revision, alert_topic=ref.topic,
            alert_partition=ref.partition, alert_offset=ref.offset, params_json=params_json,
            params_sha256=params_sha256(params), mmstream_version=__version__,
            git_commit=git_commit(), handler_sha256=spec.source_sha256, host=self.host,
            status="pending", supersedes=supersedes, **fields,
        )  # fmt: skip

    def run_finished(self, r: RunReport) -> None:
        if self.ledger is None:
            return
        job, cost, inp = r.job, r.cost, r.inp
        record = self._record(
            r.result_id, job.spec, job.params, compact_json(job.params.model_dump(mode="json")),
            job.alert, r.supersedes,
            started_at=cost.started_at, ended_at=cost.ended_at, cpu_s=cost.cpu_s,
            peak_memory_bytes=cost.peak_memory_bytes, result_status=str(r.status),
            error=r.error, window_start_ns=job.window.start_ns, window_end_ns=job.window.end_ns,
            livetime_fraction=inp.livetime_fraction(),
            statistics_json=json.dumps(dict(r.outcome.statistics), sort_keys=True),
            summary=r.outcome.summary,
        )  # fmt: skip
        excluded = [
            (d, e.start_ns, e.end_ns, e.reason)
            for d, lt in sorted(inp.livetime.items()) if lt is not None for e in lt.excluded
        ]  # fmt: skip
        conditions = [(d, key, a, b, compact_json(v)) for d, keys in sorted(r.conditions.items())
                      for key, spans in sorted(keys.items()) for a, b, v in spans]  # fmt: skip
        # the run's own row now, before its result goes out; its events (thousands) after it,
        # on the ledger's thread (ledger/writer.py): they are copies, nothing changes them
        self._safely("run", lambda lg: lg.record_run_head(record, excluded, conditions,
                                                          events_to_come=True))  # fmt: skip
        parents, rid = r.parents, r.result_id
        # only the four columns the rows need are held while the write waits (writer.py)
        held = [(d, r.event_topics.get(d, ""), c.event_id, c.partition, c.offset, c.time_ns)
                for d, c in inp.events.items()]  # fmt: skip
        pause = self.writes.pause if self.writes is not None else None

        def used(lg: Ledger) -> None:
            # rows zipped straight from the columns: no object per event (the loop shares
            # the interpreter with this thread)
            rows = itertools.chain.from_iterable(
                zip(repeat(rid), ids.tolist(), repeat(d), repeat(topic), part.tolist(),
                    off.tolist(), t.tolist())
                for d, topic, ids, part, off, t in held
            )  # fmt: skip
            edges = [(child, parent) for child, ps in parents.items() for parent in ps]
            lg.record_run_events(rid, rows, edges, pause=pause)

        if self.writes is not None:
            self.writes.submit("run events", used, sum(len(h[2]) for h in held))
        if r.status in (ResultStatus.FAILED, ResultStatus.TIMED_OUT):
            self.job_state(job, str(r.status).lower(), r.error or r.outcome.summary)
        elif r.newer is not None:  # its result is born superseded (compose.py)
            self._born_superseded.add(r.result_id)

    def retracted(self, r: Retraction) -> None:
        """A RETRACTED result: no window, no events; it retracts the result it supersedes."""
        if self.ledger is None:
            return
        at = format_utc(now_ns())
        alert = r.alert
        record = self._record(
            r.result_id, r.spec, r.params, compact_json(r.params.model_dump(mode="json")), alert,
            r.supersedes, started_at=at, ended_at=at, cpu_s=None, peak_memory_bytes=None,
            result_status="RETRACTED", error=None, window_start_ns=None, window_end_ns=None,
            livetime_fraction=None, statistics_json="{}", summary=f"{alert.alert_id} retracted",
        )  # fmt: skip
        self._safely("retraction", lambda lg: lg.record_run(record))

    def published(
        self, alert_id: str | None, delivered: list[Delivered], took_s: float,
        since_arrival_s: float | None,
    ) -> None:  # fmt: skip
        """The run's messages are committed: record where they are, settle statuses."""
        outputs: dict[str, list[tuple[str, str, int, int]]] = {}
        supersedes: dict[str, str | None] = {}
        for d in delivered:
            if d.kind == "stats" and d.value is not None:
                self._stats(d, took_s)
                continue
            if d.kind == "deadletter" or d.result_id is None:
                continue
            outputs.setdefault(d.result_id, []).append((d.kind, d.landed, d.partition, d.offset))
            supersedes[d.result_id] = d.supersedes
        for rid, outs in outputs.items():
            self._settle(rid, outs, supersedes[rid])

    def result_seen(
        self, result_id: str, kind: str, topic: str, partition: int, offset: int,
        supersedes: str | None,
    ) -> None:  # fmt: skip
        """A result of ours read back from Kafka: a run the ledger still has as pending (its
        process died between the Kafka commit and the ledger write) is settled now."""
        if self.ledger is None:
            return
        if self._pending is None:
            try:
                self._pending = self.ledger.pending_ids()
            except Exception as exc:
                LEDGER_ERRORS.inc()
                log.error("ledger read failed", what="pending runs", error=str(exc))
                self._pending = set()
        if result_id in self._pending:
            self._pending.discard(result_id)
            log.info("ledger: a run left pending is in Kafka; settled", result_id=result_id)
            self._settle(result_id, [(kind, topic, partition, offset)], supersedes)

    def _stats(self, d: Delivered, took_s: float) -> None:
        """The statistics record as it went out, with the commit's duration."""
        value, where = d.value or b"", (d.landed, d.partition, d.offset)
        self._later("run statistics", lambda lg: record_stats(lg, decode_run_stats(value),
                                                               where, took_s))  # fmt: skip

    def _settle(
        self, result_id: str, outputs: list[tuple[str, str, int, int]], supersedes: str | None
    ) -> None:
        """Outputs, run statuses and job states, on the ledger's thread after what was handed
        to it before (the run's events among them)."""
        at = format_utc(now_ns())
        born_superseded = result_id in self._born_superseded
        self._born_superseded.discard(result_id)

        def write(lg: Ledger) -> None:
            lg.record_outputs(result_id, outputs)
            run = lg.run(result_id)
            status = RUN_STATUS.get((run["result_status"] if run else None) or "", "completed")
            lg.set_status(result_id, status)
            then = "retracted" if status == "retracted" else "superseded"
            if supersedes:
                lg.set_status(supersedes, then)
            if born_superseded:
                settle_state(lg, result_id, "superseded", at, "a later revision's result was "
                             "published before it came")  # fmt: skip
            else:
                settle_state(lg, result_id, "published", at, f"result {status}")
            if supersedes:
                settle_state(lg, supersedes, then, at, f"by result {result_id}")

        self._later("published", write)
