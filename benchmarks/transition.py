"""The transition model on the demo: sizes, times and objective per risk measure; the cost of robustness.

    .venv/bin/python -m benchmarks.transition [--measures expected,robust,cvar,icc] [--horizon 10] [--sample 20]
        [--time-limit 600] [--gap 0.01]

Solves instances/huanjiang-demo/transition.toml (3,000 parcels, 12 villages; 10 years, 20 sampled price scenarios,
yearly budget 6 M yuan) once per measure, with the same price scenarios and G*_s normalisation (from the first
solve), and appends one row per measure to benchmarks/results/transition.csv: model size, build and solve times,
peak memory, objective, bound, gap, the (village, year, scenario) cells below the floor, and the objective's cost
against the expected-price plan. Run it alone: two solves sharing the 2 cores run about 4 times slower.
"""

from __future__ import annotations

import argparse
import csv
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

from optiland.analysis.transition import solve_transition
from optiland.analysis.transition_accounts import check_plan, shortfall
from optiland.analysis.transition_problem import build_transition
from optiland.io.scenario import RiskConfig, TransitionConfig
from optiland.pipeline.run import prepare, solver_options

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "transition.csv"
COLUMNS = ["date", "parcels", "villages", "years", "scenarios", "measure", "max_shortfall", "status", "variables",
           "binaries", "constraints", "nonzeros", "groups", "build_s", "scales_s", "solve_s", "total_s", "peak_mb",
           "objective", "bound", "gap", "cells_below_floor", "worst_shortfall_per_capita", "violations",
           "cost_of_robustness", "note"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default=str(ROOT / "instances" / "huanjiang-demo" / "transition.toml"))
    parser.add_argument("--measures", default="expected,robust,cvar,icc")
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--max-shortfall", type=float, default=200.0, help="cvar, icc: yuan per capita")
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--gap", type=float, default=0.01)
    args = parser.parse_args()
    prepared = prepare(args.scenario)
    options = solver_options(prepared.scenario, time_limit=args.time_limit, mip_rel_gap=args.gap)
    base = prepared.scenario.transition or TransitionConfig()
    scales = None
    prices = None
    expected_objective = None
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    for measure in args.measures.split(","):
        risk = RiskConfig(measure=measure, sample=args.sample, seed=base.risk.seed,
                          max_shortfall=args.max_shortfall if measure in ("cvar", "icc") else 0.0)
        config = base.model_copy(update={"horizon": args.horizon, "risk": risk})
        start = time.perf_counter()
        tp = build_transition(prepared.problem, config, prices=prices)
        prices = tp.prices
        row: dict[str, object] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
                                  "parcels": prepared.problem.n_parcels, "villages": len(prepared.problem.villages),
                                  "years": args.horizon, "scenarios": len(prices.names), "measure": measure,
                                  "max_shortfall": risk.max_shortfall, "groups": len(tp.groups)}
        try:
            out = solve_transition(tp, options, scales=scales)
        except Exception as error:  # a benchmark records a failure and goes on
            row.update(status="failed", total_s=round(time.perf_counter() - start, 2), note=str(error)[:300])
            _append(row, new)
            new = False
            print(row)
            continue
        scales = out.es_scale
        gap = shortfall(out.accounts)
        population = prepared.problem.villages["population"].to_numpy(dtype=float)
        if measure == "expected":
            expected_objective = out.result.objective
        row.update({
            "status": out.result.status.value, **{k: out.model_size[k] for k in
                                                   ("variables", "binaries", "constraints", "nonzeros")},
            "build_s": round(out.times["build_core"] + out.times["build_years"], 2),
            "scales_s": round(out.times["scales"], 2), "solve_s": round(out.times["solve"], 2),
            "total_s": round(time.perf_counter() - start, 2),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "objective": out.result.objective, "bound": out.result.bound, "gap": out.result.gap,
            "cells_below_floor": int((gap > 1e-6 * out.accounts.need[:, None, None]).sum()),
            "worst_shortfall_per_capita": round(float((gap / population[:, None, None]).max()), 2),
            "violations": len(check_plan(tp, out.plan)),
            "cost_of_robustness": (None if expected_objective is None or measure == "expected"
                                   else expected_objective - out.result.objective),
            "note": "; ".join(out.notes[-1:]),
        })
        _append(row, new)
        new = False
        print({k: row[k] for k in ("measure", "status", "variables", "constraints", "nonzeros", "solve_s",
                                   "objective", "gap", "cells_below_floor", "cost_of_robustness")}, flush=True)


def _append(row: dict[str, object], header: bool) -> None:
    with RESULTS.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if header:
            writer.writeheader()
        writer.writerow({k: row.get(k) for k in COLUMNS})


if __name__ == "__main__":
    main()
