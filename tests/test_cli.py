"""End-to-end CLI runs on a small generated instance, and the shipped demo's validation."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiland.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "inst"
    result = runner.invoke(app, ["generate", "--parcels", "240", "--townships", "2", "--villages", "4",
                                 "--seed", "7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "scenario.toml"


@pytest.fixture(scope="module")
def solved(small_instance: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("solve") / "plan"
    result = runner.invoke(app, ["solve", str(small_instance), "--out", str(out), "--time-limit", "600"])
    assert result.exit_code == 0, result.output
    assert "villages at or below their floor" in result.output
    assert "objective ecosystem_services" in result.output
    return out


def test_solve_writes_the_results_schema(solved: Path, small_instance: Path) -> None:
    assert sorted(p.name for p in solved.iterdir()) == [".optiland", "plan.gpkg", "run.json", "townships.csv",
                                                       "villages.csv"]
    parcels = gpd.read_file(solved / "plan.gpkg", layer="parcels")
    inputs = gpd.read_file(small_instance.parent / "parcels.gpkg")
    assert len(parcels) == len(inputs) and parcels["parcel_id"].is_unique
    for column in ("parcel_id", "village", "township", "area_mu", "area_ha", "current_use", "option", "variant",
                   "income", "gain_carbon", "gain_soil", "gain_water", "gain_habitat"):
        assert column in parcels.columns
    villages = pd.read_csv(solved / "villages.csv", encoding="utf-8-sig")
    assert (solved / "villages.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert (villages["income_per_capita_after"] >= villages["floor"] - 1e-6).all()
    total = villages[[f"income_{s}" for s in ("nonland", "land", "cattle", "compensation", "wages")]].sum(axis=1)
    assert (total - villages["income_total"]).abs().max() < 0.05
    townships = pd.read_csv(solved / "townships.csv", encoding="utf-8-sig")
    assert len(townships) == 2
    share_cols = [c for c in townships.columns if c.startswith("share__") and "." not in c]
    assert ((townships[share_cols].sum(axis=1) - 1.0).abs() < 1e-5).all()
    run = json.loads((solved / "run.json").read_text())
    assert run["status"] == "optimal" and run["objective"]["gap"] <= 1e-4
    assert set(run["input_hashes"]) == {"parcels", "villages", "scenario"}
    reference = run["reference"]
    assert reference["kind"] == "potential" and reference["pinned"] == []
    assert set(reference["values"]) <= {"carbon", "soil", "water", "habitat"} and reference["values"]
    assert all(reference["values"][s] == reference["potential"][s] for s in reference["values"])
    assert {"read", "build", "solve", "write"} <= set(run["times"])
    assert run["model_size"]["binaries"] > 0 and run["model_size"]["nonzeros"] > 0


def test_check_passes_then_catches_tampering(solved: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(solved)])
    assert result.exit_code == 0, result.output
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for item in solved.iterdir():
        (tampered / item.name).write_bytes(item.read_bytes())
    villages = pd.read_csv(tampered / "villages.csv", encoding="utf-8-sig")
    villages.loc[0, "herd"] = villages.loc[0, "herd"] + 10_000
    villages.to_csv(tampered / "villages.csv", index=False, encoding="utf-8-sig")
    result = runner.invoke(app, ["check", str(tampered)])
    assert result.exit_code == 1
    assert "carrying_capacity" in result.output and villages.loc[0, "village"] in result.output


def test_deterministic(small_instance: Path, solved: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    result = runner.invoke(app, ["solve", str(small_instance), "--out", str(again), "--time-limit", "600"])
    assert result.exit_code == 0, result.output
    first = gpd.read_file(solved / "plan.gpkg", layer="parcels")[["parcel_id", "option", "variant"]]
    second = gpd.read_file(again / "plan.gpkg", layer="parcels")[["parcel_id", "option", "variant"]]
    pd.testing.assert_frame_equal(first, second)


def test_infeasible_is_explained(small_instance: Path, tmp_path: Path) -> None:
    text = small_instance.read_text().replace("income_floor = 4000", "income_floor = 400000")
    scenario = small_instance.parent / "impossible.toml"
    scenario.write_text(text)
    out = tmp_path / "none"
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(out), "--time-limit", "600"])
    assert result.exit_code == 3
    assert "cannot reach its floor of 400,000 yuan per person" in result.output
    assert "short by" in result.output
    assert not out.exists()


def test_explain_lists_reasons(small_instance: Path) -> None:
    parcels = gpd.read_file(small_instance.parent / "parcels.gpkg")
    red = parcels.loc[parcels["red_line"] & ~parcels["basic_farmland"], "parcel_id"].iloc[0]
    result = runner.invoke(app, ["explain", str(small_instance), red])
    assert result.exit_code == 0, result.output
    assert "red line" in result.output
    result = runner.invoke(app, ["explain", str(small_instance), "NO-SUCH-PARCEL"])
    assert result.exit_code == 2 and "NO-SUCH-PARCEL" in result.output


def test_demo_validates_and_catalog_shows() -> None:
    result = runner.invoke(app, ["validate", str(ROOT / "instances" / "huanjiang-demo" / "scenario.toml")])
    assert result.exit_code == 0, result.output
    assert "3,000 parcels" in result.output
    result = runner.invoke(app, ["catalog", "show", "karst-southwest", "--table", "variants"])
    assert result.exit_code == 0
    assert "zenia_insignis" in result.output or "Zenia insignis" in result.output


def test_demo_end_to_end(tmp_path: Path) -> None:
    """The shipped demo through the CLI (at a 1% gap to keep the suite short; `make demo` solves it at 0.01%)."""
    out = tmp_path / "demo"
    scenario = ROOT / "instances" / "huanjiang-demo" / "scenario.toml"
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(out), "--gap", "0.01", "--time-limit", "300"])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "optimal" and run["objective"]["gap"] <= 0.01
    assert run["model_size"]["parcels"] == 3000
    result = runner.invoke(app, ["check", str(out)])
    assert result.exit_code == 0, result.output
