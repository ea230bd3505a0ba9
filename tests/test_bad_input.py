"""Every bad-input case gets a message naming the culprit, a non-zero exit, and nothing written."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from optiland.cli import app
from optiland.errors import InputError
from optiland.pipeline.run import prepare
from tests.conftest import TINY_PARCELS, TINY_SCENARIO, TINY_VILLAGES, write_instance

runner = CliRunner()


def _assert_rejected(scenario: Path, *needles: str) -> None:
    with pytest.raises(InputError) as info:
        prepare(scenario)
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    out = scenario.parent / "out"
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists()
    assert not list(scenario.parent.glob(".out.tmp-*"))


def test_valid_tiny_instance_prepares(tiny_scenario: Path) -> None:
    prepared = prepare(tiny_scenario)
    assert prepared.problem.n_parcels == 6


@pytest.mark.parametrize(("column", "value", "needles"), [
    ("slope_deg", 95.0, ["P2", "slope_deg", "95"]),
    ("slope_deg", -1.0, ["P2", "slope_deg"]),
    ("bedrock_exposure", 120.0, ["P2", "bedrock_exposure", "120"]),
    ("slope_deg", float("nan"), ["P2", "slope_deg", "NaN"]),
    ("village", "V9", ["P2", "village", "V9"]),
    ("land_use", "9999", ["P2", "land_use", "9999"]),
    ("karst", "maybe", ["P2", "karst", "maybe"]),
])
def test_bad_parcel_value(tmp_path: Path, column: str, value: object, needles: list[str]) -> None:
    parcels = TINY_PARCELS.copy()
    parcels[column] = parcels[column].astype(object)
    parcels.loc[2, column] = value
    _assert_rejected(write_instance(tmp_path / "i", parcels=parcels), *needles)


def test_slope_not_a_number(tmp_path: Path) -> None:
    parcels = TINY_PARCELS.copy()
    parcels["slope_deg"] = parcels["slope_deg"].astype(object)
    parcels.loc[1, "slope_deg"] = "steep"
    _assert_rejected(write_instance(tmp_path / "i", parcels=parcels), "P1", "slope_deg", "steep")


def test_duplicate_parcel_id(tmp_path: Path) -> None:
    parcels = TINY_PARCELS.copy()
    parcels.loc[3, "parcel_id"] = "P1"
    _assert_rejected(write_instance(tmp_path / "i", parcels=parcels), "P1", "duplicate")


def test_missing_column_suggests(tmp_path: Path) -> None:
    parcels = TINY_PARCELS.rename(columns={"slope_deg": "slope_degs"})
    _assert_rejected(write_instance(tmp_path / "i", parcels=parcels), "slope_deg", "slope_degs")


def test_invalid_and_empty_geometry(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "i")
    frame = gpd.read_file(path.parent / "parcels.gpkg")
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])
    frame.loc[4, "geometry"] = bowtie
    frame.to_file(path.parent / "parcels.gpkg", layer="parcels", driver="GPKG")
    _assert_rejected(path, "P4", "invalid geometry")


def test_zero_area(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "i")
    frame = gpd.read_file(path.parent / "parcels.gpkg")
    frame.loc[0, "geometry"] = shapely.Polygon([(0, 0), (1, 1), (2, 2), (0, 0)])
    frame.to_file(path.parent / "parcels.gpkg", layer="parcels", driver="GPKG")
    with pytest.raises(InputError) as info:
        prepare(path)
    assert "P0" in str(info.value)


@pytest.mark.parametrize(("column", "value", "needles"), [
    ("population", 0, ["V2", "population"]),
    ("households", -3, ["V2", "households"]),
    ("labour_days", -1.0, ["V2", "labour_days"]),
])
def test_bad_village_value(tmp_path: Path, column: str, value: object, needles: list[str]) -> None:
    villages = TINY_VILLAGES.copy()
    villages.loc[1, column] = value
    _assert_rejected(write_instance(tmp_path / "i", villages=villages), *needles)


def test_duplicate_village(tmp_path: Path) -> None:
    villages = TINY_VILLAGES.copy()
    villages.loc[1, "village"] = "V1"
    _assert_rejected(write_instance(tmp_path / "i", villages=villages), "V1", "duplicate")


def test_unknown_scenario_key_suggests(tmp_path: Path) -> None:
    scenario = TINY_SCENARIO.replace("income_floor = 4000", "income_flor = 4000")
    _assert_rejected(write_instance(tmp_path / "i", scenario=scenario), "income_flor", "income_floor")


def test_unknown_override_names_variant(tmp_path: Path) -> None:
    text = TINY_SCENARIO.replace('[objective]', '[catalog.overrides]\n"variants.fruit.pomello.net_income_per_mu" = 100'
                                 '\n\n[objective]')
    _assert_rejected(write_instance(tmp_path / "i", scenario=text), "pomello", "pomelo")


def test_unknown_option_in_override(tmp_path: Path) -> None:
    text = TINY_SCENARIO.replace('[objective]', '[catalog.overrides]\n"options.orchard.max_slope_deg" = 20'
                                 '\n\n[objective]')
    _assert_rejected(write_instance(tmp_path / "i", scenario=text), "orchard")


def test_existing_outdir_untouched_on_failure(tmp_path: Path) -> None:
    parcels = TINY_PARCELS.copy()
    parcels.loc[0, "slope_deg"] = 200.0
    path = write_instance(tmp_path / "i", parcels=parcels)
    out = tmp_path / "i" / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    result = runner.invoke(app, ["solve", str(path), "--out", str(out)])
    assert result.exit_code != 0
    assert (out / "keep.txt").read_text() == "old"
