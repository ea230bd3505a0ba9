"""The transition model (optiland.analysis.transition): the years, the floors on the way, price risk.

Every plan is checked by `check_plan`, which recomputes every yearly quantity with numpy from the plan alone.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optiland.analysis.transition import solve_transition
from optiland.analysis.transition_accounts import check_plan, cvar, immediate_plan
from optiland.analysis.transition_model import add_transition, transition_objective
from optiland.analysis.transition_problem import (
    CURRENT,
    LIVESTOCK,
    PriceScenarios,
    build_transition,
    read_profiles,
    read_scenarios,
    sample_scenarios,
)
from optiland.errors import InfeasibleError, InputError
from optiland.io.catalog import load_catalog
from optiland.io.scenario import RiskConfig, TransitionConfig
from optiland.model.backend import PyomoBackend
from optiland.model.formulation import build_model
from optiland.model.problem import build_problem
from optiland.pipeline.run import Prepared, solve_prepared, solver_options
from optiland.testing import SMALL_CATALOG, make_inputs, make_scenario

SLOW_RETURNS = pd.DataFrame(
    [("fruit", "", "income", 0, 0.0), ("fruit", "", "income", 3, 1.0),
     ("herbs", "", "income", 0, 0.0), ("herbs", "", "income", 2, 1.0),
     ("afforestation", "", "income", 0, 0.0), ("afforestation", "", "income", 4, 1.0)],
    columns=["option", "variant", "item", "age", "factor"])
"""Fruit, herbs and timber pay nothing in their first years (the seeds' 'rapid development, slow returns')."""


def _instance(n: int = 5, floor: float = 4500.0, land_use: str = "0103", budget: float = 200000.0,
              red: list[bool] | None = None, **constraints: float) -> Prepared:
    parcels = pd.DataFrame({
        "parcel_id": [f"P{i}" for i in range(n)], "village": ["V1"] * n, "land_use": [land_use] * n,
        "slope_deg": [10.0] * n, "bedrock_exposure": [10.0] * n, "soil_depth_cm": [50.0] * n, "karst": [True] * n,
        "red_line": red or [False] * n, "basic_farmland": [False] * n, "area_mu": [10.0] * n})
    villages = pd.DataFrame({"village": ["V1"], "township": ["T1"], "population": [10], "households": [3],
                             "labour_days": [3000.0], "nonland_income_per_capita": [2000.0]})
    scenario = make_scenario(constraints={"income_floor": floor, "budget": budget, **constraints},
                             solver={"time_limit": 60})
    catalog = load_catalog(scenario.catalog.path)
    inputs = make_inputs(parcels, villages)
    return Prepared(scenario, catalog, inputs, build_problem(scenario, catalog, inputs), 0.0)


def _profiles(prepared: Prepared, table: pd.DataFrame = SLOW_RETURNS):
    return read_profiles(prepared.catalog, table)


def _options(prepared: Prepared):
    return solver_options(prepared.scenario, mip_rel_gap=1e-9)


def test_every_year_at_maturity_reproduces_the_core_plan(tiny_scenario: Path) -> None:
    """Flat profiles (no profiles.csv in the test catalog): the years add nothing, so the optimum is the core's, and
    the core plan converted in year one keeps every yearly row."""
    from optiland.pipeline.run import prepare

    prepared = prepare(tiny_scenario)
    core = solve_prepared(prepared, _options(prepared))
    tp = build_transition(prepared.problem, TransitionConfig(horizon=4))
    assert not check_plan(tp, immediate_plan(tp, core.solution))
    out = solve_transition(tp, _options(prepared), scales=core.es_scale)
    assert out.result.objective == pytest.approx(core.result.objective, rel=1e-7)
    assert not check_plan(tp, out.plan)
    # nothing holds a conversion back here, so the polished phasing converts everything in year one
    assert out.plan.establish[:, 1:].sum() == pytest.approx(0.0, abs=1e-6)
    assert any("phasing polished" in note for note in out.notes)
    from optiland.pipeline.run import village_income_parts

    parts = village_income_parts(prepared.problem, out.plan.core)  # the mature year's incomes are the core's
    total = sum(parts.values())
    assert np.allclose(out.accounts.expected_income[:, -1], total, rtol=1e-6), parts


def test_steady_state_plan_breaks_the_floor_early_and_the_multi_year_plan_does_not() -> None:
    prepared = _instance()
    core = solve_prepared(prepared, _options(prepared))
    tp = build_transition(prepared.problem, TransitionConfig(horizon=6), profiles=_profiles(prepared))
    broken = check_plan(tp, immediate_plan(tp, core.solution))
    assert broken and all(v.family == "average_floor" for v in broken)
    assert {v.key for v in broken} >= {"V1 year 1"}
    out = solve_transition(tp, _options(prepared), scales=core.es_scale)
    assert check_plan(tp, out.plan) == []
    assert out.accounts.expected_income.min() >= out.accounts.need[0] - 1e-6
    assert out.result.objective <= core.result.objective + 1e-9  # the years cost something at maturity


def test_phasing_cap_spreads_conversions_over_the_years() -> None:
    prepared = _instance(floor=2000.0)
    config = TransitionConfig(horizon=4, phasing=[0.2, 0.6])
    tp = build_transition(prepared.problem, config, profiles=_profiles(prepared))
    out = solve_transition(tp, _options(prepared))
    assert check_plan(tp, out.plan) == []
    done = out.plan.establish.cumsum(axis=1)
    final = done[:, -1]
    for option in set(tp.groups["option"]):
        own = (tp.groups["option"] == option).to_numpy()
        if final[own].sum() > 0:
            assert done[own, 0].sum() <= 0.2 * final[own].sum() + 1e-6
            assert done[own, 1].sum() <= 0.6 * final[own].sum() + 1e-6


def _fruit_crash(products: list[str], horizon: int) -> PriceScenarios:
    """Three equally likely scenarios: catalog prices, a mild and a deep fall of herb and fruit incomes."""
    factor = np.ones((3, len(products), horizon))
    for s, fall in ((1, 0.8), (2, 0.3)):
        for name in ("herbs", "fruit", LIVESTOCK):
            factor[s, products.index(name)] = fall
    return PriceScenarios(["base", "mild", "crash"], np.full(3, 1 / 3), products, factor, "test")


def _risk_instance(measure: str, **risk: float) -> tuple[Prepared, object]:
    prepared = _instance(floor=4000.0)
    products = [o for o in prepared.catalog.options.index if o != "keep"] + [LIVESTOCK, CURRENT]
    config = TransitionConfig(horizon=5, risk=RiskConfig(measure=measure, **risk))
    return prepared, build_transition(prepared.problem, config, profiles=_profiles(prepared),
                                      prices=_fruit_crash(products, 5))


def test_robust_plan_keeps_the_floor_in_every_scenario_and_the_average_price_plan_does_not() -> None:
    prepared, average = _risk_instance("expected")
    plain = solve_transition(average, _options(prepared))
    assert check_plan(average, plain.plan) == []
    _, robust = _risk_instance("robust")
    broken = check_plan(robust, plain.plan)  # the average-price plan judged by the robust floor
    assert any(v.family == "robust_floor" for v in broken)
    safe = solve_transition(robust, _options(prepared))
    assert check_plan(robust, safe.plan) == []
    assert safe.accounts.income.min(axis=2).min(axis=1).min() >= safe.accounts.need[0] - 1e-6
    assert safe.result.objective <= plain.result.objective + 1e-9  # the cost of robustness


def test_cvar_and_icc_with_no_shortfall_allowed_are_the_robust_floor() -> None:
    prepared, robust = _risk_instance("robust")
    target = solve_transition(robust, _options(prepared)).result.objective
    for measure in ("cvar", "icc"):
        _, tp = _risk_instance(measure, max_shortfall=0.0)
        out = solve_transition(tp, _options(prepared))
        assert out.result.objective == pytest.approx(target, rel=1e-6)
        assert check_plan(tp, out.plan) == []


def test_a_looser_risk_limit_never_costs_more() -> None:
    prepared, _ = _risk_instance("robust")
    values = []
    for limit in (0.0, 300.0, 3000.0):
        _, tp = _risk_instance("icc", max_shortfall=limit)
        out = solve_transition(tp, _options(prepared))
        assert check_plan(tp, out.plan) == []
        values.append(out.result.objective)
    assert values[0] <= values[1] + 1e-9 <= values[2] + 2e-9


def test_cvar_of_a_discrete_loss() -> None:
    losses = np.array([0.0, 10.0, 40.0, 100.0])
    probability = np.full(4, 0.25)
    assert cvar(losses, probability, 0.75) == pytest.approx(100.0)
    assert cvar(losses, probability, 0.5) == pytest.approx(70.0)
    assert cvar(losses, probability, 0.6) == pytest.approx((0.25 * 100 + 0.15 * 40) / 0.4)


def _solve_fixed(tp, rows: tuple[int, ...]) -> float | None:
    """The best transition objective with the core plan fixed to `rows` (None: no phasing keeps every row)."""
    m = build_model(tp.problem)
    for a in m.A:
        m.x[a].fix(1 if a in rows else 0)
    add_transition(m, tp)
    expr, sense = transition_objective(m, tp, {})
    m.objective = pyo.Objective(expr=expr, sense=pyo.maximize)
    backend = PyomoBackend()
    backend.model, backend.problem = m, tp.problem
    result = backend.solve(solver_options(tp.problem.scenario, mip_rel_gap=1e-9))
    return result.objective if result.status.has_plan else None


def test_optimum_equals_enumeration_of_every_core_plan() -> None:
    """Discounted income over a 4-year horizon with slow returns: the MIP's optimum is the best over every
    assignment of the parcels (each solved for its best phasing)."""
    prepared = _instance(n=2, floor=3000.0, budget=60000.0)
    config = TransitionConfig(horizon=4, objective="discounted_income", yearly_budget=20000.0)
    tp = build_transition(prepared.problem, config, profiles=_profiles(prepared))
    allowed = tp.problem.allowed
    per_parcel = [np.flatnonzero(allowed["parcel"].to_numpy() == i) for i in range(2)]
    best = None
    for rows in itertools.product(*per_parcel):
        value = _solve_fixed(tp, tuple(int(r) for r in rows))
        if value is not None and (best is None or value > best):
            best = value
    assert best is not None
    out = solve_transition(tp, _options(prepared))
    assert out.result.objective == pytest.approx(best, rel=1e-7)
    assert check_plan(tp, out.plan) == []


SLOWER = pd.concat([SLOW_RETURNS, pd.DataFrame([("livestock", "", "income", 0, 0.0),
                                                ("livestock", "", "income", 1, 1.0)], columns=SLOW_RETURNS.columns)],
                   ignore_index=True)
"""And cattle earn nothing in the year they are bought."""


def test_infeasible_transition_names_village_year_and_amount() -> None:
    prepared = _instance(floor=5000.0, land_use="1206")  # bare rock: nothing earns in year one
    tp = build_transition(prepared.problem, TransitionConfig(horizon=4), profiles=_profiles(prepared, SLOWER))
    with pytest.raises(InfeasibleError) as error:
        solve_transition(tp, _options(prepared))
    text = str(error.value)
    assert "average_floor: village V1, year 1: short by" in text
    assert "per capita" in text


def test_subsidy_budget_closes_an_early_gap() -> None:
    prepared = _instance(floor=5000.0, land_use="1206")
    tp = build_transition(prepared.problem, TransitionConfig(horizon=4, subsidy_budget=200000.0),
                          profiles=_profiles(prepared, SLOWER))
    out = solve_transition(tp, _options(prepared))
    assert check_plan(tp, out.plan) == []
    assert out.plan.subsidy.sum() <= 200000.0 + 1e-6
    assert out.plan.subsidy[:, 0].sum() > 0


def test_yearly_budget_is_kept_and_spreads_the_spending() -> None:
    prepared = _instance(floor=2000.0)
    free = build_transition(prepared.problem, TransitionConfig(horizon=4), profiles=_profiles(prepared))
    spent = solve_transition(free, _options(prepared)).accounts.cost
    limit = max(spent.max() / 2, 1.0)
    tp = build_transition(prepared.problem, TransitionConfig(horizon=4, yearly_budget=limit),
                          profiles=_profiles(prepared))
    out = solve_transition(tp, _options(prepared))
    assert check_plan(tp, out.plan) == []
    assert out.accounts.cost.max() <= limit + 1e-6


# ------------------------------------------------------------------------------------------- property test
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(floor=st.floats(2500, 6000), fruit_age=st.integers(0, 4), crash=st.floats(0.2, 1.0),
       measure=st.sampled_from(["expected", "robust", "cvar", "icc"]), budget=st.floats(5000, 80000),
       land_use=st.sampled_from(["0103", "0404", "0101"]))
def test_every_transition_plan_keeps_every_yearly_row(floor: float, fruit_age: int, crash: float, measure: str,
                                                      budget: float, land_use: str) -> None:
    prepared = _instance(n=3, floor=floor, land_use=land_use)
    table = pd.DataFrame([("fruit", "", "income", 0, 0.0), ("fruit", "", "income", fruit_age, 1.0),
                          ("herbs", "", "income", 0, 0.2), ("herbs", "", "income", 2, 1.0),
                          ("afforestation", "", "cost", 0, 0.5), ("afforestation", "", "cost", 1, 0.5),
                          ("livestock", "", "income", 0, 0.5), ("livestock", "", "income", 1, 1.0)],
                         columns=["option", "variant", "item", "age", "factor"]).drop_duplicates(
                             ["option", "item", "age"], keep="last")
    products = [o for o in prepared.catalog.options.index if o != "keep"] + [LIVESTOCK, CURRENT]
    factor = np.ones((2, len(products), 4))
    factor[1, products.index("fruit")] = crash
    factor[1, products.index(CURRENT)] = crash
    prices = PriceScenarios(["base", "low"], np.array([0.5, 0.5]), products, factor, "test")
    config = TransitionConfig(horizon=4, yearly_budget=budget,
                              risk=RiskConfig(measure=measure, max_shortfall=100.0, alpha=0.5))
    tp = build_transition(prepared.problem, config, profiles=_profiles(prepared, table), prices=prices)
    try:
        out = solve_transition(tp, _options(prepared))
    except InfeasibleError as error:
        assert "village V1, year" in str(error) or "yearly_budget" in str(error)
        return
    assert check_plan(tp, out.plan) == []


# ------------------------------------------------------------------------------------------- inputs
def test_profile_errors_name_the_line_and_column() -> None:
    catalog = load_catalog(SMALL_CATALOG)
    bad = pd.DataFrame([("orchard", "", "income", 0, 1.0), ("fruit", "kiwi", "income", 0, 1.0),
                        ("fruit", "", "yield", 0, 1.0), ("herbs", "", "income", -1, 1.0)],
                       columns=["option", "variant", "item", "age", "factor"])
    with pytest.raises(InputError) as error:
        read_profiles(catalog, bad)
    text = str(error.value)
    for fragment in ("line 2", "orchard", "line 3", "kiwi", "line 4", "yield", "line 5"):
        assert fragment in text
    with pytest.raises(InputError, match="must list age 0"):
        read_profiles(catalog, pd.DataFrame([("fruit", "", "income", 3, 1.0)],
                                            columns=["option", "variant", "item", "age", "factor"]))


def test_profile_factors_hold_the_last_listed_age() -> None:
    profiles = read_profiles(load_catalog(SMALL_CATALOG), SLOW_RETURNS)
    assert profiles.factors("fruit", "pomelo", "income", 6).tolist() == [0, 0, 0, 1, 1, 1]
    assert profiles.factors("closure", "closure", "cost", 3).tolist() == [1, 0, 0]
    assert profiles.factors("closure", "closure", "income", 3).tolist() == [1, 1, 1]


def test_scenario_table(tmp_path: Path) -> None:
    products = ["closure", "fruit", LIVESTOCK, CURRENT]
    table = tmp_path / "prices.csv"
    table.write_text("scenario,product,factor,probability,year\nlow,fruit,0.5,0.25,\nlow,livestock,0.7,0.25,2\n"
                     "base,fruit,1.0,0.75,\n", encoding="utf-8")
    prices = read_scenarios(table, products, 3)
    assert prices.names == ["low", "base"]
    assert prices.probability.tolist() == [0.25, 0.75]
    assert prices.factor[0, 1].tolist() == [0.5, 0.5, 0.5]
    assert prices.factor[0, 2].tolist() == [1.0, 0.7, 1.0]
    assert prices.mean[1].tolist() == pytest.approx([0.875] * 3)
    table.write_text("scenario,product,factor\nlow,pears,0.5\n", encoding="utf-8")
    with pytest.raises(InputError, match="pears"):
        read_scenarios(table, products, 3)


def test_sampled_scenarios_are_reproducible_and_centred() -> None:
    products = ["fruit", CURRENT]
    cv = pd.Series({"fruit": 0.35})
    one = sample_scenarios(products, cv, 2000, 2, seed=3)
    two = sample_scenarios(products, cv, 2000, 2, seed=3)
    assert np.array_equal(one.factor, two.factor)
    assert one.factor[:, 0, 0].mean() == pytest.approx(1.0, abs=0.03)
    assert one.factor[:, 0, 0].std() == pytest.approx(0.35, abs=0.03)
    assert np.all(one.factor[:, 1] == 1.0)  # no cv given: no risk


def test_risk_measure_without_scenarios_is_refused() -> None:
    prepared = _instance()
    with pytest.raises(InputError, match="needs price scenarios"):
        build_transition(prepared.problem, TransitionConfig(risk=RiskConfig(measure="robust")))


def test_karst_catalog_profiles_and_risk_load() -> None:
    from optiland.analysis.transition_problem import price_risk

    catalog = load_catalog(region="karst-southwest")
    profiles = read_profiles(catalog)
    assert profiles.factors("fruit", "red_heart_pomelo", "income", 7).tolist()[:6] == [0, 0, 0, 0.3, 0.6, 1.0]
    assert profiles.factors("fruit", "macadamia", "income", 8).tolist()[-1] == 1.0
    assert price_risk(catalog)["fruit"] == pytest.approx(0.35)


def test_sandy_land_catalog_profiles_and_risk_load() -> None:
    from optiland.analysis.transition_problem import price_risk

    catalog = load_catalog(region="sandy-land-north")
    profiles = read_profiles(catalog)
    assert profiles.factors("replanting", "pinus_sylvestris_mongolica", "income", 12).tolist()[9:] == [0, 1, 1]
    assert set(price_risk(catalog).index) <= set(catalog.options.index) | {LIVESTOCK, CURRENT}
