"""The operator's console pages: jobs, dead letters, livetime, latency (server-rendered)."""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any
from urllib.parse import quote

from mmstream.ledger.jobs import summarize
from mmstream.model import Livetime, Window
from mmstream.ops.console import Console
from mmstream.ops.pages import num, page, status_span, table, when
from mmstream.ops.state import DashboardState
from mmstream.times import format_utc

NO_LEDGER = (
    "<p><b>The ledger is off</b> (ledger = false): jobs and run statistics are not kept.</p>"
)


def _alert_link(alert_id: str) -> str:
    return f'<a href="/alert/{quote(alert_id, safe="")}">{escape(alert_id)}</a>'


def _job_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [[escape(r["job_id"][:8]), status_span(r["state"]), escape(r["analysis"]),
             _alert_link(r["alert_id"]) + f" rev {escape(r['revision'])}", escape(r["kind"]),
             escape((r["updated_at"] or "")[:19]), escape(r["detail"] or "")]
            for r in rows]  # fmt: skip


HEAD = ["job", "state", "analysis", "alert", "kind", "since (UTC)", "why / error"]


def jobs_page(console: Console) -> bytes:
    if console.ledger is None:
        return page("jobs", NO_LEDGER)
    open_jobs, failed = console.open_jobs(), console.failed_jobs()
    body = (f"<h2>Waiting and running ({len(open_jobs)})</h2>"
            + (table(HEAD, _job_rows(open_jobs)) if open_jobs else "<p>none</p>")
            + f"<h2>Failures ({len(failed)})</h2>"
            + (table(HEAD, _job_rows(failed)) if failed else "<p>none</p>")
            + "<h2>Latest jobs</h2>" + table(HEAD, _job_rows(console.recent_jobs(50)))
            + "<p>The same from a shell: <code>mmstream jobs --state waiting,running</code>, "
              "<code>mmstream jobs --state failed --format json</code>.</p>")  # fmt: skip
    return page("jobs", body)


def deadletters_page(console: Console) -> bytes:
    try:
        found = console.deadletters()
    except Exception as exc:  # the broker may be down: say so, do not fail the page
        return page("dead letters", f"<p>could not read {escape(console.topic)}: "
                                    f"{escape(str(exc))}</p>")  # fmt: skip
    reasons = Counter((d.stage, d.exception) for d in found)
    counted = [[escape(s), escape(e), str(n)] for (s, e), n in reasons.most_common()]
    summary = table(["stage", "exception", "dead letters"], counted)
    rows = []
    for d in found:
        where = "–" if d.origin is None else f"{d.origin[0]}[{d.origin[1]}]@{d.origin[2]}"
        get = f"/deadletter/{d.partition}/{d.offset}"
        rows.append([
            f"{d.partition}@{d.offset}", escape(when(d.timestamp_ms / 1000)), escape(d.stage),
            escape(d.exception), escape(where), escape(d.reason[:400]),
            f'<a href="{get}">original ({len(d.value or b"")} bytes'
            + (", cut" if d.truncated else "") + ")</a>",
            f"<code>mmstream deadletter requeue --partition {d.partition} "
            f"--offset {d.offset}</code>",
        ])  # fmt: skip
    body = (f"<p>{len(found)} recent dead letters on <code>{escape(console.topic)}</code>. "
            "Each holds the original message byte-exact: download it, fix the cause (a route, "
            "a schema, a limit), then send it back through with the command beside it.</p>"
            f"<h2>By reason</h2>{summary}<h2>Dead letters</h2>"
            + table(["position", "when (UTC)", "stage", "exception", "from", "reason",
                     "download", "requeue"], rows))  # fmt: skip
    return page("dead letters", body, refresh_s=30)


def _timeline_svg(window: Window, lt: Livetime, width: int = 900) -> str:
    span = max(1, window.end_ns - window.start_ns)

    def x(t: int) -> float:
        return round((min(max(t, window.start_ns), window.end_ns) - window.start_ns)
                     / span * width, 1)  # fmt: skip

    bars = "".join(
        f'<rect x="{x(e.start_ns)}" y="0" width="{max(1.0, x(e.end_ns) - x(e.start_ns))}" '
        f'height="24" fill="#c33"><title>{escape(e.reason)}: {format_utc(e.start_ns)} .. '
        f"{format_utc(e.end_ns)}</title></rect>"
        for e in lt.excluded
    )
    return (f'<svg width="{width}" height="40" role="img" aria-label="livetime of '
            f'{escape(lt.detector)}"><rect x="0" y="0" width="{width}" height="24" '
            f'fill="#3a3"/>{bars}<text x="0" y="38" font-size="11">'
            f"{format_utc(window.start_ns)[:19]}</text><text x=\"{width}\" y=\"38\" "
            f'font-size="11" text-anchor="end">{format_utc(window.end_ns)[:19]}'
            "</text></svg>")  # fmt: skip


def livetime_page(board: DashboardState) -> bytes:
    parts = []
    for window, lt in board.livetimes():
        rows = [[escape(format_utc(e.start_ns)), escape(format_utc(e.end_ns)),
                 f"{(e.end_ns - e.start_ns) / 1e9:.0f}", escape(e.reason)]
                for e in lt.excluded]  # fmt: skip
        parts.append(
            f"<h2>{escape(lt.detector)}: livetime {num(lt.fraction)} "
            f"({lt.live_s:.0f} s live)</h2>{_timeline_svg(window, lt)}"
            + (table(["excluded from (UTC)", "to", "seconds", "reason"], rows) if rows
               else "<p>nothing excluded</p>")
        )  # fmt: skip
    legend = ("<p>Green: live (status GOOD, no gap, no condition rule); red: excluded, with "
              "the reason (hover a bar, or read the table). The service recomputes it every "
              "10 s from the detector streams it holds.</p>")  # fmt: skip
    return page("livetime", legend + ("".join(parts) or "<p>no detector status yet</p>"))


def latency_page(console: Console) -> bytes:
    rows = []
    for name, e in summarize(console.run_stats()).items():
        lat = e.get("alert_to_result_s", {})
        wait, wall = e.get("queue_wait_s", {}), e.get("wall_s", {})
        rows.append([escape(name), str(e["runs"]), num(lat.get("p50")), num(lat.get("p95")),
                     num(lat.get("p99")), num(wait.get("p50")), num(wall.get("p50")),
                     num(lat.get("trend"))])  # fmt: skip
    head = ["analysis", "runs", "alert→result p50 (s)", "p95", "p99", "queue wait p50",
            "wall p50", "trend"]  # fmt: skip
    body = ((NO_LEDGER if console.ledger is None else table(head, rows))
            + '<h2>Alert to result</h2><img alt="latency" src="/plot/latency.png" width="900">'
            + '<h2>Consumer lag</h2><img alt="consumer lag" src="/plot/lag.png" width="900">'
            + "<p>From a shell: <code>mmstream stats</code> (trend: median of the newer half "
              "of the runs over the older half).</p>")  # fmt: skip
    return page("latency", body, refresh_s=30)
