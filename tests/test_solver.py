"""The HiGHS runner: the watchdog keeps the time limit, the LP-and-repair strategy agrees with the plain MIP."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import optiland.mip.solver as solver
from optiland.mip.solver import MatrixLP, SolverOptions, Status, partition_rows, repair_bounds, solve_lp


def assignment_lp(n: int = 12, k: int = 4, seed: int = 0) -> MatrixLP:
    """n parcels choose one of k uses (sum x = 1 each), a knapsack-like budget row and a coverage row couple them."""
    rng = np.random.default_rng(seed)
    cols = n * k
    rows = [sp.kron(sp.eye(n), np.ones((1, k)))]
    cost = rng.uniform(1, 10, cols)
    cover = rng.uniform(0, 5, cols)
    A = sp.vstack([*rows, sp.csr_matrix(cost), sp.csr_matrix(cover)]).tocsr()
    lower = np.concatenate([np.ones(n), [-np.inf, cover.reshape(n, k).mean(axis=1).sum()]])
    upper = np.concatenate([np.ones(n), [cost.reshape(n, k).mean(axis=1).sum(), np.inf]])
    return MatrixLP(c=rng.uniform(0, 10, cols), A=A, row_lower=lower, row_upper=upper, col_lower=np.zeros(cols),
                    col_upper=np.ones(cols), integer=np.ones(cols, bool), sense="max")


@pytest.mark.parametrize("seed", range(5))
def test_strategies_agree(seed: int) -> None:
    lp = assignment_lp(seed=seed)
    exact = SolverOptions(mip_rel_gap=0.0, mip_abs_gap=1e-9, time_limit=60)
    plain = solve_lp(lp, SolverOptions(**{**exact.as_dict(), "strategy": "mip"}))
    staged = solve_lp(lp, exact)
    assert plain.status == staged.status == Status.OPTIMAL
    assert staged.objective == pytest.approx(plain.objective, rel=1e-9)
    x = staged.x
    assert np.allclose(lp.A @ x >= lp.row_lower - 1e-7, True) and np.allclose(lp.A @ x <= lp.row_upper + 1e-7, True)
    assert np.allclose(x, np.rint(x))


def test_repair_frees_fractional_parcels() -> None:
    lp = assignment_lp(n=3, k=2)
    assert list(partition_rows(lp)) == [0, 1, 2]
    x = np.array([1.0, 0.0, 0.4, 0.6, 0.0, 1.0])
    lower, upper, freed = repair_bounds(lp, x)
    assert freed == 1
    assert list(lower) == [1, 0, 0, 0, 0, 1] and list(upper) == [1, 0, 1, 1, 0, 1]


def test_a_repair_that_cannot_meet_a_row_frees_that_rows_parcels() -> None:
    """Three parcels choose a herb (a) or not (b); the herbs' area (1, 1, 0.5) must be exactly 1.5 (a market cap
    and a floor). The LP takes parcel 1 whole and half of parcel 2 (value 4); fixing parcels 1 and 3 as the LP chose
    them leaves an area of 1 or 2, so the repair MIP is infeasible. The rows it cannot meet free their parcels, and
    the repair finds the integer optimum: parcels 1 and 3 (3.1)."""
    area = np.array([1.0, 0.0, 1.0, 0.0, 0.5, 0.0])
    A = sp.vstack([sp.kron(sp.eye(3), np.ones((1, 2))), sp.csr_matrix(area), sp.csr_matrix(2 * area)]).tocsr()
    lp = MatrixLP(c=np.array([3.0, 0.0, 2.0, 0.0, 0.1, 0.0]), A=A, row_lower=np.r_[np.ones(3), -np.inf, 3.0],
                  row_upper=np.r_[np.ones(3), 1.5, np.inf], col_lower=np.zeros(6), col_upper=np.ones(6),
                  integer=np.ones(6, bool), sense="max")
    x_lp = np.array([1.0, 0.0, 0.5, 0.5, 0.0, 1.0])
    options = SolverOptions(repair_parcels=0, time_limit=30)
    lower, upper, freed = repair_bounds(lp, x_lp, np.zeros(6), 0)
    assert freed == 1 and solver._solve_fixed(lp, lower, upper, options, 30, integer=True) is None
    repaired = solver._repair(lp, x_lp, np.zeros(6), options, lambda: 30.0)
    assert repaired is not None
    objective, x = repaired
    assert objective == pytest.approx(3.1)
    assert np.allclose(x, [1, 0, 0, 1, 1, 0])


def test_infeasible_reported() -> None:
    lp = assignment_lp(n=4, k=2)
    lp.row_upper[4] = -1.0  # budget below zero
    result = solve_lp(lp, SolverOptions(time_limit=30))
    assert result.status == Status.INFEASIBLE and result.x is None


def _stuck_child(lp: MatrixLP, options: SolverOptions, conn: Any, *_: Any) -> None:
    """A solver that reports one plan and a bound, then never returns (as HiGHS can in presolve)."""
    x = np.zeros(len(lp.c))
    conn.send(("bound", 99.0))
    conn.send(("incumbent", 42.0, 120.0, x))
    time.sleep(3600)


def test_watchdog_keeps_time_limit_and_returns_best_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solver, "_child", _stuck_child)
    monkeypatch.setattr(solver, "IN_PROCESS_COLUMNS", 0)  # the watchdog guards the forked child
    lp = assignment_lp(n=2, k=2)
    result = solve_lp(lp, SolverOptions(time_limit=1.0))
    assert result.status == Status.TIME_LIMIT
    assert "watchdog" in result.message
    assert result.objective == 42.0
    assert result.bound == 99.0  # the tighter of the streamed LP bound and the MIP bound
    assert result.gap == pytest.approx((99.0 - 42.0) / 42.0)
    assert result.x is not None


def _silent_child(lp: MatrixLP, options: SolverOptions, conn: Any, *_: Any) -> None:
    time.sleep(3600)


def test_watchdog_without_any_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solver, "_child", _silent_child)
    monkeypatch.setattr(solver, "IN_PROCESS_COLUMNS", 0)
    result = solve_lp(assignment_lp(n=2, k=2), SolverOptions(time_limit=0.5))
    assert result.status == Status.TIME_LIMIT and result.x is None
    assert "before any feasible plan" in result.message


def test_presets_load_and_unknown_is_named() -> None:
    options = solver.load_preset("default", {"time_limit": 5})
    assert options.mip_rel_gap == 1e-4 and options.time_limit == 5 and options.threads == 1
    with pytest.raises(Exception, match="nosuch"):
        solver.load_preset("nosuch")


def test_unknown_strategy_is_named() -> None:
    with pytest.raises(solver.OptilandError, match="unknown solver strategy 'fastest'"):
        SolverOptions(strategy="fastest")


def test_verbose_shows_highs_log_on_stderr(tmp_path: Any) -> None:
    """--verbose: HiGHS's log reaches the terminal (stderr) from the child process; stdout keeps the summary."""
    import subprocess
    import sys

    instance = tmp_path / "inst"
    subprocess.run([sys.executable, "-m", "optiland.cli", "generate", "--parcels", "40", "--villages", "2",
                    "--out", str(instance)], check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "optiland.cli", "solve", str(instance / "scenario.toml"),
                           "--verbose", "--gap", "0.01", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "HiGHS" in done.stderr and "HiGHS" not in done.stdout
    assert "objective" in done.stdout


@pytest.mark.parametrize("seed", range(3))
def test_in_process_and_child_agree(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small models are solved in the calling process; the result equals the forked child's."""
    lp = assignment_lp(seed=seed)
    options = SolverOptions(mip_rel_gap=0.0, time_limit=60)
    here = solve_lp(lp, options)
    monkeypatch.setattr(solver, "IN_PROCESS_COLUMNS", 0)
    forked = solve_lp(lp, options)
    assert here.status == forked.status == Status.OPTIMAL
    assert here.objective == pytest.approx(forked.objective, rel=1e-12)
    assert np.array_equal(np.rint(here.x), np.rint(forked.x))


@pytest.mark.parametrize("seed", range(3))
def test_interior_point_relaxation_gives_the_same_plan_value(seed: int) -> None:
    """lp_method ipm (interior point with crossover, the default on large models) and simplex prove the same
    optimum through the LP-and-repair strategy."""
    lp = assignment_lp(n=30, seed=seed)
    base = SolverOptions(mip_rel_gap=0.0, mip_abs_gap=1e-9, time_limit=60)
    by_ipm = solve_lp(lp, SolverOptions(**{**base.as_dict(), "lp_method": "ipm"}))
    by_simplex = solve_lp(lp, SolverOptions(**{**base.as_dict(), "lp_method": "simplex"}))
    assert by_ipm.status == by_simplex.status == Status.OPTIMAL
    assert by_ipm.objective == pytest.approx(by_simplex.objective, rel=1e-9)


def test_a_start_plan_is_kept_when_time_runs_out() -> None:
    """A feasible start is the answer's floor: with almost no time the result is that plan, never none; an
    infeasible start is ignored."""
    lp = assignment_lp(n=40, seed=3)
    best = solve_lp(lp, SolverOptions(mip_rel_gap=0.0, time_limit=60))
    assert solver.is_plan(lp, best.x)
    rushed = solve_lp(lp, SolverOptions(time_limit=1e-4), start=best.x)
    assert rushed.x is not None and rushed.objective == pytest.approx(best.objective, rel=1e-9)
    broken = np.zeros(len(lp.c))  # every one-choice row empty
    assert not solver.is_plan(lp, broken)
    again = solve_lp(lp, SolverOptions(mip_rel_gap=0.0, time_limit=60), start=broken)
    assert again.objective == pytest.approx(best.objective, rel=1e-9)


def _stuck_after_proving_child(lp: MatrixLP, options: SolverOptions, conn: Any, *_: Any) -> None:
    """The root LP bound, a plan, then the full MIP's proven bound moving (as the interrupt callback streams it),
    then no return."""
    conn.send(("bound", 99.0))
    conn.send(("incumbent", 42.0, 99.0, np.zeros(len(lp.c))))
    conn.send(("dual_bound", 80.0))
    conn.send(("dual_bound", 61.5))
    time.sleep(3600)


def test_watchdog_reports_the_best_bound_proven_not_the_root_lps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solver, "_child", _stuck_after_proving_child)
    monkeypatch.setattr(solver, "IN_PROCESS_COLUMNS", 0)
    result = solve_lp(assignment_lp(n=2, k=2), SolverOptions(time_limit=1.0))
    assert result.status == Status.TIME_LIMIT and result.objective == 42.0
    assert result.bound == 61.5 and result.gap == pytest.approx((61.5 - 42.0) / 42.0)


def test_the_repair_leaves_the_full_mip_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the repair finds nothing, the full MIP still proves the optimum the plain MIP finds."""
    monkeypatch.setattr(solver, "_repair", lambda *args: None)
    lp = assignment_lp(n=30, seed=4)
    result = solve_lp(lp, SolverOptions(mip_rel_gap=0.0, time_limit=200.0))
    plain = solve_lp(lp, SolverOptions(mip_rel_gap=0.0, time_limit=200.0, strategy="mip"))
    assert result.status == Status.OPTIMAL and result.objective == pytest.approx(plain.objective, rel=1e-9)


def test_a_repair_mip_ends_on_its_node_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A repair MIP ends on work (REPAIR_NODES nodes), not the clock (issue 26: uncapped, a repair MIP took the whole
    time limit; issue 20: a stage ended by the clock makes the plan depend on the machine's load)."""
    seen: list[Any] = []
    real = solver._highs

    def keeping(lp: MatrixLP, options: SolverOptions, time_limit: float) -> Any:
        h = real(lp, options, time_limit)
        seen.append(h)
        return h

    monkeypatch.setattr(solver, "_highs", keeping)
    rng = np.random.default_rng(1)  # a market-split row pair: branch and bound needs hundreds of nodes
    a = rng.integers(0, 100, (2, 24)).astype(float)
    b = np.floor(a.sum(axis=1) / 2)
    lp = MatrixLP(c=rng.uniform(0, 1, 24), A=sp.csr_matrix(a), row_lower=b, row_upper=b, col_lower=np.zeros(24),
                  col_upper=np.ones(24), integer=np.ones(24, dtype=bool))
    exact = SolverOptions(mip_rel_gap=0.0, mip_abs_gap=0.0, presolve="off")
    monkeypatch.setattr(solver, "REPAIR_NODES", 10**6)
    solver._solve_fixed(lp, lp.col_lower, lp.col_upper, exact, 600.0, integer=True)
    assert seen[-1].getInfo().mip_node_count > 3
    monkeypatch.setattr(solver, "REPAIR_NODES", 3)
    solver._solve_fixed(lp, lp.col_lower, lp.col_upper, exact, 600.0, integer=True)
    assert seen[-1].getInfo().mip_node_count <= 3


def test_the_full_mip_streams_its_proven_bound() -> None:
    """Every bound the child streams while HiGHS branches is valid: at least the optimum of this maximisation."""
    lp = assignment_lp(n=60, k=5, seed=2)
    conn = solver._Inbox()
    with solver.c_stdout():
        solver._child(lp, SolverOptions(mip_rel_gap=0.0, time_limit=200.0, strategy="mip"), conn, in_process=True)
    final = conn.messages[-1]
    assert final[0] == "done" and final[1] == "Optimal"
    streamed = [m[1] for m in conn.messages if m[0] == "dual_bound"]
    assert streamed and all(b >= final[2] - 1e-6 * abs(final[2]) for b in streamed)


def test_a_child_after_a_threaded_solve_in_this_process_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked child inherits HiGHS's thread scheduler but not its worker threads: after a solve here with two
    threads, the child's MIP once waited on workers that do not exist (the Marxan sample's 1% plan: none in 120 s).
    The child's solve must reach the optimum the in-process solve finds (its time limit, 20 times what it takes,
    is only a ceiling)."""
    lp = assignment_lp(n=60, k=5, seed=2)
    here = solve_lp(lp, SolverOptions(mip_rel_gap=0.0, time_limit=300.0, threads=2, strategy="mip"))
    assert here.status == Status.OPTIMAL
    monkeypatch.setattr(solver, "IN_PROCESS_COLUMNS", 0)
    child = solve_lp(lp, SolverOptions(mip_rel_gap=0.0, time_limit=60.0, threads=2, strategy="mip"))
    assert child.status == Status.OPTIMAL and child.objective == pytest.approx(here.objective, rel=1e-9)
