"""The messages a run (or a retraction) publishes: the Avro result with its provenance
headers, and the JSON notice where the analysis wrote one."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel

from mmstream.analyses.registry import AnalysisSpec, params_sha256
from mmstream.formats.headers import ResultHeaders, compact_json
from mmstream.formats.results import ResultRecord, encode_notice
from mmstream.model import Alert, ResultStatus, Role
from mmstream.ops.logging import get_logger
from mmstream.provenance.headers import code_string, notice_id
from mmstream.stream.publisher import OutMessage
from mmstream.stream.runs import Retraction, RunReport
from mmstream.stream.settings import Topics
from mmstream.times import format_utc, now_ns, parse_utc_ns

log = get_logger("mmstream.results")


def _alert_inputs(alert: Alert) -> dict[str, Any]:
    return {**alert.ref.as_dict(), "alert_id": alert.alert_id, "revision": alert.revision,
            "role": str(alert.role), "sent_ns": alert.sent_ns}  # fmt: skip


def _alert_ref(alert: Alert, with_time: bool = True) -> dict[str, Any]:
    t = alert.time_ns if with_time else None
    return {"alert_id": alert.alert_id, "revision": alert.revision,
            "alert_type": str(alert.alert_type), "role": str(alert.role),
            "source": alert.source, "time": format_utc(t) if t is not None else None,
            "time_ns": t, "far_hz": alert.far_hz if with_time else None}  # fmt: skip


def _code(spec: AnalysisSpec[Any], params: BaseModel) -> str:
    """The code string; a setup file that cannot be read is named so, never a crash here
    (the run itself fails in its worker with the reason)."""
    try:
        setup = spec.setup_sha256(params)
    except OSError as exc:
        setup = f"unreadable:{type(exc).__name__}"
    return code_string(spec.source_sha256, spec.distribution, setup)


def _plain(value: Any) -> Any:
    """A value as JSON: numpy scalars and arrays unwrapped, NaN and infinities null (JSON
    has neither), lists and maps all the way down."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _in_effect(conditions: dict[str, dict[str, list[tuple[int, int, Any]]]]) -> dict[str, Any]:
    """Per detector and key, each value in effect in the window and for how many seconds."""
    out: dict[str, Any] = {}
    for d, keys in conditions.items():
        out[d] = {}
        for key, intervals in keys.items():
            spans: dict[str, list[Any]] = {}
            for a, b, v in intervals:
                entry = spans.setdefault(repr(v), [v, 0.0])
                entry[1] = round(entry[1] + (b - a) / 1e9, 6)
            out[d][key] = list(spans.values())
    return out


class _EventExtras:
    """A reported event's own detector fields and the conditions at its time, as JSON."""

    def __init__(self, events: Any, at_events: dict[str, dict[str, Any]]) -> None:
        self.events, self.at_events = events, at_events

    def of(self, detector: str, event_id: str, time_ns: int) -> dict[str, str]:
        out: dict[str, str] = {}
        cols = self.events.get(detector)
        keys = self.at_events.get(detector)
        if cols is None or not (cols.fields or keys):
            return out  # nothing to add: no per-event work on the alert's path
        # the event among the window's by its time (sorted), then its id: O(log n)
        lo = int(np.searchsorted(cols.time_ns, time_ns, side="left"))
        hi = int(np.searchsorted(cols.time_ns, time_ns, side="right"))
        i = next((j for j in range(lo, hi) if str(cols.event_id[j]) == event_id), None)
        if i is None:
            return out  # not an event of the window (a handler may report others)
        if cols.fields:
            out["fields_json"] = compact_json({k: _plain(v[i]) for k, v in cols.fields.items()})
        if keys:
            out["conditions_json"] = compact_json({k: _plain(v[i]) for k, v in keys.items()})
        return out


class Composer:
    def __init__(self, topics: Topics, sender: str, clock: Callable[[], int] = now_ns) -> None:
        self.topics, self.sender, self.clock = topics, sender, clock

    def run(self, r: RunReport) -> list[OutMessage]:
        """The result of one run, and its notice."""
        job, inp, outcome = r.job, r.inp, r.outcome
        alert, spec = job.alert, job.spec
        own = _EventExtras(inp.events, r.event_conditions)
        detector_inputs = []
        for detector, cols in sorted(inp.events.items()):
            for part in sorted(set(cols.partition.tolist())):
                sel = cols.offset[cols.partition == part]
                detector_inputs.append({"topic": self.topics.events(detector), "partition": part,
                                        "first_offset": int(sel.min()),
                                        "last_offset": int(sel.max()),
                                        "count": int(sel.size)})  # fmt: skip
        excluded = [
            {"detector": d, "start_ns": e.start_ns, "end_ns": e.end_ns, "reason": e.reason}
            for d, lt in sorted(inp.livetime.items()) if lt is not None for e in lt.excluded
        ]  # fmt: skip
        window = {"start": format_utc(job.window.start_ns), "end": format_utc(job.window.end_ns),
                  "start_ns": job.window.start_ns, "end_ns": job.window.end_ns,
                  "livetime_fraction": inp.livetime_fraction(), "complete": inp.complete,
                  "excluded": excluded}  # fmt: skip
        produced_at = format_utc(self.clock())
        headers = ResultHeaders(
            rid=job.result_id, sender=self.sender, analysis_label=spec.label,
            code=_code(spec, job.params),
            config_sha256=params_sha256(job.params),
            inputs={"alert": _alert_inputs(alert), "detectors": detector_inputs,
                    **({"alerts": [{**_alert_inputs(o.alert), "retracted": o.retracted}
                                   for o in inp.alerts]} if inp.alerts else {})},
            window=window, produced_at=produced_at, test=alert.role is Role.TEST,
            supersedes=r.supersedes, late_update=0 if job.trigger else job.update,
            # An older revision that came late is born superseded by the newer one, so that
            # a reader (and a later retraction of the newer one) leaves nothing of it live.
            superseded_by=r.newer.result_id if r.newer is not None else None,
            conditions=_in_effect(r.conditions) or None,
        )  # fmt: skip
        record = ResultRecord(
            result_id=r.result_id, analysis=spec.name, analysis_version=spec.version,
            status=str(r.status), summary=outcome.summary, alert=_alert_ref(alert),
            window=window, provenance=headers.provenance(),
            parameters=job.params.model_dump(mode="json"),
            statistics=dict(outcome.statistics),
            events=[{"event_id": e.event_id, "detector": e.detector, "time_ns": e.time_ns,
                     "ra_deg": e.ra_deg, "dec_deg": e.dec_deg, "sigma_deg": e.sigma_deg,
                     "values": dict(e.values), **own.of(e.detector, e.event_id, e.time_ns)}
                    for e in outcome.events],
            conditions={d: {k: [list(i) for i in v] for k, v in keys.items()}
                        for d, keys in r.conditions.items()},
            notes=list(inp.notes), error=r.error, details=outcome.details,
            supersedes=r.supersedes, excluded=excluded,
        )  # fmt: skip
        log.info("result ready", analysis=spec.label, alert_id=alert.alert_id,
                 revision=alert.revision, result_id=r.result_id, status=str(r.status),
                 summary=outcome.summary)  # fmt: skip
        messages = [OutMessage(self.topics.result(spec.name), alert.alert_id, record.encode(),
                               headers.encode())]  # fmt: skip
        if outcome.notice is not None:
            notice = {**outcome.notice, "alert_datetime": produced_at}
            messages.append(OutMessage(self.topics.notice(spec.name), alert.alert_id,
                                       encode_notice(notice),
                                       headers.for_notice(notice_id(job.result_id))))  # fmt: skip
        return messages

    def retraction(self, r: Retraction) -> OutMessage:
        """The RETRACTED result withdrawing ``r.supersedes``."""
        alert, spec = r.alert, r.spec
        created = alert.extra.get("time_created")
        at = parse_utc_ns(str(created)) if created else self.clock()
        window = {"start": format_utc(at), "end": format_utc(at), "start_ns": at, "end_ns": at,
                  "livetime_fraction": None, "complete": True, "excluded": []}  # fmt: skip
        headers = ResultHeaders(
            rid=uuid.UUID(r.result_id), sender=self.sender, analysis_label=spec.label,
            code=_code(spec, r.params),
            config_sha256=params_sha256(r.params),
            inputs={"alert": _alert_inputs(alert), "detectors": []}, window=window,
            produced_at=format_utc(self.clock()), retraction=True,
            test=alert.role is Role.TEST, supersedes=r.supersedes,
        )  # fmt: skip
        record = ResultRecord(
            result_id=r.result_id, analysis=spec.name, analysis_version=spec.version,
            status=str(ResultStatus.RETRACTED),
            summary=f"{alert.alert_id} was retracted by {alert.source}",
            alert=_alert_ref(alert, with_time=False), window=window,
            provenance=headers.provenance(), parameters=r.params.model_dump(mode="json"),
            supersedes=r.supersedes,
        )  # fmt: skip
        return OutMessage(self.topics.result(spec.name), alert.alert_id, record.encode(),
                          headers.encode())  # fmt: skip
