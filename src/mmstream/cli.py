"""The ``mmstream`` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from mmstream import __version__
from mmstream.cliargs import instant, ledger_of, settings_of
from mmstream.errors import MmstreamError
from mmstream.opscli import add_commands


def _broker(args: argparse.Namespace) -> int:
    from mmstream.broker.local import LocalKafka

    broker = LocalKafka(args.dir)
    if args.action == "start":
        t0 = time.monotonic()
        info = broker.start()
        print(
            f"Kafka {info.kafka_version} running at {info.bootstrap} (pid {info.pid}, "
            f"ready in {time.monotonic() - t0:.1f} s; data in {info.directory})"
        )
        print(f"export KAFKA_BOOTSTRAP_SERVERS={info.bootstrap}")
    elif args.action == "stop":
        print("stopped" if broker.stop() else "no local broker was running")
    else:
        running = broker.info()
        if running is None:
            print(f"no local broker running in {broker.directory}")
            return 1
        print(f"running at {running.bootstrap} (pid {running.pid}, Kafka {running.kafka_version})")
    return 0


def _registry(args: argparse.Namespace) -> Any:
    from mmstream.analyses.registry import Registry

    return Registry.discover(args.module or [])


def _analyses(args: argparse.Namespace) -> int:
    for spec in _registry(args):
        print(f"{spec.label}")
        if spec.window_by is None:
            start, end = spec.window
            print(f"  window   : {start:+g} s .. {end:+g} s around the alert time")
        else:
            print("  window   : per alert, from its kind or group and the parameters "
                  "(analyses/windows.py)")  # fmt: skip
        sources = "any" if spec.sources is None else ", ".join(sorted(spec.sources))
        print(f"  triggers : {', '.join(sorted(spec.alert_types))} alerts from {sources}")
        if spec.alert_kinds:
            print(f"  reads    : other alerts of kind {', '.join(sorted(spec.alert_kinds))}")
        if spec.detectors is not None:
            print(f"  detectors: {', '.join(spec.detectors) or 'none'}")
        for name, field in spec.params_model.model_fields.items():
            default = field.get_default(call_default_factory=True)
            print(f"  param    : {name} = {default!r}  {field.description or ''}".rstrip())
        if spec.description:
            print(f"  about    : {spec.description.splitlines()[0]}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from mmstream.app import App
    from mmstream.ops.logging import configure

    configure(json=not args.pretty)
    service = App(settings_of(args), _registry(args))
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    service.run()
    return 0


def _provenance(args: argparse.Namespace) -> int:
    import json

    from mmstream.provenance.prov import to_prov_json
    from mmstream.provenance.report import gather, render_text

    found = gather(ledger_of(args), args.result_id)
    if found is None:
        print(f"mmstream: no result {args.result_id!r} in the ledger (or the prefix is "
              "ambiguous)", file=sys.stderr)  # fmt: skip
        return 1
    if args.format == "prov-json":
        print(json.dumps(to_prov_json(found), indent=2, sort_keys=True))
    else:
        print(render_text(found, max_events=args.max_events), end="")
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from mmstream.provenance.report import conditions_line, lineage_rows

    ledger = ledger_of(args)
    rows = lineage_rows(ledger, args.ident)
    if not rows:
        print(f"mmstream: nothing in the ledger used {args.ident!r}", file=sys.stderr)
        return 1
    for r in rows:
        outs = ", ".join(f"{o['topic']}[{o['partition']}]@{o['offset']}"
                         for o in ledger.outputs(r["result_id"]))  # fmt: skip
        print(f"{r['result_id']}  {r['status']:<10} {r['result_status'] or '-':<22} "
              f"{r['analysis']}@{r['version']}  {r['alert_id']} rev {r['revision']}  "
              f"{outs or 'unpublished'}")  # fmt: skip
        if cond := conditions_line(ledger.conditions(r["result_id"])):
            print(f"    conditions: {cond}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from mmstream.errors import ConfigError
    from mmstream.ops.logging import configure
    from mmstream.replay import replay, replay_settings

    configure(json=False)
    registry = _registry(args)
    if args.analysis:
        name, _, version = args.analysis.partition("@")
        spec = registry.get(name)
        if version and version != spec.version:
            raise ConfigError(f"{name} is at version {spec.version} here, not {version}")
        from mmstream.analyses.registry import Registry

        registry = Registry([spec])
    settings = replay_settings(settings_of(args), args.to_topic, args.ledger)
    summary = replay(
        settings, registry, start_ns=instant(args.start), end_ns=instant(args.end),
        sandbox=args.to_topic, source=args.source, archive_dir=args.archive,
        margin_s=args.margin,
    )  # fmt: skip
    print(f"replayed {summary.alerts} alerts over {summary.detector_messages} detector "
          f"messages: {summary.results} results to {summary.sandbox} "
          f"(ledger {settings.ledger_location()})")  # fmt: skip
    return 0


def _diff(args: argparse.Namespace) -> int:
    from mmstream.diff import diff_runs, read_results, render

    settings = settings_of(args)
    d = diff_runs(read_results(settings, args.run_a), read_results(settings, args.run_b))
    print(render(d, args.run_a, args.run_b), end="")
    return 0 if d.identical else 1


def _launcher() -> str:
    """How this shell reaches the ``mmstream`` command: it lives beside the interpreter
    (``.venv/bin``), which need not be on PATH."""
    exe = Path(sys.executable).with_name("mmstream")
    if not exe.exists():
        return "mmstream"
    rel = os.path.relpath(exe)
    return rel if not rel.startswith("..") else str(exe)


def _demo(args: argparse.Namespace) -> int:
    from mmstream.broker.local import LocalKafka
    from mmstream.demo import run_demo
    from mmstream.ops.logging import configure

    configure(json=False)
    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        t0 = time.monotonic()
        info = LocalKafka().start()
        bootstrap = info.bootstrap
        print(
            f"[demo] local Kafka {info.kafka_version} at {bootstrap} "
            f"(ready in {time.monotonic() - t0:.1f} s; stop it with `{_launcher()} broker stop`)"
        )
    run_demo(bootstrap, timeout=args.timeout, serve=not args.exit)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mmstream", description="Multi-messenger alert follow-up over Kafka."
    )
    ap.add_argument("--version", action="version", version=f"mmstream {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    b = sub.add_parser("broker", help="start, stop or inspect the local Kafka broker")
    b.add_argument("action", choices=["start", "stop", "status"])
    b.add_argument(
        "--dir", type=Path, default=None, help="broker folder (default: $MMSTREAM_BROKER_DIR)"
    )
    b.set_defaults(func=_broker)

    for name, func, text in (
        ("run", _run, "run the service"),
        ("analyses", _analyses, "list the registered analyses"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", type=Path, default=None, help="TOML settings file")
        p.add_argument("--module", action="append", help="also load analyses from this module")
        p.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides the config)")
        p.set_defaults(func=func)
        if name == "run":
            p.add_argument("--pretty", action="store_true", help="human-readable logs, not JSON")

    for name, func, text in (
        ("provenance", _provenance, "how a result was made (from the ledger)"),
        ("lineage", _lineage, "every result that used an alert or a detector event"),
    ):
        p = sub.add_parser(name, help=text)
        if name == "provenance":
            p.add_argument("result_id", help="result id (a unique prefix is enough)")
            p.add_argument("--format", choices=["text", "prov-json"], default="text")
            p.add_argument("--max-events", type=int, default=20, help="events listed in text")
        else:
            p.add_argument("ident", metavar="ALERT_OR_EVENT_ID")
        p.add_argument("--config", type=Path, default=None, help="TOML settings file")
        p.add_argument("--ledger", help="ledger database URL (default: from the settings)")
        p.set_defaults(func=func)

    r = sub.add_parser("replay", help="reprocess recorded alerts into a sandbox topic")
    r.add_argument("--from", dest="start", required=True, help="UTC time, e.g. 2026-11-22T00:00Z")
    r.add_argument("--to", dest="end", required=True, help="UTC time, or 'now'")
    r.add_argument("--to-topic", required=True, help="sandbox topic for the results")
    r.add_argument("--analysis", help="only this analysis, as NAME or NAME@VERSION")
    r.add_argument("--source", choices=["kafka", "archive"], default="kafka")
    r.add_argument("--archive", type=Path, help="archive folder (default: data_dir/archive)")
    r.add_argument("--margin", type=float, help="detector data read around the range, s "
                   "(default: lookback_s)")  # fmt: skip
    r.add_argument("--ledger", help="ledger URL (default: data_dir/replays/SANDBOX)")
    r.set_defaults(func=_replay)
    df = sub.add_parser("diff", help="compare the results of two runs (result topics)")
    df.add_argument("run_a", metavar="RUN_A", help="a result topic, e.g. the live one")
    df.add_argument("run_b", metavar="RUN_B", help="another, e.g. a replay's sandbox")
    df.set_defaults(func=_diff)
    for p in (r, df):
        p.add_argument("--config", type=Path, default=None, help="TOML settings file")
        p.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides the config)")
    r.add_argument("--module", action="append", help="also load analyses from this module")

    d = sub.add_parser("demo", help="run the end-to-end demo on the local broker")
    d.add_argument("--bootstrap", help="use this Kafka instead of the local broker")
    d.add_argument("--timeout", type=float, default=120.0)
    d.add_argument("--exit", action="store_true",
                   help="exit after the results instead of serving the dashboard")  # fmt: skip
    d.set_defaults(func=_demo)
    add_commands(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except MmstreamError as exc:
        print(f"mmstream: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
