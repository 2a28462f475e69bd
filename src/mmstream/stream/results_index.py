"""What we have already published, rebuilt from our own result topics (Kafka is the state).

Read from the headers only (``mmstream-analysis`` and ``mmstream-inputs``), this answers:
was this (analysis, alert, revision, role) already published (a duplicate notice yields no
second result)? Which result does an update supersede? Which results must a retraction
withdraw? Result topics are read here for bookkeeping only, never as alert inputs.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Published:
    result_id: str
    revision: str
    retraction: bool
    role: str = "observation"


@dataclass
class ResultsIndex:
    # (analysis name, alert id, role) -> results in publication order
    by_alert: dict[tuple[str, str, str], list[Published]] = field(default_factory=dict)

    def record(self, headers: dict[str, bytes]) -> None:
        """Remember one result message from its headers (ignores anything that is not one)."""
        try:
            name = headers["mmstream-analysis"].decode().split("@", 1)[0]
            alert = json.loads(headers["mmstream-inputs"])["alert"]
            rid = str(uuid.UUID(bytes=headers["_id"]))
        except (KeyError, ValueError, TypeError):
            return
        role = str(alert.get("role", "observation"))
        entries = self.by_alert.setdefault((name, str(alert["alert_id"]), role), [])
        if any(e.result_id == rid for e in entries):
            return
        retraction = headers.get("mmstream-retraction") == b"true"
        entries.append(Published(rid, str(alert["revision"]), retraction, role))

    def published(
        self, analysis: str, alert_id: str, revision: str, role: str = "observation"
    ) -> bool:
        entries = self.by_alert.get((analysis, alert_id, role), [])
        return any(e.revision == revision for e in entries)

    def latest(self, analysis: str, alert_id: str, role: str = "observation") -> Published | None:
        """The newest result of this alert and role: tests never supersede observations."""
        entries = self.by_alert.get((analysis, alert_id, role))
        return entries[-1] if entries else None

    def analyses_with_results(self, alert_id: str, role: str = "observation") -> list[str]:
        """Analyses whose latest result for this alert is live (not yet retracted)."""
        return sorted(
            name
            for (name, aid, r), entries in self.by_alert.items()
            if aid == alert_id and r == role and entries and not entries[-1].retraction
        )
