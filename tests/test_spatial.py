"""Spatial coherence: shared boundaries from geometry, the boundary penalty, locks and feature targets.

Adjacency is checked on hand-drawn grids and irregular polygons (T-junctions, corner-only contacts, holes) and
against a pair-by-pair shapely loop on random Voronoi cells. The penalised optimum is compared with an independent
enumeration of every plan of tiny grid instances, whose boundaries are written down by hand (not computed by
optiland.model.adjacency) and whose penalty is summed edge by edge.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from optiland.analysis.generate import build_instance
from optiland.check import check, check_plan
from optiland.errors import InfeasibleError, InputError
from optiland.io.catalog import load_catalog
from optiland.io.inputs import Inputs
from optiland.io.scenario import load_scenario
from optiland.model.adjacency import boundary_arrays, boundary_indices, cached_boundary_table, read_boundary_table
from optiland.model.backend import make_backend
from optiland.model.problem import build_problem
from optiland.model.spatial import neighbourhoods
from optiland.pipeline.results import make_plan
from optiland.pipeline.run import Prepared, solve_prepared, solver_options
from optiland.testing import SMALL_CATALOG, make_scenario
from tests.bruteforce import Best, parcels_table, plan_tables, villages_table

SIDE = 100.0  # metres: a 15-mu square parcel
GROUPS = {"keep": "production", "closure": "protection", "afforestation": "restoration", "forage": "production",
          "herbs": "production", "fruit": "production"}


# ------------------------------------------------------------------------------------------------------------
# Adjacency


def _edges(left: np.ndarray, right: np.ndarray, length: np.ndarray) -> dict[tuple[int, int], float]:
    return {(int(a), int(b)): round(float(c), 9) for a, b, c in zip(left, right, length, strict=True)}


@pytest.mark.parametrize("method", ["segments", "rings"])
def test_grid_of_squares_gives_rook_neighbours_and_outer_edges(method: str) -> None:
    # 3 columns x 2 rows of unit squares, numbered row by row: 0 1 2 / 3 4 5
    x, y = np.meshgrid(np.arange(3.0), np.arange(2.0))
    cells = shapely.box(x.ravel(), y.ravel(), x.ravel() + 1, y.ravel() + 1)
    found = _edges(*boundary_indices(cells, method=method))
    assert found == {(0, 1): 1.0, (1, 2): 1.0, (3, 4): 1.0, (4, 5): 1.0, (0, 3): 1.0, (1, 4): 1.0, (2, 5): 1.0,
                     (0, 0): 2.0, (1, 1): 1.0, (2, 2): 2.0, (3, 3): 2.0, (4, 4): 1.0, (5, 5): 2.0}


@pytest.mark.parametrize("method", ["segments", "rings"])
def test_irregular_polygons_t_junction_corner_contact_and_hole(method: str) -> None:
    big = shapely.box(0, 0, 2, 2)
    upper = shapely.box(2, 1, 3, 2)           # its corner (2, 1) lies on big's edge, not on a vertex of big
    lower = shapely.Polygon([(2, 0), (3, 0), (3, 1), (2, 1), (2, 0.5)])  # extra vertex on the shared edge
    corner = shapely.box(3, 2, 4, 3)          # touches `upper` at one point only
    triangle = shapely.Polygon([(0, 2), (2, 2), (1, 3)])
    ring = shapely.Polygon([(10, 10), (14, 10), (14, 14), (10, 14)], [[(11, 11), (13, 11), (13, 13), (11, 13)]])
    island = shapely.box(11, 11, 13, 13)      # fills the hole of `ring`
    cells = np.array([big, upper, lower, corner, triangle, ring, island])
    found = _edges(*boundary_indices(cells, method=method))
    assert found[(0, 1)] == 1.0 and found[(0, 2)] == 1.0 and found[(1, 2)] == 1.0
    assert found[(0, 4)] == 2.0
    assert (1, 3) not in found and (3, 4) not in found
    assert found[(5, 6)] == 8.0
    assert found[(0, 0)] == 4.0                               # the left and bottom sides
    assert found[(4, 4)] == round(2 * np.sqrt(2), 9)           # the two slanted sides
    assert found[(5, 5)] == 16.0 and (6, 6) not in found       # the island has no outer edge
    assert found[(3, 3)] == 4.0


@pytest.mark.parametrize("method", ["segments", "rings"])
def test_random_cells_match_a_pair_by_pair_loop(method: str) -> None:
    rng = np.random.default_rng(5)
    points = shapely.multipoints(rng.uniform(0, 100, (60, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=shapely.box(0, 0, 100, 100)))
    cells = shapely.intersection(cells, shapely.box(0, 0, 100, 100))
    left, right, length = boundary_indices(cells, method=method)
    found = _edges(left, right, length)
    expected = {}
    for a, b in itertools.combinations(range(len(cells)), 2):
        shared = shapely.intersection(cells[a].boundary, cells[b].boundary).length
        if shared > 1e-6:
            expected[(a, b)] = round(shared, 9)
    assert {k: v for k, v in found.items() if k[0] != k[1]} == pytest.approx(expected)
    outer = sum(v for k, v in found.items() if k[0] == k[1])
    assert outer == pytest.approx(400.0)  # the cells tile the square: their outer edges are its perimeter
    perimeters = shapely.length(cells).sum()
    assert 2 * sum(expected.values()) + outer == pytest.approx(perimeters)


def test_both_methods_agree_on_a_generated_layer() -> None:
    parcels, _, _ = build_instance(900, 1, 4, seed=7)
    geometry = parcels.geometry.to_numpy()
    by_segments = _edges(*boundary_indices(geometry))
    by_rings = _edges(*boundary_indices(geometry, method="rings"))
    assert by_segments.keys() == by_rings.keys() and len(by_segments) > 1700
    assert list(by_segments.values()) == pytest.approx(list(by_rings.values()), rel=1e-9)


def test_cache_is_keyed_by_the_file_hash(tmp_path: Path) -> None:
    x, y = np.meshgrid(np.arange(2.0), np.arange(2.0))
    cells = shapely.box(x.ravel(), y.ravel(), x.ravel() + 1, y.ravel() + 1)
    layer = tmp_path / "parcels.gpkg"
    layer.write_bytes(b"stand-in")
    first, note = cached_boundary_table(layer, "a" * 64, np.array(["a", "b", "c", "d"]), cells)
    assert "cached" in note and len(first) == 8
    again, note = cached_boundary_table(layer, "a" * 64, np.array(["a", "b", "c", "d"]), cells)
    assert "from cache" in note
    pd.testing.assert_frame_equal(first, again)
    _, note = cached_boundary_table(layer, "b" * 64, np.array(["a", "b", "c", "d"]), cells[:2])
    assert "computed" in note


def test_boundary_table_errors_name_line_column_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bound.dat"
    path.write_text("id1\tid2\tboundary\n1\t2\t5\n2\t9\t3\n3\t3\t-1\n")
    with pytest.raises(InputError) as caught:
        read_boundary_table(path)
    assert "line 4" in str(caught.value) and "boundary" in str(caught.value) and "-1" in str(caught.value)
    path.write_text("id1\tid2\tboundary\n1\t2\t5\n2\t9\t3\n2\t1\t1\n3\t3\t4\n")
    with pytest.raises(InputError) as caught:
        boundary_arrays(read_boundary_table(path), np.array(["1", "2", "3"]), str(path))
    assert "line 3" in str(caught.value) and "id2" in str(caught.value) and "9" in str(caught.value)
    left, right, length, outer = boundary_arrays(read_boundary_table(path).iloc[[0, 2, 3]],
                                                 np.array(["1", "2", "3"]))
    assert list(zip(left, right, length, strict=True)) == [(0, 1, 6.0)]  # (1,2) and (2,1) add up
    assert list(outer) == [0.0, 0.0, 4.0]


# ------------------------------------------------------------------------------------------------------------
# Tiny grid instances


def grid_inputs(parcels: pd.DataFrame, columns: int) -> Inputs:
    """Parcels laid out as SIDE-metre squares, row by row, `columns` to a row (area_mu must be 15)."""
    assert np.allclose(parcels["area_mu"], 15.0)  # a hectare (SIDE x SIDE m) is 15 mu
    row, col = np.divmod(np.arange(len(parcels)), columns)
    x0, y0 = 500000.0 + col * SIDE, 2745000.0 - row * SIDE
    frame = gpd.GeoDataFrame(parcels.copy(), geometry=shapely.box(x0, y0, x0 + SIDE, y0 + SIDE), crs="EPSG:4545")
    villages = villages_table([("V1", "T1", 5, 3, 1e6, 2000)])
    return Inputs(parcels=frame, villages=villages, crs_note="test", hashes={})


def grid_edges(n: int, columns: int) -> list[tuple[int, int]]:
    """Rook neighbours of a row-by-row grid, written out independently of optiland.model.adjacency."""
    edges = []
    for p in range(n):
        if (p + 1) % columns and p + 1 < n:
            edges.append((p, p + 1))
        if p + columns < n:
            edges.append((p, p + columns))
    return edges


def grid_outer(n: int, columns: int) -> np.ndarray:
    """Outer edge length per parcel of a full row-by-row grid."""
    rows = n // columns
    row, col = np.divmod(np.arange(n), columns)
    sides = (row == 0).astype(int) + (row == rows - 1) + (col == 0) + (col == columns - 1)
    return sides * SIDE


def prepare_grid(parcels: pd.DataFrame, columns: int, objective: dict[str, str], tmp_path: Path | None = None,
                 spatial: dict[str, Any] | None = None, features: dict[str, Any] | None = None) -> Prepared:
    sections: dict[str, Any] = {"objective": objective, "constraints": {"income_floor": 0}}
    if spatial is not None:
        sections["spatial"] = spatial
    if features is not None:
        sections["features"] = features
    scenario = make_scenario(catalog={"path": str(SMALL_CATALOG)}, **sections)
    catalog = load_catalog(SMALL_CATALOG)
    inputs = grid_inputs(parcels, columns)
    return Prepared(scenario, catalog, inputs, build_problem(scenario, catalog, inputs), 0.0)


def enumerate_plans(prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Every plan of a tiny problem: the chosen allowed row per parcel (plans x parcels) and each plan's group per
    parcel, from GROUPS (or the protected split)."""
    allowed = prepared.problem.allowed
    per_parcel = [np.flatnonzero(allowed["parcel"].to_numpy() == p) for p in range(prepared.problem.n_parcels)]
    plans = np.array(list(itertools.product(*per_parcel)))
    return plans, allowed["option"].to_numpy()[plans]


def penalty_by_hand(options: np.ndarray, columns: int, blm: float, group_of: dict[str, str],
                    weights: dict[frozenset[str], float] | None = None, outer_weight: dict[str, float] | None = None
                    ) -> np.ndarray:
    """BLM x sum over grid edges of weight(group_i, group_j) x SIDE, plus outer edges, per plan."""
    groups = np.vectorize(group_of.get)(options)
    n = options.shape[1]
    total = np.zeros(len(options))
    for a, b in grid_edges(n, columns):
        ga, gb = groups[:, a], groups[:, b]
        if weights is None:
            w = (ga != gb).astype(float)
        else:
            w = np.array([weights.get(frozenset((x, y)), 0.0 if x == y else 1.0) for x, y in zip(ga, gb, strict=True)])
        total += w * SIDE
    if outer_weight:
        outer = grid_outer(n, columns)
        for p in range(n):
            total += np.vectorize(lambda g: outer_weight.get(g, 0.0))(groups[:, p]) * outer[p]
    return blm * total


def solve(prepared: Prepared) -> tuple[float, np.ndarray]:
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60), "pyomo")
    return float(outcome.result.objective), outcome.solution.chosen_rows()


# 2 x 3 grid: bare rock (keep or closure only), cropland (every option), grassland, a red-line shrub forest.
MIXED = parcels_table([
    ("P0", "V1", "1206", 40, 95, 15),
    ("P1", "V1", "0103", 10, 10, 15),
    ("P2", "V1", "0404", 20, 25, 15),
    ("P3", "V1", "0103", 10, 10, 15),
    ("P4", "V1", "0305", 40, 60, 15, True, True),
    ("P5", "V1", "1206", 40, 95, 15),
])


@pytest.mark.parametrize("blm", [0.0, 0.0002, 0.001, 0.004, 0.01])
def test_penalised_carbon_optimum_equals_enumeration(blm: float) -> None:
    prepared = prepare_grid(MIXED, 3, {"maximise": "carbon"},
                            spatial={"boundary_penalty": blm, "groups": GROUPS})
    plans, options = enumerate_plans(prepared)
    carbon = prepared.problem.allowed["gain_carbon"].to_numpy()[plans].sum(axis=1)
    value = carbon - penalty_by_hand(options, 3, blm, GROUPS)
    objective, rows = solve(prepared)
    assert objective == pytest.approx(value.max(), rel=1e-7, abs=1e-7)
    allowed = prepared.problem.allowed
    plan_value = (allowed["gain_carbon"].to_numpy()[rows].sum()
                  - penalty_by_hand(allowed["option"].to_numpy()[rows][None, :], 3, blm, GROUPS)[0])
    assert plan_value == pytest.approx(value.max(), rel=1e-7, abs=1e-7)  # the plan is worth what the solver says


def test_pair_weights_and_protected_mode_equal_enumeration() -> None:
    weights = {"protection|production": 3.0, "restoration|production": 0.5, "protection|restoration": 1.0}
    prepared = prepare_grid(MIXED, 3, {"maximise": "carbon"},
                            spatial={"boundary_penalty": 0.0005, "groups": GROUPS, "group_weights": weights})
    plans, options = enumerate_plans(prepared)
    carbon = prepared.problem.allowed["gain_carbon"].to_numpy()[plans].sum(axis=1)
    by_pair = {frozenset(k.split("|")): v for k, v in weights.items()}
    value = carbon - penalty_by_hand(options, 3, 0.0005, GROUPS, by_pair)
    assert "boundary_pair" in prepared_model_rows(prepared)
    assert solve(prepared)[0] == pytest.approx(value.max(), rel=1e-7)

    protected = {o: "protected" if o in ("closure", "afforestation") else "unprotected" for o in GROUPS}
    prepared = prepare_grid(MIXED, 3, {"maximise": "carbon"},
                            spatial={"boundary_penalty": 0.0003, "between": "protected",
                                     "groups": GROUPS, "protected": ["protection", "restoration"]})
    plans, options = enumerate_plans(prepared)
    carbon = prepared.problem.allowed["gain_carbon"].to_numpy()[plans].sum(axis=1)
    value = carbon - penalty_by_hand(options, 3, 0.0003, protected, outer_weight={"protected": 1.0})
    assert solve(prepared)[0] == pytest.approx(value.max(), rel=1e-7)


def prepared_model_rows(prepared: Prepared) -> set[str]:
    backend = make_backend("pyomo", prepared.problem)
    backend.build(prepared.problem)
    return {c.name for c in backend.model.component_objects()}  # type: ignore[union-attr]


def test_min_cost_meeting_feature_targets_with_locks_equals_enumeration(tmp_path: Path) -> None:
    features = pd.DataFrame({"parcel_id": ["P0", "P1", "P2", "P3", "P4", "P5", "P1", "P3", "P5"],
                             "feature": ["bird"] * 6 + ["orchid"] * 3,
                             "amount": [5.0, 1.0, 2.0, 4.0, 3.0, 1.0, 2.0, 1.0, 4.0]})
    features.to_csv(tmp_path / "features.csv", index=False)
    (tmp_path / "locks.csv").write_text("parcel_id,option,lock\nP2,closure,in\nP0,closure,out\n")
    config = {"path": str(tmp_path / "features.csv"), "targets": {"bird": 8.0},
              "relative_targets": {"orchid": 0.6}, "credited": {"*": ["closure", "afforestation"]}}
    spatial = {"boundary_penalty": 0.4, "groups": GROUPS, "locks": str(tmp_path / "locks.csv")}
    prepared = prepare_grid(MIXED, 3, {"minimise": "cost"}, spatial=spatial, features=config)
    allowed = prepared.problem.allowed
    assert set(allowed.loc[allowed["parcel"] == 2, "option"]) == {"closure"}
    assert "closure" not in set(allowed.loc[allowed["parcel"] == 0, "option"])
    plans, options = enumerate_plans(prepared)
    credited = np.isin(options, ["closure", "afforestation"])
    bird = (credited * np.array([5.0, 1, 2, 4, 3, 1])).sum(axis=1)
    orchid = (credited * np.array([0.0, 2, 0, 1, 0, 4])).sum(axis=1)
    cost = allowed["cost"].to_numpy()[plans].sum(axis=1) + penalty_by_hand(options, 3, 0.4, GROUPS)
    feasible = (bird >= 8.0 - 1e-9) & (orchid >= 0.6 * 7.0 - 1e-9)
    assert feasible.any() and not feasible.all()
    objective, rows = solve(prepared)
    assert objective == pytest.approx(cost[feasible].min(), rel=1e-7)
    assert prepared.problem.uses_spatial


def test_locks_that_leave_nothing_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "locks.csv").write_text("parcel_id,option,lock\nP0,keep,out\nP0,closure,out\n")
    with pytest.raises(InputError) as caught:
        prepare_grid(MIXED, 3, {"maximise": "carbon"}, spatial={"locks": str(tmp_path / "locks.csv")})
    assert "line 3" in str(caught.value) and "P0" in str(caught.value)
    (tmp_path / "locks.csv").write_text("parcel_id,option,lock\nP0,fruit,in\nP9,keep,maybe\n")
    with pytest.raises(InputError) as caught:
        prepare_grid(MIXED, 3, {"maximise": "carbon"}, spatial={"locks": str(tmp_path / "locks.csv")})
    text = str(caught.value)
    assert "P9" in text and "maybe" in text and "line 3" in text


def test_checkerboard_becomes_compact_as_the_weight_rises() -> None:
    # 4 x 4: bare rock (closure is best for carbon) alternating with cropland (acacia afforestation is best)
    cells = []
    for p in range(16):
        row, col = divmod(p, 4)
        rock = (row + col) % 2 == 0
        cells.append((f"P{p}", "V1", "1206" if rock else "0103", 40 if rock else 10, 95 if rock else 10, 15))
    parcels = parcels_table(cells)
    mixed_length = []
    for blm in (0.0, 1e-5, 1e-4, 1e-3, 1e-2):
        prepared = prepare_grid(parcels, 4, {"maximise": "carbon"},
                                spatial={"boundary_penalty": blm, "groups": GROUPS})
        _, rows = solve(prepared)
        options = prepared.problem.allowed["option"].to_numpy()[rows]
        groups = np.array([GROUPS[o] for o in options])
        mixed_length.append(sum(SIDE for a, b in grid_edges(16, 4) if groups[a] != groups[b]))
    assert mixed_length[0] == 24 * SIDE  # every inner edge of the checkerboard separates two groups
    assert all(b <= a for a, b in zip(mixed_length, mixed_length[1:], strict=False))
    assert mixed_length[-1] == 0.0


def test_added_variables_are_one_per_undecided_boundary() -> None:
    prepared = prepare_grid(MIXED, 3, {"maximise": "carbon"}, spatial={"boundary_penalty": 0.001, "groups": GROUPS})
    backend = make_backend("pyomo", prepared.problem)
    backend.build(prepared.problem)
    size = backend.model._boundary_size  # type: ignore[union-attr]
    # P4 (red line) can be closure or afforestation, P0 and P5 (bare rock) keep or closure: every parcel has 2+
    # groups, so each of the 7 shared boundaries gets one variable and (uniform weights) one row per group of its
    # left parcel.
    assert size["shared_boundaries"] == 7 and size["added_variables"] == 7 and size["linear_boundaries"] == 0
    can = {0: 2, 1: 3, 2: 3, 3: 3, 4: 2, 5: 2}
    assert size["added_rows"] == sum(can[a] for a, _ in grid_edges(6, 3))


def test_without_spatial_sections_the_model_is_unchanged_and_matrix_refuses_spatial() -> None:
    plain = prepare_grid(MIXED, 3, {"maximise": "carbon"})
    assert plain.problem.spatial is None and not plain.problem.uses_spatial
    assert "boundary_split" not in prepared_model_rows(plain)
    spatial = prepare_grid(MIXED, 3, {"maximise": "carbon"}, spatial={"boundary_penalty": 1.0})
    with pytest.raises(InputError, match="matrix backend"):
        make_backend("matrix", spatial.problem)
    assert make_backend("auto", spatial.problem).name == "pyomo"
    from optiland.model.matrix import MatrixBackend

    with pytest.raises(ValueError, match="matrix backend"):
        MatrixBackend().build(spatial.problem)


def test_unknown_keys_and_groups_are_named(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text('[parcels]\npath = "p.gpkg"\n[villages]\npath = "v.csv"\n[spatial]\nboundary_penalt = 1\n')
    with pytest.raises(InputError, match="did you mean 'boundary_penalty'"):
        load_scenario(scenario)
    with pytest.raises(InputError, match="group"):
        prepare_grid(MIXED, 3, {"maximise": "carbon"},
                     spatial={"boundary_penalty": 1.0, "group_weights": {"protection|nowhere": 2.0}})


# ------------------------------------------------------------------------------------------------------------
# Neighbourhood caps


def test_neighbourhoods_hold_the_parcels_within_the_radius() -> None:
    rng = np.random.default_rng(3)
    centroids = rng.uniform(0, 1000, (300, 2))
    cell, parcel, centres = neighbourhoods(centroids, 120.0, 60.0)
    for c in range(len(centres)):
        near = np.flatnonzero(np.hypot(*(centroids - centres[c]).T) <= 120.0)
        assert sorted(parcel[cell == c]) == list(near)
    # every point is within the radius of some centre (the grid covers the layer)
    assert set(parcel) == set(range(300))


def test_neighbourhood_caps_added_lazily_reach_the_enumerated_optimum() -> None:
    flat = parcels_table([(f"P{p}", "V1", "0103", 10, 10, 15) for p in range(6)])
    cap = {"options": ["afforestation"], "radius_m": 150.0, "spacing_m": 75.0, "max_area_mu": 30.0}
    prepared = prepare_grid(flat, 3, {"maximise": "carbon"}, spatial={"neighbourhood_caps": [cap]})
    problem = prepared.problem
    plans, options = enumerate_plans(prepared)
    allowed = problem.allowed
    carbon = allowed["gain_carbon"].to_numpy()[plans].sum(axis=1)
    label = (allowed["option"] + "." + allowed["variant"]).to_numpy()[plans]
    spatial = problem.spatial
    assert spatial is not None and len(spatial.caps) == 1
    members = [spatial.caps[0].parcel[spatial.caps[0].cell == c] for c in np.unique(spatial.caps[0].cell)]
    ok = np.ones(len(plans), dtype=bool)
    for variant in ("afforestation.zenia", "afforestation.quercus", "afforestation.acacia"):
        for parcels in members:
            ok &= (label[:, parcels] == variant).sum(axis=1) * 15.0 <= 30.0 + 1e-9
    unconstrained = carbon.max()
    assert carbon[ok].max() < unconstrained  # the caps bind
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60), "pyomo")
    assert outcome.result.objective == pytest.approx(carbon[ok].max(), rel=1e-9)
    lazy = [n for n in outcome.notes if n.startswith("neighbourhood caps")]
    assert lazy and "rows added lazily" in lazy[0]
    added = int(lazy[0].split(":")[1].split()[0])
    possible = int(lazy[0].split("(of ")[1].split()[0].replace(",", ""))
    assert 0 < added < possible
    assert not [v for v in check(make_plan(outcome), prepared) if v.family == "neighbourhood_cap"]
    best_unconstrained = plans[np.argmax(carbon)]
    parcels_table_, villages_table_ = plan_tables(problem, Best(unconstrained, best_unconstrained, np.zeros(1),
                                                               np.zeros(1)))
    broken = [v for v in check_plan(prepared, parcels_table_, villages_table_) if v.family == "neighbourhood_cap"]
    chosen = set(label[np.argmax(carbon)])
    assert broken and all(v.key.split("@")[0] in chosen for v in broken)


def test_a_built_model_is_not_reused_for_another_penalty() -> None:
    one = prepare_grid(MIXED, 3, {"maximise": "carbon"}, spatial={"boundary_penalty": 0.001, "groups": GROUPS})
    two = prepare_grid(MIXED, 3, {"maximise": "carbon"}, spatial={"boundary_penalty": 0.01, "groups": GROUPS})
    backend = make_backend("pyomo", one.problem)
    backend.build(one.problem)
    assert not backend.update(two.problem)
    assert backend.update(prepare_grid(MIXED, 3, {"maximise": "carbon"},
                                       spatial={"boundary_penalty": 0.001, "groups": GROUPS}).problem)


def test_an_unreachable_feature_target_is_explained(tmp_path: Path) -> None:
    pd.DataFrame({"parcel_id": ["P0", "P1"], "feature": ["bird", "bird"], "amount": [1.0, 2.0]}).to_csv(
        tmp_path / "features.csv", index=False)
    prepared = prepare_grid(MIXED, 3, {"minimise": "cost"},
                            features={"path": str(tmp_path / "features.csv"), "targets": {"bird": 10.0}})
    with pytest.raises(InfeasibleError, match="feature bird falls 7 short of its target 10"):
        solve(prepared)
