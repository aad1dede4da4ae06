"""The import graph of ``src/infmasking``: floors, lowest first, and no arrow up, no circle.

Every ``import`` / ``from ... import`` of every module counts, also the ones inside functions
(a lazy import still ties the two files together). A module's floor is its first name below
``infmasking`` (``training.run`` -> ``training``); ``infmasking`` itself is the package
``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "infmasking"

# Lowest first; a module may import its own floor and any floor below it.
FLOORS = [
    {"version", "dist", "seeds", "files"},  # leaves: import nothing of the package
    {"data"},
    {"losses"},
    {"models"},
    {"objectives", "probe_registry"},  # the registries of methods and probes
    {"evaluation"},  # probes, solvers, selection, tables, plots: a library for training
    {"training"},
    {"embed"},
    {"cli", "testing", "__init__"},
]

# Arrows up that exist today: commands living inside a library floor (issue 36, "commands
# above the library"). They leave when reproduce and interactions move to a commands layer
# above training/ and evaluation/. This list may only shrink: an arrow that disappears must be
# removed from it (test_allowed_arrows_up_still_exist), a new one fails the test below.
ALLOWED_UP = {
    ("infmasking.evaluation.interactions", "infmasking.embed"),
    ("infmasking.evaluation.interactions", "infmasking.training.loading"),
    ("infmasking.evaluation.reproduce", "infmasking.training.config"),
    ("infmasking.evaluation.reproduce", "infmasking.training.folder"),
    ("infmasking.evaluation.reproduce", "infmasking.training.loading"),
    ("infmasking.evaluation.reproduce", "infmasking.training.module"),
    ("infmasking.evaluation.reproduce", "infmasking.training.probing"),
    ("infmasking.evaluation.reproduce", "infmasking.training.report"),
    ("infmasking.evaluation.reproduce", "infmasking.training.run"),
    ("infmasking.evaluation.reproduce", "infmasking.training.run_report"),
}


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
    assert "infmasking.training.run" in graph
    assert "infmasking.version" in graph["infmasking.training.run"]
    assert "infmasking.data.base" in graph["infmasking.training.module"]


def test_no_circle():
    assert circles(import_graph()) == []


def test_circle_finder_finds_one():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_arrow_up_beyond_the_listed_ones():
    new = sorted(arrows_up(import_graph()) - ALLOWED_UP)
    assert new == [], "imports from a lower floor to a higher one:\n" + "\n".join(
        f"  {a} -> {b}" for a, b in new
    )


def test_allowed_arrows_up_still_exist():
    gone = sorted(ALLOWED_UP - arrows_up(import_graph()))
    assert gone == [], "no longer imported, remove from ALLOWED_UP:\n" + "\n".join(
        f"  {a} -> {b}" for a, b in gone
    )


def test_version_is_a_leaf():
    from infmasking import __version__
    from infmasking.version import __version__ as leaf

    assert __version__ == leaf
    assert import_graph()["infmasking.version"] == set()
