"""The service's modules form layers: no import cycle among `collector/`'s modules (imports
inside functions included, as they are dependencies too), and `parsers/` needs nothing of
`collector/`. A cycle makes the order of module initialisation matter and hides which module
owns what; this test names the first cycle it finds."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(package: str) -> dict[str, set[str]]:
    """Module -> the modules of `collector` and `parsers` it imports (packages' own names
    without their `__init__`)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = found
    modules = set(graph)
    return {name: {m for m in found if m in modules and m != name and m != package} for name, found in graph.items()}


def first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of `graph` as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                return path[path.index(other):] + [other]
            if other not in state and (cycle := visit(other)) is not None:
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)) is not None:
            return cycle
    return None


def test_the_service_modules_import_each_other_without_a_cycle() -> None:
    graph = imports("collector")
    assert len(graph) > 20
    cycle = first_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_parsers_import_nothing_of_the_service() -> None:
    graph = imports("parsers")
    assert first_cycle(graph) is None
    for path in (ROOT / "parsers").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any(name.split(".")[0] == "collector" for name in names), path


def test_the_cycle_finder_finds_one() -> None:
    assert first_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert first_cycle({"a": {"b"}, "b": set()}) is None


def test_each_condition_is_written_once_with_limits_the_configuration_has() -> None:
    """The registry (`collector.conditions`) is the one place a condition's name is written;
    the correlator registers a check for each entry, the report a diagnosis."""
    from collector.conditions import CONDITIONS, REGISTRY
    from collector.config import Limits

    assert len(set(CONDITIONS)) == len(CONDITIONS) == len(REGISTRY) == 9
    known = {field.name for field in dataclasses.fields(Limits)}
    for condition in REGISTRY:
        assert set(condition.limits) <= known, condition
    for path in (ROOT / "collector").rglob("*.py"):
        if path.name != "conditions.py":
            text = path.read_text()
            written = [name for name in CONDITIONS if f'"{name}"' in text or f"'{name}'" in text]
            assert not written, f"{path.name} writes {written}: use collector.conditions"
