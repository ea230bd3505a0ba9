"""Solve one multi-objective 0-1 knapsack with pyaugmecon 1.0.8 (run by benchmarks/pareto.py in pyaugmecon's venv).

    benchmarks/.venv-pyaugmecon/bin/python benchmarks/_pyaugmecon_runner.py INSTANCE.json OUT.json [--solver NAME]

INSTANCE.json: {"name", "profits": [[...], ...] (one row per objective, all maximised), "weights": [[...], ...],
"capacities": [...], "grid_points", "nadir" (null, or the lower end of each constrained objective), "highs" (HiGHS
options added to HIGHS_OPTIONS, e.g. optiland's exact-mode EXACT_HIGHS)};
OUT.json: {"front": [[f1, f2, ...], ...], "seconds", "cpu_seconds", "grid_solves", "payoff_solves", "grid_step", ...}.
`cpu_seconds`: CPU time of this process and its children (pyaugmecon solves in a process of its own) during the
front, the figure a loaded machine changes least.
Standalone (Pyomo, numpy, pyaugmecon only): optiland is not installed in that venv.

Configuration: HiGHS through Pyomo, one process, flag array, bypass and early exit on, no Excel output, grid points
as given (the largest constrained range + 1: a grid step of at most 1 for every constrained objective, so the
complete front of integer objectives), nadir points as given (pyaugmecon's `nadir_points`). Two workarounds for
pyaugmecon 1.0.8 with Pyomo 6.10 (both keep its algorithm as it is):

- Model.solve calls ``SolverFactory(name, solver_io=..., manage_env=True)``; neither HiGHS interface of Pyomo 6.10
  accepts those keywords ('appsi_highs': TypeError; 'highs': NotImplementedError for solver_io, ConfigDict error for
  manage_env), so the solver is created by name alone, once per solve as pyaugmecon does.
- Options drops every truthy solver option (``if value is None or value: del``), so threads=1 would be lost: the
  HiGHS options are set on the Options object after it is constructed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyomo.environ as pyo
from pyaugmecon import PyAugmecon
from pyaugmecon.model import Model

HIGHS_OPTIONS = {"mip_rel_gap": 0.0, "mip_abs_gap": 0.0, "threads": 1, "random_seed": 2020, "presolve": "on"}


def knapsack(instance: dict[str, Any]) -> pyo.ConcreteModel:
    """The instance as pyaugmecon wants it: objectives in an ObjectiveList `obj_list`, all deactivated."""
    profits, weights, capacities = instance["profits"], instance["weights"], instance["capacities"]
    n = len(profits[0])
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, n - 1)
    m.J = pyo.RangeSet(0, len(capacities) - 1)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    m.capacity = pyo.Constraint(m.J, rule=lambda m, j: sum(weights[j][i] * m.x[i] for i in m.I) <= capacities[j])
    m.obj_list = pyo.ObjectiveList()
    for row in profits:
        m.obj_list.add(expr=sum(row[i] * m.x[i] for i in m.I), sense=pyo.maximize)
    m.obj_list.deactivate()
    return m


def _solve(self: Model) -> None:
    """pyaugmecon's Model.solve without the keywords Pyomo 6.10's HiGHS interfaces reject, and without loading a
    solution that is not there: Pyomo's 'highs' raises NoFeasibleSolutionError on an infeasible model when asked to
    load one (pyaugmecon's solver process then dies and its front is cut short), so the results come back unloaded
    and a solution is loaded only when there is one."""
    opt = pyo.SolverFactory(self.opts.solver_name)
    opt.options.update(self.opts.solver_opts)
    self.result = opt.solve(self.model, load_solutions=False)
    self.term = self.result.solver.termination_condition
    self.status = self.result.solver.status
    if len(self.result.solution) and self.term == pyo.TerminationCondition.optimal:
        self.model.solutions.add_symbol_map(self.result._smap)
        self.model.solutions.load_from(self.result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("instance", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--solver", default="appsi_highs", help="Pyomo solver name: appsi_highs or highs")
    args = parser.parse_args()
    instance = json.loads(args.instance.read_text())
    out = args.out.resolve()
    Model.solve = _solve  # type: ignore[method-assign]
    logging.getLogger("pyomo").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)  # pyaugmecon writes its log folder and pickled model into the working directory
        model = knapsack(instance)
        opts = {"name": instance["name"], "grid_points": int(instance["grid_points"]), "early_exit": True,
                **({"nadir_points": list(instance["nadir"])} if instance.get("nadir") else {}),
                "bypass_coefficient": True, "flag_array": True, "cpu_count": 1, "redivide_work": False,
                "shared_flag": False, "output_excel": False, "process_logging": False, "logging_folder": "logs",
                "solver_name": args.solver, "solver_io": None}
        stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")  # its progress bar
        try:
            start, cpu = time.perf_counter(), _cpu()
            solver = PyAugmecon(model, opts)
            solver.opts.solver_opts = {**HIGHS_OPTIONS, **instance.get("highs", {})}
            solver.solve()
            seconds, cpu = time.perf_counter() - start, _cpu() - cpu
        finally:
            sys.stdout.close()
            sys.stdout = stdout
        result = {
            "front": [[float(v) for v in point] for point in solver.get_pareto_solutions()],
            "seconds": seconds,
            "cpu_seconds": cpu,
            "grid_solves": int(solver.model.models_solved.value()),
            "payoff_solves": solver.model.n_obj ** 2,
            "infeasible_solves": int(solver.model.infeasibilities.value()),
            "grid_points": int(solver.opts.gp),
            "grid_step": [float(r / (solver.opts.gp - 1)) for r in solver.model.obj_range],
            "payoff": [[float(v) for v in row] for row in solver.get_payoff_table()],
            "solver": args.solver,
            "highs_options": {**HIGHS_OPTIONS, **instance.get("highs", {})},
            "versions": {name: _version(name) for name in ("pyaugmecon", "pyomo", "highspy", "numpy")},
        }
    out.write_text(json.dumps(result, indent=1))


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
