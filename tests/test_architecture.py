"""The layers of docs/architecture.md hold in src/: no cycle, no upward or sideways import, package roots only.

The allowed imports are read from the layer table of docs/architecture.md itself, so the page and the code
cannot drift apart. Imports inside functions and under ``TYPE_CHECKING`` count: a lazy import is still a
dependency.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "defectops"
DOC = ROOT / "docs" / "architecture.md"
FOUNDATION = {"errors", "config", "console", "locks"}
MAX_LINES = 600


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. defectops.ci.predict
    package: str  # its top-level package, e.g. ci
    target: str  # the imported module, e.g. defectops.training.risk
    line: int


def _module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path, src: Path) -> list[Import]:
    module = _module_name(path, src)
    package = _package(module)
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                targets = [".".join([*base, node.module] if node.module else base)]
            else:
                targets = [node.module or ""]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        found += [
            Import(module, package, target, node.lineno)
            for target in targets
            if target == "defectops" or target.startswith("defectops.")
        ]
    return found


def all_imports(src: Path = SRC) -> list[Import]:
    return [imp for path in sorted(src.rglob("*.py")) for imp in _imports(path, src)]


def layer_table(doc: Path = DOC) -> dict[str, set[str]]:
    """``package -> packages it may import``, from the table under "Layers" in docs/architecture.md."""
    allowed: dict[str, set[str]] = {}
    row = re.compile(r"^\|\s*`(\w+)`\s*\|([^|]*)\|")
    for line in doc.read_text(encoding="utf-8").splitlines():
        match = row.match(line)
        if match:
            allowed[match.group(1)] = set(re.findall(r"`(\w+)`", match.group(2)))
    return allowed


def package_graph(imports: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        target = _package(imp.target)
        if imp.package and target and target != imp.package:
            graph.setdefault(imp.package, set()).add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_violations(imports: list[Import], allowed: dict[str, set[str]]) -> list[str]:
    bad: list[str] = []
    for imp in imports:
        target = _package(imp.target)
        if not imp.package or not target or target == imp.package or target in FOUNDATION:
            continue
        if imp.package in FOUNDATION:
            bad.append(f"{imp.module}:{imp.line} foundation module imports defectops.{target}")
        elif target not in allowed.get(imp.package, set()):
            bad.append(
                f"{imp.module}:{imp.line} imports {imp.target} ({imp.package} may not import {target})"
            )
    return bad


def deep_imports(imports: list[Import]) -> list[str]:
    """Imports of another package's inner module instead of its public root."""
    return [
        f"{imp.module}:{imp.line} imports {imp.target}; import from defectops.{_package(imp.target)}"
        for imp in imports
        if _package(imp.target) not in FOUNDATION | {imp.package, ""} and imp.target.count(".") > 1
    ]


# -- the checks themselves, tested on small made-up trees first ----------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "defectops"
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_the_checks_see_cycles_upward_and_deep_imports(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "from defectops.low.impl import f\n",
            "low/impl.py": "def f():\n    from defectops.high import g\n",  # lazy, still counted
            "high/__init__.py": "from defectops.low.impl import f as g\n",  # deep
        },
    )
    imports = all_imports(src)
    assert find_cycle(package_graph(imports)) == ["high", "low", "high"]
    allowed = {"low": set(), "high": {"low"}}
    assert layer_violations(imports, allowed) == [
        "defectops.low.impl:2 imports defectops.high (low may not import high)"
    ]
    assert deep_imports(imports) == ["defectops.high:1 imports defectops.low.impl; import from defectops.low"]


def test_the_layer_table_is_read_from_the_doc(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("| package | may import |\n|---|---|\n| `git` | — |\n| `mining` | `git`, `data` |\n")
    assert layer_table(doc) == {"git": set(), "mining": {"git", "data"}}


# -- the real tree ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


def test_every_package_has_a_row_in_the_layer_table() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()} - FOUNDATION
    entry_points = {p.stem for p in SRC.glob("__main__.py")}  # `python -m defectops`: a module with a row
    assert packages | entry_points == set(layer_table())


def test_no_cycle_between_packages(imports: list[Import]) -> None:
    assert find_cycle(package_graph(imports)) is None


def test_every_import_follows_the_documented_layers(imports: list[Import]) -> None:
    assert layer_violations(imports, layer_table()) == []


def test_other_packages_import_only_package_roots(imports: list[Import]) -> None:
    assert deep_imports(imports) == []


def test_the_layer_table_itself_has_no_cycle() -> None:
    assert find_cycle(layer_table()) is None


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(SRC)): len(path.read_text(encoding="utf-8").splitlines())
        for path in SRC.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


#: Modules that may touch ``os.environ`` besides the settings tree, and why (docs/architecture.md, "Settings").
ENVIRONMENT_WRITERS = {
    "defectops.config.services": "child_environment hands the user's environment on to git and MLflow",
    "defectops.cli._support": "the CLI configures MLflow's own variables before MLflow is imported",
    "defectops.serving.server": "exports this invocation's settings to the worker processes uvicorn starts",
    "defectops.registry.tracking": "puts back MLflow's own URI variables that mlflow.set_*_uri overwrites",
}


def environment_uses(src: Path = SRC) -> list[str]:
    """Every ``os.environ`` / ``os.getenv`` use outside :data:`ENVIRONMENT_WRITERS`, as ``module:line``."""
    found: list[str] = []
    for path in sorted(src.rglob("*.py")):
        module = _module_name(path, src)
        if module in ENVIRONMENT_WRITERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"environ", "getenv", "environb"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                found.append(f"{module}:{node.lineno} uses os.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                found += [
                    f"{module}:{node.lineno} imports os.{alias.name}"
                    for alias in node.names
                    if alias.name in {"environ", "getenv", "environb"}
                ]
    return found


def test_the_environment_check_sees_reads(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "a/__init__.py": "import os\nx = os.environ.get('X')\n",
            "b/__init__.py": "from os import getenv\n",
            "c/__init__.py": "import os\nos.path.join('a', 'b')\n",
        },
    )
    assert environment_uses(src) == ["defectops.a:2 uses os.environ", "defectops.b:1 imports os.getenv"]


def test_only_the_settings_tree_reads_the_environment() -> None:
    assert environment_uses() == []
