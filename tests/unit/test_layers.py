"""The shape of the code: three layers with imports pointing down, and no import cycle between files.

    driver  the loop, the jobs it runs, the CLI, submission
    actors  the Ray pools and what their actors host
    core    everything else in rlsys/ (config, types, algorithms, data, tracking...) and verifiers/

Every import counts, including those inside functions: a cycle through a lazy import is still a cycle.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rlsys", "actors", "verifiers")
DRIVER = {
    "rlsys.loop",
    "rlsys.job",
    "rlsys.rm_job",
    "rlsys.sft_job",
    "rlsys.probe_job",
    "rlsys.cli",
    "rlsys.submit",
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules `name` imports: `from a.b import c` is the module a.b.c when that is a module."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import x` is level 1, relative to the module's package
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base]).strip(".")
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> str:
    if name in DRIVER:
        return "driver"
    return "actors" if name.split(".")[0] == "actors" else "core"


def test_imports_point_down_the_layers():
    rank = {"core": 0, "actors": 1, "driver": 2}
    upward = sorted(
        f"{name} ({_layer(name)}) imports {target} ({_layer(target)})"
        for name, targets in GRAPH.items()
        for target in targets
        if rank[_layer(target)] > rank[_layer(name)]
    )
    assert upward == []


def test_no_import_cycle_between_files():
    """Tarjan's strongly connected components: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_check_sees_the_imports_it_guards():
    """The graph is not empty by mistake: known edges are in it."""
    assert "actors.pools" in GRAPH["actors.cluster"]
    assert "rlsys.protocols" in GRAPH["rlsys.loop"]
    assert "rlsys.rlhf.watch" in GRAPH["rlsys.loop"]
    assert "rlsys.job" in GRAPH["rlsys.cli"]  # a lazy import inside a function
    assert _layer("rlsys.loop") == "driver" and _layer("rlsys.config") == "core"
