"""Property tests on random tiny instances: the pipeline either returns a plan that breaks no constraint and is
optimal (against the brute force of tests/bruteforce.py), or raises InfeasibleError and no plan exists."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optiland.check import check_plan
from optiland.errors import InfeasibleError, InputError
from optiland.pipeline.results import make_plan
from tests.bruteforce import (
    agrees,
    es_scales,
    expected,
    optimal_plan,
    plan_tables,
    prepare_tiny,
    scales_agree,
    solve_exact,
    villages_table,
)

USES = ("0101", "0103", "0305", "0404", "1206")  # the small catalog's current_uses
MAX_PLANS = 150_000  # assignments x village integers: the instance is cut to parcels that fit
OVERRIDES = {"rangers.mu_per_post": 10}
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


@st.composite
def instances(draw: st.DrawFn) -> dict[str, Any]:
    n_villages = draw(st.integers(1, 2))
    townships = ["T1", draw(st.sampled_from(["T1", "T2"]))][:n_villages]
    villages = [(f"V{i + 1}", townships[i], draw(st.integers(1, 10)), draw(st.integers(1, 3)),
                 float(draw(st.integers(0, 30)) * 50), float(draw(st.integers(0, 50)) * 100))
                for i in range(n_villages)]
    parcels = []
    for i in range(draw(st.integers(2, 6))):
        status = draw(st.sampled_from(["plain", "plain", "red_line", "basic_farmland"]))
        parcels.append({
            "parcel_id": f"P{i}", "village": f"V{i % n_villages + 1}", "land_use": draw(st.sampled_from(USES)),
            "slope_deg": float(draw(st.integers(0, 45))), "bedrock_exposure": float(draw(st.integers(0, 100))),
            "soil_depth_cm": 50.0, "karst": draw(st.booleans()), "red_line": status == "red_line",
            "basic_farmland": status == "basic_farmland", "area_mu": float(draw(st.integers(1, 16))),
        })
    constraints: dict[str, Any] = {}
    optional = {
        "income_floor": st.integers(0, 24).map(lambda k: k * 500.0),
        "transfer_budget": st.integers(0, 8).map(lambda k: k * 5000.0),
        "max_transfer_share": st.sampled_from([0.2, 0.5, 0.8, 1.0]),
        "budget": st.integers(0, 10).map(lambda k: k * 10000.0),
        "diversity_cap": st.sampled_from([0.5, 0.7, 1.0]),
        "forest_cover_min": st.sampled_from([0.1, 0.3, 0.6]),
    }
    for key, strategy in optional.items():
        value = draw(_maybe(strategy))
        if value is not None:
            constraints[key] = value
    if draw(st.integers(0, 4)) > 0:  # mostly a low floor: the catalog default (4,000) is often out of reach
        constraints.setdefault("income_floor", 0.0)
    if draw(st.booleans()):
        constraints["township_budgets"] = {"T1": draw(st.integers(0, 6)) * 10000.0}
    if draw(st.booleans()):
        constraints["market"] = {draw(st.sampled_from(["herbs.paris", "fruit.pomelo", "forage.forage"])):
                                 float(draw(st.integers(0, 20)))}
    if draw(st.booleans()):
        constraints["village_floors"] = {"V1": draw(st.integers(0, 20)) * 500.0}
    bound = draw(st.sampled_from([None, "income", "cost", "carbon", "ecosystem_services"]))
    if bound == "income":
        constraints["bounds"] = {"income": [draw(st.integers(0, 30)) * 5000.0, None]}
    elif bound == "cost":
        constraints["bounds"] = {"cost": [None, draw(st.integers(0, 10)) * 10000.0]}
    elif bound == "carbon":
        constraints["bounds"] = {"carbon": [draw(st.integers(0, 10)) * 0.25, None]}
    elif bound == "ecosystem_services":
        constraints["bounds"] = {"ecosystem_services": [draw(st.integers(0, 4)) * 0.25, None]}
    overrides = {**OVERRIDES, "livestock.head_per_mu": draw(st.sampled_from([0.1, 0.2])),
                 "variants.fruit.pomelo.net_income_per_mu": draw(st.sampled_from([3000, 6000]))}
    if draw(st.booleans()):  # fruit inside red lines, with or without its harvest income there
        overrides["options.fruit.red_line_allowed"] = True
        overrides["options.fruit.red_line_harvest"] = draw(st.booleans())
    objective = draw(st.sampled_from(["income", "cost", "ecosystem_services"]))
    weights = {}
    if objective == "ecosystem_services" and draw(st.booleans()):
        weights = {s: float(draw(st.integers(0, 3))) for s in ("carbon", "soil", "water", "habitat")}
        if not any(weights.values()):
            weights["carbon"] = 1.0
    return {"parcels": parcels, "villages": villages, "constraints": constraints, "overrides": overrides,
            "objective": objective, "weights": weights}


def _prepare(spec: dict[str, Any]) -> Any:
    """Build the instance, dropping trailing parcels until the enumeration is small (each village keeps one)."""
    villages = villages_table(spec["villages"])
    parcels = pd.DataFrame(spec["parcels"])
    while True:
        prepared = prepare_tiny(parcels, villages, spec["objective"], spec["constraints"], spec["overrides"],
                                spec["weights"])
        problem = prepared.problem
        rows = np.bincount(problem.allowed["parcel"], minlength=problem.n_parcels)
        if int(np.prod(rows)) * _village_grid(problem) <= MAX_PLANS or len(parcels) <= len(villages):
            return prepared
        parcels = parcels.iloc[:-1]


def _village_grid(problem: Any) -> int:
    """How many (herd, posts) combinations the brute force enumerates."""
    a, params = problem.allowed, problem.params
    kappa = float(params["livestock"]["head_per_mu"])
    mu = float(params["rangers"]["mu_per_post"])
    per_parcel = a.groupby("parcel")[["livestock_area", "ranger_area"]].max()
    per_parcel["village"] = problem.parcels["village_idx"].to_numpy()[per_parcel.index]
    by_village = per_parcel.groupby("village").sum().reindex(range(len(problem.villages)), fill_value=0.0)
    herd = np.floor(kappa * by_village["livestock_area"].to_numpy() + 1e-9) + 1
    posts = np.minimum(problem.villages["households"].to_numpy(), np.floor(by_village["ranger_area"] / mu + 1e-9)) + 1
    return int(np.prod(herd * posts))


@SETTINGS
@given(instances())
def test_plan_is_feasible_and_optimal_or_no_plan_exists(spec: dict[str, Any]) -> None:
    prepared = _prepare(spec)
    problem = prepared.problem
    try:
        outcome = solve_exact(prepared)
    except InputError as error:
        # not an infeasible scenario: the index cannot be normalised, since no parcel can gain any weighted service
        assert "no ecosystem service can gain" in str(error), error
        assert es_scales(problem) == {}
        return
    except InfeasibleError as error:
        enumerated, _ = expected(problem)
        assert enumerated is None, f"InfeasibleError, yet a plan exists: {error}"
        return
    plan = make_plan(outcome)
    violations = check_plan(problem, plan.parcels, plan.villages, scale=outcome.es_scale)
    assert violations == [], [str(v) for v in violations]
    best, scales = optimal_plan(problem)
    assert best is not None, "the solver found a plan the enumeration does not allow"
    # the enumeration's own optimum passes the checker too (the two read the constraints independently)
    violations = check_plan(problem, *plan_tables(problem, best), scale=scales)
    assert violations == [], [str(v) for v in violations]
    if scales:  # the run's references are the brute force's potentials
        assert scales_agree(outcome.es_scale, scales), (outcome.es_scale, scales)
    assert agrees(outcome.result.objective, outcome, best.value), (outcome.result.objective, best.value)
