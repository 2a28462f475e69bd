"""Each run's cost as its own stream: one record (``schemas/run_stats.avsc``) per run's
result on the statistics topic, in the same Kafka transaction as the result, so there is
exactly one per published run and none for a result never published.

Measured by the service from outside the handler, so that analysis code needs no
decorator: the queue wait and wall time by the runner (stream/runner.py), CPU and peak
memory by the worker around the handler call (stream/cost.py), the decode time around the
alert's decoding, and the publish wait and alert-to-result latency when the publisher
sends the record (the record is finished then: :attr:`OutMessage.finish`). The commit's
own duration is known only after it: it is in the ledger and Prometheus, not the record.
"""

from __future__ import annotations

import getpass
import os
from functools import cache

from mmstream.formats.headers import ANALYSIS
from mmstream.formats.run_stats import encode_run_stats
from mmstream.stream.publisher import OutMessage
from mmstream.stream.runs import RunReport
from mmstream.times import format_utc, now_ns


@cache
def process_host() -> str:
    """``user@node`` of this process: by whom, where."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        user = str(os.getuid())
    return f"{user}@{os.uname().nodename}"


def stats_message(
    r: RunReport, topic: str, instance: str, *, decode_s: float | None,
    arrived: float | None,
) -> OutMessage:  # fmt: skip
    """The statistics record of one run, finished when it is sent (``arrived``: when its
    alert message came, time.monotonic(); None for a late-data update)."""
    job, cost, inp = r.job, r.cost, r.inp
    events = sum(len(c) for c in inp.events.values())
    nbytes = sum(c.nbytes() for c in inp.events.values())
    base = {
        "result_id": r.result_id, "analysis": job.spec.name,
        "analysis_version": job.spec.version, "alert_id": job.alert.alert_id,
        "revision": job.alert.revision, "status": str(r.status), "instance": instance,
        "host": process_host(), "started_at": cost.started_at or format_utc(now_ns()),
        "ended_at": cost.ended_at or format_utc(now_ns()), "queue_wait_s": r.queue_wait_s,
        "wall_s": r.wall_s, "cpu_s": cost.cpu_s,
        "peak_memory_bytes": int(cost.peak_memory_bytes), "events_read": int(events),
        "bytes_read": int(nbytes), "decode_s": decode_s,
    }  # fmt: skip

    def finish(sent: float) -> bytes:
        return encode_run_stats({
            **base, "publish_wait_s": max(0.0, sent - r.collected),
            "alert_to_result_s": None if arrived is None else max(0.0, sent - arrived),
            "sent_at": format_utc(now_ns()),
        })  # fmt: skip

    headers = [("_id", job.result_id.bytes), ("_format", b"avro"),
               (ANALYSIS, job.spec.label.encode())]  # fmt: skip
    return OutMessage(topic, job.alert.alert_id, None, headers, finish=finish)
