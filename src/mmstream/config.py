"""One typed settings object, read from a TOML file and MMSTREAM_* / KAFKA_* environment.

Precedence, highest first: explicit keyword arguments, MMSTREAM_* environment variables,
the TOML file (``--config`` or $MMSTREAM_CONFIG), then the defaults here. Kafka client
settings come from the file's ``[kafka]`` table and KAFKA_* variables
(KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers; ``__`` -> ``-``, ``___`` -> ``_``); the
variables win, as in gcn-kafka.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mmstream.errors import ConfigError
from mmstream.formats.detector_schema import load_detector_schema
from mmstream.formats.limits import Limits
from mmstream.ledger.store import sqlite_url
from mmstream.stream.conditions import ContextRule
from mmstream.stream.settings import (
    AnalysisPolicy,
    RunLimits,
    SchedulePolicy,
    StreamSettings,
    Topics,
)

# Settings that hold secrets: never logged, never written to provenance.
SECRET_KAFKA_KEYS = frozenset(
    {"sasl.password", "sasl.oauthbearer.client.secret", "ssl.key.password"}
)


class AnalysisSettings(BaseModel):
    """Per-analysis overrides: its window (seconds around the alert time) and parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # None: on, except for analyses another distribution's entry point brings (opt-in:
    # installing a package must not start publishing a new public topic).
    enabled: bool | None = None
    window: tuple[float, float] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    time_limit_s: float | None = Field(default=None, gt=0)  # default: analysis_time_limit_s
    memory_limit_mb: float | None = Field(default=None, gt=0)


class ContextRuleSettings(BaseModel):
    """Time when ``key`` equals ``equals`` is excluded from the livetime, with ``reason``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    equals: str | float | int | bool | None
    reason: str
    detector: str | None = None  # None: every detector


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MMSTREAM_", extra="forbid", frozen=True)

    instance: str = Field(default_factory=lambda: f"mmstream@{os.uname().nodename}")
    group_id: str = "mmstream"
    alert_topics: tuple[str, ...] = ("igwn.gwalert",)
    detectors: tuple[str, ...] = ("icecube",)
    result_topic_prefix: str = "mmstream.results."
    notice_topic_prefix: str = "mmstream.notices."
    deadletter_topic: str = "mmstream.deadletter"
    stats_topic: str = "mmstream.stats.runs"  # one cost record per run (run_stats.avsc)
    lookback_s: float = 6 * 3600.0
    # Upstream heartbeats to watch (GCN sends gcn.heartbeat every second): a topic silent
    # for heartbeat_max_gap_s is logged and reported down (metric, dashboard).
    heartbeat_topics: tuple[str, ...] = ()
    heartbeat_max_gap_s: float = Field(default=60.0, gt=0)
    max_wait_s: float = 600.0
    max_status_gap_s: float = 300.0
    # A transactional Kafka call blocked longer than this restarts the process (or exits,
    # for a supervisor to restart it); see mmstream.stream.watchdog.
    stall_limit_s: float = 120.0
    # Detector events that arrive after their window's result was published: always counted;
    # with "rerun", the analysis runs again and publishes a result superseding the first,
    # once no late event has come for late_settle_s. Windows are watched for late_watch_s.
    # The provenance ledger: SQLite in data_dir unless ledger_url names another database
    # (e.g. postgresql://user@host/db); ledger = false turns it off.
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local/share/mmstream")
    ledger: bool = True
    ledger_url: str | None = None
    # Metrics, health and the dashboard on one HTTP port (None: off; 0: any free port).
    http_host: str = "127.0.0.1"
    http_port: int | None = 8321
    archive: bool = True  # every consumed message, byte-exact, under data_dir/archive
    measure_memory: bool = True  # peak memory of each run (tracemalloc: slows handlers a little)
    # Analyses run in this many worker processes (0: inline, on the polling thread: tests).
    workers: int = Field(default=1, ge=0)
    # A run longer than this is stopped: a TIMED_OUT result. One that allocates more than
    # the memory limit fails (FAILED, MemoryError). Per analysis in [analyses.<name>].
    analysis_time_limit_s: float = Field(default=600.0, gt=0)
    analysis_memory_limit_mb: float | None = Field(default=4096.0, gt=0)
    late_events: Literal["count", "rerun"] = "count"
    late_watch_s: float = 3600.0
    late_settle_s: float = 2.0
    on_stall: Literal["restart", "exit"] = "restart"
    create_topics: bool = True
    test_alerts: Literal["process", "skip"] = "process"
    routes: dict[str, str] = Field(
        default_factory=lambda: {
            "igwn.gwalert": "igwn",
            "gcn.notices.": "gcn-json",
            "gcn.classic.voevent.": "voevent",
        }
    )
    kafka: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)  # what one input may cost (formats/limits.py)
    analyses: dict[str, AnalysisSettings] = Field(default_factory=dict)
    # A detector's own event schema: its files, the current version first, then the older
    # ones its writers may still use (formats/detector_schema.py).
    detector_schemas: dict[str, list[Path]] = Field(default_factory=dict)
    # Conditions (detector.<d>.context) that exclude time from the livetime, with a reason.
    context_rules: list[ContextRuleSettings] = Field(default_factory=list)

    @field_validator("routes")
    @classmethod
    def _known_formats(cls, value: dict[str, str]) -> dict[str, str]:
        known = {"igwn", "gcn-json", "voevent", "auto"}
        unknown = {fmt for fmt in value.values() if fmt not in known}
        if unknown:
            raise ValueError(f"unknown formats {sorted(unknown)}; known: {sorted(known)}")
        return value

    @field_validator("result_topic_prefix")
    @classmethod
    def _prefix_is_not_an_input(cls, value: str) -> str:
        if not value:
            raise ValueError("result_topic_prefix must not be empty")
        return value

    def topics(self) -> Topics:
        """Every topic by role (the names are made in one place: stream/settings.py)."""
        return Topics(self.alert_topics, self.detectors, self.result_topic_prefix,
                      self.notice_topic_prefix, self.deadletter_topic,
                      self.heartbeat_topics, self.stats_topic)  # fmt: skip

    def detector_topic(self, detector: str) -> str:
        return self.topics().events(detector)

    def status_topic(self, detector: str) -> str:
        return self.topics().status(detector)

    def notice_topic(self, analysis: str) -> str:
        return self.topics().notice(analysis)

    def result_topic(self, analysis: str) -> str:
        return self.topics().result(analysis)

    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    def ledger_location(self) -> str | None:
        """The ledger's database URL, or None when the ledger is off."""
        if not self.ledger:
            return None
        return self.ledger_url or sqlite_url(self.data_dir)

    def stream(self, opt_in: Iterable[str] = ()) -> StreamSettings:
        """The stream's own settings objects (stages never read this class). ``opt_in``: the
        analyses that run only where ``[analyses.<name>] enabled = true`` says so."""
        analyses = {name: AnalysisSettings() for name in opt_in} | dict(self.analyses)
        return StreamSettings(
            kafka=self.kafka_config(),
            instance=self.instance,
            group_id=self.group_id,
            topics=self.topics(),
            schedule=SchedulePolicy(self.max_wait_s, self.test_alerts, self.late_events,
                                    self.late_watch_s, self.late_settle_s),
            run=RunLimits(self.workers, self.analysis_time_limit_s,
                          self.analysis_memory_limit_mb, self.measure_memory,
                          self.max_status_gap_s),
            limits=self.limits,
            analyses={name: AnalysisPolicy(
                          a.enabled if a.enabled is not None else name not in set(opt_in),
                          a.window, dict(a.params), a.time_limit_s, a.memory_limit_mb)
                      for name, a in analyses.items()},
            routes=dict(self.routes),
            lookback_s=self.lookback_s,
            stall_limit_s=self.stall_limit_s,
            create_topics=self.create_topics,
            archive_dir=self.archive_dir() if self.archive else None,
            heartbeat_max_gap_s=self.heartbeat_max_gap_s,
            detector_schemas={d: load_detector_schema(d, list(p))
                              for d, p in self.detector_schemas.items()},
            context_rules=tuple(ContextRule(r.key, r.equals, r.reason, r.detector)
                                for r in self.context_rules),
        )  # fmt: skip

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """Client settings: the file's [kafka] table, overridden by KAFKA_* variables."""
        config: dict[str, str | int | float | bool] = dict(self.kafka)
        for key, value in os.environ.items():
            if key.startswith("KAFKA_") and len(key) > 6:
                config[kafka_key(key)] = value
        if "bootstrap.servers" not in config:
            # No silent fallback to a development broker: a production service that lost
            # its setting must say so, not publish to whatever runs on this machine.
            raise ConfigError(
                "no Kafka broker configured: set KAFKA_BOOTSTRAP_SERVERS or put "
                "bootstrap.servers in the [kafka] table of the config file (for a local "
                "development broker, `mmstream broker start` prints the export line; "
                "`mmstream demo` starts one itself)"
            )
        return config

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def kafka_key(variable: str) -> str:
    """The client setting a KAFKA_* variable names, as gcn-kafka maps them: after the
    prefix, ``___`` is ``_``, ``__`` is ``-`` and ``_`` is ``.``, lower-cased
    (KAFKA_SASL_MECHANISM -> sasl.mechanism; KAFKA_A__B___C -> a-b_c)."""
    name = variable.removeprefix("KAFKA_").lower()
    return name.replace("___", "\0").replace("__", "-").replace("_", ".").replace("\0", "_")


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from ``path`` (or $MMSTREAM_CONFIG), environment, and ``overrides``."""
    path = path or (Path(p) if (p := os.environ.get("MMSTREAM_CONFIG")) else None)
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    env_keys = {
        name[len("MMSTREAM_") :].lower() for name in os.environ if name.startswith("MMSTREAM_")
    }
    # The environment beats the file: drop file values that an MMSTREAM_* variable sets.
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update(overrides)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings{f' in {path}' if path else ''}:\n{exc}") from exc
