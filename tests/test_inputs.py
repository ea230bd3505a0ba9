"""Reading parcels: formats, encodings, column mapping, reprojection, areas."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from optiland.pipeline.run import prepare
from tests.conftest import TINY_PARCELS, TINY_SCENARIO, write_instance


def test_areas_in_mu_from_projected_geometry(tiny_scenario: Path) -> None:
    prepared = prepare(tiny_scenario)
    assert np.allclose(prepared.problem.parcels["area_mu"], TINY_PARCELS["area_mu"])
    assert "EPSG:4545" in prepared.inputs.crs_note


def test_area_of_a_hectare_is_15_mu(tmp_path: Path) -> None:
    """Squares of known size in metres, not built from the package's own mu constant: 100 m x 100 m is one
    hectare, 15 mu; 200 m x 150 m is 45 mu; 10 m x 10 m is 0.15 mu (1 mu = 666.67 m2)."""
    import shapely

    path = write_instance(tmp_path / "i")
    frame = gpd.read_file(path.parent / "parcels.gpkg")
    x, y = 500000.0, 2745000.0
    boxes = [(100, 100), (200, 150), (10, 10)] + [(100, 100)] * (len(frame) - 3)
    frame["geometry"] = [shapely.box(x + 1000 * i, y, x + 1000 * i + w, y + h) for i, (w, h) in enumerate(boxes)]
    frame.to_file(path.parent / "parcels.gpkg", layer="parcels", driver="GPKG")
    area = prepare(path).problem.parcels["area_mu"].to_numpy()
    assert area[:3] == pytest.approx([15.0, 45.0, 0.15], rel=1e-9)


@pytest.mark.parametrize("epsg", [4490, 4326])
def test_geographic_crs_is_reprojected_to_gauss_kruger(tmp_path: Path, epsg: int) -> None:
    path = write_instance(tmp_path / "i")
    frame = gpd.read_file(path.parent / "parcels.gpkg").to_crs(epsg=epsg)
    frame.to_file(path.parent / "parcels.gpkg", layer="parcels", driver="GPKG")
    prepared = prepare(path)
    assert f"EPSG:{epsg}" in prepared.inputs.crs_note and "EPSG:4545" in prepared.inputs.crs_note
    assert np.allclose(prepared.problem.parcels["area_mu"], TINY_PARCELS["area_mu"], rtol=1e-4)


def test_gbk_shapefile_with_chinese_columns(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "i")
    frame = gpd.read_file(path.parent / "parcels.gpkg")
    chinese = {"parcel_id": "地块编号", "village": "行政村", "land_use": "地类编码", "slope_deg": "坡度"}
    frame = frame.rename(columns=chinese)
    frame["行政村"] = frame["行政村"].map({"V1": "下荣村", "V2": "爱东村"})
    with pytest.warns(RuntimeWarning, match="laundered"):
        frame.to_file(path.parent / "parcels.shp", encoding="GBK")
    villages = (path.parent / "villages.csv").read_text().replace("V1", "下荣村").replace("V2", "爱东村")
    (path.parent / "villages.csv").write_text(villages, encoding="utf-8")
    # Shapefile field names stop at 10 bytes: the mapping names what the file really holds
    truncated = {"bedrock_exposure": "bedrock_ex", "soil_depth_cm": "soil_depth", "basic_farmland": "basic_farm"}
    mapping = "\n".join(f'{k} = "{v}"' for k, v in {**chinese, **truncated}.items() if k != "parcel_id")
    text = TINY_SCENARIO.replace('path = "parcels.gpkg"\nlayer = "parcels"\nid_column = "parcel_id"',
                                 f'path = "parcels.shp"\nid_column = "地块编号"\nencoding = "GBK"\n'
                                 f'[parcels.columns]\n{mapping}')
    path.write_text(text, encoding="utf-8")
    prepared = prepare(path)
    assert set(prepared.problem.parcels["village"]) == {"下荣村", "爱东村"}
    assert list(prepared.problem.parcels["parcel_id"]) == list(TINY_PARCELS["parcel_id"])


def test_geoparquet_and_geojson(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "i")
    frame = gpd.read_file(path.parent / "parcels.gpkg")
    frame.to_parquet(path.parent / "parcels.parquet")
    frame.to_file(path.parent / "parcels.geojson", driver="GeoJSON")
    for name in ("parcels.parquet", "parcels.geojson"):
        text = TINY_SCENARIO.replace('path = "parcels.gpkg"\nlayer = "parcels"', f'path = "{name}"')
        path.write_text(text, encoding="utf-8")
        assert prepare(path).problem.n_parcels == len(TINY_PARCELS)
