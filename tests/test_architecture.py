"""The package's import graph: no circles, and imports point down the layers only (ARCHITECTURE.md).

Reads every module's imports with `ast`, including those inside functions (a lazy import is still an
arrow), so the house stays as built.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "costkit"

# Lowest first. A module may import its own layer and the layers before it, never one after it.
LAYERS = ["core", "sources", "store", "model", "prices", "engine", "audit", "advise", "outputs", "testing", "demo",
          "cli"]
# Top-level modules: the package's public face and compatibility paths, above every layer.
API = "api"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    return API


def imports_of(path: Path, module: str) -> set[str]:
    """The costkit modules that `path` imports (a `from pkg import name` counts as pkg.name when that is
    a module, else as pkg)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "costkit")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "costkit":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in ALL_MODULES else target)
    out.discard(module)
    return out


ALL_PATHS = {module_name(p): p for p in PACKAGE.rglob("*.py")}
ALL_MODULES = set(ALL_PATHS)


def graph() -> dict[str, set[str]]:
    g = {}
    for mod, path in ALL_PATHS.items():
        # An import of a package runs its __init__: that is an edge to the package module.
        g[mod] = {t for t in imports_of(path, mod) if t in ALL_MODULES}
    return g


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_package_has_no_import_circle():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_imports_point_down_the_layers_only():
    order = {name: i for i, name in enumerate(LAYERS + [API])}
    upward = []
    for mod, targets in graph().items():
        for t in targets:
            if order[layer_of(t)] > order[layer_of(mod)]:
                upward.append(f"{mod} ({layer_of(mod)}) imports {t} ({layer_of(t)})")
    assert not upward, "imports that point up:\n" + "\n".join(sorted(upward))


def test_core_imports_nothing_else_of_costkit():
    for mod, targets in graph().items():
        if layer_of(mod) == "core":
            assert all(layer_of(t) == "core" for t in targets), (mod, targets)


def test_every_module_belongs_to_a_layer_or_is_a_named_public_path():
    top = sorted(m for m in ALL_MODULES if layer_of(m) == API)
    assert top == ["costkit", "costkit.billmap", "costkit.forecast", "costkit.history_cost"]


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
])
def test_the_circle_finder_finds_circles_and_only_circles(edges, expected):
    assert find_cycle(edges) == expected


def test_sizes_stay_within_one_idea_per_module():
    """No module over about 450 lines, and no function over about 100 (the issue's limits)."""
    big_modules, big_functions = [], []
    for mod, path in ALL_PATHS.items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 450:
            big_modules.append(f"{mod}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 100:
                    big_functions.append(f"{mod}.{node.name}: {n} lines")
    assert not big_modules and not big_functions, "\n".join(big_modules + big_functions)
