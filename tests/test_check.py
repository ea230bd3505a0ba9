"""The solver-free plan check (optiland.check, independent of the model layer): a solved plan passes; each kind of
tampering with the decisions, the reported figures or the run record is caught, named and measured."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from optiland.check import FAMILIES, Instance, Violation, check, check_outdir, check_plan, instance_of
from optiland.errors import InputError
from optiland.io.catalog import load_catalog
from optiland.model.problem import PlanningProblem, build_problem
from optiland.pipeline.results import make_plan
from optiland.pipeline.run import Prepared, RunOutcome, solve, solve_prepared, solver_options
from optiland.testing import SMALL_CATALOG, make_inputs, make_scenario

# Eight parcels, two villages in two townships, chosen so that the income-maximising plan uses a price step
# (14 mu of pomelo, the first 10 at full price), fills the paris market limit (15 mu), keeps a herd and a
# ranger post, and leaves the red-line and basic-farmland parcels where the rules put them.
PARCELS = pd.DataFrame({
    "parcel_id": [f"P{i}" for i in range(8)],
    "village": ["V1"] * 4 + ["V2"] * 4,
    "land_use": ["0103", "0103", "0305", "0404", "0101", "0404", "1206", "0103"],
    "slope_deg": [10.0, 28, 35, 8, 5, 20, 40, 12],
    "bedrock_exposure": [10.0, 40, 60, 15, 5, 25, 95, 10],
    "soil_depth_cm": [50.0] * 8,
    "karst": [True] * 8,
    "red_line": [False, False, True, False, False, False, False, False],
    "basic_farmland": [False, False, False, False, True, False, False, False],
    "area_mu": [14.0, 12, 150, 6, 8, 15, 9, 10],
})
VILLAGES = pd.DataFrame({
    "village": ["V1", "V2"], "township": ["T1", "T2"], "population": [10, 8], "households": [3, 3],
    "labour_days": [1500.0, 1200.0], "nonland_income_per_capita": [2000.0, 2500.0],
})
OVERRIDES = {"livestock.net_income_per_head": 1800, "variants.herbs.sophora.net_income_per_mu": 1500}
Tables = tuple[pd.DataFrame, pd.DataFrame]
CONSTRAINTS = {"income_floor": 4000, "transfer_budget": 30000, "budget": 250000, "diversity_cap": 0.8,
               "forest_cover_min": 0.3, "max_transfer_share": 0.9}


def _problem(**constraints: object) -> tuple[Prepared, PlanningProblem]:
    scenario = make_scenario(catalog={"path": str(SMALL_CATALOG), "overrides": OVERRIDES},
                             objective={"maximise": "income"}, constraints={**CONSTRAINTS, **constraints})
    catalog = load_catalog(SMALL_CATALOG, overrides=OVERRIDES)
    inputs = make_inputs(PARCELS, VILLAGES)
    problem = build_problem(scenario, catalog, inputs)
    return Prepared(scenario, catalog, inputs, problem, 0.0), problem


@pytest.fixture(scope="module")
def solved() -> RunOutcome:
    prepared, _ = _problem()
    return solve_prepared(prepared, solver_options(prepared.scenario, time_limit=30))


@pytest.fixture(scope="module")
def problem(solved: RunOutcome) -> Instance:
    """The checker's own instance of the solved scenario."""
    return instance_of(solved.prepared)


@pytest.fixture()
def tables(solved: RunOutcome) -> Tables:
    plan = make_plan(solved)
    return plan.parcels.copy(), plan.villages.copy()


def _assign(parcels: pd.DataFrame, parcel_id: str, option: str, variant: str) -> pd.DataFrame:
    parcels.loc[parcels["parcel_id"] == parcel_id, ["option", "variant"]] = [option, variant]
    return parcels


def _set(villages: pd.DataFrame, village: str, column: str, value: float) -> pd.DataFrame:
    villages.loc[villages["village"] == village, column] = value
    return villages


def _only(violations: list[Violation], family: str) -> list[Violation]:
    found = [v for v in violations if v.family == family]
    assert found, f"no {family} violation in {[str(v) for v in violations]}"
    assert all(v.family in FAMILIES for v in violations)
    return found


def test_solved_plan_passes(solved: RunOutcome, problem: Instance,
                            tables: Tables) -> None:
    parcels, villages = tables
    chosen = parcels.set_index("parcel_id")
    # the plan exercises the harder families, so that passing means something
    assert chosen.loc["P0", "variant"] == "pomelo" and chosen.loc["P0", "area_mu"] > 10  # second price step
    assert chosen.loc[chosen["variant"] == "paris", "area_mu"].sum() == pytest.approx(15)  # market limit
    assert villages["herd"].sum() > 0 and villages["ranger_posts"].sum() > 0
    assert check_plan(problem, parcels, villages) == []
    assert check(make_plan(solved), solved.prepared) == []


def test_ecosystem_services_plan_with_bounds_passes() -> None:
    scenario = make_scenario(constraints={"income_floor": 4000, "transfer_budget": 5000, "budget": 60000,
                                          "diversity_cap": 0.8, "forest_cover_min": 0.3,
                                          "bounds": {"cost": [None, 60000], "carbon": [1.0, None]}})
    catalog = load_catalog(SMALL_CATALOG)
    inputs = make_inputs(PARCELS.iloc[:6], VILLAGES)
    problem = build_problem(scenario, catalog, inputs)
    outcome = solve_prepared(Prepared(scenario, catalog, inputs, problem, 0.0),
                             solver_options(scenario, time_limit=30))
    plan = make_plan(outcome)
    assert check(plan, outcome.prepared) == []
    own = instance_of(outcome.prepared)
    tight = dataclasses.replace(own, params={**own.params, "bounds": {"carbon": (1e6, None)}})
    found = _only(check_plan(tight, plan.parcels, plan.villages), "objective_bound")
    assert found[0].key == "carbon.lower" and "carbon" in found[0].message


@pytest.mark.parametrize(("parcel", "option", "variant", "family"), [
    ("P2", "keep", "keep", "red_line"),  # red-line shrub forest may not stay as it is
    ("P4", "closure", "closure", "farmland"),  # basic farmland keeps its current use
    ("P1", "fruit", "pomelo", "suitability"),  # 28 degrees: fruit only below 25
    ("P6", "afforestation", "zenia", "suitability"),  # extreme rocky desertification: beyond 'well' (severe)
])
def test_forbidden_assignment_names_the_rule(problem: Instance, tables: Tables,
                                             parcel: str, option: str, variant: str, family: str) -> None:
    parcels, villages = tables
    violations = check_plan(problem, _assign(parcels, parcel, option, variant), villages)
    site = [v for v in violations if v.family in ("red_line", "farmland", "suitability")]
    assert [(v.family, v.key) for v in site] == [(family, parcel)]
    assert parcel in site[0].message and f"{option}.{variant}" in site[0].message
    assert site[0].amount == pytest.approx(PARCELS.set_index("parcel_id").loc[parcel, "area_mu"])


def test_herd_above_carrying_capacity(problem: Instance, tables: Tables) -> None:
    parcels, villages = tables
    herd = int(villages.set_index("village").loc["V2", "herd"])
    violations = check_plan(problem, parcels, _set(villages, "V2", "herd", herd + 1))
    found = _only(violations, "carrying_capacity")
    assert [v.key for v in found] == ["V2"] and "V2" in found[0].message
    assert found[0].amount == pytest.approx(1.0)
    # the reported cattle income no longer matches the herd either
    assert any(v.key == "V2.income_cattle" for v in _only(violations, "consistency"))


def test_raised_income_floor(tables: Tables) -> None:
    parcels, villages = tables
    raised, _ = _problem(income_floor=11000)  # V1 earns 9,900 per capita, V2 over 13,000
    found = _only(check_plan(raised, parcels, villages), "income_floor")
    assert [v.key for v in found] == ["V1"] and "V1" in found[0].message
    per_capita = villages.set_index("village").loc["V1", "income_per_capita_after"]
    assert found[0].amount == pytest.approx(11000 - per_capita, abs=0.01)


def test_income_growth_over_today(tables: Tables) -> None:
    """A growth target the plan does not reach is caught; today's income is recomputed from the inputs."""
    parcels, villages = tables
    after = villages.set_index("village")["income_per_capita_after"]
    before = villages.set_index("village")["income_per_capita_before"]
    growth = float(after["V1"] / before["V1"]) - 1.0 + 0.05  # 5 points more than the plan gives V1
    raised, _ = _problem(village_income_growth={"V1": growth})
    found = _only(check_plan(raised, parcels, villages), "no_worse_off")
    assert [v.key for v in found] == ["V1"] and "V1" in found[0].message
    assert found[0].amount == pytest.approx((1 + growth) * before["V1"] - after["V1"], abs=0.02)
    kept, _ = _problem(no_worse_off=True)  # the plan leaves no village worse off: nothing to report
    assert (after >= before).all() and check_plan(kept, parcels, villages) == []


def test_market_limit_exceeded_by_reassigning(problem: Instance,
                                              tables: Tables) -> None:
    parcels, villages = tables
    violations = check_plan(problem, _assign(parcels, "P1", "herbs", "paris"), villages)
    found = _only(violations, "market")
    assert [v.key for v in found] == ["herbs.paris"]
    assert "P1" in found[0].message and "P5" in found[0].message
    assert found[0].amount == pytest.approx(12.0)  # 15 + 12 mu against a limit of 15
    assert not [v for v in violations if v.family in ("red_line", "farmland", "suitability")]


def test_budget_exceeded(problem: Instance, tables: Tables) -> None:
    parcels, villages = tables
    before = parcels["establishment_cost"].sum() + 9500 * villages["herd"].sum()
    violations = check_plan(problem, _assign(parcels, "P2", "afforestation", "zenia"), villages)
    found = _only(violations, "budget")
    assert found[0].key == "total" and "P2" in found[0].message
    assert found[0].amount == pytest.approx(before - 7500 + 800 * 150 - 250000)
    # P2 no longer closes the hills V1's ranger post guards
    assert [v.key for v in _only(violations, "ranger_posts")] == ["V1"]


def test_township_budget(tables: Tables) -> None:
    parcels, villages = tables
    limited, _ = _problem(township_budgets={"T2": 50000})
    found = _only(check_plan(limited, parcels, villages), "township_budget")
    assert [v.key for v in found] == ["T2"] and "V2" in found[0].message  # the herd is the largest item


def test_village_limits(problem: Instance, tables: Tables) -> None:
    parcels, villages = tables
    posts = check_plan(problem, parcels, _set(villages.copy(), "V1", "ranger_posts", 2))
    found = _only(posts, "ranger_posts")
    assert [v.key for v in found] == ["V1"] and "V1" in found[0].message  # 200 mu needed, 150 closed
    assert not any(v.family == "transfer_budget" for v in posts)
    short = dataclasses.replace(problem, villages=problem.villages.assign(labour_days=[500.0, 1200.0]))
    found = _only(check_plan(short, parcels, villages), "labour")
    assert [v.key for v in found] == ["V1"] and "V1" in found[0].message
    poor = dataclasses.replace(problem, params={**problem.params, "transfer_budget": 10000.0})
    found = _only(check_plan(poor, parcels, villages), "transfer_budget")
    assert "V1" in found[0].message
    strict = dataclasses.replace(problem, villages=problem.villages.assign(transfer_share=0.1))  # every village
    assert [v.key for v in _only(check_plan(strict, parcels, villages), "transfer_share")] == ["V1"]
    one = dataclasses.replace(problem, villages=problem.villages.assign(transfer_share=[np.nan, 0.1]))  # V2 alone
    assert not [v for v in check_plan(one, parcels, villages) if v.family == "transfer_share"]


def test_priced_income_overstated(problem: Instance, tables: Tables) -> None:
    parcels, villages = tables
    # V1's 14 mu of pomelo earn at most 10 x 3,000 + 4 x 1,500 = 36,000: the plan already reports that much
    land = villages.set_index("village").loc["V1", "income_land"]
    _set(villages, "V1", "income_land", land + 100)
    _set(villages, "V1", "income_total", villages.set_index("village").loc["V1", "income_total"] + 100)
    violations = check_plan(problem, parcels, villages)
    found = _only(violations, "price_steps")
    assert {v.key for v in found} == {"V1", "fruit.pomelo"}
    assert all(v.amount == pytest.approx(100) for v in found)
    assert "V1" in found[0].message


def test_one_use_and_consistency(problem: Instance, tables: Tables) -> None:
    parcels, villages = tables
    tampered = pd.concat([parcels[parcels["parcel_id"] != "P3"], parcels[parcels["parcel_id"] == "P0"]])
    tampered = _assign(tampered.reset_index(drop=True), "P5", "herbs", "ginseng")
    violations = check_plan(problem, tampered, _set(villages, "V2", "income_total", 1.0))
    one_use = {v.key: v for v in _only(violations, "one_use")}
    assert set(one_use) == {"P0", "P3", "P5"}
    assert all(key in v.message for key, v in one_use.items())
    assert "herbs.ginseng" in one_use["P5"].message
    assert "V2.income_total" in {v.key for v in _only(violations, "consistency")}


def _write_instance(folder: Path) -> Path:
    folder.mkdir()
    make_inputs(PARCELS, VILLAGES).parcels.to_file(folder / "parcels.gpkg", layer="parcels", engine="pyogrio")
    VILLAGES.to_csv(folder / "villages.csv", index=False)
    constraints = "\n".join(f"{key} = {value}" for key, value in CONSTRAINTS.items())
    overrides = "\n".join(f'"{key}" = {value}' for key, value in OVERRIDES.items())
    scenario = folder / "scenario.toml"
    scenario.write_text(
        f'[parcels]\npath = "parcels.gpkg"\nlayer = "parcels"\n\n[villages]\npath = "villages.csv"\n\n'
        f'[catalog]\npath = "{SMALL_CATALOG.as_posix()}"\n\n[catalog.overrides]\n{overrides}\n\n'
        f'[objective]\nmaximise = "income"\n\n[constraints]\n{constraints}\n', encoding="utf-8")
    return scenario


def test_check_outdir(tmp_path: Path) -> None:
    scenario = _write_instance(tmp_path / "inputs")
    out = make_plan(solve(scenario, time_limit=30)).write(tmp_path / "out")
    assert check_outdir(out) == []

    villages = pd.read_csv(out / "villages.csv", encoding="utf-8-sig", dtype={"village": str})
    herd = int(villages.set_index("village").loc["V2", "herd"])
    _set(villages, "V2", "herd", herd + 1).to_csv(out / "villages.csv", index=False, encoding="utf-8-sig")
    assert [v.key for v in _only(check_outdir(out), "carrying_capacity")] == ["V2"]

    inputs = VILLAGES.assign(nonland_income_per_capita=[2000.0, 2600.0])  # the input changed since the run
    inputs.to_csv(tmp_path / "inputs" / "villages.csv", index=False)
    violations = check_outdir(out)
    assert "V2.income_nonland" in {v.key for v in _only(violations, "consistency")}
    assert [v.key for v in _only(violations, "provenance")] == ["input_hashes.villages"]


def test_check_outdir_needs_a_scenario_file(solved: RunOutcome, tmp_path: Path) -> None:
    out = make_plan(solved).write(tmp_path / "out")
    with pytest.raises(InputError, match="scenario"):
        check_outdir(out)


# ------------------------------------------------------------------------------------------------------------
# A results folder tampered with: every file is checked, and run.json's copy of the scenario is not trusted


FOLDER_BUDGET = 100000  # the plan costs 34,000; with P2 afforested, 146,500


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A solved results folder of an index-maximising scenario (so that run.json has its service scales)."""
    root = tmp_path_factory.mktemp("folder")
    scenario = _write_instance(root / "inputs")
    text = scenario.read_text(encoding="utf-8").replace('maximise = "income"', 'maximise = "ecosystem_services"')
    text = text.replace(f"budget = {CONSTRAINTS['budget']}", f"budget = {FOLDER_BUDGET}")
    scenario.write_text(text, encoding="utf-8")
    out = make_plan(solve(scenario, time_limit=60)).write(root / "out")
    assert check_outdir(out) == []
    return out


def _edit_json(out: Path, change: Callable[[dict], None]) -> None:
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    change(run)
    (out / "run.json").write_text(json.dumps(run), encoding="utf-8")


def _edit_csv(out: Path, name: str, change: Callable[[pd.DataFrame], None]) -> None:
    table = pd.read_csv(out / name, encoding="utf-8-sig", dtype={"village": str, "township": str})
    change(table)
    table.to_csv(out / name, index=False, encoding="utf-8-sig")


def _edit_plan(out: Path, change: Callable[[pd.DataFrame], None]) -> None:
    import geopandas as gpd

    frame = gpd.read_file(out / "plan.gpkg", layer="parcels")
    change(frame)
    frame.to_file(out / "plan.gpkg", layer="parcels", driver="GPKG")


def _bound_below(run: dict) -> None:
    run["objective"]["bound"] = run["objective"]["value"] * 0.9


def _halve_scale(run: dict) -> None:
    values = run["reference"]["values"]
    run["reference"]["values"] = {s: v / 2 for s, v in values.items()}


def _double_income(run: dict) -> None:
    run["totals"]["income"] *= 2


def _flip_floor(table: pd.DataFrame) -> None:
    table.loc[0, "at_or_below_floor"] = not bool(table.loc[0, "at_or_below_floor"])


def _double_area_ha(frame: pd.DataFrame) -> None:
    frame.loc[0, "area_ha"] *= 2


def _township_area(table: pd.DataFrame) -> None:
    table.loc[0, "area_mu"] += 1.0


def _township_gain(table: pd.DataFrame) -> None:
    table.loc[0, "gain_carbon"] += 0.5


def _objective_value(run: dict) -> None:
    run["objective"]["value"] *= 1.01
    run["objective"]["bound"] *= 1.01


def _gap(run: dict) -> None:
    run["objective"]["gap"] = 0.0
    run["objective"]["bound"] = run["objective"]["value"] * 1.5


CORRUPTIONS: dict[str, tuple[str, Callable[[Any], None], str]] = {
    # name: (file, change, key of the violation expected)
    "objective above its bound": ("run.json", _bound_below, "run.objective.bound"),
    "halved scale": ("run.json", _halve_scale, "run.reference.carbon"),
    "doubled totals.income": ("run.json", _double_income, "run.totals.income"),
    "objective not the plan's": ("run.json", _objective_value, "run.objective.value"),
    "gap not the bound's": ("run.json", _gap, "run.objective.gap"),
    "altered township area": ("townships.csv", _township_area, "townships.T1.area_mu"),
    "altered township gain": ("townships.csv", _township_gain, "townships.T1.gain_carbon"),
    "flipped at_or_below_floor": ("villages.csv", _flip_floor, "V1.at_or_below_floor"),
    "doubled area_ha": ("plan.gpkg", _double_area_ha, "P0"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupted_folder_is_caught(folder: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    shutil.copytree(folder, out)
    file, change, key = CORRUPTIONS[name]
    if file == "run.json":
        _edit_json(out, change)
    elif file == "plan.gpkg":
        _edit_plan(out, change)
    else:
        _edit_csv(out, file, change)
    violations = check_outdir(out)
    assert key in {v.key for v in violations}, [str(v) for v in violations]


def test_budget_raised_in_run_json_copy(folder: Path, tmp_path: Path) -> None:
    """A plan over the scenario file's budget does not pass because run.json's copy of the budget was raised: the
    check reads the file, names both figures, and reports the budget."""
    out = tmp_path / "out"
    shutil.copytree(folder, out)
    scenario = json.loads((out / "run.json").read_text(encoding="utf-8"))["scenario_path"]
    budget = FOLDER_BUDGET
    assert f"budget = {budget}" in Path(scenario).read_text(encoding="utf-8")
    _edit_plan(out, lambda frame: frame.__setitem__("option", frame["option"].where(frame["parcel_id"] != "P2",
                                                                                    "afforestation")))
    _edit_plan(out, lambda frame: frame.__setitem__("variant", frame["variant"].where(frame["parcel_id"] != "P2",
                                                                                      "zenia")))
    _edit_json(out, lambda run: run["scenario"]["constraints"].__setitem__("budget", 10 * budget))
    violations = check_outdir(out)
    provenance = _only(violations, "provenance")
    assert [v.key for v in provenance] == ["scenario.constraints.budget"]
    assert f"{10 * budget}" in provenance[0].message and f"{budget}" in provenance[0].message
    assert _only(violations, "budget")


def test_scenario_file_changed_since_the_run(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(folder, out)
    scenario = Path(json.loads((out / "run.json").read_text(encoding="utf-8"))["scenario_path"])
    original = scenario.read_text(encoding="utf-8")
    try:
        scenario.write_text(original.replace("income_floor = 4000", "income_floor = 4001"), encoding="utf-8")
        keys = {v.key for v in _only(check_outdir(out), "provenance")}
        assert {"input_hashes.scenario", "scenario.constraints.income_floor"} <= keys
    finally:
        scenario.write_text(original, encoding="utf-8")


def test_boundaries_from_geometry_by_hand() -> None:
    """The checker's own shared-boundary lengths (for the boundary penalty in run.json's objective): a 3 x 3 grid of
    100 m squares has 12 inner edges of 100 m; the corner squares have 200 m of outer edge, the middle one none."""
    import shapely

    from optiland.check.instance import boundaries_of

    boxes = [shapely.box(100 * c, 100 * r, 100 * c + 100, 100 * r + 100) for r in range(3) for c in range(3)]
    (left, right, length), outer = boundaries_of(boxes)
    pairs = sorted(zip(left.tolist(), right.tolist(), strict=True))
    assert pairs == sorted([(i, i + 1) for i in range(9) if i % 3 != 2] + [(i, i + 3) for i in range(6)])
    assert length == pytest.approx([100.0] * 12)
    assert outer.tolist() == pytest.approx([200, 100, 200, 100, 0, 100, 200, 100, 200])


def test_a_plan_from_another_tool(folder: Path, tmp_path: Path) -> None:
    """A plan folder with only the decisions (parcel_id, option, variant; village, herd, ranger_posts) and a run.json
    naming the scenario, as another tool or a hand edit writes it, is checked the same way."""
    import geopandas as gpd

    out = tmp_path / "other"
    out.mkdir()
    plan = gpd.read_file(folder / "plan.gpkg", layer="parcels")[["parcel_id", "option", "variant", "geometry"]]
    plan.to_file(out / "plan.gpkg", layer="parcels", driver="GPKG")
    villages = pd.read_csv(folder / "villages.csv", encoding="utf-8-sig", dtype={"village": str})
    villages[["village", "herd", "ranger_posts"]].to_csv(out / "villages.csv", index=False)
    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    (out / "run.json").write_text(json.dumps({"scenario_path": run["scenario_path"]}), encoding="utf-8")
    assert check_outdir(out) == []
    _edit_plan(out, lambda frame: frame.__setitem__("option", frame["option"].where(frame["parcel_id"] != "P4",
                                                                                    "closure")))
    _edit_plan(out, lambda frame: frame.__setitem__("variant", frame["variant"].where(frame["parcel_id"] != "P4",
                                                                                      "closure")))
    assert [(v.family, v.key) for v in check_outdir(out)] == [("farmland", "P4")]
