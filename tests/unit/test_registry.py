from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from mmstream.analyses.registry import (
    AnalysisInput,
    Outcome,
    Registry,
    analysis,
    params_sha256,
)
from mmstream.analyses.temporal import TemporalParams, temporal_coincidence
from mmstream.errors import RegistryError
from mmstream.model import NS_PER_S, Alert, AlertType, EventColumns, Role, SourceRef, Window

T0 = 1_800_000_000 * NS_PER_S


def make_alert(alert_type: AlertType = AlertType.PRELIMINARY, source: str = "LVK") -> Alert:
    return Alert(
        "S1", "r1", alert_type, Role.OBSERVATION, source, T0, 1e-9, None, SourceRef("t", 0, 0, "x")
    )


def columns(times_s: list[float]) -> EventColumns:
    n = len(times_s)
    return EventColumns(
        "icecube",
        np.array([f"e{i}" for i in range(n)]),
        T0 + (np.array(times_s) * NS_PER_S).astype(np.int64),
        np.zeros(n),
        np.zeros(n),
        np.ones(n),
        np.full(n, np.nan),
        np.zeros(n, np.int32),
        np.arange(n),
    )


def test_discovery_finds_the_builtin_analyses_through_entry_points() -> None:
    names = {spec.name for spec in Registry.discover()}
    assert {"temporal_coincidence", "spacetime_coincidence"} <= names


def test_a_module_of_analyses_registers_without_touching_the_service() -> None:
    registry = Registry.discover(["tests.unit.example_analyses"])
    spec = registry.get("count_events")
    assert spec.version == "2.1.0" and spec.window == (-10.0, 10.0)
    assert spec.sources == frozenset({"IceCube"})


def test_decorator_rejects_what_would_break_later() -> None:
    with pytest.raises(RegistryError, match="identifier"):
        analysis(name="bad name", version="1")
    with pytest.raises(RegistryError, match="ends before"):
        analysis(name="x", version="1", window=(5, -5))

    class NoDefault(BaseModel):
        threshold: float

    with pytest.raises(RegistryError, match="default"):
        analysis(name="x", version="1", params=NoDefault)(lambda inp: Outcome("x"))
    with pytest.raises(RegistryError, match="exactly one"):
        analysis(name="x", version="1")(lambda a, b: Outcome("x"))  # type: ignore[arg-type,misc]


def test_duplicate_names_are_refused() -> None:
    a = analysis(name="dup", version="1")(lambda inp: Outcome("a"))
    b = analysis(name="dup", version="2")(lambda inp: Outcome("b"))
    with pytest.raises(RegistryError, match="two analyses"):
        Registry([a, b])


def test_subscription_matching() -> None:
    spec = temporal_coincidence
    assert spec.matches(make_alert())
    assert not spec.matches(make_alert(AlertType.RETRACTION))


def test_parameters_are_validated_and_hashed_canonically() -> None:
    spec = temporal_coincidence
    assert spec.validate_params({"background_rate_hz": 0.01}) == TemporalParams(
        background_rate_hz=0.01
    )
    with pytest.raises(RegistryError, match="background_rate_hz"):
        spec.validate_params({"background_rate_hz": -1})
    with pytest.raises(RegistryError, match="extra"):
        spec.validate_params({"unknown": 1})
    a, b = TemporalParams(), TemporalParams(background_rate_hz=0.01)
    assert params_sha256(a) == params_sha256(TemporalParams()) != params_sha256(b)


def test_temporal_coincidence_lists_events_by_time_offset() -> None:
    inp = AnalysisInput(
        make_alert(),
        Window.around(T0, -500, 500),
        {"icecube": columns([-100.0, 2.0, 400.0])},
        TemporalParams(background_rate_hz=0.001),
    )
    out = temporal_coincidence(inp)
    assert [e.values["dt_s"] for e in out.events] == [2.0, -100.0, 400.0]
    assert out.statistics["n_events"] == 3
    assert out.statistics["expected_background"] == pytest.approx(1.0)
    # P(N >= 3 | mu = 1) = 1 - e^-1 (1 + 1 + 1/2)
    assert out.statistics["p_value"] == pytest.approx(1 - np.exp(-1) * 2.5)


def test_handler_source_hash_changes_with_the_code(tmp_path: Path) -> None:
    """The same handler, edited by one character in its body: the hash moves; unedited
    code in another file: the hash stays (it is of the code, not of where it lives)."""
    import importlib.util

    code = (
        "from mmstream.analyses.registry import Outcome, analysis\n\n"
        "@analysis(name='edited', version='1.0.0')\n"
        "def edited(inp):\n"
        "    return Outcome(summary='threshold 0.5')\n"
    )

    def load(name: str, text: str) -> str:
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return str(module.edited.source_sha256)

    original = load("handler_v1", code)
    assert load("handler_copy", code) == original
    assert load("handler_v2", code.replace("0.5", "0.6")) != original


def test_raven_windows_follow_the_alert_group() -> None:
    from dataclasses import replace

    from mmstream.analyses.temporal import raven_temporal_coincidence

    cbc = replace(make_alert(), extra={"group": "CBC"})
    burst = replace(make_alert(), extra={"group": "Burst"})
    assert raven_temporal_coincidence.window_for(cbc) == (-10.0, 10.0)
    assert raven_temporal_coincidence.window_for(burst) == (-500.0, 500.0)
    assert temporal_coincidence.window_for(cbc) == (-500.0, 500.0)


def test_raven_temporal_far_is_reported_with_its_inputs() -> None:
    from dataclasses import replace

    from mmstream.analyses.temporal import RavenTemporalParams, raven_temporal_coincidence

    alert = replace(make_alert(), extra={"group": "CBC"}, far_hz=1e-5)
    inp = AnalysisInput(alert, Window.around(T0, -10, 10), {"icecube": columns([2.0])},
                        RavenTemporalParams(external_rate_hz=1e-3))  # fmt: skip
    out = raven_temporal_coincidence(inp)
    assert out.statistics["temporal_far_hz"] == pytest.approx(20 * 1e-3 * 1e-5)
    assert out.details["joint_far_inputs"] == {
        "window_s": [-10.0, 10.0],
        "far_gw_hz": 1e-5,
        "rate_ext_hz": 1e-3,
    }
