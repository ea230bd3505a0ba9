"""End-to-end scale benchmark (issue 4): read, build, solve and write on generated instances, per backend and method.

    .venv/bin/python benchmarks/scale.py [--parcels 10000 100000 1000000] [--backends matrix pyomo]
                                         [--methods auto] [--gap 0.001] [--time-limit 600]

Each instance is made once with `optiland generate` (the demo's karst catalog, the full core model; one township
per ~10,000 parcels and a village per ~250) and cached in benchmarks/instances/ (not in git). Each run is a fresh
`optiland solve --out` in a subprocess, so its times are the command's own (read, build, matrix hand-over, solve,
write from run.json) and its peak memory is the largest resident set of the process tree, sampled every 0.2 s from
/proc. Rows are appended to benchmarks/results/scale.csv (each run's run.json goes to benchmarks/results/runs/); the
table printed at the end is the one in the README.
The Pyomo backend is run only up to 100,000 parcels (its build alone is minutes and ~8 GB beyond that).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "benchmarks" / "instances"
RESULTS = ROOT / "benchmarks" / "results" / "scale.csv"
RUNS = ROOT / "benchmarks" / "results" / "runs"
OPTILAND = [sys.executable, "-m", "optiland.cli"]
COLUMNS = ["date", "parcels", "backend", "method", "gap_asked", "time_limit", "exit_code", "status", "read_s",
           "build_s", "matrix_s", "solve_s", "write_s", "total_s", "peak_mb", "variables", "binaries", "rows",
           "nonzeros", "objective", "bound", "gap", "note"]
PYOMO_MAX_PARCELS = 100_000


def instance(parcels: int) -> Path:
    """The scenario of a generated instance of this size (made once, then reused)."""
    folder = INSTANCES / f"karst-{parcels}"
    scenario = folder / "scenario.toml"
    if not scenario.exists():
        townships = max(1, parcels // 10_000)
        villages = max(12, parcels // 250)
        subprocess.run([*OPTILAND, "generate", "--parcels", str(parcels), "--townships", str(townships),
                        "--villages", str(villages), "--seed", "2020", "--out", str(folder)], check=True)
    return scenario


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, in MB (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry), int(fields.get("PPid", "0").strip() or 0)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total / 1024


def run(scenario: Path, backend: str, method: str, gap: float, time_limit: float) -> dict[str, object]:
    """One `optiland solve` with its figures."""
    with tempfile.TemporaryDirectory(dir=INSTANCES) as tmp:
        out = Path(tmp) / "out"
        command = [*OPTILAND, "solve", str(scenario), "--out", str(out), "--backend", backend, "--strategy", method,
                   "--gap", str(gap), "--time-limit", str(time_limit)]
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = [0.0]

        def sample() -> None:
            while process.poll() is None:
                peak[0] = max(peak[0], _tree_rss_mb(process.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = process.communicate()
        sampler.join()
        total = time.perf_counter() - start
        row: dict[str, object] = {"exit_code": process.returncode, "total_s": round(total, 2),
                                  "peak_mb": round(peak[0])}
        if process.returncode != 0 or not (out / "run.json").exists():
            text = " ".join((stderr or stdout or "failed").split())  # the command wraps its error over lines
            row["note"] = text[text.rfind("error:"):][:300] if "error:" in text else text[-300:]
            return row
        record = json.loads((out / "run.json").read_text(encoding="utf-8"))
        # the whole record (notes: every township's objective, gap and seconds) beside the table, for later study
        RUNS.mkdir(parents=True, exist_ok=True)
        (RUNS / f"{time.strftime('%Y%m%d-%H%M')}-{scenario.parent.name}-{backend}-{method}.json").write_text(
            json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    times = record.get("times", {})
    size = record.get("model_size", {})
    objective = record.get("objective", {})
    row.update({"status": record.get("status"), "read_s": times.get("read"), "build_s": times.get("build"),
                "matrix_s": times.get("matrix"), "solve_s": times.get("solve"), "write_s": times.get("write"),
                "variables": size.get("variables"), "binaries": size.get("binaries"), "rows": size.get("constraints"),
                "nonzeros": size.get("nonzeros"), "objective": objective.get("value"),
                "bound": objective.get("bound"), "gap": objective.get("gap"),
                "note": "; ".join(f"{stage} {seconds:.1f} s" for stage, seconds in times.items()
                                  if stage not in ("read", "build", "matrix", "solve", "write"))})
    return row


def main() -> None:
    """Run the grid of sizes, backends and methods; append to results/scale.csv and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["matrix", "pyomo"])
    parser.add_argument("--methods", nargs="+", default=["auto"])
    parser.add_argument("--gap", type=float, default=1e-3)
    parser.add_argument("--time-limit", type=float, default=600.0)
    args = parser.parse_args()
    INSTANCES.mkdir(parents=True, exist_ok=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    rows = []
    with RESULTS.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        for parcels in args.parcels:
            scenario = instance(parcels)
            for backend in args.backends:
                if backend == "pyomo" and parcels > PYOMO_MAX_PARCELS:
                    continue
                for method in args.methods:
                    print(f"{parcels:,} parcels, {backend}, {method} ...", flush=True)
                    row = {"date": time.strftime("%Y-%m-%d %H:%M"), "parcels": parcels, "backend": backend,
                           "method": method, "gap_asked": args.gap, "time_limit": args.time_limit,
                           **run(scenario, backend, method, args.gap, args.time_limit)}
                    writer.writerow({k: row.get(k, "") for k in COLUMNS})
                    handle.flush()
                    rows.append(row)
                    print(json.dumps({k: row.get(k) for k in COLUMNS if row.get(k) not in (None, "")}), flush=True)
    print()
    print("| parcels | backend | method | read s | build s | hand-over s | solve s | write s | total s | peak MB | "
          "variables | rows | objective | bound | gap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['parcels']:,}", r["backend"], r["method"], r.get("read_s"), r.get("build_s"),
                 r.get("matrix_s"), r.get("solve_s"), r.get("write_s"), r.get("total_s"), r.get("peak_mb"),
                 r.get("variables"), r.get("rows"), r.get("objective"), r.get("bound"), r.get("gap")]
        print("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
