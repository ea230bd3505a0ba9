"""Solve a scenario (default: the shipped demo) and report model size, times, objective, bound and gap.

    .venv/bin/python benchmarks/solve_demo.py [SCENARIO] [--time-limit S]

Run it alone: two solves sharing the 2 cores run about 4 times slower.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from optiland.pipeline.results import make_plan
from optiland.pipeline.run import prepare, solve_prepared, solver_options

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "instances" / "huanjiang-demo" / "scenario.toml"))
    parser.add_argument("--time-limit", type=float, default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    prepared = prepare(args.scenario)
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, time_limit=args.time_limit))
    plan = make_plan(outcome)
    report = {
        "scenario": args.scenario,
        "status": plan.run["status"],
        "objective": plan.run["objective"],
        "reference": plan.run["reference"],
        "model_size": plan.run["model_size"],
        "times": plan.run["times"],
        "wall_seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "villages_at_or_below_floor": int(plan.villages["at_or_below_floor"].sum()),
        "notes": plan.run["notes"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
