"""The matrix backend (optiland.model.matrix) builds the same model as the Pyomo reference
(optiland.model.formulation compiled by
optiland.model.backend.compile_model): the same columns, the same rows with the same coefficients and bounds, the same
objective, matched by name (rows and columns may come in another order), and so the same optimum; `update` gives the
model a fresh build gives; and a Pareto front is the same on both backends.

Instances: the 4-parcel golden instance and the 6-parcel brute-force instance on the small catalog (every family
active), the small catalog with no optional family, and instances generated with the karst-southwest catalog (the
demo's constraints; with township budgets, a transfer share, market limits and objective bounds; and with none of
the optional families).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from optiland.analysis.generate import generate_instance
from optiland.analysis.pareto import LandUseFrontModel, front
from optiland.errors import InputError
from optiland.mip.solver import MatrixLP, SolverOptions, Status
from optiland.model.backend import AUTO_MATRIX_ROWS, PyomoBackend, make_backend
from optiland.model.formulation import target_values
from optiland.model.matrix import MatrixBackend, Names
from optiland.model.problem import PlanningProblem, build_problem
from optiland.pipeline.run import Prepared, prepare, solve_prepared, solver_options
from tests.bruteforce import prepare_tiny
from tests.test_bruteforce import ALL_ACTIVE, TWO, TWO_VILLAGES
from tests.test_golden_lp import CONSTRAINTS as GOLDEN_CONSTRAINTS
from tests.test_golden_lp import OVERRIDES
from tests.test_golden_lp import PARCELS as GOLDEN_PARCELS
from tests.test_golden_lp import VILLAGES as GOLDEN_VILLAGES

EXACT = SolverOptions(mip_rel_gap=0, time_limit=30)
SCALES = {"carbon": 120.0, "soil": 300.0, "water": 80.0, "habitat": 50.0}
"""Some G*_s for the index (any positive numbers do for comparing models)."""


def same_model(reference: MatrixLP, other: MatrixLP, rtol: float = 1e-10) -> None:
    """Assert two matrix models are the same up to the order of rows and columns.

    Columns and rows are matched by name; `other` is permuted into the reference's order, so that each row's entries
    compare in one canonical column order (explicit zeros dropped on both sides). Coefficients, row and column bounds,
    integrality, objective and offset agree to `rtol` (sums of the same terms may round differently)."""
    ref_cols, cols = list(reference.col_names), list(other.col_names)
    assert len(set(cols)) == len(cols) and len(set(ref_cols)) == len(ref_cols)
    assert sorted(cols) == sorted(ref_cols), (sorted(set(cols) ^ set(ref_cols)))[:10]
    ref_rows, rows = list(reference.row_names), list(other.row_names)
    assert len(set(rows)) == len(rows)
    assert sorted(rows) == sorted(ref_rows), (sorted(set(rows) ^ set(ref_rows)))[:10]
    col_at = {name: j for j, name in enumerate(cols)}
    row_at = {name: i for i, name in enumerate(rows)}
    cp = np.array([col_at[n] for n in ref_cols], dtype=np.int64)
    rp = np.array([row_at[n] for n in ref_rows], dtype=np.int64)
    A = sp.csr_matrix(other.A)[rp][:, cp].tocsr()
    R = sp.csr_matrix(reference.A, copy=True)
    for M in (A, R):
        M.eliminate_zeros()
        M.sort_indices()
    for i in np.flatnonzero(np.diff(A.indptr) != np.diff(R.indptr))[:1]:
        raise AssertionError(f"row {ref_rows[i]}: {np.diff(A.indptr)[i]} entries, reference {np.diff(R.indptr)[i]}")
    assert np.array_equal(A.indices, R.indices), "rows have entries in different columns"
    row_of = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    largest = np.zeros(R.shape[0])
    np.maximum.at(largest, row_of, np.abs(R.data))
    worst = np.abs(A.data - R.data) / np.maximum(largest[row_of], 1.0)  # relative to the row's largest entry
    assert worst.max(initial=0.0) <= rtol, f"row {ref_rows[row_of[np.argmax(worst)]]}: coefficients differ"
    for mine, ref in ((other.row_lower[rp], reference.row_lower), (other.row_upper[rp], reference.row_upper),
                      (other.col_lower[cp], reference.col_lower), (other.col_upper[cp], reference.col_upper),
                      (other.c[cp], reference.c)):
        np.testing.assert_allclose(mine, ref, rtol=rtol, atol=1e-9)
    assert np.array_equal(other.integer[cp], reference.integer)
    assert other.sense == reference.sense
    assert other.offset == pytest.approx(reference.offset, rel=rtol, abs=1e-9)


def both(problem: PlanningProblem, objective: dict[str, float], sense: str = "max",
         bounds: dict[str, tuple[float | None, float | None]] | None = None) -> tuple[MatrixLP, MatrixLP]:
    """The model of `problem` with this objective and these set_bound bounds, compiled from Pyomo and built as
    matrices."""
    lps = []
    for backend in (PyomoBackend(), MatrixBackend()):
        backend.build(problem)
        backend.es_scale = SCALES
        for name, (low, high) in (bounds or {}).items():
            backend.set_bound(name, low, high)
        backend.set_objective(objective, sense, scale=SCALES, weights=problem.params["weights"])
        lps.append(backend.matrix())
    return lps[0], lps[1]


# ------------------------------------------------------------------------------------------------------------
# Instances


@pytest.fixture(scope="module")
def karst(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """300 parcels, 2 townships, 6 villages, the karst-southwest catalog and the demo's constraints."""
    path = generate_instance(300, 2, 6, 7, tmp_path_factory.mktemp("karst"))
    return prepare(path)


@pytest.fixture(scope="module")
def karst_tiny(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """60 parcels, 1 township, 2 villages: small enough to solve to optimality in a moment."""
    path = generate_instance(60, 1, 2, 5, tmp_path_factory.mktemp("karst-tiny"))
    return prepare(path)


@pytest.fixture(scope="module")
def karst_medium(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """1,500 parcels (about 50,000 allowed rows), 3 townships, 8 villages."""
    path = generate_instance(1500, 3, 8, 11, tmp_path_factory.mktemp("karst-medium"))
    return prepare(path)


def variant(prepared: Prepared, **changes: Any) -> PlanningProblem:
    """The problem of the prepared scenario with changes (dotted paths, as Scenario.with_)."""
    return build_problem(prepared.scenario.with_(**changes), prepared.catalog, prepared.inputs)


COUPLING = {"constraints.township_budgets": {"T01": 9_000_000}, "constraints.max_transfer_share": 0.5,
            "constraints.market": {"fruit.orah": 200, "herbs.paris_polyphylla": 40},
            "constraints.bounds": {"income": [1.0, None], "cost": [None, 5e7], "carbon": [10.0, 1e9]},
            "constraints.village_income_growth": {"T02": 0.05}, "constraints.village_no_worse_off": {"T01-V01": False},
            "constraints.village_transfer_shares": {"T02": 0.4, "T01-V02": 1.0},
            "constraints.areas": {"herbs": {"min": 5.0, "max": 4000.0}, "fruit.orah": {"max": 100.0}},
            "constraints.township_areas": {"T01": {"herd": {"min": 2.0}, "closure": {"max": 1e6}}}}
NONE_OPTIONAL = {"constraints.transfer_budget": None, "constraints.budget": None,
                 "constraints.diversity_cap": None, "constraints.forest_cover_min": None}


def small_problems() -> dict[str, PlanningProblem]:
    """Small-catalog instances: every family, and no optional family."""
    golden = prepare_tiny(GOLDEN_PARCELS, GOLDEN_VILLAGES, "income", GOLDEN_CONSTRAINTS, OVERRIDES).problem
    two = prepare_tiny(TWO, TWO_VILLAGES, "income", ALL_ACTIVE, OVERRIDES).problem
    bare = prepare_tiny(TWO, TWO_VILLAGES, "income", {"income_floor": 3000}, OVERRIDES).problem
    growth = prepare_tiny(TWO, TWO_VILLAGES, "income", {**ALL_ACTIVE, "village_income_growth": {"V2": 0.1},
                                                         "no_worse_off": True, "village_no_worse_off": {"V1": False},
                                                         "areas": {"herd": {"max": 3}, "fruit": {"min": 1}},
                                                         "township_areas": {"T1": {"fruit": {"max": 0}}}},
                          {**OVERRIDES, "variants.fruit.pomelo.net_income_per_mu": 6000}).problem
    return {"golden": golden, "two-all-active": two, "two-no-optional": bare, "two-growth": growth}


# ------------------------------------------------------------------------------------------------------------
# The same model


@pytest.mark.parametrize("name", ["golden", "two-all-active", "two-no-optional", "two-growth"])
def test_small_catalog_same_model(name: str) -> None:
    problem = small_problems()[name]
    for objective, sense in (({"income": 1.0}, "max"), ({"cost": 1.0}, "min"), ({"ecosystem_services": 1.0}, "max"),
                             ({"soil": 1.0, "income": 1e-4}, "max")):
        same_model(*both(problem, objective, sense, bounds={"ecosystem_services": (0.01, None)}))
    same_model(*both(problem, {"income": 1.0}, bounds={"income": (1000.0, 5e6), "water": (2.0, 2.0)}))


@pytest.mark.parametrize("case", ["demo", "coupling", "none-optional"])
def test_karst_same_model(karst: Prepared, case: str) -> None:
    changes = {"demo": {}, "coupling": COUPLING, "none-optional": NONE_OPTIONAL}[case]
    problem = variant(karst, **changes)
    reference, matrix = both(problem, {"ecosystem_services": 1.0}, bounds={"ecosystem_services": (0.05, None)})
    same_model(reference, matrix)
    families = {name.split("[")[0].rstrip("<=>") for name in matrix.row_names}
    expected = {"demo": {"diversity", "option_area_def", "forest_cover", "market", "price_step_link",
                         "price_step_width", "budget", "transfer_budget"},
                "coupling": {"township_budget", "transfer_share", "objective_bound", "diversity", "market",
                             "no_worse_off", "area_min", "area_max"},
                "none-optional": set()}[case]
    assert expected <= families  # the case exercises what it says
    if case == "none-optional":
        assert not families & {"diversity", "forest_cover", "budget", "transfer_budget", "transfer_share"}


def test_medium_same_model(karst_medium: Prepared) -> None:
    problem = variant(karst_medium, **COUPLING)
    assert len(problem.allowed) > AUTO_MATRIX_ROWS
    same_model(*both(problem, {"income": 1.0}))


def test_targets_and_names(karst: Prepared) -> None:
    """The targets the matrix backend reads are formulation.target_values; lazily formatted names read as lists."""
    problem = variant(karst, **COUPLING)
    backend = MatrixBackend()
    backend.build(problem)
    assert backend.targets == target_values(problem)
    names = backend.col_names
    assert names[0] == "x[0]" and names[-1] == list(names)[-1] and names[1:3] == ["x[1]", "x[2]"]
    assert len(list(backend.row_names)) == len(backend.row_names) == backend._A.shape[0]  # type: ignore[union-attr]
    custom = Names()
    custom.add_range("a", 2, "==")
    custom.add_list(["b"])
    assert list(custom) == ["a[0]==", "a[1]==", "b"] and custom[-1] == "b" and len(custom) == 3


# ------------------------------------------------------------------------------------------------------------
# The same optimum


def test_same_optimum_small_catalog() -> None:
    for objective in ("income", "ecosystem_services"):
        constraints = {**GOLDEN_CONSTRAINTS, "bounds": dict(GOLDEN_CONSTRAINTS["bounds"])}
        prepared = prepare_tiny(GOLDEN_PARCELS, GOLDEN_VILLAGES, objective, constraints, OVERRIDES)
        options = solver_options(prepared.scenario, mip_rel_gap=0, time_limit=30)
        reference = solve_prepared(prepared, options, "pyomo")
        matrix = solve_prepared(prepared, options, "matrix")
        assert matrix.backend == "matrix" and reference.backend == "pyomo"
        assert matrix.result.status == reference.result.status == Status.OPTIMAL
        assert matrix.result.objective == pytest.approx(reference.result.objective, rel=1e-9, abs=1e-9)
        assert matrix.es_scale == pytest.approx(reference.es_scale)
        assert matrix.model_size == reference.model_size
        assert {"read", "build", "matrix", "solve"} <= set(matrix.times)


def test_same_optimum_karst(karst_tiny: Prepared) -> None:
    """(The income optimum of karst instances is slow to prove to a tight gap; the small-catalog test has it.)"""
    problem = variant(karst_tiny, **{"constraints.max_transfer_share": 0.6, "constraints.market": {"fruit.orah": 20},
                                     "constraints.no_worse_off": False})  # (with it the proof takes minutes)
    found = []
    for backend in (PyomoBackend(), MatrixBackend()):
        backend.build(problem)
        backend.set_objective({"carbon": 1.0}, "max")
        result = backend.solve(SolverOptions(mip_rel_gap=1e-7, time_limit=30))
        assert result.status == Status.OPTIMAL
        plan = backend.solution(result)
        assert len(plan.chosen_rows()) == problem.n_parcels
        found.append(result)
    pyomo, matrix = found
    assert matrix.objective == pytest.approx(pyomo.objective, rel=2e-7)
    assert matrix.bound >= pyomo.objective - 1e-9 and pyomo.bound >= matrix.objective - 1e-9  # each within the other


def test_trivially_infeasible_constant_row_on_both() -> None:
    """A bound on a gain that no allowed option changes is a constant: both backends call it infeasible."""
    prepared = prepare_tiny(GOLDEN_PARCELS, GOLDEN_VILLAGES, "income", {"income_floor": 0}, OVERRIDES)
    for backend in (PyomoBackend(), MatrixBackend()):
        backend.build(prepared.problem)
        backend.es_scale = {}
        backend.set_bound("ecosystem_services", 1.0, None)  # an index with no scales is the constant 0
        backend.set_objective({"income": 1.0}, "max")
        result = backend.solve(EXACT)
        assert result.status == Status.INFEASIBLE and "trivially infeasible" in result.message


# ------------------------------------------------------------------------------------------------------------
# update, auto, Pareto


def test_update_equals_fresh_build(karst: Prepared) -> None:
    first = variant(karst, **COUPLING)
    changed = {**COUPLING, "constraints.income_floor": 3500, "constraints.budget": 2e7,
               "constraints.transfer_budget": 9e5, "constraints.max_transfer_share": 0.7,
               "constraints.diversity_cap": 0.3, "constraints.forest_cover_min": 0.3,
               "constraints.township_budgets": {"T01": 7e6}, "constraints.market": {"fruit.orah": 250,
                                                                                  "herbs.paris_polyphylla": 10},
               "constraints.village_income_growth": {"T02": 0.08},
               "constraints.village_transfer_shares": {"T02": 0.45, "T01-V02": 1.0},
               "constraints.areas": {"herbs": {"min": 7.0, "max": 3000.0}, "fruit.orah": {"max": 90.0}},
               "constraints.township_areas": {"T01": {"herd": {"min": 3.0}, "closure": {"max": 2e6}}}}
    second = variant(karst, **changed)
    backend = MatrixBackend()
    backend.build(first)
    backend.set_bound("income", 5.0, None)
    before = backend._A
    assert backend.update(second) and backend.reused == 1
    assert backend._A is before  # the matrix was changed in place, not rebuilt
    fresh = PyomoBackend()
    fresh.build(second)
    for b in (backend, fresh):
        b.set_objective({"income": 1.0}, "max")
    same_model(fresh.matrix(), backend.matrix())  # the set_bound row went too, as on Pyomo
    other = variant(karst, **{"constraints.diversity_cap": None})
    assert not backend.update(other) and backend.reused == 1


def test_auto_backend_by_size(karst: Prepared) -> None:
    tiny = small_problems()["golden"]
    assert make_backend("auto", tiny).name == "pyomo"
    assert make_backend("auto", variant(karst)).name == ("matrix" if len(karst.problem.allowed) > AUTO_MATRIX_ROWS
                                                         else "pyomo")
    assert make_backend("matrix").name == "matrix" and make_backend("pyomo").name == "pyomo"
    with pytest.raises(InputError, match="unknown backend"):
        make_backend("gurobi")


def test_pareto_front_same_on_both_backends() -> None:
    constraints = {**GOLDEN_CONSTRAINTS, "bounds": {}}
    problem = prepare_tiny(GOLDEN_PARCELS, GOLDEN_VILLAGES, "income", constraints, OVERRIDES).problem
    fronts, models = [], []
    for name in ("pyomo", "matrix"):
        model = LandUseFrontModel(problem, ["income", "carbon"], EXACT, backend=name)
        assert model.backend.name == name
        models.append(model)
        fronts.append(front(model, points=6, options=EXACT))
    same_model(models[0].lp, models[1].lp)  # the model with the _pareto block, too
    tables = [f.table[["income", "carbon"]].to_numpy(dtype=float) for f in fronts]
    assert len(tables[0]) >= 2
    np.testing.assert_allclose(tables[1], tables[0], rtol=1e-9, atol=1e-6)
    for a, b in zip(fronts[0].solutions.values(), fronts[1].solutions.values(), strict=True):
        assert len(b.chosen_rows()) == problem.n_parcels and len(a.chosen_rows()) == problem.n_parcels


def test_cli_backend_option() -> None:
    from typer.testing import CliRunner

    from optiland.cli import app

    for command in ("solve", "pareto", "sweep"):
        help_text = CliRunner().invoke(app, [command, "--help"], terminal_width=200).output
        assert "--backend" in help_text and "matrix" in help_text, command


# ------------------------------------------------------------------------------------------------------------
# The elastic model (infeasibility diagnosis)


def elastic_pair(problem: PlanningProblem) -> tuple[MatrixLP, MatrixLP]:
    """The elastic model of `problem` with diagnose's objective, from Pyomo and as matrices."""
    from optiland.pipeline.diagnose import _weights

    lps = []
    for backend in (PyomoBackend(), MatrixBackend()):
        backend.build(problem, elastic=True)
        backend.set_elastic_objective(_weights(problem, backend.slack_keys))
        lps.append(backend.matrix())
    return lps[0], lps[1]


def test_elastic_same_model(karst: Prepared) -> None:
    for problem in (*small_problems().values(), variant(karst, **COUPLING), variant(karst, **NONE_OPTIONAL)):
        same_model(*elastic_pair(problem))


def test_elastic_forest_row_without_forest_options() -> None:
    """A township with no forest-type option: a constant in the model, a row of its slack alone when elastic."""
    from tests.bruteforce import parcels_table, villages_table

    parcels = parcels_table([("P0", "V1", "0101", 5, 5, 8, True, False, True), ("P1", "V2", "0103", 10, 10, 10)])
    villages = villages_table([("V1", "T1", 5, 2, 1500, 2000), ("V2", "T2", 4, 2, 1200, 2500)])
    problem = prepare_tiny(parcels, villages, "income", {"income_floor": 100, "forest_cover_min": 0.5},
                           OVERRIDES).problem
    reference, matrix = elastic_pair(problem)
    same_model(reference, matrix)
    assert "forest_cover[0]>=" in list(matrix.row_names)
    backend = MatrixBackend()
    backend.build(problem)
    backend.set_objective({"income": 1.0}, "max")
    assert backend.solve(EXACT).status == Status.INFEASIBLE  # farmland only in T1: no forest cover possible


def test_diagnosis_same_on_both_backends() -> None:
    from optiland.pipeline.diagnose import diagnose

    prepared = prepare_tiny(TWO, TWO_VILLAGES, "income", {"income_floor": 9000, "budget": 1000}, OVERRIDES)
    found = [diagnose(prepared.problem, EXACT, name) for name in ("pyomo", "matrix")]
    assert str(found[0]) == str(found[1]) and "short by" in str(found[0])
    tables = [error.shortfalls.sort_values(["family", "key"]).reset_index(drop=True) for error in found]
    np.testing.assert_allclose(tables[1]["violation"], tables[0]["violation"], rtol=1e-6)


def test_land_use_front_points_go_to_column_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the matrix backend a front point is solved as `solve` solves the scenario: strategy "auto" becomes column
    generation (here from 0 columns instead of COLGEN_COLUMNS), with every parcel column's village for the integer
    bound (-1 on the front block's columns) and the objective on the model's own columns (column generation prices
    parcel columns by it; on f_k its restricted LP was unbounded). The front equals the plain MIP's within the gap."""
    import optiland.analysis.front_landuse as front_landuse
    import optiland.model.matrix as matrix

    constraints = {**GOLDEN_CONSTRAINTS, "bounds": {}}
    problem = prepare_tiny(GOLDEN_PARCELS, GOLDEN_VILLAGES, "income", constraints, OVERRIDES).problem
    options = SolverOptions(mip_rel_gap=1e-6, time_limit=60)
    plain = front(LandUseFrontModel(problem, ["income", "carbon"], options, backend="matrix"), points=4,
                  options=options)
    calls: list[tuple[str, np.ndarray | None, MatrixLP]] = []
    solve_lp = front_landuse.solve_lp

    def record(lp: MatrixLP, options: SolverOptions, **kwargs: Any) -> Any:
        calls.append((options.strategy, kwargs.get("villages"), lp))
        return solve_lp(lp, options, **kwargs)

    monkeypatch.setattr(matrix, "COLGEN_COLUMNS", 0)
    monkeypatch.setattr(front_landuse, "solve_lp", record)
    model = LandUseFrontModel(problem, ["income", "carbon"], options, backend="matrix")
    generated = front(model, points=4, options=options)
    assert calls and {strategy for strategy, *_ in calls} == {"colgen"}
    for _, villages, lp in calls:
        assert villages is not None and len(villages) == len(lp.c)
        assert (villages[[model._f[k] for k in model.names] + [model._s[k] for k in model.names]] == -1).all()
        assert (lp.c[[model._f[k] for k in model.names]] == 0).all()
    for name in ("income", "carbon"):
        np.testing.assert_allclose(generated.table[name].to_numpy(dtype=float),
                                   plain.table[name].to_numpy(dtype=float), rtol=1e-4)
