"""The ledger's tables (SQLAlchemy Core: one definition for SQLite and PostgreSQL).

inputs      every message consumed from an alert topic, and what became of it
runs        every analysis run: code, parameters, host, resources, status, window, livetime
excluded    the time ranges a run left out, and why
outputs     every message a run published (topic, partition, offset)
run_events  the detector events a run used (indexed by event id: event -> results)
event_parents  derived-from edges between detector events (indexed both ways)
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
