"""The dashboard's HTML: plain server-rendered pages that refresh themselves (no JavaScript)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from html import escape
from urllib.parse import quote

from mmstream.ops.state import AlertView, DashboardState, ResultView

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em;vertical-align:top}
th{background:#f3f3f3}.GOOD,.COMPLETED{color:#0a0}.BAD,.FAILED,.RETRACTED{color:#c00}
.INCOMPLETE,.INSUFFICIENT_LIVETIME,.unknown{color:#b70}pre{background:#f7f7f7;padding:.8em}
nav{margin-bottom:.5em}.failed,.timed_out,.deadlettered{color:#c00}.waiting,.running{color:#b70}
.published{color:#0a0}
"""

NAV = " · ".join(f'<a href="{href}">{name}</a>' for href, name in (
    ("/", "alerts"), ("/jobs", "jobs"), ("/deadletters", "dead letters"),
    ("/livetime", "livetime"), ("/latency", "latency"), ("/metrics", "metrics"),
))  # fmt: skip


def page(title: str, body: str, refresh_s: int | None = 10) -> bytes:
    meta = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><nav>{NAV}</nav><h1>{escape(title)}</h1>{body}"
        f"<p><small>page made {_utc_now()}</small></p></body></html>"
    ).encode()


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def num(value: float | None, fmt: str = ".3g") -> str:
    return "–" if value is None else format(value, fmt)


def table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def status_span(status: str) -> str:
    return f'<span class="{escape(status)}">{escape(status)}</span>'


def index_page(state: DashboardState) -> bytes:
    detectors = table(
        ["detector", "state", "event rate (Hz, 10 min)", "watermark delay (s)", "last status"],
        [
            [
                escape(d["name"]),
                status_span(d["state"]) + (f" ({escape(d['reason'])})" if d["reason"] else ""),
                num(d["rate_hz"]),
                num(d["watermark_delay_s"], ".1f"),
                "never" if d["status_age_s"] is None else f"{d['status_age_s']:.0f} s ago",
            ]
            for d in state.detectors()
        ],
    )
    alerts = table(
        ["alert", "source", "latest", "revisions", "event time", "results"],
        [
            [
                f'<a href="/alert/{quote(v.alert.alert_id, safe="")}">'
                f"{escape(v.alert.alert_id)}</a>",
                escape(v.alert.source),
                escape(v.revisions[-1].alert_type if v.revisions else ""),
                str(len(v.revisions)),
                when(v.alert.time_ns / 1e9) if v.alert.time_ns else "–",
                " ".join(
                    f"{escape(r.analysis.split('@')[0])}: {status_span(r.status)}"
                    for r in _latest_results(v)
                ),
            ]
            for v in state.alerts()
        ],
    )
    upstream = ""
    if beats := state.upstreams():
        upstream = "<h2>Upstream heartbeats</h2>" + table(
            ["topic", "state", "last heartbeat"],
            [[escape(t), "alive" if ok else "<b>SILENT</b>", f"{s:.0f} s ago"]
             for t, s, ok in beats],
        )  # fmt: skip
    return page("mmstream", f"<h2>Detectors</h2>{detectors}{upstream}"
                             f"<h2>Recent alerts</h2>{alerts}")  # fmt: skip


def _latest_results(view: AlertView) -> list[ResultView]:
    """The newest result per analysis (by revision order of arrival)."""
    order = {r.revision: i for i, r in enumerate(view.revisions)}
    best: dict[str, ResultView] = {}
    for r in view.results.values():
        name = r.analysis.split("@")[0]
        if name not in best or order.get(r.revision, -1) >= order.get(best[name].revision, -1):
            best[name] = r
    return [best[k] for k in sorted(best)]


def alert_page(view: AlertView, provenance: Callable[[str], str | None]) -> bytes:
    a = view.alert
    facts = table(
        ["alert id", "source", "role", "event time", "FAR (Hz)"],
        [[escape(a.alert_id), escape(a.source), escape(str(a.role)),
          when(a.time_ns / 1e9) if a.time_ns else "–", num(a.far_hz)]],
    )  # fmt: skip
    revisions = table(
        ["revision", "type", "received", "status"],
        [[escape(r.revision), escape(r.alert_type), when(r.received_at), escape(r.status)]
         for r in view.revisions],
    )  # fmt: skip
    results = table(
        ["analysis", "revision", "status", "summary", "statistics", "livetime", "excluded",
         "result id"],
        [
            [
                escape(r.analysis), escape(r.revision), status_span(r.status), escape(r.summary),
                "<br>".join(f"{escape(k)} = {num(v)}" for k, v in sorted(r.statistics.items())),
                num(r.livetime_fraction), "<br>".join(escape(" ".join(e)) for e in r.excluded),
                f'<a href="#{escape(r.result_id)}">{escape(r.result_id[:8])}</a>'
                + ("" if r.published else " (publishing)"),
            ]
            for r in view.results.values()
        ],
    )  # fmt: skip
    prov = "".join(
        f'<h3 id="{escape(r.result_id)}">{escape(r.analysis)} – {escape(r.result_id)}</h3>'
        f"<pre>{escape(provenance(r.result_id) or 'not in the ledger (ledger off?)')}</pre>"
        for r in view.results.values()
    )
    # every path segment quoted whole: an id with "/" or "../" must not lead elsewhere
    sky = f'<img alt="sky map" src="/skymap/{quote(a.alert_id, safe="")}.png" width="900">'
    body = (
        f"<p><a href='/'>all alerts</a></p>{facts}<h2>Sky</h2>{sky}<h2>Revisions</h2>"
        f"{revisions}<h2>Results</h2>{results}<h2>Provenance</h2>{prov}"
    )
    return page(f"alert {a.alert_id}", body, refresh_s=30)


def missing_page(what: str) -> bytes:
    return page("not found", f"<p>{escape(what)}</p><p><a href='/'>all alerts</a></p>", None)
