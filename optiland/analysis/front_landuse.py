"""The land-use front: the land-use model of a PlanningProblem as a FrontModel, the current-use baseline, every
point's plan as a table, a scenario's front in one call (run_front), and a front point back into a full solve."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optiland.analysis.front_engine import Front, Progress, front
from optiland.analysis.front_model import PyomoFrontModel
from optiland.errors import OptilandError
from optiland.mip.solver import MatrixLP, SolveResult, SolverOptions, solve_lp
from optiland.model.backend import PyomoBackend, Solution
from optiland.model.formulation import objective_expression
from optiland.model.problem import PlanningProblem

OBJECTIVES = ("ecosystem_services", "carbon", "soil", "water", "habitat", "income", "cost")
"""Objective names of the land-use model (cost is minimised, the others maximised)."""


class LandUseFrontModel(PyomoFrontModel):
    """Adapter over the land-use model of a PlanningProblem, on either backend (optiland.model.backend.make_backend).

    Objective names: ecosystem_services (the index sum_s w_s G_s / R_s, R_s the reference of
    optiland.pipeline.run.index_reference: the parcels' potential, or the scenario's pinned values), carbon, soil,
    water, habitat, income, cost (minimised). The scenario's bounds hold (a bound on the index too).

    On PyomoBackend the ``_pareto`` block is added to the Pyomo model and compiled (PyomoFrontModel). On
    MatrixBackend the same block (same columns, rows and names) is appended to its matrix
    (optiland.model.matrix.MatrixBackend.front_lp), and the inherited matrix-level methods (set_objective, set_epsilon,
    set_bound, matrix, values) run unchanged on it.
    """

    optiland_model = True

    def __init__(self, problem: PlanningProblem, objectives: Sequence[str], options: SolverOptions,
                 backend: Any = None) -> None:
        from optiland.model.backend import make_backend
        from optiland.pipeline.run import index_reference

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
        self.reference: dict[str, Any] | None = None
        self.notes: list[str] = []
        self.scale_seconds = 0.0
        bounds = problem.params.get("bounds") or {}
        if "ecosystem_services" in objectives or "ecosystem_services" in bounds:
            start = time.perf_counter()
            reference = index_reference(problem)
            self.reference = reference.record()
            self.es_scale, self.notes = reference.values, list(reference.notes)
            self.scale_seconds = time.perf_counter() - start
            if not self.es_scale:
                raise OptilandError("no ecosystem service can gain on these parcels (every weighted service's "
                                    "potential is 0); choose another objective")
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

    def _solve_lp(self, lp: MatrixLP, options: SolverOptions, start: np.ndarray | None) -> SolveResult:
        """As the matrix backend solves its model (MatrixBackend.solve): strategy "auto" is column generation from
        COLGEN_COLUMNS columns, with each parcel column's village for its integer bound (the block's columns belong
        to none), so that a front point is solved as fast as the scenario alone (the start plan's columns join the
        generated ones: optiland.mip.colgen.relax)."""
        from optiland.model.matrix import COLGEN_COLUMNS, MatrixBackend

        if not isinstance(self.backend, MatrixBackend) or self.backend.elastic or not lp.integer.any():
            return solve_lp(lp, options, start=start)
        if options.strategy == "auto" and len(lp.c) >= COLGEN_COLUMNS:
            options = replace(options, strategy="colgen")
        if options.strategy != "colgen":
            return solve_lp(lp, options, start=start)
        villages = self.backend.column_villages()
        villages = np.r_[villages, np.full(len(lp.c) - len(villages), -1, dtype=villages.dtype)]
        # column generation prices parcel columns by their objective: the objective on f_k goes onto f_k's
        # expression (the same value for every plan, the defining rows hold)
        c, offset = lp.c.copy(), float(lp.offset)
        for k in self.names:
            weight = c[self._f[k]]
            if weight:
                coefficients, constant = self._expression[k]
                c += weight * coefficients
                offset += weight * constant
                c[self._f[k]] = 0.0
        lp = MatrixLP(**{**lp.__dict__, "c": c, "offset": offset})
        return solve_lp(lp, options, start=start, villages=villages)

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


def outcome_from_front(prepared: Any, front_dir: Any, pick: str, options: SolverOptions) -> tuple[Any, dict]:
    """A front point as a full solve outcome: its plan (parcel choices, herd, posts) is fixed, each front objective
    bounded at the point's value, and the model solved with the scenario's objective (the LP left decides only the
    price-step areas). Returns the RunOutcome and the record of the point for run.json."""
    import json
    from pathlib import Path

    from optiland.pipeline.run import RunOutcome, index_reference

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
    params = problem.params
    reference = index_reference(problem)  # closed form: the plan's run.json and townships.csv carry it, as solve's
    notes += reference.notes
    recorded = dict((run.get("reference") or {}).get("values") or run.get("es_scale") or {})
    if recorded and (set(recorded) != set(reference.values) or any(
            abs(recorded[s] - v) > 1e-9 * max(1.0, abs(v)) for s, v in reference.values.items())):
        notes.append("the front's index reference differs from this scenario's; the front's values are used")
        reference = replace(reference, values=recorded, kind="pinned", pinned=sorted(recorded))
    scales = reference.values
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
        es_scale=scales, reference=reference, times={"read": prepared.read_seconds, "build": backend.build_seconds,
                                "solve": time.perf_counter() - start},
        model_size={"variables": n_cols, "binaries": int(lp.integer.sum()), "constraints": n_rows, "nonzeros": nnz,
                    "allowed_rows": len(allowed), "parcels": problem.n_parcels}, notes=notes)
    record = {"dir": str(front_dir.resolve()), "pick": pick, "point": int(key), "objectives": run["objectives"],
              "values": {name: float(row[name]) for name in run["objectives"]},
              "epsilon": {k: float(row[k]) for k in row.index if str(k).startswith("eps_")}}
    return outcome, record
