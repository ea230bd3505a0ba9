r"""What would it take? Entry prices of the options a plan leaves out, and what one more unit of a target is worth.

A plan is optimal for its model: the scenario's objective (e.g. the ecosystem-service index), its targets (income
floors, no village worse off, the balance rule's income row, budgets, forest cover, caps...) and the catalog's
figures. This module asks the two questions a county bureau asks of it, on that same model (every target held at
the value it had in the run, the balance rule's income row included):

**Entry price of a lever.** A lever is the net income of a variant (``fruit.orah``: yuan per mu, the catalog's
``net_income_per_mu``), of an option (``afforestation``: all its variants together) or of a head of cattle
(``herd``: the catalog's ``livestock.net_income_per_head``). Raising a lever by t yuan adds t per mu (per head) to
the income of every column it pays (harvested area only: a red-line parcel earns nothing from harvest; rows that keep
the current use are not touched), in the objective if it counts income and in every row income enters (floors, no
village worse off, transfer shares, the income bound). With :math:`V_{\mathrm{in}}(t)` the best plan holding at
least one parcel (one head) of the lever and :math:`V_{\mathrm{out}}` the best plan without it (independent of t),
the **entry price** is the smallest t at which :math:`V_{\mathrm{in}}(t) > V_{\mathrm{out}}`: above it every optimal
plan holds the lever, at or below it a plan without it is optimal (a tie counts as "not entering").
:math:`V_{\mathrm{in}}` never falls as t rises (more income only loosens the rows income enters, which are all
"at least" rows or transfer caps, and adds to an income objective; a scenario bounding income from above breaks
this and is refused), so the entry price is found by bisection (`entry_price`): :math:`V_{\mathrm{out}}` once (the
lever's columns fixed at 0), then :math:`V_{\mathrm{in}}` (a row asking for one parcel or head of it) at today's price,
at a ceiling (1,000,000 yuan more: not entering there means income cannot bring it in), doubling from the LP estimate
until it enters, then halving the bracket to the tolerance asked. Each decision compares the two solves' plans and is
proven when their bounds allow (with a MIP gap of 0, always); the number of re-solves is reported.

The **LP estimate** (`entry_estimates`, every lever at the cost of one LP) is the same question asked of the LP
relaxation: the model's derivative in the lever (the model built once more with every lever raised by one yuan:
coefficients are linear in a lever, so the difference is exact) changes each of the lever's columns' reduced cost at
the relaxation's optimum by :math:`s_j = \Delta c_j - y^\top \Delta A_j` per yuan, so column j prices in at
:math:`t_j = -d_j / s_j` (:math:`d_j` its reduced cost; a priced variant's column counted with its share of the
first price step). The smallest :math:`t_j` is the estimate and its parcels the first ones; it is only an estimate:
the relaxation is not the plan (it may split parcels, and an integer plan needs a whole parcel, a whole head).

**Marginal value of a binding target** (`target_values`). Every row at its bound in the plan, or with a nonzero dual in
the LP relaxation (an integer plan can be held back by a target it meets with room to spare), definitions excepted, is a
target that binds (`binding`): a village's floor, no village worse off, the income row of the balance rule, a budget,
forest cover, a cap. One more unit of its figure (a yuan per capita of a floor, a yuan of a budget, a mu of forest cover
or of a cap, ...) changes the best objective by its marginal value. Fixing every integer variable at the plan and
re-solving the LP gives no information here: in this model every continuous column (price-step segments, option areas)
is defined by the integer ones, so the fixed LP has nothing left to move and its duals are zero or arbitrary. Reported
instead: the LP relaxation's dual (an estimate, exact for the relaxation over the range of its basis), and, on request,
the **parametric re-solve**: the MIP with the target raised by a step, whose objective change per unit is proven to lie
between two figures built from the two solves' plans and bounds (equal with a gap of 0).

Tables: `WhatIf.options` (one row per lever) and `WhatIf.targets` (one row per binding row); `write_whatif` writes
them to ``OUT/whatif/options.csv`` and ``OUT/whatif/targets.csv``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from optiland.errors import InputError, Issue, OptilandError
from optiland.io.tables import read_results_csv, write_csv
from optiland.mip.solver import (
    INF,
    MatrixLP,
    SolveResult,
    SolverOptions,
    Status,
    _highs,
    c_stdout,
    run_highs,
    solve_lp,
)
from optiland.model.backend import Backend, make_backend
from optiland.model.problem import PlanningProblem
from optiland.pipeline.outcome import Prepared, RunOutcome, objective_terms
from optiland.progress import current

HERD = "herd"
"""The lever of the cattle's net income per head (the name area limits give the herd too)."""
DEFINITIONS = ("one_use", "option_area_def", "price_step_link")
"""Row families that hold by definition: never a target."""
TOL = 1e-6


# ---------------------------------------------------------------------------------------------------- the model


@dataclass
class Model:
    """The model a plan was solved in, as matrices, with the plan's columns and the derivative in every lever.

    `lp` is the model as solved; `x` the plan's column values; `value`, `bound` its objective and the run's proven
    bound; `dc`, `dA` the change of the objective and of the matrix when every lever rises by one yuan (a column
    belongs to one lever: `lever_of` gives it, "" for none)."""

    problem: PlanningProblem
    lp: MatrixLP
    x: np.ndarray
    value: float
    bound: float
    options: SolverOptions
    dc: np.ndarray
    dA: sp.csc_matrix
    lever_of: np.ndarray
    row_of: np.ndarray
    """The allowed row of every parcel column (-1 for the others: herds, posts, segments, ...), read from the column
    names (``x[i]``): a backend may order its columns as it likes."""
    notes: list[str] = field(default_factory=list)

    @property
    def sign(self) -> float:
        """+1 for a maximised objective, -1 for a minimised one."""
        return 1.0 if self.lp.sense == "max" else -1.0

    def chosen_rows(self, x: np.ndarray) -> np.ndarray:
        """Per allowed row, whether the plan `x` chooses it."""
        chosen = np.zeros(len(self.problem.allowed), dtype=bool)
        cols = np.flatnonzero(self.row_of >= 0)
        chosen[self.row_of[cols]] = x[cols] > 0.5
        return chosen

    def columns(self, lever: str) -> np.ndarray:
        """Columns a lever pays (parcel columns and price-step segments of its variants, or the herds)."""
        if lever == HERD:
            return np.flatnonzero(self.lever_of == HERD)
        option = np.array([name.split(".", 1)[0] for name in self.lever_of], dtype=object)
        return np.flatnonzero((self.lever_of == lever) | ((option == lever) & (self.lever_of != HERD)))

    def choice_columns(self, lever: str) -> np.ndarray:
        """The columns whose being positive means the lever is in a plan: its parcel columns, or the herds."""
        cols = self.columns(lever)
        return cols if lever == HERD else cols[self.row_of[cols] >= 0]

    def at(self, lever: str, t: float) -> MatrixLP:
        """The model with the lever raised by t yuan per mu (per head)."""
        if t == 0.0:
            return self.lp
        cols = self.columns(lever)
        mask = np.zeros(len(self.lp.c))
        mask[cols] = 1.0
        c = self.lp.c + t * self.dc * mask
        A = (self.lp.A + t * (self.dA @ sp.diags(mask))).tocsr()
        A.eliminate_zeros()
        return replace(self.lp, c=c, A=A)


def _column_index(lp: MatrixLP) -> dict[str, int]:
    return {name: j for j, name in enumerate(lp.col_names)}


def _lever_names(problem: PlanningProblem, lp: MatrixLP) -> np.ndarray:
    """The lever of every column: ``option.variant`` for a parcel column or a price-step segment, ``herd`` for a
    herd, "" for any other."""
    names = np.full(len(lp.c), "", dtype=object)
    a = problem.allowed
    pair = (a["option"].astype(str) + "." + a["variant"].astype(str)).to_numpy()
    for j, name in enumerate(lp.col_names):
        head, _, rest = name.partition("[")
        if head == "x":
            names[j] = pair[int(rest.rstrip("]"))]
        elif head == HERD:
            names[j] = HERD
        elif head == "z":  # z[v,'option.variant',k]
            names[j] = rest.split(",")[1].strip("'\" ")
    return names


def shifted_problem(problem: PlanningProblem, shifts: dict[str, float]) -> PlanningProblem:
    """The problem with levers raised: ``{"fruit.orah": 100.0}`` adds 100 yuan per mu to the variant's net income
    (an option's name raises all its variants, ``herd`` the net income per head), on the harvested area of the rows
    that convert the parcel (a row keeping the current use earns the current use's income)."""
    a = problem.allowed.copy()
    variants = problem.catalog.variants.copy()
    params = dict(problem.params)
    harvested = a["area"].to_numpy(dtype=float) * a["harvest"].to_numpy(dtype=bool) * a["converted"].to_numpy(
        dtype=bool)
    options, pairs = a["option"].to_numpy(), (a["option"].astype(str) + "." + a["variant"].astype(str)).to_numpy()
    income = a["income"].to_numpy(dtype=float).copy()
    for lever, t in shifts.items():
        if lever == HERD:
            params["livestock"] = {**params["livestock"],
                                   "net_income_per_head": float(params["livestock"]["net_income_per_head"]) + t}
            continue
        rows = (pairs == lever) | (options == lever)
        income[rows] += t * harvested[rows]
        keys = [key for key in variants.index if f"{key[0]}.{key[1]}" == lever or key[0] == lever]
        variants.loc[keys, "net_income_per_mu"] = variants.loc[keys, "net_income_per_mu"].astype(float) + t
    a["income"] = income
    return replace(problem, allowed=a, catalog=replace(problem.catalog, variants=variants), params=params)


def _build(problem: PlanningProblem, backend_name: str, es_scale: dict[str, float],
           bounds: dict[str, tuple[float | None, float | None]]) -> tuple[Backend, MatrixLP]:
    """Build the model as the solve pipeline does (optiland.pipeline.run.solve_prepared): the index's reference,
    the bounds set on named expressions (the balance rule's income row), the scenario's objective."""
    backend = make_backend(backend_name, problem)
    backend.build(problem)
    if es_scale:
        backend.es_scale = dict(es_scale)
    for name, (lower, upper) in bounds.items():
        backend.set_bound(name, lower, upper)
    params = problem.params
    backend.set_objective(objective_terms(problem), params["sense"], scale=es_scale, weights=params["weights"])
    return backend, backend.matrix()


def _set_bounds(problem: PlanningProblem, balance_need: float | None) -> dict[str, tuple[float | None, float | None]]:
    bounds: dict[str, tuple[float | None, float | None]] = {}
    es = problem.params["bounds"].get("ecosystem_services")
    if es is not None:
        bounds["ecosystem_services"] = tuple(es)  # type: ignore[assignment]
    if balance_need is not None:
        lower, upper = problem.params["bounds"].get("income", (None, None))
        bounds["income"] = (max(balance_need, lower) if lower is not None else balance_need, upper)
    return bounds


def _lp_solve(lp: MatrixLP, options: SolverOptions, lower: np.ndarray | None = None,
              upper: np.ndarray | None = None) -> dict[str, Any] | None:
    """The LP relaxation (integrality dropped; column bounds replaced if given) by dual simplex: values, row duals,
    reduced costs and objective, or None if not solved to optimality. Duals follow HiGHS: the row dual is the
    objective's change per unit of the row's active bound, the reduced cost c - A'y."""
    import highspy

    model = replace(lp, integer=np.zeros(len(lp.c), dtype=bool),
                    col_lower=lp.col_lower if lower is None else lower,
                    col_upper=lp.col_upper if upper is None else upper)
    with c_stdout():  # HiGHS prints a banner when constructed
        h = _highs(model, options, options.time_limit)
        h.setOptionValue("solver", "simplex")
        run_highs(h)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = h.getSolution()
    return {"x": np.array(solution.col_value), "row_dual": np.array(solution.row_dual),
            "col_dual": np.array(solution.col_dual), "objective": float(h.getInfo().objective_function_value)}


def _mip(model: Model, lp: MatrixLP, start: np.ndarray | None) -> SolveResult:
    """The MIP as the matrix backend solves it (column generation from COLGEN_COLUMNS columns with strategy auto,
    with the village of each parcel column for its integer bound); `start` used if it satisfies the model."""
    from optiland.model.matrix import COLGEN_COLUMNS

    options = model.options
    villages = None
    if options.strategy == "auto" and len(lp.c) >= COLGEN_COLUMNS and lp.integer.any():
        options = replace(options, strategy="colgen")
    if options.strategy == "colgen":
        villages = np.full(len(lp.c), -1, dtype=np.int64)
        cols = np.flatnonzero(model.row_of >= 0)
        villages[cols] = model.problem.allowed["village"].to_numpy()[model.row_of[cols]]
    if start is not None and not _feasible(lp, start):
        start = None
    return solve_lp(lp, options, start=start, villages=villages)


def _feasible(lp: MatrixLP, x: np.ndarray, tol: float = 1e-6) -> bool:
    activity = lp.A @ x
    scale = tol * np.maximum(1.0, np.abs(activity))
    return bool(np.all(activity >= lp.row_lower - scale) and np.all(activity <= lp.row_upper + scale)
                and np.all(x >= lp.col_lower - tol) and np.all(x <= lp.col_upper + tol))


def build_model(prepared: Prepared, x_integer: dict[str, float], options: SolverOptions, backend_name: str,
                es_scale: dict[str, float], balance_need: float | None, bound: float | None) -> Model:
    """The model a plan was solved in, and the plan's columns: `x_integer` gives the plan's integer columns by name
    (``x[i]``, ``herd[v]``, ``posts[v]``; the others 0), the continuous ones are solved for with the integers fixed
    (which also proves the plan satisfies the rebuilt model)."""
    problem = prepared.problem
    if problem.spatial is not None and problem.spatial.caps:
        raise OptilandError("what-if does not handle neighbourhood caps (their rows are added lazily by the solve)")
    if problem.params["bounds"].get("income", (None, None))[1] is not None:
        raise OptilandError("what-if needs income to only loosen the model: an upper bound on income breaks that")
    bounds = _set_bounds(problem, balance_need)
    _, lp = _build(problem, backend_name, es_scale, bounds)
    shifts = {f"{o}.{v}": 1.0 for o, v in problem.allowed[["option", "variant"]].drop_duplicates().itertuples(
        index=False, name=None)}
    _, lp1 = _build(shifted_problem(problem, {**shifts, HERD: 1.0}), backend_name, es_scale, bounds)
    if list(lp.col_names) != list(lp1.col_names) or list(lp.row_names) != list(lp1.row_names) or not (
            np.array_equal(lp.row_lower, lp1.row_lower) and np.array_equal(lp.row_upper, lp1.row_upper)):
        raise AssertionError("raising the net incomes changed the model's rows or columns")
    index = _column_index(lp)
    lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
    fixed = lp.integer.copy()
    lower[fixed] = upper[fixed] = 0.0
    for name, value in x_integer.items():
        lower[index[name]] = upper[index[name]] = value
    solved = _lp_solve(lp, options, lower, upper)
    if solved is None:
        raise OptilandError("the plan does not satisfy the model rebuilt from its scenario (inputs or catalog "
                            "changed since the run? `optiland check` says where)")
    x = solved["x"]
    x[fixed] = np.rint(x[fixed])
    value = float(lp.c @ x + lp.offset)
    return Model(problem=problem, lp=lp, x=x, value=value, bound=value if bound is None else float(bound),
                 options=options, dc=lp1.c - lp.c, dA=(lp1.A - lp.A).tocsc(), lever_of=_lever_names(problem, lp),
                 row_of=np.array([int(n[2:-1]) if n.startswith("x[") else -1 for n in lp.col_names], dtype=np.int64))


def _balance_need(notes: Sequence[str]) -> float | None:
    """The balance rule's income row, from its note (optiland.pipeline.run.balance_income): yuan/yr."""
    for note in notes:
        found = re.match(r"balance: .*? at least ([\d,]+(?:\.\d+)?) yuan/yr", note)
        if found:
            return float(found.group(1).replace(",", ""))
    return None


def model_of_outcome(outcome: RunOutcome, options: SolverOptions | None = None) -> Model:
    """The model of a solved scenario (optiland.solve's RunOutcome): its plan and the run's options and bound."""
    problem = outcome.prepared.problem
    need = None
    if problem.params.get("income_gain_share") is not None:
        lp = getattr(outcome.model, "last_lp", None)  # the model as last solved (none after a decomposition)
        if lp is not None:  # exact: the income row's bound plus the expression's constant (non-land income)
            names = list(lp.row_names)
            if "bound_income>=" in names:
                nonland = float((problem.villages["nonland_income_per_capita"] * problem.villages["population"]).sum())
                need = float(lp.row_lower[names.index("bound_income>=")]) + nonland
        need = need if need is not None else _balance_need(outcome.notes)
    x_integer = _integer_columns(problem, outcome.solution.chosen_rows(), outcome.solution.herd, outcome.solution.posts)
    return build_model(outcome.prepared, x_integer, options or outcome.options, outcome.backend, outcome.es_scale,
                       need, outcome.result.bound)


def _integer_columns(problem: PlanningProblem, rows: np.ndarray, herd: np.ndarray,
                     posts: np.ndarray) -> dict[str, float]:
    values = {f"x[{int(r)}]": 1.0 for r in rows}
    values.update({f"herd[{v}]": float(h) for v, h in enumerate(herd)})
    values.update({f"posts[{v}]": float(p) for v, p in enumerate(posts)})
    return values


def model_of_folder(out_dir: str | Path, options: SolverOptions | None = None) -> Model:
    """The model of a results folder written by `optiland solve`: its scenario (run.json's scenario_path), the plan
    in plan.gpkg and villages.csv, the run's solver options, bound and index reference, the balance rule's income row
    as run.json's note gives it (to the yuan; lowered to the plan's income if rounding raised it)."""
    import pyogrio

    from optiland.pipeline.run import prepare

    out_dir = Path(out_dir)
    run_file = out_dir / "run.json"
    if not run_file.is_file():
        raise InputError([Issue("not a results folder (no run.json)", file=str(out_dir))])
    run = json.loads(run_file.read_text(encoding="utf-8"))
    if not run.get("scenario_path"):
        raise InputError([Issue("run.json names no scenario file", file=str(run_file), column="scenario_path")])
    if "transition" in run or "marxan_score" in run or "front" in run:
        raise InputError([Issue("what-if reads the folder of a solve of the scenario's own objective (not a "
                                "transition, a Marxan import or a point picked from a front, whose plan answers its "
                                "point's bounds)", file=str(run_file))])
    path = Path(run["scenario_path"])
    if not path.is_absolute() and not path.is_file() and (out_dir / path).is_file():
        path = out_dir / path
    prepared = prepare(path)
    problem = prepared.problem
    parcels = pyogrio.read_dataframe(out_dir / "plan.gpkg", layer="parcels", read_geometry=False,
                                     columns=["parcel_id", "option", "variant"])
    villages = read_results_csv(out_dir / "villages.csv", dtype={"village": str})
    a = problem.allowed
    ids = problem.parcels["parcel_id"].astype(str).to_numpy()
    key = pd.MultiIndex.from_arrays([ids[a["parcel"].to_numpy()], a["option"].astype(str), a["variant"].astype(str)])
    position = pd.Series(np.arange(len(a)), index=key)
    wanted = pd.MultiIndex.from_arrays([parcels["parcel_id"].astype(str), parcels["option"].astype(str),
                                        parcels["variant"].astype(str)])
    rows = position.reindex(wanted)
    if rows.isna().any() or len(parcels) != problem.n_parcels:
        bad = parcels[rows.isna().to_numpy()].head(5)
        raise InputError([Issue("the plan's choice is not an allowed row of the rebuilt model", file=str(
            out_dir / "plan.gpkg"), row=str(r.parcel_id), column="option", value=f"{r.option}.{r.variant}")
            for r in bad.itertuples()] or [Issue("the plan does not cover every parcel", file=str(out_dir))])
    by_village = villages.set_index("village").reindex(problem.villages["village"].astype(str))
    herd = by_village["herd"].fillna(0).to_numpy(dtype=float)
    posts = by_village["ranger_posts"].fillna(0).to_numpy(dtype=float)
    saved = dict((run.get("solver") or {}).get("options") or {})
    saved.pop("log_file", None)
    fields = set(SolverOptions.__dataclass_fields__)
    options = options or SolverOptions(**{k: v for k, v in saved.items() if k in fields})
    need = None
    if problem.params.get("income_gain_share") is not None:
        need = _balance_need(run.get("notes") or [])
        if need is None:
            raise InputError([Issue("run.json has no balance note giving the income row", file=str(run_file),
                                    column="notes")])
        need = min(need, float(villages["income_total"].sum())) if "income_total" in villages else need
    scale = ((run.get("reference") or {}).get("values")) or {}
    objective = run.get("objective") or {}
    model = build_model(prepared, _integer_columns(problem, rows.to_numpy(dtype=np.int64), herd, posts), options,
                        str(run.get("backend") or "auto"), scale, need, objective.get("bound"))
    recorded = objective.get("value")
    if recorded is not None and abs(model.value - float(recorded)) > 1e-6 * max(1.0, abs(float(recorded))):
        model.notes.append(f"the plan's objective in the rebuilt model is {model.value:.8g}, run.json says "
                           f"{float(recorded):.8g}")
    return model


# ------------------------------------------------------------------------------------------------ entry prices


def levers(model: Model) -> pd.DataFrame:
    """Every lever with its net income now, and what of it the plan holds (mu, or head)."""
    p = model.problem
    a = p.allowed
    chosen = model.chosen_rows(model.x)
    convert = a["converted"].to_numpy(dtype=bool)
    rows = []
    variants = p.catalog.variants
    pair = (a["option"].astype(str) + "." + a["variant"].astype(str)).to_numpy()
    options = a["option"].to_numpy()
    area = a["area"].to_numpy(dtype=float)
    for option in sorted(set(options[convert])):
        members = sorted(set(pair[convert & (options == option)]))
        incomes = [float(variants.loc[tuple(g.split(".", 1)), "net_income_per_mu"]) for g in members]
        rows.append({"lever": option, "kind": "option", "unit": "yuan/mu",
                     "income_now": incomes[0] if min(incomes) == max(incomes) else np.nan,
                     "in_plan": float(area[chosen & (options == option)].sum()),
                     "allowed_mu": _parcel_area(p, convert & (options == option))})
        if len(members) > 1:
            for g in members:
                rows.append({"lever": g, "kind": "variant", "unit": "yuan/mu",
                             "income_now": float(variants.loc[tuple(g.split(".", 1)), "net_income_per_mu"]),
                             "in_plan": float(area[chosen & (pair == g)].sum()),
                             "allowed_mu": _parcel_area(p, pair == g)})
    herd_cols = model.columns(HERD)
    if len(herd_cols) and bool(a["livestock_area"].to_numpy().any()):
        rows.append({"lever": HERD, "kind": "livestock", "unit": "yuan/head",
                     "income_now": float(p.params["livestock"]["net_income_per_head"]),
                     "in_plan": float(model.x[herd_cols].sum()), "allowed_mu": np.nan})
    return pd.DataFrame(rows)


def _parcel_area(problem: PlanningProblem, rows: np.ndarray) -> float:
    parcels = np.unique(problem.allowed["parcel"].to_numpy()[rows])
    return float(problem.parcels["area_mu"].to_numpy()[parcels].sum())


def _first_parcels(model: Model, x: np.ndarray, lever: str, limit: int = 10) -> tuple[str, float]:
    """The parcels (ids, largest first) or villages (head) a plan gives the lever, and their area (head)."""
    p = model.problem
    cols = model.choice_columns(lever)
    if lever == HERD:
        values = np.rint(x[cols])
        villages = p.villages["village"].to_numpy()
        order = [i for i in np.argsort(-values, kind="stable") if values[i] > 0]
        return ", ".join(f"{villages[i]} {int(values[i])} head" for i in order[:limit]), float(values.sum())
    held = model.row_of[cols[x[cols] > 0.5]]
    area = p.allowed["area"].to_numpy()[held]
    ids = p.parcels["parcel_id"].astype(str).to_numpy()[p.allowed["parcel"].to_numpy()[held]]
    order = np.argsort(-area, kind="stable")
    text = ", ".join(ids[order[:limit]]) + (f" and {len(held) - limit} more" if len(held) > limit else "")
    return text, float(area.sum())


def entry_estimates(model: Model, names: Sequence[str], relaxation: dict[str, Any] | None = None,
                    limit: int = 5) -> pd.DataFrame:
    """The LP estimate of every lever's entry price (yuan more per mu or head than now) and the parcels it would
    take first, from one LP relaxation (see the module's docstring)."""
    lp = model.lp
    relaxation = relaxation or _lp_solve(lp, model.options)
    out = []
    if relaxation is None:
        return pd.DataFrame([{"lever": g, "lp_subsidy": np.nan, "lp_first_parcels": "LP relaxation not solved"}
                             for g in names])
    y, x_lp = relaxation["row_dual"], relaxation["x"]
    d = lp.c - lp.A.T @ y
    s = model.dc - model.dA.T @ y
    harvested = model.problem.allowed["area"].to_numpy(dtype=float) * model.problem.allowed["harvest"].to_numpy(
        dtype=bool)
    z_of = {}
    for j, name in enumerate(lp.col_names):
        if name.startswith("z["):
            v, g, k = name[2:-1].split(",")
            if int(k) == 0:
                z_of[(int(v), g.strip("'\" "))] = j
    village = model.problem.allowed["village"].to_numpy()
    ids = model.problem.parcels["parcel_id"].astype(str).to_numpy()
    for lever in names:
        cols = model.choice_columns(lever)
        dj, sj = d[cols].copy(), s[cols].copy()
        if lever != HERD:  # a priced variant's income is in its segments: take the parcel with its first-step share
            for i, j in enumerate(cols):
                row = model.row_of[j]
                z = z_of.get((int(village[row]), str(model.lever_of[j])))
                if z is not None:
                    dj[i] += harvested[row] * d[z]
                    sj[i] += harvested[row] * s[z]
        used = x_lp[cols] > TOL
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(model.sign * sj > 1e-12, -dj / sj, INF)
        t = np.where(used, 0.0, np.maximum(t, 0.0))
        order = np.argsort(t, kind="stable")
        best = float(t[order[0]]) if len(t) else INF
        if lever == HERD:
            first = ", ".join(str(model.problem.villages["village"].iloc[int(i)]) for i in order[:limit]
                              if np.isfinite(t[i]))
        else:
            parcels = model.problem.allowed["parcel"].to_numpy()[model.row_of[cols[order]]]
            first = ", ".join(dict.fromkeys(ids[parcels[np.isfinite(t[order])]][:limit]))
        out.append({"lever": lever, "lp_subsidy": best if np.isfinite(best) else np.nan,
                    "lp_first_parcels": first if np.isfinite(best) else "no price brings it into the LP relaxation",
                    "lp_uses_now": bool(used.any())})
    return pd.DataFrame(out)


@dataclass
class Entry:
    """A lever's entry price by bisection: the lever enters at `high` (yuan more than now: every optimal plan holds
    it) and not at `low`; `first` the parcels (villages, for the herd) of the plan at `high`."""

    lever: str
    low: float
    high: float
    first: str
    first_amount: float
    resolves: int
    proven: bool
    note: str = ""


def _compare(model: Model, res: SolveResult, out: SolveResult) -> tuple[bool, bool]:
    """Whether the plan holding the lever beats the best plan without it, and whether the solves' bounds prove the
    answer (a tie counts as not entering)."""
    sign = model.sign
    tol = max(model.options.mip_abs_gap, 1e-9 * max(1.0, abs(out.objective or 0.0)))
    if res.status == Status.INFEASIBLE or res.objective is None:
        return False, res.status == Status.INFEASIBLE
    if out.objective is None:
        return True, out.status == Status.INFEASIBLE
    value_in, value_out = sign * res.objective, sign * out.objective
    bound_in = sign * (res.bound if res.bound is not None else (INF if sign > 0 else -INF))
    bound_out = sign * (out.bound if out.bound is not None else (INF if sign > 0 else -INF))
    enters = value_in > value_out + tol
    proven = value_in > bound_out + tol if enters else bound_in <= value_out + tol
    return enters, proven


def entry_price(model: Model, lever: str, tolerance: float = 1.0, start_high: float | None = None,
                max_shift: float = 1e6) -> Entry:
    """The lever's entry price by bisection on its net income (module docstring): yuan per mu (per head) more than
    now, to `tolerance`. One MIP without the lever, then one per price tried (at 0 first, then doubling from
    `start_high` until it enters, then halving the bracket)."""
    lp = model.lp
    cols = model.choice_columns(lever)
    current().stage(f"{lever}: the best plan without it")
    if not len(cols):
        raise InputError([Issue("no allowed row pays this lever", column="lever", value=lever)])
    upper = lp.col_upper.copy()
    upper[cols] = 0.0
    without = replace(lp, col_upper=upper)
    start = model.x if not (model.x[cols] > 0.5).any() else None
    out = _mip(model, without, start)
    resolves = 1
    if out.status == Status.INFEASIBLE:
        out = SolveResult(Status.INFEASIBLE, None, None, None, None, 0.0)
    elif not out.status.has_plan:
        raise OptilandError(f"{lever}: the plan without it was not solved ({out.status.value}: {out.message})")
    force = sp.csr_matrix((np.ones(len(cols)), (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, len(lp.c)))
    names = lp.row_names.extended([f"whatif_holds[{lever}]>="]) if hasattr(lp.row_names, "extended") else [
        *lp.row_names, f"whatif_holds[{lever}]>="]

    def solve_at(t: float, hint: np.ndarray | None) -> SolveResult:
        current().stage(f"{lever}: re-solve {resolves + 1} at {t:+,.2f} yuan per unit")
        at = model.at(lever, t)
        forced = replace(at, A=sp.vstack([at.A, force], format="csr"), row_lower=np.append(at.row_lower, 1.0),
                         row_upper=np.append(at.row_upper, INF), row_names=names)
        return _mip(model, forced, hint)

    proven = True
    res = solve_at(0.0, None)
    resolves += 1
    enters, sure = _compare(model, res, out)
    if enters:
        first, amount = _first_parcels(model, res.x, lever) if res.x is not None else ("", 0.0)
        return Entry(lever, -INF, 0.0, first, amount, resolves, sure, "holds it at today's price: the plan without it "
                     "is not better (within the solver's gap)")
    proven &= sure
    hint = res.x
    res = solve_at(max_shift, hint)
    resolves += 1
    enters, sure = _compare(model, res, out)
    proven &= sure
    if not enters:
        return Entry(lever, max_shift, INF, "", 0.0, resolves, proven,
                     f"never: not even at {max_shift:,.0f} more (something else than income keeps it out)")
    low, high, best = 0.0, max_shift, res
    probe = max(start_high or 0.0, tolerance, 1.0)
    while probe < high / 2:  # from the estimate up, doubling: the bracket is then halved
        res = solve_at(probe, best.x)
        resolves += 1
        enters, sure = _compare(model, res, out)
        proven &= sure
        if enters:
            high, best = probe, res
            break
        low, probe = probe, 2.0 * probe
    while high - low > tolerance:
        mid = 0.5 * (low + high)
        res = solve_at(mid, best.x)
        resolves += 1
        enters, sure = _compare(model, res, out)
        proven &= sure
        if enters:
            high, best = mid, res
        else:
            low = mid
    first, amount = _first_parcels(model, best.x, lever)
    return Entry(lever, low, high, first, amount, resolves, proven)


# -------------------------------------------------------------------------------------------- binding targets

_UNITS = {
    "income_floor": ("yuan/yr per capita", "village income floor"),
    "no_worse_off": ("yuan/yr per capita", "no village worse off (income at least today's)"),
    "transfer_budget": ("yuan/yr", "ecological-compensation budget (compensation and ranger wages)"),
    "transfer_share": ("yuan/yr of transfers", "cap on the share of income from transfers"),
    "carrying_capacity": ("head", "herd within the forage's carrying capacity"),
    "ranger_posts": ("mu of closed hills", "ranger posts need closed hills to guard"),
    "ranger_households": ("posts", "at most this many ranger posts per household"),
    "labour": ("days/yr", "village labour"),
    "budget": ("yuan", "establishment budget"),
    "township_budget": ("yuan", "township establishment budget"),
    "diversity": ("mu", "no single variety dominates its option in a township"),
    "area_min": ("mu", "minimum area (demonstration base)"),
    "area_max": ("mu", "maximum area (market plan)"),
    "forest_cover": ("mu", "forest cover of the township"),
    "market": ("mu", "market cap of the variant"),
    "price_step_width": ("mu", "width of a price step"),
    "bound_income": ("yuan/yr", "total income at least the balance rule's figure"),
    "bound_ecosystem_services": ("index", "bound on the ecosystem-service index"),
    "objective_bound": ("objective units", "a bound of the scenario on a named total"),
}


def objective_unit(problem: PlanningProblem) -> str:
    """The objective's unit in words."""
    name = problem.params["objective"]
    return {"income": "yuan/yr of total income", "cost": "yuan of establishment cost",
            "ecosystem_services": "points of the ecosystem-service index"}.get(name, f"units of {name} gain")


def binding(model: Model, relaxation: dict[str, Any] | None = None, tol: float = 1e-6) -> list[tuple[int, str, bool]]:
    """Rows that bind, definitions and equalities excepted: at their bound in the plan (tight), or with a nonzero
    dual in the LP relaxation (in an integer plan a target can hold it back with room to spare: a whole parcel or
    head more would break it). Returns (row, side '>=' or '<=', tight in the plan)."""
    lp = model.lp
    activity = lp.A @ model.x
    scale = tol * np.maximum(1.0, np.abs(activity))
    engaged = abs(lp.A) @ np.abs(model.x) > tol
    dual = relaxation["row_dual"] if relaxation is not None else np.zeros(len(lp.row_lower))
    x_lp = relaxation["x"] if relaxation is not None else model.x
    lp_activity = lp.A @ x_lp
    out = []
    for i in range(len(lp.row_lower)):
        low, high = np.isfinite(lp.row_lower[i]), np.isfinite(lp.row_upper[i])
        if lp.row_lower[i] == lp.row_upper[i]:
            continue
        at_low = low and engaged[i] and activity[i] <= lp.row_lower[i] + scale[i]
        at_high = high and engaged[i] and activity[i] >= lp.row_upper[i] - scale[i]
        priced = abs(dual[i]) > tol * max(1.0, abs(model.value))
        if not (at_low or at_high or priced):
            continue
        family = lp.row_names[i].split("[")[0].rstrip("<=>")
        if family in DEFINITIONS:
            continue
        if at_low or at_high:
            side = ">=" if at_low else "<="
        else:
            side = ">=" if low and (not high or abs(lp_activity[i] - lp.row_lower[i]) <= abs(
                lp_activity[i] - lp.row_upper[i])) else "<="
        out.append((i, side, bool(at_low or at_high)))
    return out


def _row_unit(model: Model, name: str) -> tuple[str, str, str, float, float]:
    """(family, key, unit, row units per unit, the row bound's offset) of a row: a floor's unit is a yuan per capita
    (the row counts the village's yuan, less its non-land income)."""
    family = name.split("[")[0].rstrip("<=>")
    key = name[len(family):].rstrip("<=>").strip("[]")
    unit, _ = _UNITS.get(family, ("row units", family))
    per, offset = 1.0, 0.0
    if family in ("income_floor", "no_worse_off"):
        v = int(key)
        villages = model.problem.villages
        per = float(villages["population"].iloc[v])
        offset = float(villages["nonland_income_per_capita"].iloc[v] * villages["population"].iloc[v])
        key = str(villages["village"].iloc[v])
    elif family == "bound_income":
        offset = float((model.problem.villages["nonland_income_per_capita"]
                        * model.problem.villages["population"]).sum())
    elif family in ("transfer_share", "labour", "carrying_capacity", "ranger_posts", "ranger_households"):
        key = str(model.problem.villages["village"].iloc[int(key)])
    elif family in ("forest_cover", "township_budget"):
        key = str(model.problem.townships["township"].iloc[int(key)])
    elif family == "diversity":
        t, _, g = key.partition(",")
        key = f"{model.problem.townships['township'].iloc[int(t)]} {g.strip(chr(39))}"
    return family, key.strip("'"), unit, per, offset


def target_values(model: Model, relaxation: dict[str, Any] | None = None, resolve: bool | Sequence[str] = False,
                  step: float = 0.01) -> pd.DataFrame:
    """One row per binding target (`binding`): its figure, the LP relaxation's dual per unit of it, and with
    `resolve` (True, or row names or families) the parametric re-solve: the MIP with the figure raised by `step` (a
    share of the figure, at least one unit), its objective change per unit, and the bracket the solves' bounds
    prove."""
    lp = model.lp
    relaxation = relaxation or _lp_solve(lp, model.options)
    rows = []
    activity = lp.A @ model.x
    for i, side, tight in binding(model, relaxation):
        name = lp.row_names[i]
        family, key, unit, per, offset = _row_unit(model, name)
        bound = lp.row_lower[i] if side == ">=" else lp.row_upper[i]
        figure = (bound + offset) / per
        dual = float(relaxation["row_dual"][i]) * per if relaxation is not None else np.nan
        row = {"row": name.rstrip("<=>"), "family": family, "key": key, "meaning": _UNITS.get(family, ("", family))[1],
               "sense": side, "figure": figure, "unit": unit, "in_plan": (activity[i] + offset) / per, "tight": tight,
               "lp_value_per_unit": dual}
        wanted = resolve is True or (not isinstance(resolve, bool) and (name.rstrip("<=>") in resolve
                                                                        or family in resolve))
        if wanted:
            delta = max(abs(figure) * step, 1.0)
            row.update(_resolve_row(model, i, side, delta * per, delta))
        rows.append(row)
    return pd.DataFrame(rows, columns=TARGET_COLUMNS) if not rows else pd.DataFrame(rows)


def _resolve_row(model: Model, i: int, side: str, change: float, delta: float) -> dict[str, Any]:
    """Re-solve the MIP with row i's active bound raised by `change` row units (`delta` in the target's unit)."""
    lp = model.lp
    current().stage(f"{lp.row_names[i].rstrip('<=>')}: re-solve with the figure raised by {delta:,.6g}")
    lower, upper = lp.row_lower.copy(), lp.row_upper.copy()
    if side == ">=":
        lower[i] += change
    else:
        upper[i] += change
    res = _mip(model, replace(lp, row_lower=lower, row_upper=upper), model.x)
    out: dict[str, Any] = {"step": delta, "resolves": 1}
    if res.status == Status.INFEASIBLE:
        out.update(value_per_unit=-INF * model.sign, value_low=np.nan, value_high=np.nan,
                   resolve_note="no plan meets the target raised by the step")
        return out
    if res.objective is None:
        out.update(value_per_unit=np.nan, value_low=np.nan, value_high=np.nan,
                   resolve_note=f"re-solve ended without a plan ({res.status.value})")
        return out
    new_lo, new_hi = sorted((res.objective, res.bound if res.bound is not None else model.sign * INF))
    old_lo, old_hi = sorted((model.value, model.bound))
    out.update(value_per_unit=(res.objective - model.value) / delta, value_low=(new_lo - old_hi) / delta,
               value_high=(new_hi - old_lo) / delta, resolve_note=f"re-solve {res.status.value}, gap "
               f"{res.gap if res.gap is not None else float('nan'):.1e}")
    return out


# ----------------------------------------------------------------------------------------------- the whole study


@dataclass
class WhatIf:
    """The study's two tables and how many MIPs and LPs it solved."""

    options: pd.DataFrame
    targets: pd.DataFrame
    objective_unit: str
    notes: list[str] = field(default_factory=list)


def whatif(source: RunOutcome | str | Path, exact: bool | Sequence[str] = False, resolve: bool | Sequence[str] = False,
           tolerance: float = 1.0, step: float = 0.01, options: SolverOptions | None = None,
           gap: float | None = None, time_limit: float | None = None) -> WhatIf:
    """What would it take, for a solved scenario (a RunOutcome) or a results folder.

    `exact`: levers (``fruit.orah``, ``afforestation``, ``herd``) whose entry price is found by bisection to
    `tolerance` yuan per mu (per head), or True for every lever the plan leaves out; `resolve`: binding rows (names
    such as ``no_worse_off[3]`` or families such as ``budget``) whose marginal value is re-solved with their figure
    raised by `step` (a share, at least one unit), or True for all. `options`: the solver's (default the run's),
    with `gap` and `time_limit` (seconds per MIP) replacing theirs if given."""
    model = model_of_outcome(source, options) if isinstance(source, RunOutcome) else model_of_folder(source, options)
    changes = {k: v for k, v in (("mip_rel_gap", gap), ("time_limit", time_limit)) if v is not None}
    model.options = replace(model.options, **changes)
    relaxation = _lp_solve(model.lp, model.options)
    table = levers(model)
    absent = table[table["in_plan"] <= TOL]
    estimates = entry_estimates(model, list(absent["lever"]), relaxation)
    table = table.merge(estimates, on="lever", how="left")
    table["status"] = np.where(table["in_plan"] > TOL, "in the plan", "absent")
    caps = target_values(model, relaxation)
    for family in ("market", "area_max", "diversity"):  # a cap that binds (met exactly, or priced by the relaxation)
        for row in caps[caps["family"] == family].itertuples():
            lever = row.key.split(" ")[-1] if family == "diversity" else row.key.split(":")[-1]
            table.loc[(table["lever"] == lever) & (table["in_plan"] > TOL), "status"] = f"capped ({row.row})"
    if exact is True:
        chosen = list(absent["lever"])
    else:
        chosen = list(exact or [])
    unknown = [g for g in chosen if g not in set(table["lever"])]
    if unknown:
        raise InputError([Issue(f"unknown lever; known: {', '.join(table['lever'])}", column="exact", value=g)
                          for g in unknown])
    found = {}
    for lever in chosen:
        estimate = table.loc[table["lever"] == lever, "lp_subsidy"]
        hint = float(estimate.iloc[0]) if len(estimate) and np.isfinite(estimate.iloc[0]) else None
        found[lever] = entry_price(model, lever, tolerance, start_high=hint)
    table["subsidy_low"] = [found[g].low if g in found else np.nan for g in table["lever"]]
    table["subsidy"] = [found[g].high if g in found and np.isfinite(found[g].high) else np.nan
                        for g in table["lever"]]
    table["entry_price"] = table["income_now"] + table["subsidy"]
    table["lp_entry_price"] = table["income_now"] + table["lp_subsidy"]
    table["first_parcels"] = [found[g].first if g in found else "" for g in table["lever"]]
    table["first_amount"] = [found[g].first_amount if g in found else np.nan for g in table["lever"]]
    table["resolves"] = [found[g].resolves if g in found else 0 for g in table["lever"]]
    table["proven"] = [found[g].proven if g in found else False for g in table["lever"]]
    table["note"] = [found[g].note if g in found else "" for g in table["lever"]]
    targets = target_values(model, relaxation, resolve, step).reindex(columns=TARGET_COLUMNS)
    notes = list(model.notes)
    gap = model.options.mip_rel_gap
    if found or (not targets.empty and targets["resolves"].fillna(0).gt(0).any()):
        notes.append(f"re-solves: each MIP at a gap of {gap:g}" + (f", entry prices by bisection to {tolerance:g} yuan "
                     "per unit" if found else "") + "; the model is the run's, every target held at its value in "
                     "the run")
    table["name"], table["name_zh"] = zip(*[_names(model.problem, g) for g in table["lever"]], strict=True)
    table["summary"] = [_option_sentence(row, gap) for row in table.to_dict("records")]
    targets["summary"] = [_target_sentence(row, objective_unit(model.problem), model.value)
                          for row in targets.to_dict("records")]
    return WhatIf(options=table.reindex(columns=OPTION_COLUMNS), targets=targets.reindex(columns=TARGET_COLUMNS),
                  objective_unit=objective_unit(model.problem), notes=notes)


OPTION_COLUMNS = ["lever", "kind", "name", "name_zh", "status", "unit", "income_now", "in_plan", "allowed_mu",
                  "lp_entry_price", "lp_subsidy", "lp_first_parcels", "lp_uses_now", "entry_price", "subsidy",
                  "subsidy_low", "first_parcels", "first_amount", "resolves", "proven", "note", "summary"]
"""Columns of options.csv: a lever (``option``, ``option.variant`` or ``herd``), its catalog names, whether the plan
holds it (``in_plan``: mu, or head), its net income now (yuan/mu or yuan/head; empty for an option whose variants
differ); the LP estimate of its entry price, of the subsidy that takes it there (entry price less income now) and of
the parcels it takes first, and whether the LP relaxation already uses it (fractionally: then the estimate is 0);
the entry price by bisection (`subsidy`: the smallest tested subsidy at which it enters, `subsidy_low`: the largest
at which it does not), the parcels of the plan at that price and their area (head), the number of MIPs solved and
whether their bounds prove every decision; `summary`, the finding in a sentence."""
TARGET_COLUMNS = ["row", "family", "key", "meaning", "sense", "figure", "unit", "in_plan", "tight", "lp_value_per_unit",
                  "step", "value_per_unit", "value_low", "value_high", "resolves", "resolve_note", "summary"]
"""Columns of targets.csv: a binding row (`binding`), its family and key (village, township, variant), what it
means, its sense and figure in its unit, the plan's value of it and whether the plan meets it exactly; the
objective's change per unit more of the figure by the LP relaxation's dual, and by re-solving with the figure raised
by `step` units (`value_low`, `value_high`: the bracket the solves' bounds prove); `summary`, in a sentence."""


def _option_sentence(row: dict[str, Any], gap: float) -> str:
    """A lever's finding in words a planner reads."""
    unit = str(row["unit"])
    each = unit.split("/")[1]
    what = f"{row['lever']} ({row['name']})"
    if row["in_plan"] > TOL:
        held = f"{row['in_plan']:,.0f} {'head' if row['lever'] == HERD else 'mu'}"
        return f"{what} is in the plan ({held})" + ("" if row["status"] == "in the plan" else f", {row['status']}")
    now = "" if pd.isna(row["income_now"]) else f" (now {row['income_now']:,.0f} {unit})"
    if row["resolves"]:
        if pd.isna(row["subsidy"]):
            return f"{what}{now}: {row['note']}; {int(row['resolves'])} re-solves"
        price = (f"a net income of {row['entry_price']:,.0f} {unit}{now}, a subsidy of {row['subsidy']:,.0f} yuan per "
                 f"{each}" if pd.notna(row["entry_price"]) else f"{row['subsidy']:,.0f} yuan per {each} more on "
                 "every variant")
        amount = f"{row['first_amount']:,.0f} {'head' if row['lever'] == HERD else 'mu'}"
        sure = ("proven by the solves' bounds" if row["proven"] else
                f"decided within the solver's gap of {gap:g}")
        return (f"{what} enters the plan at {price}; first on {row['first_parcels']} ({amount}); between "
                f"{row['subsidy_low']:,.0f} and {row['subsidy']:,.0f} more, {int(row['resolves'])} re-solves, {sure}")
    if row.get("lp_uses_now") is True:
        return f"{what}{now}: the LP relaxation already uses it on parts of parcels; ask --exact for its price"
    if pd.isna(row["lp_subsidy"]):
        return f"{what}{now}: no net income brings it into the LP relaxation"
    if row["lp_subsidy"] == 0:
        return f"{what}{now}: the LP relaxation is indifferent to it at today's price; ask --exact for its price"
    return (f"{what}{now}: the LP estimate is {row['lp_subsidy']:,.0f} yuan per {each} more, first on "
            f"{row['lp_first_parcels']} (an estimate; --exact for the price)")


def _target_sentence(row: dict[str, Any], unit: str, value: float) -> str:
    """A binding target's marginal value in words (a rate whose change over the step is below the objective's
    rounding, 1e-9 of `value`, reads 0)."""

    def rate(v: float) -> str:
        return "0" if abs(v * (row.get("step") or 1.0)) <= 1e-9 * max(1.0, abs(value)) else f"{v:.4g}"

    where = f" ({row['key']})" if isinstance(row.get("key"), str) and row["key"] else ""
    head = f"{row['meaning']}{where} at {row['figure']:,.6g} {row['unit']}"
    if pd.notna(row.get("value_per_unit")):
        return (f"{head}: one {row['unit']} more changes the objective by {rate(row['value_per_unit'])} {unit} "
                f"(re-solved with {row['step']:,.6g} more; proven between {rate(row['value_low'])} and "
                f"{rate(row['value_high'])}; LP dual {row['lp_value_per_unit']:.4g})")
    return (f"{head}: one {row['unit']} more changes the objective by about {row['lp_value_per_unit']:.4g} {unit} "
            "(LP dual)")


def _names(problem: PlanningProblem, lever: str) -> tuple[str, str]:
    """A lever's name and Chinese name in the catalog."""
    catalog = problem.catalog
    if lever == HERD:
        return "cattle", "肉牛"
    option, _, variant = lever.partition(".")
    table, key = (catalog.variants, (option, variant)) if variant else (catalog.options, option)
    row = table.loc[key]
    return str(row.get("name", lever)), str(row.get("name_zh", ""))


def write_whatif(study: WhatIf, out_dir: str | Path) -> Path:
    """Write ``OUT/whatif/options.csv`` and ``targets.csv`` (UTF-8 with BOM, for Excel) and ``notes.json``."""
    from optiland.pipeline.outdir import write_atomically

    def write(folder: Path) -> None:
        write_csv(study.options, folder / "options.csv")  # formula-like text protected (optiland.io.tables)
        write_csv(study.targets, folder / "targets.csv")
        (folder / "notes.json").write_text(json.dumps({"objective_unit": study.objective_unit, "notes": study.notes},
                                                      indent=1, ensure_ascii=False), encoding="utf-8")

    return write_atomically(Path(out_dir) / "whatif", write, kind="whatif")
