"""The backend protocol (build once; set objective and bounds; solve; read) and its Pyomo reference implementation.

A backend turns a PlanningProblem into a solvable model. The Pareto loop and sensitivity sweeps talk only to this
protocol, so a faster backend (sparse matrices straight into highspy) can replace the Pyomo one for large instances.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import pyomo.environ as pyo
from pyomo.common.errors import InfeasibleConstraintException
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from optiland.errors import input_error
from optiland.mip.solver import INF, MatrixLP, SolveResult, SolverOptions, Status, highs_version, solve_lp
from optiland.model.formulation import build_model, objective_expression, structure_key, update_targets
from optiland.model.problem import PlanningProblem
from optiland.model.solution import Solution


class Backend(Protocol):
    """What the Pareto loop, sweeps and the solve pipeline need from a model."""

    name: str
    build_seconds: float
    matrix_seconds: float
    es_scale: dict[str, float]
    """R_s, the references of the ecosystem-services index (set by the solve pipeline: optiland.pipeline.reference)."""
    last_lp: MatrixLP | None
    reused: int

    @property
    def built(self) -> bool:
        """Whether build() has run."""

    def build(self, problem: PlanningProblem, elastic: bool = False) -> None:
        """Build the model's variables and constraints."""

    def update(self, problem: PlanningProblem) -> bool:
        """Take another problem's targets without rebuilding, if only they differ; False otherwise."""

    def set_objective(self, terms: dict[str, float], sense: str, scale: dict[str, float] | None = None,
                      weights: dict[str, float] | None = None) -> None:
        """Objective = sum of coefficient x named expression (income, cost, a service, ecosystem_services)."""

    def set_elastic_objective(self, weights: dict[tuple[str, Any], float]) -> None:
        """In a model built with `elastic`: minimise the weighted sum of the slacks."""

    @property
    def slack_keys(self) -> list[tuple[str, Any]]:
        """The (family, key) of each elastic slack, in a model built with `elastic`."""

    def set_bound(self, name: str, lower: float | None, upper: float | None) -> None:
        """Bound a named expression (None removes that side)."""

    def matrix(self) -> MatrixLP:
        """The current model in matrix form."""

    def solve(self, options: SolverOptions, start: np.ndarray | None = None) -> SolveResult:
        """Solve the current model (`start`: a plan of its columns to begin from, used if feasible)."""

    def solution(self, result: SolveResult) -> Solution:
        """Read the plan of a result."""


_SENSE = {1: "<=", -1: ">=", 0: "=="}


class PyomoBackend:
    """Reference backend: the readable Pyomo formulation, compiled to matrices and solved by HiGHS via highspy."""

    name = "pyomo"

    def __init__(self) -> None:
        self.model: pyo.ConcreteModel | None = None
        self.problem: PlanningProblem | None = None
        self.build_seconds = 0.0
        self.matrix_seconds = 0.0
        self._compiled: Any = None
        self.last_lp: MatrixLP | None = None
        self._structure: tuple[Any, ...] | None = None
        self.reused = 0

    @property
    def built(self) -> bool:
        """Whether build() has run."""
        return self.model is not None

    @property
    def es_scale(self) -> dict[str, float]:
        """R_s of the ecosystem-services index, kept on the model (``_es_scale``) where set_bound reads it."""
        return dict(getattr(self.model, "_es_scale", None) or {})

    @es_scale.setter
    def es_scale(self, scales: dict[str, float]) -> None:
        self._model()._es_scale = dict(scales)

    @property
    def slack_keys(self) -> list[tuple[str, Any]]:
        """The (family, key) of each elastic slack (empty unless built with `elastic`)."""
        m = self.model
        return list(m.slack_index) if m is not None and getattr(m, "_elastic", False) else []

    def build(self, problem: PlanningProblem, elastic: bool = False) -> None:
        """Build the Pyomo model (no objective yet)."""
        start = time.perf_counter()
        self.problem = problem
        self.model = build_model(problem, elastic=elastic)
        self._structure = structure_key(problem)
        self.build_seconds = time.perf_counter() - start

    def update(self, problem: PlanningProblem) -> bool:
        """Reuse the built model for a problem that differs only in its targets and limits (floors, budgets, caps,
        cover, market limits); False (nothing changed) when its structure differs and a new build is needed."""
        if self.model is None or self.problem is None or getattr(self.model, "_elastic", False):
            return False
        if structure_key(problem) != self._structure:
            return False
        update_targets(self.model, problem)
        for name in [c.name for c in self.model.component_objects(pyo.Constraint) if c.name.startswith("bound_")]:
            self.model.del_component(name)
        self.problem = problem
        self.reused += 1
        return True

    def set_objective(self, terms: dict[str, float], sense: str, scale: dict[str, float] | None = None,
                      weights: dict[str, float] | None = None) -> None:
        """Replace the objective by sum_k terms[k] x expression k."""
        m = self._model()
        if hasattr(m, "objective"):
            m.del_component("objective")
        expr = pyo.quicksum(float(c) * objective_expression(m, name, weights, scale) for name, c in terms.items())
        m.objective = pyo.Objective(expr=expr, sense=pyo.maximize if sense == "max" else pyo.minimize)
        self._compiled = None

    def set_elastic_objective(self, weights: dict[tuple[str, Any], float]) -> None:
        """Minimise the weighted sum of elastic slacks (to explain an infeasible scenario)."""
        m = self._model()
        if hasattr(m, "objective"):
            m.del_component("objective")
        m.objective = pyo.Objective(expr=pyo.quicksum(float(weights[k]) * m.slack[k] for k in m.slack_index),
                                    sense=pyo.minimize)
        self._compiled = None

    def set_bound(self, name: str, lower: float | None, upper: float | None) -> None:
        """Bound a named expression; replaces an earlier bound on the same name."""
        m = self._model()
        component = f"bound_{name}"
        if hasattr(m, component):
            m.del_component(component)
        expr = objective_expression(m, name, self.problem.params.get("weights") if self.problem else None,
                                    getattr(m, "_es_scale", None))
        if lower is None and upper is None:
            return
        if isinstance(expr, (int, float)):  # a constant (an index with no service to normalise): no row to add
            holds = (lower is None or expr >= lower) and (upper is None or expr <= upper)
            trivial = pyo.Constraint.Feasible if holds else pyo.Constraint.Infeasible
            m.add_component(component, pyo.Constraint(rule=lambda m: trivial))
        else:
            m.add_component(component, pyo.Constraint(expr=pyo.inequality(lower, expr, upper)))
        self._compiled = None

    def _model(self) -> pyo.ConcreteModel:
        if self.model is None:
            raise RuntimeError("build() first")
        return self.model

    def matrix(self) -> MatrixLP:
        """Compile the Pyomo model to HiGHS's row-bounded form with Pyomo's standard-form compiler."""
        start = time.perf_counter()
        lp, self._compiled = compile_model(self._model())
        self.matrix_seconds += time.perf_counter() - start
        return lp

    def solve(self, options: SolverOptions, start: np.ndarray | None = None) -> SolveResult:
        """Compile and solve (`start`: a plan of the compiled columns to begin from, used if feasible); load the
        values back into the Pyomo variables."""
        try:
            lp = self.matrix()
        except InfeasibleConstraintException as exc:  # a row without variables that cannot hold
            return SolveResult(Status.INFEASIBLE, None, None, None, None, 0.0, str(exc),
                               solver_version=highs_version())
        self.last_lp = lp
        result = solve_lp(lp, options, start=start)
        if result.x is not None:
            load_values(self._compiled.columns, result.x)
        return result

    def solution(self, result: SolveResult) -> Solution:
        """The plan of the last solve, read from the Pyomo variables."""
        m = self._model()
        n = len(m.A)

        def values(var: pyo.Var, size: int) -> np.ndarray:
            return np.array([pyo.value(var[i], exception=False) or 0.0 for i in range(size)], dtype=float)

        x = values(m.x, n)
        herd = np.rint(values(m.herd, len(m.V)))
        posts = np.rint(values(m.posts, len(m.V)))
        segments = {k: float(pyo.value(m.z[k], exception=False) or 0.0) for k in m.Z}
        slacks = {}
        if getattr(m, "_elastic", False):
            slacks = {k: float(pyo.value(m.slack[k], exception=False) or 0.0) for k in m.slack_index}
        return Solution(x=np.rint(x), herd=herd, posts=posts, segments=segments, slacks=slacks)


def compile_model(m: pyo.ConcreteModel) -> tuple[MatrixLP, Any]:
    """Compile a Pyomo model (one active objective) to HiGHS's row-bounded form with Pyomo's standard-form
    compiler; returns the matrix and the compiler's record (its `rows` and `columns` map back to the model)."""
    info = LinearStandardFormCompiler().write(m, mixed_form=True, set_sense=None)
    A = info.A.tocsr()
    rhs = np.asarray(info.rhs, dtype=float)
    lower = np.full(len(rhs), -INF)
    upper = np.full(len(rhs), INF)
    names = []
    for i, row in enumerate(info.rows):
        if row.bound_type <= 0:
            lower[i] = rhs[i]
        if row.bound_type >= 0:
            upper[i] = rhs[i]
        names.append(f"{row.constraint.name}{_SENSE[row.bound_type]}")
    columns = info.columns
    col_lower = np.array([-INF if v.lb is None else v.lb for v in columns], dtype=float)
    col_upper = np.array([INF if v.ub is None else v.ub for v in columns], dtype=float)
    integer = np.array([v.is_integer() or v.is_binary() for v in columns], dtype=bool)
    objective = info.objectives[0]
    c = np.asarray(info.c.toarray()[0] if hasattr(info.c, "toarray") else info.c[0], dtype=float)
    lp = MatrixLP(c=c, A=A, row_lower=lower, row_upper=upper, col_lower=col_lower, col_upper=col_upper,
                  integer=integer, sense="max" if objective.sense == pyo.maximize else "min",
                  offset=float(info.c_offset[0]), col_names=[v.name for v in columns], row_names=names)
    return lp, info


def load_values(columns: list[Any], x: np.ndarray) -> None:
    """Put a solution vector back into the Pyomo variables it was compiled from."""
    for var, value in zip(columns, x, strict=True):
        var.set_value(float(value), skip_validation=True)


AUTO_MATRIX_ROWS = 20_000
"""'auto' builds with the matrix backend above this many allowed (parcel, option, variant) rows."""
BACKENDS = ("pyomo", "matrix", "auto")


def make_backend(name: str, problem: PlanningProblem | None = None) -> Backend:
    """A backend by name: 'pyomo' (the readable reference), 'matrix' (optiland.model.matrix, vectorised) or 'auto'.

    Both build the same model (tests/test_matrix.py). 'auto' takes the matrix backend above AUTO_MATRIX_ROWS allowed
    rows, where Pyomo's build and compile cost seconds to minutes (48 times the matrix build at 100,000 parcels,
    benchmarks/results/build.csv), and Pyomo below it, where both take well under a second and the reference model
    (inspectable, writable as an LP file) costs nothing extra.
    """
    spatial = problem is not None and problem.needs_reference_backend
    if name == "auto":
        large = problem is not None and len(problem.allowed) > AUTO_MATRIX_ROWS
        name = "matrix" if large and not spatial else "pyomo"
    if name == "matrix" and spatial:
        raise input_error("the matrix backend builds neither boundary-penalty or feature-target rows nor parcels "
                          "outside villages; use --backend pyomo (auto picks it for such scenarios)",
                          column="backend", value=name)
    if name == "pyomo":
        return PyomoBackend()
    if name == "matrix":
        from optiland.model.matrix import MatrixBackend

        return MatrixBackend()
    raise input_error(f"unknown backend; known: {', '.join(BACKENDS)}", column="backend", value=name)
