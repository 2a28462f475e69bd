"""Run every benchmark against a real local Kafka and write the table (BENCHMARKS.md).

    python -m benchmarks.suite [--events 1000000] [--alerts 200] [--out BENCHMARKS.md]

Each row is measured in this run, on this machine; ratios compare figures of the same run.
``benchmarks/run`` is the one command: it builds the environments and calls this.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from benchmarks import asof, ingest, kernels, latency, sky
from mmstream.broker.local import LocalKafka

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"

TARGETS = {
    "ingest_vs_bare": 0.7,
    "ingest_vs_quix": 2.0,
    "mb_per_million": 64.0,
}


def _machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu})"


def _peer_ingest(bootstrap: str, topic: str, n: int) -> ingest.Rate | None:
    if not PEERS_PYTHON.exists():
        return None
    out = subprocess.run([str(PEERS_PYTHON), str(HERE / "quix_ingest.py"), bootstrap, topic,
                          str(n)], capture_output=True, text=True, timeout=3600,
                         check=False)  # fmt: skip
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        return None
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return ingest.Rate(data["events"], data["wall_s"], data["cpu_s"])


def _quix_version() -> str:
    if not PEERS_PYTHON.exists():
        return "absent"
    out = subprocess.run([str(PEERS_PYTHON), "-c", "import importlib.metadata as m; "
                          "print(m.version('quixstreams'), m.version('confluent-kafka'))"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return out.stdout.strip() or "absent"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--latency-buffers", default="10000,100000,1000000,10000000")
    ap.add_argument(
        "--live-rate",
        type=float,
        default=20_000.0,
        help="events/s sent while a latency run at 10^5 is timed again",
    )
    ap.add_argument("--out", type=Path, default=HERE.parent / "BENCHMARKS.md")
    args = ap.parse_args()
    rows: list[str] = []
    notes: list[str] = []

    def row(name: str, figure: str, ratio: str, target: str) -> None:
        rows.append(f"| {name} | {figure} | {ratio} | {target} |")
        print(rows[-1], flush=True)

    broker = LocalKafka(Path(tempfile.mkdtemp(prefix="mmstream-bench-kafka-")))
    info = broker.start()
    try:
        n = args.events
        for batch in (1, 100):
            topic = ingest.produce_dataset(info.bootstrap, f"ingest{batch}x", n, batch)
            bare = ingest.bare_loop(info.bootstrap, topic, n)
            ours = ingest.mmstream_path(
                info.bootstrap,
                topic,
                f"ingest{batch}x",
                n,
                Path(tempfile.mkdtemp(prefix="mmstream-bench-arch-")),
            )
            no_archive = ingest.mmstream_path(info.bootstrap, topic, f"ingest{batch}x", n)
            quix = _peer_ingest(info.bootstrap, topic, n)
            what = "single-event messages" if batch == 1 else f"{batch} events per message"
            row(
                f"ingest, bare confluent-kafka + fastavro ({what})",
                f"{bare.per_s:,.0f} ev/s; {bare.per_cpu_s:,.0f} ev/CPU-s",
                "1 (the limit)",
                "",
            )
            row(f"ingest, mmstream service path, defaults: raw archive on ({what})",
                f"{ours.per_s:,.0f} ev/s; {ours.per_cpu_s:,.0f} ev/CPU-s",
                f"{ours.per_cpu_s / bare.per_cpu_s:.2f} × bare",
                f"≥ {TARGETS['ingest_vs_bare']} × bare")  # fmt: skip
            row(f"ingest, mmstream service path, raw archive OFF (not the default; {what})",
                f"{no_archive.per_s:,.0f} ev/s; {no_archive.per_cpu_s:,.0f} ev/CPU-s",
                f"{no_archive.per_cpu_s / bare.per_cpu_s:.2f} × bare", "")  # fmt: skip
            if quix is not None:
                row(f"ingest, Quix Streams app ({what})",
                    f"{quix.per_s:,.0f} ev/s; {quix.per_cpu_s:,.0f} ev/CPU-s",
                    f"mmstream = {ours.per_cpu_s / quix.per_cpu_s:.2f} × Quix",
                    f"mmstream ≥ {TARGETS['ingest_vs_quix']} × Quix")  # fmt: skip
            else:
                notes.append("Quix Streams peer not run (benchmarks/.venv-peers missing or failed)")
        idle: dict[int, dict[str, float]] = {}
        for buffered in (int(b) for b in args.latency_buffers.split(",")):
            # 10^7: each alert's window holds ~460,000 events; fewer alerts keep the run short
            alerts = args.alerts if buffered < 10_000_000 else min(args.alerts, 20)
            try:
                lat = latency.alert_to_result(info.bootstrap, buffered, alerts)
            except Exception as exc:  # the rest of the table still gets written
                notes.append(f"latency at {buffered:,} buffered events not measured: {exc}")
                continue
            idle[buffered] = lat
            row(f"alert→result, {latency.ANALYSIS}, defaults (ledger and archive on), "
                f"{lat['buffered']:,.0f} events buffered, {lat['alerts']:.0f} alerts"
                + ("" if lat["real_map"] else " (Gaussian map)"),
                f"p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, "
                f"p99 {lat['p99_ms']:.0f} ms (after the result's produce: p50 "
                f"{lat['after_p50_ms']:.0f}, p99 {lat['after_p99_ms']:.0f} ms); process peak "
                f"RSS {lat['peak_rss_mb']:.0f} MB",
                "", "p99 < 150 ms at 10^5, < 500 ms at 10^6")  # fmt: skip
        if args.live_rate and 100_000 in idle:
            lat = latency.alert_to_result(info.bootstrap, 100_000, args.alerts, args.live_rate)
            base = idle[100_000]
            row(f"alert→result as above at 10^5, while a detector sends "
                f"{args.live_rate:,.0f} ev/s (100 per message)",
                f"p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, "
                f"p99 {lat['p99_ms']:.0f} ms; consumed {lat['ingest_per_s']:,.0f} ev/s of "
                f"{lat['fed_per_s']:,.0f} sent",
                f"p99 {lat['p99_ms'] / base['p99_ms']:.2f} × idle", "≤ 1.5 × idle")  # fmt: skip
    finally:
        broker.stop()
    if kernels.MAP_A.exists():
        for npos in (100_000, 1_000_000):
            k = sky.density_level_moc(npos)
            row(f"density + credible level at {npos:,} positions, multi-order map (bayestar, "
                "2-D: ligo.skymap given the map without its distance columns)",
                f"ours {k['ours_s'] * 1000:.1f} ms, ligo.skymap crossmatch "
                f"{k['theirs_s'] * 1000:.1f} ms, roofline (ang2pix + searchsorted) "
                f"{k['roofline_s'] * 1000:.1f} ms, ang2pix alone {k['ang2pix_s'] * 1000:.1f} ms",
                f"{k['theirs_s'] / k['ours_s']:.2f} × ligo.skymap, "
                f"{k['roofline_s'] / k['ours_s']:.2f} × the roofline (max |Δ| ligo "
                f"{k['diff_ligo']:.1e}, roofline {k['diff_roofline']:.1e})",
                "≥ 2 × ligo.skymap, ≥ 0.8 × roofline")  # fmt: skip
        o = sky.overlap_moc()
        row("overlap integral of two multi-order maps",
            f"ours {o['ours_s'] * 1000:.1f} ms, ligo-raven {o['raven_s'] * 1000:.1f} ms, "
            f"hpmoc {o['hpmoc_s'] * 1000:.1f} ms",
            f"{o['hpmoc_s'] / o['ours_s']:.2f} × hpmoc, {o['raven_s'] / o['ours_s']:.1f} × "
            f"ligo-raven (rel Δ hpmoc {o['rel_hpmoc']:.0e}, ligo-raven {o['rel_raven']:.0e})",
            "≥ 2 × hpmoc")  # fmt: skip
        if sky.FLAT_2048.exists():
            for nside, flat in sky.flat_maps().items():
                f = sky.overlap_flat(flat)
                row(f"overlap integral, multi-order map × flat NESTED nside {nside} map",
                    f"ours {f['ours_s'] * 1000:.0f} ms (peak {f['peak_mb']:.1f} MB beyond "
                    f"the maps), ligo-raven {f['raven_s'] * 1000:.0f} ms",
                    f"{f['raven_s'] / f['ours_s']:.1f} × ligo-raven (rel Δ "
                    f"{f['rel_raven']:.0e})", "< 1 s, < 500 MB at nside 2048")  # fmt: skip
                d = sky.density_level_flat(flat, 10_000)
                row(f"density + credible level at 10,000 positions, flat NESTED nside {nside} "
                    "map",
                    f"ours {d['ours_s'] * 1000:.0f} ms, ligo.skymap crossmatch "
                    f"{d['theirs_s'] * 1000:.0f} ms, roofline {d['roofline_s'] * 1000:.1f} ms "
                    "(its per-pixel levels sorted beforehand, untimed)",
                    f"{d['theirs_s'] / d['ours_s']:.0f} × ligo.skymap, "
                    f"{d['roofline_s'] / d['ours_s']:.4f} × the roofline (max |Δ| ligo "
                    f"{d['diff_ligo']:.1e}: ties)", "≥ 1 × ligo.skymap")  # fmt: skip
                del flat
        else:
            notes.append(f"flat-map rows skipped: {sky.FLAT_2048} absent")
        lt = kernels.llh_trials()
        row(
            f"likelihood test, 1,000 background trials, {lt['events']:.0f} events",
            f"{lt['ours_s']:.2f} s",
            "no peer implementation to compare",
            "",
        )
    else:
        notes.append(f"kernels skipped: {kernels.MAP_A} absent")
    j = asof.asof()
    row(
        f"as-of join of conditions, {j['events']:,.0f} events against {j['changes']:,.0f} "
        "changes of one key",
        f"ours {j['ours_s'] * 1000:.1f} ms, bare numpy searchsorted {j['bare_s'] * 1000:.1f} ms",
        f"{j['bare_s'] / j['ours_s']:.2f} × the bare limit",
        "",
    )
    mem = subprocess.run([sys.executable, "-m", "benchmarks.memory", str(n)],
                         capture_output=True, text=True, check=True, cwd=HERE.parent)  # fmt: skip
    m = json.loads(mem.stdout.strip().splitlines()[-1])
    per_million = m["rss_delta_bytes"] / m["events"] * 1e6 / 2**20
    floor = m["column_bytes"] / m["events"] * 1e6 / 2**20
    row(f"resident memory, {m['events']:,} events in the store (100 per message, through "
        "the decoder), defaults (ops/process.py: 4 MiB mmap threshold)",
        f"{per_million:.0f} MB per 10^6 (the store's columns: {floor:.0f} MB)",
        f"{per_million / floor:.2f} × the columns",
        f"< {TARGETS['mb_per_million']:.0f} MB")  # fmt: skip

    head = [
        "# Benchmarks",
        "",
        f"Made by `benchmarks/run` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; "
        f"{_machine()}; Python {platform.python_version()}; mmstream {version('mmstream')}; "
        f"confluent-kafka {version('confluent-kafka')} (librdkafka "
        f"{__import__('confluent_kafka').libversion()[0]}); fastavro {version('fastavro')}; "
        f"Kafka {info.kafka_version} (local, one node); Quix Streams, confluent-kafka in its "
        f"environment: {_quix_version()}; ligo.skymap {version('ligo.skymap')}; "
        f"ligo-raven {version('ligo-raven')}.",
        "",
        "Ingest: events per second of wall time and per CPU-second of the process (librdkafka "
        "threads included), from the first consumed batch to the last; ratios use CPU-seconds.",
        "",
        "| benchmark | figure | ratio (same run) | target |",
        "| --- | --- | --- | --- |",
    ]
    args.out.write_text("\n".join([*head, *rows, "", *[f"- {x}" for x in notes]]) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
