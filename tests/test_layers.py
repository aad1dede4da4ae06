"""The import graph of ``src/infmasking``: floors, lowest first, and no arrow up, no circle.

Every ``import`` / ``from ... import`` of every module counts, also the ones inside functions
(a lazy import still ties the two files together). A module's floor is its first name below
``infmasking`` (``training.module`` -> ``training``); ``infmasking`` itself is the package
``__init__``.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "infmasking"

# Lowest first; a module may import its own floor and any floor below it.
FLOORS = [
    {"version", "dist", "seeds", "files"},  # leaves: import nothing of the package
    {"data"},
    {"losses"},
    {"models"},
    {"objectives"},  # the registry of methods
    # probes, solvers, selection, tables, plots: a library for training; probe_registry: the
    # table of probes (light: the CLI reads it), naming its built-in fits in evaluation/
    {"evaluation", "probe_registry"},
    {"training"},
    {"embed"},  # using a trained model: load_run, embed_split, export_model
    {"commands"},  # train, evaluate, embed, reproduce, interactions: above the library
    {"cli", "testing", "__init__"},
]


def modules() -> dict[str, tuple[Path, str]]:
    """Dotted module name -> (file, the package its relative imports start from)."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            package = ".".join(parts)
        else:
            package = ".".join(parts[:-1])
        out[".".join(parts)] = (path, package)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from a.b import c`` is an arrow to
    ``a.b.c`` when that is a module, else to ``a.b``)."""
    mods = modules()
    graph = {}
    for name, (path, package) in mods.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    targets.add(sub if sub in mods else module)
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def floor(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    for level, names in enumerate(FLOORS):
        if key in names:
            return level
    raise AssertionError(f"{module}: its floor {key!r} is not in FLOORS (place it there)")


def arrows_up(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in graph.items() for b in targets if floor(b) > floor(a)}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_graph_is_read():
    graph = import_graph()
    assert "infmasking.commands.train" in graph
    assert "infmasking.version" in graph["infmasking.commands.train"]
    assert "infmasking.commands.train" in graph["infmasking.commands.reproduce"]
    assert "infmasking.data.base" in graph["infmasking.training.module"]


def test_no_circle():
    assert circles(import_graph()) == []


def test_circle_finder_finds_one():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_arrow_up():
    up = sorted(arrows_up(import_graph()))
    assert up == [], "imports from a lower floor to a higher one:\n" + "\n".join(
        f"  {a} -> {b}" for a, b in up
    )


def test_arrow_up_is_found():
    graph = {
        "infmasking.data.base": {"infmasking.commands.train"},
        "infmasking.commands.train": set(),
    }
    assert arrows_up(graph) == {("infmasking.data.base", "infmasking.commands.train")}


def test_version_is_a_leaf():
    from infmasking import __version__
    from infmasking.version import __version__ as leaf

    assert __version__ == leaf
    assert import_graph()["infmasking.version"] == set()


# "infmasking.evaluation.probe:fit_published": a function named in a registry, imported when it
# is used (so the registry stays light); it ties the two files as an import would.
REFERENCE = re.compile(r"^(infmasking(?:\.\w+)+):(\w+)$")


def named_references() -> set[tuple[str, str, str]]:
    """(module holding the string, module named, function named) for every such string."""
    out = set()
    for name, (path, _) in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if m := REFERENCE.match(node.value):
                    out.add((name, m.group(1), m.group(2)))
    return out


def test_named_references_resolve_and_point_no_floor_up():
    refs = named_references()
    assert ("infmasking.probe_registry", "infmasking.evaluation.probe", "fit_published") in refs
    for holder, module, function in sorted(refs):
        assert callable(getattr(importlib.import_module(module), function)), (holder, module)
        assert floor(module) <= floor(holder), f"{holder} names {module}:{function}, a floor up"
