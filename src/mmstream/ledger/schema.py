"""The ledger's tables (SQLAlchemy Core: one definition for SQLite and PostgreSQL).

inputs      every message consumed from an alert topic, and what became of it
runs        every analysis run: code, parameters, host, resources, status, window, livetime
excluded    the time ranges a run left out, and why
outputs     every message a run published (topic, partition, offset)
run_events  the detector events a run used (indexed by event id: event -> results)
event_parents  derived-from edges between detector events (indexed both ways)
jobs        every (alert revision, analysis) job: its state now, and why (ledger/jobs.py)
job_states  every state a job passed through, with its time and detail
run_stats   what each published run cost, as sent on the statistics topic (+ the commit)
unrecorded_events  runs whose detector events are still being written (ledger/writer.py)
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

inputs = Table(
    "inputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("alert_id", String(255)),
    Column("revision", String(255)),
    Column("format", String(32)),
    Column("status", String(32), nullable=False),  # decoded / deadletter / duplicate / skipped
    Column("reason", Text),
    Column("received_at", String(40), nullable=False),
    Column("archive", Text),  # the raw-archive file holding the message
    UniqueConstraint("topic", "partition", "offset", name="uq_inputs_position"),
    Index("ix_inputs_alert", "alert_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("result_id", String(36), primary_key=True),
    Column("run_tag", String(255), nullable=False),  # instance name, or a replay's sandbox
    Column("analysis", String(255), nullable=False),
    Column("version", String(64), nullable=False),
    Column("alert_id", String(255), nullable=False),
    Column("revision", String(255), nullable=False),
    Column("alert_topic", String(255)),
    Column("alert_partition", Integer),
    Column("alert_offset", BigInteger),
    Column("params_json", Text, nullable=False),
    Column("params_sha256", String(64), nullable=False),
    Column("mmstream_version", String(64), nullable=False),
    Column("git_commit", String(64)),
    Column("handler_sha256", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("ended_at", String(40)),
    Column("cpu_s", Float),
    Column("peak_memory_bytes", BigInteger),
    Column("status", String(32), nullable=False),  # pending/completed/failed/superseded/retracted
    Column("result_status", String(32)),  # the status in the result message
    Column("error", Text),
    Column("window_start_ns", BigInteger),
    Column("window_end_ns", BigInteger),
    Column("livetime_fraction", Float),
    Column("supersedes", String(36)),
    Column("statistics_json", Text),
    Column("summary", Text),
    Index("ix_runs_alert", "alert_id", "analysis"),
    Index("ix_runs_tag", "run_tag"),
    Index("ix_runs_supersedes", "supersedes"),
)

excluded = Table(
    "excluded",
    metadata,
    Column("result_id", String(36), nullable=False, index=True),
    Column("detector", String(255), nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
)

conditions = Table(  # the detector conditions in effect over a run's window
    "conditions",
    metadata,
    Column("result_id", String(36), nullable=False, index=True),
    Column("detector", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("value_json", Text, nullable=False),
)

outputs = Table(
    "outputs",
    metadata,
    Column("result_id", String(36), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # result / notice
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    UniqueConstraint("topic", "partition", "offset", name="uq_outputs_position"),
)

run_events = Table(
    "run_events",
    metadata,
    Column("result_id", String(36), nullable=False, index=True),
    Column("event_id", String(255), nullable=False, index=True),
    Column("detector", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("time_ns", BigInteger, nullable=False),
)

event_parents = Table(
    "event_parents",
    metadata,
    Column("event_id", String(255), nullable=False, index=True),
    Column("parent_id", String(255), nullable=False, index=True),
    UniqueConstraint("event_id", "parent_id", name="uq_event_parent"),
)

jobs = Table(  # one row per job (its id is the result id it makes): the state it is in now
    "jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("run_tag", String(255), nullable=False),
    Column("analysis", String(255), nullable=False),  # name@version
    Column("alert_id", String(255), nullable=False),
    Column("revision", String(255), nullable=False),
    Column("alert_topic", String(255)),
    Column("alert_partition", Integer),
    Column("alert_offset", BigInteger),
    Column("kind", String(32), nullable=False),  # alert / late-data update / partner update
    # received / waiting / running / published / failed / timed_out / superseded /
    # retracted / deadlettered / handed_over / dropped
    Column("state", String(32), nullable=False),
    Column("detail", Text),  # why it waits, what failed, ...
    Column("waiting_for", Text),  # detectors whose data it waits for (comma-separated)
    Column("deadline", String(40)),  # it runs at the latest then, waited for or not
    Column("received_at", String(40)),
    Column("updated_at", String(40), nullable=False),
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_alert", "alert_id"),
)

job_states = Table(
    "job_states",
    metadata,
    Column("job_id", String(36), nullable=False, index=True),
    Column("state", String(32), nullable=False),
    Column("at", String(40), nullable=False),
    Column("detail", Text),
)

run_stats = Table(  # the statistics record of each published run (schemas/run_stats.avsc)
    "run_stats",
    metadata,
    Column("result_id", String(36), primary_key=True),
    Column("analysis", String(255), nullable=False),
    Column("analysis_version", String(64), nullable=False),
    Column("alert_id", String(255), nullable=False),
    Column("revision", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("instance", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("ended_at", String(40), nullable=False),
    Column("queue_wait_s", Float, nullable=False),
    Column("wall_s", Float, nullable=False),
    Column("cpu_s", Float, nullable=False),
    Column("peak_memory_bytes", BigInteger, nullable=False),
    Column("events_read", BigInteger, nullable=False),
    Column("bytes_read", BigInteger, nullable=False),
    Column("decode_s", Float),
    Column("publish_wait_s", Float, nullable=False),
    Column("alert_to_result_s", Float),
    Column("sent_at", String(40), nullable=False),
    Column("transaction_s", Float),  # the commit, known only after it (not on the topic)
    Column("stats_topic", String(255)),
    Column("stats_partition", Integer),
    Column("stats_offset", BigInteger),
    Index("ix_run_stats_analysis", "analysis"),
)

unrecorded_events = Table(  # a run's events are written after its result is out: until then
    "unrecorded_events",
    metadata,
    Column("result_id", String(36), primary_key=True),
)
