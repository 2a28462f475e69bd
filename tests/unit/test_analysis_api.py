"""The analysis API: declared preconditions the runner enforces, AnalysisInput.for_test, the
code hash over the handler's module and helpers, and the distribution that ships it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from mmstream.analyses import AnalysisInput, Outcome, analysis
from mmstream.analyses.inputs import Previous
from mmstream.analyses.registry import Registry
from mmstream.analyses.temporal import TemporalParams, temporal_coincidence
from mmstream.errors import RegistryError
from mmstream.model import (
    NS_PER_S,
    AlertType,
    Circle,
    DetectorEvent,
    FlatSkyMap,
    Livetime,
    ResultStatus,
)
from mmstream.provenance.headers import code_string
from mmstream.stream.results_index import Published
from mmstream.stream.runner import Runner
from mmstream.stream.runs import Job
from mmstream.stream.settings import AnalysisPolicy, RunLimits, Topics
from mmstream.stream.store import EventStore
from mmstream.stream.workers import InlinePool

T0 = 1_800_000_000 * NS_PER_S
calls: list[str] = []


@analysis(name="needs_a_map", version="1", window=(-10, 10), requires=["time", "skymap"],
          min_livetime=0.5)  # fmt: skip
def needs_a_map(inp: AnalysisInput) -> Outcome:
    calls.append(inp.alert.alert_id)
    return Outcome(summary="physics")


def _run(inp: AnalysisInput) -> tuple[ResultStatus, str]:
    runner = Runner(EventStore(10**15), InlinePool(), RunLimits(workers=0), Topics(),
                    lambda name: AnalysisPolicy())  # fmt: skip
    job = Job(inp.alert, needs_a_map, inp.params, inp.window, ("icecube",), 0)
    runner.start(job, True, supersedes=None, newer=None)
    (report,) = runner.collect()
    return report.status, report.outcome.summary


def test_a_missing_localization_is_not_applicable_and_the_handler_does_not_run() -> None:
    calls.clear()
    inp = AnalysisInput.for_test(needs_a_map.validate_params({}), localization=Circle(1, 2, 3, 0.9))
    status, summary = _run(inp)
    assert status is ResultStatus.NOT_APPLICABLE and summary == (
        "not applicable: the alert has no skymap"
    )
    assert calls == []


def test_too_little_livetime_is_reported_without_running_the_handler() -> None:
    calls.clear()
    spec = Registry.discover().get("spacetime_coincidence")
    assert (
        spec.requires == {"time", "localization"} and spec.min_livetime == "min_livetime_fraction"
    )
    down = {"icecube": Livetime("icecube", 0.2, 4.0)}
    flat = FlatSkyMap(nside=1, nest=True, prob=np.full(12, 1 / 12))
    inp = AnalysisInput.for_test(needs_a_map.validate_params({}), livetime=down,
                                 localization=flat)  # fmt: skip
    verdict = needs_a_map.precondition(inp)
    assert verdict is not None and verdict[0] is ResultStatus.INSUFFICIENT_LIVETIME
    assert verdict[1].summary.startswith("insufficient livetime: 20.0% of the window (< 50%)")
    assert calls == []


def test_for_test_builds_columns_and_keeps_only_the_window() -> None:
    events = [DetectorEvent(f"e{i}", "icecube", i, T0 + dt * NS_PER_S, 10.0, 20.0, 1.0)
              for i, dt in enumerate([400, -100, 2, 900])]  # fmt: skip
    inp = AnalysisInput.for_test(TemporalParams(), events, alert_time_ns=T0,
                                 alert_type=AlertType.INITIAL)  # fmt: skip
    cols = inp.events["icecube"]
    assert cols.event_id.tolist() == ["e1", "e2", "e0"], "sorted by time, 900 s is outside"
    out = temporal_coincidence(inp)
    assert [e.values["dt_s"] for e in out.events] == [2.0, -100.0, 400.0]


def test_the_expected_background_counts_only_the_live_part_of_the_window() -> None:
    half = {"icecube": Livetime("icecube", 0.5, 500.0)}
    inp = AnalysisInput.for_test(TemporalParams(background_rate_hz=0.002), livetime=half)
    assert temporal_coincidence(inp).statistics["expected_background"] == pytest.approx(1.0)


def test_declarations_are_checked_when_the_analysis_is_made() -> None:
    with pytest.raises(RegistryError, match="unknown requirements"):
        analysis(name="x", version="1", requires=["a_neutrino"])
    with pytest.raises(RegistryError, match="not one of its parameters"):
        analysis(name="x", version="1", min_livetime="no_such_param")


def _load(tmp_path: Path, package: str, files: dict[str, str]) -> object:
    root = tmp_path / package
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        spec = importlib.util.spec_from_file_location(f"{package}.handler", root / "handler.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module.h  # type: ignore[attr-defined]
    finally:
        sys.path.remove(str(tmp_path))


def test_the_code_hash_covers_the_helpers_the_handler_module_uses(tmp_path: Path) -> None:
    handler = (
        "from mmstream.analyses.registry import Outcome, analysis\n"
        "from {pkg}.helpers import threshold\n\n"
        "@analysis(name='h', version='1.0.0')\n"
        "def h(inp):\n"
        "    return Outcome(summary=str(threshold()))\n"
    )
    hashes = []
    for pkg, value in (("pkg_a", "0.5"), ("pkg_b", "0.5"), ("pkg_c", "0.6")):
        spec = _load(tmp_path, pkg, {"__init__.py": "", "helpers.py":
                                     f"def threshold():\n    return {value}\n",
                                     "handler.py": handler.format(pkg=pkg)})  # fmt: skip
        hashes.append(spec.source_sha256)  # type: ignore[attr-defined]
        assert spec.distribution is None, "not installed: no distribution"  # type: ignore[attr-defined]
    assert hashes[0] != hashes[1], "the import line differs"
    assert hashes[1] != hashes[2], "a helper's edit moves the hash"


def test_a_shipped_analysis_names_its_distribution() -> None:
    assert Registry.discover().get("temporal_coincidence").distribution.startswith("mmstream==")  # type: ignore[union-attr]


def test_the_files_a_setup_hook_reads_are_hashed_into_the_code_string(tmp_path: Path) -> None:
    table = tmp_path / "pdf.npy"
    table.write_bytes(b"first table")

    @analysis(name="with_files", version="1", setup=lambda p: None,
              setup_files=lambda p: [table])  # fmt: skip
    def with_files(inp: AnalysisInput) -> Outcome:
        return Outcome(summary="x")

    params = with_files.validate_params({})
    before = with_files.setup_sha256(params)
    table.write_bytes(b"other table")  # another size: hashed again
    after = with_files.setup_sha256(params)
    assert before is not None and after is not None and before != after
    assert code_string("ab", "pkg==1", after).endswith(f"handler-dist=pkg==1 setup-sha256={after}")


def test_the_context_carries_the_previous_result_and_a_bound_logger() -> None:
    runner = Runner(EventStore(10**15), InlinePool(), RunLimits(workers=0), Topics(),
                    lambda name: AnalysisPolicy())  # fmt: skip
    seen = []

    @analysis(name="looks_back", version="1")
    def looks_back(inp: AnalysisInput) -> Outcome:
        seen.append(inp.context)
        return Outcome(summary="x")

    inp = AnalysisInput.for_test(looks_back.validate_params({}))
    job = Job(inp.alert, looks_back, inp.params, inp.window, ("icecube",), 0)
    runner.start(job, True, supersedes=None, newer=None,
                 previous=Published("rid-0", "0", retraction=False))  # fmt: skip
    runner.collect()
    (context,) = seen
    assert context.previous == Previous("rid-0", "0", False)
    assert context.fields == {"analysis": "looks_back@1", "alert_id": "TEST1", "revision": "1"}
    assert hasattr(context.log, "info")
