"""The synthetic instance generator: determinism, the column contract, tiling, red line / farmland, villages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from optiland.analysis.generate import generate_instance

N_PARCELS, N_TOWNSHIPS, N_VILLAGES, SEED = 400, 2, 6, 7
CODES = {"0101", "0102", "0103", "0201", "0301", "0305", "0307", "0401", "0404", "1207"}
PARCEL_COLUMNS = ["parcel_id", "village", "land_use", "slope_deg", "bedrock_exposure", "soil_depth_cm", "karst",
                  "red_line", "basic_farmland", "geometry"]
VILLAGE_COLUMNS = ["village", "township", "population", "households", "labour_days", "nonland_income_per_capita"]
M2_PER_MU = 10000.0 / 15.0


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "a"
    return generate_instance(N_PARCELS, N_TOWNSHIPS, N_VILLAGES, SEED, out)


@pytest.fixture(scope="module")
def parcels(instance: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(instance.parent / "parcels.gpkg", layer="parcels", engine="pyogrio")


@pytest.fixture(scope="module")
def villages(instance: Path) -> pd.DataFrame:
    return pd.read_csv(instance.parent / "villages.csv", dtype={"village": str, "township": str})


def test_files_and_scenario(instance: Path, parcels: gpd.GeoDataFrame) -> None:
    folder = instance.parent
    assert instance.name == "scenario.toml"
    assert sorted(p.name for p in folder.iterdir()) == ["parcels.gpkg", "scenario.toml", "villages.csv"]
    scenario = tomllib.loads(instance.read_text(encoding="utf-8"))
    assert list(scenario) == ["parcels", "villages", "catalog", "objective", "constraints", "solver"]
    assert scenario["parcels"] == {"path": "parcels.gpkg", "layer": "parcels", "id_column": "parcel_id"}
    assert scenario["villages"] == {"path": "villages.csv"}
    assert scenario["catalog"] == {"region": "karst-southwest"}
    assert scenario["objective"] == {"maximise": "ecosystem_services"}
    assert scenario["solver"] == {"preset": "default"}
    constraints = scenario["constraints"]
    assert list(constraints) == ["income_floor", "transfer_budget", "budget", "diversity_cap", "forest_cover_min"]
    area_mu = shapely.area(parcels.geometry.to_numpy()).sum() / M2_PER_MU
    assert constraints["income_floor"] == 4000
    assert constraints["transfer_budget"] == pytest.approx(40 * area_mu, rel=0.01)
    assert constraints["budget"] == pytest.approx(600 * area_mu, rel=0.01)
    assert constraints["diversity_cap"] == 0.4
    forest = parcels["land_use"].isin(["0301", "0305", "0307"]).to_numpy()
    forest_share = shapely.area(parcels.geometry.to_numpy()[forest]).sum() / (area_mu * M2_PER_MU)
    assert forest_share - 0.05 < constraints["forest_cover_min"] <= forest_share
    assert round(constraints["forest_cover_min"] * 20, 9) == int(round(constraints["forest_cover_min"] * 20))


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        generate_instance(N_PARCELS, N_TOWNSHIPS, N_VILLAGES, SEED, tmp_path)


def test_deterministic(instance: Path, parcels: gpd.GeoDataFrame, tmp_path: Path) -> None:
    again = generate_instance(N_PARCELS, N_TOWNSHIPS, N_VILLAGES, SEED, tmp_path / "b")
    for name in ("villages.csv", "scenario.toml", "parcels.gpkg"):
        assert (again.parent / name).read_bytes() == (instance.parent / name).read_bytes(), name
    other = gpd.read_file(again.parent / "parcels.gpkg", layer="parcels", engine="pyogrio")
    pd.testing.assert_frame_equal(pd.DataFrame(parcels.drop(columns="geometry")),
                                  pd.DataFrame(other.drop(columns="geometry")))
    assert (shapely.to_wkb(parcels.geometry.to_numpy()) == shapely.to_wkb(other.geometry.to_numpy())).all()
    different = generate_instance(N_PARCELS, N_TOWNSHIPS, N_VILLAGES, SEED + 1, tmp_path / "c")
    assert (different.parent / "villages.csv").read_bytes() != (instance.parent / "villages.csv").read_bytes()


def test_column_contract(parcels: gpd.GeoDataFrame, villages: pd.DataFrame) -> None:
    assert list(parcels.columns) == PARCEL_COLUMNS
    assert len(parcels) == N_PARCELS
    assert parcels.crs.to_epsg() == 4545
    for column in ("parcel_id", "village", "land_use"):
        assert pd.api.types.is_string_dtype(parcels[column])
    for column in ("slope_deg", "bedrock_exposure", "soil_depth_cm"):
        assert parcels[column].dtype == np.float64
        values = parcels[column].to_numpy()
        assert np.array_equal(values, np.round(values, 1))
    for column in ("karst", "red_line", "basic_farmland"):
        assert parcels[column].dtype == bool
    assert parcels["parcel_id"].is_unique
    assert parcels["parcel_id"].str.fullmatch(r"P\d{7}").all()
    assert parcels["parcel_id"].iloc[0] == "P0000001"
    assert set(parcels["land_use"]) <= CODES
    assert parcels["slope_deg"].between(0, 90).all() and parcels["slope_deg"].max() <= 80
    assert parcels["bedrock_exposure"].between(0, 100).all()
    assert parcels["soil_depth_cm"].between(5, 100).all()
    assert set(parcels["village"]) == set(villages["village"])

    assert list(villages.columns) == VILLAGE_COLUMNS
    assert len(villages) == N_VILLAGES and villages["village"].is_unique
    assert villages["village"].str.fullmatch(r"T\d{2}-V\d{2}").all()
    assert pd.api.types.is_integer_dtype(villages["population"]) and (villages["population"] > 0).all()
    assert pd.api.types.is_integer_dtype(villages["households"]) and (villages["households"] > 0).all()
    assert (villages["households"] < villages["population"]).all()
    assert villages["labour_days"].to_numpy() == pytest.approx(0.55 * 150 * villages["population"].to_numpy(),
                                                              abs=0.1)
    assert villages["nonland_income_per_capita"].between(2500, 4500).all()


def test_tiling(parcels: gpd.GeoDataFrame) -> None:
    geometry = parcels.geometry.to_numpy()
    assert shapely.is_valid(geometry).all()
    assert (shapely.get_num_coordinates(geometry) == 5).all()
    union = shapely.union_all(geometry)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    areas = shapely.area(geometry)
    assert areas.sum() == pytest.approx(union.area, rel=1e-6)
    assert areas.mean() / M2_PER_MU == pytest.approx(10.0, rel=0.05)
    # neighbours share whole edges: 20 x 20 lattice, 2 * 20 * 19 shared edges, no overlaps
    tree = shapely.STRtree(geometry)
    left, right = tree.query(geometry, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    overlap = shapely.area(shapely.intersection(geometry[left], geometry[right]))
    assert overlap.max() < 1e-6
    touching = shapely.touches(geometry[left], geometry[right])
    assert touching.all()
    shared = shapely.length(shapely.intersection(geometry[left], geometry[right]))
    assert (shared > 0).sum() == 2 * 20 * 19
    internal = (shapely.length(geometry).sum() - union.length) / 2
    assert shared.sum() == pytest.approx(internal, rel=1e-9)


def test_red_line_and_basic_farmland(parcels: gpd.GeoDataFrame) -> None:
    area = shapely.area(parcels.geometry.to_numpy())
    red = parcels["red_line"].to_numpy()
    farmland = parcels["basic_farmland"].to_numpy()
    assert not (red & farmland).any()
    assert parcels.loc[farmland, "land_use"].isin(["0101", "0102", "0103"]).all()
    assert (parcels.loc[farmland, "slope_deg"] < 15).all()
    assert 0.15 <= area[red].sum() / area.sum() <= 0.2
    karst = parcels["karst"].to_numpy()
    assert 0.65 <= karst.mean() <= 0.75
    assert parcels.loc[~karst, "bedrock_exposure"].median() < 20


def test_villages_and_townships(parcels: gpd.GeoDataFrame, villages: pd.DataFrame) -> None:
    assert (villages["village"].str.split("-").str[0] == villages["township"]).all()
    assert villages["township"].nunique() == N_TOWNSHIPS
    assert set(villages["township"]) == {f"T{i:02d}" for i in range(1, N_TOWNSHIPS + 1)}
    frame = parcels.merge(villages[["village", "township"]], on="village", how="left")
    assert frame["township"].notna().all()
    for key in ("village", "township"):  # each village and township is one edge-connected piece
        pieces = frame.dissolve(by=key).geometry
        assert (pieces.geom_type == "Polygon").all(), pieces.geom_type.value_counts()


def test_best_income_is_the_allowed_tables_best(instance: Path) -> None:
    """best_income_per_mu is, per parcel, the largest (income + compensation) per mu over the rows the model allows."""
    from optiland.model.problem import best_income_per_mu
    from optiland.pipeline.run import prepare

    prepared = prepare(instance)
    problem = prepared.problem
    allowed = problem.allowed
    per_mu = (allowed["income"] + allowed["compensation"]) / allowed["area"]
    expected = per_mu.groupby(allowed["parcel"]).max().sort_index().to_numpy()
    got = best_income_per_mu(problem.catalog, pd.DataFrame(prepared.inputs.parcels.drop(columns="geometry")))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def _red_catalog(keep_rule: bool):
    """The karst catalog with a red line over 90% of the area: most villages' land then earns only closure
    compensation, far below what the floor needs."""
    import copy

    from optiland.io.catalog import load_catalog

    catalog = copy.deepcopy(load_catalog(region="karst-southwest"))
    catalog.generate["red_line"]["share"] = 0.9
    if not keep_rule:
        del catalog.generate["villages"]["nonland_income_min"]
    return catalog


def test_villages_floor_stays_within_reach() -> None:
    """nonland_income_min raises the non-land income of villages whose land earns little, and only theirs: with the
    rule every village's floor is within half its land's best income; without it the same draws leave villages
    short (so the rule is what keeps them in reach)."""
    from optiland.analysis.generate import build_instance
    from optiland.model.problem import best_income_per_mu

    with_rule = build_instance(N_PARCELS, N_TOWNSHIPS, N_VILLAGES, SEED, region=_red_catalog(True))
    without = build_instance(N_PARCELS, N_TOWNSHIPS, N_VILLAGES, SEED, region=_red_catalog(False))
    parcels, villages, constraints = with_rule
    area = parcels.geometry.area.to_numpy() / M2_PER_MU
    best = best_income_per_mu(_red_catalog(True), pd.DataFrame(parcels.drop(columns="geometry")))
    land = pd.Series(best * area).groupby(parcels["village"].to_numpy()).sum().reindex(villages["village"])
    reach = villages["nonland_income_per_capita"].to_numpy() + 0.5 * land.to_numpy() / villages["population"]
    assert (reach >= constraints["income_floor"] - 1e-6).all()
    drawn = without[1]["nonland_income_per_capita"].to_numpy()
    raised = villages["nonland_income_per_capita"].to_numpy() > drawn
    assert raised.any() and not raised.all()
    np.testing.assert_array_equal(villages["nonland_income_per_capita"].to_numpy()[~raised], drawn[~raised])
    short = drawn + 0.5 * land.to_numpy() / villages["population"] < constraints["income_floor"]
    np.testing.assert_array_equal(short, raised)
    assert (villages["nonland_income_per_capita"].to_numpy() % 10 == 0).all()
