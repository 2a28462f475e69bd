"""The ledger: what was consumed, run and published, kept in SQLite or PostgreSQL.

Kafka stays the source of truth for results; the ledger is the searchable record of how
each one was made. Every write is idempotent (keyed by result id or Kafka position), so a
re-run after a crash rewrites the same rows instead of adding new ones.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mmstream.ledger import schema


@dataclass
class RunRecord:
    """One analysis run, as the ledger keeps it (``runs`` table)."""

    result_id: str
    run_tag: str
    analysis: str
    version: str
    alert_id: str
    revision: str
    alert_topic: str | None
    alert_partition: int | None
    alert_offset: int | None
    params_json: str
    params_sha256: str
    mmstream_version: str
    git_commit: str | None
    handler_sha256: str
    host: str
    started_at: str
    ended_at: str | None
    cpu_s: float | None
    peak_memory_bytes: int | None
    status: str
    result_status: str | None
    error: str | None
    window_start_ns: int | None
    window_end_ns: int | None
    livetime_fraction: float | None
    supersedes: str | None
    statistics_json: str | None
    summary: str | None


@dataclass(frozen=True)
class UsedEvent:
    event_id: str
    detector: str
    topic: str
    partition: int
    offset: int
    time_ns: int


# ~1.5 ms of SQLite's time: the longest the loop waits for the ledger's lock (with 2,000,
# a run's own row waited up to 38 ms at p99 at 10^5 buffered events)
EVENTS_PER_TRANSACTION = 500


def sqlite_url(directory: Path) -> str:
    """The ledger's file in ``directory`` (made owner-only: 0700; the file itself 0600)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite:///{directory / 'ledger.sqlite3'}"


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Ledger:
    """Write and query the ledger at ``url`` (``sqlite:///file`` or ``postgresql+psycopg://``)."""

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.url = url
        self.engine: Engine
        if url.startswith("sqlite"):
            path = url.removeprefix("sqlite:///")
            if path and not path.startswith(":") and not os.path.exists(path):
                # owner-only from its first byte: the ledger says what ran on which data;
                # SQLite gives its -wal and -shm files the database file's mode
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            # several processes may share one file: wait for locks instead of failing
            self.engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_wal)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        schema.metadata.create_all(self.engine)
        self._write_lock = threading.Lock()

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction. The service writes from two threads (its loop and the ledger's
        writer, ledger/writer.py): they take turns on this lock, not on SQLite's busy handler,
        which sleeps 1, 2, 5, 10, 15 ms ... between its tries and so kept the loop waiting
        long after the other thread's transaction had ended (p95 44 ms for a run's row)."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writes
    def upsert(
        self,
        table: Table,
        rows: Sequence[dict[str, Any]],
        *,
        key: Sequence[str],
        replace: bool = False,
        keep: Sequence[str] = (),
    ) -> None:
        """Insert rows; where the ``key`` columns exist already, keep (or ``replace``) the row;
        when replacing, a NULL never overwrites the ``keep`` columns."""
        if not rows:
            return
        with self.begin() as conn:
            self._upsert_in(conn, table, rows, key=key, replace=replace, keep=keep)

    def _upsert_in(
        self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *,
        key: Sequence[str], replace: bool = True, keep: Sequence[str] = (),
    ) -> None:  # fmt: skip
        dialect = self.engine.dialect.name
        ins = (postgresql if dialect == "postgresql" else sqlite).insert(table)
        if replace:
            cols = [c for c in rows[0] if c not in key]
            new = {c: ins.excluded[c] for c in cols}
            new |= {c: func.coalesce(ins.excluded[c], table.c[c]) for c in keep}
            stmt = ins.on_conflict_do_update(index_elements=list(key), set_=new)
        else:
            stmt = ins.on_conflict_do_nothing(index_elements=list(key))
        conn.execute(stmt, list(rows))

    def record_input(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        status: str,
        received_at: str,
        alert_id: str | None = None,
        revision: str | None = None,
        fmt: str | None = None,
        reason: str | None = None,
        archive: str | None = None,
    ) -> None:
        row = dict(topic=topic, partition=partition, offset=offset, alert_id=alert_id,
                   revision=revision, format=fmt, status=status, reason=reason,
                   received_at=received_at, archive=archive)  # fmt: skip
        self.upsert(schema.inputs, [row], key=("topic", "partition", "offset"), replace=True,
                     keep=("archive",))  # fmt: skip

    def record_run(
        self,
        run: RunRecord,
        excluded: Iterable[tuple[str, int, int, str]] = (),
        events: Iterable[UsedEvent] = (),
        parents: Iterable[tuple[str, str]] = (),
        conditions: Iterable[tuple[str, str, int, int, str]] = (),
    ) -> None:
        """Write (or rewrite) a run with its excluded intervals, the events it used and their
        derived-from edges, and the conditions in effect (detector, key, start, end, value)."""
        self.record_run_head(run, excluded, conditions, events_to_come=True)
        rid = run.result_id
        rows = [(rid, e.event_id, e.detector, e.topic, e.partition, e.offset, e.time_ns)
                for e in events]  # fmt: skip
        self.record_run_events(rid, rows, parents)

    def record_run_head(
        self, run: RunRecord, excluded: Iterable[tuple[str, int, int, str]] = (),
        conditions: Iterable[tuple[str, str, int, int, str]] = (), *, events_to_come: bool,
    ) -> None:  # fmt: skip
        """A run's row, its excluded intervals and conditions, in one transaction; with
        ``events_to_come``, a marker that its events are not written yet."""
        rid = run.result_id
        with self.begin() as conn:
            self._upsert_in(conn, schema.runs, [asdict(run)], key=("result_id",))
            for table in (schema.excluded, schema.conditions, schema.unrecorded_events):
                conn.execute(table.delete().where(table.c.result_id == rid))
            cond = [dict(result_id=rid, detector=d, key=k, start_ns=a, end_ns=b, value_json=v)
                    for d, k, a, b, v in conditions]  # fmt: skip
            if cond:
                conn.execute(schema.conditions.insert(), cond)
            ex = [dict(result_id=rid, detector=d, start_ns=a, end_ns=b, reason=r)
                  for d, a, b, r in excluded]  # fmt: skip
            if ex:
                conn.execute(schema.excluded.insert(), ex)
            if events_to_come:
                conn.execute(schema.unrecorded_events.insert(), [dict(result_id=rid)])

    def record_run_events(
        self, result_id: str, rows: Iterable[tuple[Any, ...]],
        parents: Iterable[tuple[str, str]] = (), pause: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """The events a run used, as rows (result_id, event_id, detector, topic, partition,
        offset, time_ns), and their derived-from edges: ``EVENTS_PER_TRANSACTION`` rows to a
        transaction, ``pause`` called between them (ledger/writer.py); the run's marker is
        removed once all are in."""
        t, left = schema.run_events, iter(rows)
        with self.begin() as conn:
            conn.execute(t.delete().where(t.c.result_id == result_id))  # a re-run's rows
        while chunk := list(itertools.islice(left, EVENTS_PER_TRANSACTION)):
            if pause is not None:
                pause()
            with self.begin() as conn:
                self._bulk(conn, t, chunk)
        with self.begin() as conn:
            u = schema.unrecorded_events
            conn.execute(u.delete().where(u.c.result_id == result_id))
        edges = [dict(event_id=c, parent_id=p) for c, p in parents]
        self.upsert(schema.event_parents, edges, key=("event_id", "parent_id"))

    def events_unrecorded(self, result_id: str) -> bool:
        """Whether the run's events were never all written (its process stopped first)."""
        return bool(self._rows(schema.unrecorded_events, "result_id", result_id))

    def _bulk(self, conn: Connection, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
        """Many rows through the driver's executemany: thousands of events a run, and
        SQLAlchemy's per-row dict handling would cost ~15 µs each."""
        cols = [c.name for c in table.columns]
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        names = ", ".join(f'"{c}"' for c in cols)  # quoted: "offset" is an SQL keyword
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join([mark] * len(cols))})"
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def record_outputs(self, result_id: str, outputs: Iterable[tuple[str, str, int, int]]) -> None:
        rows = [dict(result_id=result_id, kind=k, topic=t, partition=p, offset=o)
                for k, t, p, o in outputs]  # fmt: skip
        self.upsert(schema.outputs, rows, key=("topic", "partition", "offset"))

    def set_status(self, result_id: str, status: str) -> None:
        with self.begin() as conn:
            conn.execute(
                update(schema.runs)
                .where(schema.runs.c.result_id == result_id)
                .values(status=status)
            )

    # ----------------------------------------------------------------- queries
    def pending_ids(self) -> set[str]:
        """Runs not yet known to be published."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.runs.c.result_id)
                                .where(schema.runs.c.status == "pending"))  # fmt: skip
            return {str(r[0]) for r in rows}

    def run(self, result_id: str) -> dict[str, Any] | None:
        """The run that made ``result_id`` (a unique prefix of it is enough)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schema.runs).where(schema.runs.c.result_id.startswith(result_id)).limit(2)
            ).mappings().all()  # fmt: skip
        return dict(rows[0]) if len(rows) == 1 else None

    def _rows(self, table: Table, column: str, value: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).where(table.c[column] == value)).mappings().all()
        return [dict(r) for r in rows]

    def excluded(self, result_id: str) -> list[dict[str, Any]]:
        return self._rows(schema.excluded, "result_id", result_id)

    def conditions(self, result_id: str) -> list[dict[str, Any]]:
        return self._rows(schema.conditions, "result_id", result_id)

    def outputs(self, result_id: str) -> list[dict[str, Any]]:
        return self._rows(schema.outputs, "result_id", result_id)

    def events(self, result_id: str) -> list[dict[str, Any]]:
        return self._rows(schema.run_events, "result_id", result_id)

    def inputs_of(self, alert_id: str) -> list[dict[str, Any]]:
        return self._rows(schema.inputs, "alert_id", alert_id)

    def recent_alert_inputs(self, limit: int) -> list[tuple[str, list[dict[str, Any]]]]:
        """The decoded inputs of the newest ``limit`` alerts: newest alert first, each
        alert's revisions oldest first."""
        t = schema.inputs
        q = (select(t).where(t.c.status == "decoded", t.c.alert_id.is_not(None))
             .order_by(t.c.received_at.desc()).limit(limit * 5))  # fmt: skip
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        by: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by.setdefault(str(r["alert_id"]), []).insert(0, dict(r))
        return list(by.items())[:limit]

    def runs_of_alert(self, alert_id: str) -> list[dict[str, Any]]:
        return self._rows(schema.runs, "alert_id", alert_id)

    def superseded_by(self, result_id: str) -> list[dict[str, Any]]:
        return self._rows(schema.runs, "supersedes", result_id)

    def runs_tagged(self, run_tag: str) -> list[dict[str, Any]]:
        return self._rows(schema.runs, "run_tag", run_tag)

    def ancestors(self, event_ids: Iterable[str]) -> dict[str, list[str]]:
        """Each event's parents, walking down level by level (one indexed query per level)."""
        edges: dict[str, list[str]] = {}
        frontier = set(event_ids)
        t = schema.event_parents
        with self.engine.connect() as conn:
            while frontier:
                rows = conn.execute(select(t.c.event_id, t.c.parent_id)
                                    .where(t.c.event_id.in_(sorted(frontier)))).all()  # fmt: skip
                frontier = set()
                for child, parent in rows:
                    if parent not in edges.get(child, []):
                        edges.setdefault(child, []).append(parent)
                        if parent not in edges:
                            frontier.add(parent)
        return edges

    def results_using(self, event_id: str) -> list[dict[str, Any]]:
        """Every run that used this event or any event derived from it (walking up)."""
        t, re, r = schema.event_parents, schema.run_events, schema.runs
        seen, frontier = {event_id}, {event_id}
        with self.engine.connect() as conn:
            while frontier:
                rows = conn.execute(select(t.c.event_id).where(t.c.parent_id.in_(sorted(frontier))))
                frontier = {c for (c,) in rows} - seen
                seen |= frontier
            ids = conn.execute(
                select(re.c.result_id).where(re.c.event_id.in_(sorted(seen))).distinct()
            ).scalars().all()  # fmt: skip
            runs = conn.execute(select(r).where(r.c.result_id.in_(ids))).mappings().all()
        return [dict(x) for x in runs]
