"""Imports between our modules point one way: no cycles, and the simulation below its edges.

The graph is read from the source (every ``import`` and ``from … import``, function-local ones included,
since those are how cycles hide; imports under ``if TYPE_CHECKING:`` are left out, as they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import sim.config

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sim", "virtual_chargers", "reports")

# Cycles that are being taken apart elsewhere; delete the entry when the cycle is gone.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imported(tree: ast.Module) -> Iterator[tuple[str, str | None]]:
    """(module, name) of every import that runs: ``name`` is None for ``import module``."""
    type_checking = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.module, alias.name


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of ours it imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, name in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            full = f"{target}.{name}" if name else target
            found = owner(full) if full in modules else owner(target)
            if found is not None and found != module:
                graph[module].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan), each a set of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(frozenset(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle_and_only_a_cycle() -> None:
    """The check itself: a → b → c → a is one cycle, and d, which only imports a, is in none."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """The import graph of our packages, read once for the tests that only look at it."""
    return import_graph()


def test_no_module_of_ours_imports_itself_back(graph: dict[str, set[str]]) -> None:
    """No import cycle among sim, virtual_chargers and reports, function-local imports included."""
    assert len(graph) > 100  # the walk saw the packages
    assert "sim.sweep.runner" in graph["sim.sweep"]
    new = [sorted(group) for group in cycles(graph) if group not in KNOWN_CYCLES]
    assert new == []


def test_the_simulation_imports_neither_its_edges_nor_its_reports(graph: dict[str, set[str]]) -> None:
    """Only the command line (the composition root) reaches from sim into virtual_chargers or reports."""
    upward = sorted(
        (module, target)
        for module, targets in graph.items()
        if module.startswith("sim.") and module != "sim.cli"
        for target in targets
        if target.split(".")[0] in ("virtual_chargers", "reports")
    )
    assert upward == []
    reports_to_chargers = sorted(
        (m, t) for m, ts in graph.items() if m.startswith("reports") for t in ts if t.startswith("virtual_chargers")
    )
    assert reports_to_chargers == []


def test_a_trace_scenario_reads_its_trace_once_to_validate(monkeypatch) -> None:
    """Validating a scenario with trace replay reads the trace CSV once, not again for the cross-field checks."""
    reads: list[Path] = []
    real = sim.config.read_trace

    def counting(path: Path):  # the real reader, counted
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(sim.config, "read_trace", counting)
    scenario = sim.config.load_scenario(ROOT / "scenarios" / "trace_replay.yaml")
    traces = [d for d in scenario.demand if d.kind == "trace"]
    assert traces
    assert sorted(p.resolve() for p in reads) == sorted(d.path for d in traces)
