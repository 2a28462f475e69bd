"""The monitoring pieces in deploy/: Prometheus alerting rules (checked and unit-tested with
promtool), the Grafana dashboard and its provisioning, and docker-compose.yml's wiring of them.
Every metric a rule or a panel names must be one mmstream exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client import REGISTRY

import mmstream.ops.metrics  # noqa: F401  (registers mmstream's metrics)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "mmstream.json"

# PromQL functions and aggregations the rules and panels may call, and its keywords.
FUNCTIONS = {
    "abs", "absent", "avg", "avg_over_time", "ceil", "changes", "clamp_max", "clamp_min",
    "count", "count_over_time", "delta", "deriv", "floor", "histogram_quantile", "increase",
    "irate", "label_replace", "max", "max_over_time", "min", "min_over_time", "quantile",
    "rate", "resets", "round", "scalar", "sort", "sort_desc", "sum", "sum_over_time", "time",
    "topk", "bottomk", "vector",
}  # fmt: skip
KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan"}
# Sample names a family with no samples yet (labelled, never set) will expose.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every sample name mmstream's /metrics serves (it serves prometheus_client's REGISTRY),
    and Prometheus's own ``up``."""
    names = {"up"}
    for family in REGISTRY.collect():
        names.update(s.name for s in family.samples)
        if not family.samples:
            names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana target) selects."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries, $__rate_interval
    s = re.sub(r"\$\{?\w+\}?", " ", s)  # Grafana variables elsewhere
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", s):
        token, called = m.group(), s[m.end() :].lstrip().startswith("(")
        if (called and token in FUNCTIONS) or token.lower() in KEYWORDS:
            continue
        names.add(token)
    return names


def promtool() -> str:
    """promtool from .venv/bin (scripts/setup-env.sh puts Debian's there) or PATH."""
    for candidate in (Path(sys.executable).parent / "promtool", ROOT / ".venv/bin/promtool"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool not found in .venv/bin or on PATH: run ./scripts/test (its setup "
            "unpacks Debian's prometheus package's promtool into .venv/bin), or install "
            "the Debian package prometheus (apt-get install prometheus)"
        )
    return found


def run_promtool(*args: str) -> str:
    proc = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(DEPLOY / "alerts.yml")["groups"] for r in g["rules"]]


def panels() -> list[dict[str, Any]]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return list(dashboard["panels"])


def compose_service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")["services"][name]
    return service


def mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a compose service's bind mounts."""
    out = {}
    for volume in compose_service(service).get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("."):
            out[container] = (ROOT / host).resolve()
    return out


def test_the_expression_parser_finds_metric_names() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, analysis) (rate(a_bucket{x="b(c)"}[$__rate_interval])))'
        " / on (job) group_left (topic) b_total unless c offset 15m > 1e3 and max(d) by (e)"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d"}
    assert metric_names('up{job="mmstream"} == 0') == {"up"}
    assert metric_names("mmstrem_deadletters_total") - exported_names()  # a typo is caught


def test_exported_names_follow_prometheus_client_conventions() -> None:
    names = exported_names()
    assert {"mmstream_transaction_aborts_total", "mmstream_deadletters_total"} <= names
    assert "mmstream_transaction_aborts" not in names  # counters are exposed with _total
    assert "mmstream_alert_to_result_seconds_bucket" in names
    assert "mmstream_alert_to_result_seconds" not in names  # a histogram has no bare sample


def test_promtool_checks_the_rules_and_the_prometheus_config() -> None:
    out = run_promtool("check", "rules", str(DEPLOY / "alerts.yml"))
    assert f"SUCCESS: {len(rules())} rules found" in out
    out = run_promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    assert "SUCCESS: 1 rule files found" in out


def test_the_rules_fire_on_trouble_and_not_on_quiet_series() -> None:
    tests = load_yaml(DEPLOY / "alerts_test.yml")
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    required = {"MmstreamDeadLettersRising", "MmstreamUpstreamSilent", "MmstreamTransactionAborts"}
    assert required <= tested
    assert tested == {r["alert"] for r in rules()}, "every rule has a unit test"
    run_promtool("test", "rules", str(DEPLOY / "alerts_test.yml"))


def test_every_rule_is_complete_and_names_only_exported_metrics() -> None:
    exported = exported_names()
    for rule in rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, f"{rule['alert']} names {sorted(names - exported)}"


def test_the_dashboard_panels_are_well_formed_and_name_only_exported_metrics(
    tmp_path: Path,
) -> None:
    exported = exported_names()
    datasource = load_yaml(GRAFANA / "provisioning/datasources/prometheus.yml")["datasources"][0]
    ps = panels()
    assert len({p["id"] for p in ps}) == len(ps), "panel ids are unique"
    exprs = []
    for p in ps:
        assert p["datasource"]["uid"] == datasource["uid"], p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]), p["title"]
        assert p["targets"], p["title"]
        for target in p["targets"]:
            names = metric_names(target["expr"])
            assert names, p["title"]
            assert names <= exported, f"panel {p['title']!r} names {sorted(names - exported)}"
            exprs.append(re.sub(r"\$__\w+", "5m", target["expr"]))
    titles = " ".join(p["title"].lower() for p in ps)
    for subject in ("latency", "status", "dead letters", "lag", "watermark", "abort", "upstream",
                    "cpu"):  # fmt: skip
        assert subject in titles, subject
    # promtool parses each panel's PromQL, as recording rules
    recorded = [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(exprs)]
    check = tmp_path / "panels.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": recorded}]}))
    run_promtool("check", "rules", str(check))


def test_compose_mounts_the_rules_and_the_provisioned_grafana() -> None:
    prometheus = mounts("prometheus")
    config = load_yaml(prometheus["/etc/prometheus/prometheus.yml"])
    for rule_file in config["rule_files"]:
        assert prometheus[f"/etc/prometheus/{rule_file}"] == (DEPLOY / rule_file).resolve()

    grafana = compose_service("grafana")
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"]), "a pinned version"
    assert "3000:3000" in grafana["ports"]
    assert all(v.endswith(":ro") for v in grafana["volumes"])
    grafana_mounts = mounts("grafana")
    assert grafana_mounts["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    provider = load_yaml(GRAFANA / "provisioning/dashboards/mmstream.yml")["providers"][0]
    folder = grafana_mounts[provider["options"]["path"]]
    assert folder == DASHBOARD.parent and DASHBOARD.is_file()
    datasource = load_yaml(GRAFANA / "provisioning/datasources/prometheus.yml")["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert "9090:9090" in compose_service("prometheus")["ports"]
