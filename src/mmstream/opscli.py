"""The operator's commands: ``mmstream jobs``, ``mmstream stats``, ``mmstream deadletter``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mmstream.cliargs import instant, ledger_of, settings_of
from mmstream.errors import ConfigError


def _when(text: str | None) -> str | None:
    """A --since/--until value as the ledger's UTC strings ("2026-12-01T10:00:00Z")."""
    if text is None:
        return None
    from mmstream.times import format_utc

    return format_utc(instant(text))


def _jobs(args: argparse.Namespace) -> int:
    from mmstream.ledger.jobs import history, jobs

    ledger = ledger_of(args)
    states = [s for x in args.state or [] for s in x.split(",")]
    rows = jobs(ledger, states=states, analysis=args.analysis, alert=args.alert,
                since=_when(args.since), until=_when(args.until), limit=args.limit)  # fmt: skip
    if args.format == "json":
        for r in rows:
            r["history"] = history(ledger, r["job_id"])
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        print("no jobs match", file=sys.stderr)
        return 1
    for r in rows:
        print(f"{r['job_id'][:8]}  {r['state']:<12} {r['updated_at'][:19]}  {r['analysis']}  "
              f"{r['alert_id']} rev {r['revision']}  ({r['kind']})")  # fmt: skip
        if r["detail"]:
            print(f"    {r['detail']}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from mmstream.ledger.jobs import SUMMARY_FIELDS, stats, summarize

    rows = stats(ledger_of(args), analysis=args.analysis, since=_when(args.since),
                 until=_when(args.until))  # fmt: skip
    summary = summarize(rows)
    if args.format == "json":
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    if not summary:
        print("no run statistics match", file=sys.stderr)
        return 1
    for name, entry in summary.items():
        print(f"{name}: {entry['runs']} runs")
        print(f"  {'':<20} {'p50':>10} {'p95':>10} {'p99':>10} {'trend':>7}")
        for f in SUMMARY_FIELDS:
            if f not in entry:
                continue
            e = entry[f]
            trend = "–" if e["trend"] is None else f"{e['trend']:.2f}"
            print(f"  {f:<20} {e['p50']:>10.4g} {e['p95']:>10.4g} {e['p99']:>10.4g} {trend:>7}")
    return 0


def _deadletter(args: argparse.Namespace) -> int:
    from mmstream.stream.requeue import fetch, recent, requeue

    settings = settings_of(args)
    kafka, topic = settings.kafka_config(), settings.deadletter_topic
    if args.action == "list":
        for d in recent(kafka, topic, args.limit):
            where = "–" if d.origin is None else f"{d.origin[0]}[{d.origin[1]}]@{d.origin[2]}"
            print(f"{topic}[{d.partition}]@{d.offset}  {d.stage:<10} {d.exception:<16} "
                  f"from {where}: {d.reason[:160]}")  # fmt: skip
        return 0
    if args.offset is None:
        raise ConfigError(f"mmstream deadletter {args.action}: --offset is required")
    dl = fetch(kafka, topic, args.partition, args.offset)
    if args.action == "get":
        data = dl.value or b""
        if args.output is None:
            sys.stdout.buffer.write(data)
        else:
            args.output.write_bytes(data)
            print(f"{len(data)} bytes written to {args.output}", file=sys.stderr)
        return 0
    t, p, o = requeue(kafka, dl, topic, args.to_topic)
    print(f"requeued {topic}[{dl.partition}]@{dl.offset} as {t}[{p}]@{o}")
    return 0


def add_commands(sub: Any) -> None:
    """The operator's sub-commands, on ``mmstream``'s parser."""
    for name, func, text in (
        ("jobs", _jobs, "every job's state (from the ledger)"),
        ("stats", _stats, "run statistics by analysis: p50/p95/p99 and trend (from the ledger)"),
    ):
        p = sub.add_parser(name, help=text)
        if name == "jobs":
            p.add_argument("--state", action="append",
                           help="only these states (repeat, or comma-separated)")  # fmt: skip
            p.add_argument("--alert", help="only this alert id")
            p.add_argument("--limit", type=int, default=200)
        p.add_argument("--analysis", help="only this analysis (name, or name@version)")
        p.add_argument("--since", help="UTC time, e.g. 2026-12-01T00:00Z")
        p.add_argument("--until", help="UTC time, or 'now'")
        p.add_argument("--format", choices=["text", "json"], default="text")
        p.add_argument("--config", type=Path, default=None, help="TOML settings file")
        p.add_argument("--ledger", help="ledger database URL (default: from the settings)")
        p.set_defaults(func=func)
    d = sub.add_parser("deadletter", help="list, download or requeue dead letters")
    d.add_argument("action", choices=["list", "get", "requeue"])
    d.add_argument("--partition", type=int, default=0)
    d.add_argument("--offset", type=int, help="the dead letter's offset (get, requeue)")
    d.add_argument("--output", type=Path, help="get: write the original here (default stdout)")
    d.add_argument("--to-topic", help="requeue: to this topic (default: where it came from)")
    d.add_argument("--limit", type=int, default=50, help="list: newest per partition")
    d.add_argument("--config", type=Path, default=None, help="TOML settings file")
    d.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides the config)")
    d.set_defaults(func=_deadletter)
