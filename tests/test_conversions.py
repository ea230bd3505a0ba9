"""Land-survey classes and the conversion table: every GB/T 21010-2017 class is known; construction, transport, water
and special-use parcels are kept as they are; cultivated land leaves cropping only at 25 degrees or more, garden land
only for fruit or herbs, forest land only for forest-type uses (models/*/conversions.csv); the rule is re-derived here
from the CSV with the csv module, independently of optiland.model.problem."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiland._paths import models_dir
from optiland.check import check, check_plan
from optiland.cli import app
from optiland.errors import InputError
from optiland.io.catalog import load_catalog
from optiland.model.problem import build_problem, explain
from optiland.pipeline.results import make_plan
from optiland.pipeline.run import Prepared, solve_prepared, solver_options
from optiland.testing import make_inputs, make_scenario
from tests.bruteforce import parcels_table, villages_table

KARST = models_dir() / "karst-southwest"
runner = CliRunner()
REGIONS = ("karst-southwest", "sandy-land-north")
# GB/T 21010-2017: 12 first-level classes, 73 second-level classes (09 special use has 0901-0906)
SECOND_LEVEL = {"01": 3, "02": 4, "03": 7, "04": 4, "05": 7, "06": 4, "07": 2, "08": 10, "09": 6, "10": 9, "11": 10,
                "12": 7}
NOT_PLANNABLE = ({f"{c}" for c in ("05", "06", "07", "08", "09", "10", "11")}
                 | {"0303", "0304", "0306", "0402", "1201", "1202", "1203"})

# A survey-style layer: dry land below and above 25 degrees, orchard, tea, bamboo, arbor forest, grass, a homestead,
# a rural road inside a red line, a river, a ditch and basic farmland (paddy).
LAYER = parcels_table([
    ("P00", "V1", "0103", 10, 20, 12),
    ("P01", "V1", "0103", 30, 25, 10),
    ("P02", "V1", "0201", 12, 20, 8),
    ("P03", "V1", "0202", 15, 20, 6),
    ("P04", "V1", "0302", 20, 30, 9),
    ("P05", "V1", "0301", 18, 25, 15),
    ("P06", "V2", "0404", 12, 25, 20),
    ("P07", "V2", "0702", 3, 5, 4),
    ("P08", "V2", "1006", 8, 10, 2, True, True),
    ("P09", "V2", "1101", 0, 0, 5, False),
    ("P10", "V2", "1107", 2, 0, 1, False),
    ("P11", "V2", "0101", 4, 5, 7, True, False, True),
    ("P12", "V2", "0103", 8, 15, 6, True, True),
    ("P13", "V2", "0201", 8, 15, 5, True, True),
])
VILLAGES = villages_table([("V1", "T1", 20, 5, 4000, 3000), ("V2", "T1", 15, 4, 3000, 3500)])


def _prepare(objective: str = "income", catalog: dict | None = None, constraints: dict | None = None,
             layer: pd.DataFrame = LAYER) -> Prepared:
    scenario = make_scenario(KARST, objective={"maximise": objective},
                             constraints={"income_floor": 3000, **(constraints or {})})
    scenario = scenario.model_copy(update={"catalog": scenario.catalog.model_copy(update=catalog or {})})
    loaded = load_catalog(KARST)
    inputs = make_inputs(layer, VILLAGES)
    return Prepared(scenario, loaded, inputs, build_problem(scenario, loaded, inputs), 0.0)


@pytest.mark.parametrize("region", REGIONS)
def test_full_land_survey_table(region: str) -> None:
    uses = load_catalog(models_dir() / region).current_uses
    codes = [str(c) for c in uses.index]
    first = sorted(c for c in codes if len(c) == 2)
    assert first == [f"{i:02d}" for i in range(1, 13)]
    for cls, count in SECOND_LEVEL.items():
        assert len([c for c in codes if len(c) == 4 and c[:2] == cls]) == count, cls
    assert sum(SECOND_LEVEL.values()) == 73
    assert uses["name"].map(bool).all() and uses["name_zh"].map(bool).all()
    kept = {c for c in codes if not uses.loc[c, "plannable"]}
    expected = {c for c in codes if c[:2] in NOT_PLANNABLE or c in NOT_PLANNABLE}
    assert kept == expected
    assert (uses.loc[sorted(kept), "income_per_mu"] == 0).all()


def _first_rule(rows: list[dict[str, str]], code: str, red: bool, farmland: bool, slope: float, option: str,
                variant: str) -> dict[str, str] | None:
    """The first row of conversions.csv whose conditions hold, read as the data model says (not by optiland)."""
    for row in rows:
        codes = row["current_use"].split(";")
        if code not in codes and code[:2] not in [c for c in codes if len(c) == 2] and "*" not in codes:
            continue
        if row["red_line"] and (row["red_line"] == "true") != red:
            continue
        if row["basic_farmland"] and (row["basic_farmland"] == "true") != farmland:
            continue
        if row["min_slope_deg"] and slope < float(row["min_slope_deg"]):
            continue
        if row["max_slope_deg"] and slope >= float(row["max_slope_deg"]):
            continue
        targets = row["to"].split(";")
        if "*" in targets or option in targets or f"{option}.{variant}" in targets:
            return row
    return None


def _pairs(prepared: Prepared) -> set[tuple[str, str, str]]:
    a, ids = prepared.problem.allowed, prepared.problem.parcels["parcel_id"].to_numpy()
    return set(zip(ids[a["parcel"].to_numpy()], a["option"], a["variant"], strict=True))


def test_conversion_table_rederived() -> None:
    """Allowed set with the table = allowed set without it, less exactly the pairs whose first matching row says
    false (and every change of a non-plannable parcel)."""
    rows = list(csv.DictReader((KARST / "conversions.csv").open(encoding="utf-8")))
    with_table = _prepare()
    empty = KARST.parent.parent / "tests" / "data" / "empty-conversions.csv"
    without = _prepare(catalog={"conversions": empty})
    assert without.problem.catalog.conversions.empty
    uses = with_table.catalog.current_uses
    parcels = LAYER.set_index("parcel_id")
    expected = set()
    for parcel, option, variant in _pairs(without):
        p = parcels.loc[parcel]
        if option != "keep":
            if not uses.loc[p["land_use"], "plannable"]:
                continue
            rule = _first_rule(rows, p["land_use"], bool(p["red_line"]), bool(p["basic_farmland"]),
                               float(p["slope_deg"]), option, variant)
            if rule is not None and rule["allowed"] == "false":
                continue
        expected.add((parcel, option, variant))
    assert _pairs(with_table) == expected
    got = _pairs(with_table)
    options = {pid: {o for q, o, _ in got if q == pid} for pid in parcels.index}
    assert options["P00"] == {"keep"}  # dry land at 10 degrees stays cropland
    assert "fruit" not in options["P01"] and {"closure", "afforestation"} <= options["P01"]  # 30 degrees: leaves
    assert options["P02"] == {"keep", "fruit", "herbs"} and options["P03"] <= {"keep", "fruit", "herbs"}
    assert options["P05"] <= {"keep", "closure", "afforestation", "herbs", "understory_forage"}
    assert "fruit" not in options["P04"] and "understory_forage" not in options["P06"]  # grass: open forage
    # understory herbs need a canopy: forest and garden land only (rule herbs_only_under_canopy)
    assert "herbs" not in options["P01"] and "herbs" not in options["P06"] and "herbs" in options["P05"]
    for pid in ("P07", "P08", "P09", "P10"):  # homestead, road (in a red line too), river, ditch: kept
        assert options[pid] == {"keep"}
    for pid in ("P12", "P13"):  # dry land and orchard inside a red line: protection and restoration only
        assert options[pid] == {"closure", "afforestation"}, options[pid]


def test_survey_layer_solves_and_checks() -> None:
    prepared = _prepare()
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60))
    assert check(outcome) == []
    plan = make_plan(outcome).parcels.set_index("parcel_id")
    for pid in ("P00", "P07", "P08", "P09", "P10", "P11"):
        assert plan.loc[pid, "option"] == "keep", pid
    # the check names the conversion rule when a plan clears dry land below 25 degrees
    parcels, villages = make_plan(outcome).parcels.copy(), make_plan(outcome).villages
    parcels.loc[parcels["parcel_id"] == "P00", ["option", "variant"]] = ["closure", "closure"]
    parcels.loc[parcels["parcel_id"] == "P08", ["option", "variant"]] = ["closure", "closure"]
    found = {(v.family, v.key): v.message for v in check_plan(prepared.problem, parcels, villages)
             if v.family in ("conversion", "current_use")}
    assert "conversion rule 'cropland'" in found[("conversion", "P00")]
    assert "not plannable" in found[("current_use", "P08")]


def test_explain_cites_the_row() -> None:
    prepared = _prepare()
    table = explain((prepared.problem.catalog, prepared.problem.parcels), "P00").set_index(["option", "variant"])
    why = table.loc[("fruit", "red_heart_pomelo"), "why"]
    assert "conversion rule 'cropland'" in why and "Land Administration Law" in why
    assert table.loc[("keep", "keep"), "allowed"]
    road = explain((prepared.problem.catalog, prepared.problem.parcels), "P08").set_index(["option", "variant"])
    assert road.loc[("keep", "keep"), "allowed"] and not road.drop(index=[("keep", "keep")])["allowed"].any()


def test_scenario_rule_comes_first() -> None:
    rule = {"rule": "fruit_on_flat_dry_land", "current_use": "0103", "to": "fruit", "allowed": True,
            "description": "a county plan that lets dry land go to fruit", "source": "scenario"}
    prepared = _prepare(catalog={"conversion_rules": [rule]})
    assert {o for q, o, _ in _pairs(prepared) if q == "P00"} == {"keep", "fruit"}
    with pytest.raises(InputError, match="unknown option"):
        _prepare(catalog={"conversion_rules": [{**rule, "to": "fruits"}]})


def _write_instance(folder: Path, layer: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    make_inputs(layer, VILLAGES).parcels.to_file(folder / "parcels.gpkg", layer="parcels", driver="GPKG")
    VILLAGES.to_csv(folder / "villages.csv", index=False)
    (folder / "scenario.toml").write_text(
        '[parcels]\npath = "parcels.gpkg"\n[villages]\npath = "villages.csv"\n[catalog]\nregion = "karst-southwest"\n'
        '[objective]\nmaximise = "ecosystem_services"\n[constraints]\nincome_floor = 3000\n', encoding="utf-8")
    return folder / "scenario.toml"


def test_survey_layer_file_solves_from_the_command_line(tmp_path: Path) -> None:
    """A layer with construction, road, water and tea/bamboo parcels is read, solved and checked; the summary's
    village lines come from the plan."""
    scenario = _write_instance(tmp_path / "ok", LAYER)
    out = tmp_path / "plan"
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(out), "--gap", "0", "--time-limit", "60"])
    assert result.exit_code == 0, result.output
    checked = runner.invoke(app, ["check", str(out)])
    assert checked.exit_code == 0, checked.output
    explained = runner.invoke(app, ["explain", str(scenario), "P08"])
    assert explained.exit_code == 0 and "not plannable" in explained.output, explained.output


def test_unknown_code_still_rejected(tmp_path: Path) -> None:
    layer = LAYER.copy()
    layer.loc[0, "land_use"] = "0199"
    scenario = _write_instance(tmp_path / "bad", layer)
    result = runner.invoke(app, ["validate", str(scenario)])
    assert result.exit_code == 2 and "0199" in result.output and "P00" in result.output, result.output


def test_no_option_left_is_impossible_for_kept_uses() -> None:
    """A non-plannable parcel inside a red line or a grazing-ban zone keeps its use (no 'no option' error)."""
    prepared = _prepare()
    kept = prepared.problem.parcels[~prepared.problem.parcels["plannable"].to_numpy(dtype=bool)]
    assert set(kept["parcel_id"]) == {"P07", "P08", "P09", "P10"}
    assert np.all(prepared.problem.parcels.set_index("parcel_id").loc["P08", "red_line"])
