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
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optiland.errors import InfeasibleError, OptilandError
from optiland.mip.solver import INF, MatrixLP, SolveResult, SolverOptions, Status, solve_lp
from optiland.model.backend import PyomoBackend, Solution, compile_model, load_values
from optiland.model.formulation import objective_expression
from optiland.model.problem import PlanningProblem

OBJECTIVES = ("ecosystem_services", "carbon", "soil", "water", "habitat", "income", "cost")
"""Objective names of the land-use model (cost is minimised, the others maximised)."""
AUGMENT = 1e-3
"""epsilon of the slack-augmented objective (Mavrotas 2009 suggests 1e-3 to 1e-6)."""

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is "payoff" or "grid"; grid points done (solved or skipped) of total."""


# ------------------------------------------------------------------------------------------------------------
# The protocol and its Pyomo adapters


class FrontModel(Protocol):
    """What the generator needs: objectives g_k (maximised form), their epsilon rows and bounds, solve, read."""

    names: list[str]
    senses: dict[str, str]

    def set_objective(self, weights: Mapping[str, float], slack_weights: Mapping[str, float] | None = None) -> None:
        """Maximise sum_k weights[k] g_k + sum_k slack_weights[k] s_k (g_k = f_k, or -f_k for a minimised one)."""

    def set_epsilon(self, name: str, value: float | None) -> None:
        """Impose g_name - s_name = value with s_name >= 0 (None: lift it)."""

    def set_bound(self, name: str, lower: float | None) -> None:
        """Impose g_name >= lower (None: lift it)."""

    def solve(self, options: SolverOptions) -> SolveResult:
        """Solve the current model."""

    def values(self) -> dict[str, float]:
        """Each objective f_k (its own sense) of the last plan found."""

    def decision(self) -> Any:
        """The last plan found, in the form to keep with the front point."""


class PyomoFrontModel:
    """Adapter for any Pyomo ConcreteModel with objectives given as named expressions.

    A block ``_pareto`` is added once: a free variable f_k defined by ``f_k == expression_k``, a slack s_k >= 0 and
    an epsilon row ``sigma_k f_k - s_k == e`` per objective (sigma = -1 for a minimised one). The model is compiled
    once with Pyomo's standard-form compiler (as PyomoBackend does, optiland.model.backend.compile_model); afterwards
    only
    the objective vector, the right-hand sides of the epsilon rows (free when lifted) and the bounds of f change,
    so no point rebuilds or recompiles the model. :meth:`remove` deletes the block again.
    """

    def __init__(self, model: pyo.ConcreteModel, objectives: Mapping[str, Any], senses: Mapping[str, str]) -> None:
        if not 2 <= len(objectives) <= 3:
            raise ValueError("give two or three objectives")
        unknown = set(senses) ^ set(objectives)
        if unknown:
            raise ValueError(f"senses and objectives name different things: {sorted(unknown)}")
        for name, sense in senses.items():
            if sense not in ("max", "min"):
                raise ValueError(f"sense of {name!r} must be 'max' or 'min', not {sense!r}")
        self.model = model
        self.names = list(objectives)
        self.senses = dict(senses)
        self.sign = {k: 1.0 if senses[k] == "max" else -1.0 for k in self.names}
        start = time.perf_counter()
        if hasattr(model, "_pareto"):
            model.del_component("_pareto")
        block = pyo.Block()
        model.add_component("_pareto", block)
        block.K = pyo.Set(initialize=self.names, ordered=True)
        block.f = pyo.Var(block.K, domain=pyo.Reals)
        block.s = pyo.Var(block.K, domain=pyo.NonNegativeReals)
        block.define = pyo.Constraint(block.K, rule=lambda b, k: b.f[k] == objectives[k])
        block.eps = pyo.Constraint(block.K, rule=lambda b, k: self.sign[k] * b.f[k] - b.s[k] == 0)
        block.objective = pyo.Objective(expr=pyo.quicksum(block.f[k] for k in block.K), sense=pyo.maximize)
        others = [o for o in model.component_data_objects(pyo.Objective, active=True) if o is not block.objective]
        for o in others:
            o.deactivate()
        try:
            self.lp, info = compile_model(model)
        finally:
            for o in others:
                o.activate()
        self.columns = info.columns
        self.compile_seconds = time.perf_counter() - start
        column = {id(v): j for j, v in enumerate(info.columns)}
        row = {id(r.constraint): i for i, r in enumerate(info.rows)}
        self._locate({k: column[id(block.f[k])] for k in self.names}, {k: column[id(block.s[k])] for k in self.names},
                     {k: row[id(block.eps[k])] for k in self.names}, {k: row[id(block.define[k])] for k in self.names})

    def _locate(self, f: dict[str, int], s: dict[str, int], eps: dict[str, int], define: dict[str, int]) -> None:
        """Record where the block's columns (f_k, s_k) and rows (eps_k, define_k) are in self.lp; start with
        every epsilon row lifted, no objective and no plan."""
        self._f, self._s, self._eps, self._define = f, s, eps, define
        A = self.lp.A.tocsr()
        # the epsilon row as compiled is lambda (sigma f - s): lambda from the slack's coefficient
        self._eps_scale = {k: -float(A[self._eps[k], self._s[k]]) for k in self.names}
        self._define_rows = A[[self._define[k] for k in self.names]]
        self.row_lower = self.lp.row_lower.copy()
        self.row_upper = self.lp.row_upper.copy()
        for k in self.names:
            self.row_lower[self._eps[k]], self.row_upper[self._eps[k]] = -INF, INF
        self.col_lower = self.lp.col_lower.copy()
        self.col_upper = self.lp.col_upper.copy()
        self.c = np.zeros(len(self.columns))
        self.x: np.ndarray | None = None
        self.last_plan: np.ndarray | None = None
        self.solves = 0

    def set_objective(self, weights: Mapping[str, float], slack_weights: Mapping[str, float] | None = None) -> None:
        """Maximise sum_k weights[k] g_k + sum_k slack_weights[k] s_k."""
        self.c = np.zeros(len(self.columns))
        for k, w in weights.items():
            self.c[self._f[k]] += self.sign[k] * float(w)
        for k, w in (slack_weights or {}).items():
            self.c[self._s[k]] += float(w)

    def set_epsilon(self, name: str, value: float | None) -> None:
        """g_name - s_name = value (None: the row is lifted)."""
        i = self._eps[name]
        if value is None:
            self.row_lower[i], self.row_upper[i] = -INF, INF
        else:
            self.row_lower[i] = self.row_upper[i] = self._eps_scale[name] * float(value)

    def set_bound(self, name: str, lower: float | None) -> None:
        """g_name >= lower, as a bound on f_name (None: lifted)."""
        j = self._f[name]
        self.col_lower[j], self.col_upper[j] = self.lp.col_lower[j], self.lp.col_upper[j]
        if lower is not None:
            if self.sign[name] > 0:
                self.col_lower[j] = float(lower)
            else:
                self.col_upper[j] = -float(lower)

    def matrix(self) -> MatrixLP:
        """The current model: the compiled matrix with this objective, these right-hand sides and bounds."""
        return MatrixLP(**{**self.lp.__dict__, "c": self.c, "sense": "max", "offset": 0.0,
                           "row_lower": self.row_lower.copy(), "row_upper": self.row_upper.copy(),
                           "col_lower": self.col_lower.copy(), "col_upper": self.col_upper.copy()})

    def solve(self, options: SolverOptions) -> SolveResult:
        """Solve with optiland.mip.solver.solve_lp, starting from the last plan found where it still holds (the
        previous stage of a lexicographic row always does: its bound keeps it feasible)."""
        self.solves += 1
        result = solve_lp(self.matrix(), options, start=self._start())
        self.x = None
        if result.x is not None:
            x = np.asarray(result.x, dtype=float).copy()
            x[self.lp.integer] = np.rint(x[self.lp.integer])
            self.x = self.last_plan = x
            if self.model is not None:  # a Pyomo model (not the matrix backend's copy): load the values into it
                load_values(self.columns, x)
        return result

    def _start(self) -> np.ndarray | None:
        """The last plan found, its epsilon slacks set for the current right-hand sides (solve_lp checks it)."""
        if self.last_plan is None:
            return None
        x = self.last_plan.copy()
        for k in self.names:
            i = self._eps[k]
            if np.isfinite(self.row_lower[i]):  # eps row: lambda (sigma f - s) = rhs
                x[self._s[k]] = self.sign[k] * x[self._f[k]] - self.row_lower[i] / self._eps_scale[k]
        return x

    def values(self) -> dict[str, float]:
        """f_k of the last plan, computed from its (integer-rounded) columns through the defining rows."""
        if self.x is None:
            raise RuntimeError("no plan: solve first")
        product = self._define_rows @ self.x
        out = {}
        for i, k in enumerate(self.names):
            row, j = self._define[k], self._f[k]
            coef = float(self._define_rows[i, j])
            rest = product[i] - coef * self.x[j]
            out[k] = float((self.lp.row_upper[row] - rest) / coef)
        return out

    def decision(self) -> Any:
        """The values of the model's own columns (every variable but the block's)."""
        if self.x is None:
            return None
        own = [j for j, v in enumerate(self.columns) if v.parent_block() is not self.model._pareto]
        return {self.columns[j].name: float(self.x[j]) for j in own}

    def remove(self) -> None:
        """Delete the block this adapter added to the model."""
        if hasattr(self.model, "_pareto"):
            self.model.del_component("_pareto")


class LandUseFrontModel(PyomoFrontModel):
    """Adapter over the land-use model of a PlanningProblem, on either backend (optiland.model.backend.make_backend).

    Objective names: ecosystem_services (the index sum_s w_s G_s / G*_s, whose scales G*_s are solved first with
    optiland.pipeline.run.service_scales, under the same constraints), carbon, soil, water, habitat, income, cost
    (minimised). The scenario's bounds hold (a bound on the index is added once its scales are known).

    On PyomoBackend the ``_pareto`` block is added to the Pyomo model and compiled (PyomoFrontModel). On
    MatrixBackend the same block (same columns, rows and names) is appended to its matrix
    (optiland.model.matrix.MatrixBackend.front_lp), and the inherited matrix-level methods (set_objective, set_epsilon,
    set_bound, matrix, values) run unchanged on it.
    """

    def __init__(self, problem: PlanningProblem, objectives: Sequence[str], options: SolverOptions,
                 backend: Any = None) -> None:
        from optiland.model.backend import make_backend
        from optiland.pipeline.run import _Clock, service_scales

        unknown = [name for name in objectives if name not in OBJECTIVES]
        if unknown:
            raise OptilandError(f"unknown objective(s) {', '.join(unknown)}; known: {', '.join(OBJECTIVES)}")
        if len(set(objectives)) != len(objectives) or not 2 <= len(objectives) <= 3:
            raise OptilandError("give two or three different objectives")
        self.problem = problem
        self.backend = make_backend(backend or "auto", problem) if backend is None or isinstance(backend, str) \
            else backend
        if not self.backend.built:
            self.backend.build(problem)
        self.es_scale: dict[str, float] = {}
        self.notes: list[str] = []
        self.scale_seconds = 0.0
        bounds = problem.params.get("bounds") or {}
        if "ecosystem_services" in objectives or "ecosystem_services" in bounds:
            start = time.perf_counter()
            self.es_scale, self.notes = service_scales(self.backend, problem, _Clock(options))
            self.scale_seconds = time.perf_counter() - start
            if not self.es_scale:
                raise InfeasibleError("no ecosystem service can gain under these constraints; choose another "
                                      "objective")
            self.backend.es_scale = self.es_scale
            if "ecosystem_services" in bounds:
                self.backend.set_bound("ecosystem_services", *bounds["ecosystem_services"])
        weights = problem.params["weights"]
        senses = {name: "min" if name == "cost" else "max" for name in objectives}
        if isinstance(self.backend, PyomoBackend):
            m = self.backend.model
            expressions = {name: objective_expression(m, name, weights, self.es_scale) for name in objectives}
            super().__init__(m, expressions, senses)
        else:
            self._matrix_init(senses, weights)

    def _matrix_init(self, senses: dict[str, str], weights: dict[str, float]) -> None:
        """The state PyomoFrontModel.__init__ sets, from the matrix backend's copy of the ``_pareto`` block."""
        start = time.perf_counter()
        self.model = None
        self.names = list(senses)
        self.senses = dict(senses)
        self.sign = {k: 1.0 if senses[k] == "max" else -1.0 for k in self.names}
        self.lp, at = self.backend.front_lp(senses, weights, self.es_scale)
        self.columns = list(self.lp.col_names)
        self._locate(at["f"], at["s"], at["eps"], at["define"])
        self.compile_seconds = time.perf_counter() - start

    def decision(self) -> Solution | None:
        """The plan (chosen allowed rows, herd and posts per village, price-step areas)."""
        if self.x is None:
            return None
        if isinstance(self.backend, PyomoBackend):
            return self.backend.solution(None)  # type: ignore[arg-type]
        return self.backend.solution_of(self.x)

    def remove(self) -> None:
        """Delete the block this adapter added (the Pyomo model's; the matrix backend's copy is not kept)."""
        if isinstance(self.backend, PyomoBackend):
            super().remove()


# ------------------------------------------------------------------------------------------------------------
# The front


@dataclass
class Front:
    """A Pareto front: one row per nondominated point, each point's plan, the payoff table and two picks.

    `table`: point (id), each objective (its own units and sense), eps_<name> (the grid point solved), status, gap,
    solve_seconds, found_by ("grid", "refine", "weights w1/w2", "lexicographic a > b"); with two objectives also
    `marginal_rate`, the change of the second objective per unit of the
    first between a point and its neighbour with the next smaller first objective. `payoff`: row k is the
    lexicographic optimum of objective k. `knee`: the point farthest from the line (plane) through the extreme
    points, after normalising each objective to [0, 1] over the front; `ideal`: the point nearest to the ideal
    point in the same normalisation.
    """

    table: pd.DataFrame
    solutions: dict[int, Any]
    payoff: pd.DataFrame
    names: list[str]
    senses: dict[str, str]
    method: str
    knee: int | None = None
    ideal: int | None = None
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    grid_points: int = 0
    solves: int = 0
    payoff_solves: int = 0
    skipped: int = 0
    infeasible_solves: int = 0
    capped: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def point(self, pick: str | int) -> pd.Series:
        """A row of the table by id, or 'knee' / 'ideal'."""
        if pick in ("knee", "ideal"):
            chosen = self.knee if pick == "knee" else self.ideal
            if chosen is None:
                raise KeyError(f"the front has no {pick} point")
            pick = chosen
        rows = self.table[self.table["point"] == int(pick)]
        if rows.empty:
            raise KeyError(f"no point {pick} on the front (points: {', '.join(map(str, self.table['point']))})")
        return rows.iloc[0]

    def summary(self) -> dict[str, Any]:
        """Plain data for run.json."""
        return {"objectives": self.names, "senses": self.senses, "method": self.method, "knee": self.knee,
                "ideal": self.ideal, "ranges": {k: list(v) for k, v in self.ranges.items()}, "steps": self.steps,
                "grid_points": self.grid_points, "solves": self.solves, "payoff_solves": self.payoff_solves,
                "grid_points_skipped": self.skipped,
                "infeasible_solves": self.infeasible_solves, "capped": self.capped, "seconds": round(self.seconds, 3),
                "payoff": {str(k): {c: float(v) for c, v in row.items()} for k, row in self.payoff.iterrows()},
                "notes": self.notes}


def _tolerance(value: float) -> float:
    """How far below a value found its lexicographic bound goes: the solver's feasibility tolerance."""
    return 1e-7 * max(1.0, abs(value))


def _solve(model: FrontModel, options: SolverOptions,
           strict: bool = True) -> tuple[SolveResult, dict[str, float] | None]:
    """Solve; the plan's objective values, or None when there is no plan (an error if `strict` and not infeasible)."""
    result = model.solve(options)
    if result.status == Status.INFEASIBLE:
        return result, None
    if not result.status.has_plan:
        if strict:
            raise OptilandError(f"the solver found no plan: {result.message}")
        return result, None
    if result.status == Status.TIME_LIMIT and getattr(model, "x", True) is None:  # the limit came before any plan
        return result, None
    return result, model.values()


def payoff_table(model: FrontModel, options: SolverOptions) -> tuple[pd.DataFrame, int]:
    """Lexicographic payoff table: row k optimises objective k, then (bounded there) the others in turn."""
    names = model.names
    sign = {k: 1.0 if model.senses[k] == "max" else -1.0 for k in names}
    rows = {}
    solves = 0
    for i, first in enumerate(names):
        order = names[i:] + names[:i]
        for k in names:
            model.set_epsilon(k, None)
            model.set_bound(k, None)
        values: dict[str, float] | None = None
        for k in order:
            model.set_objective({k: 1.0})
            previous = values
            result, values = _solve(model, options)
            solves += 1
            if values is None and previous is not None and result.status == Status.TIME_LIMIT:
                # the previous stage's plan meets every bound so far: the row keeps it, not refined in k
                values = previous
                if isinstance(getattr(model, "notes", None), list):
                    model.notes.append(f"payoff row {first}: the time limit ended the search for a better {k} "
                                       f"before any plan, so the row keeps the plan optimising {order[0]} "
                                       "(its value may lie below the true lexicographic optimum)")
            if values is None:
                raise InfeasibleError(f"no feasible plan while optimising {k} ({result.message})")
            g = sign[k] * values[k]
            model.set_bound(k, g - _tolerance(g))
        rows[first] = values
    for k in names:
        model.set_bound(k, None)
    table = pd.DataFrame.from_dict(rows, orient="index")[names]
    table.index.name = "optimised"
    return table, solves


def _nondominated(g: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Positions of the rows of g (maximised) that no other row dominates, one per group of equal rows."""
    keep: list[int] = []
    for i in range(len(g)):
        dup = any(np.all(np.abs(g[i] - g[j]) <= tol) for j in keep)
        if dup:
            continue
        dominated = False
        for j in range(len(g)):
            if j != i and np.all(g[j] >= g[i] - tol) and np.any(g[j] > g[i] + tol):
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return np.array(keep, dtype=int)


def _normalised(values: np.ndarray) -> np.ndarray:
    """Each column scaled to [0, 1] over the rows, 1 the best (values in maximised form)."""
    low, high = values.min(axis=0), values.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    return np.where(high - low > 0, (values - low) / span, 1.0)


def knee_and_ideal(g: np.ndarray) -> tuple[int | None, int | None]:
    """Row positions of the knee (largest normalised distance beyond the line or plane through the extreme points)
    and of the ideal pick (smallest normalised distance to the ideal point), for values in maximised form."""
    if len(g) == 0:
        return None, None
    u = _normalised(g)
    ideal = int(np.argmin(np.linalg.norm(1.0 - u, axis=1)))
    if len(g) < 3:
        return ideal, ideal
    p = u.shape[1]
    extremes = u[[int(np.argmax(u[:, k])) for k in range(p)]]
    if p == 2:
        a, b = extremes
        direction = b - a
        normal = np.array([-direction[1], direction[0]])
    else:
        a = extremes[0]
        normal = np.cross(extremes[1] - a, extremes[2] - a)
    length = np.linalg.norm(normal)
    if length < 1e-12:  # extremes coincide or are collinear: fall back on the ideal pick
        return ideal, ideal
    normal = normal / length
    if normal @ (np.ones(p) - a) < 0:  # point the normal towards the ideal point
        normal = -normal
    distance = (u - a) @ normal
    if distance.max() <= 1e-9:  # a straight (flat) front has no knee: the ideal pick stands in
        return ideal, ideal
    return int(np.argmax(distance)), ideal


METHODS = ("augmecon2", "augmecon-r", "augmecon2-classic", "weighted-sum", "lexicographic")
"""Front methods. The AUGMECON ones give the (representative or, with steps, complete) nondominated set; the last
two are cheap alternatives: weighted-sum gives supported points only (the corners of the front's convex hull), and
lexicographic only the extreme points, one per order of the objectives."""


@dataclass
class _Found:
    """A plan found on the way: its objectives in maximised form, their values, how it was found."""

    g: np.ndarray
    values: dict[str, float]
    result: SolveResult
    seconds: float
    decision: Any
    epsilon: tuple[float, ...] | None
    found_by: str


def _timed_solve(model: FrontModel, options: SolverOptions, sign: np.ndarray, names: list[str],
                 found_by: str, epsilon: tuple[float, ...] | None = None) -> tuple[SolveResult, _Found | None]:
    """Solve once; the plan as a _Found, or None without one."""
    t0 = time.perf_counter()
    result, values = _solve(model, options, strict=False)
    if values is None:
        return result, None
    g = sign * np.array([values[k] for k in names])
    return result, _Found(g, values, result, time.perf_counter() - t0, model.decision(), epsilon, found_by)


def front(model: Any, objectives: Mapping[str, Any] | Sequence[str] | None = None,
          senses: Mapping[str, str] | None = None, method: str = "augmecon2", points: int | Mapping[str, int] = 25,
          options: SolverOptions | None = None, *, steps: Mapping[str, float] | None = None,
          max_points: int = 10_000, ranges: str | None = None, augment: float = AUGMENT, refine: int = 0,
          progress: Progress | None = None) -> Front:
    """The Pareto front of two or three objectives.

    `model`: a :class:`FrontModel`, a Pyomo ConcreteModel (with `objectives` a dict name -> expression and `senses`
    name -> "max" | "min"; the first objective is the one optimised, the others are constrained), or a
    PlanningProblem (with `objectives` a list of names from OBJECTIVES).

    `method`: "augmecon2" (with three objectives it keeps AUGMECON-R's flag array; "augmecon-r" is the same),
    "augmecon2-classic" (the bypass in the innermost loop only, for comparison), "weighted-sum" (supported points
    only: with two objectives the dichotomic scheme of Aneja & Nair 1979, which finds every supported extreme point
    within `points` solves; with three, weights on a simplex lattice of about `points` weight vectors) or
    "lexicographic" (one lexicographic optimum per order of the objectives: the front's extreme points only).

    AUGMECON options: `points`, grid points per constrained objective (representation mode); `steps`, the grid step
    per constrained objective (exact mode: the resolution of an integer-valued objective gives the complete
    nondominated set); `max_points` caps the solves on the grid; `ranges`: "payoff" (the payoff table's nadir;
    default with two objectives, where it is exact) or "safe" (the minimum over the feasible set; default with
    three); `refine` (two objectives, representation mode): up to this many more solves, each at the middle of the
    neighbouring pair of points where the front bends most (the longest normalised segment, weighted by the turning
    angle at its ends).
    """
    start = time.perf_counter()
    options = options or SolverOptions()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if isinstance(model, PlanningProblem):
        model = LandUseFrontModel(model, list(objectives or ()), options)
    elif isinstance(model, pyo.ConcreteModel):
        if not isinstance(objectives, Mapping) or senses is None:
            raise ValueError("a Pyomo model needs objectives (name -> expression) and senses (name -> max|min)")
        model = PyomoFrontModel(model, objectives, senses)
    names = list(model.names)
    p = len(names)
    unknown = sorted(set(steps or {}) - set(names[1:]))
    if unknown:
        raise ValueError(f"steps for {', '.join(unknown)}: steps are for the constrained objectives "
                         f"({', '.join(names[1:])})")
    if refine and (p != 2 or steps or method not in ("augmecon2", "augmecon-r", "augmecon2-classic")):
        raise ValueError("refine works with two objectives, an AUGMECON method and no steps (exact mode is complete)")
    sign = np.array([1.0 if model.senses[k] == "max" else -1.0 for k in names])
    notes = list(getattr(model, "notes", []))
    if progress:
        progress("payoff", 0, 1)
    found: list[_Found] = []
    stats: dict[str, Any] = {"grid_points": 0, "solves": 0, "infeasible": 0, "capped": False}
    if method == "lexicographic":
        found, solves, payoff = _lexicographic_points(model, names, sign, options)
        payoff_solves = 0
        stats["solves"] = solves
    else:
        payoff, payoff_solves = payoff_table(model, options)
        notes += [n for n in getattr(model, "notes", []) if n not in notes]
    g_payoff = payoff.to_numpy() * sign
    ideal = np.diag(g_payoff).copy()
    nadir = g_payoff.min(axis=0)
    if method == "lexicographic":
        notes.append("lexicographic mode: one lexicographic optimum per order of the objectives, so only the "
                     "front's extreme points; use augmecon2 for the points between them")
    elif method == "weighted-sum":
        found, solves = _weighted_sum_points(model, names, sign, g_payoff, ideal, nadir, options,
                                             int(points if not isinstance(points, Mapping) else max(points.values())),
                                             progress)
        stats["solves"] = solves
        notes.append("weighted-sum mode: supported points only (optima of a weighted sum, the corners of the "
                     "front's convex hull); nondominated points in its dents are missed: use augmecon2 for them")
        if options.mip_rel_gap > 0:
            notes.append(f"weighted-sum mode at a MIP gap of {options.mip_rel_gap:g}: a point may be off its weight's "
                         "optimum by that much")
    else:
        ranges = ranges or ("payoff" if p == 2 else "safe")
        nadir = _constrained_ranges(model, names, sign, nadir, ranges, options, notes)
        payoff_solves += (p - 1) if ranges == "safe" else 0
        found, stats = _augmecon(model, names, sign, ideal, nadir, method, points, steps, max_points, augment,
                                 options, progress, notes)
        if stats["capped"]:
            notes.append(f"the cap of {max_points} grid solves cut the front: it may miss points")
        if refine:
            more, solves = _refine(model, names, sign, ideal, nadir, found, refine, options, progress)
            found += more
            stats["solves"] += solves
            notes.append(f"refinement: {solves} more solves where the front bends, {len(more)} new plans")
    for k in names:
        model.set_epsilon(k, None)
        model.set_bound(k, None)
    table, solutions = _front_table(found, names, sign, ideal, nadir, model.senses)
    knee = ideal_pick = None
    if len(table):
        g_table = table[names].to_numpy(dtype=float) * sign
        k_pos, i_pos = knee_and_ideal(g_table)
        knee = int(table["point"].iloc[k_pos]) if k_pos is not None else None
        ideal_pick = int(table["point"].iloc[i_pos]) if i_pos is not None else None
    if progress:
        progress("grid", 1, 1)
    grid_steps = stats.get("steps", {})
    return Front(table=table, solutions=solutions, payoff=payoff, names=names, senses=dict(model.senses),
                 method=method, knee=knee, ideal=ideal_pick,
                 ranges={k: (float(nadir[i] * sign[i]), float(ideal[i] * sign[i])) for i, k in enumerate(names)},
                 steps={k: float(v) for k, v in grid_steps.items()}, grid_points=int(stats["grid_points"]),
                 solves=int(stats["solves"]), payoff_solves=payoff_solves,
                 skipped=max(int(stats["grid_points"]) - int(stats.get("grid_solves", 0)), 0),
                 infeasible_solves=int(stats["infeasible"]), capped=bool(stats["capped"]),
                 seconds=time.perf_counter() - start, notes=notes)


def _constrained_ranges(model: FrontModel, names: list[str], sign: np.ndarray, nadir: np.ndarray, ranges: str,
                        options: SolverOptions, notes: list[str]) -> np.ndarray:
    """The lower end of each constrained objective's range (maximised form): the payoff nadir, or safely below."""
    nadir = nadir.copy()
    p = len(names)
    if ranges == "safe":
        for k in range(1, p):
            model.set_objective({names[k]: -1.0})
            result, values = _solve(model, options)
            low = sign[k] * values[names[k]]  # type: ignore[index]
            if result.bound is not None and np.isfinite(result.bound):
                low = min(low, -float(result.bound))  # the bound of max -g_k: no plan has g_k below it
            nadir[k] = min(nadir[k], low)
        if p > 2:
            notes.append("three objectives: the payoff table's nadir is only an estimate, so each constrained range "
                         "starts at the objective's minimum over the feasible set (safe, possibly wide)")
    elif ranges != "payoff":
        raise ValueError(f"unknown ranges {ranges!r}; known: payoff, safe")
    elif p > 2:
        notes.append("three objectives with ranges='payoff': the payoff table's nadir is an estimate, and points "
                     "beyond it are missed")
    return nadir


def _augmecon(model: FrontModel, names: list[str], sign: np.ndarray, ideal: np.ndarray, nadir: np.ndarray,
              method: str, points: int | Mapping[str, int], steps: Mapping[str, float] | None, max_points: int,
              augment: float, options: SolverOptions, progress: Progress | None,
              notes: list[str]) -> tuple[list[_Found], dict]:
    """AUGMECON2 over the grid of the constrained objectives 2..p, with AUGMECON-R's flag array (module docstring)."""
    p = len(names)
    grid_steps, counts = {}, []
    for k in range(1, p):
        span = max(ideal[k] - nadir[k], 0.0)
        if steps and names[k] in steps:
            step = float(steps[names[k]])
            n = int(math.floor(span / step + 1e-9)) + 1
        else:
            n = int(points[names[k]] if isinstance(points, Mapping) else points)
            step = span / (n - 1) if n > 1 and span > 0 else max(span, 1.0)
            n = n if span > 0 else 1
        grid_steps[names[k]] = step
        counts.append(n)
    total = int(np.prod(counts))
    span_of = {names[k]: max(ideal[k] - nadir[k], 1e-12) for k in range(1, p)}
    slack_weights = {names[k]: augment * 10.0 ** -(k - 1) / span_of[names[k]] for k in range(1, p)}
    model.set_objective({names[0]: 1.0}, slack_weights)
    for k in names:
        model.set_bound(k, None)

    flags = np.zeros(counts, dtype=np.int64)  # 0 unsolved, -1 infeasible, > 0 solved: jump this far (innermost)
    use_flags = method != "augmecon2-classic" or p == 2
    found: list[_Found] = []
    grid_solves = infeasible = done = 0
    capped = False
    outer = [range(c) for c in counts[1:]][::-1]  # outer loops, outermost first (objective p ... 3)
    for rest in itertools.product(*outer):
        index_outer = tuple(reversed(rest))  # indices of objectives 3..p
        if use_flags and p > 2 and flags[(0, *index_outer)] == -1:
            done += counts[0]
            continue
        for j, k in enumerate(range(2, p)):
            model.set_epsilon(names[k], nadir[k] + index_outer[j] * grid_steps[names[k]])
        i = 0
        while i < counts[0]:
            cell = (i, *index_outer)
            if use_flags and flags[cell] == -1:
                done += counts[0] - i
                break
            if use_flags and flags[cell] > 0:
                done += int(flags[cell])
                i += int(flags[cell])
                continue
            if grid_solves >= max_points:
                capped = True
                break
            e = tuple([nadir[1] + i * grid_steps[names[1]]] + [nadir[k] + index_outer[j] * grid_steps[names[k]]
                                                               for j, k in enumerate(range(2, p))])
            model.set_epsilon(names[1], e[0])
            result, point = _timed_solve(model, options, sign, names, "grid", e)
            grid_solves += 1
            if point is None and result.status != Status.INFEASIBLE:  # no plan in time: go on with the next point
                notes.append(f"grid point {tuple(float(v) for v in e)}: no plan ({result.message})")
                done += 1
                i += 1
                continue
            if point is None:  # early exit: every point at least as tight is infeasible
                infeasible += 1
                flags[tuple(slice(c, None) for c in cell)] = -1
                done += counts[0] - i
                break
            jumps = [int(math.floor((point.g[k] - e[k - 1]) / grid_steps[names[k]] + 1e-9))
                     if grid_steps[names[k]] > 0 else 0 for k in range(1, p)]
            jumps = [max(b, 0) for b in jumps]
            found.append(point)
            if use_flags:
                box = tuple(slice(c, min(c + b + 1, n)) for c, b, n in zip(cell, jumps, counts, strict=True))
                end = min(i + jumps[0] + 1, counts[0])
                block = flags[box]
                positions = np.arange(box[0].start, box[0].stop).reshape((-1,) + (1,) * (p - 2))
                flags[box] = np.where(block < 0, block, np.maximum(block, end - positions))
            done += jumps[0] + 1
            i += jumps[0] + 1
            if progress:
                progress("grid", min(done, total), total)
        if capped:
            break
    stats = {"grid_points": total, "solves": grid_solves, "grid_solves": grid_solves, "infeasible": infeasible,
             "capped": capped, "steps": grid_steps}
    return found, stats


def _refine(model: FrontModel, names: list[str], sign: np.ndarray, ideal: np.ndarray, nadir: np.ndarray,
            found: list[_Found], budget: int, options: SolverOptions,
            progress: Progress | None) -> tuple[list[_Found], int]:
    """Up to `budget` more epsilon solves (two objectives), each in the middle of the segment of the current front
    with the largest score: its normalised length times (1 + the turning angles at its ends), so that solves go
    where the front is both sparse and bending. The epsilon rows and augmented objective of the grid stay."""
    span = np.where(ideal - nadir > 0, ideal - nadir, 1.0)
    tol = np.array([1e-7 * max(1.0, abs(ideal[k]), abs(nadir[k])) for k in range(2)])
    more: list[_Found] = []
    tried: set[tuple[float, float]] = set()
    solves = 0
    for _ in range(budget):
        everything = found + more
        g_all = np.array([f.g for f in everything]).reshape(-1, 2)
        keep = _nondominated(g_all, tol) if len(g_all) else np.array([], dtype=int)
        g = g_all[keep]
        g = g[np.argsort(g[:, 1])]
        if len(g) < 2:
            break
        u = (g - nadir) / span
        segments = np.diff(u, axis=0)
        length = np.linalg.norm(segments, axis=1)
        turning = np.zeros(len(g))
        for j in range(1, len(g) - 1):
            a, b = segments[j - 1], segments[j]
            denominator = np.linalg.norm(a) * np.linalg.norm(b)
            if denominator > 0:
                turning[j] = math.acos(float(np.clip(a @ b / denominator, -1.0, 1.0)))
        score = length * (1.0 + turning[:-1] + turning[1:])
        for j in np.argsort(-score):
            key = (round(float(g[j, 1]), 9), round(float(g[j + 1, 1]), 9))
            if key not in tried and g[j + 1, 1] - g[j, 1] > 2 * tol[1]:
                break
        else:
            break
        tried.add(key)
        e = float((g[j, 1] + g[j + 1, 1]) / 2)
        model.set_epsilon(names[1], e)
        result, point = _timed_solve(model, options, sign, names, "refine", (e,))
        solves += 1
        if point is not None:
            more.append(point)
        if progress:
            progress("refine", solves, budget)
    return more, solves


def _lexicographic_points(model: FrontModel, names: list[str], sign: np.ndarray,
                          options: SolverOptions) -> tuple[list[_Found], int, pd.DataFrame]:
    """One lexicographic optimum per order of the objectives, and the payoff table (the rows of the orders that
    rotate the objectives, as :func:`payoff_table` solves them)."""
    found: list[_Found] = []
    solves = 0
    rotations = {tuple(names[i:] + names[:i]) for i in range(len(names))}
    rows: dict[str, dict[str, float]] = {}
    for order in itertools.permutations(names):
        label = "lexicographic " + " > ".join(order)
        for k in names:
            model.set_epsilon(k, None)
            model.set_bound(k, None)
        point = None
        for k in order:
            model.set_objective({k: 1.0})
            result, point = _timed_solve(model, options, sign, names, label)
            solves += 1
            if point is None:
                raise InfeasibleError(f"no feasible plan while optimising {k} ({result.message})")
            g = point.g[names.index(k)]
            model.set_bound(k, g - _tolerance(g))
        found.append(point)  # type: ignore[arg-type]
        if order in rotations:
            rows[order[0]] = point.values  # type: ignore[union-attr]
    payoff = pd.DataFrame.from_dict({k: rows[k] for k in names}, orient="index")[names]
    payoff.index.name = "optimised"
    return found, solves, payoff


def _weighted_sum_points(model: FrontModel, names: list[str], sign: np.ndarray, g_payoff: np.ndarray,
                         ideal: np.ndarray, nadir: np.ndarray, options: SolverOptions, budget: int,
                         progress: Progress | None) -> tuple[list[_Found], int]:
    """Supported points by weighted sums. Two objectives: Aneja & Nair's (1979) dichotomic scheme, from the two
    lexicographic extremes: for neighbours a, b maximise w.g with w normal to the segment ab; a point beyond the
    segment is new and splits it, none proves the segment a face of the hull. Three objectives: a simplex lattice
    of weights on the normalised objectives (no weight exactly zero, so no weakly dominated point is returned)."""
    for k in names:
        model.set_epsilon(k, None)
        model.set_bound(k, None)
    p = len(names)
    found: list[_Found] = []
    solves = 0

    def solve_weights(w: np.ndarray, label: str) -> _Found | None:
        nonlocal solves
        model.set_objective({k: float(w[i]) for i, k in enumerate(names)})
        result, point = _timed_solve(model, options, sign, names, label)
        solves += 1
        if point is None and result.status == Status.INFEASIBLE:
            raise InfeasibleError(f"no feasible plan for weights {label} ({result.message})")
        if progress:
            progress("weights", solves, budget)
        return point

    span = np.where(ideal - nadir > 0, ideal - nadir, 1.0)
    if p == 2:
        # the extremes, each as the lexicographic optimum (a tiny weight on the other objective breaks ties)
        extremes = []
        for k in range(2):
            w = np.full(2, 1e-6) / span
            w[k] = 1.0 / span[k]
            point = solve_weights(w / w.sum(), f"weights {w[0] / w.sum():.6g}/{w[1] / w.sum():.6g}")
            if point is not None:
                extremes.append(point)
        found += extremes
        if len(extremes) < 2:
            return found, solves
        stack = [(extremes[0], extremes[1])]  # (a, b): a has the larger g1
        while stack and solves < budget:
            a, b = stack.pop()
            w = np.array([b.g[1] - a.g[1], a.g[0] - b.g[0]])
            if w.min() <= 0 or not np.isfinite(w).all():
                continue
            w = w / w.sum()
            point = solve_weights(w, f"weights {w[0]:.6g}/{w[1]:.6g}")
            if point is None:
                continue
            tol = 1e-9 * max(1.0, abs(float(w @ a.g))) + 1e-9
            if float(w @ point.g) > float(w @ a.g) + tol:
                found.append(point)
                stack += [(point, b), (a, point)]
        return found, solves
    divisions = 1
    while (divisions + 1) * (divisions + 2) // 2 < budget:
        divisions += 1
    for combo in itertools.product(range(divisions + 1), repeat=p - 1):
        if sum(combo) > divisions:
            continue
        lam = np.array([*combo, divisions - sum(combo)], dtype=float) / divisions
        lam = np.maximum(lam, 1e-4)
        w = lam / span
        w = w / w.sum()
        point = solve_weights(w, "weights " + "/".join(f"{v:.4g}" for v in lam / lam.sum()))
        if point is not None:
            found.append(point)
    return found, solves


def _front_table(found: list[_Found], names: list[str], sign: np.ndarray, ideal: np.ndarray, nadir: np.ndarray,
                 senses: Mapping[str, str]) -> tuple[pd.DataFrame, dict[int, Any]]:
    """Merge duplicates, drop dominated points, and tabulate (with marginal rates for two objectives)."""
    p = len(names)
    tol = np.array([1e-7 * max(1.0, abs(ideal[k]), abs(nadir[k])) for k in range(p)])
    g_all = np.array([f.g for f in found]).reshape(-1, p)
    keep = _nondominated(g_all, tol) if len(found) else np.array([], dtype=int)
    rows, solutions = [], {}
    for point, position in enumerate(keep, start=1):
        f = found[position]
        row: dict[str, Any] = {"point": point, **f.values}
        for j, k in enumerate(names[1:]):
            row[f"eps_{k}"] = float(sign[j + 1] * f.epsilon[j]) if f.epsilon and j < len(f.epsilon) else np.nan
        row.update({"status": f.result.status.value, "gap": f.result.gap, "solve_seconds": round(f.seconds, 4),
                    "found_by": f.found_by})
        rows.append(row)
        solutions[point] = f.decision
    columns = ["point", *names, *[f"eps_{k}" for k in names[1:]], "status", "gap", "solve_seconds", "found_by"]
    table = pd.DataFrame(rows, columns=columns)
    if len(table):
        table = table.sort_values(names[0], ascending=senses[names[0]] == "max", kind="stable")
        table = table.reset_index(drop=True)
    if p == 2 and len(table):
        table["marginal_rate"] = table[names[1]].diff() / table[names[0]].diff()
    return table, solutions


# ------------------------------------------------------------------------------------------------------------
# The land-use front: baseline, files, and a front point back into a plan


def baseline(problem: PlanningProblem, names: Sequence[str], es_scale: Mapping[str, float] | None = None
             ) -> dict[str, float]:
    """The objectives of the current-use plan: every parcel kept in its current use where that is allowed (the
    keep rows of `problem.allowed`; other parcels count nothing), no herd, no ranger posts."""
    allowed = problem.allowed
    keep = allowed[~allowed["converted"].to_numpy()]
    nonland = float((problem.villages["nonland_income_per_capita"] * problem.villages["population"]).sum())
    gains = {s: float(keep[f"gain_{s}"].sum()) for s in problem.services}
    values = {"income": nonland + float(keep["income"].sum()) + float(keep["compensation"].sum()),
              "cost": float(keep["cost"].sum()), **gains}
    weights = problem.params.get("weights") or {}
    scale = es_scale or {}
    values["ecosystem_services"] = sum(float(w) / float(scale[s]) * gains.get(s, 0.0)
                                       for s, w in weights.items() if w and scale.get(s))
    return {name: values[name] for name in names}


def plans_table(problem: PlanningProblem, result: Front) -> pd.DataFrame:
    """Every point's plan in long form keyed by point: kind "parcel" rows (parcel_id, option, variant) and kind
    "village" rows (village, herd, posts)."""
    allowed = problem.allowed
    parcel_ids = problem.parcels["parcel_id"].astype(str).to_numpy()
    villages = problem.villages["village"].astype(str).to_numpy()
    frames = []
    for point, solution in result.solutions.items():
        rows = solution.chosen_rows()
        chosen = allowed.iloc[rows]
        frames.append(pd.DataFrame({"point": point, "kind": "parcel",
                                    "id": parcel_ids[chosen["parcel"].to_numpy()],
                                    "option": chosen["option"].to_numpy(), "variant": chosen["variant"].to_numpy(),
                                    "herd": pd.NA, "posts": pd.NA}))
        frames.append(pd.DataFrame({"point": point, "kind": "village", "id": villages, "option": None,
                                    "variant": None, "herd": solution.herd.astype(int),
                                    "posts": solution.posts.astype(int)}))
    columns = ["point", "kind", "id", "option", "variant", "herd", "posts"]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return table.astype({"point": "int32", "kind": "category", "id": "string", "option": "category",
                         "variant": "category", "herd": "Int32", "posts": "Int32"})[columns]


LABELS = {"ecosystem_services": "ecosystem services index", "income": "income (yuan/yr)",
          "cost": "establishment cost (yuan)", "carbon": "carbon gain", "soil": "soil retention gain",
          "water": "water retention gain", "habitat": "habitat gain"}


METHOD_LABELS = {"augmecon2": "Pareto front (AUGMECON2)", "augmecon-r": "Pareto front (AUGMECON-R)",
                 "augmecon2-classic": "Pareto front (AUGMECON2)",
                 "weighted-sum": "supported points only (weighted sum)",
                 "lexicographic": "extreme points only (lexicographic)"}


def _annotate_marginal_rates(ax: Any, ordered: pd.DataFrame, names: Sequence[str], most: int = 12) -> None:
    """Write the marginal rate (change of the second objective per unit of the first) at the middle of segments
    of the front, at most `most` of them spread evenly so the labels stay legible."""
    if "marginal_rate" not in ordered or len(ordered) < 2:
        return
    x, y = ordered[names[0]].to_numpy(dtype=float), ordered[names[1]].to_numpy(dtype=float)
    rates = ordered["marginal_rate"].to_numpy(dtype=float)
    segments = np.arange(1, len(ordered))
    if len(segments) > most:
        segments = segments[np.linspace(0, len(segments) - 1, most).round().astype(int)]
    for j in segments:
        if np.isfinite(rates[j]):
            ax.annotate(f"{rates[j]:,.3g}", ((x[j - 1] + x[j]) / 2, (y[j - 1] + y[j]) / 2), fontsize=6,
                        color="tab:gray", xytext=(4, 4), textcoords="offset points")
    ax.text(0.01, 0.01, f"grey figures: marginal rate, {names[1]} per unit of {names[0]}", transform=ax.transAxes,
            fontsize=7, color="tab:gray")


def plot_front(result: Front, path: Any, base: Mapping[str, float] | None = None, title: str = "") -> None:
    """The front (a line for two objectives, a 3-D scatter for three), the knee and ideal picks, and the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, table = result.names, result.table
    label = {k: f"{LABELS.get(k, k)} ({result.senses[k]})" for k in names}
    knee = table[table["point"] == result.knee]
    ideal = table[table["point"] == result.ideal]
    if len(names) == 2:
        fig, ax = plt.subplots(figsize=(7, 5))
        ordered = table.sort_values(names[0])
        ax.plot(ordered[names[0]], ordered[names[1]], "-o", color="tab:blue", ms=4, label=METHOD_LABELS.get(
            result.method, result.method))
        refined = ordered[ordered["found_by"] == "refine"] if "found_by" in ordered else ordered.iloc[0:0]
        if len(refined):
            ax.plot(refined[names[0]], refined[names[1]], "o", mfc="none", color="tab:orange", ms=8,
                    label="added by refinement")
        _annotate_marginal_rates(ax, ordered, names)
        if len(knee):
            ax.plot(knee[names[0]], knee[names[1]], "*", color="tab:red", ms=16, label=f"knee (point {result.knee})")
        if len(ideal):
            ax.plot(ideal[names[0]], ideal[names[1]], "D", mfc="none", color="tab:green", ms=10,
                    label=f"ideal pick (point {result.ideal})")
        if base:
            ax.plot(base[names[0]], base[names[1]], "X", color="black", ms=10, label="current use")
        ax.set_xlabel(label[names[0]])
        ax.set_ylabel(label[names[1]])
        ax.grid(alpha=0.3)
    else:
        fig = plt.figure(figsize=(8, 6))
        ax = fig.add_subplot(projection="3d")
        ax.scatter(table[names[0]], table[names[1]], table[names[2]], c=table[names[0]], cmap="viridis", s=18,
                   label=METHOD_LABELS.get(result.method, result.method))
        if len(knee):
            ax.scatter(knee[names[0]], knee[names[1]], knee[names[2]], marker="*", color="tab:red", s=200,
                       label=f"knee (point {result.knee})")
        if base:
            ax.scatter([base[names[0]]], [base[names[1]]], [base[names[2]]], marker="X", color="black", s=80,
                       label="current use")
        ax.set_xlabel(label[names[0]])
        ax.set_ylabel(label[names[1]])
        ax.set_zlabel(label[names[2]])
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or f"Pareto front, {len(table)} points")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_front(scenario: Any, objectives: Sequence[str], points: int = 25, options: SolverOptions | None = None,
              progress: Progress | None = None, backend: str = "auto",
              **kwargs: Any) -> tuple[Any, Front, LandUseFrontModel, dict]:
    """Prepare a scenario, build the land-use model once (on `backend`: pyomo, matrix or auto) and compute its
    front; (prepared, front, model, times)."""
    from optiland.pipeline.run import prepare, solver_options

    prepared = prepare(scenario)
    options = options or solver_options(prepared.scenario)
    start = time.perf_counter()
    model = LandUseFrontModel(prepared.problem, objectives, options, backend=backend)
    times = {"read": prepared.read_seconds, "build": model.backend.build_seconds,
             "scales": model.scale_seconds, "compile": model.compile_seconds}
    start = time.perf_counter()
    result = front(model, points=points, options=options, progress=progress, **kwargs)
    times["front"] = time.perf_counter() - start
    return prepared, result, model, times


def write_front(out_dir: Any, prepared: Any, result: Front, model: LandUseFrontModel, options: SolverOptions,
                times: Mapping[str, float]) -> Any:
    """Write front.csv, front.png, plans.parquet and run.json to OUT_DIR, whole or not at all."""
    import json
    from pathlib import Path

    from optiland.pipeline.results import _json, provenance, write_atomically

    problem = prepared.problem
    base = baseline(problem, result.names, model.es_scale)
    table = result.table.rename(columns={"point": "plan_id"})
    scenario = prepared.scenario

    def write(folder: Path) -> None:
        start = time.perf_counter()
        table.to_csv(folder / "front.csv", index=False, encoding="utf-8-sig")
        plot_front(result, folder / "front.png", base, title=f"{scenario.name or 'scenario'}: Pareto front")
        plans_table(problem, result).to_parquet(folder / "plans.parquet", index=False)
        run = {
            **provenance(prepared),
            "backend": getattr(getattr(model, "backend", None), "name", None),
            "solver": {"name": "highs", "options": options.as_dict()},
            "es_scale": model.es_scale,
            **result.summary(),
            "baseline": base,
            "points": json.loads(table.to_json(orient="records")),
            "times": {**{k: round(v, 3) for k, v in times.items()},
                      "per_point_mean": round(float(table["solve_seconds"].mean()), 4) if len(table) else None,
                      "write": round(time.perf_counter() - start, 3)},
            "notes": model.notes + [n for n in result.notes if n not in model.notes],
        }
        (folder / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False, default=_json),
                                         encoding="utf-8")

    return write_atomically(Path(out_dir), write)


def outcome_from_front(prepared: Any, front_dir: Any, pick: str, options: SolverOptions) -> tuple[Any, dict]:
    """A front point as a full solve outcome: its plan (parcel choices, herd, posts) is fixed, each front objective
    bounded at the point's value, and the model solved with the scenario's objective (the LP left decides only the
    price-step areas). Returns the RunOutcome and the record of the point for run.json."""
    import json
    from pathlib import Path

    from optiland.pipeline.run import RunOutcome, _Clock, service_scales

    front_dir = Path(front_dir)
    run = json.loads((front_dir / "run.json").read_text(encoding="utf-8"))
    points = pd.DataFrame(run["points"])
    key = run["knee"] if pick == "knee" else run["ideal"] if pick == "ideal" else None
    if key is None:
        try:
            key = int(pick)
        except ValueError:
            raise OptilandError(f"--pick must be knee, ideal or a point id, not {pick!r}") from None
    row = points[points["plan_id"] == key]
    if row.empty:
        raise OptilandError(f"no point {key} in {front_dir} (points: {', '.join(map(str, points['plan_id']))})")
    row = row.iloc[0]
    plans = pd.read_parquet(front_dir / "plans.parquet", filters=[("point", "==", int(key))])
    problem = prepared.problem
    hashes = prepared.inputs.hashes
    notes = [f"plan of front point {key} ({pick}) from {front_dir}"]
    if run.get("input_hashes") and hashes and run["input_hashes"] != hashes:
        notes.append("the inputs changed since the front was computed (input hashes differ)")
    backend = PyomoBackend()
    backend.build(problem)
    m = backend.model
    start = time.perf_counter()
    scales = dict(run.get("es_scale") or {})
    params = problem.params
    if not scales and (params["objective"] == "ecosystem_services" or "ecosystem_services" in params["bounds"]):
        scales, more = service_scales(backend, problem, _Clock(options))
        notes += more
    m._es_scale = scales
    if "ecosystem_services" in params["bounds"]:
        backend.set_bound("ecosystem_services", *params["bounds"]["ecosystem_services"])
    parcels = plans[plans["kind"] == "parcel"]
    allowed = problem.allowed
    ids = problem.parcels["parcel_id"].astype(str).to_numpy()[allowed["parcel"].to_numpy()]
    index = pd.MultiIndex.from_arrays([ids, allowed["option"].astype(str), allowed["variant"].astype(str)])
    rows = index.get_indexer(pd.MultiIndex.from_arrays([parcels["id"].astype(str), parcels["option"].astype(str),
                                                        parcels["variant"].astype(str)]))
    if (rows < 0).any() or len(rows) != problem.n_parcels:
        raise OptilandError(f"front point {key} does not match this scenario's parcels and allowed options")
    chosen = np.zeros(len(allowed))
    chosen[rows] = 1.0
    for a in m.A:
        m.x[a].setlb(chosen[a])
        m.x[a].setub(chosen[a])
    villages = plans[plans["kind"] == "village"].set_index("id")
    names = problem.villages["village"].astype(str)
    for v in m.V:
        herd, posts = int(villages.loc[names.iloc[v], "herd"]), int(villages.loc[names.iloc[v], "posts"])
        m.herd[v].setlb(herd)
        m.herd[v].setub(herd)
        m.posts[v].setlb(posts)
        m.posts[v].setub(posts)
    for name, sense in run["senses"].items():  # the point's objective values hold (income: the price-step split)
        value = float(row[name])
        slack = 1e-6 * max(1.0, abs(value))
        if sense == "max":
            m.add_component(f"front_{name}", pyo.Constraint(
                expr=objective_expression(m, name, params["weights"], scales) >= value - slack))
        else:
            m.add_component(f"front_{name}", pyo.Constraint(
                expr=objective_expression(m, name, params["weights"], scales) <= value + slack))
    backend.set_objective({params["objective"]: 1.0}, params["sense"], scale=scales, weights=params["weights"])
    result = backend.solve(options)
    if not result.status.has_plan or result.x is None:
        raise OptilandError(f"the plan of front point {key} does not solve with this scenario: {result.message}")
    lp = backend.last_lp
    n_cols, n_rows, nnz = lp.shape
    outcome = RunOutcome(
        prepared=prepared, solution=backend.solution(result), result=result, options=options, backend=backend.name,
        es_scale=scales, times={"read": prepared.read_seconds, "build": backend.build_seconds,
                                "solve": time.perf_counter() - start},
        model_size={"variables": n_cols, "binaries": int(lp.integer.sum()), "constraints": n_rows, "nonzeros": nnz,
                    "allowed_rows": len(allowed), "parcels": problem.n_parcels}, notes=notes)
    record = {"dir": str(front_dir.resolve()), "pick": pick, "point": int(key), "objectives": run["objectives"],
              "values": {name: float(row[name]) for name in run["objectives"]},
              "epsilon": {k: float(row[k]) for k in row.index if str(k).startswith("eps_")}}
    return outcome, record
