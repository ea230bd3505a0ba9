"""Pareto fronts (optiland.analysis.pareto): textbook multi-objective programs with fronts known or enumerated by
brute force,
the land-use adapter against the enumeration of every plan of tiny instances (tests/bruteforce.py), the solves the
bypass, early exit and flag array save, and the `pareto` and `solve --from-front` commands end to end.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from typer.testing import CliRunner

from optiland.analysis.pareto import Front, front, knee_and_ideal
from optiland.cli import app
from optiland.mip.solver import SolverOptions
from tests.bruteforce import prepare_tiny, scan
from tests.test_bruteforce import ALL_ACTIVE, INSTANCES, OVERRIDES

EXACT = SolverOptions(mip_rel_gap=0, time_limit=30)
runner = CliRunner()


def _nondominated(values: np.ndarray, senses: list[str]) -> set[tuple[int, ...]]:
    """The distinct nondominated rows of an integer table, by brute force."""
    sign = np.array([1 if s == "max" else -1 for s in senses])
    g = np.unique(values, axis=0) * sign
    keep = [i for i in range(len(g)) if not ((g >= g[i]).all(axis=1) & (g > g[i]).any(axis=1)).any()]
    return {tuple(int(v) for v in row * sign) for row in g[keep]}


def _found(result: Front) -> set[tuple[int, ...]]:
    values = np.rint(result.table[result.names].to_numpy(dtype=float)).astype(int)
    assert np.allclose(result.table[result.names].to_numpy(dtype=float), values, atol=1e-5)
    return {tuple(int(v) for v in row) for row in values}


# ------------------------------------------------------------------------------------------------------------
# Textbook problems


def _mavrotas(integer: bool) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    domain = pyo.NonNegativeIntegers if integer else pyo.NonNegativeReals
    m.x1 = pyo.Var(domain=domain, bounds=(0, 20))
    m.x2 = pyo.Var(domain=domain, bounds=(0, 40))
    m.c = pyo.Constraint(expr=5 * m.x1 + 4 * m.x2 <= 200)
    return m


def test_mavrotas_molp_payoff_and_front() -> None:
    """The bi-objective LP of Mavrotas (2009), "Effective implementation of the epsilon-constraint method in
    multi-objective mathematical programming problems", Appl. Math. Comput. 213:455-465, section 4 (also the first
    example of pyaugmecon): max x1, max 3 x1 + 4 x2 s.t. x1 <= 20, x2 <= 40, 5 x1 + 4 x2 <= 200. The paper's
    lexicographic payoff table is [[20, 160], [8, 184]]; the front is the segment f2 = 200 - 2 f1, 8 <= f1 <= 20."""
    m = _mavrotas(integer=False)
    result = front(m, {"f1": m.x1, "f2": 3 * m.x1 + 4 * m.x2}, {"f1": "max", "f2": "max"}, points=5, options=EXACT)
    assert result.payoff.to_numpy() == pytest.approx(np.array([[20, 160], [8, 184]]), abs=1e-4)
    table = result.table.sort_values("f2")
    assert table["f2"].to_numpy() == pytest.approx([160, 166, 172, 178, 184], abs=1e-4)  # evenly spread
    assert table["f1"].to_numpy() == pytest.approx([20, 17, 14, 11, 8], abs=1e-4)
    assert table["marginal_rate"].dropna().to_numpy() == pytest.approx(-2.0, abs=1e-4)
    assert not list(m.component_objects(pyo.Block, descend_into=False))  # the adapter's block is gone again


def test_mavrotas_integer_exact_with_bypass() -> None:
    """The same problem with integer x1, x2 (the MOIP reading of Mavrotas 2009's example): unit steps on f2 give
    every nondominated point, enumerated here over x1 in 0..20, x2 in 0..40; the bypass skips the grid points
    that return the same solution, so fewer solves than grid points."""
    m = _mavrotas(integer=True)
    result = front(m, {"f1": m.x1, "f2": 3 * m.x1 + 4 * m.x2}, {"f1": "max", "f2": "max"}, steps={"f2": 1},
                   options=EXACT)
    plans = np.array([(x1, 3 * x1 + 4 * x2) for x1 in range(21) for x2 in range(41) if 5 * x1 + 4 * x2 <= 200])
    expected = _nondominated(plans, ["max", "max"])
    assert _found(result) == expected
    assert result.grid_points == 25  # f2 from 160 to 184
    assert result.solves == len(expected) < result.grid_points  # one solve per point: the bypass skips the rest
    assert result.skipped == result.grid_points - result.solves and not result.capped


def _knapsack(profits: np.ndarray, weights: np.ndarray, capacity: int) -> tuple[pyo.ConcreteModel, dict]:
    m = pyo.ConcreteModel()
    n = profits.shape[1]
    m.I = pyo.RangeSet(0, n - 1)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    m.capacity = pyo.Constraint(expr=sum(int(weights[i]) * m.x[i] for i in m.I) <= capacity)
    objectives = {f"f{k + 1}": sum(int(profits[k, i]) * m.x[i] for i in m.I) for k in range(len(profits))}
    return m, objectives


def _knapsack_front(profits: np.ndarray, weights: np.ndarray, capacity: int) -> set[tuple[int, ...]]:
    n = profits.shape[1]
    choices = np.array(list(itertools.product([0, 1], repeat=n)))
    feasible = choices[choices @ weights <= capacity]
    return _nondominated(feasible @ profits.T, ["max"] * len(profits))


def test_biobjective_knapsack_exact() -> None:
    """A bi-objective 0-1 knapsack, the test family of Mavrotas & Florios (2013), "An improved version of the
    augmented epsilon-constraint method (AUGMECON2) for finding the exact Pareto set in multi-objective integer
    programming problems", Appl. Math. Comput. 219:9652-9669 (there 2kp50 ... 2kp500 of Zitzler & Thiele 1999;
    here a random 14-item instance whose front is enumerated over all 2^14 subsets)."""
    rng = np.random.default_rng(1)
    first = rng.integers(1, 30, size=14)
    second = np.clip(31 - first + rng.integers(-4, 5, size=14), 1, None)  # conflicting: a front of 20 points
    profits, weights = np.vstack([first, second]), rng.integers(5, 40, size=14)
    capacity = int(weights.sum() // 2)
    m, objectives = _knapsack(profits, weights, capacity)
    result = front(m, objectives, {"f1": "max", "f2": "max"}, steps={"f2": 1}, options=EXACT)
    expected = _knapsack_front(profits, weights, capacity)
    assert _found(result) == expected and len(expected) == 20
    assert result.solves == len(expected) < result.grid_points  # 20 solves for 49 grid points


def test_three_objective_knapsack_exact_and_flag_array() -> None:
    """A three-objective 0-1 knapsack (the 3kp family of Mavrotas & Florios 2013, after Zitzler & Thiele 1999; a
    random 10-item instance enumerated over all subsets). AUGMECON2 with AUGMECON-R's flag array (Nikas et al.
    2020, "A robust augmented epsilon-constraint method (AUGMECON-R) for finding exact solutions of
    multi-objective linear programming problems", Oper. Res. Int. J. 22:1291-1332) and the classic nested
    AUGMECON2 loop both find the whole set; the flag array needs far fewer solves."""
    rng = np.random.default_rng(2)
    first, second = rng.integers(1, 10, size=10), rng.integers(1, 10, size=10)
    third = np.clip(11 - (first + second) // 2 + rng.integers(-1, 2, size=10), 1, None)  # conflicts with both
    profits, weights = np.vstack([first, second, third]), rng.integers(1, 10, size=10)
    capacity = int(weights.sum() // 2)
    m, objectives = _knapsack(profits, weights, capacity)
    expected = _knapsack_front(profits, weights, capacity)
    senses = {k: "max" for k in objectives}
    flagged = front(m, objectives, senses, steps={"f2": 1, "f3": 1}, options=EXACT)
    classic = front(m, objectives, senses, method="augmecon2-classic", steps={"f2": 1, "f3": 1}, options=EXACT)
    assert _found(flagged) == expected == _found(classic)
    assert flagged.grid_points == classic.grid_points > 1000
    assert flagged.solves < classic.solves / 3 < classic.grid_points / 3
    assert len(expected) == 8
    assert classic.infeasible_solves > 0 and flagged.infeasible_solves > 0  # early exits
    assert any("estimate" in note for note in flagged.notes)


def test_biobjective_assignment_exact_minimised() -> None:
    """A bi-objective assignment problem (minimise two costs; the classic MOCO benchmark of Przybylski, Gandibleux &
    Ehrgott 2008, Eur. J. Oper. Res. 185:509-533; a random 5 x 5 instance enumerated over all 120 permutations)."""
    rng = np.random.default_rng(5)
    n = 5
    cost = rng.integers(1, 20, size=(2, n, n))
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, n - 1)
    m.x = pyo.Var(m.I, m.I, domain=pyo.Binary)
    m.row = pyo.Constraint(m.I, rule=lambda m, i: sum(m.x[i, j] for j in m.I) == 1)
    m.col = pyo.Constraint(m.I, rule=lambda m, j: sum(m.x[i, j] for i in m.I) == 1)
    objectives = {f"c{k + 1}": sum(int(cost[k, i, j]) * m.x[i, j] for i in m.I for j in m.I) for k in range(2)}
    result = front(m, objectives, {"c1": "min", "c2": "min"}, steps={"c2": 1}, options=EXACT)
    plans = np.array([[sum(cost[k, i, p[i]] for i in range(n)) for k in range(2)]
                      for p in itertools.permutations(range(n))])
    assert _found(result) == _nondominated(plans, ["min", "min"])
    assert result.payoff.loc["c1", "c1"] == pytest.approx(plans[:, 0].min())


def test_cap_cuts_and_says_so() -> None:
    m = _mavrotas(integer=True)
    result = front(m, {"f1": m.x1, "f2": 3 * m.x1 + 4 * m.x2}, {"f1": "max", "f2": "max"}, steps={"f2": 1},
                   options=EXACT, max_points=4)
    assert result.capped and result.solves == 4 and len(result.table) == 4
    assert any("cap" in note for note in result.notes)


def _biobjective_knapsack(seed: int = 1, items: int = 14) -> tuple[pyo.ConcreteModel, dict, set[tuple[int, ...]]]:
    rng = np.random.default_rng(seed)
    first = rng.integers(1, 30, size=items)
    second = np.clip(31 - first + rng.integers(-4, 5, size=items), 1, None)
    profits, weights = np.vstack([first, second]), rng.integers(5, 40, size=items)
    capacity = int(weights.sum() // 2)
    m, objectives = _knapsack(profits, weights, capacity)
    return m, objectives, _knapsack_front(profits, weights, capacity)


def _hull_vertices(points: set[tuple[int, ...]]) -> set[tuple[int, ...]]:
    """The extreme supported points of a bi-objective (max, max) front: the vertices of its upper convex hull
    (Andrew's monotone chain; collinear points are not vertices)."""
    hull: list[tuple[int, ...]] = []
    for q in sorted(points):
        while len(hull) >= 2:
            (ax, ay), (bx, by) = hull[-2], hull[-1]
            if (bx - ax) * (q[1] - ay) - (by - ay) * (q[0] - ax) >= 0:  # not a right turn: b is not a vertex
                hull.pop()
            else:
                break
        hull.append(q)
    return set(hull)


def test_weighted_sum_finds_every_extreme_supported_point_and_says_what_it_misses() -> None:
    """Weighted sums (Aneja & Nair's dichotomic scheme) find every vertex of the front's convex hull, enumerated
    here, and nothing off the front; the unsupported points in the hull's dents are missed, and the result says so."""
    m, objectives, expected = _biobjective_knapsack()
    result = front(m, objectives, {"f1": "max", "f2": "max"}, method="weighted-sum", points=50, options=EXACT)
    found = _found(result)
    vertices = _hull_vertices(expected)
    assert vertices <= found <= expected
    assert len(found) < len(expected)  # this front has unsupported points
    assert result.method == "weighted-sum" and any("supported points only" in note for note in result.notes)
    assert set(result.table["found_by"].str.split().str[0]) == {"weights"}
    capped = front(m, objectives, {"f1": "max", "f2": "max"}, method="weighted-sum", points=3, options=EXACT)
    assert capped.solves == 3 and _found(capped) <= expected


def test_weighted_sum_three_objectives_stays_on_the_front() -> None:
    rng = np.random.default_rng(2)
    first, second = rng.integers(1, 10, size=10), rng.integers(1, 10, size=10)
    third = np.clip(11 - (first + second) // 2 + rng.integers(-1, 2, size=10), 1, None)
    profits, weights = np.vstack([first, second, third]), rng.integers(1, 10, size=10)
    capacity = int(weights.sum() // 2)
    m, objectives = _knapsack(profits, weights, capacity)
    expected = _knapsack_front(profits, weights, capacity)
    result = front(m, objectives, {k: "max" for k in objectives}, method="weighted-sum", points=15, options=EXACT)
    assert result.solves == 15 and 2 <= len(result.table) and _found(result) <= expected


def test_lexicographic_mode_gives_the_extremes() -> None:
    m, objectives, expected = _biobjective_knapsack()
    result = front(m, objectives, {"f1": "max", "f2": "max"}, method="lexicographic", options=EXACT)
    best = {max(expected), max(expected, key=lambda q: (q[1], q[0]))}  # each objective's lexicographic optimum
    assert _found(result) == best and result.payoff_solves == 0 and result.solves == 4
    assert result.payoff.loc["f1", "f1"] == max(q[0] for q in expected)
    assert set(result.table["found_by"]) == {"lexicographic f1 > f2", "lexicographic f2 > f1"}
    assert any("extreme points" in note for note in result.notes)


def test_refinement_adds_points_where_the_front_bends() -> None:
    """Three grid points, then four refining solves: every point is on the enumerated front, and the refined
    front has more of it than the plain grid, each refining solve between two neighbours."""
    m, objectives, expected = _biobjective_knapsack()
    senses = {"f1": "max", "f2": "max"}
    plain = front(m, objectives, senses, points=3, options=EXACT)
    refined = front(m, objectives, senses, points=3, refine=4, options=EXACT)
    assert _found(plain) < _found(refined) <= expected
    assert refined.solves == plain.solves + 4
    assert (refined.table["found_by"] == "refine").sum() == len(refined.table) - len(plain.table) > 0
    with pytest.raises(ValueError, match="refine"):
        front(m, objectives, senses, steps={"f2": 1}, refine=2, options=EXACT)


def test_knee_and_ideal_picks() -> None:
    g = np.array([[0.0, 10.0], [3.5, 9.0], [6.0, 6.0], [10.0, 0.0]])
    knee, ideal = knee_and_ideal(g)
    assert knee == 1  # farthest beyond the line between (0, 10) and (10, 0): 0.35 + 0.9 > 0.6 + 0.6
    assert ideal == 2  # nearest to (10, 10): 0.57 < 0.66 normalised
    assert knee_and_ideal(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])) == (2, 2)


# ------------------------------------------------------------------------------------------------------------
# The land-use adapter against the enumeration of every plan


def _step(nondominated: np.ndarray, column: int) -> float:
    """A grid step finer than the smallest difference between two values of the front: every point is hit."""
    return float(np.diff(np.unique(nondominated[:, column])).min() / 2)


@pytest.mark.parametrize("instance", sorted(INSTANCES))
def test_land_use_front_equals_enumeration(instance: str) -> None:
    parcels, villages = INSTANCES[instance]
    prepared = prepare_tiny(parcels, villages, "income", ALL_ACTIVE, OVERRIDES)
    enumerated = scan(prepared.problem, collect=[("carbon", "max"), ("income", "max")]).nondominated
    assert len(enumerated) >= 5
    result = front(prepared.problem, ["carbon", "income"], steps={"income": _step(enumerated, 1)}, options=EXACT)
    found = result.table[["carbon", "income"]].to_numpy(dtype=float)
    assert len(found) == len(enumerated)
    order = np.lexsort(found.T[::-1]), np.lexsort(enumerated.T[::-1])
    assert found[order[0]] == pytest.approx(enumerated[order[1]], rel=1e-6, abs=1e-4)
    assert result.solves == len(enumerated) < result.grid_points / 4  # one solve per point
    for point, solution in result.solutions.items():  # each point's plan has the point's values
        rows = solution.chosen_rows()
        assert len(rows) == prepared.problem.n_parcels
        carbon = prepared.problem.allowed["gain_carbon"].to_numpy()[rows].sum()
        assert carbon == pytest.approx(result.point(point)["carbon"], abs=1e-6)


def test_land_use_index_and_cost_front() -> None:
    """The index uses the G*_s the adapter solved first; scored with those, the enumeration's front is the same.
    Cost is minimised."""
    parcels, villages = INSTANCES["one"]
    weights = {"carbon": 0.4, "soil": 0.3, "water": 0.2, "habitat": 0.1}
    prepared = prepare_tiny(parcels, villages, "ecosystem_services", ALL_ACTIVE, OVERRIDES, weights)
    result = front(prepared.problem, ["ecosystem_services", "cost"], steps={"cost": 1.0}, options=EXACT)
    from optiland.analysis.pareto import LandUseFrontModel  # the scales, as the adapter finds them

    scales = LandUseFrontModel(prepared.problem, ["ecosystem_services", "cost"], EXACT).es_scale
    enumerated = scan(prepared.problem, es_scale=scales,
                      collect=[("ecosystem_services", "max"), ("cost", "min")]).nondominated
    found = result.table[["ecosystem_services", "cost"]].to_numpy(dtype=float)
    assert len(found) == len(enumerated)
    order = np.lexsort(found.T[::-1]), np.lexsort(enumerated.T[::-1])
    assert found[order[0]] == pytest.approx(enumerated[order[1]], rel=1e-6, abs=1e-6)


# ------------------------------------------------------------------------------------------------------------
# The commands


@pytest.fixture(scope="module")
def small_front(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("pareto")
    result = runner.invoke(app, ["generate", "--parcels", "120", "--villages", "4", "--seed", "7",
                                 "--out", str(base / "inst")])
    assert result.exit_code == 0, result.output
    scenario = base / "inst" / "scenario.toml"
    out = base / "front"
    result = runner.invoke(app, ["pareto", str(scenario), "--objectives", "ecosystem_services,income",
                                 "--points", "5", "--gap", "0.01", "--time-limit", "600", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "nondominated points" in result.output
    return scenario, out


def test_pareto_writes_the_four_files(small_front: tuple[Path, Path]) -> None:
    _, out = small_front
    assert sorted(p.name for p in out.iterdir()) == [".optiland", "front.csv", "front.png", "plans.parquet",
                                                    "run.json"]
    assert (out / "front.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(out / "front.csv", encoding="utf-8-sig")
    assert {"plan_id", "ecosystem_services", "income", "solve_seconds", "gap", "marginal_rate"} <= set(table.columns)
    assert 2 <= len(table) <= 5
    g = table[["ecosystem_services", "income"]].to_numpy()
    for i in range(len(g)):  # nothing dominated
        assert not ((g >= g[i]).all(axis=1) & (g > g[i] + 1e-9).any(axis=1)).any()
    assert (out / "front.png").read_bytes().startswith(b"\x89PNG")
    plans = pd.read_parquet(out / "plans.parquet")
    assert set(plans["point"]) == set(table["plan_id"])
    parcels = plans[plans["kind"] == "parcel"]
    assert (parcels.groupby("point").size() == 120).all()
    assert (plans[plans["kind"] == "village"].groupby("point").size() == 4).all()
    run = json.loads((out / "run.json").read_text())
    assert run["objectives"] == ["ecosystem_services", "income"] and run["knee"] in set(table["plan_id"])
    assert set(run["payoff"]) == {"ecosystem_services", "income"} and run["reference"]["values"]
    assert set(run["input_hashes"]) == {"parcels", "villages", "scenario"}
    assert run["baseline"]["ecosystem_services"] == 0.0 and run["baseline"]["income"] > 0
    assert run["solves"] <= run["grid_points"] == 5 and len(run["points"]) == len(table)


def test_solve_from_front_writes_a_plan_check_accepts(small_front: tuple[Path, Path], tmp_path: Path) -> None:
    scenario, out = small_front
    plan_dir = tmp_path / "knee"
    result = runner.invoke(app, ["solve", str(scenario), "--from-front", str(out), "--pick", "knee",
                                 "--out", str(plan_dir)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in plan_dir.iterdir()) == [".optiland", "plan.gpkg", "run.json", "townships.csv",
                                                         "villages.csv"]
    result = runner.invoke(app, ["check", str(plan_dir)])
    assert result.exit_code == 0, result.output
    run = json.loads((plan_dir / "run.json").read_text())
    front_run = json.loads((out / "run.json").read_text())
    assert run["front"]["point"] == front_run["knee"] and run["front"]["pick"] == "knee"
    point = next(p for p in front_run["points"] if p["plan_id"] == front_run["knee"])
    assert run["objective"]["value"] == pytest.approx(point["ecosystem_services"], rel=1e-5)
    assert run["totals"]["income"] == pytest.approx(point["income"], rel=1e-6)
    plans = pd.read_parquet(out / "plans.parquet")
    chosen = plans[(plans["point"] == front_run["knee"]) & (plans["kind"] == "parcel")]
    import geopandas as gpd

    written = gpd.read_file(plan_dir / "plan.gpkg", layer="parcels")[["parcel_id", "option", "variant"]]
    merged = written.merge(chosen.rename(columns={"id": "parcel_id"}).astype({"parcel_id": str}), on="parcel_id")
    assert len(merged) == 120
    assert (merged["option_x"] == merged["option_y"].astype(str)).all()
    result = runner.invoke(app, ["solve", str(scenario), "--from-front", str(out), "--pick", "999",
                                 "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no point 999" in result.output


def test_pareto_rejects_unknown_objectives(small_front: tuple[Path, Path], tmp_path: Path) -> None:
    scenario, _ = small_front
    result = runner.invoke(app, ["pareto", str(scenario), "--objectives", "income,beauty", "--out",
                                 str(tmp_path / "x")])
    assert result.exit_code == 2 and "beauty" in result.output
    result = runner.invoke(app, ["pareto", str(scenario), "--objectives", "income", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2


def test_pareto_methods_from_the_command_line(small_front: tuple[Path, Path], tmp_path: Path) -> None:
    """--method weighted-sum is labelled as supported points only; --refine adds points; a bad --step is named."""
    scenario, _ = small_front
    common = ["--objectives", "ecosystem_services,income", "--gap", "0.01", "--time-limit", "600"]
    out = tmp_path / "ws"
    result = runner.invoke(app, ["pareto", str(scenario), *common, "--method", "weighted-sum", "--points", "6",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "supported points only" in result.output
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == "weighted-sum" and 2 <= len(run["points"]) and run["solves"] <= 6
    assert run["backend"] in ("pyomo", "matrix")
    assert all(p["found_by"].startswith("weights") for p in run["points"])
    out = tmp_path / "refined"
    result = runner.invoke(app, ["pareto", str(scenario), *common, "--points", "3", "--refine", "2",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "front.csv", encoding="utf-8-sig")
    # at this gap the grid's tightest point is the income row's plan of the payoff table, labelled so
    assert set(table["found_by"]) <= {"grid", "refine", "payoff row income (grid top)"} and len(table) >= 2
    result = runner.invoke(app, ["pareto", str(scenario), *common, "--step", "income=abc", "--out",
                                 str(tmp_path / "bad")])
    assert result.exit_code == 2 and "income=abc" in result.output and not (tmp_path / "bad").exists()


# ------------------------------------------------------------------------------------------------------------
# The generic engine: the user's model left as it was, solve errors, exact mode, nadir bounds, the sparse flags


def _own_objective_knapsack() -> tuple[pyo.ConcreteModel, dict]:
    """The 14-item bi-objective knapsack with an objective of its own (max f1 + 2 f2) and a row the user added."""
    m, objectives, _ = _biobjective_knapsack()
    m.own = pyo.Objective(expr=objectives["f1"] + 2 * objectives["f2"], sense=pyo.maximize)
    m.few = pyo.Constraint(expr=sum(m.x[i] for i in m.I) <= 9)
    return m, objectives


def _solve_own(m: pyo.ConcreteModel) -> tuple[float, list[float]]:
    pyo.SolverFactory("appsi_highs").solve(m)
    return pyo.value(m.own), [round(pyo.value(m.x[i])) for i in m.I]


def _components(m: pyo.ConcreteModel) -> list[tuple[str, str, bool]]:
    return [(c.name, c.ctype.__name__, c.active) for c in m.component_objects(descend_into=True)]


def test_front_leaves_the_model_as_it_was() -> None:
    """Issue 25: front() used to leave its block (an active objective, rows sigma f - s = 0) in the model, so that a
    later solve of the model raised "Multiple active objectives found". Now the model solves to the same answer."""
    m, objectives = _own_objective_knapsack()
    before, components = _solve_own(m), _components(m)
    result = front(m, objectives, {"f1": "max", "f2": "max"}, options=EXACT, exact=True)
    assert len(result.table) >= 5
    assert _components(m) == components
    assert _solve_own(m) == before


def test_front_leaves_the_model_as_it_was_when_it_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from optiland.analysis import front_engine

    m, objectives = _own_objective_knapsack()
    before, components = _solve_own(m), _components(m)

    def broken(*args: object, **kwargs: object) -> None:
        assert any(c[0].startswith("_pareto") for c in _components(m))  # the block is there while the front runs
        raise RuntimeError("interrupted")

    monkeypatch.setattr(front_engine, "_augmecon", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        front(m, objectives, {"f1": "max", "f2": "max"}, options=EXACT, exact=True)
    assert _components(m) == components
    assert _solve_own(m) == before


def test_a_component_named_pareto_is_kept() -> None:
    m, objectives = _own_objective_knapsack()
    m._pareto = pyo.Constraint(expr=m.x[0] + m.x[1] <= 1)  # the user's own, not the adapter's
    components = _components(m)
    result = front(m, objectives, {"f1": "max", "f2": "max"}, options=EXACT, exact=True)
    assert _components(m) == components
    assert all(row["x[0]"] + row["x[1]"] <= 1 for row in result.solutions.values())


def _with_errors(monkeypatch: pytest.MonkeyPatch, fails: object) -> list[tuple[str, str]]:
    """PyomoFrontModel.solve answers "Solve error" (no plan) whenever fails(model, options) is true; returns the
    log of (presolve, status) of every solve."""
    from optiland.analysis.front_model import PyomoFrontModel
    from optiland.mip.solver import SolveResult, Status

    log: list[tuple[str, str]] = []
    solve = PyomoFrontModel.solve

    def patched(self: PyomoFrontModel, options: SolverOptions) -> SolveResult:
        if fails(self, options):  # type: ignore[operator]
            self.x = None
            log.append((options.presolve, "error"))
            return SolveResult(Status.ERROR, None, None, None, None, 0.0, "Solve error")
        result = solve(self, options)
        log.append((options.presolve, result.status.value))
        return result

    monkeypatch.setattr(PyomoFrontModel, "solve", patched)
    return log


def test_a_solve_error_is_solved_again_not_taken_for_infeasible(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25: HiGHS 1.16 with presolve sometimes answers a point with "Solve error"; the engine took it for "no
    plan" and went on. Here every grid solve with presolve on fails: each is solved again without presolve, and
    the front is still the complete enumerated set."""
    from optiland.analysis.front_model import PyomoFrontModel

    m, objectives, expected = _biobjective_knapsack()

    def grid_point(model: PyomoFrontModel, options: SolverOptions) -> bool:
        return options.presolve == "on" and np.isfinite(model.row_lower[model._eps["f2"]])

    log = _with_errors(monkeypatch, grid_point)
    result = front(m, objectives, {"f1": "max", "f2": "max"}, options=EXACT, exact=True)
    assert _found(result) == expected
    errors = [i for i, entry in enumerate(log) if entry == ("on", "error")]
    assert len(errors) == result.solves > 0
    assert all(log[i + 1][0] == "off" and log[i + 1][1] in ("optimal", "infeasible") for i in errors)


def test_a_solve_error_that_persists_stops_the_front_naming_the_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from optiland.analysis.front_engine import SolveError
    from optiland.analysis.front_model import PyomoFrontModel

    m, objectives, _ = _biobjective_knapsack()
    components = _components(m)

    def beyond_130(model: PyomoFrontModel, options: SolverOptions) -> bool:  # f2 runs from 110 to 158
        i = model._eps["f2"]
        return bool(np.isfinite(model.row_lower[i]) and model.row_lower[i] / model._eps_scale["f2"] > 130)

    log = _with_errors(monkeypatch, beyond_130)
    with pytest.raises(SolveError, match=r"grid point f2 >= 13\d.*solved 3 times"):
        front(m, objectives, {"f1": "max", "f2": "max"}, options=EXACT, exact=True)
    assert [p for p, status in log[-3:]] == ["on", "off", "off"] and {s for _, s in log[-3:]} == {"error"}
    assert _components(m) == components


def test_exact_mode_sets_zero_gap_and_the_plain_mip(monkeypatch: pytest.MonkeyPatch) -> None:
    """exact=True: a zero gap and strategy "mip" for a generic model, whatever the options said; unit steps on the
    integer-valued constrained objective; the complete set. Strategy "auto" on a generic model never runs the
    LP-and-repair step (made for the land-use model) though this assignment model has rows of binaries summing to
    one."""
    from optiland.analysis.front_model import PyomoFrontModel
    from optiland.mip import solver

    rng = np.random.default_rng(5)
    n = 5
    cost = rng.integers(1, 20, size=(2, n, n))
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, n - 1)
    m.x = pyo.Var(m.I, m.I, domain=pyo.Binary)
    m.row = pyo.Constraint(m.I, rule=lambda m, i: sum(m.x[i, j] for j in m.I) == 1)
    m.col = pyo.Constraint(m.I, rule=lambda m, j: sum(m.x[i, j] for i in m.I) == 1)
    objectives = {f"c{k + 1}": sum(int(cost[k, i, j]) * m.x[i, j] for i in m.I for j in m.I) for k in range(2)}
    seen: list[tuple[float, float, str]] = []
    highs: list[dict] = []
    solve = PyomoFrontModel.solve

    def record(self: PyomoFrontModel, options: SolverOptions) -> object:
        seen.append((options.mip_rel_gap, options.mip_abs_gap, options.strategy))
        highs.append(options.highs)
        return solve(self, options)

    monkeypatch.setattr(PyomoFrontModel, "solve", record)
    repairs: list[int] = []
    monkeypatch.setattr(solver, "_repair", lambda *a, **k: repairs.append(1))
    loose = SolverOptions(mip_rel_gap=0.05, strategy="auto", time_limit=30)
    result = front(m, objectives, {"c1": "min", "c2": "min"}, options=loose, exact=True)
    assert set(seen) == {(0.0, 0.0, "mip")} and all(h["mip_heuristic_run_rins"] is False for h in highs)
    plans = np.array([[sum(cost[k, i, p[i]] for i in range(n)) for k in range(2)]
                      for p in itertools.permutations(range(n))])
    assert _found(result) == _nondominated(plans, ["min", "min"])
    assert result.steps == {"c2": 1.0} and any("unit steps" in note for note in result.notes)
    front(m, objectives, {"c1": "min", "c2": "min"}, options=loose, points=3)  # auto without exact: no repair
    assert not repairs and "auto" in {s for *_, s in seen}


def test_nadir_bounds_and_sparse_flags_on_three_objectives() -> None:
    """With the true nadir given, the three-objective front is complete with no "safe" solves, on a grid far
    smaller than the safe one; the flag array holds a few entries where the dense array had a cell per grid point.
    A nadir above the true one drops exactly the points worse than it."""
    rng = np.random.default_rng(2)
    first, second = rng.integers(1, 10, size=10), rng.integers(1, 10, size=10)
    third = np.clip(11 - (first + second) // 2 + rng.integers(-1, 2, size=10), 1, None)
    profits, weights = np.vstack([first, second, third]), rng.integers(1, 10, size=10)
    capacity = int(weights.sum() // 2)
    m, objectives = _knapsack(profits, weights, capacity)
    expected = _knapsack_front(profits, weights, capacity)
    senses = {k: "max" for k in objectives}
    true_nadir = {k: min(q[i] for q in expected) for i, k in enumerate(objectives) if k != "f1"}
    safe = front(m, objectives, senses, options=EXACT, exact=True)
    given = front(m, objectives, senses, options=EXACT, exact=True, nadir=true_nadir)
    assert _found(safe) == expected == _found(given)
    assert given.payoff_solves == safe.payoff_solves - 2 and given.grid_points < safe.grid_points / 2
    assert 0 < safe.flag_entries_peak < safe.grid_points / 20
    assert any("nadir given" in note for note in given.notes)
    tighter = {"f2": true_nadir["f2"] + 3, "f3": true_nadir["f3"]}
    cut = front(m, objectives, senses, options=EXACT, exact=True, nadir=tighter)
    assert _found(cut) == {q for q in expected if q[1] >= tighter["f2"]}
    with pytest.raises(ValueError, match="nadir for f1"):
        front(m, objectives, senses, options=EXACT, nadir={"f1": 0})


def test_representation_grid_starts_every_point_from_the_previous_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two objectives in representation mode run from the tightest grid point down: every grid solve is handed a
    start plan that meets all its rows (the previous point's, under a looser bound), the first the payoff table's
    optimum there. Solved upwards, a previous plan never meets the next, tighter bound."""
    from optiland.analysis import front_model
    from optiland.mip.solver import is_plan

    m, objectives, expected = _biobjective_knapsack()
    starts: list[bool] = []
    solve_lp = front_model.solve_lp

    def record(lp: object, options: SolverOptions, start: object = None) -> object:
        starts.append(start is not None and is_plan(lp, start))  # type: ignore[arg-type]
        return solve_lp(lp, options, start=start)  # type: ignore[arg-type]

    monkeypatch.setattr(front_model, "solve_lp", record)
    result = front(m, objectives, {"f1": "max", "f2": "max"}, points=8, options=EXACT)
    grid = starts[result.payoff_solves:]
    assert len(grid) == result.solves == 8 and all(grid)
    assert _found(result) <= expected and len(result.table) >= 5


def test_exact_points_start_from_the_best_neighbour_of_the_last_plan() -> None:
    """Solved upwards (exact mode), the last plan breaks the next, tighter epsilon row; the start handed to the
    next point is then the best plan within one or two flipped binaries of it (and moves on from there while the
    objective improves): a plan of the new model at least as good as every such neighbour, enumerated here."""
    from optiland.analysis.front_model import PyomoFrontModel
    from optiland.mip.solver import is_plan

    m, objectives, _ = _biobjective_knapsack()
    adapter = PyomoFrontModel(m, objectives, {"f1": "max", "f2": "max"})
    try:
        adapter.set_objective({"f1": 200.0, "f2": 1.0})
        adapter.set_epsilon("f2", 0.0)
        options = SolverOptions(mip_rel_gap=0, mip_abs_gap=0, strategy="mip", time_limit=30)
        checked = 0
        while adapter.solve(options).x is not None and checked < 6:
            plan, g2 = adapter.x.copy(), adapter.values()["f2"]
            adapter.set_epsilon("f2", g2 + 1)
            lp = adapter.matrix()
            assert not is_plan(lp, adapter._start_slacks(plan))  # the last plan breaks the new row
            start = adapter._start()
            own = [j for j, v in enumerate(adapter.columns) if v.parent_block() is not adapter.block]
            binary = [j for j in own if lp.integer[j]]
            best = -np.inf
            for flips in itertools.chain(itertools.combinations(binary, 1), itertools.combinations(binary, 2)):
                y = plan.copy()
                y[list(flips)] = 1 - y[list(flips)]
                for k in adapter.names:
                    coefficients, constant = adapter._expression[k]
                    y[adapter._f[k]] = coefficients @ y + constant
                y = adapter._start_slacks(y)
                if is_plan(lp, y):
                    best = max(best, float(lp.c @ y))
            if np.isfinite(best):
                assert start is not None and is_plan(lp, start) and float(lp.c @ start) >= best - 1e-9
                checked += 1
        assert checked >= 3
    finally:
        adapter.remove()


def test_at_a_gap_the_payoff_rows_are_single_solves_and_the_grid_top_is_the_row_plan() -> None:
    """At a nonzero MIP gap each payoff row optimises its own objective only (two solves, not four), and the grid's
    tightest point of a two-objective representation front is the second row's plan, not solved again: four grid
    solves for five points. Every point is still on the front of Mavrotas's LP, f2 = 200 - 2 f1, both ends
    included."""
    m = _mavrotas(integer=False)
    gap = SolverOptions(mip_rel_gap=1e-4, time_limit=30)
    result = front(m, {"f1": m.x1, "f2": 3 * m.x1 + 4 * m.x2}, {"f1": "max", "f2": "max"}, points=5, options=gap)
    assert result.payoff_solves == 2 and result.solves == 4
    top = result.table[result.table["found_by"].str.contains("grid top")]
    assert len(top) == 1 and top["f2"].iloc[0] == pytest.approx(184) and top["f1"].iloc[0] == pytest.approx(8)
    assert result.table["f2"].to_numpy() == pytest.approx(200 - 2 * result.table["f1"].to_numpy(), abs=1e-4)
    assert result.table["f1"].max() == pytest.approx(20, abs=1e-4)
    assert any("payoff table at a MIP gap" in n for n in result.notes)
    assert any("tightest point" in n for n in result.notes)
