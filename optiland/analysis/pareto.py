r"""Exact Pareto fronts by AUGMECON2, with AUGMECON-R's flag array for three objectives.

The generator talks to a small protocol (:class:`FrontModel`: build once; change objective and bounds; solve; read),
so the same code serves any Pyomo model whose objectives are named expressions (:class:`PyomoFrontModel`) and the
land-use model of a PlanningProblem (:class:`LandUseFrontModel`).

Method. Every objective is turned into a maximised one, :math:`g_k = f_k` (max) or :math:`-f_k` (min).

1. Payoff table by lexicographic optimisation: for each k, maximise :math:`g_k`, bound it at its optimum (less the
   solver's gap), then maximise the others in turn, each bounded once optimised. The diagonal is the ideal point;
   the column minima are the nadir estimate. For two objectives that estimate is exact; for three it may be wrong
   (Isermann & Steuer 1988), so by default the lower end of each constrained range is the minimum of :math:`g_k`
   over the feasible set (``ranges="safe"``), which is never above the true nadir.
2. AUGMECON2 (Mavrotas & Florios 2013, Appl. Math. Comput. 219:9652-9669): for the grid points
   :math:`e_k = lb_k + i_k\,\mathrm{step}_k` of objectives 2..p solve

   .. math:: \max\ g_1 + \varepsilon \sum_{k\ge2} 10^{-(k-2)}\, s_k / r_k
             \quad \text{s.t.}\quad g_k - s_k = e_k,\ s_k \ge 0,

   with :math:`r_k` the range of objective k. The first infeasible point of the innermost loop ends it (every
   tighter point is infeasible too), and the bypass jumps over :math:`\lfloor s_2 / \mathrm{step}_2 \rfloor` grid
   points, which would return the same solution.
3. For three objectives, AUGMECON-R (Nikas, Fountoulakis, Forouli & Doukas 2020, Oper. Res. Int. J. 22:1291-1332):
   a flag array over the whole grid. A solution with slacks :math:`(s_2, s_3)` also solves every grid point in the
   box :math:`[i_2, i_2 + b_2] \times [i_3, i_3 + b_3]`, :math:`b_k = \lfloor s_k/\mathrm{step}_k \rfloor`; an
   infeasible point makes every point it dominates infeasible. Both are flagged and skipped, in outer loops too.
4. Duplicates are merged and only nondominated points kept.

Refinement (two objectives, representation mode): extra epsilon solves in the middle of the neighbouring pair of
points where the front is sparse and bends most.

Cheap alternatives, labelled as such in the result and the plot: ``method="weighted-sum"`` gives supported points
only (the dichotomic scheme of Aneja & Nair 1979, Manag. Sci. 25:73-78, finds every vertex of the front's convex
hull with two objectives; a weight lattice with three), and ``method="lexicographic"`` one lexicographic optimum per
order of the objectives (the extreme points).

Exact mode: with ``steps`` (the resolution of integer-valued objectives, e.g. 1 yuan) the grid has one point per
unit and the front is the complete nondominated set; ``max_points`` caps the number of solves and the result says
when it cut the front (``Front.capped``).

Where it lives: the engine (payoff table, AUGMECON2/R, the Front) in optiland.analysis.front_engine; its solves,
refinement, weighted sums and lexicographic extremes in optiland.analysis.front_methods; the protocol and the Pyomo
adapter in optiland.analysis.front_model; the land-use adapter, baseline, plans and run_front in
optiland.analysis.front_landuse; the files and the plot in optiland.views.front_output. This module re-exports the
public names and adds :func:`front` for PlanningProblems.
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
