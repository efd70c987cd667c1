"""The test command also lints, checks formatting and type-checks (ruff, mypy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.quality


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint() -> None:
    out = tool("ruff", "check", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format() -> None:
    out = tool("ruff", "format", "--check", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict_on_the_package_and_benchmarks() -> None:
    out = tool("mypy")
    assert out.returncode == 0, out.stdout + out.stderr


def test_import_contracts_hold() -> None:
    """The layers and forbidden imports in pyproject.toml's [tool.importlinter]."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def _imports_graph() -> dict[str, set[str]]:
    import grimp

    graph = grimp.build_graph("publisher", exclude_type_checking_imports=False, cache_dir=None)
    modules = set(graph.modules)
    return {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}


def _cycles(adj: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(adj):
        if root in index:
            continue
        work = [(root, iter(sorted(adj[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adj[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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


def test_cycle_finder_finds_a_cycle() -> None:
    adj = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(adj) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_package_modules() -> None:
    """Not even a lazy or TYPE_CHECKING import closes a loop, parents and children included."""
    assert _cycles(_imports_graph()) == []


def _private_imports(root: Path) -> list[str]:
    """``from publisher.x import _name`` and ``module._name`` on an imported publisher module."""
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("publisher"):
                for alias in node.names:
                    # ``_`` is gettext's (publisher.i18n), not a private name
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and alias.name != "_":
                        found.append(f"{path}:{node.lineno}: {node.module}.{alias.name}")
                    elif _is_module(f"{node.module}.{alias.name}"):
                        modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("publisher.") and alias.asname:
                        modules.add(alias.asname)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{path}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent is a module, not a package
        return False


def test_no_private_name_is_imported_across_modules() -> None:
    assert _private_imports(ROOT / "publisher") == []


def test_private_import_finder_sees_both_forms(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "from publisher.store.db import _x\nfrom publisher.store import db\ndb._y\n"
    )
    found = _private_imports(tmp_path)
    assert [f.split(": ", 1)[1] for f in found] == ["publisher.store.db._x", "db._y"]


# The top level holds the pipeline's pure stages and the small modules every layer shares;
# everything stateful lives in a subpackage named for what it owns (README: Development).
TOP_LEVEL = {
    "__init__",
    "__main__",
    "app",  # the package, `python -m publisher`, the composition root
    "content",
    "render",
    "plan",
    "template_limits",
    "media",  # the pure stages (and render's bounds and pictures)
    "metrics",  # what a platform reports of a post's reach (adapters read it, the store keeps it)
    "report_entries",  # what the office enters for the report (report.toml, the web form)
    "errors",
    "states",
    "clock",
    "text",
    "vietnamese",
    "signing",
    "tokens",
    "i18n",  # shared, small
}
PACKAGES = {
    "alerts",
    "cli",
    "web",
    "config",
    "store",
    "editorial",
    "dispatch",
    "channels",
    "documents",
    "insights",
    "sandbox",
}


def test_the_package_layout() -> None:
    top = ROOT / "publisher"
    assert {p.stem for p in top.glob("*.py")} == TOP_LEVEL
    assert {p.name for p in top.iterdir() if (p / "__init__.py").is_file()} == PACKAGES


def _long_functions(root: Path, limit: int = 60) -> list[str]:
    """Functions over ``limit`` lines (``def`` to last line) with no ``# Long on purpose:``
    comment on the line above them (or above their decorators)."""
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            reason = top >= 2 and lines[top - 2].strip().startswith("# Long on purpose:")
            if length > limit and not reason:
                found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_over_sixty_lines_without_a_reason() -> None:
    assert _long_functions(ROOT / "publisher") == []


def test_long_function_finder(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    (tmp_path / "m.py").write_text(
        f"def long():\n{body}\n\n# Long on purpose: a table\ndef table():\n{body}\n"
    )
    assert [f.split(" ", 1)[1] for f in _long_functions(tmp_path)] == ["long (61 lines)"]
