"""Ecological-space zoning: areas, overlaps, validity, the minimum mapping unit, the red line, outputs whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from optiland._paths import models_dir
from optiland.analysis.generate import generate_instance
from optiland.cli import app
from optiland.errors import InputError
from optiland.model.adjacency import boundary_indices
from optiland.views.zoning import load_zone_rules, synthetic_plan, zone, zone_parcels

RULES = models_dir() / "karst-southwest"
MMU = 20.0


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoning")
    generate_instance(600, 3, 9, 11, root / "instance")
    synthetic_plan(root / "instance", root / "plan", seed=3)
    return root / "plan"


@pytest.fixture(scope="module")
def zoned(plan_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("zones") / "out"
    return out, zone(plan_dir, out, mmu_mu=MMU)


def test_writes_layers_map_and_record(zoned: tuple[Path, object]) -> None:
    out, _ = zoned
    assert {"zones", "zone_stats", "parcel_zones"} <= {name for name, _ in pyogrio.list_layers(out / "zones.gpkg")}
    assert (out / "zones.png").stat().st_size > 10_000
    assert (out / "zoning.json").is_file()


def test_zone_areas_add_up_to_parcel_areas(plan_dir: Path, zoned: tuple[Path, object]) -> None:
    out, _ = zoned
    parcels = pyogrio.read_dataframe(plan_dir / "plan.gpkg", layer="parcels")
    zones = pyogrio.read_dataframe(out / "zones.gpkg", layer="zones")
    parcel_area = parcels.groupby("township")["area_mu"].sum()
    zone_area = zones.groupby("township")["area_mu"].sum()
    assert np.allclose(zone_area.reindex(parcel_area.index), parcel_area, rtol=1e-4, atol=0)
    polygon_area = shapely.area(zones.geometry.to_numpy()).sum() / (10000 / 15)
    assert abs(polygon_area - parcels["area_mu"].sum()) <= 1e-4 * parcels["area_mu"].sum()
    stats = pyogrio.read_dataframe(out / "zones.gpkg", layer="zone_stats")
    county = stats[stats["level"] == "county"]
    assert county["share"].sum() == pytest.approx(1.0, abs=1e-6)
    assert county["area_mu"].sum() == pytest.approx(parcels["area_mu"].sum(), rel=1e-4)
    township = stats[stats["level"] == "township"]
    assert township.groupby("township")["share"].sum().to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert township["patches"].sum() == len(zones) == county["patches"].sum()
    assert ((county["compactness"] > 0) & (county["compactness"] <= 1)).all()


def test_zones_are_valid_and_do_not_overlap(zoned: tuple[Path, object]) -> None:
    _, zoning = zoned
    geometry = zoning.zones.geometry.to_numpy()
    assert shapely.is_valid(geometry).all()
    left, right = shapely.STRtree(geometry).query(geometry, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(geometry[left[pairs]], geometry[right[pairs]]))
    assert overlap.max(initial=0.0) < 1e-6


def test_small_patches_are_merged_or_flagged_and_never_cross_a_red_line(zoned: tuple[Path, object]) -> None:
    _, zoning = zoned
    zones, parcels = zoning.zones, zoning.parcels
    assert zoning.record["parcels_merged"] > 0  # the synthetic plan has small patches to merge
    small = zones["parcel_area_mu"] < MMU
    assert (zones["below_mmu"] == small).all()
    # a kept small patch has no neighbour it could have joined: same township, same side of the red line
    left, right, length = boundary_indices(zones.geometry.to_numpy())
    shared = left != right
    left, right = left[shared], right[shared]
    town = zones["county"].to_numpy() + "/" + zones["township"].to_numpy()
    red = zones["red_line"].to_numpy()
    could_join = (town[left] == town[right]) & (red[left] == red[right])
    flagged = zones["below_mmu"].to_numpy()
    assert not (could_join & (flagged[left] | flagged[right])).any()
    # patches of one zone, township and red-line side never touch: they would be one patch
    same = zones["zone"].to_numpy()[left] == zones["zone"].to_numpy()[right]
    assert not (could_join & same).any()
    # red-line parcels keep their rule's zone and each patch lies on one side of the red line
    plan = pyogrio.read_dataframe(Path(zoning.record["plans"][0]) / "plan.gpkg", layer="parcels", read_geometry=False)
    red_parcel = plan["red_line"].to_numpy(dtype=bool)
    assert (parcels["zone"][red_parcel] == "ecological_protection").all()
    assert not parcels["merged"][red_parcel].any()
    patch_red = zones.set_index("zone_id")["red_line"].reindex(parcels["zone_id"]).to_numpy()
    assert (patch_red == red_parcel).all()


def _hand_layer() -> gpd.GeoDataFrame:
    boxes = [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 110, 50), shapely.box(110, 0, 200, 100),
             shapely.box(100, 50, 110, 100), shapely.box(0, 100, 100, 105)]
    return gpd.GeoDataFrame({
        "parcel_id": ["P0", "P1", "P2", "P3", "P4"], "township": "T1",
        "option": ["closure", "fruit", "keep", "keep", "closure"],
        "red_line": [False, False, False, False, True], "basic_farmland": False, "grade": "none",
        "current_use": ["0301", "0201", "0101", "0101", "0301"],
        "area_mu": shapely.area(np.array(boxes)) / (10000 / 15),
    }, geometry=boxes, crs="EPSG:4545")


def test_small_patch_joins_the_patch_with_the_longest_boundary_and_red_line_patch_is_kept() -> None:
    # P1 (0.75 mu, fruit) shares 50 m with P0 (closure) and 50 + 10 m with the cropland patch P2+P3: it joins the
    # cropland. P4 (red line, 0.75 mu) touches only P0, outside the red line: kept and flagged.
    zoning = zone_parcels(_hand_layer(), load_zone_rules(RULES), mmu_mu=1.0)
    parcels = zoning.parcels.set_index("parcel_id")
    assert parcels.loc["P1", "rule_zone"] == "eco_economic"
    assert parcels.loc["P1", "zone"] == "agricultural_production" and parcels.loc["P1", "merged"]
    assert parcels.loc["P1", "zone_id"] == parcels.loc["P2", "zone_id"] == parcels.loc["P3", "zone_id"]
    assert parcels.loc["P4", "zone"] == "ecological_protection" and not parcels.loc["P4", "merged"]
    zones = zoning.zones.set_index("zone_id")
    assert zones.loc[parcels.loc["P4", "zone_id"], "below_mmu"]
    assert zones.loc[parcels.loc["P4", "zone_id"], "red_line"]
    assert len(zones) == 3 and zones["below_mmu"].sum() == 1
    # with a unit of 0 nothing merges: four patches (P2 and P3 are one) and none flagged
    assert len(zone_parcels(_hand_layer(), load_zone_rules(RULES), mmu_mu=0.0).zones) == 4


def test_folder_of_plans_is_a_region_of_counties(plan_dir: Path, tmp_path: Path) -> None:
    region = tmp_path / "region"
    for shift, county in enumerate(("county-a", "county-b")):  # side by side, 100 km apart
        (region / county).mkdir(parents=True)
        shutil.copy(plan_dir / "run.json", region / county)
        plan = pyogrio.read_dataframe(plan_dir / "plan.gpkg", layer="parcels")
        plan["geometry"] = plan.geometry.translate(xoff=100_000.0 * shift)
        pyogrio.write_dataframe(plan, region / county / "plan.gpkg", layer="parcels")
    result = CliRunner().invoke(app, ["zone", str(region), "--out", str(tmp_path / "out"), "--mmu", str(MMU)])
    assert result.exit_code == 0, result.output
    stats = pyogrio.read_dataframe(tmp_path / "out" / "zones.gpkg", layer="zone_stats")
    county = stats[stats["level"] == "county"]
    assert set(county["county"]) == {"county-a", "county-b"}
    a, b = (county[county["county"] == c].set_index("zone")["area_mu"] for c in ("county-a", "county-b"))
    pd.testing.assert_series_equal(a, b, check_names=False)


def test_bad_rule_table_names_file_line_and_value_and_leaves_out_untouched(plan_dir: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("*.toml.bak"))
    table = pd.read_csv(rules / "zone_rules.csv", dtype=str, keep_default_na=False)
    table.loc[2, "zone"] = "wetland"
    table.to_csv(rules / "zone_rules.csv", index=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier output")
    with pytest.raises(InputError) as caught:
        zone(plan_dir, out, rules=rules)
    message = str(caught.value)
    assert "zone_rules.csv" in message and "line 4" in message and "wetland" in message
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_parcel_no_rule_matches_is_named(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    table = pd.read_csv(rules / "zone_rules.csv", dtype=str, keep_default_na=False)
    table[table["rule"] != "kept_cropland"].to_csv(rules / "zone_rules.csv", index=False)
    with pytest.raises(InputError, match=r"P2.*option|no zoning rule matches"):
        zone_parcels(_hand_layer(), load_zone_rules(rules), mmu_mu=1.0)


def test_zones_a_solved_plan(tmp_path: Path) -> None:
    generate_instance(150, 2, 4, 5, tmp_path / "instance")
    solved = CliRunner().invoke(app, ["solve", str(tmp_path / "instance" / "scenario.toml"), "--out",
                                      str(tmp_path / "plan"), "--gap", "0.01"])
    assert solved.exit_code == 0, solved.output
    result = CliRunner().invoke(app, ["zone", str(tmp_path / "plan"), "--out", str(tmp_path / "zones")])
    assert result.exit_code == 0, result.output
    plan = pyogrio.read_dataframe(tmp_path / "plan" / "plan.gpkg", layer="parcels")
    parcel_zones = pyogrio.read_dataframe(tmp_path / "zones" / "zones.gpkg", layer="parcel_zones")
    assert len(parcel_zones) == len(plan) and (parcel_zones["option"].to_numpy() == plan["option"].to_numpy()).all()
    closure = (plan["option"] == "closure").to_numpy() & ~parcel_zones["merged"].to_numpy(dtype=bool)
    assert (parcel_zones["zone"][closure] == "ecological_protection").all()
    zones = pyogrio.read_dataframe(tmp_path / "zones" / "zones.gpkg", layer="zones")
    assert zones["area_mu"].sum() == pytest.approx(plan["area_mu"].sum(), rel=1e-4)
