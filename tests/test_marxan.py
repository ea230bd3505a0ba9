"""Marxan import: the sample's totals survive the import; the Zones test files' odd cases are read or named; a tiny
Marxan with Zones problem solves to the optimum an independent enumeration finds; Marxan's score terms of a plan
read back from a solution file.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiland.analysis.marxan import (
    _penalties,
    assemble,
    read_features,
    read_marxan,
    read_solution,
    read_table,
    score_outdir,
    solution_plan,
    write_instance,
)
from optiland.check import check_outdir
from optiland.cli import app
from optiland.errors import InputError
from optiland.pipeline.run import prepare, solve_prepared, solver_options
from optiland.violations import FEATURE_TARGET_TOLERANCE

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE = DATA / "marxan-sample"
ZONES = DATA / "marxan-zones-test"
pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared Marxan data not present")


def test_sample_import_reproduces_the_input_totals(tmp_path: Path) -> None:
    pu = pd.read_csv(SAMPLE / "input" / "pu.dat")
    puvspr = pd.read_csv(SAMPLE / "input" / "puvspr.dat")
    bound = pd.read_csv(SAMPLE / "input" / "bound.dat", sep="\t")
    spec = pd.read_csv(SAMPLE / "input" / "spec.dat")
    data = read_marxan(SAMPLE / "input.dat")
    assert any("MATRIXSPORDERNAME" in note for note in data.notes)
    write_instance(data, tmp_path / "inst")
    problem = prepare(tmp_path / "inst" / "scenario.toml").problem
    allowed = problem.allowed
    assert problem.n_parcels == len(pu) == 1751 and len(problem.villages) == 0
    # cost: every unit's cost is the cost of its 'selected' row (locked-out units have none)
    selected = allowed[allowed["option"] == "selected"]
    free = pu[pu["status"] != 3]
    assert selected["cost"].sum() == pytest.approx(free["cost"].sum(), rel=1e-12)
    assert (allowed[allowed["option"] == "available"]["cost"] == 0).all()
    # locks: 317 in, 1 out
    counts = allowed.groupby("parcel")["option"].agg(tuple)
    assert (counts == ("selected",)).sum() == 317 and (counts == ("available",)).sum() == 1
    assert (pu["status"] == 2).sum() == 317 and (pu["status"] == 3).sum() == 1
    # amounts and targets (prop 0.3 of each feature's total)
    spatial = problem.spatial
    assert spatial is not None
    assert spatial.amounts.sum() == pytest.approx(puvspr["amount"].sum(), rel=1e-12)
    by_name = dict(zip(spec["id"], spec["name"], strict=True))
    totals = puvspr.groupby("species")["amount"].sum()
    for species, total in totals.items():
        assert spatial.targets[by_name[species]] == pytest.approx(0.3 * total, rel=1e-12)
    # boundary: 5,029 shared boundaries and 227 outer edges, lengths kept
    shared = bound[bound["id1"] != bound["id2"]]
    assert len(spatial.edge_length) == len(shared) == 5029
    assert spatial.edge_length.sum() == pytest.approx(shared["boundary"].sum())
    assert (spatial.outer_length > 0).sum() == 227
    assert spatial.outer_length.sum() == pytest.approx(bound[bound["id1"] == bound["id2"]]["boundary"].sum())
    assert spatial.blm == 1.0 and problem.uses_spatial


def test_zones_test_files_odd_cases(tmp_path: Path) -> None:
    one = read_features(ZONES / "species_test1.dat")  # 'fpf' and spaces after commas
    assert list(one["spf"]) == [1.0, 100.0, 1.0] and list(one["name"]) == ["RockyReef", "KelpForest", "FishingGrounds"]
    two = read_features(ZONES / "species_test2.dat")  # no prop, a negative target and a negative targetocc
    assert list(two["target"]) == [-100.0, 110.0, 120.0] and list(two["prop"]) == [0.0, 0.0, 0.0]
    three = read_features(ZONES / "species_test3_spf.dat")  # no name: the id names it
    assert list(three["name"]) == ["1", "2"] and list(three["spf"]) == [101.1, 99.0]
    lock = read_table(ZONES / "pulock_test1.dat", ("pu", "zone"))  # 'puid, zoneid' header
    assert list(lock["pu"]) == ["2", "5", "30"]

    files = {"pu": ZONES / "pu_test1.dat", "spec": ZONES / "species_test1.dat", "puvspr": ZONES / "puvspr_test1.dat",
             "zones": ZONES / "zones_test1.dat"}
    with pytest.raises(InputError) as caught:  # puvspr names unit 99 and 4 and feature 4, none of which exist
        assemble(ZONES / "x", {}, files, [])
    text = str(caught.value)
    assert "line 8" in text and "99" in text and "planning unit" in text and "feature" in text

    clean = tmp_path / "puvspr.dat"
    pd.read_csv(ZONES / "puvspr_test1.dat").query("pu not in [99, 4]").to_csv(clean, index=False)
    with pytest.raises(InputError) as caught:  # costs_test1 names 'salmonfishing', which pu_test1 lacks
        assemble(ZONES / "x", {}, {**files, "puvspr": clean, "costs": ZONES / "costs_test1.dat"}, [])
    assert "salmonfishing" in str(caught.value) and "pu_test1.dat" in str(caught.value)
    costs = tmp_path / "costs.dat"
    costs.write_text("costid, costname\n1, area\n3, squidfishing\n")
    files = {**files, "puvspr": clean, "costs": costs}
    with pytest.raises(InputError) as caught:  # zone 5 and feature 4 in zonetarget are unknown
        assemble(ZONES / "x", {}, {**files, "zonetarget": ZONES / "zonetarget_test1.dat"}, [])
    text = str(caught.value)
    assert "line 5" in text and "line 6" in text and "zone" in text
    with pytest.raises(InputError, match="30"):  # pulock locks unit 30, which does not exist
        assemble(ZONES / "x", {}, {**files, "pulock": ZONES / "pulock_test1.dat"}, [])
    data = assemble(ZONES / "x", {"BLM": "0.5"}, {**files, "bound": ZONES / "connections_test1.dat",
                                                  "puzone": ZONES / "puzone_test1.dat"}, [])
    assert data.unit_costs.query("parcel_id == '10' and option == 'reserve'")["cost"].item() == 555 + 111
    assert data.zones == ["available", "partial", "reserve"]
    assert set(data.locks["option"]) == {"partial"} and set(data.locks["parcel_id"]) == {"10"}
    assert data.boundaries["boundary"].sum() == pytest.approx(99.9 + 0.8 + 1.5 + 2.0)


def _tiny_zones(folder: Path) -> dict[str, Path]:
    """Five units, three zones, two costs with zone multipliers, contributions, a feature and a zone target, zone
    boundary weights, a lock and a zone restriction."""
    folder.mkdir(parents=True)
    files = {
        "zones": "zoneid,zonename\n1,available\n2,partial\n3,reserve\n",
        "costs": "costid,costname\n1,area\n2,fishing\n",
        "pu": "id,area,fishing\n1,4,1\n2,3,5\n3,6,0\n4,2,2\n5,5,1\n",
        "zonecost": "zoneid,costid,multiplier\n2,1,0.5\n3,1,0.6\n3,2,0.3\n1,2,0.2\n",
        "spec": "id,prop,target,spf,name\n1,0,9,10,reef\n2,0.5,0,5,kelp\n",
        "puvspr": "species,pu,amount\n1,1,4\n1,2,3\n1,3,5\n1,4,2\n2,2,6\n2,4,4\n2,5,5\n",
        "zonecontrib": "zoneid,featureid,fraction\n2,1,0.5\n3,1,1\n2,2,0.5\n3,2,1\n",
        "zonetarget": "zoneid,featureid,target,targettype\n3,1,4,0\n",
        "zonebound": "zoneid1,zoneid2,cost\n1,2,1\n1,3,2\n2,3,0.5\n3,3,0\n",
        "bound": "id1,id2,boundary\n1,2,1\n2,3,2\n3,4,1\n4,5,3\n1,5,1\n2,4,1.5\n1,1,2\n5,5,1\n",
        "pulock": "puid,zoneid\n3,3\n",
        "puzone": "puid,zoneid\n5,1\n5,2\n",
    }
    paths = {}
    for kind, text in files.items():
        (folder / f"{kind}.dat").write_text(text)
        paths[kind] = folder / f"{kind}.dat"
    return paths


@pytest.mark.parametrize("blm", [0.0, 0.7, 5.0])  # the optimal zoning changes between 0.7 and 5
def test_tiny_zones_problem_solves_to_the_enumerated_optimum(tmp_path: Path, blm: float) -> None:
    files = _tiny_zones(tmp_path / "marxan")
    data = assemble(tmp_path / "marxan" / "input.dat", {"BLM": str(blm)}, files, [])
    write_instance(data, tmp_path / "inst")
    prepared = prepare(tmp_path / "inst" / "scenario.toml")
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60), "pyomo")

    zones = ["available", "partial", "reserve"]
    cost = {"available": np.array([1, 5, 0, 2, 1]) * 0.2, "partial": np.array([4, 3, 6, 2, 5]) * 0.5,
            "reserve": 0.6 * np.array([4, 3, 6, 2, 5]) + 0.3 * np.array([1, 5, 0, 2, 1])}
    weight = {frozenset(["available", "partial"]): 1.0, frozenset(["available", "reserve"]): 2.0,
              frozenset(["partial", "reserve"]): 0.5}
    edges = [(0, 1, 1), (1, 2, 2), (2, 3, 1), (3, 4, 3), (0, 4, 1), (1, 3, 1.5)]
    outer = {0: 2.0, 4: 1.0}
    reef, kelp = np.array([4, 3, 5, 2, 0.0]), np.array([0, 6, 0, 4, 5.0])
    share = {"available": 0.0, "partial": 0.5, "reserve": 1.0}
    best = np.inf
    for plan in itertools.product(zones, repeat=5):
        if plan[2] != "reserve" or plan[4] == "reserve":  # unit 3 locked in to reserve, unit 5 not allowed there
            continue
        credit = np.array([share[z] for z in plan])
        if (reef * credit).sum() < 9 - 1e-9 or (kelp * credit).sum() < 0.5 * 15 - 1e-9:
            continue
        if sum(reef[i] for i in range(5) if plan[i] == "reserve") < 4 - 1e-9:
            continue
        value = sum(cost[z][i] for i, z in enumerate(plan))
        value += blm * sum(b * weight.get(frozenset([plan[i], plan[j]]), 0.0) for i, j, b in edges)
        value += blm * sum(b * weight.get(frozenset([plan[i], "available"]), 0.0) for i, b in outer.items())
        best = min(best, value)
    assert np.isfinite(best)
    assert outcome.result.objective == pytest.approx(best, rel=1e-7)


def test_cli_import_solve_check_and_a_marxan_solution_read_back(tmp_path: Path) -> None:
    files = _tiny_zones(tmp_path / "marxan" / "input")
    lines = ["BLM 0.7", "COSTTHRESH 5", "THRESHPEN1 2", "THRESHPEN2 0", "INPUTDIR input"]
    keys = {"zones": "ZONESNAME", "costs": "COSTSNAME", "pu": "PUNAME", "zonecost": "ZONECOSTNAME",
            "spec": "SPECNAME", "puvspr": "PUVSPRNAME", "zonecontrib": "ZONECONTRIBNAME", "zonetarget":
            "ZONETARGETNAME", "zonebound": "ZONEBOUNDCOSTNAME", "bound": "BOUNDNAME", "pulock": "PULOCKNAME",
            "puzone": "PUZONENAME"}
    lines += [f"{keys[kind]} {path.name}" for kind, path in files.items()]
    (tmp_path / "marxan" / "input.dat").write_text("Marxan with Zones test\n\n" + "\n".join(lines) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["import", "marxan", str(tmp_path / "marxan" / "input.dat"), "--out",
                                 str(tmp_path / "inst")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["solve", str(tmp_path / "inst" / "scenario.toml"), "--out", str(tmp_path / "out"),
                                 "--backend", "matrix"])
    assert result.exit_code == 2 and "matrix backend" in result.output
    result = runner.invoke(app, ["solve", str(tmp_path / "inst" / "scenario.toml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert check_outdir(tmp_path / "out") == []
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    score = score_outdir(tmp_path / "out")
    assert score is not None and score["targets_missed"] == 0 and score["spf_x_shortfall"] == 0
    assert score["cost"] + score["blm_x_boundary"] == pytest.approx(run["objective"]["value"], rel=1e-9)
    assert score["cost_threshold_penalty"] == pytest.approx(max(score["cost"] - 5, 0) * 2)

    # a Marxan solution that leaves everything available: every target missed, the SPF terms count
    solution = tmp_path / "output_best.csv"
    solution.write_text("planning_unit,zone\n1,1\n2,1\n3,3\n4,1\n5,1\n")
    result = runner.invoke(app, ["import", "marxan-solution", str(solution), "--instance", str(tmp_path / "inst"),
                                 "--out", str(tmp_path / "read")])
    assert result.exit_code == 0, result.output
    violations = check_outdir(tmp_path / "read")
    assert {v.family for v in violations} == {"feature_target"}
    result = runner.invoke(app, ["check", str(tmp_path / "read")])
    assert result.exit_code == 1 and "Marxan score" in result.output
    score = score_outdir(tmp_path / "read")
    assert score is not None and score["targets_missed"] == 2 and score["spf_x_shortfall"] > 0
    assert score["cost"] == pytest.approx(0.2 * (1 + 5 + 2 + 1) + 0.6 * 6)
    assert score["cost_threshold_penalty"] == pytest.approx((score["cost"] - 5) * 2)
    # boundary: unit 3 (reserve) borders units 2 and 4 (available), weight 2; no outer edge of unit 3
    assert score["blm_x_boundary"] == pytest.approx(0.7 * 2 * (2 + 1))
    # reef: 5 of 9 held (shortfall 4/9), kelp: 0 of 7.5 held; greedy base penalties from unit costs + boundary
    assert score["shortfall"] == pytest.approx({"reef": 4.0, "kelp": 7.5})

    # a solution that breaks both locks (unit 3 locked in to reserve, unit 5 barred from it) is still scored
    solution.write_text("planning_unit,zone\n1,1\n2,1\n3,1\n4,1\n5,3\n")
    result = runner.invoke(app, ["import", "marxan-solution", str(solution), "--instance", str(tmp_path / "inst"),
                                 "--out", str(tmp_path / "unlocked")])
    assert result.exit_code == 0, result.output
    assert {v.family for v in check_outdir(tmp_path / "unlocked")} == {"feature_target", "locks"}
    score = score_outdir(tmp_path / "unlocked")
    assert score is not None
    assert score["cost"] == pytest.approx(0.2 * (1 + 5 + 0 + 2) + 0.6 * 5 + 0.3 * 1)

    solution.write_text("planning_unit,zone\n1,1\n2,7\n")
    result = runner.invoke(app, ["import", "marxan-solution", str(solution), "--instance", str(tmp_path / "inst"),
                                 "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "line 3" in result.output and "7" in result.output
    assert not (tmp_path / "bad").exists()


def test_standard_marxan_solution_and_missing_files(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE, tmp_path / "sample")
    (tmp_path / "sample" / "input" / "bound.dat").unlink()
    with pytest.raises(InputError, match="bound.dat"):
        read_marxan(tmp_path / "sample" / "input.dat")


def test_base_penalty_follows_marxans_greedy() -> None:
    amounts, cost = np.array([[1.0], [5.0], [10.0]]), np.array([1.0, 2.0, 10.0])
    free = np.zeros(3, dtype=bool)
    # unit 3 alone meets 5.5: Marxan takes the cheapest unit that meets the rest, found after the best ratio
    assert _penalties(amounts, cost, free, np.array([5.5])) == pytest.approx([10.0])
    # 20 is out of reach (16 in all): units by ratio (2, then 1, then 3), the penalty scaled by 20 / 16
    assert _penalties(amounts, cost, free, np.array([20.0])) == pytest.approx([13.0 * 20 / 16])
    # unit 1 locked in counts first; unit 2 meets the rest, but Marxan's scan then takes unit 3, whose amount per
    # cost beats every ratio seen so far (none: a meeting unit does not set it)
    assert _penalties(amounts, cost, np.array([True, False, False]), np.array([5.5])) == pytest.approx([11.0])
    assert _penalties(amounts[:2], cost[:2], np.array([True, False]), np.array([5.5])) == pytest.approx([3.0])


def _tiny_standard(folder: Path, sporder: bool, target_a: str = "5", solution: str = "1\n2\n") -> dict[str, Any]:
    """A six-unit standard Marxan set in the sample's format (input.dat, input/pu.dat, spec.dat, puvspr.dat and,
    with `sporder`, the MATRIXSPORDERNAME file), imported and a solution (SAVERUN 1: bare ids) read back: its score."""
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "pu.dat").write_text("id,cost,status\n1,10,2\n2,40,2\n3,4,0\n4,6,0\n5,9,3\n6,5,0\n")
    (folder / "input" / "spec.dat").write_text(f"id,target,spf,name\n1,{target_a},1,A\n2,12,2,B\n")
    matrix = "species,pu,amount\n1,1,2\n1,3,1\n1,4,3\n1,5,8\n2,2,5\n2,6,4\n"
    (folder / "input" / "puvspr.dat").write_text(matrix)
    lines = ["BLM 0", "INPUTDIR input", "SPECNAME spec.dat", "PUNAME pu.dat", "PUVSPRNAME puvspr.dat",
             "MATRIXSPORDERNAME puvspr_sporder.dat"]
    (folder / "input.dat").write_text("\n".join(lines) + "\n")
    if sporder:
        (folder / "input" / "puvspr_sporder.dat").write_text(matrix)
    data = read_marxan(folder / "input.dat")
    write_instance(data, folder / "inst")
    (folder / "output_r00001.dat").write_text(solution)
    return {"data": data, "score": solution_plan(folder / "inst", folder / "output_r00001.dat", folder / "plan")}


def test_sporder_file_switches_to_marxans_optimise_penalties(tmp_path: Path) -> None:
    """Marxan 4.0.6 with a MATRIXSPORDERNAME file (computePenaltiesOptimise) and without (computePenalties).

    Units (id: cost, status, amounts): 1: 10, locked in, A 2; 2: 40, locked in, B 5; 3: 4, free, A 1; 4: 6, free,
    A 3; 5: 9, locked out, A 8; 6: 5, free, B 4. Targets A 5 (SPF 1), B 12 (SPF 2), BLM 0. The plan selects the
    two units locked in: cost 50, A holds 2 (short 3 of 5), B holds 5 (short 7 of 12).

    Base penalty A, without the sporder file: every unit locked in counts, 10 + 40 = 50, A 2 held; Marxan's scan
    in unit order: unit 3 (1 < 3 still needed) sets the best ratio, unit 4 (3 >= 3) meets the rest and is taken:
    50 + 6 = 56. With it: only unit 1 counts (it holds A), 10, then unit 4: 16 (unit 5 is locked out).
    Base penalty B, without: 50, B 5 held, unit 6 added (55, B 9), no unit left: 55 x 12 / 9 = 73.33; with: unit 2
    only, 40, unit 6: 45, x 12 / 9 = 60.
    Shortfall term: 1 x 56 x 3/5 + 2 x 73.33 x 7/12 = 33.6 + 85.56 = 119.16 without; 1 x 16 x 3/5 + 2 x 60 x 7/12
    = 9.6 + 70 = 79.6 with.
    """
    without = _tiny_standard(tmp_path / "without", sporder=False)
    assert without["data"].penalty_routine == "standard"
    assert any("missing" in note and "computePenalties" in note for note in without["data"].notes)
    score = without["score"]
    assert score["penalty_routine"] == "standard" and score["cost"] == pytest.approx(50)
    assert score["shortfall"] == pytest.approx({"A": 3.0, "B": 7.0}) and score["targets_missed"] == 2
    assert score["spf_x_shortfall"] == pytest.approx(56 * 3 / 5 + 2 * (55 * 12 / 9) * 7 / 12)

    with_file = _tiny_standard(tmp_path / "with", sporder=True)
    assert with_file["data"].penalty_routine == "optimise"
    score = with_file["score"]
    assert score["penalty_routine"] == "optimise" and score["cost"] == pytest.approx(50)
    assert score["spf_x_shortfall"] == pytest.approx(16 * 3 / 5 + 2 * (45 * 12 / 9) * 7 / 12)
    assert score["score"] == pytest.approx(50 + 79.6)


def test_sporder_file_with_an_unknown_unit_is_named(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE, tmp_path / "sample")
    rows = pd.read_csv(SAMPLE / "input" / "puvspr.dat").sort_values(["species", "pu"])
    rows.to_csv(tmp_path / "sample" / "input" / "puvspr_sporder.dat", index=False)
    data = read_marxan(tmp_path / "sample" / "input.dat")
    assert data.penalty_routine == "optimise" and len(data.sporder) == len(rows)
    rows.iloc[:3].assign(pu=[3, 999999, 30]).to_csv(tmp_path / "sample" / "input" / "puvspr_sporder.dat",
                                                    index=False)
    with pytest.raises(InputError) as caught:
        read_marxan(tmp_path / "sample" / "input.dat")
    assert "puvspr_sporder.dat" in str(caught.value) and "999999" in str(caught.value) and "line 3" in str(
        caught.value)


def test_one_tolerance_for_a_missed_target_in_check_and_score(tmp_path: Path) -> None:
    """The plan (units 1, 2 and 4 of `_tiny_standard`) holds exactly 5 of feature A. A target 1e-6 above that is
    missed by the score and fails the check (the check once allowed 1e-6 relative, i.e. 5e-6, and passed it); a
    target 1e-10 above it, within FEATURE_TARGET_TOLERANCE, is met in both."""
    short = _tiny_standard(tmp_path / "short", sporder=False, target_a="5.000001", solution="1\n2\n4\n")
    assert short["score"]["targets_missed"] == 2  # A by 1e-6, B by 7
    assert short["score"]["shortfall"]["A"] == pytest.approx(1e-6)
    failed = {v.key for v in check_outdir(tmp_path / "short" / "plan") if v.family == "feature_target"}
    assert failed == {"A", "B"}
    met = _tiny_standard(tmp_path / "met", sporder=False, target_a="5.0000000001", solution="1\n2\n4\n")
    assert met["score"]["targets_missed"] == 1
    assert {v.key for v in check_outdir(tmp_path / "met" / "plan") if v.family == "feature_target"} == {"B"}
    assert FEATURE_TARGET_TOLERANCE == 1e-9


def _sample_plan_ids() -> tuple[pd.DataFrame, set[int]]:
    pu = pd.read_csv(SAMPLE / "input" / "pu.dat")
    chosen = set(pu.loc[(pu["status"] == 2) | ((pu["status"] < 2) & (pu["id"] % 3 == 0)), "id"])
    return pu, chosen


@pytest.mark.parametrize("blm", ["0", "1"])
def test_boundary_length_is_the_boundary_itself_at_any_blm(tmp_path: Path, blm: str) -> None:
    """The boundary of a plan counted from bound.dat by hand: each shared edge with exactly one end selected, and
    each outer edge (id1 = id2) of a selected unit; at BLM 0 Marxan still reports it."""
    shutil.copytree(SAMPLE, tmp_path / "sample")
    text = (SAMPLE / "input.dat").read_text().replace("BLM 1\n", f"BLM {blm}\n")
    (tmp_path / "sample" / "input.dat").write_text(text)
    write_instance(read_marxan(tmp_path / "sample" / "input.dat"), tmp_path / "inst")
    pu, chosen = _sample_plan_ids()
    (tmp_path / "best.csv").write_text("PUID,SOLUTION\n" + "".join(
        f"{u},{int(u in chosen)}\n" for u in pu["id"]))
    score = solution_plan(tmp_path / "inst", tmp_path / "best.csv", tmp_path / "plan")
    bound = pd.read_csv(SAMPLE / "input" / "bound.dat", sep="\t")
    one = bound["id1"].isin(chosen).to_numpy()
    two = bound["id2"].isin(chosen).to_numpy()
    outer = (bound["id1"] == bound["id2"]).to_numpy()
    expected = bound["boundary"].to_numpy()[(outer & one) | (~outer & (one != two))].sum()
    assert expected > 0
    assert score["boundary_length"] == pytest.approx(expected, rel=1e-12)
    assert score["blm_x_boundary"] == pytest.approx(float(blm) * expected, rel=1e-12)


def test_marxan_solution_formats_saverun_1_2_3(tmp_path: Path) -> None:
    """One plan in Marxan 4.0.6's three solution formats (output.cpp, writeSolution) reads back the same; the
    headerless one also as selected ids alone."""
    data = read_marxan(SAMPLE / "input.dat")
    pu, chosen = _sample_plan_ids()
    order = pu["id"].to_numpy()[::-1]  # Marxan writes the units last to first
    files = {
        "saverun3.csv": "PUID,SOLUTION\n" + "".join(f"{u},{int(u in chosen)}\n" for u in order),
        "saverun2.txt": '"planning_unit","solution"\n' + "".join(f"{u},{int(u in chosen)}\n" for u in order),
        "saverun1.dat": "".join(f"{u}\n" if u in chosen else f"{u},0\n" for u in order),
        "selected.dat": "".join(f"{u}\n" for u in sorted(chosen)),
    }
    ids = data.units["id"].to_numpy()
    expected = np.array(["selected" if int(u) in chosen else "available" for u in ids], dtype=object)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        zone = read_solution(tmp_path / name, ["available", "selected"], ["0", "1"], ids)
        assert (zone == expected).all(), name
    (tmp_path / "bad.dat").write_text("3\n30,0\n424242\n")
    with pytest.raises(InputError) as caught:
        read_solution(tmp_path / "bad.dat", ["available", "selected"], ["0", "1"], ids)
    assert "line 3" in str(caught.value) and "424242" in str(caught.value)
    (tmp_path / "bad.csv").write_text("PUID,SOLUTION\n3,1\n30,2\n")
    with pytest.raises(InputError) as caught:
        read_solution(tmp_path / "bad.csv", ["available", "selected"], ["0", "1"], ids)
    assert "line 3" in str(caught.value) and "zone" in str(caught.value)


def test_marxan_solve_prints_marxans_terms_without_land_use_table_or_crs_warning(tmp_path: Path) -> None:
    files = _tiny_zones(tmp_path / "marxan" / "input")
    lines = ["BLM 0.7", "INPUTDIR input"] + [f"{key} {files[kind].name}" for kind, key in (
        ("zones", "ZONESNAME"), ("costs", "COSTSNAME"), ("pu", "PUNAME"), ("zonecost", "ZONECOSTNAME"),
        ("spec", "SPECNAME"), ("puvspr", "PUVSPRNAME"), ("bound", "BOUNDNAME"))]
    (tmp_path / "marxan" / "input.dat").write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["import", "marxan", str(tmp_path / "marxan" / "input.dat"), "--out",
                                 str(tmp_path / "inst")])
    assert result.exit_code == 0, result.output
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # pyogrio's "'crs' was not provided" would fail the solve
        result = runner.invoke(app, ["solve", str(tmp_path / "inst" / "scenario.toml"), "--out",
                                     str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "area by option" not in result.output and "villages at or below" not in result.output
    assert "Marxan score" in result.output and "planning units by zone" in result.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["marxan_score"]["score"] == pytest.approx(run["objective"]["value"], rel=1e-9)


def _benchmark(name: str) -> Any:
    """A script of benchmarks/ loaded as a module."""
    spec = importlib.util.spec_from_file_location(f"bench_{Path(name).stem}",
                                                  Path(__file__).parents[1] / "benchmarks" / name)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _four_unit_set(tmp_path: Path, extra: str = "") -> Path:
    """Four units (unit 1 locked in), feature A's target 5, BLM 3 in input.dat (optima by hand in the tests)."""
    folder = tmp_path / "set"
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "pu.dat").write_text("id,cost,status\n1,10,2\n2,40,0\n3,4,0\n4,6,0\n")
    (folder / "input" / "spec.dat").write_text("id,target,spf,name\n1,5,1,A\n")
    (folder / "input" / "puvspr.dat").write_text("species,pu,amount\n1,1,2\n1,3,1\n1,4,3\n1,2,4\n")
    (folder / "input" / "bound.dat").write_text("id1\tid2\tboundary\n1\t2\t1\n2\t3\t1\n3\t4\t1\n1\t4\t5\n1\t1\t2\n")
    (folder / "input.dat").write_text("BLM 3\nINPUTDIR input\nSPECNAME spec.dat\nPUNAME pu.dat\n"
                                      "PUVSPRNAME puvspr.dat\nBOUNDNAME bound.dat\n" + extra)
    return folder


def test_side_by_side_benchmark_runs_both_tools(tmp_path: Path) -> None:
    """benchmarks/marxan.py on a four-unit set: optiland's proven optimum at two BLM values (computed by hand in
    the comment below) and a stand-in Marxan executable's summary read back (best and mean Score, runs with a
    missed target); the stand-in fails unless its input.dat has the BLM asked and no line naming a missing file."""
    bench = _benchmark("marxan.py")
    folder = _four_unit_set(tmp_path, "MATRIXSPORDERNAME gone.dat\n")
    # A needs 3 more beside unit 1: unit 4 (6, shares 5 with unit 1: boundary 2 + 1 + 1 = 4) or unit 2 (40); at
    # BLM 0 unit 4 (cost 16), at BLM 3 unit 4 too: 16 + 3 x 4 = 28 against unit 2's 50 + 3 x (2 + 5 + 1) = 74
    for blm, expected in ((0.0, 16.0), (3.0, 28.0)):
        row = bench.run_optiland(folder / "input.dat", blm, 0.0, 60.0, 1)
        assert row["status"] == "optimal" and row["objective"] == pytest.approx(expected)
        assert row["score"] == pytest.approx(expected) and row["targets_missed"] == 0
    fake = tmp_path / "marxan"
    fake.write_text("#!/bin/sh\ngrep -q '^BLM 3.0$' \"$1\" || exit 3\n! grep -q MATRIXSPORDERNAME \"$1\" || exit 4\n"
                    "printf '\"Run_Number\",\"Score\",\"Cost\",\"Missing_Values\"\\n1,30,20,0\\n2,40,10,1\\n' "
                    "> output/output_sum.csv\n")
    fake.chmod(0o755)
    row = bench.run_marxan(fake, folder / "input.dat", 3.0, 2, 1000)
    assert row["best"] == 30 and row["mean"] == 35 and row["runs"] == 2 and row["runs_missing"] == 1
    # the side-by-side table from the CSV: rows of the BLM values run replace the same BLM's, the rest are kept
    optiland_rows = [{**bench.run_optiland(folder / "input.dat", 3.0, gap, 60.0, 1), "when": "now"}
                     for gap in (0.01, 0.0)]
    marxan_row = {**row, "above_optimum": (row["best"] - 28.0) / 28.0}
    out = tmp_path / "marxan.csv"
    bench.write([{"blm": 3.0, "tool": "optiland", "setting": "gap 0", "status": "time_limit", "objective": 99.0,
                  "gap": 0.5, "time_s": 9.0}, {"blm": 0.0, "tool": "marxan", "note": "not run"}], out)
    kept = [r for r in bench.read(out) if r["blm"] != 3.0]
    bench.write(sorted(kept + optiland_rows + [marxan_row], key=lambda r: r["blm"]), out)
    lines = bench.table(bench.read(out)).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| 0 | not run | not run | not run | not run |")
    cells = [c.strip() for c in lines[3].split("|")[1:-1]]
    assert cells[0] == "3" and cells[2].endswith("s: 28 (boundary 4)") and "99" not in cells[2]
    assert cells[3].startswith("30 (+7.14% vs optimum), 2 runs in ") and cells[3].endswith("1 missing a target")
    assert cells[4] == "35"


def test_proof_benchmark_model_is_the_hard_target_problem(tmp_path: Path) -> None:
    """benchmarks/marxan_proof.py's plain model (locked units eliminated, three boundary linearisations) has the
    optimum computed by hand for test_side_by_side_benchmark_runs_both_tools's four units, and its fixing by
    probing never fixes a unit against that optimum."""
    bench = _benchmark("marxan_proof.py")
    folder = _four_unit_set(tmp_path)
    for blm, expected in ((0.0, 16.0), (3.0, 28.0)):
        for form in ("abs", "prioritizr", "prioritizr+"):
            lp, n, targets = bench.build(folder / "input.dat", blm, form)
            assert (n, targets) == (3, 1)
            h = bench.highs(lp)
            h.run()
            assert h.getInfo().objective_function_value == pytest.approx(expected)
        x = np.rint(h.getSolution().col_value[:n])
        rows, fixed = bench.fixing(lp, n, expected + 1e-9)
        assert [r["measure"] for r in rows] == ["fixed by reduced cost", "fixed by probing"]
        assert rows[-1]["value"] == len(fixed) and fixed  # the unique optimum: every unit is proven
        assert all(x[k] == v for k, v in fixed.items())  # and at its value in the optimum
