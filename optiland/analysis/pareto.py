r"""Exact Pareto fronts: the public front door of the front modules.

The method (AUGMECON2 with AUGMECON-R's flag array, the payoff table, the bypass, refinement and the cheap
alternatives) is stated in :mod:`optiland.analysis.front_engine`; the FrontModel protocol and the Pyomo adapter in
:mod:`optiland.analysis.front_model`; the other methods in :mod:`optiland.analysis.front_methods`; the land-use
adapter in :mod:`optiland.analysis.front_landuse`; files and plot in :mod:`optiland.views.front_output`. This
module re-exports the public names and adds :func:`front` for PlanningProblems too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optiland.analysis import front_engine
from optiland.analysis.front_engine import (
    AUGMENT,
    METHODS,
    Front,
    Progress,
    SolveError,
    knee_and_ideal,
    payoff_table,
)
from optiland.analysis.front_landuse import (
    OBJECTIVES,
    LandUseFrontModel,
    baseline,
    outcome_from_front,
    plans_table,
    run_front,
)
from optiland.analysis.front_model import FrontModel, PyomoFrontModel
from optiland.mip.solver import SolverOptions
from optiland.model.problem import PlanningProblem

__all__ = ["AUGMENT", "METHODS", "OBJECTIVES", "Front", "FrontModel", "LandUseFrontModel", "Progress",
           "PyomoFrontModel", "SolveError", "baseline", "front", "knee_and_ideal", "outcome_from_front", "payoff_table",
           "plans_table", "run_front"]


def front(model: Any, objectives: Mapping[str, Any] | Sequence[str] | None = None,
          senses: Mapping[str, str] | None = None, method: str = "augmecon2", points: int | Mapping[str, int] = 25,
          options: SolverOptions | None = None, **kwargs: Any) -> Front:
    """The Pareto front of two or three objectives (optiland.analysis.front_engine.front, whose docstring says
    every option); `model` may also be a PlanningProblem, with `objectives` a list of names from OBJECTIVES."""
    if isinstance(model, PlanningProblem):
        model = LandUseFrontModel(model, list(objectives or ()), options or SolverOptions())
        objectives = None
    return front_engine.front(model, objectives, senses, method, points, options, **kwargs)
