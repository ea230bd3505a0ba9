"""How to solve the LP relaxation of a large model (the choice behind optiland.mip.solver.IPM_COLUMNS).

    .venv/bin/python -m benchmarks.lp_methods [--parcels 10000]   (from the repository root)

On a generated karst instance (benchmarks/scale.py's, made once), the carbon objective's LP relaxation by dual
simplex, by interior point with crossover and without: seconds, objective, and how many parcels the solution leaves
fractional (the repair MIP frees those). Appends to benchmarks/results/lp_methods.csv.
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np

from benchmarks.scale import RESULTS, instance
from optiland.mip.solver import MatrixLP, SolverOptions, _highs, c_stdout, partition_rows
from optiland.model.backend import make_backend
from optiland.pipeline.run import prepare

CSV = RESULTS.parent / "lp_methods.csv"
METHODS = {"simplex": {"solver": "simplex"}, "ipm+crossover": {"solver": "ipm", "run_crossover": "on"},
           "ipm": {"solver": "ipm", "run_crossover": "off"}}


def main() -> None:
    """Time each method on one relaxation and count the fractional parcels of its solution."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=10_000)
    args = parser.parse_args()
    prepared = prepare(instance(args.parcels))
    backend = make_backend("matrix", prepared.problem)
    backend.build(prepared.problem)
    backend.set_objective({"carbon": 1.0}, "max")
    lp = backend.matrix()
    relaxed = MatrixLP(**{**lp.__dict__, "integer": np.zeros_like(lp.integer)})
    rows = partition_rows(lp)
    one_use = lp.A.tocsr()[rows]
    row_of = np.repeat(np.arange(len(rows)), np.diff(one_use.indptr))
    new = not CSV.exists()
    with CSV.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["date", "parcels", "columns", "method", "seconds", "status", "objective",
                             "fractional_parcels"])
        for method, settings in METHODS.items():
            with c_stdout():
                h = _highs(relaxed, SolverOptions(), 600)
            for key, value in settings.items():
                h.setOptionValue(key, value)
            start = time.perf_counter()
            with c_stdout():
                h.run()
            seconds = time.perf_counter() - start
            x = np.array(h.getSolution().col_value)
            fractional = np.zeros(len(rows), dtype=bool)
            np.logical_or.at(fractional, row_of, ((x > 1e-6) & (x < 1 - 1e-6))[one_use.indices])
            row = [time.strftime("%Y-%m-%d %H:%M"), args.parcels, len(lp.c), method, round(seconds, 2),
                   h.modelStatusToString(h.getModelStatus()), h.getInfo().objective_function_value,
                   int(fractional.sum())]
            writer.writerow(row)
            print(row, flush=True)


if __name__ == "__main__":
    main()
