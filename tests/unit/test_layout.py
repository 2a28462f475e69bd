"""The layout rules of ../shared/DESIGN.md, checked on the source: small modules, stages that
import neither ``config`` nor ``ops`` (its logger aside) nor another module's private names,
and an import graph without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import mmstream

ROOT = Path(mmstream.__file__).resolve().parent


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = ".".join(("mmstream", *path.relative_to(ROOT).with_suffix("").parts))
        out[name.removesuffix(".__init__")] = ast.parse(path.read_text(), str(path))
    return out


def _imports(tree: ast.Module) -> list[tuple[str, list[str], bool]]:
    """(module, names, at module level) of every ``mmstream`` import."""
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmstream"):
            found.append((node.module, [a.name for a in node.names], id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], id(node) in top) for a in node.names
                      if a.name.startswith("mmstream")]  # fmt: skip
    return found


def test_no_module_is_over_400_lines() -> None:
    long = {p.name: n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_service_wiring_is_small() -> None:
    assert len((ROOT / "stream" / "service.py").read_text().splitlines()) <= 220


def test_stages_import_neither_config_nor_ops_nor_private_names() -> None:
    bad = []
    for name, tree in _modules().items():
        for module, names, _ in _imports(tree):
            if name.startswith("mmstream.stream") and (
                module == "mmstream.config"
                or (module.startswith("mmstream.ops") and module != "mmstream.ops.logging")
                or module in ("mmstream.app", "mmstream.cli")
            ):
                bad.append(f"{name} imports {module}")
            bad += [f"{name} imports {module}.{n}" for n in names
                    if n.startswith("_") and n != "__version__"]  # fmt: skip
    assert bad == []


def test_the_module_level_import_graph_has_no_cycles() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for module, names, top in _imports(tree):
            if not top:
                continue  # a deferred import breaks no start-up cycle
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules] or [module]
            graph[name] |= {t for t in targets if t in modules and t != name}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1 and not cycle:
                cycle.extend([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycle == [], " -> ".join(cycle)
