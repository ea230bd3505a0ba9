"""The solver's optimum equals the optimum found by enumerating every plan of tiny instances (tests/bruteforce.py).

The brute force knows nothing of the Pyomo model: it checks each plan against the constraint definitions in plain
numpy. Each objective is compared on two instances; then each constraint family is made the one that binds (the
optimum without it is strictly better, so every unconstrained optimum breaks it, and the solver finds the optimum
with it); an unreachable floor raises InfeasibleError with the shortfall the enumeration gives; and constraints
with nothing to decide (a township with no forest-type option, a bound on a gain no option changes) are feasible
or infeasible as the enumeration says, instead of crashing the model build; and a model HiGHS's presolve gets wrong
still reports the objective of its plan.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from optiland.check import check, check_plan
from optiland.errors import InfeasibleError
from optiland.io.catalog import load_catalog
from optiland.pipeline.results import make_plan
from optiland.testing import make_inputs, make_scenario
from tests.bruteforce import (
    agrees,
    derive_rows,
    es_scales,
    expected,
    optimal_plan,
    parcels_table,
    plan_tables,
    prepare_tiny,
    scales_agree,
    scan,
    solve_exact,
    villages_table,
)

# Small integer ranges: at most 0.2 head per mu of forage and a ranger post per 10 mu of closed hills.
OVERRIDES = {"livestock.head_per_mu": 0.2, "rangers.mu_per_post": 10}

# One village, one township: 9 x 9 x 3 x 2 x 1 assignments (P2 is red line, P3 extreme bare rock, P4 farmland).
ONE = parcels_table([
    ("P0", "V1", "0103", 10, 10, 10),
    ("P1", "V1", "0404", 20, 25, 12),
    ("P2", "V1", "0305", 40, 60, 20, True, True),
    ("P3", "V1", "1206", 40, 95, 9),
    ("P4", "V1", "0101", 5, 5, 8, True, False, True),
])
ONE_VILLAGE = villages_table([("V1", "T1", 6, 3, 2000, 2000)])

# Two villages in two townships: P4 is cropland at 30 degrees (must leave its current use), P5 farmland.
TWO = parcels_table([
    ("P0", "V1", "0103", 10, 10, 10),
    ("P1", "V1", "0305", 40, 60, 20, True, True),
    ("P2", "V1", "1206", 40, 95, 9),
    ("P3", "V2", "0404", 20, 25, 12),
    ("P4", "V2", "0103", 30, 40, 8),
    ("P5", "V2", "0101", 5, 5, 6, True, False, True),
])
TWO_VILLAGES = villages_table([("V1", "T1", 5, 2, 1500, 2000), ("V2", "T2", 4, 2, 1200, 2500)])

INSTANCES = {"one": (ONE, ONE_VILLAGE), "two": (TWO, TWO_VILLAGES)}
# Every family active and none so tight that an objective has no feasible plan.
ALL_ACTIVE = {"income_floor": 3000, "transfer_budget": 30000, "max_transfer_share": 0.8, "budget": 90000,
              "township_budgets": {"T1": 80000}, "diversity_cap": 0.8, "forest_cover_min": 0.2,
              "market": {"herbs.paris": 15}, "bounds": {"cost": [None, 85000]}}


def _compare(prepared: Any) -> tuple[float, Any]:
    """Solve exactly and enumerate; assert the optima agree; return the optimum and the outcome.

    Both plans also pass the solver-free checker (optiland.check), a third reading of the constraints.
    """
    problem = prepared.problem
    best, scales = optimal_plan(problem)
    assert best is not None, "the instance has no feasible plan"
    assert [str(v) for v in check_plan(problem, *plan_tables(problem, best), scale=scales)] == []
    outcome = solve_exact(prepared)
    value = outcome.result.objective
    if scales:  # the index: the run's references are the brute force's potentials
        assert scales_agree(outcome.es_scale, scales), (outcome.es_scale, scales)
    assert agrees(value, outcome, best.value), (value, best.value)
    assert [str(v) for v in check(make_plan(outcome), outcome.prepared)] == []
    return best.value, outcome


@pytest.mark.parametrize("instance", sorted(INSTANCES))
@pytest.mark.parametrize("objective", ["income", "carbon", "soil", "water", "habitat"])
def test_objective_matches_enumeration(instance: str, objective: str) -> None:
    parcels, villages = INSTANCES[instance]
    _compare(prepare_tiny(parcels, villages, objective, ALL_ACTIVE, OVERRIDES))


@pytest.mark.parametrize("instance", sorted(INSTANCES))
def test_cost_with_a_floor_that_forces_conversions(instance: str) -> None:
    parcels, villages = INSTANCES[instance]
    prepared = prepare_tiny(parcels, villages, "cost", {**ALL_ACTIVE, "income_floor": 9000}, OVERRIDES)
    problem = prepared.problem
    keep_all = problem.villages["nonland_income_per_capita"] + problem.villages["current_land_income"] / \
        problem.villages["population"]
    assert (keep_all < 9000).all()  # keeping every current use misses the floor: something must convert
    enumerated, _ = _compare(prepared)
    assert enumerated > 0


@pytest.mark.parametrize("instance", sorted(INSTANCES))
def test_ecosystem_services_index_and_scales(instance: str) -> None:
    parcels, villages = INSTANCES[instance]
    weights = {"carbon": 0.4, "soil": 0.3, "water": 0.2, "habitat": 0.1}
    prepared = prepare_tiny(parcels, villages, "ecosystem_services", ALL_ACTIVE, OVERRIDES, weights)
    scales = es_scales(prepared.problem)
    assert sorted(scales) == sorted(weights)
    enumerated, outcome = _compare(prepared)
    assert scales_agree(outcome.es_scale, scales)
    assert outcome.reference is not None and outcome.reference.kind == "potential"
    # the potential bounds every plan's gains, under any constraints: the index is at most the weights' sum
    every = scan(prepared.problem)
    for service in weights:
        assert every.optimum(service, "max") <= scales[service] + 1e-9
    assert 0 < enumerated <= 1 + 1e-9


# ------------------------------------------------------------------------------------------------------------
# One family binds

PRICED = {**OVERRIDES, "variants.fruit.pomelo.net_income_per_mu": 6000}
SHARED_STEPS = {"market": {"herbs.paris": 0.5}, "village_floors": {"V1": 15500, "V2": 20500}}

BINDING: dict[str, dict[str, Any]] = {
    # carbon wants closure and trees, which earn little: the floor forces herbs or fruit on some land
    "income_floor": dict(instance="one", objective="carbon", constraints={"income_floor": 12000}, drop="income_floor"),
    # P4 is dry land at 30 degrees and must leave cropping; its cheapest way out earns less than the crop did
    "no_worse_off": dict(instance="two", objective="cost", constraints={"income_floor": 0, "no_worse_off": True},
                         drop="no_worse_off"),
    # V2 must earn 20% more than today (its township's target), V1 only keep today's income (its own entry)
    "income_growth": dict(instance="two", objective="cost",
                          constraints={"income_floor": 0, "village_income_growth": {"T2": 0.2},
                                       "village_no_worse_off": {"V1": True}}, drop="no_worse_off"),
    # a demonstration base: at least 30 mu of closure, which earns less than what income would choose there
    "area_min": dict(instance="one", objective="income", constraints={"areas": {"closure": {"min": 30}}},
                     drop="area_limits"),
    # a market plan: at most 5 mu of herbs, of any variant
    "area_max": dict(instance="one", objective="income", constraints={"areas": {"herbs": {"max": 5}}},
                     drop="area_limits"),
    # township T2 keeps a herd of at least one head, though carbon wants its grass closed
    "township_herd_min": dict(instance="two", objective="carbon",
                              constraints={"township_areas": {"T2": {"herd": {"min": 1}}}}, drop="area_limits"),
    # ranger wages are income that costs nothing: the transfer budget caps posts and compensation
    "transfer_budget": dict(instance="one", objective="income", constraints={"transfer_budget": 12000},
                            drop="transfer_budget"),
    # carbon wants trees, paid 100 yuan/mu of compensation; with no non-land income that is a large share
    "transfer_share": dict(instance="one", objective="carbon",
                           constraints={"income_floor": 0, "max_transfer_share": 0.2},
                           villages=[("V1", "T1", 6, 3, 2000, 0)], drop="transfer_share"),
    # the same, with V1's own cap (its township T1 is at 0.9, which would not bind)
    "village_transfer_share": dict(instance="one", objective="carbon",
                                   constraints={"income_floor": 0, "village_transfer_shares": {"T1": 0.9, "V1": 0.2}},
                                   villages=[("V1", "T1", 6, 3, 2000, 0)], drop="transfer_share"),
    # a head earns 30,000 a year: the herd is as large as the forage carries
    "carrying_capacity": dict(instance="one", objective="income", overrides={"livestock.net_income_per_head": 30000},
                              drop="carrying_capacity", herd_max=8),
    # 29 mu of closed hills guard 2 posts (10 mu each), though 6 households could staff 6
    "ranger_posts": dict(instance="one", objective="income", villages=[("V1", "T1", 6, 6, 2000, 2000)],
                         drop="ranger_posts", posts_max=8),
    # one household, one post (at most one per household), though the closed hills could take 2
    "ranger_households": dict(instance="one", objective="income", villages=[("V1", "T1", 6, 1, 2000, 2000)],
                              drop="ranger_posts", posts_max=8),
    "labour": dict(instance="one", objective="income", constraints={"income_floor": 0},
                   villages=[("V1", "T1", 6, 3, 400, 2000)], drop="labour"),
    "budget": dict(instance="one", objective="income", constraints={"budget": 20000}, drop="budget"),
    "township_budget": dict(instance="two", objective="income", constraints={"township_budgets": {"T2": 15000}},
                            drop="township_budget"),
    # carbon: zenia (0.15 t/mu) beats quercus (0.13); no single tree may hold more than 60% of the afforestation
    "diversity": dict(instance="one", objective="carbon", constraints={"diversity_cap": 0.6}, drop="diversity"),
    # keeping everything costs nothing, but is not forest enough
    "forest_cover": dict(instance="one", objective="cost", constraints={"income_floor": 0, "forest_cover_min": 0.6},
                         drop="forest_cover"),
    "market": dict(instance="one", objective="income", constraints={"market": {"herbs.paris": 10}}, drop="market"),
    # pomelo at 6,000 beats paris (4,000) for its first 10 mu only
    "price_steps": dict(instance="one", objective="income", overrides=PRICED, drop="price_steps"),
    # both villages grow pomelo and share the first 10 mu of full price: V1's floor needs 5.64 mu of them, V2's 3.53
    "price_steps_shared": dict(instance="two", objective="income", overrides=PRICED,
                               constraints=SHARED_STEPS, drop="price_steps"),
    "objective_bound": dict(instance="one", objective="carbon", constraints={"bounds": {"income": [60000, None]}},
                            drop="objective_bound"),
}


@pytest.mark.parametrize("case", sorted(BINDING))
def test_binding_family(case: str) -> None:
    spec = BINDING[case]
    parcels, villages = INSTANCES[spec["instance"]]
    if "villages" in spec:
        villages = villages_table(spec["villages"])
    prepared = prepare_tiny(parcels, villages, spec["objective"], spec.get("constraints"),
                            {**OVERRIDES, **spec.get("overrides", {})})
    problem = prepared.problem
    name, sense = problem.params["objective"], problem.params["sense"]
    limits = {k: spec[k] for k in ("herd_max", "posts_max") if k in spec}
    without = scan(problem, drop=[spec["drop"]], **limits).optimum(name, sense)
    enumerated, outcome = _compare(prepared)
    assert without is not None
    # without the family the optimum is strictly better: the family binds
    better = without - enumerated if sense == "max" else enumerated - without
    assert better > 1e-6 * max(1.0, abs(enumerated)), (enumerated, without)
    if case == "price_steps_shared":
        assert set(outcome.solution.segments) and sum(v for (_, _, k), v in outcome.solution.segments.items()
                                                      if k == 0) == pytest.approx(10)


def test_shared_price_step_cannot_carry_both_floors() -> None:
    """Each floor alone can be met, but together they need 5.64 + 5.53 mu of the 10 mu sold at full price."""
    floors = {"V1": 15500, "V2": 22000}
    for alone in floors:
        prepared = prepare_tiny(TWO, TWO_VILLAGES, "income",
                                {**SHARED_STEPS, "village_floors": {alone: floors[alone]}}, PRICED)
        assert scan(prepared.problem).feasible, alone
    prepared = prepare_tiny(TWO, TWO_VILLAGES, "income", {**SHARED_STEPS, "village_floors": floors}, PRICED)
    assert not scan(prepared.problem).feasible
    assert scan(prepared.problem, drop=["price_steps"]).feasible
    with pytest.raises(InfeasibleError):
        solve_exact(prepared)


# ------------------------------------------------------------------------------------------------------------
# No plan reaches the floor


def test_unreachable_floor_names_village_and_shortfall() -> None:
    floor = 40000.0
    prepared = prepare_tiny(ONE, ONE_VILLAGE, "income", {"income_floor": floor}, OVERRIDES)
    problem = prepared.problem
    assert not scan(problem).feasible
    best_income = scan(problem, drop=["income_floor"]).optimum("income", "max")
    population = float(problem.villages["population"].iloc[0])
    shortfall = floor - best_income / population
    assert shortfall > 0
    with pytest.raises(InfeasibleError) as info:
        solve_exact(prepared)
    error = info.value
    message = str(error)
    assert "village V1" in message
    assert f"short by {shortfall:,.0f} per person" in message, message
    table = error.shortfalls
    row = table[table["family"] == "income_floor"].iloc[0]
    assert row["village"] == "V1"
    assert row["short_per_capita"] == pytest.approx(shortfall, rel=1e-6)
    assert set(table["family"]) == {"income_floor"}


def test_unreachable_growth_names_village_and_shortfall() -> None:
    """The diagnosis names the village that cannot earn (1 + growth) x its income of today, and by how much per
    person: the enumeration's best income against the target computed from the village table and the catalog."""
    prepared = prepare_tiny(ONE, ONE_VILLAGE, "income", {"income_floor": 0, "income_growth": 5.0}, OVERRIDES)
    problem = prepared.problem
    assert not scan(problem).feasible
    best_income = scan(problem, drop=["no_worse_off"]).optimum("income", "max")
    catalog = problem.catalog.current_uses["income_per_mu"]
    today = float((ONE["area_mu"] * catalog.reindex(ONE["land_use"]).to_numpy()).sum()
                  + ONE_VILLAGE["nonland_income_per_capita"].iloc[0] * ONE_VILLAGE["population"].iloc[0])
    population = float(ONE_VILLAGE["population"].iloc[0])
    shortfall = (6.0 * today - best_income) / population
    assert shortfall > 0
    with pytest.raises(InfeasibleError) as info:
        solve_exact(prepared)
    message = str(info.value)
    assert "village V1 cannot keep +500% over its income of today" in message, message
    assert f"short by {shortfall:,.0f} per person" in message, message
    row = info.value.shortfalls.iloc[0]
    assert (row["family"], row["village"]) == ("no_worse_off", "V1")
    assert row["short_per_capita"] == pytest.approx(shortfall, rel=1e-6)


def test_unreachable_area_minimum_is_named() -> None:
    """More fruit than the site rules allow anywhere: the diagnosis names the limit and the shortfall in mu."""
    prepared = prepare_tiny(ONE, ONE_VILLAGE, "income", {"income_floor": 0, "areas": {"fruit": {"min": 500}}},
                            OVERRIDES)
    problem = prepared.problem
    assert not scan(problem).feasible
    most = scan(problem, drop=["area_limits"]).optimum("income", "max")
    assert most is not None
    fruit = problem.allowed[problem.allowed["option"] == "fruit"]
    possible = float(problem.parcels["area_mu"].iloc[fruit["parcel"].unique()].sum())
    with pytest.raises(InfeasibleError) as info:
        solve_exact(prepared)
    message = str(info.value)
    assert f"the plan falls {500 - possible:,.1f} mu short of its minimum of 500 mu of fruit" in message, message


def test_no_worse_off_off_by_default_in_a_catalog_without_it() -> None:
    """The small catalog says nothing: no row; the scenario switches it on, and per village off again."""
    base = prepare_tiny(TWO, TWO_VILLAGES, "carbon", {"income_floor": 0}, OVERRIDES).problem
    assert np.isnan(base.no_worse_off_total()).all()
    on = prepare_tiny(TWO, TWO_VILLAGES, "carbon", {"income_floor": 0, "no_worse_off": True,
                                                   "village_no_worse_off": {"V2": False}}, OVERRIDES).problem
    before = on.no_worse_off_total()
    assert np.isfinite(before[0]) and np.isnan(before[1])


# ------------------------------------------------------------------------------------------------------------
# Constraints with nothing to decide: a township with no forest-type option, a bound on a quantity no option changes

FARMLAND = parcels_table([("P0", "V1", "0101", 5, 5, 6, True, False, True),
                          ("P1", "V1", "0101", 5, 5, 4, True, False, True)])


@pytest.mark.parametrize("share", [0.0, 0.1])
def test_township_without_a_forest_option(share: float) -> None:
    """T2's only parcel is basic farmland (paddy, not forest): its forest-cover row is a constant, which Pyomo
    refuses as a constraint; 0 >= 0 holds, 0 >= 0.6 mu cannot and is reported as infeasible."""
    parcels = parcels_table([("P0", "V1", "0103", 10, 10, 10), ("P1", "V2", "0101", 5, 5, 6, True, False, True)])
    prepared = prepare_tiny(parcels, TWO_VILLAGES, "income", {"income_floor": 0, "forest_cover_min": share},
                            OVERRIDES)
    if share == 0.0:
        _compare(prepared)
        return
    assert not scan(prepared.problem).feasible
    with pytest.raises(InfeasibleError, match="township T2 falls 0.6 mu short of its forest-cover floor"):
        solve_exact(prepared)


@pytest.mark.parametrize(("bound", "feasible"), [
    ({"carbon": [0.5, None]}, False), ({"carbon": [0.0, None]}, True),
    ({"ecosystem_services": [0.5, None]}, False), ({"ecosystem_services": [None, 1.0]}, True),
])
def test_bound_on_what_no_option_changes(bound: dict[str, list[float | None]], feasible: bool) -> None:
    """Basic farmland only: no gain can change, so a bound on a service (or on the index, which has no service
    to normalise) holds for every plan or for none."""
    prepared = prepare_tiny(FARMLAND, ONE_VILLAGE, "income", {"income_floor": 0, "bounds": bound}, OVERRIDES)
    enumerated, _ = expected(prepared.problem)
    assert (enumerated is not None) == feasible
    if feasible:
        _compare(prepared)
    else:
        with pytest.raises(InfeasibleError, match="objective_bound|objective bound"):
            solve_exact(prepared)


def test_reported_objective_is_that_of_the_plan() -> None:
    """HiGHS 1.16's MIP presolve gets this model wrong: warm-started it reports an optimum of 17,760 (one ranger
    post more than its own plan has) with a bound of 17,760, and cold it declares the model infeasible. The solver
    step detects the inconsistency and solves again without presolve; the plan's own objective is reported."""
    parcels = parcels_table([("P0", "V1", "1206", 0, 0, 12, False), ("P1", "V1", "0101", 0, 0, 3, False, True),
                             ("P2", "V1", "0101", 0, 0, 3, False, True)])
    villages = villages_table([("V1", "T1", 1, 1, 50, 3200)])
    prepared = prepare_tiny(parcels, villages, "income", {"diversity_cap": 0.7, "bounds": {"carbon": [2.5, None]}},
                            {"rangers.mu_per_post": 10, "livestock.head_per_mu": 0.1})
    enumerated, outcome = _compare(prepared)
    assert enumerated == pytest.approx(7760)
    assert outcome.result.status.value == "optimal"  # proven with gap 0: the bound is the objective
    assert outcome.result.bound == pytest.approx(outcome.result.objective, abs=1e-6)
    assert make_plan(outcome).run["totals"]["income"] == pytest.approx(outcome.result.objective)


def test_updated_model_equals_a_fresh_build() -> None:
    """A built model given another scenario's targets (floor, budgets, caps, cover, market) is the model a fresh
    build makes: the same matrix, bounds and objective."""
    from optiland.model.backend import PyomoBackend
    from optiland.model.problem import build_problem

    constraints = {"income_floor": 3000, "transfer_budget": 9000, "budget": 60000, "diversity_cap": 0.8,
                   "forest_cover_min": 0.2, "max_transfer_share": 0.9, "market": {"herbs.paris": 12}}
    changed = {"income_floor": 4500, "transfer_budget": 7000, "budget": 45000, "diversity_cap": 0.6,
               "forest_cover_min": 0.35, "max_transfer_share": 0.7, "market": {"herbs.paris": 5}}
    first = make_scenario(constraints=constraints)
    second = make_scenario(constraints=changed)
    catalog = load_catalog(first.catalog.path)
    from tests.conftest import TINY_PARCELS, TINY_VILLAGES

    inputs = make_inputs(TINY_PARCELS, TINY_VILLAGES)
    reused = PyomoBackend()
    reused.build(build_problem(first, catalog, inputs))
    assert reused.update(build_problem(second, catalog, inputs))
    fresh = PyomoBackend()
    fresh.build(build_problem(second, catalog, inputs))
    for backend in (reused, fresh):
        backend.set_objective({"income": 1.0}, "max")
    a, b = reused.matrix(), fresh.matrix()
    assert a.col_names == b.col_names and a.row_names == b.row_names
    assert (a.A != b.A).nnz == 0
    for field in ("c", "row_lower", "row_upper", "col_lower", "col_upper"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert not reused.update(build_problem(make_scenario(constraints={"income_floor": 3000}), catalog, inputs))


# ------------------------------------------------------------------------------------------------------------
# The allowed set and its coefficients, derived three times: the model, the checker and the brute force

# Every boundary of the small catalog's rules: slope exactly at each limit (25: fruit, forage and cropland kept; 35:
# herbs), each grade band's lower edge (20, 30, 50, 70, 90 % bare rock on karst), a slope below 5 degrees (the soil
# weight's floor), a non-karst parcel with bare rock (no grade, no adaptation rule), a red-line and a basic-farmland
# parcel; acacia's figures are in 2014 yuan (deflated by 1.15).
BOUNDARY = parcels_table([
    ("B00", "V1", "0103", 25, 10, 10),  # cropland at 25 degrees: may not be kept; fruit and forage not allowed
    ("B01", "V1", "0103", 24.99, 10, 10),  # just below: cropland may be kept, fruit allowed
    ("B02", "V1", "0404", 35, 10, 10),  # herbs' limit
    ("B03", "V1", "0404", 34.99, 10, 10),
    ("B04", "V1", "0404", 10, 20, 10),  # potential
    ("B05", "V1", "0404", 10, 30, 10),  # light: fruit and forage allowed up to here
    ("B06", "V1", "0404", 10, 50, 10),  # moderate: herbs and basic-class trees up to here
    ("B07", "V1", "0404", 10, 70, 10),  # severe: well-adapted trees up to here
    ("B08", "V1", "0404", 10, 90, 10),  # extreme: only closure and poor-class-free options
    ("B09", "V1", "0404", 10, 89.99, 10),
    ("B10", "V1", "0404", 2, 10, 10),  # slope below 5: soil gain weighted by 5 / 15
    ("B11", "V1", "0404", 0, 95, 10, False),  # not karst: bare rock does not grade it, acacia (poor) allowed
    ("B12", "V1", "0305", 30, 60, 10, True, True),  # red line
    ("B13", "V1", "0101", 5, 5, 10, True, False, True),  # basic farmland
])
BOUNDARY_VILLAGES = villages_table([("V1", "T1", 6, 3, 20000, 2000)])
COLUMNS = ("area", "income", "compensation", "cost", "labour", "forest", "ranger_area", "livestock_area", "harvest",
           "gain_carbon", "gain_soil", "gain_water", "gain_habitat")


def _rows(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index(["parcel", "option", "variant"])[list(COLUMNS)].astype(float).sort_index()


def test_model_rows_equal_the_brute_force_derivation() -> None:
    """problem.allowed (optiland.model.problem, optiland.io.catalog) against this module's own reading of the
    catalog files: the same rows and the same coefficients. Kills a slope limit compared with > instead of >=, a
    grade band off by one, the soil weight's floor changed, a deflation lost."""
    problem = prepare_tiny(BOUNDARY, BOUNDARY_VILLAGES, "income", {"income_floor": 0}, OVERRIDES).problem
    model, derived = _rows(problem.allowed), _rows(derive_rows(problem))
    assert list(model.index) == list(derived.index), sorted(set(model.index) ^ set(derived.index))
    pd.testing.assert_frame_equal(model, derived, rtol=1e-12, atol=1e-9)
    allowed = set(model.index)
    # the boundaries are where the rules say (the derivation could share a mistake with the model otherwise)
    assert (0, "keep", "keep") not in allowed and (1, "keep", "keep") in allowed
    assert (0, "fruit", "pomelo") not in allowed and (1, "fruit", "pomelo") in allowed
    assert (2, "herbs", "paris") not in allowed and (3, "herbs", "paris") in allowed
    assert (5, "fruit", "pomelo") in allowed and (6, "fruit", "pomelo") not in allowed
    assert (6, "afforestation", "quercus") in allowed and (7, "afforestation", "quercus") not in allowed
    assert (8, "afforestation", "zenia") not in allowed and (9, "afforestation", "zenia") in allowed
    assert (11, "afforestation", "acacia") in allowed and (10, "afforestation", "acacia") not in allowed
    assert {o for p, o, _ in allowed if p == 12} == {"closure", "afforestation"}
    assert {o for p, o, _ in allowed if p == 13} == {"keep"}
    soil = model.loc[(10, "closure", "closure"), "gain_soil"]
    assert soil == pytest.approx((0.9 - 0.5) * 10 * 5 / 15)  # max(2, 5) / 15
    assert model.loc[(11, "afforestation", "acacia"), "income"] == pytest.approx(200 * 1.15 * 10)


def test_checker_rows_equal_the_model() -> None:
    """The checker's own derivation (optiland.check.rules) gives the model's allowed set and coefficients."""
    from optiland.check import instance_of

    prepared = prepare_tiny(BOUNDARY, BOUNDARY_VILLAGES, "income", {"income_floor": 0}, OVERRIDES)
    problem = prepared.problem
    inst = instance_of(prepared)
    parcel, kind = np.nonzero(inst.allowed)
    coef = inst.coefficients(parcel, kind)
    table = pd.DataFrame({"parcel": parcel, "option": inst.kinds.option[kind], "variant": inst.kinds.variant[kind],
                          **{c: coef[c] for c in COLUMNS}})
    model, checker = _rows(problem.allowed), _rows(table)
    assert list(model.index) == list(checker.index), sorted(set(model.index) ^ set(checker.index))
    pd.testing.assert_frame_equal(model, checker, rtol=1e-12, atol=1e-9)


def test_every_boundary_enumerated() -> None:
    """A tiny instance with a parcel on each boundary kind solves to the enumerated optimum (and both pass check)."""
    parcels = BOUNDARY.iloc[[0, 6, 10, 11, 12, 13]].reset_index(drop=True)
    prepared = prepare_tiny(parcels, BOUNDARY_VILLAGES, "income", {"income_floor": 3000, "budget": 60000},
                            OVERRIDES)
    _compare(prepared)


def test_a_variants_own_slope_limit() -> None:
    """docs/data-model.md: a variant's max_slope_deg applies, a blank one inherits its option's. The model used to
    drop the variant's column (no shipped catalog sets one): pomelo limited to 15 degrees is not allowed at 20."""
    prepared = prepare_tiny(BOUNDARY, BOUNDARY_VILLAGES, "income", {"income_floor": 0},
                            {**OVERRIDES, "variants.fruit.pomelo.max_slope_deg": 15})
    problem = prepared.problem
    model = set(_rows(problem.allowed).index)
    assert model == set(_rows(derive_rows(problem)).index)
    assert (1, "fruit", "macadamia") in model and (1, "fruit", "pomelo") not in model  # 24.99 degrees
    assert (4, "fruit", "pomelo") in model  # 10 degrees


CONVERSIONS = [  # read top to bottom: the first rule naming the option whose conditions hold decides
    {"rule": "red_line_any", "current_use": "*", "red_line": True, "to": "closure", "allowed": True,
     "description": "closure allowed inside red lines", "source": "test"},
    {"rule": "sloping_fruit", "current_use": "0103;0404", "min_slope_deg": 5, "to": "forage;fruit", "allowed": False,
     "description": "no grazing or orchards on sloping dry land or grass", "source": "test"},
    {"rule": "woods", "current_use": "03", "to": "*", "allowed": False, "description": "forest land stays",
     "source": "test"},
    {"rule": "dry_land_herbs", "current_use": "0103", "max_slope_deg": 25, "to": "herbs.paris", "allowed": False,
     "description": "no paris on dry land below 25 degrees", "source": "test"},
]


def test_conversion_rules_three_ways() -> None:
    """Conversion rules with code lists, a two-digit class, slope conditions, a variant target and '*' give the same
    rows in the model, the checker and the brute force, and the rows the rules say."""
    from optiland.check import instance_of

    prepared = prepare_tiny(BOUNDARY, BOUNDARY_VILLAGES, "income", {"income_floor": 0}, OVERRIDES)
    prepared.scenario.catalog.conversion_rules = CONVERSIONS
    from optiland.model.problem import build_problem

    problem = build_problem(prepared.scenario, prepared.catalog, prepared.inputs)
    model, derived = _rows(problem.allowed), _rows(derive_rows(problem))
    assert list(model.index) == list(derived.index), sorted(set(model.index) ^ set(derived.index))
    inst = instance_of(type(prepared)(prepared.scenario, prepared.catalog, prepared.inputs, problem, 0.0))
    parcel, kind = np.nonzero(inst.allowed)
    checker = {(p, inst.kinds.option[k], inst.kinds.variant[k]) for p, k in zip(parcel, kind, strict=True)}
    assert checker == set(model.index), sorted(checker ^ set(model.index))
    allowed = set(model.index)
    assert (2, "herbs", "paris") not in allowed and (3, "herbs", "sophora") in allowed  # 35 deg: herbs' own limit
    assert (0, "forage", "forage") not in allowed  # 25 degrees: its slope limit
    assert {o for p, o, _ in allowed if p == 12} == {"closure"}  # shrub forest (class 03) in a red line
    assert (1, "herbs", "paris") not in allowed and (1, "herbs", "sophora") in allowed  # dry land below 25
    assert (11, "fruit", "pomelo") in allowed and (11, "forage", "forage") in allowed  # grass below 5 degrees
    assert (5, "fruit", "pomelo") not in allowed and (1, "fruit", "macadamia") not in allowed  # 10 and 24.99


def test_explain_names_every_reason() -> None:
    """`optiland explain`'s table: 'allowed' for an allowed pair; every rule forbidding a pair, joined by '; '."""
    from optiland.model.problem import explain

    problem = prepare_tiny(BOUNDARY, BOUNDARY_VILLAGES, "income", {"income_floor": 0}, OVERRIDES).problem
    table = explain((problem.catalog, problem.parcels), "B12").set_index(["option", "variant"])
    assert table.loc[("closure", "closure"), "allowed"] and table.loc[("closure", "closure"), "why"] == "allowed"
    why = table.loc[("fruit", "pomelo"), "why"].split("; ")  # red line, slope 30 >= 25, grade moderate > light
    assert why == ["not allowed inside an ecological red line", "slope at or above 25 degrees",
                   "rocky-desertification grade above light"], why
    allowed = set(_rows(problem.allowed).index)
    assert {(12, o, v) for (o, v) in table.index[table["allowed"]]} == {k for k in allowed if k[0] == 12}
