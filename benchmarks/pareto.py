"""Exact Pareto fronts side by side: optiland's generic front engine against pyaugmecon on multi-objective knapsacks.

    .venv/bin/python benchmarks/pareto.py [--instances 2kp40,3kp40,...] [--pyaugmecon-python PATH] [--demo]

Setup (once; pyaugmecon 1.0.8 pins numpy ~=1.25, so it lives in its own virtual environment):

    python3.11 -m venv benchmarks/.venv-pyaugmecon
    benchmarks/.venv-pyaugmecon/bin/pip install pyaugmecon==1.0.8 highspy

Without that venv (or --pyaugmecon-python) the pyaugmecon columns are left empty, with a message.

Instances (seeded, ``knapsack``): 0-1 knapsacks of 40 to 100 items, one capacity row (half the weight sum, weights
uniform in 10..100). Bi-objective ``2kpN``: first profit uniform in 10..100, second 110 minus the first plus noise
in -15..15 (conflicting). Tri-objective ``3kpN``: two profits uniform in 1..10, the third 11 minus their mean plus
noise in -2..2 (small profits keep the grid, up to ~10^5 cells, and pyaugmecon's run within minutes). All
objectives maximised.

Both tools run in exact mode on the same machine, one after the other, each in a fresh interpreter, HiGHS 1.16 with
one thread, zero gap (mip_rel_gap = mip_abs_gap = 0), presolve on, seed 2020:

- optiland: ``front(model, objectives, senses, exact=True)`` (unit steps on the integer-valued constrained objectives,
  strategy "mip", integral lexicographic weights; optiland.analysis.front_engine), the model built beforehand.
- pyaugmecon 1.0.8 (benchmarks/_pyaugmecon_runner.py in its venv): HiGHS through Pyomo ('highs'), one solver
  process, flag array, bypass and early exit on, grid points = the largest constrained range + 1 (its grid has one
  number of points for every objective, so a step of at most 1 on each).

Nadir: with two objectives both use the payoff table's (exact). With three, the payoff table's nadir is only an
estimate, so optiland first runs with no nadir given (``optiland_safe_*``: its ranges start at each objective's
minimum over the feasible set), and the nadir of that complete front is then given to both tools (``nadir=``,
pyaugmecon's ``nadir_points``) for the timed pair.

Figures: ``*_s`` wall seconds of the front computation alone (from the built model to the front: optiland's
``front()`` call, pyaugmecon's ``PyAugmecon(...)`` + ``solve()``), ``*_cpu_s`` CPU seconds of the same (process and
children: what a loaded machine changes least), ``*_solves`` every MIP solved (payoff table included),
``*_points`` and ``*_equal``: pyaugmecon's front and whether it is optiland's point for point, ``speedup``:
pyaugmecon's seconds over optiland's (wall; ``speedup_cpu`` by CPU). optiland's exact mode turns HiGHS's root
heuristics off (front_engine.EXACT_HIGHS); ``pyaugmecon_exact_highs_*`` is pyaugmecon given the same HiGHS options,
so the columns ``speedup*_vs_exact_highs`` say how much of the lead is the engine and not those options. The
machine is shared with other work; `load` is the 1-minute load average at the start of each row.

`--demo`: a 25-point front of instances/huanjiang-demo (ecosystem services index vs income) with the model built
once, every point solved to the scenario's gap (``--demo-gap``) with its proven gap, written to
results/pareto_demo.csv with the run's seconds on every row (issue 20's target: under 60 s). Run alone:
``flock /work/bench.lock ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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

from optiland.analysis.front_engine import EXACT_HIGHS
from optiland.analysis.pareto import front
from optiland.mip.solver import SolverOptions, highs_version

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNNER = ROOT / "benchmarks" / "_pyaugmecon_runner.py"
PYAUGMECON_PYTHON = ROOT / "benchmarks" / ".venv-pyaugmecon" / "bin" / "python"
DEMO = ROOT / "instances" / "huanjiang-demo" / "scenario.toml"
INSTANCES = ("2kp40", "2kp60", "2kp80", "2kp100", "3kp40", "3kp60")
SEED = 2020
OPTIONS = {"mip_rel_gap": 0.0, "mip_abs_gap": 0.0, "threads": 1, "random_seed": SEED, "presolve": "on",
           "time_limit": 600.0}


# ------------------------------------------------------------------------------------------------------------
# Knapsacks


@dataclass
class Knapsack:
    """A multi-objective 0-1 knapsack: max profits[k] . x for every k s.t. weights x <= capacities, x binary."""

    name: str
    profits: np.ndarray
    weights: np.ndarray
    capacities: np.ndarray

    def as_json(self, grid_points: int, nadir: list[float] | None, highs: dict[str, Any]) -> dict[str, Any]:
        """The instance for the pyaugmecon runner."""
        return {"name": self.name, "profits": self.profits.tolist(), "weights": self.weights.tolist(),
                "capacities": self.capacities.tolist(), "grid_points": grid_points, "nadir": nadir, "highs": highs}

    def model(self) -> tuple[pyo.ConcreteModel, dict[str, Any]]:
        """The Pyomo model and its objectives f1, f2, ... as named expressions."""
        n = self.profits.shape[1]
        m = pyo.ConcreteModel()
        m.I = pyo.RangeSet(0, n - 1)
        m.J = pyo.RangeSet(0, len(self.capacities) - 1)
        m.x = pyo.Var(m.I, domain=pyo.Binary)
        m.capacity = pyo.Constraint(m.J, rule=lambda m, j: sum(int(self.weights[j, i]) * m.x[i] for i in m.I)
                                    <= int(self.capacities[j]))
        objectives = {f"f{k + 1}": sum(int(self.profits[k, i]) * m.x[i] for i in m.I)
                      for k in range(len(self.profits))}
        return m, objectives


def knapsack(name: str, seed: int = SEED) -> Knapsack:
    """The seeded instance `name` ("2kp60": two objectives, 60 items; see the module docstring)."""
    p, items = int(name[0]), int(name[3:])
    rng = np.random.default_rng([seed, items, p])
    if p == 2:
        first = rng.integers(10, 101, size=items)
        profits = np.vstack([first, np.clip(110 - first + rng.integers(-15, 16, size=items), 1, None)])
    else:
        first, second = rng.integers(1, 11, size=items), rng.integers(1, 11, size=items)
        third = np.clip(11 - (first + second) // 2 + rng.integers(-2, 3, size=items), 1, None)
        profits = np.vstack([first, second, third])
    weights = rng.integers(10, 101, size=(1, items))
    return Knapsack(name, profits, weights, weights.sum(axis=1) // 2)


def _points(values: Any) -> set[tuple[int, ...]]:
    """The points as integer tuples; an error if a value is not integral."""
    values = np.asarray(values, dtype=float)
    rounded = np.rint(values)
    if not np.allclose(values, rounded, atol=1e-6):
        raise ValueError(f"non-integral objective values: {values[~np.isclose(values, rounded, atol=1e-6)][:5]}")
    return {tuple(int(v) for v in row) for row in rounded}


def _cpu() -> float:
    """CPU seconds of this process and its ended children."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


# ------------------------------------------------------------------------------------------------------------
# The tools


def run_optiland(instance: Knapsack, nadir: dict[str, float] | None) -> dict[str, Any]:
    """optiland's exact front of the instance, timed from the built model (wall and CPU seconds)."""
    m, objectives = instance.model()
    senses = {k: "max" for k in objectives}
    start, cpu = time.perf_counter(), _cpu()
    result = front(m, objectives, senses, options=SolverOptions(**OPTIONS), exact=True, nadir=nadir,
                   max_points=1_000_000)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"front": result.table[list(objectives)].to_numpy(dtype=float).tolist(), "seconds": seconds,
            "cpu_seconds": cpu, "solves": result.solves + result.payoff_solves, "grid_points": result.grid_points,
            "ranges": {k: list(v) for k, v in result.ranges.items()}, "capped": result.capped,
            "flag_entries_peak": result.flag_entries_peak}


def run_optiland_fresh(instance: Knapsack, nadir: dict[str, float] | None) -> dict[str, Any]:
    """run_optiland in a fresh interpreter (like pyaugmecon's), so that no run inherits another's imports."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.json"
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", instance.name,
                               "--worker-nadir", json.dumps(nadir), "--worker-out", str(out)],
                              capture_output=True, text=True, timeout=7200)
        if done.returncode != 0:
            raise RuntimeError(f"optiland failed on {instance.name}:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def run_pyaugmecon(instance: Knapsack, grid_points: int, nadir: list[float] | None, python: Path,
                   highs: dict[str, Any]) -> dict[str, Any]:
    """pyaugmecon's front, in a subprocess of its venv's python (see benchmarks/_pyaugmecon_runner.py)."""
    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder) / "instance.json", Path(folder) / "out.json"
        source.write_text(json.dumps(instance.as_json(grid_points, nadir, highs)))
        done = subprocess.run([str(python), str(RUNNER), str(source), str(out), "--solver", "highs"],
                              capture_output=True, text=True, timeout=7200)
        if done.returncode != 0:
            raise RuntimeError(f"pyaugmecon runner failed on {instance.name}:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def knapsacks(names: list[str], python: Path | None, out: Path, skip: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Every instance by both tools, one after the other; one row each, merged into `out` after each instance (a
    row's columns measured in this call replace that instance's, the others are kept, so that an instance can be
    measured in several bench-lock holds). `skip`: runs left out, of "safe" (three objectives: the nadir then comes
    from `out`'s row), "pyaugmecon", "pyaugmecon_exact_highs"."""
    rows: list[dict[str, Any]] = []
    known = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=["instance"])
    for name in names:
        instance = knapsack(name)
        p = len(instance.profits)
        load = os.getloadavg()[0]
        row: dict[str, Any] = {"instance": name, "objectives": p, "items": instance.profits.shape[1],
                               "constraints": len(instance.capacities)}
        nadir = None
        previous = known[known["instance"] == name]
        if p > 2 and "safe" in skip:  # the nadir of the complete front, as measured before
            if previous.empty or not str(previous["nadir"].iloc[0]).startswith("{"):
                raise RuntimeError(f"{name}: no nadir in {out} to skip the safe run with")
            nadir = json.loads(previous["nadir"].iloc[0])
        elif p > 2:  # the complete front with no nadir given; its nadir then goes to both timed runs
            safe = run_optiland_fresh(instance, None)
            found = _points(safe["front"])
            nadir = {f"f{k + 1}": float(min(q[k] for q in found)) for k in range(1, p)}
            row.update({"optiland_safe_s": round(safe["seconds"], 2),
                        "optiland_safe_cpu_s": round(safe["cpu_seconds"], 2), "optiland_safe_solves": safe["solves"],
                        "optiland_safe_grid_points": safe["grid_points"],
                        "optiland_safe_flag_entries_peak": safe["flag_entries_peak"]})
        ours = run_optiland_fresh(instance, nadir)
        points = _points(ours["front"])
        if p > 2 and "safe" not in skip and points != _points(safe["front"]):
            raise RuntimeError(f"{name}: optiland's fronts with and without the nadir differ")
        row.update({"front_points": len(points), "grid_points": ours["grid_points"],
                    "nadir": json.dumps(nadir) if nadir else "payoff table",
                    "optiland_s": round(ours["seconds"], 2), "optiland_cpu_s": round(ours["cpu_seconds"], 2),
                    "optiland_solves": ours["solves"], "flag_entries_peak": ours["flag_entries_peak"]})
        if python is not None:
            spans = [high - low for low, high in list(ours["ranges"].values())[1:]]
            for label, highs in (("pyaugmecon", {}), ("pyaugmecon_exact_highs", EXACT_HIGHS)):
                if label in skip:
                    continue
                theirs = run_pyaugmecon(instance, int(round(max(spans))) + 1,
                                        list(nadir.values()) if nadir else None, python, highs)
                other = _points(theirs["front"])
                row.update({f"{label}_s": round(theirs["seconds"], 2),
                            f"{label}_cpu_s": round(theirs["cpu_seconds"], 2),
                            f"{label}_solves": theirs["grid_solves"] + theirs["payoff_solves"],
                            f"{label}_points": len(other),
                            f"{label}_equal": other == points and max(theirs["grid_step"]) <= 1.0 + 1e-9})
                if other != points:
                    print(f"  {name} ({label}): fronts differ; {len(points - other)} only optiland's, e.g. "
                          f"{sorted(points - other)[:5]}, {len(other - points)} only pyaugmecon's, e.g. "
                          f"{sorted(other - points)[:5]}", file=sys.stderr)
                row["pyaugmecon_grid_points"] = theirs["grid_points"] ** (p - 1)
        merged = {**(previous.iloc[0].dropna().to_dict() if not previous.empty else {}), **row}
        for kind in ("", "_cpu"):  # against the latest pyaugmecon figures of the instance
            for label, column in (("pyaugmecon", f"speedup{kind}"),
                                  ("pyaugmecon_exact_highs", f"speedup{kind}_vs_exact_highs")):
                if f"{label}{kind}_s" in merged:
                    row[column] = round(float(merged[f"{label}{kind}_s"]) / row[f"optiland{kind}_s"], 2)
        row.update({"load": round(load, 1), "highs": highs_version(), "settings": "exact, HiGHS 1 thread, gap 0, "
                    "presolve on, seed 2020; pyaugmecon 1.0.8 via Pyomo 'highs'",
                    "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime())})
        rows.append(row)
        table = known.set_index("instance")
        for column in row:
            if column != "instance" and column not in table.columns:
                table[column] = np.nan
        table = table.astype(object)
        for column, value in row.items():
            if column != "instance":
                table.loc[name, column] = value
        known = table.reset_index()
        known.to_csv(out, index=False)
        print(f"  {name}: {len(points)} points, optiland {row['optiland_s']} s ({row['optiland_cpu_s']} CPU), "
              f"pyaugmecon {row.get('pyaugmecon_s')} s ({row.get('pyaugmecon_cpu_s')} CPU, "
              f"{row.get('pyaugmecon_points')} points)", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------------
# The demo


def demo(scenario: Path, points: int, time_limit: float, gap: float | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A `points`-point front of the demo, ecosystem services index vs income, the model built once, every point
    solved to the scenario's gap (or `gap`) with its proven gap in the table (or stopped by `time_limit` per solve,
    its status then says so); the table (with the run's times on every row) and the times."""
    from optiland.analysis.pareto import run_front
    from optiland.pipeline.run import prepare, solver_options

    options = solver_options(prepare(scenario).scenario)
    options = SolverOptions(**{**options.as_dict(), "time_limit": time_limit,
                               **({"mip_rel_gap": gap} if gap is not None else {})})
    start, cpu = time.perf_counter(), _cpu()
    _, result, model, times = run_front(scenario, ["ecosystem_services", "income"], points=points, options=options)
    times = {**times, "total": time.perf_counter() - start, "cpu": _cpu() - cpu, "payoff_solves": result.payoff_solves,
             "grid_solves": result.solves, "backend": model.backend.name, "points": len(result.table),
             "gap_asked": options.mip_rel_gap, "worst_gap": float(result.table["gap"].max()) if len(result.table)
             else None}
    table = result.table.assign(load=round(os.getloadavg()[0], 1), gap_asked=options.mip_rel_gap,
                                front_s=round(times["front"], 2), total_s=round(times["total"], 2),
                                cpu_s=round(times["cpu"], 2), payoff_solves=result.payoff_solves,
                                grid_solves=result.solves,
                                date=time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    return table, times


# ------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pyaugmecon-python", type=Path, default=PYAUGMECON_PYTHON,
                        help="python of pyaugmecon's venv (default benchmarks/.venv-pyaugmecon/bin/python)")
    parser.add_argument("--instances", default=",".join(INSTANCES), help="instances to run (2kpN, 3kpN)")
    parser.add_argument("--out", type=Path, default=RESULTS / "pareto.csv")
    parser.add_argument("--skip", default="", help="runs to leave out: safe (the nadir then comes from --out), "
                        "pyaugmecon, pyaugmecon_exact_highs (comma-separated)")
    parser.add_argument("--demo", action="store_true", help="the demo's 25-point exact front instead")
    parser.add_argument("--demo-points", type=int, default=25)
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per demo solve")
    parser.add_argument("--demo-gap", type=float, default=None, help="the demo's MIP gap (default the scenario's)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # instance name: one optiland run (internal)
    parser.add_argument("--worker-nadir", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = run_optiland(knapsack(args.worker), json.loads(args.worker_nadir or "null"))
        args.worker_out.write_text(json.dumps(result))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.demo:
        table, times = demo(DEMO, args.demo_points, args.time_limit, args.demo_gap)
        table.to_csv(RESULTS / "pareto_demo.csv", index=False)
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(table.to_string(index=False))
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in times.items()}))
        return
    python: Path | None = args.pyaugmecon_python
    if not python.is_file():
        print(f"pyaugmecon skipped: no {python}; create its venv as the docstring of this script says",
              file=sys.stderr)
        python = None
    table = knapsacks([n for n in args.instances.split(",") if n], python, args.out,
                      frozenset(k for k in args.skip.split(",") if k))
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
