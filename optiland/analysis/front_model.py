"""What the front engine talks to: the :class:`FrontModel` protocol and its adapter for any Pyomo model.

The engine (optiland.analysis.front_engine) only sets objectives, epsilon rows and bounds, solves and reads values;
:class:`PyomoFrontModel` compiles a Pyomo model once and changes only vectors between solves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp

from optiland.mip.solver import INF, MatrixLP, SolveResult, SolverOptions, solve_lp
from optiland.model.backend import compile_model, load_values

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

    # Optional (the engine checks with getattr): integer_valued(name) -> bool, whether an objective takes only
    # integer values (exact mode then steps it by 1 and weights the objectives integrally); remove(), to leave the
    # model as it was given; optiland_model: True for optiland's own land-use model (its strategy "auto" applies).


class PyomoFrontModel:
    """Adapter for any Pyomo ConcreteModel with objectives given as named expressions.

    A block (``_pareto``, or ``_pareto_1``... if the model has a component of that name) is added once: a free
    variable f_k defined by ``f_k == expression_k``, a slack s_k >= 0 and an epsilon row ``sigma_k f_k - s_k == e``
    per objective (sigma = -1 for a minimised one). The model is compiled once with Pyomo's standard-form compiler
    (as PyomoBackend does, optiland.model.backend.compile_model); afterwards only the objective vector, the
    right-hand sides of the epsilon rows (free when lifted) and the bounds of f change, so no point rebuilds or
    recompiles the model. The objective is put on the model's own columns (f_k substituted by its expression), so
    HiGHS sees an integral objective where the weights and expressions are integral.

    The model's own objectives are never touched and no value is loaded into its variables; :meth:`remove` deletes
    the block (optiland.analysis.front_engine.front calls it when it built the adapter, also when it raises).
    Strategy "auto" means the plain MIP here: LP-and-repair is made for optiland's own land-use model.
    """

    optiland_model = False
    """True for optiland's own land-use model (LandUseFrontModel): strategy "auto" (LP and repair) applies to it, and
    plans are loaded into its Pyomo model (its backend reads them from there)."""

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
        name, n = "_pareto", 0
        while model.component(name) is not None:
            n += 1
            name = f"_pareto_{n}"
        block = pyo.Block()
        model.add_component(name, block)
        self.block = block
        try:
            self._build(model, block, objectives)
        except BaseException:
            model.del_component(block)
            raise
        self.compile_seconds = time.perf_counter() - start

    def _build(self, model: pyo.ConcreteModel, block: pyo.Block, objectives: Mapping[str, Any]) -> None:
        """The block's components, the compiled matrix and where the block sits in it."""
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
            block.objective.deactivate()  # compiled: the model keeps its own objectives only
        self.columns = info.columns
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
        self.offset = 0.0
        self.x: np.ndarray | None = None
        self.last_plan: np.ndarray | None = None
        self.solves = 0
        self._neighbourhood: _Neighbourhood | None = None
        # f_k = (rhs - rest of the defining row . x) / coefficient of f_k: the expression on the model's columns
        self._expression: dict[str, tuple[np.ndarray, float]] = {}
        for i, k in enumerate(self.names):
            row = self._define_rows[i].toarray().ravel()
            coef = row[self._f[k]]
            row[self._f[k]] = 0.0
            self._expression[k] = (-row / coef, float(self.lp.row_upper[self._define[k]]) / coef)

    def integer_valued(self, name: str) -> bool:
        """Whether objective `name` takes only integer values: its expression has integer coefficients on integer
        columns only, and an integer constant."""
        coefficients, constant = self._expression[name]
        used = np.flatnonzero(coefficients)
        return bool(np.all(self.lp.integer[used]) and np.allclose(coefficients[used], np.rint(coefficients[used]),
                                                                   rtol=0, atol=1e-9)
                    and abs(constant - round(constant)) <= 1e-9)

    def set_objective(self, weights: Mapping[str, float], slack_weights: Mapping[str, float] | None = None) -> None:
        """Maximise sum_k weights[k] g_k + sum_k slack_weights[k] s_k; g_k on the model's own columns (its
        expression; the f_k column itself for optiland's model, whose strategy and scaling expect it there)."""
        self.c = np.zeros(len(self.columns))
        self.offset = 0.0
        for k, w in weights.items():
            if self.optiland_model:
                self.c[self._f[k]] += self.sign[k] * float(w)
            else:
                coefficients, constant = self._expression[k]
                self.c += self.sign[k] * float(w) * coefficients
                self.offset += self.sign[k] * float(w) * constant
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
        return MatrixLP(**{**self.lp.__dict__, "c": self.c, "sense": "max", "offset": self.offset,
                           "row_lower": self.row_lower.copy(), "row_upper": self.row_upper.copy(),
                           "col_lower": self.col_lower.copy(), "col_upper": self.col_upper.copy()})

    def solve(self, options: SolverOptions) -> SolveResult:
        """Solve with optiland.mip.solver.solve_lp, starting from the last plan found where it still holds (the
        previous stage of a lexicographic row always does: its bound keeps it feasible). Strategy "auto" is the
        plain MIP unless this is optiland's own model."""
        self.solves += 1
        if options.strategy == "auto" and not self.optiland_model:
            options = replace(options, strategy="mip")
        result = self._solve_lp(self.matrix(), options, self._start())
        self.x = None
        if result.x is not None:
            x = np.asarray(result.x, dtype=float).copy()
            x[self.lp.integer] = np.rint(x[self.lp.integer])
            self.x = self.last_plan = x
            if self.model is not None and self.optiland_model:  # its Pyomo backend reads the plan from the model
                load_values(self.columns, x)
        return result

    def _solve_lp(self, lp: MatrixLP, options: SolverOptions, start: np.ndarray | None) -> SolveResult:
        """Hand the matrix to optiland.mip.solver.solve_lp (LandUseFrontModel adds the land-use model's strategy)."""
        return solve_lp(lp, options, start=start)

    def _start(self) -> np.ndarray | None:
        """The last plan found, or on a model that is not optiland's the best plan of its neighbourhood (one or two
        binary columns flipped, :class:`_Neighbourhood`), its epsilon slacks set for the current right-hand sides
        (solve_lp uses it only if it satisfies the model)."""
        if self.last_plan is None:
            return None
        x = self.last_plan
        if not self.optiland_model:
            if self._neighbourhood is None:
                self._neighbourhood = _Neighbourhood(self)
            better = self._neighbourhood.search(self, x)
            x = better if better is not None else x
        return self._start_slacks(x)

    def _start_slacks(self, plan: np.ndarray) -> np.ndarray:
        """A copy of `plan` with each epsilon slack set for the current right-hand sides."""
        x = plan.copy()
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
        own = [j for j, v in enumerate(self.columns) if v.parent_block() is not self.block]
        return {self.columns[j].name: float(self.x[j]) for j in own}

    def remove(self) -> None:
        """Delete the block this adapter added to the model (its own objectives and rows were never changed)."""
        if self.model is not None and self.block.parent_block() is self.model:
            self.model.del_component(self.block)


class _Neighbourhood:
    """Local search over a model's binary columns, for a start plan at the next front point.

    Between front points only the epsilon right-hand sides, bounds and objective change, and the last plan usually
    violates the new epsilon row by a little: its neighbours (one or two binary columns flipped, every other
    column kept) often hold a plan as good as the new optimum, and a MIP that starts from a good plan spends far
    less on its root (on the knapsacks of benchmarks/pareto.py, giving each point its optimum as start took a third
    off the CPU time). The search is exact arithmetic on the matrix, a pure function of the last plan and the
    model: the start, and so the front, never depends on timing. Nothing here is trusted: solve_lp uses a start only
    if it satisfies every row, bound and integrality, and the solve proves its own optimum either way.

    Working space: the model's own columns (the block's f_k and s_k follow from them), its own rows, and one row
    per objective (f_k's expression) for the bounds and epsilon rows on f_k. Pairs are searched only where the
    dense work (rows x binaries^2) stays under PAIR_WORK.
    """

    PAIR_WORK = 20_000_000
    """Most row-times-pair checks per move (a 100-item knapsack with three objectives needs about 60,000)."""
    MOVES = 8
    """Most moves per start: the first restores feasibility, the others improve the objective."""

    def __init__(self, adapter: PyomoFrontModel) -> None:
        lp = adapter.lp
        n = len(adapter.columns)
        block_columns = [adapter._f[k] for k in adapter.names] + [adapter._s[k] for k in adapter.names]
        block_rows = [adapter._eps[k] for k in adapter.names] + [adapter._define[k] for k in adapter.names]
        self.own = np.setdiff1d(np.arange(n), block_columns)
        self.rows = np.setdiff1d(np.arange(lp.A.shape[0]), block_rows)
        own_A = lp.A.tocsr()[self.rows][:, self.own]
        expressions = np.array([adapter._expression[k][0][self.own] for k in adapter.names])
        self.R = sp.vstack([own_A, sp.csr_matrix(expressions)]).tocsr()
        lower, upper = lp.col_lower[self.own], lp.col_upper[self.own]
        self.binary = np.flatnonzero(lp.integer[self.own] & (lower >= 0) & (upper <= 1))
        m, nb = self.R.shape[0], len(self.binary)
        self.dense = self.R[:, self.binary].toarray() if m * nb <= self.PAIR_WORK else None
        self.pairs = self.dense is not None and m * nb * nb <= self.PAIR_WORK

    def search(self, adapter: PyomoFrontModel, plan: np.ndarray) -> np.ndarray | None:
        """The best plan found within MOVES moves of one or two flips from `plan` (its block columns set), or None
        when none satisfies the current rows and bounds."""
        if self.dense is None or not len(self.binary):
            return None
        names, sign = adapter.names, adapter.sign
        p = len(names)
        lo = np.r_[adapter.row_lower[self.rows], np.full(p, -INF)]
        hi = np.r_[adapter.row_upper[self.rows], np.full(p, INF)]
        m = len(lo) - p
        c = adapter.c[self.own].copy()
        for i, k in enumerate(names):
            coefficients, constant = adapter._expression[k]
            f = adapter._f[k]
            bottom, top = adapter.col_lower[f] - constant, adapter.col_upper[f] - constant
            e = adapter.row_lower[adapter._eps[k]]
            if np.isfinite(e):  # s_k = sigma_k f_k - e_k / lambda_k >= 0
                level = e / adapter._eps_scale[k]
                if sign[k] > 0:
                    bottom = max(bottom, level - constant)
                else:
                    top = min(top, -level - constant)
            lo[m + i], hi[m + i] = bottom, top
            # the objective on f_k and s_k, put on the model's columns (s_k moves with sigma_k f_k)
            c += (adapter.c[f] + sign[k] * adapter.c[adapter._s[k]]) * coefficients[self.own]
        tol = 1e-6 * np.maximum(1.0, np.maximum(np.abs(np.where(np.isfinite(lo), lo, 0)),
                                                np.abs(np.where(np.isfinite(hi), hi, 0))))
        lo, hi = lo - tol, hi + tol
        x = plan[self.own].copy()
        activity = self.R @ x
        feasible = bool(np.all(activity >= lo) and np.all(activity <= hi))
        cb = c[self.binary]
        for _ in range(self.MOVES):
            d = 1.0 - 2.0 * np.rint(x[self.binary])  # +1 flips a 0 up, -1 a 1 down
            step = self.dense * d
            gain = cb * d
            after = activity[:, None] + step
            single = np.all((after >= lo[:, None]) & (after <= hi[:, None]), axis=0)
            best, best_gain = None, 0.0 if feasible else -INF
            if single.any():
                j = int(np.argmax(np.where(single, gain, -INF)))
                if gain[j] > best_gain + 1e-9:
                    best, best_gain = (j,), float(gain[j])
            if self.pairs:
                ok = np.ones((len(d), len(d)), dtype=bool)
                np.fill_diagonal(ok, False)
                for r in range(len(lo)):
                    if not (np.isfinite(lo[r]) or np.isfinite(hi[r])):
                        continue
                    v = activity[r] + step[r][:, None] + step[r][None, :]
                    ok &= (v >= lo[r]) & (v <= hi[r])
                if ok.any():
                    total = np.where(ok, gain[:, None] + gain[None, :], -INF)
                    i, j = np.unravel_index(int(np.argmax(total)), total.shape)
                    if total[i, j] > best_gain + 1e-9:
                        best, best_gain = (int(i), int(j)), float(total[i, j])
            if best is None:
                break
            for j in best:
                x[self.binary[j]] += d[j]
                activity += step[:, j]
            feasible = True
        if not feasible:
            return None
        out = plan.copy()
        out[self.own] = x
        for k in names:
            coefficients, constant = adapter._expression[k]
            out[adapter._f[k]] = float(coefficients @ out + constant)
        return out
