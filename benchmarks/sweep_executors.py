"""Sweep executors compared: the same runs serially, on local processes and on a Dask LocalCluster.

    .venv/bin/python benchmarks/sweep_executors.py [SCENARIO] [--runs 20] [--start 4000] [--step 100]
        [--workers 2] [--time-limit S] [--preset default] [--executors serial,processes,dask]

Default: 20 runs of the shipped demo (income floors 4,000 to 5,900 yuan), about 2 minutes per run at the default
0.01% gap, so close to an hour per executor on 2 cores; a generated small instance (`optiland generate --parcels 100
--townships 1 --villages 3 --seed 7`) with `--runs 8 --start 3600` takes about two minutes in all. Run it alone:
other work on the cores distorts the speed-ups. Prints wall time, the sum of per-run times, the speed-up over serial
and the largest relative difference of any run's objective from the serial one.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from optiland.analysis.sweep import factorial, sweep, wide

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "instances" / "huanjiang-demo" / "scenario.toml"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--start", type=float, default=4000.0, help="first income floor; then +--step per run")
    parser.add_argument("--step", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--executors", default="serial,processes,dask")
    args = parser.parse_args()
    design = factorial({"constraints.income_floor": [args.start + args.step * i for i in range(args.runs)]})
    serial_wall = None
    serial_objective = None
    for executor in args.executors.split(","):
        start = time.perf_counter()
        results = sweep(args.scenario, design, executor=executor, workers=args.workers, progress=False,
                        metrics=("objective", "run_seconds"), time_limit=args.time_limit, preset=args.preset)
        wall = time.perf_counter() - start
        runs = wide(results).set_index("run_id")
        if executor == "serial":
            serial_wall, serial_objective = wall, runs["objective"]
        report = {
            "executor": executor, "workers": 1 if executor == "serial" else args.workers, "runs": len(runs),
            "wall_seconds": round(wall, 2), "sum_run_seconds": round(float(runs["run_seconds"].sum()), 2),
            "speedup": round(serial_wall / wall, 2) if serial_wall else None,
            "statuses": runs["status"].value_counts().to_dict(),
            "max_rel_objective_diff": (float(((runs["objective"] - serial_objective).abs()
                                              / serial_objective.abs()).max()) if serial_objective is not None
                                       else None),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
