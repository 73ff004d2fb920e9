"""fer_lib's modules import one another without cycles, counting every import.

The graph is read from the source with `ast`, so it holds what any run could import, not
what one run happened to: imports at module level and inside functions alike, a literal
`importlib.import_module("fer_lib...")`, and the names a package offers on first use
(its `EXPORTS` and `MOVED` tables, fer_lib.lazy). Importing `fer_lib.a.b` from outside
`fer_lib.a` runs `fer_lib/a/__init__.py` first, so that counts as an import of `fer_lib.a`
too; a module's own parent packages are already being imported and do not.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

import fer_lib

PACKAGE_DIR = Path(fer_lib.__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
LAZY_TABLES = ("EXPORTS", "MOVED")
# The module paths of an unreleased 0.1.0, before the stage packages: gone, with the import hook that served them
# (fer_lib/deprecated.py), and named here so that nothing of ours imports them again.
RETIRED_MODULES = {
    "fer_lib.arguments": "fer_lib.cli.arguments",
    "fer_lib.augmentation": "fer_lib.models.augmentation",
    "fer_lib.calibration": "fer_lib.evaluation.calibration",
    "fer_lib.config": "fer_lib.training.config",
    "fer_lib.detection": "fer_lib.inference.detection",
    "fer_lib.distributed_search": "fer_lib.training.distributed_search",
    "fer_lib.efficientnet_lite": "fer_lib.models.efficientnet_lite",
    "fer_lib.ensemble": "fer_lib.models.ensemble",
    "fer_lib.exploration": "fer_lib.data.exploration",
    "fer_lib.export": "fer_lib.inference.export",
    "fer_lib.layers": "fer_lib.models.layers",
    "fer_lib.live_window": "fer_lib.inference.live_window",
    "fer_lib.model_stats": "fer_lib.models.stats",
    "fer_lib.notebook": "fer_lib.reporting.notebook",
    "fer_lib.pipeline": "fer_lib.reporting.pipeline",
    "fer_lib.precision": "fer_lib.training.precision",
    "fer_lib.predict_cli": "fer_lib.cli.predict",
    "fer_lib.preprocessing": "fer_lib.data.preprocessing",
    "fer_lib.presets": "fer_lib.training.presets",
    "fer_lib.pretrained": "fer_lib.models.pretrained",
    "fer_lib.rebalance": "fer_lib.evaluation.rebalance",
    "fer_lib.reports": "fer_lib.reporting.figures",
    "fer_lib.synthetic": "fer_lib.data.synthetic",
    "fer_lib.torch_checkpoint": "fer_lib.models.torch_checkpoint",
    "fer_lib.tuning": "fer_lib.training.tuning",
    "fer_lib.video": "fer_lib.inference.video",
}


def module_files() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(name: str, tree: ast.AST, known: set[str], is_package: bool) -> set[str]:
    """The fer_lib modules that importing module `name` can import, directly."""
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                targets.add(child if child in known else base)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                targets.add(node.args[0].value)
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in LAZY_TABLES for t in node.targets):
            assert isinstance(node.value, ast.Dict), f"{name}: {LAZY_TABLES} must be dict literals, which this test reads"
            targets.update(v.value for v in node.value.values if isinstance(v, ast.Constant))
    edges = set()
    for target in targets:
        if target != "fer_lib" and not target.startswith("fer_lib."):
            continue
        assert target in known, f"{name} imports {target}, which is not a module of fer_lib"
        own = set(_ancestors(name)) | ({name} if is_package else set())
        edges.update(t for t in [*_ancestors(target), target] if t not in own and t != name)
    return edges


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imports_of(name, ast.parse(path.read_text()), known, path.name == "__init__.py")
            for name, path in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that ends where it starts) per strongly connected group of modules."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(set(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for group in groups:
        start = min(group)
        path, seen = [start], {start}
        while True:  # walk inside the group until a module repeats
            nxt = min(n for n in graph[path[-1]] if n in group)
            if nxt in seen:
                cycles.append(path[path.index(nxt):] + [nxt])
                break
            path.append(nxt)
            seen.add(nxt)
    return cycles


def test_the_cycle_finder_finds_cycles_and_nothing_else():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"a"}}) == [["a", "a"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_a_function_level_import_and_a_package_table_count():
    known = {"fer_lib", "fer_lib.x", "fer_lib.y", "fer_lib.y.z"}
    lazy = ast.parse("def f():\n    from fer_lib.y import z\n")
    assert imports_of("fer_lib.x", lazy, known, False) == {"fer_lib.y", "fer_lib.y.z"}
    table = ast.parse("EXPORTS = {'name': 'fer_lib.x'}\n")
    assert imports_of("fer_lib.y", table, known, True) == {"fer_lib.x"}
    # A module inside fer_lib.y does not import fer_lib.y again by importing its sibling.
    assert imports_of("fer_lib.y.w", ast.parse("from fer_lib.y import z\n"), known, False) == {"fer_lib.y.z"}


def test_fer_lib_has_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles in fer_lib:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_every_exported_name_exists():
    for name, path in module_files().items():
        if path.name != "__init__.py":
            continue
        package = importlib.import_module(name)
        for table in LAZY_TABLES:
            for attribute, module in getattr(package, table, {}).items():
                assert hasattr(importlib.import_module(module), attribute), f"{name}.{table}: {module} has no {attribute}"


def _sources_outside_fer_lib():
    yield ROOT / "README.md", (ROOT / "README.md").read_text()
    for folder in ("scripts", "tests", "notebooks", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".md", ".sh") and path.name != Path(__file__).name:
                yield path, path.read_text()
            elif path.suffix == ".ipynb":
                cells = json.loads(path.read_text())["cells"]
                yield path, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_nothing_of_ours_imports_a_retired_path():
    retired = {old.rpartition(".")[2] for old in RETIRED_MODULES}
    pattern = re.compile(rf"\b(?:import fer_lib\.|from fer_lib\.|-m fer_lib\.)({'|'.join(retired)})\b"
                         rf"|\bfrom fer_lib import [^\n]*\b({'|'.join(retired)})\b")
    moved_names = {}
    for name, path in module_files().items():
        if path.name == "__init__.py":
            package = importlib.import_module(name)
            moved_names.update({(name, n): m for n, m in getattr(package, "MOVED", {}).items()})
    sources = [(p, p.read_text()) for p in module_files().values()]
    for path, text in sources + list(_sources_outside_fer_lib()):
        found = pattern.search(text)
        assert not found, f"{path.relative_to(ROOT)}: {found.group(0)!r} is a retired path (RETIRED_MODULES names the new one)"
        for (package, name), module in moved_names.items():
            assert not re.search(rf"from {re.escape(package)} import [^\n]*\b{name}\b", text), \
                f"{path.relative_to(ROOT)} imports {name} from {package}; it is in {module} now"


@pytest.mark.parametrize("old", sorted(RETIRED_MODULES))
def test_an_old_module_path_is_gone_and_its_new_one_imports(old):
    importlib.import_module(RETIRED_MODULES[old])
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_a_name_that_left_its_package_still_works_with_a_deprecation_warning():
    from fer_lib.data.preprocessing import as_model_input

    with pytest.warns(DeprecationWarning, match="fer_lib.data.preprocessing"):
        from fer_lib.training import as_model_input as old
    assert old is as_model_input
