"""The import graph of the project's own modules has no cycles.

A small static checker (the ``ast`` of every ``.py`` file under ``factory/`` and ``trainers/``):
every ``import x`` and ``from x import y``, at module level or inside a function (a lazy import
still ties the two modules together), becomes an edge between the two project modules; a cycle is
a strongly connected component of more than one module. No module is executed.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("factory", "trainers")


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of ``packages`` under ``root``."""
    out = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """``{module: modules of the project it imports}``."""
    mods = modules(root, packages)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name)
                # a module may import its own package's __init__ names without a cycle edge
                if target and target != mod and not mod.startswith(target + "."):
                    graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.add(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(comp)
    return found


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_the_checker_finds_direct_lazy_and_relative_cycles(tmp_path):
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import x\n",
            "pkg/b.py": "def f():\n    from . import a\n",  # lazy and relative: still an edge
            # a module importing its own package (whose __init__ imports it) is no cycle: the
            # package is in sys.modules before its modules load
            "pkg/sub/__init__.py": "from .c import y\n",
            "pkg/sub/c.py": "import pkg.sub\nimport os\n",
            "pkg/d.py": "import pkg.e\n",
            "pkg/e.py": "from pkg import d\n",
        },
    )
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.sub"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == set()
    assert sorted(map(sorted, cycles(graph))) == [["pkg.a", "pkg.b"], ["pkg.d", "pkg.e"]]


def test_no_import_cycles_between_the_project_modules():
    graph = import_graph(ROOT, PACKAGES)
    assert len(graph) > 40 and graph["factory.card"] >= {"factory.layout", "factory.report"}
    found = [sorted(c) for c in cycles(graph)]
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_contract_and_the_errors_import_nothing_of_the_project():
    """``factory.layout`` and ``factory.errors`` sit at the bottom: everything may import them."""
    graph = import_graph(ROOT, PACKAGES)
    assert graph["factory.layout"] == set() and graph["factory.errors"] == set()
    assert graph["factory.chains.backends"] <= {"factory.errors", "factory.degrade.image"}  # no backend module


def test_the_library_never_imports_the_command_line():
    graph = import_graph(ROOT, PACKAGES)
    # `python -m PACKAGE` entry points (``__main__`` modules) are command lines themselves
    library = {m: deps for m, deps in graph.items() if not m.startswith("factory.cli") and not m.endswith(".__main__")}
    assert sorted(m for m, deps in library.items() if any(d.startswith("factory.cli") for d in deps)) == []


if __name__ == "__main__":  # pragma: no cover - print the cycles of the tree
    for c in cycles(import_graph(ROOT, PACKAGES)):
        print(" <-> ".join(sorted(c)))
    sys.exit(0)
