"""What would it take (optiland.analysis.whatif), proven by enumeration on tiny instances.

Entry prices: the bisection's price is checked against the brute force (tests/bruteforce.py: every plan enumerated,
no solver), the lever set to the price through the catalog override the scenario would use: at the reported price
the best plan holds the lever and beats every plan without it, at the price just below (the bracket's low end) the
best value is the plan's own. Marginal values: the re-solve's objective change is the brute force's change when the
scenario's own figure moves by the step (floors in yuan per capita), and the LP relaxation's dual is the relaxation's
rate (re-solved with the bound moved a little). Every MIP here is solved to a gap of 0.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiland.analysis import whatif as W
from optiland.cli import app
from tests.bruteforce import optimal_plan, prepare_tiny, solve_exact
from tests.conftest import write_instance
from tests.test_bruteforce import ONE, ONE_VILLAGE, OVERRIDES, TWO, TWO_VILLAGES

INSTANCES = {"one": (ONE, ONE_VILLAGE), "two": (TWO, TWO_VILLAGES)}

# (instance, objective, constraints, lever): a variant kept out by the ranger posts it would cost V2 (carbon, a floor
# it then misses), fruit kept out by the floor's trade-off (carbon), the herd and a forage option (income)
ENTRY = {
    "quercus_carbon": ("two", "carbon", {"income_floor": 6000, "budget": 40000}, "afforestation.quercus"),
    "macadamia_carbon_floor": ("one", "carbon", {"income_floor": 12000}, "fruit.macadamia"),
    # pomelo's price halves beyond 10 mu (the small catalog's price steps): its income is in the step segments
    "pomelo_priced_carbon_floor": ("one", "carbon", {"income_floor": 12000}, "fruit.pomelo"),
    "herd_income": ("one", "income", {"budget": 20000}, "herd"),
    "forage_income": ("one", "income", {"budget": 20000}, "forage"),
    # minimised: the cheapest plan meeting the floors, which a tree (V2's P4) or a head of cattle would meet cheaper
    "zenia_cost": ("two", "cost", {"income_floor": 9000}, "afforestation.zenia"),
    "herd_cost": ("two", "cost", {"income_floor": 9000}, "herd"),
}


def _override(lever: str, price: float) -> dict[str, float]:
    if lever == "herd":
        return {"livestock.net_income_per_head": price}
    option, _, variant = lever.partition(".")
    return {f"variants.{option}.{variant or option}.net_income_per_mu": price}


def _holds(problem: object, best: object, lever: str) -> bool:
    if lever == "herd":
        return bool(best.herd.sum() > 0)  # type: ignore[attr-defined]
    a = problem.allowed if best.table is None else best.table  # type: ignore[attr-defined]
    chosen = a.iloc[best.rows]  # type: ignore[attr-defined]
    pair = chosen["option"] + "." + chosen["variant"]
    return bool(((pair == lever) | (chosen["option"] == lever)).any())


@pytest.mark.parametrize("case", sorted(ENTRY))
def test_entry_price_is_where_the_enumerated_optimum_takes_the_lever(case: str) -> None:
    instance, objective, constraints, lever = ENTRY[case]
    parcels, villages = INSTANCES[instance]
    prepared = prepare_tiny(parcels, villages, objective, constraints, OVERRIDES)
    outcome = solve_exact(prepared)
    study = W.whatif(outcome, exact=[lever], tolerance=0.5)
    row = study.options.set_index("lever").loc[lever]
    assert row["status"] == "absent" and row["proven"]
    assert 0 < row["subsidy"] - row["subsidy_low"] <= 0.5
    today = row["income_now"]
    best_today, _ = optimal_plan(prepared.problem)
    assert best_today is not None and not _holds(prepared.problem, best_today, lever)

    def enumerate_at(shift: float) -> tuple[object, object]:
        overrides = {**OVERRIDES, **_override(lever, today + shift)}
        moved = prepare_tiny(parcels, villages, objective, constraints, overrides)
        best, _ = optimal_plan(moved.problem, scales=outcome.es_scale or None)
        return moved.problem, best

    sign = -1.0 if objective == "cost" else 1.0
    problem, above = enumerate_at(row["subsidy"])
    assert sign * above.value > sign * best_today.value + 1e-9 and _holds(problem, above, lever)
    problem, below = enumerate_at(row["subsidy_low"])
    assert below.value == pytest.approx(best_today.value, rel=1e-9, abs=1e-9)
    first = set(str(row["first_parcels"]).replace(" head", "").split(", "))
    if lever == "herd":
        assert first == {f"{v} {int(h)}" for v, h in zip(problem.villages["village"], above.herd, strict=True) if h}
    else:
        a = problem.allowed if above.table is None else above.table
        chosen = a.iloc[above.rows]
        held = chosen[(chosen["option"] + "." + chosen["variant"] == lever) | (chosen["option"] == lever)]
        assert first == set(problem.parcels["parcel_id"].to_numpy()[held["parcel"].to_numpy()])
    # the LP estimate is a figure of the relaxation, reported beside it, never taken for the price
    assert np.isfinite(row["lp_subsidy"]) and row["lp_first_parcels"]


def test_a_lever_that_income_cannot_bring_in_is_reported_as_never() -> None:
    # every fruit parcel costs more to establish than the whole budget: no net income brings fruit in
    prepared = prepare_tiny(ONE, ONE_VILLAGE, "income", {"budget": 20000}, OVERRIDES)
    study = W.whatif(solve_exact(prepared), exact=["fruit.pomelo"])
    row = study.options.set_index("lever").loc["fruit.pomelo"]
    assert np.isnan(row["subsidy"]) and row["resolves"] == 3 and row["note"].startswith("never")
    moved = prepare_tiny(ONE, ONE_VILLAGE, "income", {"budget": 20000},
                         {**OVERRIDES, **_override("fruit.pomelo", row["income_now"] + row["subsidy_low"])})
    best, _ = optimal_plan(moved.problem)
    assert not _holds(moved.problem, best, "fruit.pomelo")


# (instance, objective, constraints, scenario key, family, step share): the change of the optimum per unit when the
# figure rises by the step, against the enumeration with the scenario's figure moved
TARGETS = {
    "floor_per_capita": ("one", "carbon", {"income_floor": 13500}, "income_floor", "income_floor", 0.01),
    "budget": ("one", "income", {"budget": 15000}, "budget", "budget", 0.1),
    "transfer_budget": ("one", "income", {"transfer_budget": 6000}, "transfer_budget", "transfer_budget", 1.0),
}


@pytest.mark.parametrize("case", sorted(TARGETS))
def test_marginal_value_is_the_enumerated_change(case: str) -> None:
    instance, objective, constraints, key, family, share = TARGETS[case]
    parcels, villages = INSTANCES[instance]
    prepared = prepare_tiny(parcels, villages, objective, constraints, OVERRIDES)
    outcome = solve_exact(prepared)
    study = W.whatif(outcome, resolve=[family], step=share)
    row = study.targets.set_index("family").loc[family]
    assert row["figure"] == pytest.approx(constraints[key])
    moved = prepare_tiny(parcels, villages, objective, {**constraints, key: constraints[key] + row["step"]},
                         OVERRIDES)
    best, _ = optimal_plan(moved.problem, scales=outcome.es_scale or None)
    change = (best.value - outcome.result.objective) / row["step"]
    assert row["value_per_unit"] == pytest.approx(change, rel=1e-6, abs=1e-9)
    assert row["value_low"] == pytest.approx(change, rel=1e-6, abs=1e-9)
    assert row["value_high"] == pytest.approx(change, rel=1e-6, abs=1e-9)
    assert row["value_per_unit"] != 0  # the cases are chosen so that the figure holds the plan back


def test_lp_duals_are_the_relaxations_rate() -> None:
    prepared = prepare_tiny(ONE, ONE_VILLAGE, "income", {"budget": 20000, "transfer_budget": 12000}, OVERRIDES)
    model = W.model_of_outcome(solve_exact(prepared))
    relaxation = W._lp_solve(model.lp, model.options)
    assert relaxation is not None
    checked = 0
    for i, side, _ in W.binding(model, relaxation):
        if abs(relaxation["row_dual"][i]) < 1e-9:
            continue
        lower, upper = model.lp.row_lower.copy(), model.lp.row_upper.copy()
        eps = 1e-3 * max(1.0, abs(lower[i] if side == ">=" else upper[i]))
        (lower if side == ">=" else upper)[i] += eps
        moved = W._lp_solve(replace(model.lp, row_lower=lower, row_upper=upper), model.options)
        assert moved is not None
        assert (moved["objective"] - relaxation["objective"]) / eps == pytest.approx(relaxation["row_dual"][i],
                                                                                      rel=1e-6, abs=1e-6)
        checked += 1
    assert checked >= 2


def test_a_plan_within_its_gap_may_hold_the_lever_at_todays_price() -> None:
    # the bisection starts at today's price: a lever a better plan would already hold is said to enter at 0
    prepared = prepare_tiny(ONE, ONE_VILLAGE, "income", {"budget": 20000}, OVERRIDES)
    model = W.model_of_outcome(solve_exact(prepared))
    assert (model.x[model.choice_columns("herbs")] > 0.5).any()  # herbs are in the optimal plan
    entry = W.entry_price(model, "herbs", tolerance=1.0)
    assert entry.high == 0.0 and entry.resolves == 2 and entry.note.startswith("holds it at today's price")


def test_cli_writes_the_tables_beside_the_plan(tmp_path: Path) -> None:
    scenario = write_instance(tmp_path / "tiny")
    out = tmp_path / "out"
    runner = CliRunner()
    solved = runner.invoke(app, ["solve", str(scenario), "--out", str(out), "--gap", "0"])
    assert solved.exit_code == 0, solved.output
    plain = runner.invoke(app, ["whatif", str(out)])  # LP figures only, nothing re-solved
    assert plain.exit_code == 0, plain.output
    assert pd.read_csv(out / "whatif" / "targets.csv", encoding="utf-8-sig")["resolves"].isna().all()
    result = runner.invoke(app, ["whatif", str(out), "--exact", "afforestation.quercus", "--resolve", "income_floor",
                                 "--tolerance", "5"])  # replaces the study it wrote
    assert result.exit_code == 0, result.output
    assert "what would it take" in result.output and "binding targets" in result.output
    options = pd.read_csv(out / "whatif" / "options.csv", encoding="utf-8-sig").set_index("lever")
    targets = pd.read_csv(out / "whatif" / "targets.csv", encoding="utf-8-sig")
    assert list(options.reset_index().columns) == W.OPTION_COLUMNS and list(targets.columns) == W.TARGET_COLUMNS
    quercus = options.loc["afforestation.quercus"]
    assert quercus["status"] == "absent" and quercus["resolves"] >= 3 and quercus["proven"]
    assert quercus["subsidy"] - quercus["subsidy_low"] <= 5 and quercus["first_parcels"] == "P4"
    assert quercus["summary"].startswith(f"afforestation.quercus (Quercus acutissima) enters the plan at a net income "
                                         f"of {quercus['entry_price']:,.0f} yuan/mu (now 60 yuan/mu)")
    assert "first on P4" in quercus["summary"] and quercus["summary"] in " ".join(result.output.split())
    floors = targets[targets["family"] == "income_floor"]
    assert len(floors) and floors["resolves"].eq(1).all() and set(floors["key"]) <= {"V1", "V2"}
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert W.model_of_folder(out).value == pytest.approx(run["objective"]["value"], rel=1e-9)
    # the folder stays a results folder: the checker passes it and solve may replace it
    assert runner.invoke(app, ["check", str(out)]).exit_code == 0
    again = runner.invoke(app, ["solve", str(scenario), "--out", str(out), "--gap", "0"])
    assert again.exit_code == 0, again.output


def test_the_balance_rules_income_row_is_the_runs(tmp_path: Path) -> None:
    from tests.conftest import TINY_SCENARIO

    text = TINY_SCENARIO.replace('maximise = "ecosystem_services"',
                                 'maximise = "ecosystem_services"\nincome_gain_share = 0.75')
    scenario = write_instance(tmp_path / "tiny", scenario=text)
    out = tmp_path / "out"
    solved = CliRunner().invoke(app, ["solve", str(scenario), "--out", str(out), "--gap", "0"])
    assert solved.exit_code == 0, solved.output
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    need = W._balance_need(run["notes"])
    assert need is not None
    model = W.model_of_folder(out)
    assert model.value == pytest.approx(run["objective"]["value"], rel=1e-9)
    row = list(model.lp.row_names).index("bound_income>=")
    nonland = float(model.problem.villages.eval("nonland_income_per_capita * population").sum())
    assert abs(model.lp.row_lower[row] + nonland - need) <= 0.5
    targets = W.target_values(model)
    assert "bound_income" in set(targets["family"])  # the balance rule's income row binds the index


@pytest.mark.parametrize("case", sorted(set(ENTRY) - {"herd_income", "herd_cost"}))
def test_lp_estimate_is_the_relaxations_entry_price(case: str) -> None:
    # just below the estimate the LP relaxation gains nothing from the lever, just above it does (the herd is left
    # out: a head needs forage, whose capacity row is at zero in the relaxation, so its entering pivot is degenerate)
    instance, objective, constraints, lever = ENTRY[case]
    parcels, villages = INSTANCES[instance]
    model = W.model_of_outcome(solve_exact(prepare_tiny(parcels, villages, objective, constraints, OVERRIDES)))
    estimate = W.entry_estimates(model, [lever]).iloc[0]
    assert not estimate["lp_uses_now"] and estimate["lp_subsidy"] > 0
    upper = model.lp.col_upper.copy()
    upper[model.columns(lever)] = 0.0
    gains = []
    for shift in (0.999 * estimate["lp_subsidy"], 1.001 * estimate["lp_subsidy"]):
        at = model.at(lever, shift)
        with_it, without = W._lp_solve(at, model.options), W._lp_solve(replace(at, col_upper=upper), model.options)
        assert with_it is not None and without is not None
        gains.append(model.sign * (with_it["objective"] - without["objective"]))
    assert gains[0] == pytest.approx(0.0, abs=1e-9) and gains[1] > 1e-6


def test_a_capped_variant_and_what_a_mu_more_of_its_market_is_worth() -> None:
    # paris earns the most per mu; the market takes 10 mu of it
    constraints = {"market": {"herbs.paris": 10}}
    prepared = prepare_tiny(ONE, ONE_VILLAGE, "income", constraints, OVERRIDES)
    outcome = solve_exact(prepared)
    study = W.whatif(outcome, resolve=["market"], step=0.5)
    assert study.options.set_index("lever").loc["herbs.paris", "status"] == "capped (market['herbs.paris'])"
    row = study.targets.set_index("family").loc["market"]
    assert row["figure"] == 10 and row["tight"] and row["step"] == 5
    moved = prepare_tiny(ONE, ONE_VILLAGE, "income", {"market": {"herbs.paris": 15}}, OVERRIDES)
    best, _ = optimal_plan(moved.problem)
    assert row["value_per_unit"] == pytest.approx((best.value - outcome.result.objective) / 5, rel=1e-9)
    assert row["value_per_unit"] > 0


def test_both_backends_give_the_same_figures() -> None:
    # the matrix backend orders its columns its own way: levers, parcels and duals are read by column name
    instance, objective, constraints, lever = ENTRY["quercus_carbon"]
    parcels, villages = INSTANCES[instance]
    outcome = solve_exact(prepare_tiny(parcels, villages, objective, constraints, OVERRIDES))
    problem = outcome.prepared.problem
    rows = W._integer_columns(problem, outcome.solution.chosen_rows(), outcome.solution.herd, outcome.solution.posts)
    entries, estimates = [], []
    for backend in ("pyomo", "matrix"):
        model = W.build_model(outcome.prepared, rows, outcome.options, backend, outcome.es_scale, None,
                              outcome.result.bound)
        entries.append(W.entry_price(model, lever, tolerance=0.5))
        estimates.append(W.entry_estimates(model, [lever, "herd"]).set_index("lever"))
    assert entries[0].first == entries[1].first and abs(entries[0].high - entries[1].high) <= 0.5
    assert estimates[0]["lp_subsidy"].to_numpy() == pytest.approx(estimates[1]["lp_subsidy"].to_numpy(), rel=1e-9)
