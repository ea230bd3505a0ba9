"""optiland: exact land-use optimisation for ecological-industry planning.

The package follows the data, one layer per folder, each importing only the layers below it
(docs/architecture.md; tests/test_layers.py keeps it so):

    io, mip  ->  model  ->  pipeline  ->  analysis  ->  views  ->  check  ->  app  ->  cli

`io` reads the scenario, catalog and parcels; `mip` is the MIP engine (HiGHS, column generation); `model` derives the
allowed set and builds the constraint families; `pipeline` runs the solve and collects the plan; `analysis` holds the
studies (fronts, sweeps, transition years, Marxan); `views` the reports and zones; `check` verifies a plan.

The modules of the earlier flat layout (`optiland.run`, `optiland.pareto`, ...) still import, as the same module
objects as their new homes.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

MOVED = {
    "scenario": "io.scenario", "catalog": "io.catalog", "inputs": "io.inputs", "postgis": "io.postgis",
    "expressions": "io.expressions",
    "solver": "mip.solver", "colgen": "mip.colgen",
    "problem": "model.problem", "spatial": "model.spatial", "adjacency": "model.adjacency",
    "formulation": "model.formulation", "backend": "model.backend", "matrix": "model.matrix",
    "run": "pipeline.run", "decompose": "pipeline.decompose", "diagnose": "pipeline.diagnose",
    "results": "pipeline.results",
    "pareto": "analysis.pareto", "sweep": "analysis.sweep", "transition": "analysis.transition",
    "calibrate": "analysis.calibrate", "marxan": "analysis.marxan", "generate": "analysis.generate",
    "report": "views.report", "zoning": "views.zoning", "transition_output": "views.transition_output",
}
"""Module of the flat layout -> its home (under optiland.)."""


class _MovedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import optiland.run` gives the module optiland.pipeline.run itself (one module object, so patches apply)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        prefix, _, name = fullname.partition(".")
        if prefix != __name__ or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(f"{__name__}.{MOVED[spec.name.partition('.')[2]]}")
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on the real module; give it its own back.
        module.__spec__ = module.__spec__.loader_state


sys.meta_path.insert(0, _MovedModule())

from optiland.analysis.sweep import sweep_module as sweep  # noqa: E402  callable: optiland.sweep(scenario, design, ...)
from optiland.errors import InfeasibleError, InputError, OptilandError  # noqa: E402
from optiland.io.catalog import load_catalog  # noqa: E402
from optiland.io.scenario import Scenario, load_scenario  # noqa: E402
from optiland.pipeline.results import Plan, make_plan  # noqa: E402
from optiland.pipeline.run import prepare, solve  # noqa: E402

__all__ = ["InfeasibleError", "InputError", "OptilandError", "Plan", "Scenario", "load_catalog", "load_scenario",
           "make_plan", "prepare", "solve", "sweep"]


def __getattr__(name: str) -> Any:
    """`optiland.check`, `optiland.pareto`, ... as attributes, imported on first use."""
    if name in MOVED or name in {"check"}:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
