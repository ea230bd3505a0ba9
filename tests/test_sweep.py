"""Sensitivity sweeps: designs, the tidy results, executors (serial, processes, Dask) agreeing, resuming, failures."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import optiland
import optiland.analysis.sweep as sw
import optiland.analysis.sweep_run as sweep_run
import optiland.pipeline.run as run
from optiland.cli import app
from optiland.errors import InputError, OptilandError
from optiland.io.scenario import load_scenario
from tests.conftest import write_instance

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
FLOOR = "constraints.income_floor"
FRUIT = "catalog.variants.fruit.*.net_income_per_mu"
UNKNOWN = "catalog.variants.fruit.no_such_fruit.net_income_per_mu"


def _design() -> pd.DataFrame:
    """7 runs: the base, three floors (one impossible), two fruit prices, one unknown variant."""
    return sw.one_at_a_time({FLOOR: 4000}, {FLOOR: [3000, 5000, 400000], FRUIT: [0.5, 1.5], UNKNOWN: [100]},
                            as_scale=[FRUIT])


def _by_run(results: pd.DataFrame, metric: str) -> pd.Series:
    return results[results["metric"] == metric].set_index("run_id")["value"]


def _statuses(results: pd.DataFrame) -> pd.Series:
    return results.drop_duplicates("run_id").set_index("run_id")["status"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_instance(tmp_path_factory.mktemp("sweep") / "tiny")


@pytest.fixture(scope="module")
def reference(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    out = tmp_path_factory.mktemp("reference") / "sweep"
    sw.clear_cache()
    results = sw.sweep(tiny, _design(), executor="serial", out_dir=out, progress=True)
    return results, out


# ------------------------------------------------------------------------------------------------ designs


def test_one_at_a_time_rows() -> None:
    design = _design()
    assert list(design.columns) == ["run_id", FLOOR, FRUIT, UNKNOWN]
    assert len(design) == 1 + 3 + 2 + 1 and design["run_id"].is_unique
    base = design.iloc[0]
    assert base[FLOOR] == 4000 and base[FRUIT] == 1.0 and pd.isna(base[UNKNOWN])
    floors = design[design[FLOOR] != 4000]
    assert sorted(floors[FLOOR]) == [3000, 5000, 400000] and (floors[FRUIT] == 1.0).all()
    assert design.attrs["kind"] == "one_at_a_time" and design.attrs["as_scale"] == [FRUIT]
    assert design.attrs["base"] == {FLOOR: 4000, FRUIT: 1, UNKNOWN: None}
    # stable ids; a range value equal to the base is the base run; a multiplier is not the same run as a figure
    again = sw.one_at_a_time({FLOOR: 4000.0}, {FLOOR: [4000, 3000, 5000, 400000], FRUIT: [0.5, 1.5],
                                               UNKNOWN: [100]}, as_scale=[FRUIT])
    assert list(again["run_id"]) == list(design["run_id"])
    assert sw.run_id_of({FRUIT: 0.5}, [FRUIT]) != sw.run_id_of({FRUIT: 0.5})
    assert sw.run_id_of({FRUIT: np.float64(0.5)}, [FRUIT]) == sw.run_id_of({FRUIT: 0.5}, [FRUIT])


def test_factorial_and_latin_hypercube_rows() -> None:
    grid = sw.factorial({FLOOR: [4000, 5000], "constraints.budget": [1e5, 2e5, 3e5]})
    assert len(grid) == 6 and grid["run_id"].is_unique
    assert set(zip(grid[FLOOR], grid["constraints.budget"], strict=True)) == {
        (f, b) for f in (4000, 5000) for b in (1e5, 2e5, 3e5)}
    lhs = sw.latin_hypercube({FLOOR: (4000, 6000), FRUIT: (0.5, 1.0)}, n=8, seed=3, as_scale=[FRUIT])
    assert len(lhs) == 8 and list(lhs.columns) == ["run_id", FLOOR, FRUIT]
    for path, (low, high) in {FLOOR: (4000, 6000), FRUIT: (0.5, 1.0)}.items():
        strata = np.floor((lhs[path].to_numpy() - low) / (high - low) * 8).astype(int)
        assert sorted(strata) == list(range(8))  # one sample in each eighth: a Latin hypercube
    same = sw.latin_hypercube({FLOOR: (4000, 6000), FRUIT: (0.5, 1.0)}, n=8, seed=3, as_scale=[FRUIT])
    pd.testing.assert_frame_equal(lhs, same)
    other = sw.latin_hypercube({FLOOR: (4000, 6000), FRUIT: (0.5, 1.0)}, n=8, seed=4, as_scale=[FRUIT])
    assert set(other["run_id"]).isdisjoint(lhs["run_id"])


def test_design_toml(tmp_path: Path) -> None:
    path = tmp_path / "design.toml"
    path.write_text(f"""
[design]
kind = "one_at_a_time"
[parameters."{FLOOR}"]
values = [3500, 4500]
base = 4000
[parameters."{FRUIT}"]
low = 0.5
high = 1.0
steps = 3
scale = true
""")
    design = sw.load_design(path)
    assert len(design) == 1 + 2 + 2  # base; two floors; 0.5 and 0.75 (1.0 is the base)
    assert design.attrs["as_scale"] == [FRUIT] and design.attrs["base"][FLOOR] == 4000
    path.write_text(f"""
[design]
kind = "latin_hypercube"
n = 5
seed = 1
[parameters."{FLOOR}"]
low = 4000
high = 6000
""")
    assert len(sw.load_design(path)) == 5
    path.write_text(f'[design]\nkind = "factorial"\n[parameters."{FLOOR}"]\nvalue = [1]\n')
    with pytest.raises(InputError, match="unknown key"):
        sw.load_design(path)
    path.write_text(f'[design]\nkind = "latin_hypercube"\n[parameters."{FLOOR}"]\nlow = 1\nhigh = 2\n')
    with pytest.raises(InputError, match="needs n"):
        sw.load_design(path)


# ------------------------------------------------------------------------------------------------ serial


def test_serial_sweep_is_tidy(reference: tuple[pd.DataFrame, Path], tiny: Path) -> None:
    results, out = reference
    assert list(results.columns) == ["run_id", "status", "error", FLOOR, FRUIT, UNKNOWN, "metric", "value"]
    assert len(results) == 7 * len(sw.DEFAULT_METRICS)
    assert set(results["metric"]) == set(sw.DEFAULT_METRICS)
    statuses = _statuses(results)
    design = _design().set_index("run_id")
    assert (statuses == "optimal").sum() == 5
    # the objective of a run is the objective of solving the same changes directly
    run_5000 = design.index[design[FLOOR] == 5000][0]
    direct = run.solve(load_scenario(tiny).with_(**{FLOOR: 5000}), threads=1)
    assert _by_run(results, "objective")[run_5000] == pytest.approx(direct.result.objective, rel=1e-9)
    # written at once per run, then the whole table, the design, the ranking and the plots
    assert sorted(p.stem for p in (out / "runs").glob("*.parquet")) == sorted(design.index)
    assert (out / "results.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    on_disk = sw.load_results(out)
    pd.testing.assert_frame_equal(on_disk.drop(columns="error"), results.drop(columns="error"), check_dtype=False)
    assert list(on_disk["error"].fillna("")) == list(results["error"].fillna(""))
    assert len(pd.read_csv(out / "design.csv", encoding="utf-8-sig")) == 7
    ranking = pd.read_csv(out / "ranking.csv", encoding="utf-8-sig")
    top = ranking[(ranking["metric"] == "income") & (ranking["rank"] == 1)]
    assert top["parameter"].iloc[0] == FLOOR and top["measure"].iloc[0] == "range_of_means"
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {"tornado_income.png", "spider_income.png", "tornado_gain_carbon.png"} <= plots
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["runs"] == 7 and meta["statuses"] == {"optimal": 5, "infeasible": 1, "failed": 1}


def test_infeasible_and_failed_runs_are_results(reference: tuple[pd.DataFrame, Path]) -> None:
    results = reference[0]
    design = _design().set_index("run_id")
    statuses = _statuses(results)
    impossible = design.index[design[FLOOR] == 400000][0]
    assert statuses[impossible] == "infeasible"
    rows = results[results["run_id"] == impossible].set_index("metric")
    assert rows.loc["villages_below_floor", "value"] == 2  # both villages short, from the diagnosis
    assert rows.drop(index="villages_below_floor")["value"].isna().all()
    assert "cannot reach its floor" in rows["error"].iloc[0]
    unknown = design.index[design[UNKNOWN] == 100][0]
    assert statuses[unknown] == "failed"
    error = results.loc[results["run_id"] == unknown, "error"].iloc[0]
    assert "no_such_fruit" in error and "unknown" in error
    assert results[results["status"] == "optimal"]["error"].isna().all()


def _fruit_area(plan: Any) -> dict[str, float]:
    return {"fruit_area_mu": float(plan.parcels.loc[plan.parcels["option"] == "fruit", "area_mu"].sum())}


def test_a_raising_solve_is_recorded_and_the_others_finish(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = sweep_run.solve_prepared

    def flaky(prepared: Any, *args: Any, **kwargs: Any) -> Any:
        if prepared.scenario.constraints.income_floor == 4500:
            raise RuntimeError("solver exploded")
        return real(prepared, *args, **kwargs)

    monkeypatch.setattr(sweep_run, "solve_prepared", flaky)
    design = sw.factorial({FLOOR: [3500, 4500, 5000]})
    results = sw.sweep(tiny, design, executor="serial", progress=False, metrics=("objective", "income"))
    statuses = _statuses(results)
    failed = design.set_index("run_id").index[design[FLOOR] == 4500][0]
    assert statuses[failed] == "failed" and (statuses.drop(failed) == "optimal").all()
    assert "RuntimeError: solver exploded" in results.loc[results["run_id"] == failed, "error"].iloc[0]
    # a failed run keeps a row even when every metric is a function that never ran
    only = sw.sweep(tiny, sw.factorial({FLOOR: [4500]}), executor="serial", progress=False, metrics=(_fruit_area,))
    assert len(only) == 1 and only["status"].iloc[0] == "failed" and pd.isna(only["value"].iloc[0])


def test_inputs_are_read_once_per_worker(tiny: Path) -> None:
    sw.clear_cache()
    sw.sweep(tiny, sw.factorial({FLOOR: [3500, 4500], "constraints.budget": [50000, 70000]}), executor="serial",
             progress=False, metrics=("objective",))
    info = sw.cache_info()
    assert info["inputs_misses"] == 1 and info["inputs_hits"] == 3
    assert info["catalog_misses"] == 1 and info["catalog_hits"] == 3
    sw.sweep(tiny, sw.factorial({FRUIT: [0.6, 0.8]}, as_scale=[FRUIT]), executor="serial", progress=False,
             metrics=("objective",))
    info = sw.cache_info()
    assert info["inputs_misses"] == 1 and info["catalog_misses"] == 3  # a new catalog per price, same parcels


def test_built_model_is_reused_when_only_targets_change(tiny: Path) -> None:
    sw.clear_cache()
    design = sw.factorial({FLOOR: [3500, 4500], "constraints.budget": [50000, 70000]})
    reused = sw.sweep(tiny, design, executor="serial", progress=False, metrics=("objective", "income"))
    info = sw.cache_info()
    assert info["model_misses"] == 1 and info["model_hits"] == 3
    sw.clear_cache()
    fresh = pd.concat([sw.sweep(tiny, design.iloc[[i]], executor="serial", progress=False,
                                metrics=("objective", "income")) for i in range(len(design))])
    for frame in (reused, fresh):
        frame.sort_values(["run_id", "metric"], inplace=True)
    assert list(reused["status"]) == list(fresh["status"])
    assert np.allclose(reused["value"].to_numpy(), fresh["value"].to_numpy(), rtol=1e-6, equal_nan=True)


def test_latin_hypercube_sweep_ranks_by_spearman(tiny: Path, tmp_path: Path) -> None:
    design = sw.latin_hypercube({FLOOR: (3000, 5000), "constraints.budget": (40000, 80000)}, n=5, seed=2)
    results = optiland.analysis.sweep(tiny, design, executor="serial", out_dir=tmp_path / "lhs", progress=False,
                             metrics=("income", _fruit_area))
    assert set(results["metric"]) == {"income", "fruit_area_mu"}
    ranking = pd.read_csv(tmp_path / "lhs" / "ranking.csv", encoding="utf-8-sig")
    assert set(ranking["measure"]) == {"abs_spearman"}
    income = ranking[ranking["metric"] == "income"].set_index("parameter")
    assert income.loc[FLOOR, "rank"] == 1 and income.loc[FLOOR, "effect"] > 0.9  # income rises with the floor
    assert income.loc["constraints.budget", "effect"] < income.loc[FLOOR, "effect"]


# ------------------------------------------------------------------------------------------------ resume


def test_killed_sweep_resumes_without_solving_finished_runs(tiny: Path, tmp_path: Path,
                                                            reference: tuple[pd.DataFrame, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    solved: list[float | None] = []
    real = sweep_run.solve_prepared

    def counting(prepared: Any, *args: Any, **kwargs: Any) -> Any:
        solved.append(prepared.scenario.constraints.income_floor)
        return real(prepared, *args, **kwargs)

    monkeypatch.setattr(sweep_run, "solve_prepared", counting)
    out = tmp_path / "sweep"
    finished: list[str] = []

    def kill_after_three(frame: pd.DataFrame) -> None:
        finished.append(frame["run_id"].iloc[0])
        if len(finished) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sw.sweep(tiny, _design(), executor="serial", out_dir=out, progress=False, on_run=kill_after_three)
    assert sorted(p.stem for p in (out / "runs").glob("*.parquet")) == sorted(finished)
    assert not (out / "results.parquet").exists()
    first = len(solved)

    results = sw.sweep(tiny, _design(), executor="serial", out_dir=out, progress=False)
    # 7 runs: 3 finished before the kill; the unknown variant fails before solving; 3 are solved now
    assert len(solved) - first == 3
    expected = reference[0]
    pd.testing.assert_frame_equal(results.drop(columns="value"), expected.drop(columns="value"))
    keep = results["metric"] != "solve_seconds"
    np.testing.assert_allclose(results.loc[keep, "value"], expected.loc[keep, "value"], rtol=1e-9)

    # a deleted run is solved again, nothing else; a failed run is tried again (and fails again)
    victim = next(p for p in (out / "runs").glob("*.parquet") if pd.read_parquet(p)["status"].iloc[0] == "optimal")
    victim.unlink()
    before = len(solved)
    again = sw.sweep(tiny, _design(), executor="serial", out_dir=out, progress=False)
    assert len(solved) - before == 1 and len(again) == len(results)
    # another sweep in the same folder is refused
    with pytest.raises(OptilandError, match="another sweep"):
        sw.sweep(tiny, _design(), executor="serial", out_dir=out, progress=False, time_limit=5)


# ------------------------------------------------------------------------------------------------ executors


def _same_results(results: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same runs and statuses; objectives equal within the solver gap (other metrics may differ between equally
    good optima)."""
    pd.testing.assert_series_equal(_statuses(results).sort_index(), _statuses(expected).sort_index())
    np.testing.assert_allclose(_by_run(results, "objective").sort_index(), _by_run(expected, "objective").sort_index(),
                               rtol=1e-4)
    short = results[(results["status"] == "infeasible") & (results["metric"] == "villages_below_floor")]
    assert (short["value"] == 2).all()


@pytest.mark.parametrize("context", ["spawn", "fork"])
def test_local_processes_give_the_serial_results(tiny: Path, reference: tuple[pd.DataFrame, Path],
                                                 context: str) -> None:
    results = sw.sweep(tiny, _design(), executor="processes", workers=2, mp_context=context, progress=False)
    _same_results(results, reference[0])


def test_dask_local_cluster_gives_the_serial_results(tiny: Path, reference: tuple[pd.DataFrame, Path],
                                                     tmp_path: Path) -> None:
    results = sw.sweep(tiny, _design(), executor="dask", workers=2, out_dir=tmp_path / "dask", progress=False)
    _same_results(results, reference[0])
    assert json.loads((tmp_path / "dask" / "sweep.json").read_text())["executor"] == "dask"


# ------------------------------------------------------------------------------------------------ CLI, examples


def test_cli_sweep_serial_then_on_a_dask_scheduler(tiny: Path, tmp_path: Path) -> None:
    design = tmp_path / "design.toml"
    design.write_text(f"""
[design]
kind = "one_at_a_time"
[parameters."{FLOOR}"]
values = [3500, 5000]
base = 4000
[parameters."{FRUIT}"]
values = [0.5]
scale = true
""")
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(tiny), "--design", str(design), "--out", str(out),
                                 "--executor", "serial", "--time-limit", "60"])
    assert result.exit_code == 0, result.output
    assert "4 runs: 4 optimal" in result.output and "largest effect per metric" in result.output
    assert {"results.csv", "results.parquet", "design.csv", "ranking.csv", "sweep.json", "plots", "runs",
            ".optiland"} == {
        p.name for p in out.iterdir()}
    results = pd.read_csv(out / "results.csv", encoding="utf-8-sig")
    assert {FLOOR, FRUIT, "metric", "value"} <= set(results.columns)

    client = sw.local_cluster(2)
    try:
        address = client.scheduler.address
        remote = tmp_path / "remote"
        result = runner.invoke(app, ["sweep", str(tiny), "--design", str(design), "--out", str(remote),
                                     "--dask", address, "--time-limit", "60", "--no-plots"])
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    assert result.exit_code == 0, result.output
    again = pd.read_parquet(remote / "results.parquet")
    _same_results(again, pd.read_parquet(out / "results.parquet"))

    bad = tmp_path / "bad.toml"
    bad.write_text(f'[parameters."{UNKNOWN}"]\nvalues = [1]\n')
    result = runner.invoke(app, ["sweep", str(tiny), "--design", str(bad), "--out", str(tmp_path / "bad"),
                                 "--executor", "serial", "--no-plots"])
    assert result.exit_code == 1 and "no_such_fruit" in result.output
    result = runner.invoke(app, ["sweep", str(tiny), "--design", str(tmp_path / "none.toml"), "--out",
                                 str(tmp_path / "none")])
    assert result.exit_code == 2 and "design file not found" in result.output


def _example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.parametrize("name", ["fruit_price_shock", "income_floor_cost"])
def test_examples_run_on_a_tiny_instance(name: str, tiny: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    table = _example(name).main([str(tiny), "--runs", "2", "--out", str(tmp_path / name), "--executor", "serial",
                                 "--time-limit", "60"])
    assert len(table) == 2
    assert (tmp_path / name / "results.csv").is_file()
    assert capsys.readouterr().out.strip()


def test_sweep_folder_can_be_read_back(reference: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(reference[1], copy)
    loaded = sw.load_results(copy)
    assert loaded.attrs["kind"] == "one_at_a_time" and len(loaded) == len(reference[0])
    ranking = sw.rank_parameters(loaded)
    assert set(ranking["parameter"]) == {FLOOR, FRUIT, UNKNOWN}
    unknown = ranking[ranking["parameter"] == UNKNOWN]
    assert unknown["effect"].isna().all()  # every run of it failed: no effect to measure
