"""The import graph of our packages and the layer rules it must keep.

    stats, audit  <-  platform  <-  workers_app.models  <-  engine  <-  fleet  <-  monitoring  <-  admin_ops  <-  adapters

A module may import from its own layer or a lower one, never a higher one; the audit app and the pure statistics
(stats) import none of ours;
no two modules import each other, directly or round about. Imports inside functions count like any other.
Run ``python -m tests.layering`` to print the app-to-app edges.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stats", "audit", "annotation_site", "workers_app", "admin_ops", "api", "workspace")

# Entry points and wiring: admin pages, commands, Celery tasks and hooks, URL and web modules, the launcher, the
# ControlAPI, and each app's AppConfig (which connects receivers of any layer once Django is ready).
ADAPTERS = re.compile(
    r"^(\w+\.admin(_\w+)?(\..*)?|\w+\.management\..*|\w+\.tasks|\w+\.apps"
    r"|annotation_site\.(urls|views|launcher|wsgi|asgi)|workers_app\.fleet\.api|api(\..*)?|workspace(\..*)?)$"
)
LAYERS = [
    ("stats", ("stats",)),
    ("audit", ("audit",)),
    ("platform", ("annotation_site",)),
    ("models", ("workers_app", "workers_app.models", "workers_app.redis_client",
                "workers_app.excel")),
    ("engine", ("workers_app.engine", "workers_app.review", "workers_app.importing", "workers_app.catalogue_defaults",
                "workers_app.beat_schedules", "workers_app.local_profile", "workers_app.admin_login",
                "workers_app.runs", "workers_app.catalogue", "workers_app.references",
                "workers_app.baselines")),
    ("fleet", ("workers_app.fleet", "workers_app.runs.services")),
    ("monitoring", ("workers_app.monitoring",)),
    ("admin_ops", ("admin_ops",)),
]
ADAPTER_LAYER = len(LAYERS)
# Packages that import nothing of ours, whatever their layer.
SELF_CONTAINED = {"audit": "audit app", "stats": "statistics package"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    local: bool  # the import statement is inside a function


def module_files(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            relative = path.relative_to(root)
            if "migrations" in relative.parts:
                continue
            name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imported_names(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        parts = module.split(".")
        base = parts[: len(parts) - node.level + (path.name == "__init__.py")]
        prefix = ".".join([*base, *([node.module] if node.module else [])])
    else:
        prefix = node.module or ""
    return [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(modules: dict[str, Path]) -> set[Edge]:
    edges = set()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        inside_functions = {id(node) for function in ast.walk(tree)
                            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                            for node in ast.walk(function)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            # "from pkg import name" names either a module or an attribute of pkg: keep the most precise owner.
            owners = {_owner(name, modules) for name in _imported_names(module, path, node)} - {None, module}
            precise = {o for o in owners if not any(other.startswith(o + ".") for other in owners)}
            edges.update(Edge(module, target, id(node) in inside_functions) for target in precise)
    return edges


def layer_of(module: str) -> int:
    if ADAPTERS.match(module):
        return ADAPTER_LAYER
    best, depth = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    if best is None:
        raise LookupError(f"{module} belongs to no layer: add it to LAYERS in tests/layering.py")
    return best


def layer_name(module: str) -> str:
    index = layer_of(module)
    return "adapters" if index == ADAPTER_LAYER else LAYERS[index][0]


def violations(edges: set[Edge]) -> list[str]:
    found = []
    for edge in sorted(edges, key=lambda e: (e.source, e.target)):
        own = edge.source.split(".")[0]
        if own in SELF_CONTAINED and edge.target.split(".")[0] != own:
            found.append(f"{edge.source} -> {edge.target}: the {SELF_CONTAINED[own]} imports none of ours")
        elif layer_of(edge.target) > layer_of(edge.source):
            found.append(f"{edge.source} ({layer_name(edge.source)}) -> {edge.target} ({layer_name(edge.target)}): "
                         "an upward import")
    return found


def cycles(edges: set[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    graph: dict[str, list[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge.target)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def app_edges(edges: set[Edge]) -> Counter:
    return Counter((layer_name(e.source), layer_name(e.target)) for e in edges
                   if layer_name(e.source) != layer_name(e.target))


if __name__ == "__main__":
    all_edges = import_edges(module_files())
    for (source, target), count in sorted(app_edges(all_edges).items()):
        print(f"{source:>10} -> {target:<10} {count}")
    print(f"upward edges: {len(violations(all_edges))}; cycles: {len(cycles(all_edges))}; "
          f"function-local imports of ours: {sum(e.local for e in all_edges)}")
    for problem in violations(all_edges):
        print("  ", problem)
    for cycle in cycles(all_edges):
        print("   cycle:", " -> ".join(cycle))
