"""Explain an infeasible scenario: which villages cannot reach their floor and by how much, which limit binds.

The elastic model gives every target and limit (income floors, labour, budgets, forest cover, market limits) a
nonnegative slack and minimises the total relative violation; the slacks of the plan that comes closest are reported.
"""

from __future__ import annotations

import pandas as pd

from optiland.errors import InfeasibleError
from optiland.mip.solver import SolverOptions, Status
from optiland.model.backend import make_backend
from optiland.model.problem import PlanningProblem

DIAGNOSIS_SECONDS = 30.0
"""The most the elastic solve may take (within the command's own limit). The infeasibility is already proven when it
runs; it only finds the plan that comes closest. On a 240-parcel karst instance with no village worse off, HiGHS
finds that plan within 1% of the elastic LP's bound in under a second and then stalls with its MIP bound at 0 (by
hand, 2026-12-02: 57 s to its gap of 1e-4 alone, 290 s in the suite under load)."""
DIAGNOSIS_GAP = 1e-2
"""Relative gap within which the closest plan is accepted: the shortfalls it names are then within 1% of the least."""

_LABELS = {
    "income_floor": "income floor",
    "no_worse_off": "income today (no village worse off)",
    "labour": "labour available",
    "transfer_budget": "transfer (ecological-compensation) budget",
    "budget": "establishment budget",
    "township_budget": "township establishment budget",
    "forest_cover": "forest-cover floor",
    "market": "market limit",
    "feature_target": "feature target",
}


def _weights(problem: PlanningProblem, keys: list[tuple[str, object]]) -> dict[tuple[str, object], float]:
    """Violations are measured relative to their target, so that no unit dominates."""
    villages = problem.villages
    need = problem.floors_total()
    params = problem.params
    weights = {}
    for family, key in keys:
        if family == "income_floor":
            scale = need[key]
        elif family == "no_worse_off":
            scale = problem.no_worse_off_total()[key]
        elif family == "labour":
            scale = villages["labour_days"].iloc[key]
        elif family == "transfer_budget":
            scale = params.get("transfer_budget") or 1.0
        elif family == "budget":
            scale = params.get("budget") or 1.0
        elif family == "township_budget":
            scale = params["township_budgets"][problem.townships["township"].iloc[key]]
        elif family == "forest_cover":
            scale = (params.get("forest_cover_min") or 0.0) * problem.townships["area_mu"].iloc[key]
        elif family == "feature_target":
            scale = problem.spatial.targets[key] if problem.spatial is not None else 1.0
        elif family in ("area_min", "area_max"):
            low, high = problem.params["area_limits"][key]
            scale = low if family == "area_min" else high
        else:
            scale = problem.market.get(tuple(str(key).split(".")), 1.0)  # type: ignore[arg-type]
        weights[(family, key)] = 1.0 / max(float(scale), 1.0)
    return weights


def diagnose(problem: PlanningProblem, options: SolverOptions, backend_name: str = "auto") -> InfeasibleError:
    """Solve the elastic model (on `backend_name`: pyomo, matrix, or auto by size) and return an InfeasibleError
    whose message names every shortfall."""
    backend = make_backend(backend_name, problem)
    backend.build(problem, elastic=True)
    keys = backend.slack_keys
    backend.set_elastic_objective(_weights(problem, keys))
    options = SolverOptions(**{**options.as_dict(), "time_limit": min(options.time_limit, DIAGNOSIS_SECONDS),
                                 "mip_rel_gap": max(options.mip_rel_gap, DIAGNOSIS_GAP)})
    result = backend.solve(options)
    if not result.status.has_plan or result.x is None:
        if result.status in (Status.TIME_LIMIT, Status.INTERRUPTED):
            return InfeasibleError(f"the scenario is infeasible (proven); its diagnosis did not finish "
                                   f"({result.message}): give more time to see which targets cannot be met")
        hint = ("no allowed option changes what that constraint bounds" if "trivially infeasible" in result.message
                else "check the site rules: some parcel may have no allowed option")
        return InfeasibleError(f"the scenario is infeasible and the elastic diagnosis failed too ({result.message}); "
                               f"{hint}")
    slacks = backend.solution(result).slacks
    rows = []
    villages = problem.villages
    for (family, key), value in slacks.items():
        if value <= 1e-6:
            continue
        row = {"family": family, "key": key, "violation": value}
        if family == "income_floor":
            population = float(villages["population"].iloc[key])
            floor = float(villages["floor"].iloc[key])
            row.update(village=villages["village"].iloc[key], floor=floor,
                       best_per_capita=floor - value / population, short_per_capita=value / population)
            text = (f"village {villages['village'].iloc[key]} cannot reach its floor of {floor:,.0f} yuan per "
                    f"person: at best {floor - value / population:,.0f} (short by {value / population:,.0f} per "
                    f"person, {value:,.0f} yuan in all)")
        elif family == "no_worse_off":
            population = float(villages["population"].iloc[key])
            growth = float(villages["growth"].iloc[key])
            today = float(villages["income_before"].iloc[key]) / population
            target = (1.0 + growth) * today
            what = "its income of today" if growth == 0 else f"{growth:+.0%} over its income of today ({today:,.0f})"
            row.update(village=villages["village"].iloc[key], floor=target,
                       best_per_capita=target - value / population, short_per_capita=value / population)
            text = (f"village {villages['village'].iloc[key]} cannot keep {what}, {target:,.0f} yuan per person: "
                    f"at best {target - value / population:,.0f} (short by {value / population:,.0f} per person, "
                    f"{value:,.0f} yuan in all)")
        elif family == "labour":
            text = (f"village {villages['village'].iloc[key]} needs {value:,.0f} labour days more than its "
                    f"{villages['labour_days'].iloc[key]:,.0f} available")
        elif family == "forest_cover":
            text = (f"township {problem.townships['township'].iloc[key]} falls {value:,.1f} mu short of its "
                    f"forest-cover floor")
        elif family == "township_budget":
            text = (f"township {problem.townships['township'].iloc[key]} needs {value:,.0f} yuan more than its "
                    "establishment budget")
        elif family == "market":
            text = f"the market limit of {key} is exceeded by {value:,.1f} mu"
        elif family in ("area_min", "area_max"):
            scope, name = str(key).split(":", 1)
            where = "the plan" if scope == "*" else f"township {scope}"
            unit = "head" if name == "herd" else "mu"
            low, high = problem.params["area_limits"][key]
            text = (f"{where} falls {value:,.1f} {unit} short of its minimum of {low:,.0f} {unit} of {name}"
                    if family == "area_min" else
                    f"{where} exceeds its maximum of {high:,.0f} {unit} of {name} by {value:,.1f} {unit}")
        elif family == "feature_target":
            target = problem.spatial.targets[key] if problem.spatial is not None else float("nan")
            text = f"feature {key} falls {value:,.6g} short of its target {target:,.6g}"
        else:
            text = f"the {_LABELS[family]} is exceeded by {value:,.0f} yuan"
        row["text"] = text
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        message = ("the scenario is infeasible, yet every target can be met with zero slack: an objective bound "
                   "([constraints.bounds]) or a ranger/cattle integrality limit is what cannot be met")
    else:
        lines = [f"  - {t}" for t in table["text"]]
        closest = ("the plan that comes closest (least total relative shortfall" +
                   (")" if result.status == Status.OPTIMAL else
                    f", as found in {options.time_limit:g} s: gap {result.gap if result.gap is not None else 'unknown'}"
                    " to the least, not proven closest)"))
        message = f"the scenario is infeasible. In {closest}:\n" + "\n".join(lines)
    return InfeasibleError(message, table)
