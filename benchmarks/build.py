"""Build and hand-over: how long each backend takes from a PlanningProblem to a MatrixLP ready for HiGHS, and how much
memory it needs, on instances of 10,000 / 100,000 / 1,000,000 parcels made by `optiland generate` (karst-southwest
catalog, the full core model: every family the generated scenario switches on, objective the ecosystem-services index).

    flock /tmp/optiland-heavy.lock .venv/bin/python benchmarks/build.py [--parcels 10000 100000 1000000]
        [--backends matrix pyomo] [--pyomo-max 100000] [--instances DIR] [--out benchmarks/results/build.csv]

Each (instance, backend) runs in its own process, one at a time, so that peak memory is that run's. Per run:
`read_s` (scenario, parcels and the allowed set: optiland.pipeline.run.prepare), `build_s` (Backend.build), `matrix_s`
(Backend.matrix: Pyomo's compile, or the matrix backend's assembly), `build_handover_s` (their sum: build to MatrixLP
ready), `highs_pass_s` (the MatrixLP copied into a highspy.Highs object with passModel, where measured), peak
resident memory of the process (`peak_mb`) and during build and hand-over (`build_peak_mb`, sampled every 20 ms), and
the model size. No instance is solved. Results are appended to the CSV (one row per run, with a timestamp).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["parcels", "backend", "allowed_rows", "read_s", "build_s", "matrix_s", "build_handover_s", "highs_pass_s",
          "peak_mb", "build_peak_mb", "rss_before_build_mb", "vars", "binaries", "rows", "nnz", "when", "host"]


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _PeakSampler:
    """Highest resident memory seen while running (sampled in a thread)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _available_mb() -> float:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def measure_one(scenario: Path, backend_name: str, highs_pass: bool) -> dict[str, object]:
    """One run in this process: prepare, build, hand over (and optionally pass to HiGHS); the figures as a dict."""
    from optiland.mip.solver import SolverOptions, _highs
    from optiland.model.backend import make_backend
    from optiland.pipeline.run import prepare

    start = time.perf_counter()
    prepared = prepare(scenario)
    read_s = time.perf_counter() - start
    problem = prepared.problem
    scales = {s: 1.0 for s in problem.params["weights"]}  # any positive G*_s: the build does not depend on them
    before = _rss_mb()
    backend = make_backend(backend_name)
    with _PeakSampler() as sampler:
        start = time.perf_counter()
        backend.build(problem)
        backend.es_scale = scales
        backend.set_objective({"ecosystem_services": 1.0}, "max", scale=scales, weights=problem.params["weights"])
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        lp = backend.matrix()
        matrix_s = time.perf_counter() - start
    pass_s = None
    if highs_pass and _available_mb() < 3 * (lp.A.nnz * 12 + lp.A.shape[1] * 40) / 2**20:
        highs_pass = False  # HiGHS's copy (and the column-wise copy before it) would not fit beside this one
    if highs_pass:
        start = time.perf_counter()
        h = _highs(lp, SolverOptions(), 60.0)
        pass_s = time.perf_counter() - start
        del h
    n_cols, n_rows, nnz = lp.shape
    return {"parcels": problem.n_parcels, "backend": backend.name, "allowed_rows": len(problem.allowed),
            "read_s": round(read_s, 2), "build_s": round(build_s, 2), "matrix_s": round(matrix_s, 2),
            "build_handover_s": round(build_s + matrix_s, 2),
            "highs_pass_s": None if pass_s is None else round(pass_s, 2),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "build_peak_mb": round(sampler.peak), "rss_before_build_mb": round(before),
            "vars": n_cols, "binaries": int(lp.integer.sum()), "rows": n_rows, "nnz": nnz}


def instance(parcels: int, folder: Path) -> Path:
    """The scenario of a generated instance (made with `optiland generate` if missing): one township per 20,000
    parcels and one village per 250, as in the demo (3,000 parcels, 12 villages)."""
    out = folder / f"p{parcels}"
    scenario = out / "scenario.toml"
    if not scenario.is_file():
        townships, villages = max(parcels // 20_000, 1), max(parcels // 250, 1)
        subprocess.run([str(Path(sys.executable).parent / "optiland"), "generate", "--parcels", str(parcels),
                        "--townships", str(townships), "--villages", str(villages), "--out", str(out)], check=True)
    return scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parcels", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["matrix", "pyomo"])
    parser.add_argument("--pyomo-max", type=int, default=100_000, help="largest instance built with Pyomo")
    parser.add_argument("--pass-max", type=int, default=100_000,
                        help="largest instance passed to HiGHS (skipped anyway when memory is short)")
    parser.add_argument("--instances", type=Path, default=Path("/tmp/optiland-build"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "build.csv")
    parser.add_argument("--one", nargs=3, metavar=("SCENARIO", "BACKEND", "PASS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        scenario, backend, highs_pass = args.one
        print(json.dumps(measure_one(Path(scenario), backend, highs_pass == "1")))
        return
    args.instances.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.is_file()
    with args.out.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for parcels in args.parcels:
            scenario = instance(parcels, args.instances)
            for backend in args.backends:
                if backend == "pyomo" and parcels > args.pyomo_max:
                    continue
                highs_pass = "1" if parcels <= args.pass_max else "0"
                print(f"{parcels:,} parcels, {backend} ...", flush=True)
                done = subprocess.run([sys.executable, __file__, "--one", str(scenario), backend, highs_pass],
                                      capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
                if done.returncode != 0:
                    print(done.stderr[-2000:], file=sys.stderr)
                    continue
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row.update(when=datetime.now(UTC).isoformat(timespec="seconds"),
                           host=f"{platform.machine()} {os.cpu_count()} cores")
                writer.writerow(row)
                handle.flush()
                print("  " + ", ".join(f"{k} {row[k]}" for k in FIELDS[2:15]), flush=True)


if __name__ == "__main__":
    main()
