"""The front engine's solves and its other methods: a solve that names its point and tries again after an error,
the plans found on the way, refinement, lexicographic extremes and weighted sums (optiland.analysis.front_engine
runs them; its module docstring says what each method gives)."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from optiland.analysis.front_model import FrontModel
from optiland.errors import InfeasibleError, NoPlanError, OptilandError
from optiland.mip.solver import SolveResult, SolverOptions, Status

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is "payoff" or "grid"; grid points done (solved or skipped) of total."""


def _tolerance(value: float, gap: float = 0.0) -> float:
    """How far below a value found its lexicographic bound goes: the solver's feasibility tolerance, or the MIP gap
    asked (`gap`, relative) when larger. A stage solved to a gap knows its optimum only within that gap, so the next
    stage keeps every plan within it of the value found: bounded at the value itself, the next stage searched for
    plans at least as good as one already within the gap of the optimum (on the demo, maximising income with the
    service index held at its value took 64 s, the index itself 4.7 s)."""
    return max(1e-7 * max(1.0, abs(value)), gap * abs(value))


RETRIES: tuple[dict[str, Any], ...] = ({"presolve": "off"}, {"presolve": "off", "highs": {"mip_lp_solver": "ipm"}})
"""How a solve that ended in an error is tried again, in turn: without presolve, then also by interior point."""


class SolveError(OptilandError):
    """The solver failed at a point (not infeasible, not a time limit), and again when solved another way."""


def _solve(model: FrontModel, options: SolverOptions, where: str = "a solve",
           strict: bool = True) -> tuple[SolveResult, dict[str, float] | None]:
    """Solve; the plan's objective values, or None when there is no plan (an error if `strict` and not infeasible).
    A solve error is solved again as RETRIES say; if every way fails, SolveError names `where`."""
    result = model.solve(options)
    messages = []
    for change in RETRIES:
        if result.status != Status.ERROR:
            break
        messages.append(result.message)
        highs = {**options.highs, **change.get("highs", {})}
        result = model.solve(replace(options, **{**change, "highs": highs}))
    if result.status == Status.ERROR:
        messages.append(result.message)
        raise SolveError(f"the solver failed at {where}: {'; '.join(messages)} (solved {len(messages)} times: as "
                         "asked, without presolve, and without presolve by interior point)")
    if result.status == Status.INFEASIBLE:
        return result, None
    if not result.status.has_plan:
        if strict:
            raise OptilandError(f"the solver found no plan: {result.message}")
        return result, None
    if result.status == Status.TIME_LIMIT and getattr(model, "x", True) is None:  # the limit came before any plan
        return result, None
    return result, model.values()


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
    where = found_by
    if epsilon is not None:
        bounds = [f"{k} {'>=' if sign[j + 1] > 0 else '<='} {sign[j + 1] * v:g}"
                  for j, (k, v) in enumerate(zip(names[1:], epsilon, strict=False))]
        where = f"{found_by} point {', '.join(bounds)}"
    result, values = _solve(model, options, where, strict=False)
    if values is None:
        return result, None
    g = sign * np.array([values[k] for k in names])
    return result, _Found(g, values, result, time.perf_counter() - t0, model.decision(), epsilon, found_by)


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
                if result.status == Status.INFEASIBLE:
                    raise InfeasibleError(f"no feasible plan while optimising {k} ({result.message})")
                raise NoPlanError(f"no plan found while optimising {k} ({result.message}); nothing is known "
                                  "about whether one exists: give more time per solve (--time-limit)")
            g = point.g[names.index(k)]
            model.set_bound(k, g - _tolerance(g, options.mip_rel_gap))
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
