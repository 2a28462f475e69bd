"""What the operator's console reads besides the live dashboard state: the ledger (jobs,
run statistics, alerts and results that outlive a restart) and the dead-letter topic.

The ledger is the record that survives a restart, so the console's job, failure and latency
pages read it, and the alerts the dashboard held before a restart are read back from it
(:func:`restore`: the alert itself from its Kafka message, its results from the ledger).
Dead letters are read from their topic (Kafka is their record), a few seconds' cache
apart, so a page view never holds the broker for long.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from mmstream.ledger.jobs import OPEN_STATES, jobs, stats
from mmstream.ledger.store import Ledger
from mmstream.model import Alert
from mmstream.ops.logging import get_logger
from mmstream.ops.state import AlertView, DashboardState, ResultView, RevisionView
from mmstream.stream.requeue import StoredDeadLetter, fetch, recent
from mmstream.times import format_utc, parse_utc_ns

log = get_logger("mmstream.console")
FAILED_STATES = ("failed", "timed_out", "deadlettered")


class Console:
    def __init__(
        self, ledger: Ledger | None, kafka: dict[str, Any] | None, deadletter_topic: str,
        cache_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.ledger, self.kafka, self.topic, self.cache_s = ledger, kafka, deadletter_topic, cache_s
        self._lock = threading.Lock()
        self._dead: tuple[float, list[StoredDeadLetter], str] = (0.0, [], "")

    def open_jobs(self) -> list[dict[str, Any]]:
        return [] if self.ledger is None else jobs(self.ledger, states=OPEN_STATES)

    def failed_jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        return [] if self.ledger is None else jobs(self.ledger, states=FAILED_STATES,
                                                   limit=limit)  # fmt: skip

    def recent_jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        return [] if self.ledger is None else jobs(self.ledger, limit=limit)

    def run_stats(self) -> list[dict[str, Any]]:
        return [] if self.ledger is None else stats(self.ledger)

    def deadletters(self) -> list[StoredDeadLetter]:
        """The newest dead letters (cached for ``cache_s``)."""
        if self.kafka is None:
            return []
        with self._lock:
            at, found, error = self._dead
            if time.monotonic() - at > self.cache_s:
                try:  # a failure is cached too: a down broker costs one wait per cache_s
                    found, error = recent(self.kafka, self.topic, per_partition=200), ""
                except Exception as exc:
                    found, error = [], f"{type(exc).__name__}: {exc}"
                self._dead = (time.monotonic(), found, error)
            if error:
                raise LookupError(error)
            return found

    def deadletter(self, partition: int, offset: int) -> StoredDeadLetter:
        if self.kafka is None:
            raise LookupError("no Kafka configured")
        return fetch(self.kafka, self.topic, partition, offset)


def _result_view(run: dict[str, Any], excluded: list[dict[str, Any]]) -> ResultView:
    stats_json = json.loads(run["statistics_json"] or "{}")
    return ResultView(
        run["result_id"], f"{run['analysis']}@{run['version']}", run["revision"],
        run["result_status"] or run["status"], run["summary"] or "",
        {k: v for k, v in stats_json.items() if isinstance(v, int | float)},
        run["livetime_fraction"],
        tuple((e["detector"], format_utc(e["start_ns"]), format_utc(e["end_ns"])
               + f": {e['reason']}") for e in excluded),
        (), published=run["status"] != "pending",
    )  # fmt: skip


def restore(
    board: DashboardState, ledger: Ledger, read: Callable[[str, int, int], Alert | None],
    limit: int = 200,
) -> int:  # fmt: skip
    """Put the ledger's newest alerts back on the dashboard (after a restart); ``read``
    decodes an alert message at a Kafka position (None: gone, or no longer decodable).
    The window's events are not kept in the ledger with their positions on the sky: the
    restored sky maps show the localization only. Returns how many were restored."""
    n = 0
    for alert_id, rows in ledger.recent_alert_inputs(limit):
        latest = rows[-1]
        alert = read(latest["topic"], latest["partition"], latest["offset"])
        if alert is None:
            continue
        revisions = [RevisionView(r["revision"] or "", "", parse_utc_ns(r["received_at"]) / 1e9,
                                  r["status"]) for r in rows]  # fmt: skip
        results = {}
        for run in ledger.runs_of_alert(alert_id):
            results[run["result_id"]] = _result_view(run, ledger.excluded(run["result_id"]))
        board.restored(AlertView(alert, revisions, results))
        n += 1
    return n
