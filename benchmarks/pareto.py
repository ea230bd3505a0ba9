"""Exact Pareto fronts: optiland.analysis.pareto against pyaugmecon on bi-objective 0-1 knapsacks; the demo's
per-point times.

    .venv/bin/python benchmarks/pareto.py [--pyaugmecon-python PATH] [--sizes 20,40,60,80] [--variants mip,auto]
                                          [--profile] [--demo]

Setup (once; pyaugmecon 1.0.8 pins numpy ~=1.25, so it lives in its own virtual environment):

    python3.11 -m venv benchmarks/.venv-pyaugmecon
    benchmarks/.venv-pyaugmecon/bin/pip install pyaugmecon==1.0.8 highspy

Without that venv (or --pyaugmecon-python) the pyaugmecon columns are left empty, with a message.

Knapsacks: seeded instances (``knapsack``) of 20 ... 80 items with one or two capacity rows (half the weight sum),
weights uniform in 10..100, first profit uniform in 10..100, second profit 110 minus the first plus noise in -15..15
(conflicting objectives, so fronts of tens to hundreds of points). Both objectives are maximised; both tools run in
exact mode, the same machine, one after the other:

- optiland: ``front(model, ..., method="augmecon2", steps={"f2": 1})`` with HiGHS, 1 thread, gap 0
  (``strategy="mip"``: branch and bound at once, the right choice for a generic MIP; the column ``optiland_auto_s``
  is the default strategy "auto", which first solves the LP and a repair MIP, made for the land-use model).
- pyaugmecon 1.0.8 (benchmarks/_pyaugmecon_runner.py in its venv): HiGHS through Pyomo ('highs' by default, or
  --pyaugmecon-solver appsi_highs), one process, flag array, bypass and early exit on, HiGHS options as optiland's,
  grid points = range of f2 + 1 (the range from optiland's payoff table, which is pyaugmecon's too: the runner
  reports pyaugmecon's own grid step, checked to be 1).

Times are of the front computation alone: from the Pyomo model (built beforehand) to the front, i.e. optiland's
``front()`` call and pyaugmecon's ``PyAugmecon(...)`` + ``solve()``. Solves count the payoff table too.
`--variants mip,preimport,inprocess` (`--profile`: all four) adds ``optiland_preimport_s`` (highspy imported in
the parent before the first solve) and ``optiland_inprocess_s`` (HiGHS in the benchmark's own process: a FrontModel
whose solve calls highspy directly), which isolate the cost of optiland.mip.solver's child process per solve.

`--demo`: instances/huanjiang-demo with objectives ecosystem_services,income at the `fast` preset (1% gap), a few
points, each solve limited (--time-limit): the model built once (``run_front``: per-point solve time) against a
from-scratch prepare + build + bound + solve at each point's epsilon (the G*_s of the index reused from the front,
so the from-scratch figure leaves out their solves: it is a lower bound). Heavy (minutes).

Results: benchmarks/results/pareto.csv and pareto_demo.csv. Run alone (flock /tmp/optiland-heavy.lock ...).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optiland.analysis.pareto import PyomoFrontModel, front, run_front
from optiland.mip.solver import SolveResult, SolverOptions, Status, load_preset
from optiland.model.backend import load_values, make_backend
from optiland.pipeline.run import prepare

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNNER = ROOT / "benchmarks" / "_pyaugmecon_runner.py"
PYAUGMECON_PYTHON = ROOT / "benchmarks" / ".venv-pyaugmecon" / "bin" / "python"
DEMO = ROOT / "instances" / "huanjiang-demo" / "scenario.toml"
SIZES = {20: 1, 40: 1, 60: 2, 80: 2}
"""Items -> capacity rows of the benchmark knapsacks."""
SEED = 2020


# ------------------------------------------------------------------------------------------------------------
# Knapsacks


@dataclass
class Knapsack:
    """A bi-objective 0-1 knapsack: max profits[k] . x (k = 0, 1) s.t. weights x <= capacities, x binary."""

    name: str
    profits: np.ndarray
    weights: np.ndarray
    capacities: np.ndarray

    def as_json(self, grid_points: int) -> dict[str, Any]:
        """The instance for the pyaugmecon runner."""
        return {"name": self.name, "profits": self.profits.tolist(), "weights": self.weights.tolist(),
                "capacities": self.capacities.tolist(), "grid_points": grid_points}

    def model(self) -> tuple[pyo.ConcreteModel, dict[str, Any]]:
        """The Pyomo model and its objectives f1, f2 as named expressions."""
        n = self.profits.shape[1]
        m = pyo.ConcreteModel()
        m.I = pyo.RangeSet(0, n - 1)
        m.J = pyo.RangeSet(0, len(self.capacities) - 1)
        m.x = pyo.Var(m.I, domain=pyo.Binary)
        m.capacity = pyo.Constraint(m.J, rule=lambda m, j: sum(int(self.weights[j, i]) * m.x[i] for i in m.I)
                                    <= int(self.capacities[j]))
        objectives = {f"f{k + 1}": sum(int(self.profits[k, i]) * m.x[i] for i in m.I) for k in range(2)}
        return m, objectives


def knapsack(items: int, rows: int, seed: int = SEED) -> Knapsack:
    """A seeded instance with conflicting profits (see the module docstring)."""
    rng = np.random.default_rng([seed, items, rows])
    first = rng.integers(10, 101, size=items)
    second = np.clip(110 - first + rng.integers(-15, 16, size=items), 1, None)
    weights = rng.integers(10, 101, size=(rows, items))
    return Knapsack(f"2kp{items}-{rows}c", np.vstack([first, second]), weights, weights.sum(axis=1) // 2)


def _integer_front(values: np.ndarray) -> set[tuple[int, int]]:
    """The points as integer tuples; an error if a value is not integral."""
    rounded = np.rint(values)
    if not np.allclose(values, rounded, atol=1e-6):
        raise ValueError(f"non-integral objective values: {values[~np.isclose(values, rounded, atol=1e-6)][:5]}")
    return {(int(a), int(b)) for a, b in rounded}


# ------------------------------------------------------------------------------------------------------------
# The tools


EXACT = {"mip_rel_gap": 0.0, "mip_abs_gap": 1e-6, "threads": 1, "time_limit": 300.0}


class InProcessFrontModel(PyomoFrontModel):
    """Diagnostic: PyomoFrontModel solving with highspy in this process (no child process, no watchdog)."""

    def solve(self, options: SolverOptions) -> SolveResult:
        """One HiGHS run on the current matrix, branch and bound at once."""
        from optiland.mip.solver import _highs

        self.solves += 1
        start = time.perf_counter()
        h = _highs(self.matrix(), options, options.time_limit)
        h.run()
        name = h.modelStatusToString(h.getModelStatus())
        self.x = None
        if name != "Optimal":
            status = Status.INFEASIBLE if "nfeasible" in name else Status.ERROR
            return SolveResult(status, None, None, None, None, time.perf_counter() - start, name)
        x = np.array(h.getSolution().col_value, dtype=float)
        x[self.lp.integer] = np.rint(x[self.lp.integer])
        self.x = x
        load_values(self.columns, x)
        objective = float(self.c @ x)
        return SolveResult(Status.OPTIMAL, x, objective, float(h.getInfo().mip_dual_bound), 0.0,
                           time.perf_counter() - start, name)


VARIANTS = ("mip", "auto", "preimport", "inprocess")
"""How optiland runs: strategy "mip"; the default strategy "auto"; "mip" with highspy imported in the parent before
the first solve (each solve's child then skips that import); HiGHS in the process itself (no child)."""


def _quiet_highs() -> None:
    """Import highspy and construct one Highs with stdout closed (it prints a banner once per process)."""
    import os

    import highspy

    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def run_optiland(instance: Knapsack, variant: str) -> dict[str, Any]:
    """optiland's exact front of the instance and the seconds of the front() call (model built before)."""
    m, objectives = instance.model()
    options = SolverOptions(**EXACT, strategy="auto" if variant == "auto" else "mip")
    senses = {"f1": "max", "f2": "max"}
    if variant in ("preimport", "inprocess"):
        _quiet_highs()
    start = time.perf_counter()
    if variant == "inprocess":
        result = front(InProcessFrontModel(m, objectives, senses), method="augmecon2", steps={"f2": 1},
                       options=options, max_points=100_000)
    else:
        result = front(m, objectives, senses, method="augmecon2", steps={"f2": 1}, options=options,
                       max_points=100_000)
    seconds = time.perf_counter() - start
    return {"front": result.table[["f1", "f2"]].to_numpy(dtype=float).tolist(), "seconds": seconds,
            "solves": result.solves + result.payoff_solves, "grid_points": result.grid_points,
            "range_f2": list(result.ranges["f2"]), "capped": result.capped}


def run_optiland_fresh(instance: Knapsack, items: int, rows: int, variant: str) -> dict[str, Any]:
    """run_optiland in a fresh interpreter (like pyaugmecon's), so that no run inherits another's imports."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.json"
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                               f"{items},{rows},{variant}", "--worker-out", str(out)],
                              capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"optiland ({variant}) failed on {instance.name}:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def run_pyaugmecon(instance: Knapsack, grid_points: int, python: Path, solver: str) -> dict[str, Any]:
    """pyaugmecon's front, in a subprocess of its venv's python (see benchmarks/_pyaugmecon_runner.py)."""
    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder) / "instance.json", Path(folder) / "out.json"
        source.write_text(json.dumps(instance.as_json(grid_points)))
        start = time.perf_counter()
        done = subprocess.run([str(python), str(RUNNER), str(source), str(out), "--solver", solver],
                              capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"pyaugmecon runner failed on {instance.name}:\n{done.stderr[-3000:]}")
        result = json.loads(out.read_text())
    result["wall_seconds"] = wall
    return result


def knapsacks(sizes: dict[int, int], python: Path | None, solver: str, variants: list[str],
              out: Path | None = None) -> pd.DataFrame:
    """Every instance by both tools, one after the other; one row each (written to `out` after each instance)."""
    rows: list[dict[str, Any]] = []
    for items, constraints in sizes.items():
        instance = knapsack(items, constraints)
        runs = {variant: run_optiland_fresh(instance, items, constraints, variant) for variant in variants}
        mip = runs["mip"]
        points = _integer_front(np.array(mip["front"]).reshape(-1, 2))
        row: dict[str, Any] = {
            "instance": instance.name, "items": items, "constraints": constraints, "front_points": len(points),
            "grid_points": mip["grid_points"], "optiland_s": round(mip["seconds"], 3), "optiland_solves": mip["solves"],
            "pyaugmecon_s": None, "pyaugmecon_solves": None, "equal": None, "speedup": None,
            "optiland_ms_per_solve": round(1000 * mip["seconds"] / mip["solves"], 1),
            "pyaugmecon_ms_per_solve": None,
        }
        for variant in variants[1:]:
            row[f"optiland_{variant}_s"] = round(runs[variant]["seconds"], 3)
        row["optiland_variants_equal"] = all(_integer_front(np.array(r["front"]).reshape(-1, 2)) == points
                                             for r in runs.values())
        if python is not None:
            low, high = mip["range_f2"]
            theirs = run_pyaugmecon(instance, int(round(high - low)) + 1, python, solver)
            other = _integer_front(np.array(theirs["front"], dtype=float).reshape(-1, 2))
            solves = theirs["grid_solves"] + theirs["payoff_solves"]
            row.update({"pyaugmecon_s": round(theirs["seconds"], 3), "pyaugmecon_solves": solves,
                        "equal": other == points and abs(theirs["grid_step"] - 1.0) < 1e-9,
                        "speedup": round(theirs["seconds"] / mip["seconds"], 2),
                        "pyaugmecon_ms_per_solve": round(1000 * theirs["seconds"] / solves, 1)})
            if other != points:
                print(f"  {instance.name}: fronts differ; only optiland: {sorted(points - other)[:10]}, "
                      f"only pyaugmecon: {sorted(other - points)[:10]}", file=sys.stderr)
        rows.append(row)
        if out is not None:
            pd.DataFrame(rows).to_csv(out, index=False)
        print(f"  {instance.name}: {len(points)} points, optiland {row['optiland_s']} s, "
              f"pyaugmecon {row['pyaugmecon_s']} s, equal {row['equal']}", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------------
# The demo


def demo(scenario: Path, points: int, time_limit: float) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-point times on the demo: built once (the front) against a from-scratch build and solve per point."""
    options = load_preset("fast", {"time_limit": time_limit})
    start = time.perf_counter()
    _, result, model, times = run_front(scenario, ["ecosystem_services", "income"], points=points, options=options)
    times = {**times, "total": time.perf_counter() - start, "payoff_solves": result.payoff_solves,
             "grid_solves": result.solves}
    times["backend"] = model.backend.name
    print(f"  front: {len(result.table)} points in {times['total']:.1f} s ({times})", file=sys.stderr, flush=True)
    scales = dict(model.es_scale)
    rows = []
    for _, point in result.table.iterrows():
        epsilon = float(point["eps_income"])
        if not np.isfinite(epsilon):  # a point not found on the grid: bound at its own income
            epsilon = float(point["income"])
        t0 = time.perf_counter()
        prepared = prepare(scenario)
        t1 = time.perf_counter()
        backend = make_backend("auto", prepared.problem)  # as the front's (LandUseFrontModel)
        backend.build(prepared.problem)
        backend.es_scale = scales
        t2 = time.perf_counter()
        backend.set_bound("income", epsilon, None)
        backend.set_objective({"ecosystem_services": 1.0}, "max", scale=scales,
                              weights=prepared.problem.params["weights"])
        solved = backend.solve(options)
        t3 = time.perf_counter()
        rows.append({
            "point": int(point["point"]), "eps_income": epsilon,
            "ecosystem_services": float(point["ecosystem_services"]), "income": float(point["income"]),
            "once_status": point["status"], "once_gap": point["gap"],
            "once_solve_s": round(float(point["solve_seconds"]), 3),
            "once_amortised_s": round(times["total"] / len(result.table), 3),
            "scratch_prepare_s": round(t1 - t0, 3), "scratch_build_s": round(t2 - t1, 3),
            "scratch_solve_s": round(t3 - t2, 3), "scratch_total_s": round(t3 - t0, 3),
            "scratch_status": solved.status.value, "scratch_gap": solved.gap,
            "scratch_ecosystem_services": solved.objective, "backend": backend.name,
        })
        print(f"  point {rows[-1]['point']}: once {rows[-1]['once_solve_s']} s, from scratch "
              f"{rows[-1]['scratch_total_s']} s", file=sys.stderr, flush=True)
    return pd.DataFrame(rows), times


# ------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pyaugmecon-python", type=Path, default=PYAUGMECON_PYTHON,
                        help="python of pyaugmecon's venv (default benchmarks/.venv-pyaugmecon/bin/python)")
    parser.add_argument("--pyaugmecon-solver", default="highs", choices=["highs", "appsi_highs"])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="items of the knapsacks to run")
    parser.add_argument("--variants", default="mip,auto",
                        help=f"optiland variants to time, mip first (of {', '.join(VARIANTS)}; see VARIANTS)")
    parser.add_argument("--profile", action="store_true", help="--variants mip,auto,preimport,inprocess")
    parser.add_argument("--demo", action="store_true", help="also the demo instance's per-point times (minutes)")
    parser.add_argument("--demo-points", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per demo solve")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # items,rows,variant: one optiland run (internal)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        items, rows, variant = args.worker.split(",")
        result = run_optiland(knapsack(int(items), int(rows)), variant)
        args.worker_out.write_text(json.dumps(result))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    python: Path | None = args.pyaugmecon_python
    if not python.is_file():
        print(f"pyaugmecon skipped: no {python}; create its venv as the docstring of this script says",
              file=sys.stderr)
        python = None
    sizes = {int(n): SIZES.get(int(n), 1) for n in args.sizes.split(",") if n}
    variants = list(VARIANTS) if args.profile else ["mip", *[v for v in args.variants.split(",") if v != "mip"]]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    if sizes:  # --sizes "" runs the demo alone
        table = knapsacks(sizes, python, args.pyaugmecon_solver, variants, RESULTS / "pareto.csv")
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(table.to_string(index=False))
    if args.demo:
        points, times = demo(DEMO, args.demo_points, args.time_limit)
        points.to_csv(RESULTS / "pareto_demo.csv", index=False)
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(points.to_string(index=False))
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in times.items()}))


if __name__ == "__main__":
    main()
