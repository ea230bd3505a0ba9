"""Marxan and optiland side by side on a Marxan input set (default: the shipped sample, 1,751 units, 17 features)
at several BLM values: optiland's time to a plan within 1% and to the proven optimum, Marxan's best and mean score
over its runs, one after the other on the same machine; then the side-by-side table.

    flock /work/bench.lock .venv/bin/python benchmarks/marxan.py
        [--input ../shared/data/marxan-sample/input.dat] [--blms 0 1 10] [--time-limit 1800] [--threads 2]
        [--marxan PATH] [--marxan-runs 20] [--marxan-iterations 10000000] [--out benchmarks/results/marxan.csv]
        [--fresh]

optiland: the input set imported with the BLM replaced (`optiland import marxan`), then the solve pipeline
(optiland.pipeline.run.solve_prepared, strategy auto, HiGHS in its child process) at a 1% gap and at gap 0
(mip_rel_gap 0, HiGHS's absolute gap 1e-6: a proof); `time_s` is the solve (build, hand-over and HiGHS),
`total_s` import, read and solve. The objective is Marxan's score of a plan with every target met (cost + BLM x
boundary); `score` recomputes Marxan's terms from the plan (optiland.analysis.marxan.score_terms).

Marxan: the executable given by --marxan (or $MARXAN_BIN, $MARXAN, `marxan` on the PATH; Marxan 4.0.6 built from
its source) runs in a copy of the input folder with BLM, NUMREPS, NUMITNS and SAVESUMMARY set (a MATRIXSPORDERNAME
line naming a missing file is dropped: Marxan stops on it); `time_s` is its wall time for all runs, `best` and
`mean` the Score column of output_sum.csv over the runs, `runs_missing` the runs with a target missed
(Missing_Values > 0). `above_optimum` is (best - optiland's proven optimum) / optimum. Without an executable the
Marxan rows say "not run" and carry no figure: its figures are never invented.

The rows of the BLM values run replace those of the same BLM values in --out, the others are kept (unless
--fresh): a benchmark longer than one hold of the bench lock runs one BLM per hold. The CSV is rewritten whole
(written beside, then renamed) after each BLM; the table printed at the end covers every BLM in it. `shared`
records that other processes used the 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.analysis.marxan import _meta, read_marxan, score_terms, write_instance
from optiland.pipeline.run import prepare, solve_prepared, solver_options

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["blm", "tool", "setting", "status", "objective", "bound", "gap", "time_s", "total_s", "score",
          "boundary_length", "targets_missed", "best", "mean", "runs", "runs_missing", "above_optimum", "note",
          "shared", "highs", "when", "host"]


def with_blm(input_dat: Path, blm: float, folder: Path, extra: dict[str, str] | None = None) -> Path:
    """A copy of the input set in `folder` with BLM (and the `extra` parameters) replaced; returns its input.dat.
    A MATRIXSPORDERNAME line naming a missing file is dropped (Marxan 4.0.6 stops on it)."""
    shutil.copytree(input_dat.parent, folder)
    params = {"BLM": repr(float(blm)), **(extra or {})}
    lines = []
    input_dir = folder / "input"
    for line in (folder / input_dat.name).read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)\s+(\S.*?)\s*$", line)
        if match and match[1] == "INPUTDIR":
            input_dir = folder / match[2]
        if match and match[1] == "MATRIXSPORDERNAME" and not (input_dir / match[2]).is_file():
            continue
        if match and match[1] in params:
            continue
        lines.append(line)
    lines += [f"{key} {value}" for key, value in params.items()]
    (folder / "input.dat").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "input.dat"


def run_optiland(input_dat: Path, blm: float, gap: float, time_limit: float, threads: int) -> dict[str, Any]:
    """Import, prepare and solve once at `gap`; the figures of one CSV row."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        source = with_blm(input_dat, blm, Path(folder) / "marxan")
        scenario_file = write_instance(read_marxan(source), Path(folder) / "instance")
        prepared = prepare(scenario_file)
        options = solver_options(prepared.scenario, mip_rel_gap=gap, time_limit=time_limit, threads=threads)
        solve_start = time.perf_counter()
        outcome = solve_prepared(prepared, options)
        solve_s = time.perf_counter() - solve_start
        total_s = time.perf_counter() - start
        result = outcome.result
        problem = prepared.problem
        zone = problem.allowed["option"].to_numpy()[outcome.solution.chosen_rows()]
        terms = score_terms(problem, zone, _meta(Path(folder) / "instance"))
    return {"blm": blm, "tool": "optiland", "setting": f"gap {gap:g}", "status": result.status.value,
            "objective": result.objective, "bound": result.bound, "gap": result.gap, "time_s": round(solve_s, 2),
            "total_s": round(total_s, 2), "score": terms["score"], "boundary_length": terms["boundary_length"],
            "targets_missed": terms["targets_missed"], "highs": result.solver_version}


def run_marxan(executable: Path, input_dat: Path, blm: float, runs: int, iterations: int) -> dict[str, Any]:
    """Marxan's runs in a copy of the input set; best and mean Score of output_sum.csv."""
    with tempfile.TemporaryDirectory() as folder:
        source = with_blm(input_dat, blm, Path(folder) / "marxan", {
            "NUMREPS": str(runs), "NUMITNS": str(iterations), "SAVESUMMARY": "3", "SCENNAME": "output",
            "OUTPUTDIR": "output", "VERBOSITY": "1"})
        (source.parent / "output").mkdir(exist_ok=True)
        start = time.perf_counter()
        done = subprocess.run([str(executable.resolve()), source.name], cwd=source.parent, capture_output=True,
                              text=True, check=False)
        elapsed = time.perf_counter() - start
        summary = source.parent / "output" / "output_sum.csv"
        if done.returncode != 0 or not summary.is_file():
            raise RuntimeError(f"Marxan failed (exit {done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")
        table = pd.read_csv(summary)
    score = table["Score"].to_numpy(dtype=float)
    missing = int((table["Missing_Values"].to_numpy(dtype=float) > 0).sum()) if "Missing_Values" in table else None
    return {"blm": blm, "tool": "marxan", "setting": f"{runs} runs x {iterations:g} iterations",
            "status": "heuristic", "time_s": round(elapsed, 2), "total_s": round(elapsed, 2),
            "best": float(score.min()), "mean": float(score.mean()), "runs": len(score), "runs_missing": missing}


def find_marxan(given: str | None) -> Path | None:
    """The Marxan executable: --marxan, else $MARXAN_BIN, $MARXAN, `marxan` on the PATH; None when there is none."""
    for candidate in (given, os.environ.get("MARXAN_BIN"), os.environ.get("MARXAN"), shutil.which("marxan")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def main() -> None:
    """Run optiland at each BLM (1% gap, then gap 0), then Marxan, and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=ROOT.parent / "shared" / "data" / "marxan-sample" / "input.dat")
    parser.add_argument("--blms", type=float, nargs="+", default=[0.0, 1.0, 10.0])
    parser.add_argument("--time-limit", type=float, default=1800.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--marxan", default=None)
    parser.add_argument("--marxan-runs", type=int, default=20)
    parser.add_argument("--marxan-iterations", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "marxan.csv")
    parser.add_argument("--fresh", action="store_true", help="drop the rows of other BLM values from --out")
    args = parser.parse_args()
    marxan = find_marxan(args.marxan)
    stamp = {"shared": "yes: the 2 cores were shared with other agents' work", "host": platform.node()}
    kept = [] if args.fresh else [row for row in read(args.out) if float(row["blm"]) not in args.blms]
    rows: list[dict[str, Any]] = []
    for blm in args.blms:
        optimum = None
        for gap in (0.01, 0.0):
            row = run_optiland(args.input, blm, gap, args.time_limit, args.threads)
            if gap == 0.0 and row["status"] == "optimal":
                optimum = row["objective"]
            rows.append({**row, **stamp, "when": datetime.now(UTC).isoformat(timespec="seconds")})
            print(", ".join(f"{k}={rows[-1].get(k)}" for k in FIELDS[:13]), flush=True)
        if marxan is None:
            rows.append({"blm": blm, "tool": "marxan", "note": "not run: no Marxan executable (--marxan, $MARXAN_BIN, "
                         "$MARXAN); its figures are left out", **stamp,
                         "when": datetime.now(UTC).isoformat(timespec="seconds")})
        else:
            row = run_marxan(marxan, args.input, blm, args.marxan_runs, args.marxan_iterations)
            if optimum is not None:
                row["above_optimum"] = (row["best"] - optimum) / optimum
            rows.append({**row, "note": str(marxan), **stamp, "when": datetime.now(UTC).isoformat(timespec="seconds")})
        print(", ".join(f"{k}={rows[-1].get(k)}" for k in FIELDS), flush=True)
        write(sorted(kept + rows, key=lambda row: float(row["blm"])), args.out)  # a run stopped half-way keeps
    print(f"written to {args.out}\n")                                           # what it measured
    print(table(read(args.out)))


def read(path: Path) -> list[dict[str, Any]]:
    """The rows of an earlier CSV (empty cells as None; numbers as float), [] without one."""
    if not path.is_file():
        return []
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [{k: _value(v) for k, v in row.items()} for row in table.to_dict("records")]


def _value(text: str) -> Any:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def table(rows: list[dict[str, Any]]) -> str:
    """The side-by-side table (Markdown): per BLM, optiland's time to a plan within 1% and to the proven optimum
    (objective, gap or boundary), Marxan's best and mean score over its runs (and how far the best is above the
    optimum); a cell says why a figure is missing."""
    lines = ["| BLM | optiland: plan within 1% | optiland: proven optimum | Marxan: best of its runs | Marxan: mean |",
             "|---|---|---|---|---|"]
    for blm in sorted({float(row["blm"]) for row in rows}):
        of = {(row["tool"], row.get("setting") or ""): row for row in rows if float(row["blm"]) == blm}
        within = of.get(("optiland", "gap 0.01"))
        proven = of.get(("optiland", "gap 0"))
        marxan = next((row for (tool, _), row in of.items() if tool == "marxan"), None)
        lines.append(f"| {blm:g} | {_cell(within, gap=True)} | {_cell(proven, gap=False)} | "
                     f"{_marxan_cell(marxan, 'best')} | {_marxan_cell(marxan, 'mean')} |")
    return "\n".join(lines)


def _cell(row: dict[str, Any] | None, gap: bool) -> str:
    if row is None:
        return "not run"
    if row.get("objective") is None:
        return f"{row.get('status') or 'no plan'}, no plan" + (f" in {float(row['time_s']):.0f} s"
                                                              if row.get("time_s") is not None else "")
    if row.get("status") != "optimal":
        return (f"{row['status']} at {float(row['time_s']):.0f} s: {float(row['objective']):,.0f} "
                f"(gap {100 * float(row['gap']):.3f}%)")
    extra = f"gap {100 * float(row['gap']):.2f}%" if gap else f"boundary {float(row['boundary_length']):,.0f}"
    return f"{float(row['time_s']):.2f} s: {float(row['objective']):,.0f} ({extra})"


def _marxan_cell(row: dict[str, Any] | None, key: str) -> str:
    if row is None or row.get(key) is None:
        return "not run"  # the CSV's note says why
    text = f"{float(row[key]):,.0f}"
    if key == "best":
        above = row.get("above_optimum")
        text += (f" ({100 * float(above):+.2f}% vs optimum)" if above is not None else "") + (
            f", {int(row['runs'])} runs in {float(row['time_s']):.1f} s")
        if row.get("runs_missing"):
            text += f", {int(row['runs_missing'])} missing a target"
    return text


def write(rows: list[dict[str, Any]], path: Path) -> None:
    """The CSV, written beside and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".marxan-", suffix=".csv", dir=path.parent)
    with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows([{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
                          for row in rows])
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
