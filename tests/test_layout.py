"""The engine's layout, checked from its source: the wing order, no cycles, few deferred imports.

The wings, lowest first (``docs/architecture.md``): the flat **kit** at the top of
``engine/`` (what plugins import), then ``host``, ``learn``, ``train``, ``ship`` and ``cli``.
A module may import its own wing and the wings below it, never one above. Imports inside
``if TYPE_CHECKING:`` are annotations only and are not counted. An import inside a function
(a deferred import) must say why in a comment on its line or the line above: the only
reasons are keeping ``import gameadapt``, ``gameadapt --help`` and the torch-free commands
from loading torch (or onnxruntime, or matplotlib).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"
WINGS = ("kit", "host", "learn", "train", "ship", "cli")
DEFERRED_REASONS = ("torch", "onnxruntime", "matplotlib", "pluggy")
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. "train.session"
    target: str  # imported engine module, e.g. "learn.policy" ("" is the package itself)
    line: int
    deferred: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def wing(module: str) -> str:
    head = module.split(".")[0]
    if module == "__main__":
        return "cli"  # ``python -m gameadapt`` runs the CLI
    return head if head in WINGS else "kit"


def engine_imports() -> list[Import]:
    """Every import of an engine module by an engine module (relative or ``gameadapt.``)."""
    found = []
    for path in sorted(ENGINE.rglob("*.py")):
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node, deferred in runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            for target in targets(node, package):
                found.append(Import(module, target, node.lineno, deferred))
    return found


def runtime_imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Import statements outside ``if TYPE_CHECKING:``, and whether they sit in a function."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef,
                                                           ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The engine modules an import statement loads."""
    if isinstance(node, ast.Import):
        return [alias.name.removeprefix("gameadapt").lstrip(".") for alias in node.names
                if alias.name == "gameadapt" or alias.name.startswith("gameadapt.")]
    if node.level == 0:
        if node.module is None or not (node.module == "gameadapt"
                                       or node.module.startswith("gameadapt.")):
            return []
        base = node.module.removeprefix("gameadapt").lstrip(".")
    else:
        parts = package.split(".") if package else []
        parts = parts[:len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    if node.module is None or (node.level and not node.module):
        # ``from . import name``: name may be a module of that package
        return [f"{base}.{alias.name}".lstrip(".") if is_module(f"{base}.{alias.name}") else base
                for alias in node.names]
    return [base]


def is_module(name: str) -> bool:
    path = ENGINE.joinpath(*name.lstrip(".").split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_no_module_imports_a_wing_above_its_own() -> None:
    upward = [f"{i.source} (line {i.line}) imports {i.target or 'gameadapt'}"
              for i in engine_imports()
              if WINGS.index(wing(i.target)) > WINGS.index(wing(i.source))]
    assert upward == []


def test_the_import_graph_has_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for item in engine_imports():
        if item.target != item.source:
            graph.setdefault(item.source, set()).add(item.target)
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            walk(start, [start])
    assert cycles == []


def test_deferred_imports_say_why() -> None:
    unexplained = []
    for path in sorted(ENGINE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node, deferred in runtime_imports(ast.parse("\n".join(lines))):
            if not deferred:
                continue
            context = import_block(lines, node.lineno - 1).lower()
            if "#" not in context or not any(reason in context for reason in DEFERRED_REASONS):
                unexplained.append(f"{path.relative_to(ENGINE)}:{node.lineno}")
    assert unexplained == []


def import_block(lines: list[str], index: int) -> str:
    """The line at ``index`` and the import, comment and blank lines right above it."""
    start = index
    while start > 0:
        above = lines[start - 1].strip()
        if not (above.startswith(("import ", "from ", "#", ")", "try:")) or above == ""
                or above.endswith(",") or above.endswith("(")):
            break
        start -= 1
    return " ".join(lines[start:index + 1])


def test_no_engine_function_is_longer_than_about_60_lines() -> None:
    long = []
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ENGINE)}:{node.name} ({length} lines)")
    assert long == []


def test_every_module_is_in_the_architecture_map() -> None:
    """``docs/architecture.md`` names every engine module (``train/session``, ``variants``)."""
    text = (ENGINE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = [str(path.relative_to(ENGINE).with_suffix("")) for path in sorted(ENGINE.rglob("*.py"))
             if path.name != "__init__.py" or path.parent in (ENGINE, ENGINE / "cli")]
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []


def test_the_checker_sees_imports() -> None:
    """The parser finds known edges, so an empty result above means something."""
    edges = {(i.source, i.target) for i in engine_imports()}
    assert ("train.session", "learn.policy") in edges
    assert ("cli", "cli.games") in edges
    assert ("host.registry", "host.hookspecs") in edges
    assert ("cli.ship", "ship.play") in edges  # deferred, still an edge
