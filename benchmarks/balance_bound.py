"""Which side of the balanced demo's gap is weak, the plan or the bound (issue 20 item 3, README "Township speed").

    .venv/bin/python benchmarks/balance_bound.py [scenario.toml] [--reference-seconds 0] [--search]

Builds the scenario's index model as `optiland solve` does under the balance rule (the most income first, to
run.BALANCE_GAP, then the index under the income row), and prints, from machine-independent figures (objective
values, no timing decides anything):
- the LP relaxation (column generation) and its fractional parcels, herds and ranger posts;
- the LP with the posts (then the herds) fixed at the floor of their LP values;
- the integer bound (colgen.integer_bound: each village's herds and posts branched on, linking rows priced by the
  LP's duals), and the same with the income row's price scaled (a one-multiplier Lagrangian search);
- with --search, a coordinate search over the villages' post counts, each vector's LP (the best a village-integer
  bound could reach, whatever the prices);
- the plan of column generation's own stages (colgen.solve at the gap asked, 0.1% by default);
- with --reference-seconds S, HiGHS alone on the whole model for S seconds (1 thread): its plan and bound bracket
  the optimum.
A measurement, not a test; run it under `flock /work/bench.lock` when its seconds matter.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from optiland.mip import colgen
from optiland.mip.solver import MatrixLP, SolverOptions, _highs, c_stdout, parcel_columns, partition_rows, run_highs
from optiland.model.backend import make_backend
from optiland.pipeline import run
from optiland.pipeline.outcome import objective_terms

ROOT = Path(__file__).resolve().parents[1]


def index_model(scenario: Path) -> tuple[MatrixLP, np.ndarray, str]:
    """The index model with the balance rule's income row, the village of each column, and the rule's note."""
    prepared = run.prepare(scenario)
    problem = prepared.problem
    options = run.solver_options(prepared.scenario)
    backend = make_backend("auto", problem)
    backend.build(problem)
    ref = run.index_reference(problem)
    backend.es_scale = ref.values
    note, _ = run.balance_income(backend, problem, run._Clock(options))
    params = problem.params
    backend.set_objective(objective_terms(problem), params["sense"], scale=ref.values, weights=params["weights"])
    return backend.matrix(), backend.column_villages(), note


def fixed_lp(lp: MatrixLP, cols: np.ndarray, values: np.ndarray, hint: np.ndarray | None = None) -> float | None:
    """The LP bound (column generation) with columns `cols` fixed at `values`; None if the fixing is infeasible."""
    lower, upper = lp.col_lower.copy(), lp.col_upper.copy()
    lower[cols] = values
    upper[cols] = values
    relaxed = colgen.relax(MatrixLP(**{**lp.__dict__, "col_lower": lower, "col_upper": upper}),
                           SolverOptions(time_limit=600), hint)
    return relaxed.bound if relaxed.artificial <= 1e-7 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "instances" / "huanjiang-demo" / "scenario.toml"))
    parser.add_argument("--gap", type=float, default=1e-3)
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--reference-seconds", type=float, default=0.0)
    args = parser.parse_args()
    lp, villages, note = index_model(Path(args.scenario))
    print(note)
    relaxed = colgen.relax(lp, SolverOptions(time_limit=600))
    x = relaxed.x
    assert x is not None and relaxed.y is not None
    _, _, owner = parcel_columns(lp, partition_rows(lp))
    fractional = (x > 1e-6) & (x < 1 - 1e-6) & (owner >= 0)
    general = np.flatnonzero(lp.integer & ~((lp.col_lower == 0) & (lp.col_upper == 1)))
    names = [lp.col_names[j] for j in general] if lp.col_names else [str(j) for j in general]
    posts = general[[n.startswith("posts") for n in names]]
    herds = general[[n.startswith("herd") for n in names]]
    print(f"LP {relaxed.value:.6f}, Lagrangian bound {relaxed.bound:.6f}; fractional parcels "
          f"{len(np.unique(owner[fractional]))}; herds {np.round(x[herds], 2).tolist()}; posts "
          f"{np.round(x[posts], 3).tolist()}")
    hint = np.zeros(len(lp.c))
    hint[relaxed.columns] = 1.0
    for label, cols in (("posts", posts), ("herds", herds), ("posts and herds", general)):
        print(f"LP with the {label} at their floor: {fixed_lp(lp, cols, np.floor(x[cols]), hint)}")
    income = [i for i, n in enumerate(lp.row_names) if n.startswith("bound_income")]
    for factor in (1.0, 0.9, 1.1, 1.5):
        y = relaxed.y.copy()
        y[income] *= factor
        bound, _ = colgen.integer_bound(lp, replace(relaxed, y=y), villages, SolverOptions(time_limit=600))
        print(f"integer bound, income row's price x{factor}: {bound:.6f}")
    if args.search:
        p = np.floor(x[posts])
        best = fixed_lp(lp, posts, p, hint) or -np.inf
        improved = True
        while improved:
            improved = False
            for i in range(len(posts)):
                for step in (1.0, -1.0):
                    q = p.copy()
                    q[i] += step
                    if q[i] < 0:
                        continue
                    value = fixed_lp(lp, posts, q, hint)
                    if value is not None and value > best + 1e-9:
                        best, p, improved = value, q, True
        print(f"best post vector by coordinate search: LP {best:.6f} at posts {p.tolist()}")
    began = time.perf_counter()
    result = colgen.solve(lp, SolverOptions(strategy="colgen", mip_rel_gap=args.gap, time_limit=600),
                          villages=villages)
    print(f"colgen.solve at gap {args.gap:g}: {result.status.value}, plan {result.objective:.6f}, bound "
          f"{result.bound:.6f}, gap {result.gap:.2e}, {time.perf_counter() - began:.1f} s; {result.message}")
    if args.reference_seconds > 0:
        with c_stdout():
            h = _highs(lp, SolverOptions(mip_rel_gap=0.0, time_limit=args.reference_seconds),
                       args.reference_seconds)
            run_highs(h)
        info = h.getInfo()
        print(f"HiGHS alone, {args.reference_seconds:g} s: {h.modelStatusToString(h.getModelStatus())}, plan "
              f"{info.objective_function_value:.6f}, bound {info.mip_dual_bound:.6f}, nodes {info.mip_node_count}")


if __name__ == "__main__":
    main()
