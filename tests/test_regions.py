"""Every shipped region from data alone: each catalog loads and validates, its demo instance is read and its problem
built, a small instance generated from the catalog's [generate] table solves and passes check; and no module of the
package names a region, option, variant or species (they live in models/)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiland.analysis.generate import build_instance, generate_instance
from optiland.analysis.pareto import payoff_table
from optiland.cli import app
from optiland.errors import InputError
from optiland.io.catalog import load_catalog
from optiland.io.expressions import ExpressionError, evaluate
from optiland.mip.solver import SolveResult, SolverOptions, Status
from optiland.pipeline.run import prepare

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
INSTANCES = ROOT / "instances"
PACKAGE = ROOT / "optiland"
REGIONS = sorted(p.name for p in MODELS.iterdir() if (p / "catalog.toml").is_file())
runner = CliRunner()


def demos() -> dict[str, list[Path]]:
    """Demo scenarios under instances/, by the region their scenario names."""
    found: dict[str, list[Path]] = {}
    for scenario in sorted(INSTANCES.glob("*/scenario.toml")):
        region = tomllib.loads(scenario.read_text(encoding="utf-8"))["catalog"]["region"]
        found.setdefault(region, []).append(scenario)
    return found


def test_two_regions_are_shipped() -> None:
    assert len(REGIONS) >= 2, REGIONS


@pytest.mark.parametrize("region", REGIONS)
def test_catalog_loads_and_its_demo_builds(region: str) -> None:
    catalog = load_catalog(region=region)
    assert catalog.name == region
    assert catalog.site_attributes, "a region declares its site attributes"
    assert catalog.grade["attribute"] in catalog.site_attributes
    scenarios = demos().get(region, [])
    assert scenarios, f"no demo instance under instances/ names region {region}"
    for scenario in scenarios:
        prepared = prepare(scenario)
        problem = prepared.problem
        assert list(catalog.site_attributes) == [c for c in problem.parcels.columns if c in catalog.site_attributes]
        assert len(problem.allowed) > problem.n_parcels  # more than the keep option alone
        grades = set(problem.parcels["grade"])
        assert grades <= set(catalog.grade_names) and len(grades) >= 2, grades


@pytest.mark.parametrize("region", REGIONS)
def test_generated_instance_solves_and_checks(region: str, tmp_path: Path) -> None:
    """A small instance of each region (the full demos take up to a minute each, too long for a test)."""
    scenario = generate_instance(300, 1, 4, 3, tmp_path / "instance", region=region)
    assert f'region = "{region}"' in scenario.read_text(encoding="utf-8")
    out = tmp_path / "plan"
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(out), "--gap", "0.05", "--time-limit", "60"])
    assert result.exit_code == 0, result.output
    assert "villages at or below their floor: 0 of" in result.output
    checked = runner.invoke(app, ["check", str(out)])
    assert checked.exit_code == 0, checked.output


def test_sandy_demo_regenerates_byte_identical(tmp_path: Path) -> None:
    demo = INSTANCES / "kezuohou-demo"
    generate_instance(1000, 2, 8, 2020, tmp_path / "again", region="sandy-land-north")
    for name in ("parcels.gpkg", "villages.csv", "scenario.toml"):
        assert (tmp_path / "again" / name).read_bytes() == (demo / name).read_bytes(), name


def test_sandy_instance_follows_its_catalog() -> None:
    catalog = load_catalog(region="sandy-land-north")
    parcels, villages, constraints = build_instance(600, 1, 4, 11, region=catalog)
    assert list(parcels.columns) == ["parcel_id", "village", "land_use", "slope_deg", "bare_sand_pct", "sandy",
                                     "grazing_ban", "red_line", "basic_farmland", "geometry"]
    assert parcels["bare_sand_pct"].between(0, 100).all()
    assert parcels["land_use"].isin(catalog.current_uses.index).all()
    banned = parcels["grazing_ban"].to_numpy()
    assert 0 < banned.mean() < 0.6
    assert parcels.loc[banned, "land_use"].isin(["0401", "0404", "1205"]).all()
    assert not (banned & parcels["basic_farmland"].to_numpy()).any()
    sand = parcels["sandy"].to_numpy()
    grade = catalog.grade_of(parcels["bare_sand_pct"].to_numpy(), sand)
    assert set(np.unique(grade[sand])) == {0, 1, 2}  # fixed, semi-fixed and mobile sand all occur
    assert constraints["region"] == "sandy-land-north"
    assert (villages["population"] > 0).all()


def test_grazing_ban_forbids_keeping_and_cattle(tmp_path: Path) -> None:
    scenario = generate_instance(300, 1, 4, 3, tmp_path / "instance", region="sandy-land-north")
    problem = prepare(scenario).problem
    banned = problem.parcels["grazing_ban"].to_numpy()[problem.allowed["parcel"].to_numpy()]
    inside, outside = problem.allowed[banned], problem.allowed[~banned]
    assert len(inside) and not inside["option"].isin(["keep", "forage", "photovoltaics"]).any()
    assert inside["option"].eq("closure").any()
    assert outside["option"].eq("keep").any() and outside["option"].eq("forage").any()


def test_declared_attribute_default_and_range(tmp_path: Path) -> None:
    scenario = generate_instance(120, 1, 2, 5, tmp_path / "instance", region="sandy-land-north")
    layer = tmp_path / "instance" / "parcels.gpkg"
    frame = gpd.read_file(layer)
    frame.drop(columns=["sandy", "grazing_ban"]).to_file(layer, layer="parcels", driver="GPKG")
    parcels = prepare(scenario).problem.parcels
    assert parcels["sandy"].all() and not parcels["grazing_ban"].any()  # the catalog's defaults
    frame.loc[3, "bare_sand_pct"] = 140.0
    frame.to_file(layer, layer="parcels", driver="GPKG")
    with pytest.raises(InputError) as error:
        prepare(scenario)
    text = str(error.value)
    assert "parcels.gpkg" in text and "bare_sand_pct" in text and "140" in text and frame.loc[3, "parcel_id"] in text


def test_expressions_refuse_code() -> None:
    names = {"x": np.arange(3.0)}
    assert list(evaluate("clip(x * 2 - 1, 0, 3)", names, {"clip": np.clip}, "t")) == [0.0, 1.0, 3.0]
    for text in ("x.__class__", "__import__('os')", "[x]", "y + 1", "clip(x, a_min=0)"):
        with pytest.raises(ExpressionError):
            evaluate(text, names, {"clip": np.clip}, "t")


def _catalog_names() -> dict[str, set[str]]:
    """Region names, option and variant ids and species (scientific) names of every shipped catalog."""
    ids: set[str] = set(REGIONS)
    species: set[str] = set()
    for region in REGIONS:
        options = pd.read_csv(MODELS / region / "options.csv")
        variants = pd.read_csv(MODELS / region / "variants.csv")
        ids |= set(options["option"]) | set(variants["option"]) | set(variants["variant"])
        species |= {s for s in variants["scientific_name"].dropna() if re.match(r"^[A-Z][a-z]+ [a-z]", s)}
    return {"ids": ids, "species": species}


def _string_constants(path: Path) -> set[str]:
    """Every string literal of a module except docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


def test_no_module_names_a_region_option_or_species() -> None:
    names = _catalog_names()
    assert {"keep", "closure", "replanting", "pinus_sylvestris_mongolica", "karst-southwest"} <= names["ids"]
    assert "Pinus sylvestris var. mongolica" in names["species"]
    genera = {s.split()[0] for s in names["species"]}
    found: dict[str, set[str]] = {}
    for module in sorted(PACKAGE.rglob("*.py")):
        source = module.read_text(encoding="utf-8")
        hits = {s for s in _string_constants(module) if s in names["ids"]}  # an id used as a value
        hits |= {r for r in REGIONS if r in source}  # a region named anywhere, comments included
        hits |= {g for g in genera if re.search(rf"\b{g}\b", source)}  # a species' genus anywhere
        if hits:
            found[str(module.relative_to(ROOT))] = hits
    assert not found, f"modules naming catalog content: {found}"


class _StallingModel:
    """Two objectives; every solve after the first of a payoff row ends at the time limit without a plan."""

    names = ["a", "b"]
    senses = {"a": "max", "b": "max"}

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.x: np.ndarray | None = None
        self.objective: str = "a"
        self.stage = 0

    def set_objective(self, weights: dict, slack_weights: dict | None = None) -> None:
        self.objective = next(iter(weights))

    def set_epsilon(self, name: str, value: float | None) -> None:
        self.stage = 0

    def set_bound(self, name: str, lower: float | None) -> None:
        return None

    def solve(self, options: SolverOptions) -> SolveResult:
        self.stage += 1
        if self.stage > 1:  # the refinement stage: time limit, no plan
            self.x = None
            return SolveResult(Status.TIME_LIMIT, None, None, None, None, 1.0, "time limit, no plan")
        self.x = np.array([1.0])
        return SolveResult(Status.OPTIMAL, self.x, 1.0, 1.0, 0.0, 0.1, "optimal")

    def values(self) -> dict[str, float]:
        assert self.x is not None
        return {"a": 10.0, "b": 3.0} if self.objective == "a" else {"a": 4.0, "b": 8.0}


def test_payoff_row_keeps_its_first_plan_when_the_refinement_times_out() -> None:
    model = _StallingModel()
    table, solves = payoff_table(model, SolverOptions(mip_rel_gap=0))  # at a gap a row is one solve: no stage 2
    assert solves == 4
    assert table.loc["a"].to_dict() == {"a": 10.0, "b": 3.0}
    assert table.loc["b"].to_dict() == {"a": 4.0, "b": 8.0}
    assert len(model.notes) == 2 and "time limit" in model.notes[0]
