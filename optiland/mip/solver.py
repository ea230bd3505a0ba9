"""HiGHS (through highspy) on a model in matrix form, in a child process with a watchdog.

HiGHS does not check its time limit everywhere (in parts of presolve, for one; ERGO-Code/HiGHS #1501, #2226, #3074,
and ../shared/perf/BASELINE.md), so the limit the user gives is kept by the parent: the solve runs in a child process,
every improving solution and the dual bound are streamed back as they are found, and at the deadline the child is
killed and the best plan and bound received so far are reported.
"""

from __future__ import annotations

import ctypes
import enum
import multiprocessing as mp
import os
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from optiland._paths import solvers_dir
from optiland.errors import InputError, Issue, OptilandError
from optiland.mip.lifeline import guarded

INF = float("inf")


class Status(str, enum.Enum):
    """How a solve ended."""

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    """SIGINT: the best plan and bound so far, if any."""

    @property
    def has_plan(self) -> bool:
        """Whether a plan may come with this status (a time limit or an interruption may still have an incumbent)."""
        return self in (Status.OPTIMAL, Status.TIME_LIMIT, Status.FEASIBLE, Status.INTERRUPTED)


IPM_COLUMNS = 150_000
"""From this many columns up, lp_method "auto" solves LP relaxations by interior point with crossover (at 10,000
parcels, 336,193 columns: 15 s against 39 s by dual simplex, both basic with ~10 fractional parcels; without
crossover the interior solution splits 9,149 of the 10,000 parcels among tied variants, useless for the repair;
benchmarks/lp_methods.py, results/lp_methods.csv)."""
IN_PROCESS_COLUMNS = 5_000
"""Models up to this many columns are solved in the calling process (no fork, no watchdog)."""
STRATEGIES = ("auto", "mip", "colgen")
"""auto: LP relaxation, repair, then the MIP warm-started if the repair plan is not within the gap; mip: the MIP;
colgen: as auto, with the LP relaxation by column generation of the parcels' variants and a Lagrangian bound over
every column (optiland.mip.colgen).
(`solve --strategy decompose` is a pipeline, optiland.pipeline.decompose, whose township models use "auto".)"""


@dataclass
class SolverOptions:
    """HiGHS options; `time_limit` is wall-clock seconds for the whole solve, kept by a watchdog."""

    mip_rel_gap: float = 1e-4
    mip_abs_gap: float = 1e-6
    time_limit: float = 600.0
    threads: int = 1
    random_seed: int = 2020
    presolve: str = "on"
    strategy: str = "auto"
    repair_parcels: int = 400
    repair_accept_gap: float = 0.0
    polish_seconds: float | None = None
    """With strategy colgen: the most the MIP over the generated columns may run once the repair has a plan (None:
    the rest of the time limit). A ceiling in seconds: the plan then depends on the machine's speed (polish_nodes
    does not)."""
    polish_nodes: int | None = None
    """With strategy colgen: the most branch-and-bound nodes of the MIP over the generated columns once the repair
    has a plan; with it set, no whole-model MIP follows (as with polish_seconds). A work limit: the plan does not
    depend on the machine's load (the township decomposition's plan stage uses it)."""
    lp_method: str = "auto"
    """How the LP relaxations of the auto strategy are solved: simplex, ipm (interior point, then crossover to a
    basic solution: few fractional parcels either way), or auto (ipm from IPM_COLUMNS columns up)."""
    highs: dict[str, Any] = field(default_factory=dict)
    preset: str = "default"
    log_file: str | None = None
    """A file for HiGHS's log, or "-" for the terminal (stderr)."""
    objective_target: float | None = None
    """With strategy mip: stop once a plan reaches this objective. Set by column generation, whose bound over every
    column says which plan is good enough."""
    bound_target: float | None = None
    """With strategy mip: stop once the proven bound falls short of this (no plan that good exists in this model).
    Both targets compare values, never the clock: where the search stops does not depend on the machine's load."""

    def __post_init__(self) -> None:
        if self.lp_method not in ("auto", "simplex", "ipm"):
            raise OptilandError(f"lp_method must be auto, simplex or ipm, not {self.lp_method!r}")
        if self.strategy not in STRATEGIES:
            raise OptilandError(f"unknown solver strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}")
        if self.presolve not in ("on", "off", "choose"):
            raise OptilandError(f"presolve must be on, off or choose, not {self.presolve!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain data for run.json."""
        return asdict(self)


def load_preset(name: str, overrides: dict[str, Any] | None = None) -> SolverOptions:
    """Options from `solvers/<name>.toml` (or a path), then overrides (None values ignored)."""
    path = Path(name)
    if not path.suffix:
        path = solvers_dir() / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in solvers_dir().glob("*.toml"))
        raise InputError([Issue(f"unknown solver preset; known: {', '.join(known)}", column="solver.preset",
                                value=name)])
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.pop("description", None)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None and k != "preset"})
    fields = set(SolverOptions.__dataclass_fields__)
    unknown = set(data) - fields
    if unknown:
        raise InputError([Issue("unknown solver option", file=str(path), column=k) for k in sorted(unknown)])
    return SolverOptions(preset=path.stem, **data)


@dataclass
class MatrixLP:
    """A MIP in HiGHS's form: optimise c.x + offset s.t. row_lower <= A x <= row_upper, col bounds, integrality."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray
    sense: str = "max"
    offset: float = 0.0
    col_names: list[str] = field(default_factory=list)
    row_names: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, nonzeros)."""
        return self.A.shape[1], self.A.shape[0], int(self.A.nnz)


@dataclass
class SolveResult:
    """Outcome of one solve: status, best plan found (x), objective, bound and gap, and times."""

    status: Status
    x: np.ndarray | None
    objective: float | None
    bound: float | None
    gap: float | None
    solve_seconds: float
    message: str = ""
    solver: str = "highs"
    solver_version: str = ""
    nodes: int | None = None
    row_dual: np.ndarray | None = None
    """Row duals of the LP relaxation behind the bound, where the strategy keeps them (colgen)."""

    def summary(self) -> dict[str, Any]:
        """Plain data for run.json."""
        return {"status": self.status.value, "objective": self.objective, "bound": self.bound, "gap": self.gap,
                "solve_seconds": round(self.solve_seconds, 3), "message": self.message, "solver": self.solver,
                "solver_version": self.solver_version, "nodes": self.nodes}


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """HiGHS's relative gap |bound - objective| / max(1, |objective|)... using |objective| as HiGHS does."""
    if objective is None or bound is None or not np.isfinite(objective) or not np.isfinite(bound):
        return None
    return abs(bound - objective) / max(abs(objective), 1e-9) if objective != bound else 0.0


def highs_version() -> str:
    """The HiGHS version highspy wraps (read from package metadata: constructing a Highs prints a banner)."""
    from importlib.metadata import version

    return version("highspy")


SMALL_OBJECTIVE = 1e-3
"""Objectives whose largest coefficient is below this are scaled up inside HiGHS (``user_objective_scale``)."""


def objective_scale_power(lp: MatrixLP) -> int:
    """The power of two by which HiGHS scales the objective inside (``user_objective_scale``; 0: none).

    HiGHS's optimality tolerances are absolute (1e-7) and the service index's coefficients are of that order:
    unscaled, an LP is called optimal with improving columns left. HiGHS reports values, bounds and duals unscaled,
    but the values its MIP callbacks see (incumbent, dual bound) are the scaled ones."""
    largest = float(np.abs(lp.c).max()) if len(lp.c) else 0.0
    return int(-round(np.log2(largest))) if 0.0 < largest < SMALL_OBJECTIVE else 0


def _highs(lp: MatrixLP, options: SolverOptions, time_limit: float) -> Any:
    """A Highs object holding the model, with the options set."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(options.log_file))
    if options.log_file == "-":  # --verbose: HiGHS's own log on the terminal (stderr, see _child)
        h.setOptionValue("log_to_console", True)
    elif options.log_file:
        h.setOptionValue("log_file", options.log_file)
        h.setOptionValue("log_to_console", False)
    h.setOptionValue("mip_rel_gap", float(options.mip_rel_gap))
    h.setOptionValue("mip_abs_gap", float(options.mip_abs_gap))
    h.setOptionValue("time_limit", max(float(time_limit), 0.01))
    h.setOptionValue("threads", int(options.threads))
    h.setOptionValue("random_seed", int(options.random_seed))
    h.setOptionValue("presolve", options.presolve)
    power = objective_scale_power(lp)
    if power:
        h.setOptionValue("user_objective_scale", power)
    for key, value in options.highs.items():
        h.setOptionValue(key, value)
    # the array form of passModel takes the numpy buffers as they are (filling a HighsLp's fields converts every
    # element: 6x slower at 100,000 parcels, benchmarks/build.py)
    csc = lp.A.tocsc()
    sense = highspy.ObjSense.kMaximize if lp.sense == "max" else highspy.ObjSense.kMinimize
    h.passModel(len(lp.c), lp.A.shape[0], int(csc.nnz), int(highspy.MatrixFormat.kColwise), int(sense),
                float(lp.offset), np.asarray(lp.c, dtype=float), np.asarray(lp.col_lower, dtype=float),
                np.asarray(lp.col_upper, dtype=float), np.asarray(lp.row_lower, dtype=float),
                np.asarray(lp.row_upper, dtype=float), csc.indptr.astype(np.int32), csc.indices.astype(np.int32),
                csc.data.astype(float), np.where(lp.integer, int(highspy.HighsVarType.kInteger),
                                                 int(highspy.HighsVarType.kContinuous)).astype(np.int32))
    return h


def run_highs(h: Any) -> None:
    """h.run(); if HiGHS refuses to start because another Highs in this process (e.g. Pyomo's appsi_highs) set up its
    global thread scheduler with another thread count ("Option 'threads' is set to 1 but the scheduler has already
    been initialized to use 2 threads": status Not Set), reset the scheduler and run again."""
    import highspy

    if h.run() == highspy.HighsStatus.kError and h.getModelStatus() == highspy.HighsModelStatus.kNotset:
        highspy.Highs.resetGlobalScheduler(True)
        h.run()


def use_ipm(lp: MatrixLP, options: SolverOptions) -> bool:
    """Whether LP relaxations of this model go to interior point (lp_method, or auto by size)."""
    return options.lp_method == "ipm" or (options.lp_method == "auto" and len(lp.c) >= IPM_COLUMNS)


def set_lp_method(h: Any, lp: MatrixLP, options: SolverOptions) -> None:
    """Choose dual simplex or interior point with crossover for an LP relaxation (both end in a basic solution)."""
    if use_ipm(lp, options):
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "on")
    else:
        h.setOptionValue("solver", "simplex")


def partition_rows(lp: MatrixLP) -> np.ndarray:
    """Rows sum x = 1 over binaries only (one choice per parcel): the structure the repair step frees whole."""
    csr = lp.A.tocsr()
    binary = lp.integer & (lp.col_lower == 0) & (lp.col_upper == 1)
    ones = np.ones(csr.nnz, dtype=bool)
    ones &= csr.data == 1.0
    ones &= binary[csr.indices]
    all_ones = np.add.reduceat(ones.astype(int), csr.indptr[:-1]) == np.diff(csr.indptr)
    all_ones &= np.diff(csr.indptr) > 0
    return np.flatnonzero(all_ones & (lp.row_lower == 1.0) & (lp.row_upper == 1.0))


def parcel_columns(lp: MatrixLP, rows: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The one-choice rows `rows` as a CSR matrix, the parcel (position in `rows`) of each of its entries, and the
    parcel of every column of `lp` (-1 for a column in none of them: herds, posts, segments)."""
    csr = sp.csr_matrix(lp.A)[rows]
    row_of = np.repeat(np.arange(len(rows)), np.diff(csr.indptr))
    owner = np.full(lp.A.shape[1], -1, dtype=np.int64)
    owner[csr.indices] = row_of
    return csr, row_of, owner


def _regret(x_lp: np.ndarray, reduced_cost: np.ndarray | None, partition: sp.csr_matrix, row_of: np.ndarray,
            tol: float) -> np.ndarray:
    """Each parcel's regret: the smallest |reduced cost| among its columns the LP did not choose (0 without reduced
    costs)."""
    if reduced_cost is None:
        return np.zeros(partition.shape[0])
    unchosen = x_lp[partition.indices] < tol
    regret = np.full(partition.shape[0], np.inf)
    np.minimum.at(regret, row_of[unchosen], np.abs(reduced_cost[partition.indices[unchosen]]))
    return regret


def repair_bounds(lp: MatrixLP, x_lp: np.ndarray, reduced_cost: np.ndarray | None = None, n_free: int = 0,
                  tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, int]:
    """Fix the binaries of every one-choice row (parcel) whose LP choice is integral, except the rows with a
    fractional value and the `n_free` rows cheapest to change (smallest reduced cost among their unchosen columns),
    which the repair MIP decides. General integers and continuous columns stay free.

    Returns the new column bounds and the number of rows left free.
    """
    lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
    rows = partition_rows(lp)
    if not len(rows):
        return lower, upper, 0
    csr, row_of, owner = parcel_columns(lp, rows)
    regret = _regret(x_lp, reduced_cost, csr, row_of, tol)
    fractional = (x_lp > tol) & (x_lp < 1 - tol)
    free = np.zeros(len(rows), dtype=bool)
    np.logical_or.at(free, row_of, fractional[csr.indices])
    free |= _rows_beside_fractional_integers(lp, x_lp, owner, regret, tol)
    if reduced_cost is not None and n_free > 0:
        order = np.argsort(regret, kind="stable")
        free[order[:n_free]] = True
    fix = ~free[row_of]
    cols = csr.indices[fix]
    values = np.rint(x_lp[cols])
    lower[cols] = values
    upper[cols] = values
    return lower, upper, int(free.sum())


LOCAL_ROW_BINARIES = 50_000
"""A row with at most this many binaries is local (a village's: ~250 parcels of ~33 variants each in the generated
instances); larger ones (county budgets) are not used to decide which parcels the repair frees."""
FREE_PER_BROKEN_ROW = 25
"""Parcels freed in each local row that rounding the integers breaks: the cheapest to change (one or two parcels
usually make up for a head of cattle or a ranger post; 25 leave the repair room)."""


def _rows_beside_fractional_integers(lp: MatrixLP, x_lp: np.ndarray, owner: np.ndarray, regret: np.ndarray,
                                     tol: float) -> np.ndarray:
    """One-choice rows to free because rounding the general integers (a village's herd, ranger posts) breaks a local
    row: with every fractional integer rounded down, and again rounded up, each row whose activity leaves its bounds
    (rounded down: typically the village's income floor; rounded up: the herd's grazing or the posts' closure area)
    gets its FREE_PER_BROKEN_ROW parcels of smallest regret freed; without them the repair MIP is often infeasible,
    or can only round down (the balanced demo: every village's ranger post rounded down, 0.992 to 0, where rounding
    up needed 12 mu more of closure)."""
    free = np.zeros(len(regret), dtype=bool)
    binary = lp.integer & (lp.col_lower == 0) & (lp.col_upper == 1)
    general = lp.integer & ~binary
    changed = np.flatnonzero(general & (np.abs(x_lp - np.rint(x_lp)) > tol))
    if not len(changed):
        return free
    touched = np.unique(lp.A.tocsc()[:, changed].indices)
    broken_sets = []
    for rounding in (np.floor, np.ceil):
        rounded = x_lp.copy()
        rounded[changed] = rounding(x_lp[changed])
        activity = lp.A.tocsr()[touched] @ rounded
        scale = 1e-9 * np.maximum(1.0, np.abs(activity))
        broken_sets.append(touched[(activity < lp.row_lower[touched] - scale)
                                   | (activity > lp.row_upper[touched] + scale)])
    broken = np.unique(np.concatenate(broken_sets))
    if not len(broken):
        return free
    local = lp.A.tocsr()[broken]
    per_row = np.add.reduceat(binary[local.indices].astype(np.int64), local.indptr[:-1]) * (np.diff(local.indptr) > 0)
    local = local[np.flatnonzero(per_row <= LOCAL_ROW_BINARIES)].tocoo()
    keep = binary[local.col]
    pairs = np.unique(np.stack([local.row[keep], owner[local.col[keep]]], axis=1), axis=0)
    pairs = pairs[pairs[:, 1] >= 0]
    if not len(pairs):
        return free
    order = np.lexsort((regret[pairs[:, 1]], pairs[:, 0]))  # by broken row, then cheapest first
    pairs = pairs[order]
    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
    rank = np.arange(len(pairs)) - np.repeat(starts, np.diff(np.r_[starts, len(pairs)]))
    free[pairs[rank < FREE_PER_BROKEN_ROW, 1]] = True
    return free


def _solve_fixed(lp: MatrixLP, lower: np.ndarray, upper: np.ndarray, options: SolverOptions, seconds: float,
                 integer: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Solve `lp` with new column bounds, as a MIP (at most REPAIR_NODES nodes; `seconds` a ceiling against hangs)
    or as its relaxation (by simplex); (x, reduced costs) or None."""
    model = MatrixLP(**{**lp.__dict__, "col_lower": lower, "col_upper": upper,
                        "integer": lp.integer if integer else np.zeros_like(lp.integer)})
    h = _highs(model, options, seconds)
    if integer:
        h.setOptionValue("mip_max_nodes", REPAIR_NODES)
    else:
        set_lp_method(h, model, options)
    run_highs(h)
    if h.getInfo().primal_solution_status != 2:
        return None
    solution = h.getSolution()
    return np.array(solution.col_value, dtype=float), np.array(solution.col_dual, dtype=float)


REPAIR_NODES = 200
"""Branch-and-bound nodes each repair MIP may take: a work limit, not the clock, ends the repair, so its plan does not
depend on the machine's load (the time left is only a ceiling against hangs). Uncapped, a 1,145-unit Marxan set's
repair MIP (822 of 2,014 binaries free) took the whole time limit and the full MIP got none (issue 26); with the
balance rule's income row, the demo's index repair MIP (3,365 columns free) ran on for all of a 600 s limit, short of
its own 0.01% gap (it found 0.725127 in 200 nodes, 0.725151 in 810, against a best known plan of 0.725293 and a
proven bound of 0.725404; profiled by hand, /tmp/eng/rep3.py)."""
BOUND_SECONDS = 0.5
"""The full MIP streams its proven bound to the parent at most this often (when it moved), so that a plan the
watchdog hands back carries the best bound proven, not the root LP's."""


def _blocking_rows(lp: MatrixLP, parcel_rows: np.ndarray, lower: np.ndarray, upper: np.ndarray, options: SolverOptions,
                   seconds: float) -> np.ndarray:
    r"""The rows a repair MIP (bounds `lower`, `upper`) cannot meet: those an elastic copy of it violates, every
    row but the one-choice rows given slacks :math:`s^+_r, s^-_r \ge 0` and the total violation
    :math:`\sum_r (s^+_r + s^-_r) / \max_j |a_{rj}|` minimised (each row's violation in units of its largest
    coefficient; `parcel_rows`: the one-choice rows). Empty if the elastic MIP finds nothing in `seconds`."""
    other = np.setdiff1d(np.arange(lp.A.shape[0]), parcel_rows)
    m = len(other)
    slack = sp.csr_matrix((np.r_[np.ones(m), -np.ones(m)], (np.r_[other, other], np.arange(2 * m))),
                          shape=(lp.A.shape[0], 2 * m))
    size = abs(sp.csr_matrix(lp.A)[other]).max(axis=1).toarray().ravel()
    weight = 1.0 / np.maximum(size, 1e-12)
    elastic = MatrixLP(c=np.r_[np.zeros(len(lp.c)), weight, weight], A=sp.hstack([lp.A, slack], format="csr"),
                       row_lower=lp.row_lower, row_upper=lp.row_upper,
                       col_lower=np.r_[lower, np.zeros(2 * m)], col_upper=np.r_[upper, np.full(2 * m, INF)],
                       integer=np.r_[lp.integer, np.zeros(2 * m, dtype=bool)], sense="min")
    with c_stdout():
        h = _highs(elastic, SolverOptions(**{**options.as_dict(), "mip_rel_gap": 1e-4}), seconds)
    # work ends it, `seconds` (the time left) is only a ceiling: with a 10 s ceiling, the generated 20,000-parcel
    # set's income stage found other blocking rows on a busier machine, and the whole balanced plan changed
    h.setOptionValue("mip_max_nodes", REPAIR_NODES)
    run_highs(h)
    if h.getInfo().primal_solution_status != 2:
        return np.array([], dtype=np.int64)
    s = np.array(h.getSolution().col_value, dtype=float)[len(lp.c):]
    return other[(s[:m] + s[m:]) * weight > 1e-9]


def _free_rows_of(lp: MatrixLP, parcel_rows: np.ndarray, blocking: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray, base: MatrixLP, x_lp: np.ndarray, reduced_cost: np.ndarray,
                  tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """`lower`, `upper` with parcels of the rows `blocking` freed to `base`'s bounds: in each row, the parcels whose
    fixed choice has a coefficient in it (they can make room in it) and the FREE_PER_BROKEN_ROW others cheapest to
    change (they can add to it). Freeing every parcel of a market row (3,722 columns) made one township's repair
    18 s. `parcel_rows`: the one-choice rows."""
    partition, row_of, owner = parcel_columns(lp, parcel_rows)
    regret = _regret(x_lp, reduced_cost, partition, row_of, tol)
    fixed_on = (lower == upper) & (lower > 0.5) & (owner >= 0)
    csr = sp.csr_matrix(lp.A)
    freed = np.zeros(partition.shape[0], dtype=bool)
    for r in blocking:
        cols = csr.indices[csr.indptr[r]:csr.indptr[r + 1]]
        parcels = np.unique(owner[cols])
        users = np.unique(owner[cols[fixed_on[cols]]])
        others = np.setdiff1d(parcels[parcels >= 0], users)
        freed[users] = True
        freed[others[np.argsort(regret[others], kind="stable")[:FREE_PER_BROKEN_ROW]]] = True
    cols = partition.indices[freed[row_of]]
    lower, upper = lower.copy(), upper.copy()
    lower[cols], upper[cols] = base.col_lower[cols], base.col_upper[cols]
    return lower, upper


def _repair(lp: MatrixLP, x_lp: np.ndarray, dual_lp: np.ndarray, options: SolverOptions,
            left: Any) -> tuple[float, np.ndarray] | None:
    """A feasible plan near the LP optimum. Fix the parcels the LP chose integrally except the fractional ones and
    the cheapest to change, and solve that small MIP. If it is infeasible, free the parcels of the rows it cannot
    meet (`_blocking_rows`: at 1,000,000 parcels, a township's share of a market cap that the fixed parcels and
    whole cattle overran by 0.1 ha) and solve it again. If that fails too (rounding the village integers, herd and
    ranger posts, needs room elsewhere), dive: fix the general integers (rounded, then rounded down), re-solve the
    LP over the parcels, and repair again. The best plan found is returned."""
    general = lp.integer & ~((lp.col_lower == 0) & (lp.col_upper == 1))
    parcel_rows = partition_rows(lp)
    n_free = int(min(options.repair_parcels, len(parcel_rows)))
    attempts: list[np.ndarray | None] = [None, np.rint(x_lp[general]), np.floor(x_lp[general] + 1e-9)]
    best: tuple[float, np.ndarray] | None = None
    for fixed in attempts:
        lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
        x_start, dual = x_lp, dual_lp
        if fixed is not None:
            if not general.any():
                break
            lower[general] = np.clip(fixed, lp.col_lower[general], lp.col_upper[general])
            upper[general] = lower[general]
            relaxed = _solve_fixed(lp, lower, upper, options, left(), integer=False)
            if relaxed is None:
                continue
            x_start, dual = relaxed
        base = MatrixLP(**{**lp.__dict__, "col_lower": lower, "col_upper": upper})
        repair_lower, repair_upper, _ = repair_bounds(base, x_start, dual, n_free)
        solved = _solve_fixed(lp, repair_lower, repair_upper, options, left(), integer=True)
        if solved is None and fixed is None and left() > 0:
            blocking = _blocking_rows(lp, parcel_rows, repair_lower, repair_upper, options,
                                      left())
            if len(blocking):
                wider_lower, wider_upper = _free_rows_of(lp, parcel_rows, blocking, repair_lower, repair_upper,
                                                         base, x_start, dual)
                solved = _solve_fixed(lp, wider_lower, wider_upper, options, left(), integer=True)
        if solved is not None:
            objective = float(lp.c @ solved[0] + lp.offset)
            if best is None or (objective > best[0] if lp.sense == "max" else objective < best[0]):
                best = (objective, solved[0])
            if fixed is None:
                break
    return best


def is_plan(lp: MatrixLP, x: np.ndarray, tol: float = 1e-6) -> bool:
    """Whether x satisfies every bound, row and integrality of lp (within tol, relative on rows)."""
    if x is None or len(x) != len(lp.c) or not np.all(np.isfinite(x)):
        return False
    if np.any(x < lp.col_lower - tol) or np.any(x > lp.col_upper + tol):
        return False
    if np.any(np.abs(x[lp.integer] - np.rint(x[lp.integer])) > tol):
        return False
    activity = lp.A @ x
    slack = tol * np.maximum(1.0, np.abs(activity))
    return bool(np.all(activity >= lp.row_lower - slack) and np.all(activity <= lp.row_upper + slack))


def _child(lp: MatrixLP, options: SolverOptions, conn: Any, in_process: bool = False,
           start_plan: np.ndarray | None = None) -> None:
    """Solve in the child; send ('incumbent', obj, bound, x) as found and ('done', ...) at the end.

    Strategy "auto" for a MIP: solve the LP relaxation (its optimum is a valid bound), fix every parcel whose LP
    choice is integral and solve the small repair MIP over the rest; if that plan is within the gap of the LP bound
    it is proven optimal (within the gap); otherwise the full MIP runs, warm-started from it. Strategy "mip": the
    full MIP at once.
    """
    import highspy

    # HiGHS prints a banner on construction; keep the parent's terminal clean (in process: see _solve_here).
    if not in_process:
        # A forked child inherits the parent's HiGHS thread scheduler but not its worker threads: after a solve in
        # the parent with threads > 1, the child's MIP handed work to workers that do not exist and crawled (the
        # Marxan sample's 1% plan: none in 120 s instead of 1 s). Start the child with a scheduler of its own.
        highspy.Highs.resetGlobalScheduler(True)
        # the log goes to stderr with --verbose, so the parent's stdout stays machine-readable
        os.dup2(2 if options.log_file == "-" else os.open(os.devnull, os.O_WRONLY), 1)
    start = time.perf_counter()

    def left() -> float:
        return options.time_limit - (time.perf_counter() - start)

    is_mip = bool(lp.integer.any())
    h = _highs(lp, options, left())
    bound_lp = None
    incumbent: tuple[float, np.ndarray] | None = None
    if is_mip and start_plan is not None and is_plan(lp, start_plan):  # e.g. the previous Pareto stage's plan
        incumbent = (float(lp.c @ start_plan + lp.offset), np.asarray(start_plan, dtype=float))
        conn.send(("incumbent", incumbent[0], None, incumbent[1]))
    if is_mip and options.strategy == "auto" and len(partition_rows(lp)):  # no parcels: nothing to repair
        relaxed = MatrixLP(**{**lp.__dict__, "integer": np.zeros_like(lp.integer)})
        r = _highs(relaxed, options, left())
        set_lp_method(r, relaxed, options)
        run_highs(r)
        status = r.modelStatusToString(r.getModelStatus())
        if status == "Infeasible":
            conn.send(("done", "Infeasible", None, None, None, 0))
            return
        if status == "Optimal":
            bound_lp = float(r.getInfo().objective_function_value)
            conn.send(("bound", bound_lp))
            x_lp = np.array(r.getSolution().col_value, dtype=float)
            dual_lp = np.array(r.getSolution().col_dual, dtype=float)
            repaired = _repair(lp, x_lp, dual_lp, options, left)
            if repaired is not None and (incumbent is None or (repaired[0] >= incumbent[0] if lp.sense == "max"
                                                               else repaired[0] <= incumbent[0])):
                incumbent = repaired
            if incumbent is not None:
                objective, x = incumbent
                conn.send(("incumbent", objective, bound_lp, x))
                gap = relative_gap(objective, bound_lp)
                if gap is not None and (gap <= options.mip_rel_gap or abs(bound_lp - objective)
                                        <= options.mip_abs_gap):
                    conn.send(("done", "Optimal", objective, bound_lp, x, 0))
                    return
                if gap is not None and gap <= options.repair_accept_gap:
                    conn.send(("done", "Feasible", objective, bound_lp, x, 0))
                    return

    unscale = 2.0 ** -objective_scale_power(lp)  # the callbacks see HiGHS's scaled objective
    sign = 1.0 if lp.sense == "max" else -1.0
    target, short = options.objective_target, options.bound_target

    def on_improving(event: Any) -> None:
        data = event.data_out
        x = np.array(data.mip_solution, dtype=float)
        conn.send(("incumbent", float(lp.c @ x + lp.offset), float(data.mip_dual_bound) * unscale, x))

    streamed = {"bound": float("nan"), "at": -np.inf}

    def on_interrupt(event: Any) -> None:  # HiGHS asks often whether to stop: stream the bound it has proven
        bound, now = float(event.data_out.mip_dual_bound) * unscale, time.perf_counter()
        if np.isfinite(bound) and bound != streamed["bound"] and now - streamed["at"] >= BOUND_SECONDS:
            streamed["bound"], streamed["at"] = bound, now
            conn.send(("dual_bound", bound))
        best = float(event.data_out.mip_primal_bound) * unscale
        if ((target is not None and np.isfinite(best) and sign * best >= sign * target)
                or (short is not None and np.isfinite(bound) and sign * bound < sign * short)):
            event.interrupt()

    def run(h: Any) -> None:
        # HiGHS checks time_limit against its run clock, which adds up over the runs of one Highs object
        h.setOptionValue("time_limit", h.getRunTime() + max(left(), 0.01))
        if is_mip:
            h.cbMipImprovingSolution.subscribe(on_improving)
            h.cbMipInterrupt.subscribe(on_interrupt)
            if incumbent is not None:
                solution = highspy.HighsSolution()
                solution.col_value = incumbent[1]
                solution.value_valid = True
                h.setSolution(solution)
        run_highs(h)

    run(h)
    if is_mip and options.presolve != "off" and not _consistent(h, lp, incumbent):
        # HiGHS's MIP presolve sometimes gets a small model wrong (ERGO-Code/HiGHS #3296, #3090): it declares a model
        # infeasible though a plan is known, or reports an objective its own plan does not have. Solve without it.
        h = _highs(lp, SolverOptions(**{**options.as_dict(), "presolve": "off"}), left())
        run(h)
    info = h.getInfo()
    name = h.modelStatusToString(h.getModelStatus())
    x = None
    if info.primal_solution_status == 2:  # feasible
        x = np.array(h.getSolution().col_value, dtype=float)
    bound = float(info.mip_dual_bound) if is_mip else float(info.objective_function_value)
    if bound_lp is not None:
        bound = min(bound, bound_lp) if lp.sense == "max" else max(bound, bound_lp)
    objective = float(lp.c @ x + lp.offset) if x is not None else None  # the plan's own objective
    if x is None and incumbent is not None:
        objective, x = incumbent
    nodes = int(info.mip_node_count) if is_mip else None
    conn.send(("done", name, objective, bound, x, nodes))
    conn.close()


def _consistent(h: Any, lp: MatrixLP, incumbent: tuple[float, np.ndarray] | None) -> bool:
    """Whether a finished MIP run agrees with itself: not infeasible while a plan is known, and the objective it
    reports is that of the plan it returns (and within its bound)."""
    if h.modelStatusToString(h.getModelStatus()) == "Infeasible":
        return incumbent is None
    info = h.getInfo()
    if info.primal_solution_status != 2:
        return True
    x = np.array(h.getSolution().col_value, dtype=float)
    objective, reported = float(lp.c @ x + lp.offset), float(info.objective_function_value)
    tol = 1e-6 * max(1.0, abs(objective))
    beyond = objective - float(info.mip_dual_bound) if lp.sense == "max" else float(info.mip_dual_bound) - objective
    return abs(objective - reported) <= tol and not beyond > tol


_STATUS = {
    "Optimal": Status.OPTIMAL,
    "Time limit reached": Status.TIME_LIMIT,
    "Infeasible": Status.INFEASIBLE,
    "Primal infeasible or unbounded": Status.INFEASIBLE,
    "Unbounded": Status.UNBOUNDED,
    "Interrupted by user": Status.TIME_LIMIT,
    "Feasible": Status.FEASIBLE,
    # HiGHS's work limits (simplex_iteration_limit, mip_max_nodes, ...) end a solve as its time limit does: a
    # limit, not a proof; the message keeps HiGHS's own words
    "Iteration limit reached": Status.TIME_LIMIT,
    "Solution limit reached": Status.TIME_LIMIT,
}


class _Inbox:
    """The child's end of the pipe, for a solve in this process: keeps the messages."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, ...]] = []

    def send(self, message: tuple[Any, ...]) -> None:
        """Keep the message; hand an improving plan to the progress display (optiland.progress)."""
        self.messages.append(message)
        if message[0] == "incumbent":
            from optiland.progress import current

            current().incumbent(message[1], message[2])

    def close(self) -> None:
        """Nothing to close."""


@contextmanager
def c_stdout(to_stderr: bool = False) -> Iterator[None]:
    """Send file descriptor 1 (HiGHS's C-level output, its banner included) to /dev/null, or to stderr, for the
    block; C buffers are flushed before it is restored, so nothing leaks onto stdout later."""
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.dup(2) if to_stderr else os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(target, 1)
        yield
    finally:
        ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)


def _solve_here(lp: MatrixLP, options: SolverOptions, start: np.ndarray | None = None) -> SolveResult:
    """Solve a small model in this process (no fork: ~30 ms less per solve, which dominates on models of a few
    thousand columns, e.g. the many solves of a Pareto front). HiGHS's own time limit holds on such models."""
    began = time.perf_counter()
    inbox = _Inbox()
    with c_stdout(to_stderr=options.log_file == "-"):
        _child(lp, options, inbox, in_process=True, start_plan=start)
    state = _Progress()
    for message in inbox.messages:
        state.take(message)
    return _result(lp, options, state.final, state.best, state.proven(lp.sense), time.perf_counter() - began,
                   exitcode=0)


class _Progress:
    """What the child has reported so far: the LP bound, the MIP's latest proven bound, the best plan (objective,
    bound, x), the final message."""

    def __init__(self) -> None:
        self.lp_bound: float | None = None
        self.dual_bound: float | None = None
        self.best: tuple[float, float | None, np.ndarray] | None = None
        self.final: tuple[Any, ...] | None = None

    def proven(self, sense: str) -> float | None:
        """The tightest bound streamed so far (LP relaxation or the MIP's), None before any."""
        known = [b for b in (self.lp_bound, self.dual_bound) if b is not None]
        if not known:
            return None
        return min(known) if sense == "max" else max(known)

    def take(self, message: tuple[Any, ...]) -> bool:
        """Record a message; True when it is the last one."""
        if message[0] == "bound":
            self.lp_bound = message[1]
        elif message[0] == "dual_bound":
            self.dual_bound = message[1]
        elif message[0] == "incumbent":
            self.best = (message[1], message[2], message[3])
        else:
            self.final = message
        return self.final is not None


STRATEGY_SOLVERS: dict[str, Callable[..., SolveResult]] = {}
"""Solve strategies beside HiGHS's own, by name (`SolverOptions.strategy`); optiland.mip.colgen registers "colgen"."""


def solve_lp(lp: MatrixLP, options: SolverOptions, start: np.ndarray | None = None,
             columns: np.ndarray | None = None, villages: np.ndarray | None = None) -> SolveResult:
    """Solve; keep the time limit whatever HiGHS does, reporting the best plan and bound so far.

    `start`: a plan to begin from (used only if it satisfies every row, bound and integrality): the answer is never
    worse than it, even when the time limit ends the search before HiGHS finds one of its own. `columns`: with
    strategy colgen, columns its restricted model starts with besides its own picks (an earlier, related LP's);
    `villages`: with strategy colgen, the village of each parcel column (-1 elsewhere), for its integer bound.

    Models up to IN_PROCESS_COLUMNS columns are solved in this process; larger ones in a forked child process
    watched by the parent, which kills it at the time limit (HiGHS does not check its limit everywhere, e.g. in
    parts of presolve: ../shared/perf/BASELINE.md)."""
    if options.strategy in STRATEGY_SOLVERS and lp.integer.any():
        return STRATEGY_SOLVERS[options.strategy](lp, options, start=start, columns=columns, villages=villages)
    if len(lp.c) <= IN_PROCESS_COLUMNS:
        return _solve_here(lp, options, start)
    context = mp.get_context("fork")
    parent_conn, child_conn = context.Pipe(duplex=False)
    # HiGHS gets most of the budget; the watchdog keeps the rest for handing back an incumbent.
    inner = options.time_limit * 0.95 if options.time_limit > 2 else options.time_limit
    child_options = SolverOptions(**{**options.as_dict(), "time_limit": inner})
    began = time.perf_counter()
    # the child dies with this process whatever kills it (optiland.mip.lifeline): no orphan HiGHS holding memory
    process = context.Process(target=guarded(_child, close=(parent_conn.fileno(),)),
                              args=(lp, child_options, child_conn, False, start), daemon=True)
    process.start()
    child_conn.close()
    deadline = began + options.time_limit
    state = _Progress()
    interrupted = False
    try:
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            if parent_conn.poll(min(remaining, 0.5)):
                try:
                    if state.take(parent_conn.recv()):
                        break
                except EOFError:
                    break
                _report_progress(state, lp.sense)
            elif not process.is_alive() and not parent_conn.poll(0):
                break
    except KeyboardInterrupt:  # SIGINT: stop the child, hand back the best plan and bound so far
        interrupted = True
    elapsed = time.perf_counter() - began
    if process.is_alive():
        process.kill()
    process.join(timeout=5)
    result = _result(lp, options, None if interrupted else state.final, state.best, state.proven(lp.sense), elapsed,
                     process.exitcode)
    if interrupted:
        result.status = Status.INTERRUPTED
        result.message = ("interrupted; best plan and bound so far" if result.x is not None
                          else "interrupted before any plan was found")
    return result


def _report_progress(state: Any, sense: str) -> None:
    """Hand the best plan's objective and the best bound so far to the progress display (optiland.progress)."""
    from optiland.progress import current

    if state.best is not None:
        bound = state.proven(sense)
        current().incumbent(state.best[0], bound if bound is not None else state.best[1])


def _result(lp: MatrixLP, options: SolverOptions, final: tuple[Any, ...] | None,
            best: tuple[float, float | None, np.ndarray] | None, streamed_bound: float | None, elapsed: float,
            exitcode: int | None) -> SolveResult:
    """The SolveResult from the child's last message, or from the best incumbent when it was stopped (its bound the
    tightest of the one it came with and `streamed_bound`, the best the child proved and streamed)."""
    version = highs_version()
    if final is not None:
        _, name, objective, bound, x, nodes = final
        status = _STATUS.get(name, Status.ERROR)
        if status == Status.TIME_LIMIT and x is None and best is not None:
            objective, _, x = best
        if status in (Status.OPTIMAL, Status.FEASIBLE) or (status == Status.TIME_LIMIT and x is not None):
            gap = relative_gap(objective, bound)
        else:
            gap = None
        if status == Status.TIME_LIMIT and x is None:
            message = f"{'time limit reached' if name == 'Time limit reached' else name} before any feasible plan " \
                      "was found"
        else:
            message = name
        return SolveResult(status, x, objective, bound if status.has_plan else None, gap, elapsed, message,
                           solver_version=version, nodes=nodes)
    if best is not None:
        objective, bound, x = best
        if bound is None:  # a start plan: no bound came with it
            bound = streamed_bound
        elif streamed_bound is not None:
            bound = min(bound, streamed_bound) if lp.sense == "max" else max(bound, streamed_bound)
        return SolveResult(Status.TIME_LIMIT, x, objective, bound, relative_gap(objective, bound), elapsed,
                           "watchdog stopped HiGHS at the time limit; best plan and bound so far",
                           solver_version=version)
    if elapsed >= options.time_limit - 1e-6:
        return SolveResult(Status.TIME_LIMIT, None, None, None, None, elapsed,
                           "watchdog stopped HiGHS at the time limit before any feasible plan was found",
                           solver_version=version)
    return SolveResult(Status.ERROR, None, None, None, None, elapsed,
                       f"HiGHS process ended without a result (exit code {exitcode})", solver_version=version)
