r"""Township decomposition for county and regional scale: one small model per township, solved in parallel.

At a million parcels the monolithic model has ~33 million columns and does not fit in memory (benchmarks/results/
build.csv: 21.7 GB peak for the matrix build and hand-over). Its structure helps: every constraint family is per
parcel, village or township except a few county rows that couple the townships, the *coupling rows*: ``budget``,
``transfer_budget``, ``market[g]`` and ``price_step_width[g,k]`` (optiland.model.formulation). This module

1. **Allocates** each coupling limit :math:`b_r` to the townships in shares :math:`b_{r,t}` with
   :math:`\sum_t b_{r,t} = b_r` (resource-directive decomposition; the share rule is :func:`shares`). Every
   township's own model with its shares is a restriction of the county model, so the union of the township plans
   is a feasible county plan, and its objective is the sum of theirs.
2. **Normalises** the service index by the county's reference (optiland.pipeline.reference): the parcels'
   potential adds up over parcels, so the county's is exactly the sum of the townships' (each computed in closed
   form from its allowed rows, no solve), or the scenario's pinned values. Every objective coefficient is then the
   county's, the same as in the monolithic model.
3. **Bounds** the county optimum by Lagrangian relaxation of the coupling rows, over the townships' LP
   relaxations: for any prices :math:`\lambda \ge 0` on the coupling rows (all of them :math:`\le` rows),

   .. math:: z^* \le L(\lambda) = \sum_t \max_{x_t \in \bar X_t} \left(c_t - \lambda^\top C_t\right) x_t
             + \lambda^\top b,

   where :math:`\bar X_t` is township t's feasible set without its coupling rows (weak duality). Each term is
   bounded by the township's LP relaxation tightened by branching on its villages' fractional herds and ranger
   posts (``colgen.integer_bound``: at 100,000 parcels the LP alone left 0.045% of integrality gap per township,
   most of the county gap, measured by hand on township T01; the branches close nearly all of it). The prices are
   the townships' LP duals of their share rows, averaged with the shares as weights, then improved round by round
   by Kelley's cutting planes in a trust region (:func:`_next_prices`; the best :math:`L` approaches the county LP
   relaxation's optimum). The true gap of the county plan against :math:`L(\lambda)` is reported; a plan
   is called optimal only when that gap is within the one asked for.

Townships run as independent tasks: serially, on local processes, or on a Dask cluster when an address is given
(the same executors as optiland.analysis.sweep). The plan is written as ``solve`` writes it (plan.gpkg, villages.csv,
townships.csv, run.json), so ``optiland check`` verifies it against the county model's every row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import InfeasibleError, NoPlanError, OptilandError
from optiland.io.catalog import Catalog
from optiland.io.inputs import Inputs
from optiland.io.scenario import Scenario
from optiland.mip.solver import INF, MatrixLP, SolveResult, SolverOptions, Status, highs_version, relative_gap
from optiland.model.backend import Solution
from optiland.model.problem import PlanningProblem, build_problem
from optiland.pipeline.outcome import Prepared, RunOutcome, objective_terms

COUPLING = ("budget", "transfer_budget", "market", "price_step_width")
"""Row families that couple townships (the county-wide limits)."""


STAGE_SHARE = {"need": 0.1, "potential": 0.1, "plan": 0.8, "bound": 1.0}
"""The share of the time still left that each stage may use (the bound stage takes the rest, over its rounds)."""


TOWNSHIP_ACCEPT_GAP = 2e-3
"""A township plan this close to its township's LP bound is kept without more branch and bound. Measured on
township T01 of the generated 100,000-parcel instance: LP 0.273180, repair 0.272830 (0.13% below) after a root
node of 50 s whose bound moved 0.0001%; the county gap reports what is left."""
TOWNSHIP_POLISH_NODES = 100
"""Once a township's repair has a plan, its restricted MIP takes at most this many branch-and-bound nodes (a work
limit: the plan does not depend on the machine's load; its share of the stage's time is only a ceiling). At
1,000,000 parcels the twelve townships whose repair was not within TOWNSHIP_ACCEPT_GAP ran their MIPs for 24-50 s
each (their whole share of the stage: 450 of the stage's 800 worker-seconds) and ended 0.13-0.25% below their LP
bounds all the same; at 100,000 parcels asking them for 0.05% tripled the stage and lifted the county objective by
2.4e-5. (It was TOWNSHIP_POLISH_SECONDS = 5 s until the clock was taken out of every stage, issue 20.)"""
TOWNSHIP_MIP_OPTIONS = {"mip_pool_soft_limit": 500, "mip_lp_age_limit": 2}
"""HiGHS options of the townships' repair MIPs: a smaller cut pool aged faster ends the root cut loop early (same
township: the repair in 8.7 s instead of 48.6 s, 0.14% instead of 0.13% below the LP bound)."""


BOUND_ROUNDS = 12
"""Rounds of prices for the Lagrangian bound after the first (Kelley's cutting planes, `_next_prices`); they stop
early once the gap asked for is proven, the time limit nears, or the bound stalls (BOUND_STALL)."""
BOUND_STALL = (1, 0.01)
"""The rounds stop after this many in a row that lower the best bound by less than this share of what separates
it from the plan. At 100,000 parcels the first round's prices (the townships' duals, capped) gave 0.952256 and
twelve more rounds 0.952252, against a plan of 0.951247: the rest of the gap is the townships' integrality gap,
which no prices close, and the twelve rounds cost 54 of the run's 183 s. In three 1,000,000-parcel runs the second
round's Kelley step gave 27,058-38,297 and the third 0.9645 against a first of 0.95035 (50 s a round)."""


NEED_MARGIN = 0.02
"""Budget added to a township's least establishment cost from its LP relaxation (the integer plan needs a little
more: whole parcels, whole cattle)."""


@dataclass
class Shares:
    """Each township's share of the county's coupling limits (fractions summing to 1 per resource)."""

    budget: np.ndarray
    transfer: np.ndarray
    area: np.ndarray
    """Market areas and price steps follow land (unless `market` has a pair's shares)."""
    market: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    """Shares of a (option, variant) market cap by need."""

    def by_need(self, need: np.ndarray, total: float, resource: str | tuple[str, str] = "budget") -> Shares:
        """Shares of a resource (budget, or transfer) that first cover each township's least use of it (its need,
        with NEED_MARGIN), then split what is left as before (budget by area, transfers by population); where the
        needs exceed the county total, shares in proportion to need."""
        need = need * (1.0 + NEED_MARGIN)
        if need.sum() <= 0 or total <= 0:
            return self
        rest = self.area if isinstance(resource, tuple) else getattr(self, resource)
        if need.sum() >= total:
            split = need / need.sum()
        else:
            split = (need + (total - need.sum()) * rest) / total
        if isinstance(resource, tuple):  # a market pair
            return Shares(**{**self.__dict__, "market": {**self.market, resource: split}})
        return Shares(**{**self.__dict__, resource: split})


def split_inputs(inputs: Inputs) -> list[tuple[str, Inputs]]:
    """One Inputs per township (its villages and their parcels), in township order."""
    villages = inputs.villages
    parts = []
    for township in sorted(villages["township"].unique()):
        own = villages[villages["township"] == township]
        parcels = inputs.parcels[inputs.parcels["village"].isin(set(own["village"]))]
        parts.append((str(township), Inputs(parcels=parcels, villages=own.reset_index(drop=True),
                                            crs_note=inputs.crs_note, hashes=inputs.hashes)))
    return parts


def shares(parts: Sequence[tuple[str, Inputs]], catalog: Catalog) -> Shares:
    """Shares by each township's land: the establishment budget and market areas by area, the transfer budget by
    population (compensation and ranger posts follow people and closed hills)."""
    area = np.array([float(p.parcels["area_mu"].sum()) for _, p in parts])
    population = np.array([float(p.villages["population"].sum()) for _, p in parts])
    by_area = area / area.sum()
    by_people = population / population.sum() if population.sum() > 0 else by_area
    return Shares(budget=by_area, transfer=by_people, area=by_area)


def _township_scenario(scenario: Scenario, township: str, villages: set[str]) -> Scenario:
    """The scenario restricted to one township: its own township budget and village floors only."""
    constraints = scenario.constraints.model_copy(update={
        "township_budgets": {k: v for k, v in scenario.constraints.township_budgets.items() if k == township},
        "village_floors": {k: v for k, v in scenario.constraints.village_floors.items() if k in villages},
        **{name: {k: v for k, v in getattr(scenario.constraints, name).items() if k in villages or k == township}
           for name in ("village_no_worse_off", "village_income_growth", "village_transfer_shares")},
        "township_floors": {k: v for k, v in scenario.constraints.township_floors.items() if k == township},
        "township_areas": {k: v for k, v in scenario.constraints.township_areas.items() if k == township},
    })
    return scenario.model_copy(update={"constraints": constraints})


def _apply_shares(problem: PlanningProblem, county: dict[str, Any], index: int, share: Shares) -> None:
    """Put township `index`'s shares of the county limits (params, market, price_steps) into its problem."""
    params, market, steps = county["params"], county["market"], county["price_steps"]
    if params.get("budget") is not None:
        problem.params["budget"] = float(params["budget"]) * share.budget[index]
    if params.get("transfer_budget") is not None:
        problem.params["transfer_budget"] = float(params["transfer_budget"]) * share.transfer[index]
    problem.market = {pair: cap * share.market.get(pair, share.area)[index] for pair, cap in market.items()}
    problem.price_steps = {pair: [(start * share.area[index], factor) for start, factor in s]
                           for pair, s in steps.items()}


@dataclass
class TownshipTask:
    """Everything a worker needs for one township (picklable)."""

    index: int
    township: str
    scenario: Scenario
    catalog: Catalog
    inputs: Inputs
    county: dict[str, Any]
    shares: Shares
    options: SolverOptions
    stage: str  # "need" | "potential" | "plan" | "bound"
    scales: dict[str, float] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    columns: np.ndarray | None = None
    """Columns (township model positions) the township's LPs of the stage before used: column generation starts
    with them too."""
    deadline: float | None = None
    """The command's wall-clock deadline (time.time()): the task's solves end by it, whatever its share."""


def _build(task: TownshipTask) -> tuple[PlanningProblem, Any]:
    from optiland.model.matrix import MatrixBackend

    villages = set(task.inputs.villages["village"])
    problem = build_problem(_township_scenario(task.scenario, task.township, villages), task.catalog, task.inputs)
    _apply_shares(problem, task.county, task.index, task.shares)
    if task.stage == "need":  # the least establishment cost of the township's own targets, whatever the budget
        problem.params["budget"] = None
    backend = MatrixBackend()
    backend.build(problem)
    return problem, backend


def _lp_relaxation(lp: MatrixLP, options: SolverOptions, reached: bool = False,
                   start: np.ndarray | None = None, villages: np.ndarray | None = None,
                   tolerance: float | None = None) -> tuple[float, np.ndarray, np.ndarray] | None:
    """Solve an LP relaxation in this process; (objective, x, row duals), or None if not solved to optimality
    (in time). With strategy colgen, by column generation (optiland.mip.colgen): the objective is then its Lagrangian
    bound (valid for the whole relaxation), x and the duals the restricted LP's, and `start` (a 0/1 vector) marks
    columns its restricted model starts with besides its own picks. `villages` (the village of each parcel column,
    -1 elsewhere): the objective is the tighter bound of `colgen.integer_bound`, which branches on the villages'
    fractional herds and ranger posts (a bound of the MIP, no longer of the LP). `tolerance`: column generation
    stops once its bound is within it of the restricted LP (relative; colgen.LP_TOLERANCE if None). `reached`:
    the objective is the restricted LP's value unless the bound came within that tolerance, then the bound."""
    from optiland.mip.solver import _highs, c_stdout, set_lp_method

    if options.strategy == "colgen":
        from optiland.mip import colgen

        began = time.perf_counter()
        tolerance = colgen.LP_TOLERANCE if tolerance is None else tolerance
        relaxation = colgen.relax(lp, options, start, tolerance=tolerance)
        if relaxation.bound is None or relaxation.x is None or relaxation.artificial > 1e-7:
            return None
        if villages is not None and not reached:
            left = options.time_limit - (time.perf_counter() - began)
            tighter, _ = colgen.integer_bound(lp, relaxation, villages, SolverOptions(
                **{**options.as_dict(), "time_limit": max(left, 0.5)}))
            if tighter is not None:
                relaxation = replace(relaxation, bound=min(relaxation.bound, tighter) if lp.sense == "max"
                                     else max(relaxation.bound, tighter))
        if reached:
            # the bound once it is within the tolerance (an upper bound of the LP optimum, close to it); else the
            # value the generated columns reach: where the rounds end on the clock, the bound can be far above it
            close = relative_gap(relaxation.value, relaxation.bound)
            value = relaxation.bound if close is not None and close <= tolerance else relaxation.value
            return value, relaxation.x, relaxation.y
        return relaxation.bound, relaxation.x, relaxation.y

    relaxed = MatrixLP(**{**lp.__dict__, "integer": np.zeros_like(lp.integer)})
    with c_stdout():  # HiGHS prints a banner when constructed
        h = _highs(relaxed, options, options.time_limit)
    set_lp_method(h, relaxed, options)  # a basic solution: its row duals price the coupling rows
    h.run()
    if h.modelStatusToString(h.getModelStatus()) != "Optimal":
        return None
    solution = h.getSolution()
    return (float(h.getInfo().objective_function_value), np.array(solution.col_value),
            np.array(solution.row_dual))


def run_task(task: TownshipTask) -> dict[str, Any]:
    """One township's work for a stage. potential: each service's potential on the township's parcels (no model,
    no solve); plan: the plan for the scenario's objective with the county's index reference, and the LP duals of
    its share rows; bound: its term of L(lambda)."""
    if task.stage == "potential":
        from optiland.pipeline.reference import potential

        villages = set(task.inputs.villages["village"])
        problem = build_problem(_township_scenario(task.scenario, task.township, villages), task.catalog, task.inputs)
        return {"index": task.index, "township": task.township, "potential": potential(problem)}
    if task.deadline is not None and time.time() >= task.deadline:  # no model is built once the time is up
        late = {"index": task.index, "township": task.township, "need": None, "usage": None, "bound_term": None}
        if task.stage == "plan":
            late["late"] = (f"township {task.township}: the time limit was reached before its plan started; give "
                            "the run more time")
        return late
    start = time.perf_counter()
    problem, backend = _build(task)
    if task.deadline is not None:  # the build counts against the command's time limit
        left = max(task.deadline - time.time(), 0.01)
        if left < task.options.time_limit:
            task = replace(task, options=SolverOptions(**{**task.options.as_dict(), "time_limit": left}))
    params = problem.params
    out: dict[str, Any] = {"index": task.index, "township": task.township, "build_seconds": backend.build_seconds}
    if task.stage == "need":
        # the least establishment cost of the township's own targets with every county limit relaxed, and what
        # that plan uses of each county limit (transfers, market areas): shares that cover these needs keep every
        # township feasible (for the LP)
        backend.set_objective({"cost": 1.0}, "min")
        lp = backend.matrix()
        rows = _coupling_rows(backend)
        free_lower, free_upper = lp.row_lower.copy(), lp.row_upper.copy()
        free_lower[rows], free_upper[rows] = -INF, INF
        lp = MatrixLP(**{**lp.__dict__, "row_lower": free_lower, "row_upper": free_upper})
        relaxation = _lp_relaxation(lp, task.options)
        out["need"] = None if relaxation is None else max(relaxation[0], 0.0)
        used = None if relaxation is None else lp.A[rows] @ relaxation[1]
        out["usage"] = None if used is None else {
            _key(lp.row_names[i]): max(float(u), 0.0) for i, u in zip(rows, used, strict=True)}
    elif task.stage == "plan":
        backend.es_scale = task.scales
        backend.set_objective(objective_terms(problem), params["sense"], scale=task.scales, weights=params["weights"])
        lp = backend.matrix()
        # column generation starts from the services' LP supports too (by hand, 100,000 parcels: 21 s, not 41 s)
        result = backend.solve(task.options, columns=task.columns)
        if result.status != Status.INFEASIBLE and (not result.status.has_plan or result.x is None):
            # no plan found, none proven impossible: run again with the time the other townships leave
            out["late"] = (f"township {task.township}: no plan found in its {task.options.time_limit:.0f} s share of "
                           f"the time limit ({result.message}); give the run more time")
            return out
        if result.status == Status.INFEASIBLE:
            # infeasible with its shares proves nothing about the county (other shares may do); infeasible with the
            # county limits lifted altogether does: the township's own rows are rows of the county model
            if _infeasible_alone(backend, lp, task.options):
                raise InfeasibleError(f"township {task.township} cannot meet its own targets whatever its share of "
                                      f"the county limits ({result.message}); solve it alone to see which village "
                                      "and target")
            raise NoPlanError(f"township {task.township} has no plan with its shares of the county limits "
                              f"({_shares_text(problem)}) though it has one without them: the decomposition found "
                              "no county plan and nothing is known about whether one exists; solve the county as "
                              "one model (--strategy auto)")
        solution = backend.solution(result)
        out.update({
            "objective": float(result.objective), "status": result.status.value, "gap": result.gap,
            "allowed": problem.allowed.iloc[solution.chosen_rows()].reset_index(drop=True),
            "parcels": problem.parcels, "villages": problem.villages, "townships": problem.townships,
            "herd": solution.herd, "posts": solution.posts, "segments": solution.segments,
            "size": dict(zip(("variables", "constraints", "nonzeros"), lp.shape, strict=True)),
            "binaries": int(lp.integer.sum()),
        })
        duals = result.row_dual
        if duals is None:
            relaxation = _lp_relaxation(lp, task.options)
            duals = None if relaxation is None else relaxation[2]
        rows = _coupling_rows(backend)
        out["duals"] = {} if duals is None else {_key(lp.row_names[i]): abs(float(duals[i])) for i in rows}
        # where the bound's column generation starts: the services' supports and the plan's columns
        chosen = np.flatnonzero(np.asarray(result.x) > 0.5)
        out["columns"] = chosen if task.columns is None else np.union1d(task.columns, chosen)
    else:
        backend.es_scale = task.scales
        backend.set_objective(objective_terms(problem), params["sense"], scale=task.scales, weights=params["weights"])
        lp = backend.matrix()
        rows = _coupling_rows(backend)
        keys = [_key(lp.row_names[i]) for i in rows]
        price = np.zeros(len(lp.row_lower))
        price[rows] = [task.prices.get(k, 0.0) for k in keys]
        sign = 1.0 if lp.sense == "max" else -1.0
        c = lp.c - sign * (lp.A.T @ price)
        row_lower, row_upper = lp.row_lower.copy(), lp.row_upper.copy()
        row_lower[rows], row_upper[rows] = -INF, INF
        relaxed = MatrixLP(**{**lp.__dict__, "c": c, "row_lower": row_lower, "row_upper": row_upper})
        # L_t(lambda) of the township's MIP, bounded tighter than by its LP: branching on the villages' fractional
        # herds and ranger posts (colgen.integer_bound)
        start = None
        if task.columns is not None:
            start = np.zeros(len(lp.c))
            start[task.columns] = 1.0
        relaxation = _lp_relaxation(relaxed, task.options, start=start, villages=backend.column_villages())
        out["bound_term"] = None if relaxation is None else relaxation[0]
        x = np.zeros(len(lp.c)) if relaxation is None else relaxation[1]
        out["usage"] = dict(zip(keys, map(float, lp.A[rows] @ x), strict=True))
        # c x at no prices, of the relaxed LP's solution: the cut L_t(lambda) >= c x - lambda . usage
        out["value_at_zero"] = float(lp.c @ x + lp.offset)
    out["seconds"] = time.perf_counter() - start
    return out


def _shares_text(problem: PlanningProblem) -> str:
    """The township's shares of the county limits, for an error message."""
    parts = [f"{name} {problem.params[name]:,.0f} yuan" for name in ("budget", "transfer_budget")
             if problem.params.get(name) is not None]
    return ", ".join(parts) or "no county budgets"


def _infeasible_alone(backend: Any, lp: MatrixLP, options: SolverOptions) -> bool:
    """Whether the township model is proven infeasible with its coupling rows lifted (its own targets alone)."""
    from optiland.mip.solver import solve_lp

    rows = _coupling_rows(backend)
    lower, upper = lp.row_lower.copy(), lp.row_upper.copy()
    lower[rows], upper[rows] = -INF, INF
    free = MatrixLP(**{**lp.__dict__, "row_lower": lower, "row_upper": upper})
    return solve_lp(free, SolverOptions(**{**options.as_dict(), "strategy": "auto"})).status == Status.INFEASIBLE


def _coupling_rows(backend: Any) -> np.ndarray:
    """Positions of the coupling rows, from the matrix backend's row range per family (no scan of row names)."""
    spans = [backend.ranges[f] for f in COUPLING if f in backend.ranges]
    return np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, dtype=np.int64)


def _pair(key: str) -> tuple[str, str]:
    """The (option, variant) of a market row key, market['option.variant']."""
    option, variant = key[len("market['"):-len("']")].split(".", 1)
    return option, variant


def _key(row_name: str) -> str:
    """A coupling row's name without its sense suffix (the same in every township)."""
    return row_name.rstrip("<>=")


def _run_all(tasks: list[TownshipTask], workers: int, dask_address: str | None) -> list[dict[str, Any]]:
    """Run the tasks (serially, on local processes or on Dask), reporting townships done of total."""
    from optiland.progress import current

    progress = current()
    progress.step(0, len(tasks))
    if dask_address:
        from dask.distributed import Client, as_completed

        with Client(dask_address) as client:
            futures = client.map(run_task, tasks, pure=False)
            for done, _ in enumerate(as_completed(futures), start=1):
                progress.step(done, len(tasks))
            return client.gather(futures)
    if workers <= 1 or len(tasks) <= 1:
        results = []
        for task in tasks:
            results.append(run_task(task))
            progress.step(len(results), len(tasks))
        return results
    import multiprocessing as mp

    from optiland.mip.lifeline import die_with_parent

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"), initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:  # workers die with this process, whatever kills it
        results = []
        for result in pool.map(run_task, tasks):  # in task order, as each arrives
            results.append(result)
            progress.step(len(results), len(tasks))
        return results


def _next_prices(cuts: list[tuple[float, np.ndarray]], per_round: int, keys: list[str], b: np.ndarray,
                 low: np.ndarray, high: np.ndarray, sense: str) -> dict[str, float]:
    r"""The next coupling prices by Kelley's cutting planes on the Lagrangian dual (maximisation form):

    .. math:: \min_{l \le \lambda \le h,\ \theta} \sum_t \theta_t + b^\top \lambda \quad
              \text{s.t.}\ \theta_t \ge c_t x_t^k - \lambda^\top C_t x_t^k \text{ for every round } k,

    each plane being a township's relaxed LP solution of an earlier round, which lies under the convex
    :math:`L_t(\lambda)`. The master is a small LP (one price per coupling row, one :math:`\theta` per township);
    the bound itself is always :math:`L(\lambda)` evaluated by the townships, so the planes steer, never prove.
    The box [l, h] is a trust region around the best prices so far (plain Kelley jumps between the box's corners).
    `cuts` are in round order, `per_round` townships each; minimisation objectives enter negated."""
    from scipy.optimize import linprog

    sign = 1.0 if sense == "max" else -1.0
    n_k, n_t = len(b), per_round
    rows, rhs = [], []
    for position, (value, usage) in enumerate(cuts):
        row = np.zeros(n_k + n_t)
        row[:n_k] = -usage  # -(theta_t + usage.lambda) <= -(c x)
        row[n_k + position % n_t] = -1.0
        rows.append(row)
        rhs.append(-sign * value)
    objective = np.r_[b, np.ones(n_t)]
    bounds = [(float(lo), float(hi)) for lo, hi in zip(low, high, strict=True)] + [(None, None)] * n_t
    result = linprog(objective, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=bounds, method="highs")
    lam = result.x[:n_k] if result.status == 0 else (low + high) / 2.0
    return dict(zip(keys, map(float, lam), strict=True))


def _limits(county: dict[str, Any]) -> dict[str, float]:
    """The county's coupling limits by row key (as the township models name their share rows)."""
    params = county["params"]
    limits = {}
    if params.get("budget") is not None:
        limits["budget"] = float(params["budget"])
    if params.get("transfer_budget") is not None:
        limits["transfer_budget"] = float(params["transfer_budget"])
    for (option, variant), cap in county["market"].items():
        limits[f"market['{option}.{variant}']"] = float(cap)
    for (option, variant), steps in county["price_steps"].items():
        starts = [0.0] + [s for s, _ in steps]
        for k in range(len(steps)):
            limits[f"price_step_width['{option}.{variant}',{k}]"] = starts[k + 1] - starts[k]
    return limits


@dataclass
class Decomposed:
    """The county plan assembled from township plans, with its Lagrangian bound and how it was found."""

    problem: PlanningProblem
    """The county's problem restricted to the chosen rows (one per parcel), in the input's parcel order."""
    solution: Solution
    objective: float
    bound: float | None
    gap: float | None
    scales: dict[str, float]
    reference: Any
    """The index's reference (optiland.pipeline.reference.Reference), or None for another objective."""
    timed_out: bool
    """Whether a time limit cut the search short (a township's plan, or the bound's rounds)."""
    townships: list[dict[str, Any]]
    seconds: dict[str, float]
    notes: list[str]
    size: dict[str, int]
    limited: float = 0.0
    """Wall seconds under the time limit: from the start of the decomposition to the county plan assembled."""


def assemble(plans: list[dict[str, Any]], inputs: Inputs, scenario: Scenario, catalog: Catalog,
             county: dict[str, Any]) -> tuple[PlanningProblem, Solution]:
    """One county problem holding only the chosen rows, and its plan (x = 1 on every row)."""
    plans = sorted(plans, key=lambda p: p["index"])
    village_offset = np.cumsum([0] + [len(p["villages"]) for p in plans])
    parcels = pd.concat([p["parcels"].assign(village_idx=p["parcels"]["village_idx"] + village_offset[i])
                         for i, p in enumerate(plans)], ignore_index=True)
    position = pd.Index(inputs.parcels["parcel_id"]).get_indexer(parcels["parcel_id"])
    if (position < 0).any() or len(position) != len(inputs.parcels):
        raise OptilandError(f"the townships cover {len(position):,} of {len(inputs.parcels):,} parcels: every parcel "
                            "must lie in a village of the villages table")
    starts = np.cumsum([0] + [len(p["parcels"]) for p in plans])[:-1]
    new_parcel = [np.asarray(position[start:start + len(p["parcels"])]) for start, p in zip(starts, plans, strict=True)]
    order = np.argsort(position, kind="stable")
    parcels = parcels.iloc[order].reset_index(drop=True)
    villages = pd.concat([p["villages"].assign(township_idx=i) for i, p in enumerate(plans)], ignore_index=True)
    townships = pd.concat([p["townships"] for p in plans], ignore_index=True)
    allowed = pd.concat([p["allowed"].assign(parcel=new_parcel[i][p["allowed"]["parcel"].to_numpy()],
                                             village=p["allowed"]["village"].to_numpy() + village_offset[i])
                         for i, p in enumerate(plans)], ignore_index=True)
    allowed = allowed.sort_values("parcel", kind="stable").reset_index(drop=True)
    params = dict(county["params"])
    problem = PlanningProblem(parcels=parcels, villages=villages, townships=townships, allowed=allowed,
                              services=catalog.service_names, params=params, catalog=catalog, scenario=scenario,
                              market=dict(county["market"]), price_steps=dict(county["price_steps"]))
    solution = Solution(x=np.ones(len(allowed)), herd=np.concatenate([p["herd"] for p in plans]),
                        posts=np.concatenate([p["posts"] for p in plans]),
                        segments={(v + village_offset[i], pair, k): area for i, p in enumerate(plans)
                                  for (v, pair, k), area in p["segments"].items()})
    return problem, solution


def solve_by_township(scenario: Scenario, catalog: Catalog, inputs: Inputs, options: SolverOptions, *,
                      workers: int = 2, dask_address: str | None = None, bound_steps: int = BOUND_ROUNDS,
                      progress: Callable[[str], None] | None = None) -> Decomposed:
    """Solve a county or region township by township (module docstring); the county plan, bound and gap."""
    say = progress or (lambda _message: None)
    if scenario.constraints.bounds:
        raise OptilandError("the township decomposition does not take objective bounds ([constraints] bounds "
                            "couple every township); solve without --strategy decompose")
    if options.strategy == "auto":  # townships by column generation of their variants (optiland.mip.colgen)
        options = SolverOptions(**{**options.as_dict(), "strategy": "colgen"})
    # the time limit bounds the whole decomposition (reading the inputs and writing excepted): every task's solves
    # end by this wall-clock deadline, its model build included (time.time(): the same on every worker)
    deadline = time.perf_counter() + options.time_limit
    wall_deadline = time.time() + options.time_limit
    parts = split_inputs(inputs)
    county_probe = build_problem(_township_scenario(scenario, parts[0][0], set(parts[0][1].villages["village"])),
                                 catalog, parts[0][1])
    # the county-wide limits come from the scenario and catalog alone, so any township's problem carries them
    county = {"params": dict(county_probe.params), "market": dict(county_probe.market),
              "price_steps": dict(county_probe.price_steps)}
    share = shares(parts, catalog)
    seconds: dict[str, float] = {}
    notes = [f"township decomposition: {len(parts)} townships, county limits shared to start with by area (market, "
             "price steps) and population (transfer budget)",
             f"township models solved with strategy {options.strategy}"]

    rounds = 1 + max(bound_steps, 0)
    def tasks(stage: str, subset: Sequence[int] | None = None, columns: dict[int, np.ndarray] | None = None,
              **extra: Any) -> list[TownshipTask]:
        """The townships' tasks (all, or `subset`), each with its fair share of the time this stage may take
        (STAGE_SHARE of what is left, spread over the tasks each worker runs in turn), so the user's time limit
        holds overall; `columns`: per township, where its column generation starts."""
        # the largest townships first: the workers then end the stage together (longest processing time first)
        chosen = sorted(range(len(parts)) if subset is None else subset, key=lambda i: -len(parts[i][1].parcels))
        left = max(deadline - time.perf_counter(), 0.0)
        stage_seconds = left * STAGE_SHARE[stage] / (rounds if stage == "bound" else 1)
        per_task = max(stage_seconds * max(workers, 1) / len(chosen), 1.0)
        changes: dict[str, Any] = {"time_limit": per_task}
        if stage == "plan":
            # keep a township plan within TOWNSHIP_ACCEPT_GAP of its LP bound: branch and bound on a township's
            # restricted model cannot prove much more (its integrality gap is of that order) and would use all the
            # time; and cap HiGHS's root cut loop, which holds most of the repair's time and barely moves its bound
            changes["repair_accept_gap"] = max(options.repair_accept_gap, options.mip_rel_gap, TOWNSHIP_ACCEPT_GAP)
            changes["highs"] = {**TOWNSHIP_MIP_OPTIONS, **options.highs}
            if options.polish_seconds is None and options.polish_nodes is None:
                changes["polish_nodes"] = TOWNSHIP_POLISH_NODES
        timed = SolverOptions(**{**options.as_dict(), **changes})
        return [TownshipTask(i, parts[i][0], scenario, catalog, parts[i][1], county, share, timed, stage, **extra,
                             columns=(columns or {}).get(i), deadline=wall_deadline) for i in chosen]

    def run_stage(stage: str, columns: dict[int, np.ndarray] | None = None, **extra: Any) -> list[dict[str, Any]]:
        """A stage over every township; the townships that ran out of their equal share of its time (the larger
        or harder ones) run again with what the others left of it, and only then is running out an error."""
        done = {d["index"]: d for d in _run_all(tasks(stage, None, columns, **extra), workers, dask_address)}
        late = sorted(i for i, d in done.items() if d.get("late"))
        if late and deadline - time.perf_counter() < 1.0:
            raise NoPlanError(done[late[0]]["late"] + (f" (and {len(late) - 1} more townships)" if len(late) > 1
                                                       else "") + "; the time limit is reached: nothing is known "
                                                                  "about whether a county plan exists")
        if late:
            say(f"{len(late)} townships again with the time the others left")
            done.update({d["index"]: d for d in _run_all(tasks(stage, late, columns, **extra), workers, dask_address)})
            still = [done[i]["late"] for i in late if done[i].get("late")]
            if still:
                raise NoPlanError(still[0] + (f" (and {len(still) - 1} more townships)" if len(still) > 1 else "")
                                  + "; nothing is known about whether a county plan exists")
            notes.append(f"{stage}: {len(late)} townships ran out of their equal share of the stage's time and ran "
                         "again with what the others left")
        return [done[i] for i in sorted(done)]

    def out_of_time(stage: str) -> None:
        """No stage starts once the time limit is reached: without plans nothing is known."""
        if time.perf_counter() >= deadline:
            raise NoPlanError(f"the time limit ({options.time_limit:g} s) was reached before the {stage} of "
                              f"{len(parts)} townships: no plan; nothing is known about whether a county plan "
                              "exists (give more time)")

    budget = county["params"].get("budget")
    transfer = county["params"].get("transfer_budget")
    needs: list[dict[str, Any]] = []
    if (budget is not None or transfer is not None) and len(parts) > 1 and time.perf_counter() < deadline:
        start = time.perf_counter()
        say(f"least establishment cost and transfers of {len(parts)} townships")
        needs = sorted(_run_all(tasks("need"), workers, dask_address), key=lambda n: n["index"])
        if all(n["usage"] is not None for n in needs):
            for key, limit in _limits(county).items():
                if key == "budget" or key.startswith("price_step_width"):
                    continue
                need = np.array([n["usage"].get(key, 0.0) for n in needs])
                resource = "transfer" if key == "transfer_budget" else _pair(key)
                share = share.by_need(need, limit, resource)
            notes.append(f"county transfer budget and market caps shared by need: what each township's least-cost "
                         f"plan (LP) uses, plus {NEED_MARGIN:.0%}, then the rest by population (transfers) or area")
    if budget is not None and needs:
        if all(n["need"] is not None for n in needs):
            need = np.array([n["need"] for n in needs])
            share = share.by_need(need, float(budget))
            over = need.sum() * (1 + NEED_MARGIN) >= float(budget)
            notes.append(f"county budget shared by need: each township's least establishment cost (LP, plus "
                         f"{NEED_MARGIN:.0%}), then the rest by area" + (
                             "; the needs exceed the budget, so shares are in proportion to need" if over else ""))
        else:
            notes.append("a township's least-cost LP did not finish in its time: the budget is shared by area")
    if needs:
        seconds["need"] = time.perf_counter() - start
    scales: dict[str, float] = {}
    reference = None
    if county["params"]["objective"] == "ecosystem_services":
        from optiland.pipeline.reference import reference as index_reference

        out_of_time("index's reference")
        start = time.perf_counter()
        say(f"the index's reference: the potential of {len(parts)} townships")
        potentials = sorted(_run_all(tasks("potential"), workers, dask_address), key=lambda p: p["index"])
        # potentials add up over parcels: the county's is exactly the sum of its townships' (in township order)
        total = {s: float(sum(p["potential"][s] for p in potentials)) for s in county_probe.services}
        reference = index_reference(county_probe, potentials=total)
        if not reference.values:
            raise OptilandError("no ecosystem service can gain on these parcels (every weighted service's potential "
                                "is 0): choose another objective")
        scales = reference.values
        notes += reference.notes
        seconds["reference"] = time.perf_counter() - start
    out_of_time("plans")
    start = time.perf_counter()
    say(f"plans of {len(parts)} townships")
    plans = run_stage("plan", scales=scales)
    seconds["plans"] = time.perf_counter() - start
    plan_columns = {p["index"]: p["columns"] for p in plans}
    objective = sum(p["objective"] for p in plans)
    sense = county["params"]["sense"]
    limits = _limits(county)
    weights = np.array([share.budget[p["index"]] for p in plans])
    prices = {}
    for key in limits:
        values = np.array([p["duals"].get(key, 0.0) for p in plans])
        prices[key] = float(values @ weights / weights.sum())
    start = time.perf_counter()
    cuts: list[tuple[float, np.ndarray]] = []  # per township and round: (c x, usage), the planes under L_t
    keys = list(limits)
    b = np.array([limits[k] for k in keys])
    cap = 2.0 * max(abs(objective), 1e-9) / np.maximum(np.abs(b), 1e-9)  # dearer prices cannot help (lambda.b > 2z)
    # a township's dual prices its own share, which can bind where the county limit does not (a dual of 0.045 on a
    # market cap gave a first bound of 7.6e8 against an objective of 0.95 at 100,000 parcels): start within the cap
    prices = {k: float(min(prices[k], cap[i])) for i, k in enumerate(keys)}
    best_bound, best_prices = None, prices
    # the plans' own time limits count too: a township plan cut off by its share of the time
    timed_out = any(p.get("status") == Status.TIME_LIMIT.value for p in plans)
    n_cuts_per_round = len(plans)
    radius = 0.25
    history: list[float] = []
    stalled = 0
    for round_ in range(rounds):
        if deadline - time.perf_counter() < 0.5:
            notes.append(f"bound rounds stopped after {round_} of {rounds} by the time limit")
            timed_out = True
            break
        say(f"Lagrangian bound, round {round_ + 1}")
        terms = _run_all(tasks("bound", columns=plan_columns, scales=scales, prices=prices), workers, dask_address)
        if any(t["bound_term"] is None for t in terms):
            notes.append(f"bound round {round_ + 1}: a township's LP relaxation did not finish in its time")
            timed_out = True
            break
        bound = sum(t["bound_term"] for t in terms) + (1 if sense == "max" else -1) * sum(
            prices[k] * limits[k] for k in limits)
        better = best_bound is None or (bound < best_bound if sense == "max" else bound > best_bound)
        gain = 0.0 if best_bound is None or not better else abs(best_bound - bound)
        stalled = 0 if best_bound is None or gain > BOUND_STALL[1] * abs(best_bound - objective) else stalled + 1
        if better:
            best_bound, best_prices = bound, dict(prices)
        history.append(bound)
        radius = min(radius * 2.0, 1.0) if better else radius / 4.0
        if (relative_gap(objective, best_bound) or 0.0) <= options.mip_rel_gap or not keys or round_ + 1 == rounds:
            break  # the plan is proven within the gap asked for
        if stalled >= BOUND_STALL[0]:
            notes.append(f"bound rounds stopped after {round_ + 1}: the last {stalled} lowered the bound by less than "
                         f"{BOUND_STALL[1]:.0%} of the gap")
            break
        per_round = (time.perf_counter() - start) / (round_ + 1)
        if round_ + 1 < rounds and time.perf_counter() + per_round > deadline:
            notes.append(f"bound rounds stopped after {round_ + 1} of {rounds} by the time limit")
            timed_out = True
            break
        for t in sorted(terms, key=lambda t: t["index"]):
            cuts.append((t["value_at_zero"], np.array([t["usage"].get(k, 0.0) for k in keys])))
        centre = np.array([best_prices[k] for k in keys])
        # a trust region around the best prices so far; a price at zero may move up to a share of its cap, the
        # shares over all keys adding up to 5% (each 5% let 17 keys together cost 85% of the objective)
        reach = radius * np.maximum(centre, 0.05 * cap / len(keys))
        prices = _next_prices(cuts, n_cuts_per_round, keys, b, np.maximum(centre - reach, 0.0),
                              np.maximum(np.minimum(centre + reach, cap), centre), sense)
    seconds["bound"] = time.perf_counter() - start
    gap = relative_gap(objective, best_bound)
    if history:
        notes.append("Lagrangian bound by round: " + ", ".join(f"{value:.6g}" for value in history))
    if best_bound is not None:
        priced = ", ".join(f"{k}={v:.3g}" for k, v in best_prices.items() if v) or "all zero"
        notes.append(f"Lagrangian bound {best_bound:.6g} from the townships' LP relaxations tightened by branching on "
                     f"their villages' fractional herds and ranger posts, coupling prices: "
                     f"{priced}")
    problem, solution = assemble(plans, inputs, scenario, catalog, county)
    size = {"variables": sum(p["size"]["variables"] for p in plans),
            "constraints": sum(p["size"]["constraints"] for p in plans),
            "nonzeros": sum(p["size"]["nonzeros"] for p in plans),
            "binaries": sum(p["binaries"] for p in plans), "townships": len(plans),
            "largest_township_variables": max(p["size"]["variables"] for p in plans)}
    return Decomposed(problem=problem, solution=solution, objective=objective, bound=best_bound, gap=gap,
                      scales=scales, reference=reference, timed_out=timed_out,
                      townships=[{k: p[k] for k in ("township", "objective", "status", "gap", "seconds")}
                                 for p in plans], seconds=seconds, notes=notes, size=size,
                      limited=time.perf_counter() - (deadline - options.time_limit))


def county_status(gap: float | None, bound: float | None, timed_out: bool, asked: float) -> tuple[Status, str]:
    """The county plan's status and message: optimal within the gap asked for; time_limit when a time limit cut a
    stage short; feasible otherwise (the bound's rounds stalled). A message claims a bound only when there is one."""
    if gap is not None and gap <= asked:
        return Status.OPTIMAL, "township decomposition: county plan within the gap of its Lagrangian bound"
    status = Status.TIME_LIMIT if timed_out else Status.FEASIBLE
    if bound is None:
        return status, ("township decomposition: a feasible county plan; no bound (the bound stage did not finish"
                        + (" in the time limit)" if timed_out else ")") + ", so no gap is known")
    return status, ("township decomposition: a feasible county plan and its Lagrangian bound; gap above the one asked "
                    "for" + (" when the time limit came" if timed_out else ""))


def outcome(scenario: Scenario, catalog: Catalog, inputs: Inputs, read_seconds: float, options: SolverOptions,
            decomposed: Decomposed) -> Any:
    """The county plan as a RunOutcome, for results.make_plan and the same files as `solve`."""
    status, message = county_status(decomposed.gap, decomposed.bound, decomposed.timed_out, options.mip_rel_gap)
    result = SolveResult(status, None, decomposed.objective, decomposed.bound, decomposed.gap,
                         sum(decomposed.seconds.values()), message, solver_version=highs_version())
    prepared = Prepared(scenario, catalog, inputs, decomposed.problem, read_seconds)
    return RunOutcome(prepared=prepared, solution=decomposed.solution, result=result, options=options,
                      backend="matrix", es_scale=decomposed.scales,
                      reference=decomposed.reference, times={"read": read_seconds, **decomposed.seconds,
                                                         "limited": decomposed.limited},
                      model_size={**decomposed.size, "parcels": decomposed.problem.n_parcels},
                      notes=decomposed.notes + _unsupported_notes(decomposed.problem)
                      + [f"{t['township']}: objective {t['objective']:.6g}, gap {t['gap']}, "
                         f"{t['seconds']:.1f} s" for t in decomposed.townships])


def _unsupported_notes(problem: PlanningProblem) -> list[str]:
    """What the decomposition leaves out, said in run.json: the balance rule (optiland.pipeline.run.balance_income)
    needs the county's most income and a county income row, which the township split does not have yet."""
    if problem.params.get("income_gain_share") is None:
        return []
    return [f"balance rule not applied (income_gain_share {problem.params['income_gain_share']:g}): the township "
            "decomposition optimises the objective alone; solve with --strategy auto for a balanced plan"]
