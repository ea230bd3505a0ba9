"""Shared boundaries from geometry (optiland.model.adjacency) on parcel layers made by `optiland generate`: time and
memory.

    flock /tmp/optiland-heavy.lock .venv/bin/python benchmarks/adjacency.py LAYER.gpkg [LAYER.gpkg ...]
        [--methods segments rings] [--out benchmarks/results/adjacency.csv]

Each (layer, method) runs in its own process so that its peak memory is its own: `read_s` (pyogrio, geometry only),
`adjacency_s` (optiland.model.adjacency.boundary_indices with `method`: segments matched by sorting, or rings
intersected
pair by pair),
`cache_write_s` and `cache_read_s` (the parquet table beside the layer), `peak_mb` (peak resident memory of the
process), `rss_after_read_mb`, the number of shared boundaries and outer edges, and the candidate pairs per parcel.
The CSV is rewritten whole.
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
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["parcels", "method", "read_s", "adjacency_s", "cache_write_s", "cache_read_s", "shared", "outer",
          "rss_after_read_mb", "peak_mb", "layer", "when", "host"]


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(layer: Path, method: str) -> dict[str, object]:
    """One layer, in this process."""
    import numpy as np
    import pandas as pd
    import pyogrio

    from optiland.model.adjacency import boundary_indices

    start = time.perf_counter()
    frame = pyogrio.read_dataframe(layer, columns=["parcel_id"])
    read_s = time.perf_counter() - start
    rss_read = _rss_mb()
    geometry = frame.geometry.to_numpy()
    start = time.perf_counter()
    left, right, length = boundary_indices(geometry, method=method)
    adjacency_s = time.perf_counter() - start
    ids = frame["parcel_id"].astype(str).to_numpy()
    table = pd.DataFrame({"id1": ids[left], "id2": ids[right], "boundary": length})
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        table.to_parquet(Path(folder) / "boundaries.parquet", index=False)
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        pd.read_parquet(Path(folder) / "boundaries.parquet")
        read_cache_s = time.perf_counter() - start
    outer = int(np.sum(left == right))
    return {"parcels": len(frame), "method": method, "read_s": round(read_s, 2), "adjacency_s": round(adjacency_s, 2),
            "cache_write_s": round(write_s, 2), "cache_read_s": round(read_cache_s, 2), "shared": len(left) - outer,
            "outer": outer, "rss_after_read_mb": round(rss_read),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "layer": str(layer),
            "when": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node()}


def main() -> None:
    """Measure every layer in a child process; write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layers", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adjacency.csv")
    parser.add_argument("--methods", nargs="+", default=["segments", "rings"])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.layers[0], args.methods[0])))
        return
    rows = []
    for layer in args.layers:
        for method in args.methods:
            done = subprocess.run([sys.executable, __file__, "--one", str(layer), "--methods", method], check=True,
                                  capture_output=True, text=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(row, flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".adjacency-", suffix=".csv", dir=args.out.parent)
    with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, args.out)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
