"""Column generation of variants (optiland.colgen): its Lagrangian bound is valid for any duals and never below the
monolithic optimum, its plan is no better than that optimum and passes `optiland check`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import generated_county, solve_cli
from typer.testing import CliRunner

from optiland import colgen
from optiland.cli import app
from optiland.run import prepare, solve_prepared, solver_options
from optiland.solver import MatrixLP, SolverOptions, _highs, c_stdout

runner = CliRunner()
GAP = {"mip_rel_gap": 1e-3, "time_limit": 60}


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """360 parcels in 2 townships, 6 villages, with a tight county budget so the coupling rows bind."""
    return generated_county(tmp_path_factory.mktemp("colgen"), 360, 2, 6, seed=7)


def _with_objective(county: Path, objective: str) -> Path:
    scenario = county.parent / f"scenario-{objective}.toml"
    scenario.write_text(county.read_text().replace('maximise = "ecosystem_services"', f'maximise = "{objective}"'))
    return scenario


@pytest.mark.parametrize("objective", ["income", "carbon"])
def test_bound_is_valid_and_plan_no_better_than_the_optimum(county: Path, objective: str) -> None:
    prepared = prepare(_with_objective(county, objective))
    exact = solve_prepared(prepared, solver_options(prepared.scenario, **GAP), "matrix").result
    generated = solve_prepared(prepared, solver_options(prepared.scenario, strategy="colgen", **GAP),
                               "matrix").result
    tol = 1e-6 * max(1.0, abs(exact.objective))
    # the optimum lies in [exact.objective, exact.bound]
    assert generated.objective <= exact.bound + tol
    assert generated.bound >= exact.objective - tol  # weak duality, over every column
    assert "column generation" in generated.message
    assert (generated.status.value == "optimal") == (generated.gap <= GAP["mip_rel_gap"] + 1e-12)


def test_lagrangian_bound_holds_for_any_duals(county: Path) -> None:
    """Weak duality: the bound at arbitrary (even poor) duals is never below the LP relaxation's optimum."""
    from optiland.matrix import MatrixBackend

    prepared = prepare(_with_objective(county, "income"))
    backend = MatrixBackend()
    backend.build(prepared.problem)
    backend.set_objective({"income": 1.0}, "max")
    lp = backend.matrix()
    relaxed = MatrixLP(**{**lp.__dict__, "integer": np.zeros_like(lp.integer)})
    with c_stdout():
        h = _highs(relaxed, SolverOptions(), 60)
    h.run()
    optimum = h.getInfo().objective_function_value
    rows, owner, other = colgen._structure(lp)
    assert len(rows) == prepared.problem.n_parcels
    rng = np.random.default_rng(3)
    duals = np.array(h.getSolution().row_dual)
    for y in (duals, duals * 0.5, rng.normal(size=len(duals)) * np.abs(duals).max(), np.zeros(len(duals))):
        bound, _ = colgen.lagrangian_bound(lp, y, owner, other)
        assert bound >= optimum - 1e-6 * max(1.0, abs(optimum))
    assert colgen.lagrangian_bound(lp, duals, owner, other)[0] == pytest.approx(optimum, rel=1e-6)


def test_colgen_from_the_command_line_passes_check(county: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    solve_cli(county, out, "--strategy", "colgen", "--backend", "matrix", "--gap", "0.001")
    assert runner.invoke(app, ["check", str(out)]).exit_code == 0
