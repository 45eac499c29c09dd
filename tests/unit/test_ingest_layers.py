"""Ingest's modules and packages import each other in one direction only (read from the
source, imports under TYPE_CHECKING included): the channel rows and the pure checks below,
the processes above, so that a new channel or format never has to untangle a cycle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import socialcrm_ingest

PACKAGE = Path(socialcrm_ingest.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(name: str) -> str | None:
    """The ingest module ``name`` is, or is in (``from package import module`` included)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    found = {imported(name) for name in names if name.startswith("socialcrm_ingest.")}
    return {name for name in found if name is not None and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def layer(module: str) -> str:
    """``formats``, ``security``, ``webhooks``... or a module at the package's top."""
    return ".".join(module.split(".")[:2])


def cycle_of(graph: dict[str, set[str]]) -> list[str]:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return list(error.args[1])
    return []


def test_the_graph_reads_the_imports() -> None:
    assert "socialcrm_ingest.channels" in GRAPH["socialcrm_ingest.security.doors"]
    assert "socialcrm_ingest.formats.registry" in GRAPH["socialcrm_ingest.backfill.lines"]


def test_no_module_imports_one_that_imports_it() -> None:
    assert cycle_of(GRAPH) == []


def test_no_package_imports_one_that_imports_it() -> None:
    layers: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        layers.setdefault(layer(module), set()).update(
            layer(target) for target in targets if layer(target) != layer(module)
        )
    assert cycle_of(layers) == []


def test_the_channel_rows_are_below_security_and_webhooks() -> None:
    assert {layer(module) for module in GRAPH["socialcrm_ingest.channels"]} <= {
        "socialcrm_ingest.bodies"
    }
