r"""Column generation of variants: the LP relaxation over the few columns per parcel its duals make attractive.

Most of a parcel's ~33 (option, variant) columns are never attractive. The LP relaxation of the model (any MatrixLP
whose binaries are partitioned by one-choice rows, ``solver.partition_rows``: one row per parcel) is solved over a
*restricted* set of columns: per parcel the best by the objective and the least and most using the model's
``<=`` and ``>=`` rows, plus every non-parcel column (herds, ranger posts, price segments, option areas) and an
artificial column per non-parcel row, priced (``ARTIFICIAL_COSTS``: low while the rounds run, high before they
may end with one in use), so the restricted LP is always feasible. HiGHS solves it (warm
started after each round); with its row duals :math:`y`, every column of every parcel is priced, and per parcel the
best attractive one is added. The rounds end when none is attractive (the restricted LP optimum is then the full
LP optimum) or its bound is within ``LP_TOLERANCE``.

**The bound.** For any duals :math:`y` of the non-parcel rows (signs clipped to the rows' senses), weak duality gives,
for a maximisation with rows :math:`L \le Ax \le U`,

.. math:: z^* \le \sum_r \max(y_r U_r, y_r L_r) + \sum_p \max_{j \in p} (c_j - A_j^\top y)
          + \sum_{j \notin \text{parcels}} \max_{l_j \le x_j \le u_j} (c_j - A_j^\top y) x_j

(the parcels' one-choice rows kept, everything else relaxed), computed over *all* columns, not only the generated
ones. This is the bound reported; it is valid whatever the restricted model holds. (The restricted LP's optimum
is not: HiGHS calls an LP optimal once no reduced cost exceeds its tolerance, 1e-7, and the service index's
coefficients are of that order, so the restricted model is solved with its objective scaled to O(1).) A non-parcel
column's reduced cost within rounding error of its terms (``ROUNDING``) counts as zero (times an infinite upper
bound it would make the bound infinite), and rows without bounds are left out of the restricted model (their duals
are noise). The plan comes from the restricted model (the repair of optiland.mip.solver, then its MIP warm-started if
the repair is not within the gap, for at most ``polish_seconds`` or ``polish_nodes`` if set), so its true gap is
against this bound.
A plan is called optimal only when that gap is within the one asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from optiland.mip.solver import (
    INF,
    STRATEGY_SOLVERS,
    MatrixLP,
    SolveResult,
    SolverOptions,
    Status,
    _highs,
    _repair,
    c_stdout,
    highs_version,
    is_plan,
    parcel_columns,
    partition_rows,
    relative_gap,
    run_highs,
    solve_lp,
)

LP_TOLERANCE = 2e-5
"""Relative distance between the restricted LP optimum and the Lagrangian bound at which the rounds stop."""
ARTIFICIAL_COSTS = (10.0, 1e4)
"""Objective penalties (relative to the largest objective coefficient, per unit of a row's violation) of the
artificial columns: the first while the rounds run, the next whenever the rounds would end with an artificial in
use (a penalty below some row's dual: the restricted LP then prefers the violation). A penalty of 1e4 from the
start made the duals of rows whose artificial is basic at zero 1e4 times too dear, the pricing picked columns for
them, and the rounds re-solved large changes: township T03 of the 100,000-parcel instance, its four service LPs
(G*_s) 15.2 s at 1e4, 9.0 s at 1e3, 6.3 s at 10 (its carbon LP 11.7 s against 3.2 s; measured by hand)."""
MAX_ROUNDS = 60
ROUNDING = 1e-12
"""Relative size (against |c_j| + |A_j|.|y|) below which a non-parcel column's reduced cost is rounding noise."""


@dataclass
class Restricted:
    """The restricted model: which columns of the full model it holds, in its column order."""

    columns: np.ndarray
    """Full-model column of each restricted column (artificials: -1)."""
    lp: MatrixLP


def _structure(lp: MatrixLP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(parcel rows, parcel of each column or -1, mask of non-parcel rows)."""
    rows = partition_rows(lp)
    _, _, owner = parcel_columns(lp, rows)
    other = np.ones(lp.A.shape[0], dtype=bool)
    other[rows] = False
    return rows, owner, other


def _best_per_parcel(score: np.ndarray, owner: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each parcel the column of `cols` (parcel columns) with the largest score (the first of `cols` on a tie),
    in the order of the parcels."""
    group = owner[cols]
    if len(cols) and np.all(group[1:] >= group[:-1]):
        # each parcel's columns side by side (the models' column order): a pass instead of a sort (township T05's
        # four G*_s LPs spent 0.50 of 4.8 s sorting)
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        values = score[cols]
        best = np.maximum.reduceat(values, starts)
        hits = np.flatnonzero(values == np.repeat(best, np.diff(np.r_[starts, len(cols)])))
        first = np.r_[True, group[hits][1:] != group[hits][:-1]]
        return cols[hits[first]]
    order = np.lexsort((-score[cols], group))
    ranked = cols[order]
    first = np.r_[True, owner[ranked][1:] != owner[ranked][:-1]]
    return ranked[first]


def initial_columns(lp: MatrixLP, owner: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per parcel: the best column by the objective, the one using least of the <= rows and the one giving most to
    the >= rows (each row's use scaled by its limit)."""
    cols = np.flatnonzero(owner >= 0)
    sign = 1.0 if lp.sense == "max" else -1.0
    A = lp.A.tocsr()
    picks = [_best_per_parcel(sign * lp.c, owner, cols)]
    upper_only = other & np.isfinite(lp.row_upper) & ~np.isfinite(lp.row_lower)
    lower_only = other & np.isfinite(lp.row_lower) & ~np.isfinite(lp.row_upper)
    for mask, direction, side in ((upper_only, -1.0, lp.row_upper), (lower_only, 1.0, lp.row_lower)):
        if not mask.any():
            continue
        weight = np.zeros(A.shape[0])
        weight[mask] = 1.0 / np.maximum(np.abs(side[mask]), 1.0)
        use = A.T @ weight
        picks.append(_best_per_parcel(direction * use, owner, cols))
    return np.unique(np.concatenate(picks))


def dual_feasible(lp: MatrixLP, ys: np.ndarray, owner: np.ndarray, AT: sp.csr_matrix,
                  passes: int = 3) -> np.ndarray:
    """Duals (maximisation form) adjusted so that no non-parcel column (herds, posts, segments, option areas: often
    without an upper bound) has a positive reduced cost: the LP's duals are dual feasible only within HiGHS's
    tolerance, and a reduced cost of 1e-9 on an unbounded column makes the bound infinite. Each such column's
    excess is put on one of its rows that can take it (a <= row where its coefficient is positive, raising that
    row's price, or a >= row where it is negative): any prices of the right signs give a valid bound."""
    ys = ys.copy()
    free = np.flatnonzero(owner < 0)
    if not len(free):
        return ys
    A_free = AT[free]  # rows of A^T: one per non-parcel column
    sign = 1.0 if lp.sense == "max" else -1.0
    for _ in range(passes):
        d = sign * lp.c[free] - A_free @ ys
        # a column with an upper bound can keep a positive reduced cost: it enters the bound at that bound
        bad = np.flatnonzero((d > 0) & ~np.isfinite(lp.col_upper[free]))
        if not len(bad):
            break
        for k in bad:
            start, end = A_free.indptr[k], A_free.indptr[k + 1]
            rows, coef = A_free.indices[start:end], A_free.data[start:end]
            ok = ((coef > 0) & np.isfinite(lp.row_upper[rows])) | ((coef < 0) & np.isfinite(lp.row_lower[rows]))
            if not ok.any():
                continue
            pick = np.flatnonzero(ok)[np.argmax(np.abs(coef[ok]))]
            ys[rows[pick]] += d[k] / coef[pick]
    return ys


def lagrangian_terms(lp: MatrixLP, y: np.ndarray, owner: np.ndarray, other: np.ndarray,
                     AT: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The terms of the bound of the module docstring for duals `y` (HiGHS's signs; parcel rows ignored), in the
    maximisation form: (each row's term, each parcel's best reduced cost, each column's term (0 on parcel columns),
    the duals used: signs clipped to the rows' senses and repaired by `dual_feasible`). The bound is
    sign * (their sums + sign * offset)."""
    sign = 1.0 if lp.sense == "max" else -1.0
    AT = lp.A.T.tocsr() if AT is None else AT
    y = np.where(other, y, 0.0)
    # in the maximisation form (c -> sign*c), a row dual must be >= 0 on a binding upper side, <= 0 on a lower
    ys = sign * y
    ys = np.where(np.isfinite(lp.row_upper), ys, np.minimum(ys, 0.0))
    ys = np.where(np.isfinite(lp.row_lower), ys, np.maximum(ys, 0.0))
    ys = dual_feasible(lp, ys, owner, AT)
    ys = np.where(np.isfinite(lp.row_upper), ys, np.minimum(ys, 0.0))
    ys = np.where(np.isfinite(lp.row_lower), ys, np.maximum(ys, 0.0))
    rows_term = np.where(ys > 0, ys * np.where(np.isfinite(lp.row_upper), lp.row_upper, 0.0),
                         ys * np.where(np.isfinite(lp.row_lower), lp.row_lower, 0.0))
    d = sign * lp.c - AT @ ys
    parcel = owner >= 0
    best = np.full(int(owner.max()) + 1 if parcel.any() else 0, -INF)
    np.maximum.at(best, owner[parcel], d[parcel])
    free = ~parcel
    df = d[free]
    # a reduced cost within the rounding error of computing it is zero: on a column without an upper bound, a
    # leftover of 1e-25 from dual_feasible made the bound infinite in most rounds of a township's colgen
    noise = ROUNDING * (np.abs(lp.c[free]) + abs(AT[free]) @ np.abs(ys))
    df = np.where(np.abs(df) <= noise, 0.0, df)
    hi, lo = lp.col_upper[free], lp.col_lower[free]
    col_term = np.zeros(len(lp.c))
    with np.errstate(invalid="ignore"):
        col_term[free] = np.where(df > 0, df * hi, np.where(df < 0, df * lo, 0.0))
    return rows_term, best, col_term, ys


def lagrangian_bound(lp: MatrixLP, y: np.ndarray, owner: np.ndarray, other: np.ndarray,
                     AT: sp.csr_matrix | None = None) -> tuple[float, np.ndarray]:
    """The bound of the module docstring for duals `y` (non-parcel rows; parcel rows ignored), and the reduced costs
    c - A^T y of every column (in the model's sense: positive is attractive)."""
    sign = 1.0 if lp.sense == "max" else -1.0
    AT = lp.A.T.tocsr() if AT is None else AT
    rows_term, best, col_term, ys = lagrangian_terms(lp, y, owner, other, AT)
    total = rows_term.sum() + best.sum() + col_term.sum() + sign * lp.offset
    return float(sign * total), sign * lp.c - AT @ ys


@dataclass
class Relaxation:
    """The LP relaxation by column generation: the restricted LP's optimum and solution, and a valid bound."""

    value: float | None
    """The restricted LP's optimum (the full LP's when no column is attractive), None if not solved."""
    bound: float | None
    """The Lagrangian bound over every column (module docstring): valid for the full model's LP and MIP."""
    x: np.ndarray | None
    """The restricted LP's solution as a full-length column vector."""
    y: np.ndarray | None
    """The row duals of the restricted LP (HiGHS's signs) that gave the bound."""
    columns: np.ndarray
    """The generated columns (full-model positions), non-parcel columns included."""
    artificial: float
    """Total value of the artificial columns (0 when the restricted LP is a relaxation of the model)."""
    note: str


def relax(lp: MatrixLP, options: SolverOptions, start: np.ndarray | None = None,
          say: Callable[[str], None] | None = None, tolerance: float = LP_TOLERANCE) -> Relaxation:
    """Column generation for the LP relaxation of `lp` and its Lagrangian bound (module docstring); the rounds stop
    once no column is attractive or the bound is within `tolerance` of the restricted LP (relative)."""
    bounded = np.isfinite(lp.row_lower) | np.isfinite(lp.row_upper)
    if not bounded.all():
        # a free row (a coupling row the caller priced out) constrains nothing, but HiGHS leaves it a dual of the
        # order of its tolerance, and with the rows' large coefficients (areas, yuan) against the index's small
        # ones, that dual moved the Lagrangian bound by 0.75% on a 10,000-parcel township: solve without them
        inner = relax(MatrixLP(**{**lp.__dict__, "A": lp.A.tocsr()[bounded], "row_lower": lp.row_lower[bounded],
                                  "row_upper": lp.row_upper[bounded],
                                  "row_names": [n for n, b in zip(lp.row_names, bounded, strict=False) if b]}),
                      options, start, say, tolerance)
        y = None
        if inner.y is not None:
            y = np.zeros(len(bounded))
            y[bounded] = inner.y
        return replace(inner, y=y)
    began = time.perf_counter()

    def left() -> float:
        return options.time_limit - (time.perf_counter() - began)

    rows, owner, other = _structure(lp)
    sign = 1.0 if lp.sense == "max" else -1.0
    A_csc = lp.A.tocsc()
    AT = lp.A.T.tocsr()
    chosen = np.zeros(len(lp.c), dtype=bool)
    chosen[initial_columns(lp, owner, other)] = True
    chosen[owner < 0] = True
    if start is not None:  # a known plan's columns
        chosen[(np.asarray(start) > 0.5) & (owner >= 0)] = True
    artificial_rows = np.flatnonzero(other)
    scale_c = max(float(np.abs(lp.c).max()), 1e-6)
    level = 0
    # an artificial per non-parcel row, in the direction that can restore it: +1 for >= sides, -1 for <= sides
    art_lo = artificial_rows[np.isfinite(lp.row_lower[artificial_rows])]
    art_hi = artificial_rows[np.isfinite(lp.row_upper[artificial_rows])]
    art = sp.csc_matrix((np.r_[np.ones(len(art_lo)), -np.ones(len(art_hi))],
                         (np.r_[art_lo, art_hi], np.arange(len(art_lo) + len(art_hi)))),
                        shape=(lp.A.shape[0], len(art_lo) + len(art_hi)))
    n_art = art.shape[1]
    cols = np.flatnonzero(chosen)
    A0 = sp.hstack([A_csc[:, cols], art], format="csc")
    # HiGHS's optimality tolerances are absolute (1e-7): the objective goes to it scaled by a power of two so that
    # its largest parcel coefficient is about 1 (exact in floating point), values and duals come back unscaled
    largest = float(np.abs(lp.c[owner >= 0]).max()) if (owner >= 0).any() else 1.0
    # the size of a plan's objective (each parcel at its largest coefficient), for the attractiveness tolerance: not
    # the restricted LP's value, which artificial columns in use can make huge
    most = np.zeros(len(rows))
    np.maximum.at(most, owner[owner >= 0], np.abs(lp.c[owner >= 0]))
    magnitude = float(most.sum())
    k = 2.0 ** -round(np.log2(largest)) if largest > 0 else 1.0
    c0 = k * np.r_[lp.c[cols], np.full(n_art, -sign * ARTIFICIAL_COSTS[level] * scale_c)]
    restricted = MatrixLP(c=c0, A=A0, row_lower=lp.row_lower, row_upper=lp.row_upper,
                          col_lower=np.r_[lp.col_lower[cols], np.zeros(n_art)],
                          col_upper=np.r_[lp.col_upper[cols], np.full(n_art, INF)],
                          integer=np.zeros(len(c0), dtype=bool), sense=lp.sense, offset=k * lp.offset)
    with c_stdout():
        h = _highs(restricted, options, max(left(), 0.01))
    h.setOptionValue("solver", "simplex")
    columns = np.r_[cols, np.full(n_art, -1)]
    best_bound, best_y = None, None
    rounds = 0
    lp_value = None
    message = ""
    while True:
        rounds += 1
        # HiGHS checks time_limit against its run clock, which adds up over the runs of one Highs object
        h.setOptionValue("time_limit", h.getRunTime() + max(left(), 0.01))
        with c_stdout(to_stderr=options.log_file == "-"):
            run_highs(h)
        status = h.modelStatusToString(h.getModelStatus())
        if status != "Optimal":
            message = f"; restricted LP: {status}"
            break
        lp_value = float(h.getInfo().objective_function_value) / k
        y = np.array(h.getSolution().row_dual, dtype=float) / k
        bound, d = lagrangian_bound(lp, y, owner, other, AT)
        if best_bound is None or sign * bound < sign * best_bound:
            best_bound, best_y = bound, y
        parcel_chosen = chosen & (owner >= 0)
        have = np.full(len(rows), -INF)
        np.maximum.at(have, owner[parcel_chosen], d[parcel_chosen])
        tol = 1e-9 * max(1.0, magnitude)
        attractive = (owner >= 0) & ~chosen
        attractive[attractive] = d[attractive] > have[owner[attractive]] + tol
        close = relative_gap(lp_value, best_bound)
        if say:
            say(f"column generation round {rounds}: {int(parcel_chosen.sum()):,} parcel columns, LP "
                f"{lp_value:.8g}, bound {best_bound:.8g}, {int(attractive.sum()):,} attractive")
        if rounds >= MAX_ROUNDS or left() <= 0:
            break
        if not attractive.any() or (close is not None and close <= tolerance):
            in_use = float(np.array(h.getSolution().col_value)[columns < 0].sum())
            if in_use <= 1e-7 or level + 1 == len(ARTIFICIAL_COSTS):
                break
            # an artificial in use: perhaps only because it is cheap; dearer, and the rounds go on
            level += 1
            art_index = np.flatnonzero(columns < 0).astype(np.int32)
            h.changeColsCost(len(art_index), art_index,
                             np.full(len(art_index), -sign * k * ARTIFICIAL_COSTS[level] * scale_c))
            continue
        new = _best_per_parcel(d, owner, np.flatnonzero(attractive))
        block = A_csc[:, new]
        h.addCols(len(new), k * lp.c[new], lp.col_lower[new], lp.col_upper[new], block.nnz,
                  block.indptr[:-1].astype(np.int32), block.indices.astype(np.int32), block.data.astype(float))
        chosen[new] = True
        columns = np.r_[columns, new]
    keep = columns >= 0
    x = artificial = None
    if lp_value is not None:
        x_restricted = np.array(h.getSolution().col_value, dtype=float)
        x = np.zeros(len(lp.c))
        x[columns[keep]] = x_restricted[keep]
        artificial = float(x_restricted[~keep].sum())
    del h
    n_parcel = int(chosen[owner >= 0].sum())
    note = (f"column generation: {rounds} rounds, {n_parcel:,} of {int((owner >= 0).sum()):,} parcel columns "
            f"({n_parcel / max(len(rows), 1):.2f} per parcel); restricted LP {lp_value}, Lagrangian bound "
            f"{best_bound}{message}")
    return Relaxation(lp_value, best_bound, x, best_y, columns[keep], INF if artificial is None else artificial,
                      note)


def solve(lp: MatrixLP, options: SolverOptions, start: np.ndarray | None = None,
          say: Callable[[str], None] | None = None, columns: np.ndarray | None = None,
          villages: np.ndarray | None = None) -> SolveResult:
    """The LP relaxation by column generation (`relax`), then a plan from the model restricted to the generated
    columns: the repair of optiland.mip.solver, and that model's MIP warm-started from it if the repair is not within
    the gap. The bound is the Lagrangian bound over every column, tightened by `integer_bound` when the repair is
    not within the gap and `villages` (the village of each parcel column, -1 elsewhere) is given; the gap is the
    plan's true gap against it."""
    began = time.perf_counter()

    def left() -> float:
        return options.time_limit - (time.perf_counter() - began)

    if not len(partition_rows(lp)):
        return solve_lp(lp, SolverOptions(**{**options.as_dict(), "strategy": "auto"}), start=start)
    sign = 1.0 if lp.sense == "max" else -1.0
    start_ok = start is not None and is_plan(lp, start)
    hint = None
    if start_ok or columns is not None:
        hint = np.zeros(len(lp.c))
        if columns is not None:
            hint[np.asarray(columns, dtype=np.int64)] = 1.0
        if start_ok:
            hint[np.asarray(start) > 0.5] = 1.0
    relaxation = relax(lp, options, hint, say)
    if relaxation.value is not None and relaxation.artificial > 1e-7 and left() > 0:
        # the generated columns cannot meet every row: perhaps no plan exists; the full model says (or finds one)
        result = solve_lp(lp, SolverOptions(**{**options.as_dict(), "strategy": "auto", "time_limit": left()}),
                          start=start if start_ok else None)
        result.message = f"{relaxation.note}; artificial columns left in use, so the full model was solved: " \
                         f"{result.message}"
        return result
    best_bound = relaxation.bound
    if relaxation.x is None or best_bound is None:
        return SolveResult(Status.TIME_LIMIT if left() <= 0 else Status.ERROR, None, None, None, None,
                           time.perf_counter() - began, relaxation.note, solver_version=highs_version())
    # the integer model over the generated columns (no artificials: a plan must meet every row)
    sub_cols = relaxation.columns
    A_sub = lp.A.tocsc()[:, sub_cols].tocsr()
    sub = MatrixLP(c=lp.c[sub_cols], A=A_sub, row_lower=lp.row_lower, row_upper=lp.row_upper,
                   col_lower=lp.col_lower[sub_cols], col_upper=lp.col_upper[sub_cols], integer=lp.integer[sub_cols],
                   sense=lp.sense, offset=lp.offset)
    reduced = sign * (sub.c - sub.A.T @ relaxation.y)
    with c_stdout():
        plan = _repair(sub, relaxation.x[sub_cols], reduced, options, left)
    objective = None if plan is None else plan[0]
    x_sub = None if plan is None else plan[1]

    def enough() -> bool:
        """The plan so far is within the gap asked for, or the repair's accept gap, of the best bound."""
        gap = relative_gap(objective, best_bound)
        return gap is not None and gap <= max(options.mip_rel_gap, options.repair_accept_gap)

    if x_sub is None and left() > 1:
        # the repair from the column generation's LP found no plan (1,000,000 parcels: 3 of 100 townships): the
        # generated columns' own LP and repair, any plan they give kept (by hand, townships T005 and T090: a plan
        # after 3 s, where the MIP that followed it ran to 28 s); at most half the time left, the whole model has
        # the rest
        more = solve_lp(sub, SolverOptions(**{**options.as_dict(), "time_limit": max(left() / 2, 0.01),
                                              "strategy": "auto", "repair_accept_gap": 1.0,
                                              "mip_rel_gap": max(options.mip_rel_gap, options.repair_accept_gap)}))
        if more.x is not None:
            objective, x_sub = more.objective, more.x
    note = relaxation.note
    if x_sub is not None and not enough() and villages is not None and left() > 1:
        # most of what separates a repaired plan from the LP's bound is the villages' whole herds and posts
        tighter, said = integer_bound(lp, relaxation, villages,
                                       SolverOptions(**{**options.as_dict(), "time_limit": left()}))
        if tighter is not None and sign * tighter < sign * best_bound:
            best_bound, note = tighter, f"{note}; {said}"
    target = plan_target(best_bound, max(options.mip_rel_gap, options.repair_accept_gap), lp.sense)
    if x_sub is not None and not enough() and villages is not None and left() > 1:
        # the plan's villages one at a time, each over all its columns with the rest of the plan fixed: a plan within
        # the gap in a few small MIPs, where the MIP over the generated columns first runs its root cut loop
        x_full = np.zeros(len(lp.c))
        x_full[sub_cols] = x_sub
        x_full, said = village_polish(lp, x_full, villages, relaxation.x, target, options, left)
        value = float(lp.c @ x_full + lp.offset)
        if sign * value > sign * objective:
            objective, note = value, f"{note}; {said}"
            outside = np.ones(len(lp.c), dtype=bool)
            outside[sub_cols] = False
            if np.all(np.abs(x_full[outside]) < 0.5):
                x_sub = x_full[sub_cols]
            else:  # it took columns the LP never generated: kept as the plan to beat
                start, start_ok = x_full, True
    if x_sub is not None and not enough() and left() > 1:
        # the MIP over the generated columns, ended by value: once a plan is within the gap of the bound over every
        # column (its own gap would stop it short: the demo's index, 1.0011e-4 against the 1e-4 asked), or once its
        # own bound shows no such plan is among these columns
        polish = left() if options.polish_seconds is None else min(left(), options.polish_seconds)
        nodes = {} if options.polish_nodes is None else {"mip_max_nodes": int(options.polish_nodes)}
        more = solve_lp(sub, SolverOptions(**{**options.as_dict(), "time_limit": max(polish, 0.01), "mip_rel_gap": 0.0,
                                              "strategy": "mip", "objective_target": target, "bound_target": target,
                                              "highs": {**options.highs, **nodes}}), start=x_sub)
        if more.x is not None and sign * more.objective > sign * objective:
            objective, x_sub = more.objective, more.x
    if x_sub is not None and not enough() and options.polish_seconds is None and options.polish_nodes is None \
            and left() > 1:
        # the generated columns' best plan is not the model's (issue 22: --gap 0 ended 17% off, status feasible):
        # the whole model's MIP, warm-started from it, with the time left; its bound tightens ours
        x_full = np.zeros(len(lp.c))
        x_full[sub_cols] = x_sub
        # to its own gap, or until a plan reaches the target of the bound over every column
        whole = solve_lp(lp, SolverOptions(**{**options.as_dict(), "time_limit": left(), "strategy": "mip",
                                              "objective_target": target}), start=x_full)
        if whole.status == Status.INFEASIBLE:  # cannot be (x_full is a plan); trust the plan in hand
            whole = SolveResult(Status.ERROR, None, None, None, None, 0.0, whole.message)
        if whole.bound is not None and sign * whole.bound < sign * best_bound:
            best_bound = whole.bound
        if whole.x is not None and sign * whole.objective > sign * objective:
            gap = relative_gap(whole.objective, best_bound)
            within = gap is not None and (gap <= options.mip_rel_gap
                                          or abs(best_bound - whole.objective) <= options.mip_abs_gap)
            status = Status.OPTIMAL if within else (
                whole.status if whole.status != Status.TIME_LIMIT or left() <= 0 else Status.FEASIBLE)
            return SolveResult(status, whole.x, whole.objective, best_bound, gap,
                               time.perf_counter() - began, f"{note}; the generated columns' plan was not within "
                               f"the gap, so the whole model's MIP went on from it: {whole.message}",
                               solver_version=highs_version())
    if x_sub is None and start_ok:
        x_sub = np.asarray(start, dtype=float)[sub_cols]
    if x_sub is None and left() > 1:
        # whole herds and posts can need variants the LP never priced in (1,000,000 parcels, township T029: neither
        # the repair nor the MIP over the generated columns found a plan): the whole model, LP and repair afresh
        result = solve_lp(lp, SolverOptions(**{**options.as_dict(), "strategy": "auto", "time_limit": left(),
                                               "repair_accept_gap": 1.0}))
        if result.status == Status.INFEASIBLE:  # the whole model proves no plan exists
            result.message = f"{note}; no plan over the generated columns, and the whole model has none: " \
                             f"{result.message}"
            return result
        if result.x is not None:
            bound = best_bound if result.bound is None or sign * result.bound >= sign * best_bound else result.bound
            gap = relative_gap(result.objective, bound)
            within = gap is not None and (gap <= options.mip_rel_gap or abs(bound - result.objective)
                                          <= options.mip_abs_gap)
            return SolveResult(Status.OPTIMAL if within else result.status, result.x, result.objective, bound, gap,
                               time.perf_counter() - began, f"{note}; no plan over the generated columns, so the "
                               f"whole model was solved: {result.message}", solver_version=highs_version())
    if x_sub is None:
        return SolveResult(Status.TIME_LIMIT if left() <= 0 else Status.ERROR, None, None, best_bound, None,
                           time.perf_counter() - began, f"{note}; no plan over the generated columns",
                           solver_version=highs_version())
    x = np.zeros(len(lp.c))
    x[sub_cols] = x_sub
    if start_ok and sign * float(lp.c @ start + lp.offset) > sign * float(lp.c @ x + lp.offset):
        x = np.asarray(start, dtype=float)
    objective = float(lp.c @ x + lp.offset)
    gap = relative_gap(objective, best_bound)
    within = gap is not None and (gap <= options.mip_rel_gap or abs(best_bound - objective) <= options.mip_abs_gap)
    status = Status.OPTIMAL if within else (Status.TIME_LIMIT if left() <= 0 else Status.FEASIBLE)
    return SolveResult(status, x, objective, best_bound, gap, time.perf_counter() - began, note,
                       solver_version=highs_version(), row_dual=relaxation.y)


def plan_target(bound: float, gap: float, sense: str) -> float:
    """The objective a plan needs to be within relative `gap` of `bound` (``solver.relative_gap``: |bound - z| /
    |z|): bound / (1 + gap) for a maximisation with a positive bound, bound / (1 - gap) with a negative one, and the
    other way round for a minimisation."""
    return bound / ((1 + gap) if (bound >= 0) == (sense == "max") else (1 - gap))


POLISH_GAP = 1e-7
"""Relative gap (of the whole objective) to which `village_polish` solves each village's MIP: its optimum, in effect."""
POLISH_NODES = 200
"""Branch-and-bound nodes a village's MIP in `village_polish` may take (with the balance rule's income row linking
every village, uncapped village MIPs took 529 of a 600 s run on the generated 20,000-parcel set, profiled)."""


def village_polish(lp: MatrixLP, x: np.ndarray, group: np.ndarray, x_lp: np.ndarray | None, target: float,
                   options: SolverOptions, left: Callable[[], float]) -> tuple[np.ndarray, str]:
    """Improve a plan `x` block by block (a village: its parcels over all their columns, its herd and ranger posts;
    `blocks`), each with the rest of the plan fixed and the columns that link blocks (option areas) free, until its
    objective reaches `target` or every block has had its turn. Blocks whose general integers are fractional in
    `x_lp` (the LP relaxation) are polished, where rounding the herd and posts cost; the others are not.

    Each step is a small MIP (the block's columns; the rows they touch, their bounds less the fixed columns'
    activity) started from the plan, so it never makes the plan worse; a step's result is kept only if the whole plan
    still meets every row. The order and each MIP's stopping rule (its gap, POLISH_GAP) are fixed, so the plan does not
    depend on the machine's load. On the generated 20,000-parcel set, 4 of 80 villages took a repaired plan 1.2e-4 off
    the integer bound to 9.0e-5 (by hand, /tmp/speed/t8.py). Returns the plan and a note."""
    sign = 1.0 if lp.sense == "max" else -1.0
    col_block, _ = blocks(lp, group)
    n_blocks = int(col_block.max()) + 1 if len(col_block) else 0
    if not n_blocks:
        return x, "no blocks to polish"
    first: list[int] = []
    if x_lp is not None:
        binary = lp.integer & (lp.col_lower == 0) & (lp.col_upper == 1)
        fractional = lp.integer & ~binary & (np.abs(x_lp - np.rint(x_lp)) > 1e-6) & (col_block >= 0)
        first = [int(b) for b in np.unique(col_block[fractional])]
    order = first  # where rounding the herd and posts cost: the other villages sit at their LP choice already
    A = lp.A.tocsc()
    link = col_block < 0
    x = np.asarray(x, dtype=float).copy()
    activity = lp.A @ x
    value = float(lp.c @ x + lp.offset)
    steps = improved = 0
    for b in order:
        if sign * value >= sign * target or left() <= 0:
            break
        steps += 1
        free = np.flatnonzero((col_block == b) | link)
        block = A[:, free]
        rows = np.unique(block.indices)
        shift = activity[rows] - block[rows] @ x[free]
        model = MatrixLP(c=lp.c[free], A=block[rows].tocsr(), row_lower=lp.row_lower[rows] - shift,
                         row_upper=lp.row_upper[rows] - shift, col_lower=lp.col_lower[free],
                         col_upper=lp.col_upper[free], integer=lp.integer[free], sense=lp.sense,
                         offset=value - float(lp.c[free] @ x[free]))
        with c_stdout():
            # a node limit, not the clock, ends a village's MIP; its time limit (the time left) is only a ceiling
            # against hangs (a share of it bound on a busy machine, and the plan then depended on the load)
            h = _highs(model, SolverOptions(**{**options.as_dict(), "mip_rel_gap": POLISH_GAP}), max(left(), 0.01))
            h.setOptionValue("mip_max_nodes", POLISH_NODES)
            start = highspy_solution(x[free])
            h.setSolution(start)
            run_highs(h)
        if h.getInfo().primal_solution_status != 2:
            continue
        candidate = x.copy()
        candidate[free] = np.array(h.getSolution().col_value, dtype=float)
        candidate[lp.integer] = np.rint(candidate[lp.integer])
        new_value = float(lp.c @ candidate + lp.offset)
        if sign * new_value > sign * value and is_plan(lp, candidate):
            x, value, activity = candidate, new_value, lp.A @ candidate
            improved += 1
    return x, f"village polish: {improved} of {steps} villages improved the plan, objective {value:.8g}"


def highspy_solution(values: np.ndarray) -> object:
    """A HighsSolution holding column values (a MIP start)."""
    import highspy

    solution = highspy.HighsSolution()
    solution.col_value = np.asarray(values, dtype=float)
    solution.value_valid = True
    return solution


BRANCHED_PER_BLOCK = 2
"""General integers of a block (a village: its herd and ranger posts) that `integer_bound` branches on; the
branches of all blocks are solved together, 2**BRANCHED_PER_BLOCK LPs in all."""


def blocks(lp: MatrixLP, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's blocks, from a group (village) per parcel column: (block of each column, -1 where it links blocks;
    block of each row, -1 where it links blocks). A non-parcel column joins a block when every row holding it that
    holds grouped columns holds only that block's (a village's herd, posts, price segments); a row is local when
    all its columns are in one block."""
    A = lp.A.tocsr()
    entry_row = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    block = np.asarray(group, dtype=np.int64).copy()

    def row_span(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = block[A.indices]
        known = g >= 0
        low = np.full(A.shape[0], np.iinfo(np.int64).max)
        high = np.full(A.shape[0], -1)
        np.minimum.at(low, entry_row[known], g[known])
        np.maximum.at(high, entry_row[known], g[known])
        unknown = np.bincount(entry_row[~known], minlength=A.shape[0])
        return low, high, unknown

    low, high, _ = row_span(block)
    single = high >= 0
    single &= low == high
    loose = (block[A.indices] < 0) & single[entry_row]
    col_low = np.full(len(block), np.iinfo(np.int64).max)
    col_high = np.full(len(block), -1)
    np.minimum.at(col_low, A.indices[loose], low[entry_row[loose]])
    np.maximum.at(col_high, A.indices[loose], low[entry_row[loose]])
    joins = (block < 0) & (col_high >= 0) & (col_low == col_high)
    block[joins] = col_low[joins]
    low, high, unknown = row_span(block)
    row_block = np.where((high >= 0) & (low == high) & (unknown == 0), low, -1)
    return block, row_block


def integer_bound(lp: MatrixLP, relaxation: Relaxation, group: np.ndarray, options: SolverOptions,
                  say: Callable[[str], None] | None = None) -> tuple[float | None, str]:
    r"""A bound of the MIP tighter than the LP's, from the integrality of the few general integers per block.

    With the duals :math:`y` of the LP relaxation, price the rows that link blocks (villages): the rest of the
    model splits into blocks :math:`b` (a village's parcels, herd and ranger posts), and for any such prices

    .. math:: z^* \le \mathrm{const}(y) + \sum_b z_b, \qquad
              z_b = \max \{ (c - A_{\mathrm{link}}^\top y)\, x_b : x_b \in X_b \},

    where :math:`X_b` keeps the block's own rows and its integrality. Each :math:`z_b` is bounded by branching on
    its fractional general integers (:math:`h \le \lfloor h^* \rfloor` or :math:`h \ge \lceil h^* \rceil`, at most
    BRANCHED_PER_BLOCK of them): :math:`z_b \le \max_{\text{branches}} \bar z_b(\text{branch})`, each branch's LP
    bounded by its own Lagrangian bound over every column (`relax`), and never above the LP's own term. All blocks'
    branches are solved together (their LPs separate), so 2**BRANCHED_PER_BLOCK column generations in all. Where
    the LP's herds and posts are integral nothing changes; where rounding them costs, the bound drops by that cost.
    `group`: the block (village) of each parcel column, -1 elsewhere. Returns (bound or None, a note)."""
    began = time.perf_counter()
    if relaxation.y is None or relaxation.x is None:
        return None, "no LP duals to branch from"
    sign = 1.0 if lp.sense == "max" else -1.0
    _, owner, other = _structure(lp)
    AT = lp.A.T.tocsr()
    rows_term, _, col_term, ys = lagrangian_terms(lp, relaxation.y, owner, other, AT)
    col_block, row_block = blocks(lp, group)
    linking = row_block < 0
    cols = np.flatnonzero(col_block >= 0)
    local = np.flatnonzero(~linking)
    priced = sign * lp.c - AT @ np.where(linking, ys, 0.0)  # maximisation form, the linking rows priced
    constant = float(rows_term[linking].sum() + col_term[col_block < 0].sum()) + sign * lp.offset
    sep = MatrixLP(c=sign * priced[cols], A=lp.A.tocsr()[local][:, cols], row_lower=lp.row_lower[local],
                   row_upper=lp.row_upper[local], col_lower=lp.col_lower[cols], col_upper=lp.col_upper[cols],
                   integer=lp.integer[cols], sense=lp.sense)
    block_of_col, block_of_row = col_block[cols], row_block[local]
    n_blocks = int(block_of_col.max()) + 1 if len(cols) else 0
    _, sep_owner, sep_other = _structure(sep)
    parcel_block = np.zeros(int(sep_owner.max()) + 1 if (sep_owner >= 0).any() else 0, dtype=np.int64)
    parcel_block[sep_owner[sep_owner >= 0]] = block_of_col[sep_owner >= 0]
    sep_AT = sep.A.T.tocsr()

    def per_block(model: MatrixLP, y: np.ndarray) -> np.ndarray:
        rows_b, best_b, cols_b, _ = lagrangian_terms(model, y, sep_owner, sep_other, sep_AT)
        return (np.bincount(block_of_row, rows_b, n_blocks) + np.bincount(parcel_block, best_b, n_blocks)
                + np.bincount(block_of_col, cols_b, n_blocks))

    unbranched = per_block(sep, relaxation.y[local])
    x = relaxation.x[cols]
    binary = sep.integer & (sep.col_lower == 0) & (sep.col_upper == 1)
    fractional = np.flatnonzero(sep.integer & ~binary & (np.abs(x - np.rint(x)) > 1e-6))
    lp_bound = sign * (constant + unbranched.sum())
    if not len(fractional):
        return lp_bound, "the LP's general integers are integral: nothing to branch on"
    order = np.lexsort((fractional, block_of_col[fractional]))
    fractional = fractional[order]
    first = np.r_[True, block_of_col[fractional][1:] != block_of_col[fractional][:-1]]
    rank = np.arange(len(fractional)) - np.maximum.accumulate(np.where(first, np.arange(len(fractional)), 0))
    fractional, rank = fractional[rank < BRANCHED_PER_BLOCK], rank[rank < BRANCHED_PER_BLOCK]
    depth = np.bincount(block_of_col[fractional], minlength=n_blocks)
    n_combos = 2 ** int(depth.max())
    start = np.zeros(len(cols))
    start[np.flatnonzero(np.isin(cols, relaxation.columns))] = 1.0
    values = np.empty((n_combos, n_blocks))
    for combo in range(n_combos):
        up = ((combo >> rank) & 1).astype(bool)
        lower, upper = sep.col_lower.copy(), sep.col_upper.copy()
        upper[fractional[~up]] = np.floor(x[fractional[~up]])
        lower[fractional[up]] = np.ceil(x[fractional[up]])
        branch = MatrixLP(**{**sep.__dict__, "col_lower": lower, "col_upper": upper})
        left = options.time_limit - (time.perf_counter() - began)
        # the time left is a ceiling, not a share: a share could bind on a busy machine and change the bound
        solved = relax(branch, SolverOptions(**{**options.as_dict(), "time_limit": max(left, 0.01)}), start,
                       tolerance=0.0)
        if solved.y is None:
            return lp_bound, f"branch {combo + 1} of {n_combos} not solved in time"
        values[combo] = per_block(branch, solved.y)
        if say:
            say(f"integer bound, branch {combo + 1} of {n_combos}: {solved.note}")
    branched = np.full(n_blocks, -INF)
    for pattern in range(n_combos):
        for k in np.unique(depth):
            on = depth == k
            same = [m for m in range(n_combos) if m & ((1 << k) - 1) == pattern & ((1 << k) - 1)]
            branched[on] = np.maximum(branched[on], values[same][:, on].min(axis=0))
    bound = sign * (constant + np.minimum(unbranched, branched).sum())
    return bound, (f"integer bound: {len(fractional)} fractional herds/posts in {int((depth > 0).sum())} of "
                   f"{n_blocks} blocks, {n_combos} branch LPs, {time.perf_counter() - began:.1f} s: "
                   f"{bound:.8g} against the LP's {lp_bound:.8g}")


STRATEGY_SOLVERS["colgen"] = solve
