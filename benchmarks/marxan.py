"""The Marxan sample (../shared/data/marxan-sample, 1,751 units, 17 features, BLM 1) imported and solved exactly:
to proven optimality (gap 0) and to a 1% gap, with times, objective, bound and Marxan's score terms.

    flock /tmp/optiland-heavy.lock .venv/bin/python benchmarks/marxan.py
        [--input ../shared/data/marxan-sample/input.dat]
        [--gaps 0 0.01] [--time-limit 3600] [--threads 2] [--out benchmarks/results/marxan.csv]

Per gap: `import_s` (read input.dat and its tables, write the instance), `read_s` (optiland.pipeline.run.prepare),
`build_s`
(the Pyomo model), `solve_s` (HiGHS, hand-over included), the objective (cost + BLM x boundary), HiGHS's bound and
gap, the score terms recomputed from the plan (optiland.analysis.marxan.score_terms: cost, BLM x boundary, SPF x
shortfall,
cost-threshold penalty), the model size and the variables the boundary linearisation added. The CSV is rewritten
whole (written beside, then renamed).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from optiland.analysis.marxan import _meta, read_marxan, score_terms, write_instance
from optiland.model.backend import PyomoBackend
from optiland.pipeline.run import objective_terms, prepare, solver_options

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["gap_setting", "status", "objective", "bound", "gap", "cost", "blm_x_boundary", "boundary_length",
          "spf_x_shortfall", "cost_threshold_penalty", "score", "targets_missed", "import_s", "read_s", "build_s",
          "solve_s", "vars", "binaries", "rows", "added_vars", "added_rows", "shared_boundaries",
          "linear_boundaries", "threads", "highs", "when", "host"]


def run(input_dat: Path, gap: float, time_limit: float, threads: int) -> dict[str, object]:
    """Import, prepare, build and solve once; the figures of one CSV row."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        data = read_marxan(input_dat)
        scenario_file = write_instance(data, Path(folder) / "instance")
        import_s = time.perf_counter() - start
        start = time.perf_counter()
        prepared = prepare(scenario_file)
        read_s = time.perf_counter() - start
        problem = prepared.problem
        backend = PyomoBackend()
        backend.build(problem)
        backend.set_objective(objective_terms(problem), "min")
        options = solver_options(prepared.scenario, mip_rel_gap=gap, time_limit=time_limit, threads=threads)
        start = time.perf_counter()
        result = backend.solve(options)
        solve_s = time.perf_counter() - start
        solution = backend.solution(result)
        zone = problem.allowed["option"].to_numpy()[solution.chosen_rows()]
        terms = score_terms(problem, zone, _meta(Path(folder) / "instance"))
        lp = backend.last_lp
        size = backend.model._boundary_size  # type: ignore[union-attr]
    return {"gap_setting": gap, "status": result.status.value, "objective": result.objective, "bound": result.bound,
            "gap": result.gap, **{k: terms[k] for k in ("cost", "blm_x_boundary", "boundary_length",
                                                         "spf_x_shortfall", "cost_threshold_penalty", "score",
                                                         "targets_missed")},
            "import_s": round(import_s, 3), "read_s": round(read_s, 3), "build_s": round(backend.build_seconds, 3),
            "solve_s": round(solve_s, 3), "vars": lp.shape[0] if lp else None,
            "binaries": int(lp.integer.sum()) if lp else None, "rows": lp.shape[1] if lp else None,
            "added_vars": size["added_variables"], "added_rows": size["added_rows"],
            "shared_boundaries": size["shared_boundaries"], "linear_boundaries": size["linear_boundaries"],
            "threads": threads, "highs": result.solver_version,
            "when": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node()}


def main() -> None:
    """Solve at each gap and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=ROOT.parent / "shared" / "data" / "marxan-sample" / "input.dat")
    parser.add_argument("--gaps", type=float, nargs="+", default=[0.0, 0.01])
    parser.add_argument("--time-limit", type=float, default=3600.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "marxan.csv")
    args = parser.parse_args()
    rows = []
    for gap in args.gaps:
        row = run(args.input, gap, args.time_limit, args.threads)
        print(", ".join(f"{k}={row[k]}" for k in FIELDS[:17]), flush=True)
        rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".marxan-", suffix=".csv", dir=args.out.parent)
    with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, args.out)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
