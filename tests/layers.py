"""The import graph of ``src/`` and the layering rule it must follow (see docs/ARCHITECTURE.md).

Layers, lowest first; a module may import modules of its own package and of lower layers only, and
two packages on the same layer (``src.models`` and ``src.reporting``) never import each other::

    0  src.common                      ground floor: atomic writes, progress bars, the checkpoint contract
    1  src.data.io                     readers and writers of the published formats
    2  src.data                        gene maps, preprocessing contract, sources, DataModule
    3  src.models | src.reporting      training plans and networks | run folders, tables, figures
    4  src.inference                   the inference engine: a checkpoint's model predicting new profiles
    5  src.utils                       what the entry points compose: config checks, loggers, DDP launch
    6  src.train src.eval src.predict src.report   the entry points
    7  src.api                         the Python API's training (composes a config, calls src.train)

``src/__init__.py`` (run on every import of ``src``) may import the ground floor only.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAYERS: list[tuple[str, ...]] = [
    ("src", "src.common"),
    ("src.data.io",),
    ("src.data",),
    ("src.models", "src.reporting"),
    ("src.inference",),
    ("src.utils",),
    ("src.train", "src.eval", "src.predict", "src.report"),
    ("src.api",),
]


def module_name(root: Path, path: Path) -> str:
    """``<root>/src/data/genes.py`` -> ``src.data.genes`` (a package's ``__init__.py`` is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Every module of ``<root>/src`` -> the ``src`` modules it imports (at any depth of its code)."""
    files = {module_name(root, p): p for p in sorted((root / "src").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from src.data.io import gctx`` imports the module src.data.io.gctx if there is one.
                candidates = [f"{node.module}.{alias.name}" for alias in node.names]
                candidates = [c if c in files else node.module for c in candidates]
            else:
                continue
            targets |= {c for c in candidates if c == "src" or c.startswith("src.")}
        graph[name] = {_known(t, files) for t in targets} - {name}
    return graph


def _known(target: str, files: dict) -> str:
    """The module a dotted import name refers to (the longest prefix that is a module of ours)."""
    while target not in files and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def package_of(module: str) -> tuple[int, str]:
    """``(layer, package)`` of a module: the most specific package of :data:`LAYERS` it belongs to."""
    best = None
    for layer, packages in enumerate(LAYERS):
        for package in packages:
            inside = module == package or (package != "src" and module.startswith(package + "."))
            if inside and (best is None or len(package) > len(best[1])):
                best = (layer, package)
    if best is None:
        raise ValueError(f"{module}: not in any layer of tests/layers.py; add its package to LAYERS")
    return best


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module of a higher layer, or of another package of the same layer."""
    found = []
    for module, targets in sorted(graph.items()):
        layer, package = package_of(module)
        for target in sorted(targets):
            t_layer, t_package = package_of(target)
            if t_package == package:
                continue
            if t_layer > layer or (t_layer == layer and module != "src"):
                found.append(f"{module} (layer {layer}) imports {target} (layer {t_layer})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module), Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
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
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
