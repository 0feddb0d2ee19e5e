"""The layers of ``workers/`` hold: each module imports only from its own layer or the layers below,
no import cycle exists (function-level imports included), and the Celery app loads no stage.

Imports are read with ``ast`` (nothing is imported), so a wrong import fails here with its file and
line before it can fail anywhere else.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "workers"

# Bottom to top. Entry points (cli, and the API and web to come) share the top.
LAYERS = ("core", "text", "stages", "intake", "storage", "runtime", "cli")
RANK = {name: rank for rank, name in enumerate(LAYERS)}
ENTRY_POINTS = {"cli", "api", "web"}
HEAVY = ("trafilatura", "lxml", "numpy", "feedparser", "httpx")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "workers" else None


def rank_of(layer: str) -> int:
    return RANK["cli"] if layer in ENTRY_POINTS else RANK[layer]


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(imported workers module, line) for every import in the file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("workers")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workers"):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (the project imports absolutely)"
            found.append((node.module, node.lineno))
            # ``from workers.storage import ledger`` imports the module workers.storage.ledger
            found += [
                (f"{node.module}.{alias.name}", node.lineno)
                for alias in node.names
                if (PACKAGE.parent / f"{node.module}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()
            ]
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def test_every_module_belongs_to_a_layer():
    stray = [name for name in MODULES if name != "workers" and layer_of(name) not in RANK.keys() | ENTRY_POINTS]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    own = layer_of(module)
    if own is None:
        return
    upward = [
        f"{MODULES[module]}:{line}: {module} ({own}) imports {target} ({layer_of(target)})"
        for target, line in GRAPH[module]
        if layer_of(target) and rank_of(layer_of(target)) > rank_of(own)
    ]
    assert not upward, "\n".join(upward)


def test_entry_points_do_not_import_each_other():
    crossing = [
        f"{MODULES[module]}:{line}: {module} imports {target}"
        for module, targets in GRAPH.items()
        for target, line in targets
        if layer_of(module) in ENTRY_POINTS
        and layer_of(target) in ENTRY_POINTS
        and layer_of(target) != layer_of(module)
    ]
    assert not crossing, "\n".join(crossing)


def test_there_is_no_import_cycle():
    """Depth-first search over module → module edges (packages count as the modules they name)."""
    edges = {
        module: {target for target, _ in targets if target in MODULES and target != module}
        for module, targets in GRAPH.items()
    }
    for module in edges:  # a package's __init__ is imported with any of its modules: not an edge back
        edges[module] -= {parent for parent in edges if module.startswith(parent + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                lines = [
                    f"{MODULES[a]}:{next(line for t, line in GRAPH[a] if t == b)}: {a} imports {b}"
                    for a, b in zip(cycle, cycle[1:], strict=False)
                ]
                pytest.fail("import cycle:\n" + "\n".join(lines))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


@pytest.mark.parametrize(
    "modules",
    [
        ("workers.runtime.celery_app", "workers.runtime.dispatch"),  # Flower, health probes and the API import these
        ("workers.storage.ledger", "workers.storage.models"),
    ],
)
def test_the_runtime_app_and_the_storage_layer_load_no_stage(modules):
    """None of them may pay for trafilatura & co: they never run a stage."""
    probe = f"import sys, {', '.join(modules)}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
