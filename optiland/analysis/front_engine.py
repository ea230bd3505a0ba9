r"""The generic front engine: exact Pareto fronts by AUGMECON2, with AUGMECON-R's flag array for three objectives.

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

Warm starts: every solve starts from the last plan found where it still holds (optiland.mip.solver checks it). With
two objectives in representation mode (``points``, no ``steps``) the grid is solved from its tightest point down, so
every point starts from the previous point's plan, which the looser bound keeps feasible (the first from the payoff
table's last plan, the optimum there); exact mode keeps the ascending order, which the bypass needs, and there a
generic model's point starts from the best plan within a few flips of one or two binaries of the last one
(optiland.analysis.front_model._Neighbourhood): a pure function of the plans before it, so the front never depends on
timing.

Refinement (two objectives, representation mode): extra epsilon solves in the middle of the neighbouring pair of
points where the front is sparse and bends most.

Cheap alternatives, labelled as such in the result and the plot: ``method="weighted-sum"`` gives supported points
only (the dichotomic scheme of Aneja & Nair 1979, Manag. Sci. 25:73-78, finds every vertex of the front's convex
hull with two objectives; a weight lattice with three), and ``method="lexicographic"`` one lexicographic optimum per
order of the objectives (the extreme points).

Exact mode: with ``steps`` (the resolution of integer-valued objectives, e.g. 1 yuan) the grid has one point per
unit and the front is the complete nondominated set; ``max_points`` caps the number of solves and the result says
when it cut the front (``Front.capped``). ``exact=True`` sets what that needs (see :func:`front`); when every
objective is integer-valued it also replaces the slack augmentation by integral weights, :math:`\max W g_1 +
\sum_{k\ge2} g_k` with :math:`W = 1 + \sum_{k\ge2} (\mathrm{ideal}_k - \mathrm{nadir}_k)`, which is lexicographic
(no gain in the others can outweigh one unit of :math:`g_1`) and lets HiGHS prune by the objective's integrality.

Solve errors (HiGHS's "Solve error", a child process that died) are never read as "infeasible" or "no plan": the
point is solved again without presolve, then without presolve by interior point, and if it still fails the front
stops with an error naming the point. A model given to :func:`front` is left as it was (the adapter's block is
removed, also when the front raises).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optiland.analysis.front_methods import (  # noqa: F401  RETRIES, SolveError: public here too
    RETRIES,
    Progress,
    SolveError,
    _Found,
    _lexicographic_points,
    _nondominated,
    _refine,
    _solve,
    _timed_solve,
    _tolerance,
    _weighted_sum_points,
)
from optiland.analysis.front_model import FrontModel, PyomoFrontModel
from optiland.errors import InfeasibleError, NoPlanError
from optiland.mip.solver import SolverOptions, Status

AUGMENT = 1e-3
"""epsilon of the slack-augmented objective (Mavrotas 2009 suggests 1e-3 to 1e-6)."""



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
    flag_entries_peak: int = 0
    """The most entries (infeasible corners and solved boxes) the sparse flag array held at once."""
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
                "infeasible_solves": self.infeasible_solves, "capped": self.capped,
                "flag_entries_peak": self.flag_entries_peak, "seconds": round(self.seconds, 3),
                "payoff": {str(k): {c: float(v) for c, v in row.items()} for k, row in self.payoff.iterrows()},
                "notes": self.notes}


def payoff_table(model: FrontModel, options: SolverOptions,
                 plans: dict[str, _Found] | None = None) -> tuple[pd.DataFrame, int]:
    """Lexicographic payoff table: row k optimises objective k, then (bounded there) the others in turn.

    At a nonzero MIP gap each row optimises its objective only: the lexicographic stages would refine the other
    objectives among plans within the gap of the first (their bound, :func:`_tolerance`), which the gap leaves
    open anyway, and on the demo the first such stage (most income with the service index held) took 25 times the
    row's own solve (118 s against 4.7 s). The nadir estimate is then at most the lexicographic one: the grid's
    range is at least as wide, and the front's notes say so. `plans`, if given, gets each row's plan (a _Found)."""
    names = model.names
    sign = {k: 1.0 if model.senses[k] == "max" else -1.0 for k in names}
    rows = {}
    solves = 0
    lexicographic = options.mip_rel_gap <= 0
    for i, first in enumerate(names):
        order = names[i:] + names[:i] if lexicographic else [first]
        for k in names:
            model.set_epsilon(k, None)
            model.set_bound(k, None)
        values: dict[str, float] | None = None
        for k in order:
            model.set_objective({k: 1.0})
            previous = values
            began = time.perf_counter()
            result, values = _solve(model, options, f"payoff row {first}, optimising {k}")
            if plans is not None and values is not None:
                g_row = np.array([sign[n] * values[n] for n in names])
                plans[first] = _Found(g_row, values, result, time.perf_counter() - began, model.decision(), None,
                                      f"payoff row {first}")
            solves += 1
            if values is None and previous is not None and result.status == Status.TIME_LIMIT:
                # the previous stage's plan meets every bound so far: the row keeps it, not refined in k
                values = previous
                if isinstance(getattr(model, "notes", None), list):
                    model.notes.append(f"payoff row {first}: the time limit ended the search for a better {k} "
                                       f"before any plan, so the row keeps the plan optimising {order[0]} "
                                       "(its value may lie below the true lexicographic optimum)")
            if values is None:
                if result.status == Status.INFEASIBLE:
                    raise InfeasibleError(f"no feasible plan while optimising {k} ({result.message})")
                raise NoPlanError(f"no plan found while optimising {k} ({result.message}); nothing is known "
                                  "about whether one exists: give more time per solve (--time-limit)")
            g = sign[k] * values[k]
            model.set_bound(k, g - _tolerance(g, options.mip_rel_gap))
        rows[first] = values
    for k in names:
        model.set_bound(k, None)
    table = pd.DataFrame.from_dict(rows, orient="index")[names]
    table.index.name = "optimised"
    return table, solves


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


def front(model: Any, objectives: Mapping[str, Any] | Sequence[str] | None = None,
          senses: Mapping[str, str] | None = None, method: str = "augmecon2", points: int | Mapping[str, int] = 25,
          options: SolverOptions | None = None, *, steps: Mapping[str, float] | None = None,
          max_points: int = 10_000, ranges: str | None = None, augment: float = AUGMENT, refine: int = 0,
          progress: Progress | None = None, exact: bool = False,
          nadir: Mapping[str, float] | None = None) -> Front:
    """The Pareto front of two or three objectives.

    `model`: a :class:`FrontModel` or a Pyomo ConcreteModel (with `objectives` a dict name -> expression and `senses`
    name -> "max" | "min"; the first objective is the one optimised, the others are constrained). For a
    PlanningProblem use optiland.analysis.pareto.front (the land-use adapter).

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
    angle at its ends). `nadir`: the worst value to search per constrained objective, in its own units and sense
    (a lower bound for a maximised one, an upper bound for a minimised one): the grid starts there, no "safe" solve
    is made for it, and points worse than it are not searched (say so when you know the front's nadir).

    `exact=True` sets what an exact front needs: a zero MIP gap (mip_rel_gap = mip_abs_gap = 0) and, for a model that
    is not optiland's own land-use model, strategy "mip" (branch and bound at once; the LP-and-repair of "auto" is
    made for the land-use model) and HiGHS's root heuristics off (EXACT_HIGHS; `options.highs` wins); when every
    constrained objective is integer-valued (integer coefficients on integer variables) and no `steps` are given,
    unit steps, so the front is the complete nondominated set; when every objective is integer-valued, integral
    weights instead of the slack augmentation (module docstring). Other options stay as given. Without `exact`, a
    Pyomo model's "auto" strategy is the plain MIP too, but the gap is the options' (SolverOptions' default is 1e-4).

    A Pyomo model is left as it was given: the adapter's block is removed when the front is done or raises, the
    model's objectives and constraints were never changed, and no value is loaded into its variables.
    """
    start = time.perf_counter()
    options = options or SolverOptions()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    built = None
    if isinstance(model, pyo.ConcreteModel):
        if not isinstance(objectives, Mapping) or senses is None:
            raise ValueError("a Pyomo model needs objectives (name -> expression) and senses (name -> max|min)")
        model = built = PyomoFrontModel(model, objectives, senses)
    try:
        return _front(model, method, points, options, steps, max_points, ranges, augment, refine, progress, exact,
                      nadir, start)
    finally:
        if built is not None:
            built.remove()


EXACT_HIGHS = {"mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False,
               "mip_heuristic_run_feasibility_jump": False, "mip_heuristic_effort": 0.0,
               "mip_allow_restart": False}
"""HiGHS options exact mode adds for a generic model (options.highs given by the caller win): no RINS, RENS or
feasibility-jump sub-MIPs, no heuristic effort, and no restart. An exact front's MIPs are small, each is solved to a
proven optimum and starts from a good plan (the best neighbour of the last one), so these root heuristics are mostly
overhead (on the knapsacks of benchmarks/pareto.py pyaugmecon too needed 28-38% less CPU with them off), and so are
HiGHS's restarts, which presolve the model again after reduced-cost fixing at the root: without them the same
knapsack fronts took 1.1x (2kp60) to 2x (3kp40) less CPU, measured before the benchmark run
(benchmarks/results/pareto.csv; the columns pyaugmecon_exact_highs_* give pyaugmecon these options too)."""


def _integer_valued(model: FrontModel, name: str) -> bool:
    """Whether the model says objective `name` takes integer values only (False when it cannot say)."""
    check = getattr(model, "integer_valued", None)
    return bool(check(name)) if check is not None else False


def _front(model: FrontModel, method: str, points: int | Mapping[str, int], options: SolverOptions,
           steps: Mapping[str, float] | None, max_points: int, ranges: str | None, augment: float, refine: int,
           progress: Progress | None, exact: bool, given_nadir: Mapping[str, float] | None, start: float) -> Front:
    """front() on a FrontModel."""
    names = list(model.names)
    p = len(names)
    unknown = sorted(set(steps or {}) - set(names[1:]))
    if unknown:
        raise ValueError(f"steps for {', '.join(unknown)}: steps are for the constrained objectives "
                         f"({', '.join(names[1:])})")
    if refine and (p != 2 or steps or method not in ("augmecon2", "augmecon-r", "augmecon2-classic")):
        raise ValueError("refine works with two objectives, an AUGMECON method and no steps (exact mode is complete)")
    unknown = sorted(set(given_nadir or {}) - set(names[1:]))
    if unknown:
        raise ValueError(f"nadir for {', '.join(unknown)}: nadir bounds are for the constrained objectives "
                         f"({', '.join(names[1:])})")
    sign = np.array([1.0 if model.senses[k] == "max" else -1.0 for k in names])
    notes = list(getattr(model, "notes", []))
    integral = False
    if exact:
        changes: dict[str, Any] = {"mip_rel_gap": 0.0, "mip_abs_gap": 0.0}
        if not getattr(model, "optiland_model", False):
            changes["strategy"] = "mip"
            changes["highs"] = {**EXACT_HIGHS, **options.highs}
        options = replace(options, **changes)
        integer = {k: _integer_valued(model, k) for k in names}
        if steps is None and method in ("augmecon2", "augmecon-r", "augmecon2-classic") and not refine \
                and all(integer[k] for k in names[1:]):
            steps = {k: 1.0 for k in names[1:]}
            notes.append("exact mode: the constrained objectives are integer-valued, so unit steps: the complete "
                         "nondominated set")
        integral = all(integer.values()) and all(float(v).is_integer() for v in (steps or {}).values())
    if progress:
        progress("payoff", 0, 1)
    found: list[_Found] = []
    stats: dict[str, Any] = {"grid_points": 0, "solves": 0, "infeasible": 0, "capped": False}
    row_plans: dict[str, _Found] = {}
    if method == "lexicographic":
        found, solves, payoff = _lexicographic_points(model, names, sign, options)
        payoff_solves = 0
        stats["solves"] = solves
    else:
        payoff, payoff_solves = payoff_table(model, options, row_plans)
        notes += [n for n in getattr(model, "notes", []) if n not in notes]
        if options.mip_rel_gap > 0:
            notes.append(f"payoff table at a MIP gap of {options.mip_rel_gap:g}: each row optimises its own objective "
                         "only (no lexicographic stages), so the ranges are at least as wide as the lexicographic "
                         "ones")
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
        given = {names.index(k): sign[names.index(k)] * float(v) for k, v in (given_nadir or {}).items()}
        nadir = _constrained_ranges(model, names, sign, nadir, ranges, options, notes, given)
        payoff_solves += (p - 1 - len(given)) if ranges == "safe" else 0
        if given:
            notes.append("nadir given for " + ", ".join(names[k] for k in sorted(given)) + ": the grid starts there "
                         "and points worse than it are not searched")
        top = row_plans.get(names[1]) if p == 2 and options.mip_rel_gap > 0 and not steps else None
        found, stats = _augmecon(model, names, sign, ideal, nadir, method, points, steps, max_points, augment,
                                 options, progress, notes, integral, top)
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
                 flag_entries_peak=int(stats.get("flag_entries_peak", 0)), seconds=time.perf_counter() - start,
                 notes=notes)


def _constrained_ranges(model: FrontModel, names: list[str], sign: np.ndarray, nadir: np.ndarray, ranges: str,
                        options: SolverOptions, notes: list[str], given: Mapping[int, float]) -> np.ndarray:
    """The lower end of each constrained objective's range (maximised form): as given, the payoff nadir, or safely
    below it."""
    nadir = nadir.copy()
    p = len(names)
    for k, value in given.items():
        nadir[k] = value
    if ranges == "safe":
        for k in range(1, p):
            if k in given:
                continue
            model.set_objective({names[k]: -1.0})
            result, values = _solve(model, options, f"the lowest {names[k]} (safe range)")
            low = sign[k] * values[names[k]]  # type: ignore[index]
            if result.bound is not None and np.isfinite(result.bound):
                low = min(low, -float(result.bound))  # the bound of max -g_k: no plan has g_k below it
            nadir[k] = min(nadir[k], low)
        if p > 2 and len(given) < p - 1:
            notes.append("three objectives: the payoff table's nadir is only an estimate, so each constrained range "
                         "without a given nadir starts at the objective's minimum over the feasible set (safe, "
                         "possibly wide)")
    elif ranges != "payoff":
        raise ValueError(f"unknown ranges {ranges!r}; known: payoff, safe")
    elif p > 2 and len(given) < p - 1:
        notes.append("three objectives with ranges='payoff': the payoff table's nadir is an estimate, and points "
                     "beyond it are missed")
    return nadir


class _Flags:
    """AUGMECON-R's flag array, kept sparse: its memory grows with the solves, not with the grid.

    An infeasible grid point is kept as a corner: every point at least as tight in each constrained objective is
    infeasible too. A solved point is kept as its box, cells ``lo <= cell < hi`` (innermost index first), every one
    of which returns the same solution; a cell in boxes jumps to the largest ``hi[0]`` among them. Boxes wholly
    behind the outer loops (objectives 3..p) are dropped as the loops pass them.
    """

    def __init__(self, p: int) -> None:
        self.corners: list[tuple[int, ...]] = []
        self.lo = np.zeros((0, p - 1), dtype=np.int64)
        self.hi = np.zeros((0, p - 1), dtype=np.int64)
        self.peak = 0

    def infeasible(self, cell: tuple[int, ...]) -> bool:
        """Whether a known infeasible point is at most as tight as `cell` in every constrained objective."""
        return any(all(c >= k for c, k in zip(cell, corner, strict=True)) for corner in self.corners)

    def jump(self, cell: tuple[int, ...]) -> int:
        """The innermost index the boxes holding `cell` reach (cell[0] itself when none does)."""
        if not len(self.lo):
            return cell[0]
        at = np.asarray(cell)
        inside = np.all((self.lo <= at) & (at < self.hi), axis=1)
        return int(self.hi[inside, 0].max()) if inside.any() else cell[0]

    def add_infeasible(self, cell: tuple[int, ...]) -> None:
        self.corners.append(cell)
        self.peak = max(self.peak, len(self.corners) + len(self.lo))

    def add_box(self, lo: tuple[int, ...], hi: tuple[int, ...]) -> None:
        self.lo = np.vstack([self.lo, lo])
        self.hi = np.vstack([self.hi, hi])
        self.peak = max(self.peak, len(self.corners) + len(self.lo))

    def passed(self, outer: tuple[int, ...]) -> None:
        """The outer loops are at `outer` (objectives 3..p) and never go back: drop boxes they have left."""
        if len(self.lo) and outer:
            keep = self.hi[:, -1] > outer[-1]  # the outermost index only grows
            self.lo, self.hi = self.lo[keep], self.hi[keep]


def _augmecon(model: FrontModel, names: list[str], sign: np.ndarray, ideal: np.ndarray, nadir: np.ndarray,
              method: str, points: int | Mapping[str, int], steps: Mapping[str, float] | None, max_points: int,
              augment: float, options: SolverOptions, progress: Progress | None,
              notes: list[str], integral: bool = False, top: _Found | None = None) -> tuple[list[_Found], dict]:
    """AUGMECON2 over the grid of the constrained objectives 2..p, with AUGMECON-R's flag array (module docstring);
    `integral`: every objective integer-valued, so integral lexicographic weights replace the slack augmentation.
    `top` (two objectives, representation mode): the payoff row's plan of the second objective, taken as the grid's
    tightest point instead of solving there. At a nonzero gap that point is the most of the second objective within
    the gap, its first objective not optimised: solved, it asks for the most of the first among plans at least as
    good in the second as one already within the gap of its optimum, a sliver of the plans (on the demo, more
    than four minutes where every other point takes seconds)."""
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
    if integral:  # W g_1 + sum g_k: no plan's gain in the others (at most sum of spans) outweighs a unit of g_1
        heavy = 1.0 + math.ceil(sum(span_of.values()) - 1e-9)
        model.set_objective({names[0]: heavy, **{names[k]: 1.0 for k in range(1, p)}})
    else:
        slack_weights = {names[k]: augment * 10.0 ** -(k - 1) / span_of[names[k]] for k in range(1, p)}
        model.set_objective({names[0]: 1.0}, slack_weights)
    for k in names:
        model.set_bound(k, None)

    flags = _Flags(p)
    use_flags = method != "augmecon2-classic" or p == 2
    found: list[_Found] = []
    grid_solves = infeasible = done = 0
    capped = False
    if p == 2 and not (steps and names[1] in steps):  # representation mode: from the tightest point down
        for i in range(counts[0] - 1, -1, -1):
            if grid_solves >= max_points:
                capped = True
                break
            e = (nadir[1] + i * grid_steps[names[1]],)
            if top is not None and i == counts[0] - 1 and counts[0] > 1:
                found.append(replace(top, epsilon=e, found_by=f"{top.found_by} (grid top)"))
                notes.append(f"the grid's tightest point ({names[1]} at its most) is the payoff row's plan, within "
                             f"the gap of the most {names[1]}; its {names[0]} is not optimised there")
                continue
            model.set_epsilon(names[1], e[0])
            result, point = _timed_solve(model, options, sign, names, "grid", e)
            grid_solves += 1
            if point is None:
                infeasible += result.status == Status.INFEASIBLE
                notes.append(f"grid point {float(e[0]):g}: no plan ({result.message})")
            else:
                found.append(point)
            if progress:
                progress("grid", grid_solves, total)
        return found, {"grid_points": total, "solves": grid_solves, "grid_solves": grid_solves,
                       "infeasible": infeasible, "capped": capped, "steps": grid_steps, "flag_entries_peak": 0}
    outer = [range(c) for c in counts[1:]][::-1]  # outer loops, outermost first (objective p ... 3)
    for rest in itertools.product(*outer):
        index_outer = tuple(reversed(rest))  # indices of objectives 3..p
        flags.passed(index_outer)
        if use_flags and p > 2 and flags.infeasible((0, *index_outer)):
            done += counts[0]
            continue
        for j, k in enumerate(range(2, p)):
            model.set_epsilon(names[k], nadir[k] + index_outer[j] * grid_steps[names[k]])
        i = 0
        while i < counts[0]:
            cell = (i, *index_outer)
            if use_flags and flags.infeasible(cell):
                done += counts[0] - i
                break
            if use_flags and flags.jump(cell) > i:
                reach = flags.jump(cell)
                done += reach - i
                i = reach
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
                flags.add_infeasible(cell)
                done += counts[0] - i
                break
            jumps = [int(math.floor((point.g[k] - e[k - 1]) / grid_steps[names[k]] + 1e-9))
                     if grid_steps[names[k]] > 0 else 0 for k in range(1, p)]
            jumps = [max(b, 0) for b in jumps]
            found.append(point)
            if use_flags:
                flags.add_box(cell, tuple(min(c + b + 1, n) for c, b, n in zip(cell, jumps, counts, strict=True)))
            done += jumps[0] + 1
            i += jumps[0] + 1
            if progress:
                progress("grid", min(done, total), total)
        if capped:
            break
    stats = {"grid_points": total, "solves": grid_solves, "grid_solves": grid_solves, "infeasible": infeasible,
             "capped": capped, "steps": grid_steps, "flag_entries_peak": flags.peak}
    return found, stats


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
