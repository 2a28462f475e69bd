"""The console's time-series plots, rendered server-side (matplotlib Agg, no JavaScript):
alert-to-result latency per analysis (from the ledger's run statistics) and consumer lag per
topic (sampled by the service's gauges)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # a Figure renders with Agg, no pyplot, no display

from mmstream.times import parse_utc_ns


def _png(fig: Figure, ax: Any, ylabel: str, xlabel: str, title: str) -> bytes:
    """The plot's labels and grid, its dates slanted, as PNG bytes."""
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _utc(seconds: Sequence[float]) -> np.ndarray:
    """Unix seconds as datetime64 (UTC), which matplotlib puts on a date axis."""
    return (np.asarray(seconds, dtype=float) * 1000).astype("datetime64[ms]")


def latency_png(rows: Sequence[dict[str, Any]]) -> bytes:
    """Each published run's alert-to-result latency against when it was sent."""
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    by: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r.get("alert_to_result_s") is not None:
            point = (parse_utc_ns(r["sent_at"]) / 1e9, float(r["alert_to_result_s"]))
            by.setdefault(r["analysis"], []).append(point)
    for name, points in sorted(by.items()):
        ax.plot(_utc([p[0] for p in points]), [p[1] for p in points], "o", ms=4, label=name)
    times = [p[0] for points in by.values() for p in points]
    if times and max(times) - min(times) < 600:  # one burst: a 20-minute axis, not years
        ax.set_xlim(_utc([min(times) - 600, max(times) + 600]))  # type: ignore[arg-type]
    if by:
        ax.set_yscale("log")
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no published runs in the ledger yet", ha="center",
                transform=ax.transAxes)  # fmt: skip
    return _png(
        fig, ax, "alert to result (s)", "result sent (UTC)", "Alert-to-result latency by analysis"
    )


def lag_png(history: Sequence[tuple[float, dict[str, int]]]) -> bytes:
    """Messages not yet consumed, per topic, over the time this process has sampled it."""
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    topics = sorted({t for _, by in history for t in by})
    for topic in topics:
        ax.plot(_utc([t for t, by in history if topic in by]),
                [by[topic] for _, by in history if topic in by], label=topic)  # fmt: skip
    if topics:
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no lag sampled yet", ha="center", transform=ax.transAxes)
    return _png(
        fig, ax, "messages behind", "UTC", "Consumer lag by topic (since this process started)"
    )
