"""The package's layers (docs/architecture.md): each module imports only from layers below its own, or from its own
folder, and no import cycle exists, lazy imports (inside functions) included. Read from the source with ast, so the
test sees every import whether or not it runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "optiland"

RANK = {"errors": 0, "_paths": 0, "violations": 0, "progress": 0, "io": 1, "mip": 1, "testing": 2, "model": 2,
        "pipeline": 3, "analysis": 4, "views": 5, "check": 6, "app": 7, "cli": 8, "__main__": 9}
"""Layer of each top-level module or folder under optiland/; a module may import a strictly lower rank, or its own
folder. `io` and `mip` are both at the bottom and independent of each other."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """optiland modules `path` imports (at any depth of the file), as dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("optiland"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("optiland"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                          or (PACKAGE.parent / candidate.replace(".", "/")).is_dir() else node.module)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py") if "_data" not in p.parts}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_layer() -> None:
    unknown = sorted({_layer(m) for m in _graph() if _layer(m) and _layer(m) not in RANK})
    assert not unknown, f"modules outside any layer (add them to RANK): {unknown}"


def test_no_upward_import() -> None:
    upward = []
    for module, imports in _graph().items():
        if module == "optiland":  # the package's front door re-exports the public API of every layer
            continue
        own = _layer(module)
        for target in imports:
            layer = _layer(target)
            if not layer or layer == own:
                continue
            if RANK[layer] >= RANK[own]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports from a layer not below the importer's:\n" + "\n".join(sorted(upward))


def test_no_cycle() -> None:
    graph = _graph()
    # A package's __init__ importing its own submodules is not a cycle: the submodule importing the package's
    # siblings goes through the edge below, not back through __init__.
    edges = {m: {t for t in ts if t in graph and t != m and not (m == "optiland")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


CHECK_MAY_IMPORT = ("optiland.errors", "optiland.violations", "optiland._paths", "optiland.progress",
                    "optiland.io", "optiland.check",
                    "optiland.views.transition_output")
"""The checker (issue 22) derives the allowed set, coefficients, areas and references by its own code: besides its own
folder and the base it may import only the io layer's readers (scenario, catalog, inputs), never the model, pipeline
or mip layers that made the plan. The one exception: a transition folder's yearly rows are checked by the transition's
own year-by-year check (views.transition_output), called only for folders written by `optiland transition`."""


def test_check_imports_nothing_of_the_solver() -> None:
    graph = _graph()
    found = []
    for module, imports in graph.items():
        if not module.startswith("optiland.check"):
            continue
        for target in imports:
            if not any(target == allowed or target.startswith(allowed + ".") for allowed in CHECK_MAY_IMPORT):
                found.append(f"{module} -> {target}")
    assert [m for m in graph if m.startswith("optiland.check.")], "the checker's modules were not found"
    assert not found, "the checker imports beyond io and base:\n" + "\n".join(sorted(found))


def test_the_test_sees_a_planted_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph reader finds lazy imports and `from package import module` forms (what the checks rely on)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from optiland.pipeline import run\n    import optiland.views.report\n")
    assert _imports(source) == {"optiland.pipeline.run", "optiland.views.report"}


def test_flat_names_still_import() -> None:
    """The modules of the earlier flat layout import as the same objects as their new homes (README's snippets)."""
    import optiland.pareto as old_pareto
    import optiland.run as old_run
    from optiland.results import make_plan

    import optiland
    from optiland.analysis import pareto
    from optiland.pipeline import results, run

    assert old_run is run and old_pareto is pareto and make_plan is results.make_plan
    assert old_run.__spec__.name == "optiland.pipeline.run"
    for name, home in optiland.MOVED.items():
        assert getattr(optiland, name).__name__ == f"optiland.{home}"
    from optiland import check, pareto, solve, sweep

    assert callable(solve) and callable(sweep) and callable(check.check_outdir) and callable(pareto.front)


def layer_diagram() -> str:
    """Which layers each layer imports, from the code (docs/architecture.md shows it between its markers)."""
    uses: dict[str, set[str]] = {}
    for module, imports in _graph().items():
        own = _layer(module) or "optiland"
        if own in {"optiland", "errors", "_paths", "violations", "progress", "__main__"}:
            continue
        layers = {_layer(t) for t in imports} - {"", own, "errors", "_paths", "violations", "progress"}
        uses.setdefault(own, set()).update(layers)
    order = sorted(uses, key=lambda layer: (RANK[layer], layer))
    width = max(map(len, order))
    lines = []
    for layer in order:
        below = sorted(uses[layer], key=lambda other: (RANK[other], other))
        lines.append(f"{layer:<{width}}  <- {', '.join(below) or '(base only)'}")
    return "\n".join(lines)


def test_architecture_doc_shows_the_code() -> None:
    """docs/architecture.md's diagram is the one the code gives (regenerate: python tests/test_layers.py)."""
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"```text\n{layer_diagram()}\n```" in doc, "docs/architecture.md's diagram is stale:\n" + layer_diagram()


if __name__ == "__main__":
    print(layer_diagram())
