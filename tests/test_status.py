"""Statuses that never lie (issue 20 item 2): a solve cut off by a limit is never called infeasible.

Time-outs are forced deterministically with HiGHS's work limits, never with the wall clock: `mip_max_improving_sols
= 1` stops the MIP at its first plan (status time_limit, with the plan, its bound and gap), `mip_max_nodes = 0`
before any plan (no plan: exit 5). Each test failed before the fix: the service index's normalisation MIPs turned
either limit into "infeasible" (exit 3), and a summary with no bound crashed.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from optiland.cli import app, print_summary, status_line
from optiland.errors import EXIT_INFEASIBLE, EXIT_NO_PLAN, EXIT_OK, EXIT_TIME_LIMIT
from optiland.mip.solver import Status
from tests.conftest import TINY_SCENARIO, write_instance

runner = CliRunner()

FIRST_PLAN = 'strategy = "mip"\npresolve = "off"\n[highs]\nmip_max_improving_sols = 1\n'
NO_PLAN = 'strategy = "mip"\npresolve = "off"\n[highs]\nmip_max_nodes = 0\n'


def _instance(folder: Path, preset: str | None, objective: str = "ecosystem_services") -> Path:
    scenario = TINY_SCENARIO.replace('maximise = "ecosystem_services"', f'maximise = "{objective}"')
    if preset is not None:
        (folder / "limit.toml").parent.mkdir(parents=True, exist_ok=True)
        (folder / "limit.toml").write_text(preset, encoding="utf-8")
        scenario = scenario.replace('preset = "default"', f'preset = "{(folder / "limit.toml").as_posix()}"')
    return write_instance(folder / "inst", scenario=scenario)


@pytest.mark.parametrize("objective", ["ecosystem_services", "income"])
def test_a_limit_with_a_plan_writes_it_with_bound_gap_and_status(tmp_path: Path, objective: str) -> None:
    scenario = _instance(tmp_path, FIRST_PLAN, objective)
    out = tmp_path / "out"
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(out)])
    assert result.exit_code == EXIT_TIME_LIMIT, result.output
    assert "status time_limit" in result.output and "infeasible" not in result.output
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["status"] == "time_limit"
    value, bound, gap = run["objective"]["value"], run["objective"]["bound"], run["objective"]["gap"]
    assert value is not None and bound is not None and gap is not None
    assert bound >= value - 1e-9 and gap >= 0


@pytest.mark.parametrize("objective", ["ecosystem_services", "income"])
def test_a_limit_before_any_plan_exits_5_writes_nothing_claims_nothing(tmp_path: Path, objective: str) -> None:
    scenario = _instance(tmp_path, NO_PLAN, objective)
    out = tmp_path / "out"
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(out)])
    assert result.exit_code == EXIT_NO_PLAN, result.output
    assert not out.exists()
    text = " ".join(result.output.split())
    assert "no plan found" in text and "nothing is known about whether one exists" in text
    assert "infeasible" not in text


def test_the_same_instance_solves_without_the_limit(tmp_path: Path) -> None:
    """The instances above are feasible: only the limit stopped them (exit 0, optimal)."""
    scenario = _instance(tmp_path, None)
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_OK, result.output
    assert json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))["status"] == "optimal"


def test_proven_infeasible_exits_3_with_its_diagnosis(tmp_path: Path) -> None:
    scenario = write_instance(tmp_path / "inst", scenario=TINY_SCENARIO.replace("income_floor = 4000",
                                                                                "income_floor = 90000"))
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_INFEASIBLE, result.output
    assert "cannot reach its floor" in " ".join(result.output.split())


def test_summary_without_a_bound_does_not_crash() -> None:
    """A 50,000-parcel decomposition wrote its plan, then crashed in the summary: the bound was None."""
    import pandas as pd

    run = {"objective": {"name": "ecosystem_services", "sense": "max", "value": 0.9, "bound": None, "gap": None},
           "status": "time_limit", "times": {"read": 1.0}}
    plan = SimpleNamespace(run=run, parcels=pd.DataFrame({"township": ["T1"], "option": ["keep"], "area_mu": [1.0]}),
                           villages=pd.DataFrame({"village": ["V1"], "at_or_below_floor": [False]}))
    print_summary(plan)
    line = status_line(run)
    assert "bound unknown" in line and "gap unknown" in line and "status time_limit" in line


def test_a_county_plan_without_a_bound_claims_none() -> None:
    """run.json said "a feasible county plan and a valid bound" with bound null."""
    from optiland.pipeline.decompose import county_status

    status, message = county_status(None, None, True, 1e-4)
    assert status == Status.TIME_LIMIT and "no bound" in message and "valid bound" not in message
    status, message = county_status(2e-3, 1.0, False, 1e-4)
    assert status == Status.FEASIBLE and "Lagrangian bound" in message
    status, _ = county_status(5e-5, 1.0, True, 1e-4)
    assert status == Status.OPTIMAL


def test_sweep_counts_a_cut_off_run_as_such_never_infeasible(tmp_path: Path) -> None:
    scenario = _instance(tmp_path, NO_PLAN)
    design = tmp_path / "design.toml"
    design.write_text('[design]\nkind = "one_at_a_time"\n[parameters."constraints.income_floor"]\n'
                      'values = [4100]\nbase = 4000\n', encoding="utf-8")
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(scenario), "--design", str(design), "--out", str(out),
                                 "--executor", "serial", "--no-plots"])
    assert result.exit_code == EXIT_TIME_LIMIT, result.output
    import pandas as pd

    runs = pd.read_csv(out / "results.csv", encoding="utf-8-sig").drop_duplicates("run_id")
    assert set(runs["status"]) == {"no_plan"}, runs[["status", "error"]]


def test_pareto_says_which_points_a_limit_cut_off(tmp_path: Path) -> None:
    scenario = _instance(tmp_path / "first", FIRST_PLAN)
    out = tmp_path / "front"
    result = runner.invoke(app, ["pareto", str(scenario), "--out", str(out), "--points", "3"])
    assert result.exit_code == EXIT_TIME_LIMIT, result.output
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["status"] == "time_limit" and "time_limit" in {p["status"] for p in run["points"]}
    scenario = _instance(tmp_path / "none", NO_PLAN)
    result = runner.invoke(app, ["pareto", str(scenario), "--out", str(tmp_path / "none-front"), "--points", "3"])
    assert result.exit_code == EXIT_NO_PLAN, result.output
    assert "infeasible" not in result.output and not (tmp_path / "none-front").exists()


def test_transition_without_a_plan_in_time_is_not_infeasible(tmp_path: Path) -> None:
    scenario = _instance(tmp_path, NO_PLAN)
    result = runner.invoke(app, ["transition", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_NO_PLAN, result.output
    assert "infeasible" not in result.output


def test_decompose_without_a_plan_in_time_exits_5_not_2(tmp_path: Path) -> None:
    """A township without a plan in its share of the time ended `solve --strategy decompose` with exit 2."""
    scenario = _instance(tmp_path, NO_PLAN)
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(tmp_path / "out"), "--strategy", "decompose",
                                 "--workers", "1"])
    assert result.exit_code == EXIT_NO_PLAN, result.output
    assert "infeasible" not in result.output and not (tmp_path / "out").exists()


def test_the_time_limit_counts_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--time-limit bounds the command, not only the solver: a build that takes a second leaves the solver at most
    the rest (a slower machine only leaves it less)."""
    import time

    from optiland.model import backend as backends
    from optiland.pipeline.run import prepare, solve_prepared, solver_options

    prepared = prepare(write_instance(tmp_path / "inst"))
    given: list[float] = []
    real = backends.make_backend

    def slow_backend(name: str, problem: object) -> object:
        built = real(name, problem)
        build, solve = built.build, built.solve

        def slow_build(*args: object, **kwargs: object) -> None:
            build(*args, **kwargs)
            time.sleep(1.0)

        def watched_solve(options: object, *args: object, **kwargs: object) -> object:
            given.append(options.time_limit)  # type: ignore[attr-defined]
            return solve(options, *args, **kwargs)

        built.build, built.solve = slow_build, watched_solve
        return built

    monkeypatch.setattr("optiland.pipeline.run.make_backend", slow_backend)
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, time_limit=30))
    assert given and max(given) <= 29.0 + 1e-6
    assert outcome.times["limited"] >= 1.0  # run.json: the time under the limit, the build in it


def test_progress_lines_when_not_a_terminal() -> None:
    """Off a terminal, a plain line at each stage and every few seconds: stage, done of total, best, bound, gap."""
    import io
    import time

    from optiland.progress import Display, current, reporting

    stream = io.StringIO()
    with reporting(Display(stream, every=0.05, live=False)):
        current().stage("plans of 5 townships")
        current().step(2, 5)
        current().incumbent(0.95, 0.96)
        ceiling = time.monotonic() + 60  # against a hang only: the line comes within a tick
        while "best" not in stream.getvalue() and time.monotonic() < ceiling:
            time.sleep(0.01)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("plans of 5 townships")
    last = [line for line in lines if "best" in line][-1]
    assert "plans of 5 townships; 2 of 5; best 0.95, bound 0.96, gap 1.05e-02" in last
    assert type(current()).__name__ == "Reporter"  # the display is removed with the block


def test_solve_prints_its_stages_off_a_terminal(tmp_path: Path) -> None:
    scenario = _instance(tmp_path, None)
    result = runner.invoke(app, ["solve", str(scenario), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_OK, result.output
    assert "building the model" in result.output and "solving (ecosystem_services" in result.output


def test_sigint_writes_the_best_plan_so_far_as_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT while HiGHS searches (in the watched child): the watchdog stops it and the best plan found so far is
    written with status interrupted, exit 130. The signal is sent when the first plan of the scenario's own solve
    reaches the progress display: an event, not a moment."""
    import os
    import signal

    from optiland.errors import EXIT_INTERRUPTED
    from optiland.progress import Display

    instance = tmp_path / "gen"
    result = runner.invoke(app, ["generate", "--parcels", "240", "--townships", "2", "--villages", "4", "--seed", "7",
                                 "--out", str(instance)])
    assert result.exit_code == 0, result.output
    sent: list[bool] = []

    def interrupt_at_first_plan(self: Display, objective: float | None, bound: float | None) -> None:
        if objective is not None and not sent and self.name.startswith("solving"):  # the scenario's own solve
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Display, "incumbent", interrupt_at_first_plan)
    out = tmp_path / "out"
    result = runner.invoke(app, ["solve", str(instance / "scenario.toml"), "--out", str(out), "--gap", "0"])
    assert sent, "no plan reached the display"
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["status"] == "interrupted" and run["objective"]["value"] is not None


def test_decompose_shares_without_a_plan_are_no_proof(monkeypatch: pytest.MonkeyPatch) -> None:
    """A township infeasible only with its share of a county limit proves nothing about the county: no plan, exit 5
    (it was 'infeasible', exit 3). Infeasible with every county limit lifted is a proof (exit 3)."""
    import numpy as np

    from optiland.errors import InfeasibleError, NoPlanError
    from optiland.pipeline import decompose
    from optiland.pipeline.run import solver_options
    from tests.bruteforce import prepare_tiny
    from tests.test_bruteforce import OVERRIDES, TWO, TWO_VILLAGES

    def none_for_the_first(parts: object, catalog: object) -> decompose.Shares:
        first = np.array([0.0, 1.0])
        return decompose.Shares(budget=first, transfer=first, area=first)

    monkeypatch.setattr(decompose, "shares", none_for_the_first)
    monkeypatch.setattr(decompose.Shares, "by_need", lambda self, *args, **kwargs: self)
    floors = {"income_floor": 9000, "budget": 200000, "transfer_budget": 100000}  # T1 must convert: it needs budget
    prepared = prepare_tiny(TWO, TWO_VILLAGES, "income", floors, OVERRIDES)
    options = solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60)
    with pytest.raises(NoPlanError, match="though it has one without them"):
        decompose.solve_by_township(prepared.scenario, prepared.catalog, prepared.inputs, options, workers=1)
    impossible = prepare_tiny(TWO, TWO_VILLAGES, "income", {**floors, "income_floor": 90000}, OVERRIDES)
    with pytest.raises(InfeasibleError, match="whatever its share"):
        decompose.solve_by_township(impossible.scenario, impossible.catalog, impossible.inputs, options, workers=1)
