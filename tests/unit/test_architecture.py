"""The layout keeps its promises: the evaluation side reads what the bridge writes but never
imports the bridge's side, and no streamchaos module imports itself back, however
indirectly. Imports are read with ``ast``, function-level ones included, so a lazy
import counts as much as one at the top of a module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "streamchaos"
# what streamchaos/evaluation may import from streamchaos (a name and everything under it)
EVALUATION_MAY_IMPORT = (
    "streamchaos.evaluation",
    "streamchaos.ledger",  # the ledger's format: writer and reader
    "streamchaos.codec",
    "streamchaos.kafkatools",
    "streamchaos.lineage",
    "streamchaos.hold_record",  # the long-hold topic's records: what audit finds waiting
    "streamchaos.errors",
    "streamchaos.httpserver",
)  # not kafkaconf: it reads the bridge's config


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST, type_checking: bool) -> Iterator[ast.AST]:
    """Every node, or every node that runs (no ``if TYPE_CHECKING:`` body)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if not type_checking and isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _known(name: str) -> str | None:
    """``name``, or its longest prefix that is a streamchaos module or package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, type_checking: bool = True) -> list[tuple[int, str]]:
    """(line, module) of every streamchaos module ``name`` imports: ``from a.b import c``
    is ``a.b.c`` when that is a module, else ``a.b``; a package is its ``__init__``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _nodes(ast.parse(path.read_text(), str(path)), type_checking):
        if isinstance(node, ast.Import):
            found += [(node.lineno, _known(alias.name)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found += [(node.lineno, _known(f"{base}.{a.name}") or _known(base)) for a in node.names]
    return [(line, mod) for line, mod in found if mod is not None and mod != name]


def _allowed(module: str) -> bool:
    return any(module == ok or module.startswith(ok + ".") for ok in EVALUATION_MAY_IMPORT)


EVALUATION = [name for name in MODULES if name.startswith("streamchaos.evaluation")]


@pytest.mark.parametrize("name", EVALUATION)
def test_evaluation_imports_only_the_ledger_codecs_and_kafka_helpers(name):
    """Never the bridge, the engine, the faults, the config or the CLI: not even for types."""
    bad = [f"line {line}: {mod}" for line, mod in imports(name) if not _allowed(mod)]
    assert not bad, f"{name} imports outside {EVALUATION_MAY_IMPORT}: {bad}"


def test_the_walk_sees_lazy_imports_and_names_modules_not_packages():
    assert "streamchaos.evaluation.timeline" in modules_of("streamchaos.cli.score")  # lazy
    assert "streamchaos.bridge" in modules_of("streamchaos.cli.run")  # a package's __init__
    assert "streamchaos.cli.audit" in modules_of("streamchaos.cli")  # from a package import b
    assert "streamchaos.record" in modules_of("streamchaos.ledger")  # for types only
    assert "streamchaos.record" not in modules_of("streamchaos.ledger", type_checking=False)


def modules_of(name: str, type_checking: bool = True) -> set[str]:
    return {mod for _, mod in imports(name, type_checking)}


PACKAGES = [name for name, path in MODULES.items() if path.name == "__init__.py"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_exports_a_name_that_one_of_its_modules_has(package):
    """Importing ``package.x`` rebinds ``package.x`` to that module: a function ``x``
    re-exported by the package would then turn into a module, depending on import order."""
    tree = ast.parse(MODULES[package].read_text())
    bound = {
        (alias.asname or alias.name): f"{node.module}.{alias.name}"
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    bound |= {
        node.name: package for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }
    clashes = [
        name
        for name, where in bound.items()
        if f"{package}.{name}" in MODULES and where != f"{package}.{name}"
    ]
    assert not clashes, f"{package} binds names of its own modules: {clashes}"


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, …, a]``) per strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group: set[str] = set()
            while v not in group:
                group.add(stack.pop())
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & group):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def test_find_cycles_reports_the_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_streamchaos_modules():
    """Module-level, function-level and type-only (``if TYPE_CHECKING:``) imports alike:
    a circle only annotations close is still a circle a reader has to untangle."""
    graph = {name: modules_of(name) for name in MODULES}
    cycles = [" -> ".join(cycle) for cycle in find_cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
