"""Every bad-input case gets a message naming the culprit, a non-zero exit, and nothing written."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
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


# ------------------------------------------------------------------------------------------------------------------
# Issue 23's corpus: inputs `validate` used to accept (or answer with a traceback). Each is rejected by `validate`
# and `solve` with exit code 2, naming the culprit, and `solve` writes nothing.


def _override(key: str, value: str) -> dict[str, object]:
    return {"scenario": TINY_SCENARIO.replace("[objective]", f'[catalog.overrides]\n"{key}" = {value}\n\n[objective]')}


def _villages(column: str, position: int, value: object) -> dict[str, object]:
    villages = TINY_VILLAGES.copy()
    villages[column] = villages[column].astype(object)
    villages.loc[position, column] = value
    return {"villages": villages}


def _parcels(column: str, position: int, value: object) -> dict[str, object]:
    parcels = TINY_PARCELS.copy()
    parcels[column] = parcels[column].astype(object)
    parcels.loc[position, column] = value
    return {"parcels": parcels}


def _layer(change: object) -> object:
    def edit(folder: Path) -> None:
        frame = gpd.read_file(folder / "parcels.gpkg")
        change(frame).to_file(folder / "parcels.gpkg", layer="parcels", driver="GPKG")
    return edit


def _village_bytes(encoding: str) -> object:
    def edit(folder: Path) -> None:
        text = (folder / "villages.csv").read_text().replace("V1", "下荣村")
        (folder / "villages.csv").write_bytes(text.encode(encoding))
    return edit


def _gbk_shapefile(folder: Path) -> None:
    import warnings

    frame = gpd.read_file(folder / "parcels.gpkg")
    frame["village"] = frame["village"].map({"V1": "下荣村", "V2": "爱东村"})
    frame = frame.rename(columns={"bedrock_exposure": "bedrock", "soil_depth_cm": "soil_depth",
                                  "basic_farmland": "farmland"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.to_file(folder / "parcels.shp", encoding="GBK")
    (folder / "parcels.cpg").unlink()  # the file does not say which encoding it uses
    text = (folder / "villages.csv").read_text().replace("V1", "下荣村").replace("V2", "爱东村")
    (folder / "villages.csv").write_text(text, encoding="utf-8")
    scenario = (folder / "scenario.toml").read_text().replace(
        'path = "parcels.gpkg"\nlayer = "parcels"\nid_column = "parcel_id"',
        'path = "parcels.shp"\nid_column = "parcel_id"\n[parcels.columns]\nbedrock_exposure = "bedrock"\n'
        'soil_depth_cm = "soil_depth"\nbasic_farmland = "farmland"')
    (folder / "scenario.toml").write_text(scenario)


CORPUS = {
    "epsg4326-on-metres": ({}, _layer(lambda f: f.set_crs(4326, allow_override=True)),
                           ["EPSG:4326", "not degrees", "geometry"]),
    "layer-at-10E": ({}, _layer(lambda f: f.to_crs(4326).set_geometry(f.to_crs(4326).geometry.translate(-98, 0))),
                     ["10.0°E", "Gauss-Kruger", "project the layer"]),
    "projected-outside-area-of-use": ({}, _layer(lambda f: f.set_geometry(f.geometry.translate(0, -2_600_000))),
                                      ["area of use", "EPSG:4545"]),
    "empty-layer": ({"parcels": TINY_PARCELS.iloc[:0]}, None, ["parcels.gpkg", "no parcels"]),
    "null-parcel-id": (_parcels("parcel_id", 2, None), None, ["feature 3", "parcel_id", "missing parcel id"]),
    "infinite-soil-depth": (_parcels("soil_depth_cm", 2, float("inf")), None,
                            ["P2", "soil_depth_cm", "not a finite number"]),
    "infinite-nonland-income": (_villages("nonland_income_per_capita", 1, "inf"), None,
                                ["V2", "nonland_income_per_capita", "not a finite number"]),
    "population-257.5": (_villages("population", 1, 257.5), None, ["V2", "population", "257.5", "whole number"]),
    "households-2.5": (_villages("households", 0, 2.5), None, ["V1", "households", "whole number"]),
    "floor-45OO": ({"villages": TINY_VILLAGES.assign(income_floor=["4500", "45OO"])}, None,
                   ["V2", "income_floor", "'45OO'", "not a number"]),
    "override-share-5": (_override("defaults.max_transfer_share", "5"), None,
                         ["defaults.max_transfer_share", "value 5", "at most 1"]),
    "override-habitat-3": (_override("variants.fruit.*.habitat", "3"), None,
                           ["variants.fruit.*.habitat", "3.0", "from 0 to 1", "fruit."]),
    "override-negative-cost": (_override("variants.fruit.*.establishment_cost_per_mu", "-100"), None,
                               ["establishment_cost_per_mu", "-100", "at least 0"]),
    "override-head-per-mu-text": (_override("livestock.head_per_mu", '"lots"'), None,
                                  ["livestock.head_per_mu", "'lots'", "finite number"]),
    "override-income-text": (_override("variants.fruit.*.net_income_per_mu", '"abc"'), None,
                             ["net_income_per_mu", "'abc'", "finite number"]),
    "override-scale-text": (_override("variants.fruit.*.net_income_per_mu", '{ scale = "x" }'), None,
                            ["net_income_per_mu", "'x'", "scale"]),
    # undeclared, a GBK or UTF-16 village table is read (tests/test_csv_inputs.py); declared wrongly, it is refused
    "gbk-village-csv-declared-utf8": ({"scenario": TINY_SCENARIO.replace('path = "villages.csv"',
                                                                        'path = "villages.csv"\nencoding = "utf-8"')},
                                      _village_bytes("gbk"), ["villages.csv", 'encoding = "GBK"']),
    "gbk-shapefile-undeclared": ({}, _gbk_shapefile, ["parcels.shp", '[parcels] encoding = "GBK"']),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_corpus_rejected_naming_the_culprit(tmp_path: Path, case: str) -> None:
    tables, edit, needles = CORPUS[case]
    scenario = write_instance(tmp_path / "i", **tables)  # type: ignore[arg-type]
    if edit is not None:
        edit(scenario.parent)
    for command in (["validate", str(scenario)], ["solve", str(scenario), "--out", str(tmp_path / "out")]):
        result = runner.invoke(app, command)
        text = " ".join(result.output.split())
        assert result.exit_code == 2, (command[0], text, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception  # a message, not a traceback
        for needle in needles:
            assert needle in text, (command[0], needle, text)
        assert "np.float64" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i"]  # solve wrote nothing


def test_true_count_first_twenty_shown(tmp_path: Path) -> None:
    """All 3,000 parcels with a bad slope: the count says 3000, 20 are described (before: '20 input problem(s)')."""
    from optiland.errors import SHOWN

    parcels = pd.concat([TINY_PARCELS] * 500, ignore_index=True)
    parcels["parcel_id"] = [f"P{i}" for i in range(len(parcels))]
    parcels["slope_deg"] = -5.0
    with pytest.raises(InputError) as info:
        prepare(write_instance(tmp_path / "i", parcels=parcels))
    text = str(info.value)
    assert text.startswith("3000 input problem(s):") and f"... and {3000 - SHOWN} more" in text
    assert text.count("outside 0-90") == SHOWN and "value -5.0" in text and "np.float64" not in text


def test_messages_use_the_planners_column_names(tmp_path: Path) -> None:
    parcels = TINY_PARCELS.rename(columns={"slope_deg": "坡度"})
    parcels.loc[2, "坡度"] = 95.0
    text = TINY_SCENARIO.replace('id_column = "parcel_id"', 'id_column = "parcel_id"\n[parcels.columns]\n'
                                 'slope_deg = "坡度"')
    with pytest.raises(InputError, match="column '坡度 \\(slope_deg\\)', value 95.0: outside 0-90"):
        prepare(write_instance(tmp_path / "i", parcels=parcels, scenario=text))
