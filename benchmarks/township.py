"""Township speed (issue 20 item 3): the previous release and the current code, one after the other, same machine.

    .venv/bin/python benchmarks/township.py [--tasks demo township sweep] [--versions release current]
                                            [--release-sweep-runs 20] [--time-limit 600] [--note "..."]

Tasks, each at the default 0.01% gap (`--gap 0.0001`):
- demo: `optiland solve` of the shipped demo (instances/huanjiang-demo, 3,000 parcels);
- township: `optiland solve` of a generated 20,000-parcel set, `optiland generate --parcels 20000 --townships 2
  --villages 80 --seed 2020` (one township per 10,000 parcels and a village per 250, as benchmarks/scale.py's
  instances), made by each version's own generator (the release rejects current-use codes the current reader keeps);
- sweep: `optiland sweep` of the demo, 20 runs (one at a time: income floors 4,000 to 5,900 yuan), 2 worker processes,
  no plots; the release's sweep can be cut to its first `--release-sweep-runs` runs (its runs take minutes each).

The release is commit 5c3202f in a git worktree at /work/wt-release (made if missing), run with its own code on the
same venv (PYTHONPATH). Every task is a fresh command in a subprocess; solve seconds and the result come from its
run.json, wall seconds from the clock around the command. Rows are appended to benchmarks/results/township.csv with
the load average before and after (the 2 cores are shared with other jobs); the table printed at the end is the
README's ("Township speed"). A benchmark, not a test: run it under `flock /work/bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = Path("/work/wt-release")
RELEASE_COMMIT = "5c3202f"
INSTANCES = ROOT / "benchmarks" / "instances"
RESULTS = ROOT / "benchmarks" / "results" / "township.csv"
COLUMNS = ["date", "version", "commit", "task", "parcels", "runs", "gap_asked", "time_limit", "exit_code", "status",
           "solve_s", "wall_s", "objective", "bound", "gap", "load_before", "load_after", "note"]
SWEEP_RUNS = 20
FLOORS = [4000 + 100 * k for k in range(SWEEP_RUNS)]


def version_root(version: str) -> Path:
    """The source tree of a version: this checkout, or the release worktree (made once)."""
    if version == "current":
        return ROOT
    if not RELEASE.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(RELEASE), RELEASE_COMMIT],
                       check=True)
    return RELEASE


CLI = [sys.executable, "-m", "optiland.cli"]
"""Either version's command line, run from its own tree with its code first on the path."""


def environment(version: str) -> dict[str, str]:
    """The version's code first on the path."""
    return {**os.environ, "PYTHONPATH": str(version_root(version))}


def township_instance(version: str) -> Path:
    """The 20,000-parcel set, made by the version's own generator (once)."""
    folder = INSTANCES / f"township-20000-{version}"
    scenario = folder / "scenario.toml"
    if not scenario.exists():
        subprocess.run([*CLI, "generate", "--parcels", "20000", "--townships", "2", "--villages", "80",
                        "--seed", "2020", "--out", str(folder)], check=True, cwd=version_root(version),
                       env=environment(version))
    return scenario


def load() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


def solve(version: str, task: str, scenario: Path, gap: float, time_limit: float) -> dict[str, object]:
    """One `optiland solve` with its figures."""
    INSTANCES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=INSTANCES) as tmp:
        out = Path(tmp) / "out"
        before = load()
        start = time.perf_counter()
        done = subprocess.run([*CLI, "solve", str(scenario), "--out", str(out), "--gap", str(gap),
                               "--time-limit", str(time_limit)], cwd=version_root(version),
                              env=environment(version), capture_output=True, text=True)
        wall = time.perf_counter() - start
        row: dict[str, object] = {"version": version, "task": task, "runs": 1, "exit_code": done.returncode,
                                  "wall_s": round(wall, 2), "load_before": before, "load_after": load()}
        run_json = out / "run.json"
        if run_json.exists():
            data = json.loads(run_json.read_text())
            result = data.get("result", {})  # the release's run.json
            if isinstance(data.get("objective"), dict):  # the current one: objective {value, bound, gap}
                result = {"objective": data["objective"].get("value"), "bound": data["objective"].get("bound"),
                          "gap": data["objective"].get("gap")}
            row.update(status=data.get("status") or result.get("status"), objective=result.get("objective"),
                       bound=result.get("bound"), gap=result.get("gap"),
                       solve_s=round(float(data.get("times", {}).get("solve", float("nan"))), 2),
                       parcels=data.get("model_size", {}).get("parcels"))
        else:
            row.update(status="no result", note=(done.stderr or done.stdout)[-300:].replace("\n", " "))
        return row


def sweep(version: str, runs: int, gap: float, time_limit: float) -> dict[str, object]:
    """An `optiland sweep` of the demo over the first `runs` income floors, 2 workers."""
    INSTANCES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=INSTANCES) as tmp:
        design = Path(tmp) / "design.toml"
        values = ", ".join(str(v) for v in FLOORS[1:runs])
        design.write_text(f'[design]\nkind = "one_at_a_time"\n\n[parameters."constraints.income_floor"]\n'
                          f"values = [{values}]\nbase = {FLOORS[0]}\n", encoding="utf-8")
        out = Path(tmp) / "out"
        scenario = version_root(version) / "instances" / "huanjiang-demo" / "scenario.toml"
        before = load()
        start = time.perf_counter()
        done = subprocess.run([*CLI, "sweep", str(scenario), "--design", str(design), "--out", str(out),
                               "--workers", "2", "--no-plots", "--gap", str(gap), "--time-limit", str(time_limit)],
                              cwd=version_root(version), env=environment(version), capture_output=True, text=True)
        wall = time.perf_counter() - start
        statuses: dict[str, int] = {}
        solve_total = 0.0
        results = out / "results.csv"
        if results.exists():
            seen: dict[str, str] = {}
            with results.open(encoding="utf-8-sig") as f:
                for record in csv.DictReader(f):
                    seen[record["run_id"]] = record["status"]
                    if record.get("metric") == "solve_seconds" and record.get("value") not in ("", None):
                        solve_total += float(record["value"])
            for status in seen.values():
                statuses[status] = statuses.get(status, 0) + 1
        note = "; ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        if done.returncode not in (0, 4):
            note += " | " + (done.stderr or done.stdout)[-300:].replace("\n", " ")
        return {"version": version, "task": "sweep", "runs": runs, "parcels": 3000, "exit_code": done.returncode,
                "status": "optimal" if statuses.get("optimal") == runs else "mixed", "wall_s": round(wall, 2),
                "solve_s": round(solve_total, 2) if solve_total else None, "load_before": before,
                "load_after": load(), "note": note}


def commit_of(version: str) -> str:
    """The version's commit (short)."""
    done = subprocess.run(["git", "-C", str(version_root(version)), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    return done.stdout.strip()


def table(rows: list[dict[str, str]]) -> str:
    """The README's table: the latest row per (task, version), the ratio release / current."""
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        latest[(row["task"], row["version"])] = row
    lines = ["| task | target | release s | current s | ratio | current status, gap | release status, gap |",
             "|---|---|---|---|---|---|---|"]
    targets = {"demo": "0.01% in < 10 s solve", "township": "0.01% in < 60 s solve", "sweep": "20 runs < 120 s wall"}
    for task in ("demo", "township", "sweep"):
        cur, rel = latest.get((task, "current")), latest.get((task, "release"))
        if cur is None and rel is None:
            continue

        def seconds(row: dict[str, str] | None, task: str = task) -> float | None:
            if row is None:
                return None
            value = row["wall_s"] if task == "sweep" else row["solve_s"]
            return float(value) if value not in ("", "None", None) else None

        def describe(row: dict[str, str] | None, task: str = task) -> str:
            if row is None:
                return "not run"
            if task == "sweep":
                return f"{row['runs']} runs: {row['note'].split(' | ')[0]}"
            gap = row["gap"]
            return f"{row['status']}, {float(gap):.1e}" if gap not in ("", "None") else str(row["status"])

        c, r = seconds(cur), seconds(rel)
        runs_note = ""
        if task == "sweep" and rel is not None and rel["runs"] != str(SWEEP_RUNS):
            runs_note = f" ({rel['runs']} runs)"
        ratio = f"{r / c:.1f}x" if c and r else "-"
        lines.append(f"| {task} | {targets[task]} | {'-' if r is None else f'{r:.1f}'}{runs_note} | "
                     f"{'-' if c is None else f'{c:.1f}'} | {ratio} | {describe(cur)} | {describe(rel)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["demo", "township", "sweep"])
    parser.add_argument("--versions", nargs="+", default=["release", "current"])
    parser.add_argument("--gap", type=float, default=1e-4)
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--release-sweep-runs", type=int, default=SWEEP_RUNS)
    parser.add_argument("--note", default="")
    parser.add_argument("--table-only", action="store_true", help="print the README table from the results file")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        new = not RESULTS.exists()
        with RESULTS.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            for task in args.tasks:
                for version in args.versions:
                    if task == "demo":
                        row = solve(version, task, version_root(version) / "instances" / "huanjiang-demo" /
                                    "scenario.toml", args.gap, args.time_limit)
                    elif task == "township":
                        row = solve(version, task, township_instance(version), args.gap, args.time_limit)
                    else:
                        runs = args.release_sweep_runs if version == "release" else SWEEP_RUNS
                        row = sweep(version, runs, args.gap, args.time_limit)
                    row.update(date=time.strftime("%Y-%m-%d %H:%M"), commit=commit_of(version),
                               gap_asked=args.gap, time_limit=args.time_limit,
                               note=" ".join(x for x in (str(row.get("note") or ""), args.note) if x))
                    writer.writerow({k: row.get(k) for k in COLUMNS})
                    f.flush()
                    print({k: row.get(k) for k in COLUMNS}, flush=True)
    if RESULTS.exists():
        with RESULTS.open() as f:
            print(table(list(csv.DictReader(f))))
    shutil.rmtree(INSTANCES / "tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
