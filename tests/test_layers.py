"""The import graph stays as ARCHITECTURE.md draws it: no cycles, and no module imports a higher layer.

Every import of a package module counts, including imports inside functions (deferred imports);
only imports under ``if TYPE_CHECKING:`` (annotations, never executed) are left out. The checks
are tested on small made-up graphs too, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mbct_bayes"

#: Layers from the bottom up (ARCHITECTURE.md). A module may import its own layer or lower ones.
#: An entry names a module or a package (``survey`` = survey and everything in it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version", "errors", "io", "_moved", "_validate", "_format"),
    ("families",),
    ("spec",),
    ("schema",),
    ("model.design", "model.panel", "model.build", "model.convergence", "model.simulate", "model.posterior", "model.predictor",
     "survey"),
    ("model.sampling", "model.sensitivity", "model.fit", "runtime"),
    ("planning",),
    ("forecast", "power"),
    ("plots",),
    ("selfcheck",),
    ("report", "planner"),
    ("cli",),
    ("",),  # the package itself: mbct_bayes/__init__.py, the public API
)

#: Imports that point upwards on purpose, each with its reason. Keep this short.
ALLOWED_UPWARD: Mapping[tuple[str, str], str] = {
    ("model.fit", "planning.predict"): "Fit.predict, the documented convenience (fit.predict(new)); "
    "planning imports Fit for annotations only, so there is no cycle",
}


def module_names() -> dict[str, Path]:
    """``{dotted name relative to mbct_bayes: path}``; the package itself is ``""``."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def imports_of(source: str, modules: Iterable[str]) -> set[str]:
    """Package modules that ``source`` imports (relative to ``mbct_bayes``), deferred ones included."""
    known = set(modules)
    tree = ast.parse(source)
    skip = _type_checking_nodes(tree)
    found: set[str] = set()

    def local(name: str) -> str | None:
        if name == "mbct_bayes":
            return ""
        if name.startswith("mbct_bayes."):
            return name.removeprefix("mbct_bayes.")
        return None

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            base = local(node.module)
            if base is None:
                continue
            subs = [f"{base}.{a.name}".lstrip(".") for a in node.names]
            subs_known = [s for s in subs if s in known]
            found.update(subs_known)
            if len(subs_known) < len(subs):  # names from the module itself
                found.add(base)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError("relative import found; the package uses absolute imports")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = local(alias.name)
                if name is not None:
                    found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    """Import edges between the package's modules, without a module's own parent packages."""
    names = module_names()
    edges = {}
    for name, path in names.items():
        targets = imports_of(path.read_text(encoding="utf-8"), names)
        # importing a submodule runs its parent packages first: that is structure, not an edge
        edges[name] = {t for t in targets if (t != name and not (name + ".").startswith(t + ".") and t != "")
                       or (t == "" and name == "")}
        edges[name].discard(name)
    return edges


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def layer_of(name: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int:
    """The layer of a module: the longest matching entry wins (``model.fit`` over ``model``)."""
    best, best_len = -1, -1
    for i, entries in enumerate(layers):
        for entry in entries:
            if (name == entry or (entry and name.startswith(entry + "."))) and len(entry) > best_len:
                best, best_len = i, len(entry)
    return best


def upward(edges: Mapping[str, Iterable[str]], layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[tuple[str, str]]:
    """Edges from a module to a module of a higher layer."""
    return sorted((a, b) for a, targets in edges.items() for b in targets if layer_of(b, layers) > layer_of(a, layers))


# -- the package ---------------------------------------------------------------------------------


def test_every_module_has_a_layer():
    missing = [name for name in module_names() if layer_of(name) < 0 and name not in ("model", "forecast", "survey")]
    assert not missing, f"modules with no layer in LAYERS (add them, and to ARCHITECTURE.md): {missing}"


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, f"import cycles (deferred imports count): {found}"


def test_no_module_imports_a_higher_layer():
    found = [edge for edge in upward(graph()) if edge not in ALLOWED_UPWARD]
    assert not found, "imports pointing to a higher layer (see ARCHITECTURE.md): " + ", ".join(
        f"{a} -> {b}" for a, b in found
    )


def test_every_allowed_upward_import_still_exists():
    # a stale exception would silently allow the next real violation
    edges = graph()
    stale = [edge for edge in ALLOWED_UPWARD if edge[1] not in edges.get(edge[0], set())]
    assert not stale, f"ALLOWED_UPWARD lists imports that no longer exist: {stale}"


# -- the checker itself --------------------------------------------------------------------------


def test_deferred_imports_count_and_type_checking_ones_do_not():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from mbct_bayes.spec import ModelSpec\n"
        "if TYPE_CHECKING:\n    from mbct_bayes.model.fit import Fit\n"
        "def f():\n    from mbct_bayes.report import write_report\n    import mbct_bayes.cli.main\n"
        "from mbct_bayes.planning import scenarios\n"
    )
    names = ["spec", "model.fit", "report", "cli.main", "planning", "planning.scenarios"]
    assert imports_of(source, names) == {"spec", "report", "cli.main", "planning.scenarios"}


def test_the_checkers_find_a_cycle_and_an_upward_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    layers = (("low",), ("high",))
    assert upward({"low": {"high"}, "high": {"low"}}, layers) == [("low", "high")]
    assert layer_of("model.fit", (("model",), ("model.fit",))) == 1


@pytest.mark.parametrize("name", ["spec", "model.fit", "planning.predict", "cli.main", ""])
def test_known_modules_sit_where_the_architecture_says(name):
    expected = {"spec": 2, "model.fit": 5, "planning.predict": 6, "cli.main": 11, "": 12}
    assert layer_of(name) == expected[name]
