"""What we have already published, rebuilt from our own result topics (Kafka is the state).

Read from the headers only (:func:`mmstream.formats.headers.parse`), this answers:
was this (analysis, alert, revision, role) already published (a duplicate notice yields no
second result)? Which result does an update supersede? Which results must a retraction
withdraw? Result topics are read here for bookkeeping only, never as alert inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmstream.formats.headers import Parsed


@dataclass(frozen=True)
class Published:
    result_id: str
    revision: str
    retraction: bool
    role: str = "observation"
    sent_ns: int | None = None  # when the sender made the notice (see Alert.sent_ns)
    partners: tuple[tuple[str, str, bool], ...] = ()  # other alerts it read (id, rev, retracted)


@dataclass
class ResultsIndex:
    # (analysis name, alert id, role) -> results in publication order
    by_alert: dict[tuple[str, str, str], list[Published]] = field(default_factory=dict)

    def record(self, h: Parsed) -> None:
        """Remember one result message from its parsed headers (ignores what is not one)."""
        rid, alert = h.id, h.alert
        if h.analysis is None or rid is None or "alert_id" not in alert or "revision" not in alert:
            return
        role = str(alert.get("role", "observation"))
        entries = self.by_alert.setdefault((h.analysis, str(alert["alert_id"]), role), [])
        if any(e.result_id == str(rid) for e in entries):
            return
        sent = alert.get("sent_ns")
        entries.append(Published(str(rid), str(alert["revision"]), h.retraction, role,
                                 sent if isinstance(sent, int) else None,
                                 h.partners))  # fmt: skip

    def published(
        self, analysis: str, alert_id: str, revision: str, role: str = "observation"
    ) -> bool:
        entries = self.by_alert.get((analysis, alert_id, role), [])
        return any(e.revision == revision for e in entries)

    def has(self, analysis: str, alert_id: str, role: str, result_id: str) -> bool:
        """Whether this very result (by id) is out."""
        entries = self.by_alert.get((analysis, alert_id, role), [])
        return any(e.result_id == result_id for e in entries)

    def latest(self, analysis: str, alert_id: str, role: str = "observation") -> Published | None:
        """The newest result of this alert and role (tests never supersede observations):
        newest by when the sender made the notice, then by publication order."""
        return newest_of(self.by_alert.get((analysis, alert_id, role), []))

    def analyses_with_results(self, alert_id: str, role: str = "observation") -> list[str]:
        """Analyses whose latest result for this alert is live (not yet retracted)."""
        live = []
        for name, aid, r in self.by_alert:
            latest = self.latest(name, aid, r) if (aid, r) == (alert_id, role) else None
            if latest is not None and not latest.retraction:
                live.append(name)
        return sorted(live)


def newest_of(entries: list[Published]) -> Published | None:
    """Newest by when the sender made the notice, then by publication order."""
    if not entries:
        return None
    newest = max(range(len(entries)), key=lambda i: (entries[i].sent_ns is not None,
                                                      entries[i].sent_ns or 0, i))  # fmt: skip
    return entries[newest]
