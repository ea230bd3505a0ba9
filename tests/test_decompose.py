"""Township decomposition (optiland.pipeline.decompose): the county plan holds every county row (optiland check), its
Lagrangian bound is valid (never below the monolithic optimum of the same objective), and the plan is no better
than that optimum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import generated_county, solve_cli
from typer.testing import CliRunner

from optiland.check import check_outdir
from optiland.cli import app
from optiland.pipeline.results import make_plan
from optiland.pipeline.run import prepare, solve_by_township, solve_prepared, solver_options

runner = CliRunner()
EXACT = {"mip_rel_gap": 0.0, "time_limit": 300}


@pytest.fixture(autouse=True)
def _decomposition_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are of the decomposition itself: no whole-model fallback on their small county."""
    from optiland.pipeline import run

    monkeypatch.setattr(run, "DECOMPOSE_WHOLE_PARCELS", 0)


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 parcels in 3 townships, 6 villages, with a tight county budget so the coupling rows bind."""
    return generated_county(tmp_path_factory.mktemp("county"), 240, 3, 6, seed=11)


@pytest.mark.parametrize("objective", ["income", "ecosystem_services"])
def test_bound_is_valid_and_plan_feasible(county: Path, objective: str, tmp_path: Path) -> None:
    scenario = county.parent / f"scenario-{objective}.toml"
    scenario.write_text(county.read_text().replace(  # the decomposition does not take the balance rule (a note)
        'maximise = "ecosystem_services"', f'maximise = "{objective}"\nincome_gain_share = 0'))
    decomposed = solve_by_township(scenario, workers=1, **EXACT)
    plan = make_plan(decomposed)
    plan.write(tmp_path / "plan")
    assert check_outdir(tmp_path / "plan") == []  # every county row holds, checked without a solver
    result = decomposed.result
    assert result.bound >= result.objective - 1e-7 * abs(result.objective)
    # the monolithic model of the same objective, with its own index reference: the county's potential is the sum
    # of the townships', so both scale the index alike
    prepared = prepare(scenario)
    options = solver_options(prepared.scenario, **EXACT)
    # The monolithic model to 1e-5, not 0: proving its income optimum exactly took 140 s of the suite. Its plan and
    # bound bracket the optimum, so the two checks below stay exact: the decomposition's plan is no better than the
    # monolithic bound, its bound no worse than the monolithic plan.
    monolithic = solve_prepared(prepared, solver_options(prepared.scenario, **{**EXACT, "mip_rel_gap": 1e-5}), "pyomo")
    if objective == "ecosystem_services":
        assert decomposed.reference.kind == "potential"
        assert decomposed.es_scale.keys() == monolithic.es_scale.keys()
        for service, value in monolithic.es_scale.items():
            assert decomposed.es_scale[service] == pytest.approx(value, rel=1e-12, abs=1e-12)
    best, bound = monolithic.result.objective, monolithic.result.bound
    tol = 1e-6 * max(1.0, abs(best))
    assert result.objective <= bound + tol  # a restriction of the county model
    assert result.bound >= best - tol  # weak duality
    assert result.status.value in ("optimal", "feasible")
    assert (result.status.value == "optimal") == (result.gap <= options.mip_rel_gap + 1e-12)


def test_decompose_from_the_command_line_on_two_processes(county: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = solve_cli(county, out, "--strategy", "decompose", "--workers", "2", "--gap", "0.01")
    assert run["model_size"]["townships"] == 3
    assert {"read", "reference", "plans", "bound", "write"} <= set(run["times"])
    assert any("Lagrangian bound" in note for note in run["notes"])
    assert runner.invoke(app, ["check", str(out)]).exit_code == 0


def test_budget_shares_cover_each_townships_need_first() -> None:
    from optiland.pipeline.decompose import NEED_MARGIN, Shares

    area = np.array([0.5, 0.3, 0.2])
    base = Shares(budget=area, transfer=area, area=area)
    need = np.array([10.0, 50.0, 5.0])  # the second township needs far more than its area share of 100
    shared = base.by_need(need, 100.0)
    assert shared.budget.sum() == pytest.approx(1.0)
    assert (shared.budget * 100.0 >= need * (1 + NEED_MARGIN) - 1e-9).all()
    scarce = base.by_need(need, 40.0)  # needs exceed the budget: in proportion to need
    assert scarce.budget == pytest.approx(need / need.sum())
    assert (shared.area == area).all() and (shared.transfer == area).all()


def test_solve_goes_township_by_township_from_county_size(county: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --strategy, `solve` picks the decomposition for a county-sized instance of several townships, and
    only where the decomposition can take the scenario."""
    from optiland.io.scenario import load_scenario
    from optiland.pipeline import run as run_module

    assert run_module.default_strategy(county) is None  # 240 parcels: one model
    monkeypatch.setattr(run_module, "AUTO_DECOMPOSE_PARCELS", 200)
    assert run_module.default_strategy(county) == "decompose"
    scenario = load_scenario(county)
    bounded = scenario.with_(**{"constraints.bounds": {"income": [0, None]}})
    assert run_module.default_strategy(bounded) is None  # objective bounds couple every township
    monkeypatch.setattr(run_module, "AUTO_DECOMPOSE_PARCELS", 241)
    assert run_module.default_strategy(county) is None


def test_a_township_out_of_time_runs_again(county: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A township that runs out of its equal share of a stage's time runs again with what the others left; one
    that runs out again stops the run with its own message."""
    from optiland.errors import OptilandError
    from optiland.pipeline import decompose

    real = decompose.run_task
    calls: list[tuple[str, int, float]] = []

    def first_late(task: decompose.TownshipTask) -> dict:
        calls.append((task.stage, task.index, task.options.time_limit))
        if task.stage == "plan" and task.index == 1 and sum(c[:2] == ("plan", 1) for c in calls) == 1:
            return {"index": task.index, "township": task.township, "late": "township T02: no plan in time"}
        return real(task)

    monkeypatch.setattr(decompose, "run_task", first_late)
    outcome = solve_by_township(county, workers=1, mip_rel_gap=0.01, time_limit=120)
    assert [c for c in calls if c[:2] == ("plan", 1)][1][2] > [c for c in calls if c[:2] == ("plan", 1)][0][2]
    assert any("plan: 1 townships ran out" in note for note in outcome.notes)
    assert outcome.result.objective is not None

    def always_late(task: decompose.TownshipTask) -> dict:
        if task.stage == "plan" and task.index == 1:
            return {"index": task.index, "township": task.township, "late": "township T02: no plan in time"}
        return real(task)

    monkeypatch.setattr(decompose, "run_task", always_late)
    with pytest.raises(OptilandError, match="township T02: no plan in time"):
        solve_by_township(county, workers=1, mip_rel_gap=0.01, time_limit=120)


def test_bound_rounds_stop_when_the_bound_stalls(county: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prices that no longer move the bound end the rounds after BOUND_STALL[0] of them, not after all twelve."""
    from optiland.pipeline import decompose

    monkeypatch.setattr(decompose, "_next_prices", lambda cuts, per_round, keys, b, low, high, sense:
                        dict.fromkeys(keys, 0.0))  # the same prices every round: the same bound
    outcome = solve_by_township(county, workers=1, mip_rel_gap=0.0, time_limit=300)
    history = next(note for note in outcome.notes if note.startswith("Lagrangian bound by round"))
    stall = decompose.BOUND_STALL[0]
    rounds = len(history.split(":")[1].split(","))
    # the duals' prices, then zero prices: `stall` rounds without gain follow, counting the second if it gained nothing
    assert rounds in (1 + stall, 2 + stall)
    assert any(note.startswith(f"bound rounds stopped after {rounds}:") for note in outcome.notes)


def test_a_township_without_a_plan_found_runs_again_instead_of_being_called_infeasible(
        county: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A township whose solve ends with no plan and no proof that none exists (1,000,000 parcels, township T029:
    "cannot meet its targets" was raised) is late: it runs again with the time the others left."""
    from optiland.mip.solver import SolveResult, Status
    from optiland.model.matrix import MatrixBackend

    real = MatrixBackend.solve
    failed: list[int] = []

    def first_fails(self: MatrixBackend, options: object, columns: object = None) -> SolveResult:
        if not failed and self.problem.villages["township"].iloc[0] == "T02":
            failed.append(1)
            return SolveResult(Status.ERROR, None, None, None, None, 0.0, "no plan over the generated columns")
        return real(self, options, columns)

    monkeypatch.setattr(MatrixBackend, "solve", first_fails)
    outcome = solve_by_township(county, workers=1, mip_rel_gap=0.01, time_limit=120)
    assert failed and outcome.result.objective is not None
    assert any("plan: 1 townships ran out" in note for note in outcome.notes)
