"""Shared fixtures: a tiny instance written to files, and the small test catalog."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from optiland.testing import SMALL_CATALOG, make_inputs

TINY_PARCELS = pd.DataFrame({
    "parcel_id": [f"P{i}" for i in range(6)],
    "village": ["V1", "V1", "V1", "V2", "V2", "V2"],
    "land_use": ["0103", "0103", "0305", "0101", "0404", "1206"],
    "slope_deg": [10.0, 28.0, 35.0, 5.0, 20.0, 40.0],
    "bedrock_exposure": [10.0, 40.0, 60.0, 5.0, 25.0, 95.0],
    "soil_depth_cm": [50.0] * 6,
    "karst": [True] * 6,
    "red_line": [False, False, True, False, False, False],
    "basic_farmland": [False, False, False, True, False, False],
    "area_mu": [10.0, 12.0, 20.0, 8.0, 15.0, 9.0],
})
TINY_VILLAGES = pd.DataFrame({
    "village": ["V1", "V2"], "township": ["T1", "T1"], "population": [10, 8], "households": [3, 3],
    "labour_days": [800.0, 600.0], "nonland_income_per_capita": [2000.0, 2500.0],
})
TINY_SCENARIO = f"""
[parcels]
path = "parcels.gpkg"
layer = "parcels"
id_column = "parcel_id"

[villages]
path = "villages.csv"

[catalog]
path = "{SMALL_CATALOG.as_posix()}"

[objective]
maximise = "ecosystem_services"

[constraints]
income_floor = 4000
transfer_budget = 5000
budget = 60000
diversity_cap = 0.8
forest_cover_min = 0.3

[solver]
preset = "default"
time_limit = 60
"""


def write_instance(folder: Path, parcels: pd.DataFrame = TINY_PARCELS, villages: pd.DataFrame = TINY_VILLAGES,
                   scenario: str = TINY_SCENARIO) -> Path:
    """Write a tiny instance (gpkg + csv + toml) and return the scenario path."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(parcels, villages)
    inputs.parcels.drop(columns="area_mu").to_file(folder / "parcels.gpkg", layer="parcels", driver="GPKG")
    villages.to_csv(folder / "villages.csv", index=False)
    path = folder / "scenario.toml"
    path.write_text(scenario, encoding="utf-8")
    return path


@pytest.fixture
def tiny_scenario(tmp_path: Path) -> Path:
    return write_instance(tmp_path / "tiny")


def generated_county(base: Path, parcels: int, townships: int, villages: int, seed: int,
                     budget_share: float = 0.3) -> Path:
    """A generated instance (`optiland generate`) whose county budget is cut to `budget_share` of the generator's,
    so that the rows coupling the townships bind; returns its scenario path."""
    from typer.testing import CliRunner

    from optiland.cli import app

    result = CliRunner().invoke(app, ["generate", "--parcels", str(parcels), "--townships", str(townships),
                                      "--villages", str(villages), "--seed", str(seed), "--out", str(base / "inst")])
    assert result.exit_code == 0, result.output
    scenario = base / "inst" / "scenario.toml"
    text = scenario.read_text()
    budget = next(line for line in text.splitlines() if line.startswith("budget ="))
    scenario.write_text(text.replace(budget, f"budget = {float(budget.split('=')[1]) * budget_share:.0f}"))
    return scenario


def solve_cli(scenario: Path, out: Path, *options: str) -> dict:
    """`optiland solve SCENARIO --out OUT OPTIONS...`, which must succeed; returns its run.json, whose bound must
    not fall below its objective."""
    import json

    from typer.testing import CliRunner

    from optiland.cli import app

    result = CliRunner().invoke(app, ["solve", str(scenario), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["objective"]["bound"] >= run["objective"]["value"]
    return run
