"""Declaring analyses and finding them.

A physicist writes a pure function ``f(inp: AnalysisInput[P]) -> Outcome`` and decorates it
with :func:`analysis`, naming it, its version, the alerts that trigger it, its time window
and a pydantic model of its parameters. The decorated object is an :class:`AnalysisSpec`,
still callable like the function (so it is unit-testable with no broker). The service
finds specs through the ``mmstream.analyses`` entry-point group, or in modules named in
the settings, without any change to mmstream itself.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from mmstream.analyses.code import code_sha256, distribution, files_sha256
from mmstream.analyses.inputs import (
    AnalysisInput,
    CoincidentEvent,
    DetectorConditions,
    OtherAlert,
    Outcome,
    livetime_shortfall,
)
from mmstream.analyses.windows import KINDS
from mmstream.errors import RegistryError
from mmstream.model import Alert, AlertType, FlatSkyMap, MultiOrderSkyMap, ResultStatus

ENTRY_POINT_GROUP = "mmstream.analyses"
P = TypeVar("P", bound=BaseModel)
__all__ = ["AnalysisInput", "CoincidentEvent", "DetectorConditions", "OtherAlert", "Outcome",
           "livetime_shortfall"]  # fmt: skip
# Every alert type except RETRACTION, which withdraws results rather than asking for new ones.
DEFAULT_ALERT_TYPES = frozenset(t for t in AlertType if t is not AlertType.RETRACTION)


class NoParams(BaseModel):
    """Parameters of an analysis that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class AnalysisSpec(Generic[P]):
    """A registered analysis: its identity, its subscription, and the function."""

    name: str
    version: str
    func: Callable[[AnalysisInput[P]], Outcome]
    params_model: type[P]
    window: tuple[float, float]
    sources: frozenset[str] | None
    alert_types: frozenset[AlertType]
    detectors: tuple[str, ...] | None
    description: str
    window_by: Callable[..., tuple[float, float]] | None = None  # (alert) or (alert, params)
    requires: frozenset[str] = frozenset()  # of REQUIREMENTS
    min_livetime: float | str | None = None  # a fraction, or the parameter that holds it
    setup: Callable[[P], Any] | None = None  # heavy resources, made once per process
    setup_files: Callable[[P], Iterable[str | Path]] | None = None  # what setup reads
    alert_kinds: frozenset[str] = frozenset()  # other alerts it reads (inp.alerts), by kind
    condition_keys: tuple[str, ...] = ()  # detector conditions it reads (inp.conditions)

    def setup_sha256(self, params: P) -> str | None:
        """sha256 over the files the setup hook reads (content and name), for provenance."""
        if self.setup_files is None:
            return None
        return files_sha256(tuple(str(p) for p in self.setup_files(params)))

    def precondition(self, inp: AnalysisInput[P]) -> tuple[ResultStatus, Outcome] | None:
        """What the runner publishes instead of running the handler, when the alert lacks
        what it needs (NOT_APPLICABLE) or the detector was down too much of the window."""
        alert = inp.alert
        missing = [need for need in sorted(self.requires) if not _has(alert, need)]
        if missing:
            return ResultStatus.NOT_APPLICABLE, Outcome(
                summary=f"not applicable: the alert has no {' and no '.join(missing)}"
            )
        minimum = self.min_livetime
        if isinstance(minimum, str):
            minimum = float(getattr(inp.params, minimum))
        if minimum is not None and (short := livetime_shortfall(inp, minimum)) is not None:
            return ResultStatus.INSUFFICIENT_LIVETIME, short
        return None

    def window_for(self, alert: Alert, params: P | None = None) -> tuple[float, float]:
        """This alert's window: from ``window_by`` (e.g. by the alert's kind or group, maybe
        from a table in the parameters) or the default."""
        if self.window_by is None:
            return self.window
        if len(inspect.signature(self.window_by).parameters) == 2:
            return self.window_by(alert, params if params is not None else self.params_model())
        return self.window_by(alert)

    def __call__(self, inp: AnalysisInput[P]) -> Outcome:
        return self.func(inp)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by name (worker processes import it): a handler is module-level code."""
        return (spec_named, (self.func.__module__, self.func.__qualname__, self.name))

    def importable(self) -> bool:
        """Whether a worker process finds this spec by its module and name."""
        try:
            return spec_named(self.func.__module__, self.func.__qualname__, self.name) is self
        except RegistryError:
            return False

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def source_sha256(self) -> str:
        """sha256 of the handler's module and helpers: which code made it, beyond its version."""
        return code_sha256(self.func)

    @property
    def distribution(self) -> str | None:
        """``name==version`` of the distribution that ships the handler, where installed."""
        return distribution(self.func.__module__)

    def matches(self, alert: Alert) -> bool:
        if alert.alert_type not in self.alert_types:
            return False
        return self.sources is None or alert.source in self.sources

    def validate_params(self, raw: Mapping[str, Any]) -> P:
        try:
            return self.params_model.model_validate(dict(raw))
        except ValidationError as exc:
            raise RegistryError(f"invalid parameters for analysis {self.label}:\n{exc}") from exc


# What an analysis may declare it needs of an alert (checked by the runner, not the handler).
REQUIREMENTS = frozenset({"time", "localization", "skymap"})


def _has(alert: Alert, need: str) -> bool:
    if need == "time":
        return alert.time_ns is not None
    if need == "skymap":
        return isinstance(alert.localization, MultiOrderSkyMap | FlatSkyMap)
    return alert.localization is not None


def spec_named(module: str, qualname: str, name: str) -> AnalysisSpec[Any]:
    """The analysis ``name`` defined as ``module.qualname`` (how a worker finds it)."""
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise RegistryError(
            f"analysis {name}: {module}.{qualname} cannot be imported: {exc}"
        ) from exc
    if not isinstance(found, AnalysisSpec) or found.name != name:
        raise RegistryError(
            f"analysis {name}: {module}.{qualname} is not that analysis (define "
            "it with @analysis at module level)"
        )
    return found


def params_sha256(params: BaseModel) -> str:
    """Hash of the canonical JSON of validated parameters (sorted keys, no spaces)."""
    return hashlib.sha256(canonical_json(params.model_dump(mode="json")).encode()).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def analysis(
    *,
    name: str,
    version: str,
    window: tuple[float, float] = (-500.0, 500.0),
    params: type[P] | None = None,
    sources: Iterable[str] | None = None,
    alert_types: Iterable[AlertType] = DEFAULT_ALERT_TYPES,
    detectors: Iterable[str] | None = None,
    window_by: Callable[..., tuple[float, float]] | None = None,
    requires: Iterable[str] = (),
    min_livetime: float | str | None = None,
    setup: Callable[[P], Any] | None = None,
    setup_files: Callable[[P], Iterable[str | Path]] | None = None,
    alerts: Iterable[str] = (),
    conditions: Iterable[str] = (),
) -> Callable[[Callable[[AnalysisInput[P]], Outcome]], AnalysisSpec[P]]:
    """Declare an analysis. ``window`` is (start, end) in seconds relative to the alert time;
    ``window_by(alert)`` or ``window_by(alert, params)`` picks it per alert instead (e.g.
    RAVEN's table by CBC or Burst group, or a table by alert kind held in the parameters).
    ``requires`` ("time", "localization", "skymap") and ``min_livetime`` (a fraction, or the
    name of the parameter holding it) are checked by the runner before the handler runs: the
    result is NOT_APPLICABLE or INSUFFICIENT_LIVETIME, and the handler holds physics only.
    ``setup(params)`` makes heavy resources (PDFs, instrument responses) once per worker
    process, handed to the handler as ``inp.context.resources``; the files it reads, named by
    ``setup_files(params)``, are hashed into every result's ``mmstream-code``. ``alerts``
    names the kinds of other alerts (analyses/windows.py KINDS) the handler reads as
    ``inp.alerts``: those in its window that reached us before the triggering one; a later
    revision or retraction of one of them re-runs the analysis, superseding its result.
    ``detectors=()`` reads no detector at all (the run waits for no watermark).
    ``conditions`` names the keys of the detectors' context streams the handler reads as
    ``inp.conditions[detector]``: the value at each event's time, and the intervals."""
    if not name.isidentifier():
        raise RegistryError(f"analysis name {name!r} must be a Python identifier (used in topics)")
    if window[1] < window[0]:
        raise RegistryError(f"analysis {name}: window {window} ends before it starts")
    model: type[Any] = params or NoParams
    needs = frozenset(requires)
    if unknown := needs - REQUIREMENTS:
        raise RegistryError(f"analysis {name}: unknown requirements {sorted(unknown)}; "
                            f"known: {sorted(REQUIREMENTS)}")  # fmt: skip
    if isinstance(min_livetime, str) and min_livetime not in model.model_fields:
        raise RegistryError(f"analysis {name}: min_livetime names {min_livetime!r}, which is "
                            "not one of its parameters")  # fmt: skip
    kinds = frozenset(alerts)
    if unknown_kinds := kinds - set(KINDS):
        raise RegistryError(f"analysis {name}: unknown alert kinds {sorted(unknown_kinds)}; "
                            f"known: {list(KINDS)}")  # fmt: skip
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise RegistryError(f"analysis {name}: params must be a pydantic BaseModel subclass")

    def wrap(func: Callable[[AnalysisInput[P]], Outcome]) -> AnalysisSpec[P]:
        if len(inspect.signature(func).parameters) != 1:
            raise RegistryError(f"analysis {name}: the handler takes exactly one AnalysisInput")
        try:
            model()
        except ValidationError as exc:
            raise RegistryError(f"analysis {name}: every parameter needs a default") from exc
        return AnalysisSpec(
            name=name,
            version=version,
            func=func,
            params_model=cast("type[P]", model),
            window=(float(window[0]), float(window[1])),
            sources=frozenset(sources) if sources is not None else None,
            alert_types=frozenset(alert_types),
            detectors=tuple(detectors) if detectors is not None else None,
            description=inspect.getdoc(func) or "",
            window_by=window_by,
            requires=needs,
            min_livetime=min_livetime,
            setup=setup,
            setup_files=setup_files,
            alert_kinds=kinds,
            condition_keys=tuple(conditions),
        )

    return wrap


class Registry:
    """The analyses one service runs, by name."""

    def __init__(self, specs: Iterable[AnalysisSpec[Any]] = ()) -> None:
        self._specs: dict[str, AnalysisSpec[Any]] = {}
        # analyses another distribution's entry point brought: enabled only where configured
        self.opt_in: set[str] = set()
        for spec in specs:
            self.add(spec)

    def add(self, spec: AnalysisSpec[Any]) -> None:
        if not isinstance(spec, AnalysisSpec):
            raise RegistryError(f"{spec!r} is not an analysis; decorate it with @analysis")
        existing = self._specs.get(spec.name)
        if existing is not None and existing.func is not spec.func:
            raise RegistryError(
                f"two analyses are named {spec.name!r}: {existing.func.__module__} and "
                f"{spec.func.__module__}; rename one"
            )
        self._specs[spec.name] = spec

    def __iter__(self) -> Any:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str) -> AnalysisSpec[Any]:
        try:
            return self._specs[name]
        except KeyError:
            raise RegistryError(
                f"no analysis named {name!r}; known: {sorted(self._specs)}"
            ) from None

    def add_module(self, module: ModuleType | str) -> None:
        mod = importlib.import_module(module) if isinstance(module, str) else module
        for value in vars(mod).values():
            if isinstance(value, AnalysisSpec):
                self.add(value)

    @classmethod
    def discover(cls, modules: Iterable[str] = ()) -> Registry:
        """Every analysis of the entry-point group, plus those in ``modules``."""
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                spec = ep.load()
                registry.add(spec)
                if ep.dist is not None and ep.dist.name != "mmstream":
                    registry.opt_in.add(spec.name)
            except RegistryError:
                raise
            except Exception as exc:
                raise RegistryError(
                    f"entry point {ep.name} = {ep.value} of group {ENTRY_POINT_GROUP} failed "
                    f"to load: {type(exc).__name__}: {exc}"
                ) from exc
        for module in modules:
            registry.add_module(module)
        return registry
