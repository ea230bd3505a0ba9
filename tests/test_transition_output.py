"""The transition outputs (optiland.views.transition_output) and `optiland transition`, on a tiny instance whose catalog
has slow returns (profiles.csv) and price risk (price_risk.csv)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SCENARIO, write_instance
from typer.testing import CliRunner

from optiland.analysis.transition_accounts import cvar, final_areas, shortfall
from optiland.cli import app
from optiland.io.scenario import load_scenario
from optiland.testing import SMALL_CATALOG
from optiland.views import transition_output
from optiland.views.transition_output import (
    FILES,
    floor_breaks,
    parcel_years,
    run_transition,
    transition_config,
    write_transition,
)

runner = CliRunner()

PROFILES = """option,variant,item,age,factor
fruit,,income,0,0.0
fruit,,income,2,1.0
herbs,,income,0,0.3
herbs,,income,1,1.0
afforestation,,cost,0,0.6
afforestation,,cost,1,0.4
"""
PRICE_RISK = "product,cv\nfruit,0.4\nherbs,0.3\nlivestock,0.2\ncurrent,0.1\n"
TRANSITION = """
[transition]
horizon = 4
yearly_budget = 25000
subsidy_budget = 20000

[transition.risk]
measure = "robust"
sample = 6
"""
COLUMNS = {
    "phasing.csv": ["village", "option", "variant", "year", "area_mu", "share"],
    "village_years.csv": ["village", "year", "floor", "income_per_capita", "worst_income_per_capita",
                          "worst_scenario", "shortfall_worst", "shortfall_expected", "below_floor_average",
                          "income_nonland", "income_compensation", "income_wages", "income_subsidy",
                          "income_livestock", "income_current", "labour_used", "labour_available", "herd", "posts"],
    "village_risk.csv": ["village", "floor", "worst_year", "worst_scenario", "worst_income_per_capita",
                         "margin_to_floor", "lowest_average_income_per_capita", "lowest_average_year",
                         "cells_below_floor", "expected_shortfall_max", "expected_shortfall_year",
                         "cvar_shortfall_max", "cvar_shortfall_year", "cvar_alpha", "measure", "max_shortfall"],
    "years.csv": ["year", "area_established_mu", "herd_bought", "establishment_cost", "yearly_budget", "transfers",
                  "transfer_budget", "subsidy", "subsidy_cumulated", "subsidy_budget"],
    "robustness.csv": ["plan", "measure", "objective_name", "sense", "objective", "bound", "gap", "status", "cells",
                       "cells_below_floor", "worst_shortfall_per_capita", "cost_of_robustness",
                       "relative_cost_of_robustness"],
}


def _instance(folder: Path, transition: str = TRANSITION, floor: float = 4000) -> Path:
    catalog = folder / "catalog"
    shutil.copytree(SMALL_CATALOG, catalog)
    (catalog / "profiles.csv").write_text(PROFILES, encoding="utf-8")
    (catalog / "price_risk.csv").write_text(PRICE_RISK, encoding="utf-8")
    scenario = TINY_SCENARIO.replace(SMALL_CATALOG.as_posix(), catalog.as_posix())
    scenario = scenario.replace("income_floor = 4000", f"income_floor = {floor:g}")
    return write_instance(folder, scenario=scenario + transition)


def _csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, encoding="utf-8-sig", keep_default_na=True)


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("transition-output")
    scenario = _instance(root / "inst")
    outcome, average, prepared, options = run_transition(scenario, compare=True)
    out = write_transition(outcome, root / "out", average, prepared=prepared, options=options)
    return outcome, average, prepared, options, out


def test_every_file_is_written_with_its_columns(solved) -> None:
    *_, out = solved
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "robustness.csv", ".optiland"])
    for name, columns in COLUMNS.items():
        table = _csv(out, name)
        assert list(table.columns[:len(columns)]) == columns or set(columns) <= set(table.columns), name
        assert (out / name).read_bytes().startswith(b"\xef\xbb\xbf")
    parcels = gpd.read_file(out / "plan.gpkg", layer="parcels")
    for column in ("parcel_id", "village", "option", "variant", "area_mu", "income", "start_year", "end_year"):
        assert column in parcels.columns
    for image in ("income_paths.png", "phasing.png"):
        assert (out / image).read_bytes().startswith(b"\x89PNG")


def test_village_years_agree_with_the_accounts(solved) -> None:
    outcome, *_, out = solved
    acc, tp = outcome.accounts, outcome.tp
    table = _csv(out, "village_years.csv")
    pop = tp.problem.villages["population"].to_numpy(dtype=float)
    H = tp.horizon
    assert len(table) == len(pop) * H
    assert np.allclose(table["income_per_capita"], (acc.expected_income / pop[:, None]).ravel(), atol=0.01)
    assert np.allclose(table["worst_income_per_capita"], (acc.income.min(axis=2) / pop[:, None]).ravel(), atol=0.01)
    worst = [tp.prices.names.index(s) for s in table["worst_scenario"]]
    picked = acc.income.reshape(-1, acc.income.shape[2])[np.arange(len(table)), worst]
    assert np.allclose(picked / np.repeat(pop, H), table["worst_income_per_capita"], atol=0.51)
    parts = table[[f"income_{k}" for k in acc.parts]].sum(axis=1)
    assert np.allclose(parts, table["income_per_capita"], atol=0.05 * len(acc.parts))
    gap = shortfall(acc)
    assert np.allclose(table["shortfall_worst"], (gap.max(axis=2) / pop[:, None]).ravel(), atol=0.01)
    assert np.allclose(table["labour_used"], acc.labour.ravel(), atol=0.01)
    assert np.allclose(table["herd"], acc.herd.ravel(), atol=1e-3)
    assert np.allclose(table["posts"], outcome.plan.posts_staffed.ravel(), atol=1e-3)
    assert (table["floor"] == np.repeat(tp.problem.villages["floor"].to_numpy(), H)).all()


def test_village_risk_names_the_worst_year_and_scenario(solved) -> None:
    outcome, *_, out = solved
    acc, tp = outcome.accounts, outcome.tp
    risk = _csv(out, "village_risk.csv")
    pop = tp.problem.villages["population"].to_numpy(dtype=float)
    for v, row in enumerate(risk.itertuples(index=False)):
        s = tp.prices.names.index(row.worst_scenario)
        assert acc.income[v, row.worst_year - 1, s] / pop[v] == pytest.approx(acc.income[v].min() / pop[v], abs=0.51)
        assert row.worst_income_per_capita == pytest.approx(acc.income[v].min() / pop[v], abs=0.51)
        assert row.margin_to_floor == pytest.approx(row.worst_income_per_capita - row.floor, abs=0.01)
        gap = shortfall(acc)[v]
        tail = max(cvar(gap[t], tp.prices.probability, tp.risk.alpha) for t in range(tp.horizon))
        assert row.cvar_shortfall_max == pytest.approx(tail / pop[v], abs=0.01)
        assert row.expected_shortfall_max == pytest.approx((gap @ tp.prices.probability).max() / pop[v], abs=0.01)
        assert row.measure == "robust" and row.margin_to_floor >= -0.5 and row.cells_below_floor == 0


def test_phasing_sums_to_the_final_areas(solved) -> None:
    outcome, *_, out = solved
    tp = outcome.tp
    phasing = _csv(out, "phasing.csv")
    assert (phasing["area_mu"] > 0).all() and phasing["year"].between(1, tp.horizon).all()
    final = final_areas(tp, outcome.plan.core.x)
    names = tp.problem.villages["village"].to_numpy()
    expected = pd.DataFrame({"village": names[tp.groups["village"]], "option": tp.groups["option"],
                             "variant": tp.groups["variant"], "area": final})
    expected = expected.groupby(["village", "option", "variant"])["area"].sum()
    expected = expected[expected > 0]
    got = phasing.groupby(["village", "option", "variant"])["area_mu"].sum()
    assert np.allclose(got.reindex(expected.index).to_numpy(), expected.to_numpy(), atol=1e-3)
    assert np.allclose(phasing.groupby(["village", "option", "variant"])["share"].sum(), 1.0, atol=1e-4)
    parcels = gpd.read_file(out / "plan.gpkg", layer="parcels")
    converted = parcels[parcels["option"] != "keep"]
    assert converted["area_mu"].sum() == pytest.approx(phasing["area_mu"].sum(), abs=1e-3)


def test_start_year_is_within_the_horizon_for_converted_parcels_and_empty_for_kept_ones(solved) -> None:
    outcome, *_, out = solved
    parcels = gpd.read_file(out / "plan.gpkg", layer="parcels")
    kept = parcels["option"] == "keep"
    assert kept.any() and (~kept).any()
    assert parcels.loc[kept, ["start_year", "end_year"]].isna().all().all()
    years = parcels.loc[~kept, ["start_year", "end_year"]]
    assert years.notna().all().all()
    assert years["start_year"].between(1, outcome.tp.horizon).all()
    assert (years["end_year"] >= years["start_year"]).all()
    phasing = _csv(out, "phasing.csv")
    for t in range(1, outcome.tp.horizon + 1):
        established = phasing.loc[phasing["year"] <= t, "area_mu"].sum()
        assert parcels.loc[~kept & (parcels["end_year"] <= t), "area_mu"].sum() <= established + 1e-3
        assert parcels.loc[~kept & (parcels["start_year"] <= t), "area_mu"].sum() >= established - 1e-3


def test_start_year_fills_a_group_in_parcel_order() -> None:
    """Five 10-mu parcels of one group established 12, 25 and 13 mu in years 1-3 (cumulated 12, 37, 50): filled in
    parcel order, P1 and P3 straddle two years."""
    from test_transition import _instance

    from optiland.analysis.transition_accounts import TransitionPlan
    from optiland.analysis.transition_problem import build_transition
    from optiland.io.scenario import TransitionConfig
    from optiland.model.backend import Solution

    prepared = _instance(n=5)
    allowed = prepared.problem.allowed
    tp = build_transition(prepared.problem, TransitionConfig(horizon=3))
    x = ((allowed["option"] == "afforestation") & (allowed["variant"] == "zenia")).to_numpy().astype(float)
    assert x.sum() == 5
    q = set(tp.row_group[x > 0])
    assert len(q) == 1
    establish = np.zeros((len(tp.groups), 3))
    establish[q.pop()] = [12.0, 25.0, 13.0]
    plan = TransitionPlan(core=Solution(x=x, herd=np.zeros(1), posts=np.zeros(1)), establish=establish,
                          herd_bought=np.zeros((1, 3)), posts_staffed=np.zeros((1, 3)), subsidy=np.zeros((1, 3)))
    years = parcel_years(SimpleNamespace(tp=tp, plan=plan))
    assert list(years["start_year"]) == [1, 1, 2, 2, 3]
    assert list(years["end_year"]) == [1, 2, 2, 3, 3]


def test_years_agree_with_the_accounts_and_budgets(solved) -> None:
    outcome, *_, out = solved
    acc, plan, tp = outcome.accounts, outcome.plan, outcome.tp
    years = _csv(out, "years.csv")
    assert list(years["year"]) == list(range(1, tp.horizon + 1))
    assert np.allclose(years["establishment_cost"], acc.cost, atol=0.01)
    assert (years["establishment_cost"] <= years["yearly_budget"] + 0.01).all()
    assert np.allclose(years["transfers"], acc.transfers, atol=0.01)
    assert (years["transfers"] <= years["transfer_budget"] + 0.01).all()
    assert np.allclose(years["subsidy"], plan.subsidy.sum(axis=0), atol=0.01)
    assert years["subsidy_cumulated"].iloc[-1] <= years["subsidy_budget"].iloc[0] + 0.01
    assert np.allclose(years["area_established_mu"], plan.establish.sum(axis=0), atol=0.01)


def test_robustness_compares_the_robust_and_the_average_price_plan(solved) -> None:
    outcome, average, *_, out = solved
    table = _csv(out, "robustness.csv")
    assert list(table["plan"]) == ["robust", "average_price"]
    robust, flat = table.iloc[0], table.iloc[1]
    assert robust["objective"] == pytest.approx(outcome.result.objective)
    assert flat["objective"] == pytest.approx(average.result.objective)
    assert robust["cost_of_robustness"] == pytest.approx(flat["objective"] - robust["objective"], abs=1e-9)
    assert robust["cells"] == outcome.accounts.income.size
    assert robust["cells_below_floor"] == 0 == floor_breaks(outcome)
    assert flat["cells_below_floor"] == floor_breaks(average)
    assert (flat["measure"], robust["measure"]) == ("expected", "robust")


def test_run_json_records_provenance_risk_and_solver(solved) -> None:
    outcome, *_, out = solved
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert set(run["input_hashes"]) == {"parcels", "villages", "scenario"}
    assert run["catalog"]["name"] == "test-small" and run["scenario"]["transition"]["horizon"] == 4
    assert run["risk"]["measure"] == "robust" and run["risk"]["family"] == "robust_floor"
    assert run["risk"]["price_scenarios"]["count"] == 6
    assert run["risk"]["price_scenarios"]["source"].startswith("sampled")
    assert run["status"] == "optimal" and run["objective"]["value"] == pytest.approx(outcome.result.objective)
    assert {"bound", "gap", "name", "sense"} <= set(run["objective"])
    assert run["model_size"]["years"] == 4 and run["model_size"]["scenarios"] == 6
    assert {"build_core", "solve", "write"} <= set(run["times"])
    assert run["solver"]["options"]["time_limit"] > 0
    assert run["compare"]["measure"] == "expected" and "cost_of_robustness" in run["compare"]


def test_the_folder_is_untouched_when_writing_fails(solved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    outcome, average, prepared, options, _ = solved
    out = write_transition(outcome, tmp_path / "out", prepared=prepared, options=options)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(transition_output, "plot_phasing", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_transition(outcome, out, average, prepared=prepared, options=options)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_config_overrides_and_defaults(tmp_path: Path) -> None:
    from optiland.pipeline.run import prepare

    plain = prepare(write_instance(tmp_path / "plain")).scenario
    config = transition_config(plain)
    assert config.horizon == 10 and config.risk.measure == "expected"
    table = tmp_path / "prices.csv"
    config = transition_config(plain, horizon=3, measure="icc", scenarios=table, max_shortfall=50, alpha=0.8)
    assert (config.horizon, config.risk.measure, config.risk.max_shortfall, config.risk.alpha) == (3, "icc", 50, 0.8)
    assert config.risk.scenarios == table.resolve() and config.risk.sample is None


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`optiland transition` with a robust floor and the average-price comparison: the folder and the output."""
    base = tmp_path_factory.mktemp("cli")
    out = base / "out"
    result = runner.invoke(app, ["transition", str(_instance(base / "inst")), "--out", str(out), "--horizon", "3",
                                 "--sample", "4", "--measure", "robust", "--compare"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_cli_end_to_end_with_compare(cli_run: tuple[Path, str]) -> None:
    out, output = cli_run
    text = " ".join(output.split())
    assert "cost of robustness" in text and "worst year and scenario" in text
    assert (out / "robustness.csv").is_file()
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["transition"]["horizon"] == 3 and run["risk"]["price_scenarios"]["count"] == 4
    assert len(_csv(out, "village_years.csv")) == 2 * 3


def test_cli_without_transition_section_and_without_compare(tmp_path: Path) -> None:
    scenario = write_instance(tmp_path / "plain")
    out = tmp_path / "out"
    result = runner.invoke(app, ["transition", str(scenario), "--out", str(out), "--horizon", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, ".optiland"])
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["risk"]["measure"] == "expected" and run["risk"]["price_scenarios"]["count"] == 1
    scenario_cvar = _instance(tmp_path / "inst")
    result = runner.invoke(app, ["transition", str(scenario_cvar), "--out", str(tmp_path / "cvar"), "--measure",
                                 "cvar", "--max-shortfall", "100", "--alpha", "0.8", "--no-compare"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "cvar" / "robustness.csv").exists()
    assert set(_csv(tmp_path / "cvar", "village_risk.csv")["measure"]) == {"cvar"}


def test_cli_exit_codes(tmp_path: Path) -> None:
    scenario = _instance(tmp_path / "inst", floor=9000)
    result = runner.invoke(app, ["transition", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "error" in result.output and not (tmp_path / "out").exists()
    result = runner.invoke(app, ["transition", str(scenario), "--out", str(tmp_path / "out"), "--measure", "bogus"])
    assert result.exit_code == 2, result.output


def test_income_plot_shows_the_villages_closest_to_their_floor_when_there_are_many(
        solved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, average, *_ = solved
    monkeypatch.setattr(transition_output, "MAX_PANELS", 1)
    transition_output.plot_income_paths(outcome, tmp_path / "paths.png", average)
    assert (tmp_path / "paths.png").read_bytes().startswith(b"\x89PNG")


def test_check_reads_a_transition_folder_back_and_finds_a_tampered_year(cli_run: tuple[Path, str],
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(cli_run[0], out)
    result = runner.invoke(app, ["check", str(out)])
    assert result.exit_code == 0, result.output
    plan = _csv(out, "transition_plan.csv")
    established = plan.index[plan["record"] == "established_mu"]
    assert len(established)
    plan.loc[established[0], "value"] *= 0.5  # half a group's conversion goes missing
    plan.to_csv(out / "transition_plan.csv", index=False, encoding="utf-8-sig")
    result = runner.invoke(app, ["check", str(out)])
    assert result.exit_code == 1, result.output
    assert "phase_complete" in " ".join(result.output.split())


def test_the_comparison_gets_only_the_time_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = _instance(tmp_path / "inst")
    monkeypatch.setattr(transition_output, "MIN_COMPARE_SECONDS", 1e9)  # as if the plan had used the whole limit
    config = transition_output.transition_config(load_scenario(scenario), horizon=2, sample=3, measure="robust")
    outcome, average, *_ = transition_output.run_transition(scenario, config, compare=True)
    assert average is None
    assert any("average-price plan not solved" in note for note in outcome.notes)
