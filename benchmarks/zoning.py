"""Zoning alone (optiland.zoning) on synthetic plans of 100,000 and 1,000,000 parcels: time and peak memory.

    flock /tmp/optiland-heavy.lock .venv/bin/python benchmarks/zoning.py INSTANCE_DIR [INSTANCE_DIR ...]
        [--mmu 15] [--out benchmarks/results/zoning.csv]

INSTANCE_DIR is a folder written by `optiland generate`. Its parcels get options without solving, by a seeded rule
(red line: closure; basic farmland: keep; elsewhere the village's leading option with probability 0.6, else any
option at random), and are written as a plan folder (plan.gpkg, run.json). Each plan is then zoned in its own process,
so that `peak_mb` (peak resident memory) is its own: `read_s`, `rules_s`, `adjacency_s`, `merge_s`, `dissolve_s`,
`statistics_s`, `write_s` (zones.gpkg), `map_s` (zones.png) and `total_s` (wall clock of optiland.zoning.zone).
The CSV keeps rows of other sizes and replaces those of the sizes run.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = ("keep", "closure", "afforestation", "herbs", "forage", "fruit")
FIELDS = ["parcels", "townships", "patches", "merge_rounds", "parcels_merged", "patches_below_mmu", "mmu_mu",
          "read_s", "rules_s", "adjacency_s", "merge_s", "dissolve_s", "statistics_s", "write_s", "map_s", "total_s",
          "peak_mb", "instance", "when", "host"]


def make_plan(instance: Path, plan: Path, seed: int = 6) -> None:
    """A plan folder from a generated instance, options by a seeded rule (no solve)."""
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import pyogrio

    from optiland.catalog import load_catalog

    catalog = load_catalog(region="karst-southwest")
    parcels = pyogrio.read_dataframe(instance / "parcels.gpkg", use_arrow=True)
    villages = pd.read_csv(instance / "villages.csv", dtype={"village": str, "township": str})
    rng = np.random.default_rng(seed)
    n = len(parcels)
    village_codes, village_of = np.unique(parcels["village"].astype(str), return_inverse=True)
    lead = rng.integers(0, len(OPTIONS), len(village_codes))[village_of]
    option = np.where(rng.random(n) < 0.6, lead, rng.integers(0, len(OPTIONS), n))
    option = np.array(OPTIONS)[option]
    red = parcels["red_line"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    farmland = parcels["basic_farmland"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    option[red] = "closure"
    option[farmland & ~red] = "keep"
    bands = sorted(catalog.grade["bands"], key=lambda b: b["lower"])
    exposure = pd.to_numeric(parcels["bedrock_exposure"]).to_numpy()
    grade = np.array([b["name"] for b in bands])[np.searchsorted([b["lower"] for b in bands], exposure,
                                                                 side="right") - 1]
    township = villages.set_index("village")["township"].reindex(parcels["village"].astype(str)).to_numpy()
    frame = gpd.GeoDataFrame({
        "parcel_id": parcels["parcel_id"].astype(str), "village": parcels["village"].astype(str),
        "township": township, "area_mu": parcels.geometry.area / (10000 / 15), "option": option, "variant": option,
        "red_line": red, "basic_farmland": farmland, "grade": grade, "current_use": parcels["land_use"].astype(str),
    }, geometry=parcels.geometry, crs=parcels.crs)
    plan.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(frame, plan / "plan.gpkg", layer="parcels", use_arrow=True)
    (plan / "run.json").write_text(json.dumps({"catalog": {"name": "karst-southwest", "path": str(catalog.path)},
                                               "note": f"options by a seeded rule (seed {seed}), not solved"}))


def child(plan: str, out: str, mmu: float) -> None:
    """Zone one plan in this process and print its record as JSON, with the peak memory."""
    from optiland.zoning import zone

    start = time.perf_counter()
    zoning = zone(plan, out, mmu_mu=mmu)
    record = dict(zoning.record)
    record["total_s"] = time.perf_counter() - start
    record["townships"] = int(zoning.parcels.groupby(["county", "township"]).ngroups)
    record["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("instances", nargs="*", type=Path)
    parser.add_argument("--mmu", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zoning.csv")
    parser.add_argument("--child", nargs=3, metavar=("PLAN", "OUT", "MMU"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]))
        return
    rows = []
    for instance in args.instances:
        with tempfile.TemporaryDirectory(prefix="zoning-bench-") as scratch:
            plan = Path(scratch) / "plan"
            make_plan(instance, plan)
            done = subprocess.run([sys.executable, __file__, "--child", str(plan), str(Path(scratch) / "zones"),
                                   str(args.mmu)], check=True, capture_output=True, text=True)
        record = json.loads(done.stdout.strip().splitlines()[-1])
        times = record["times"]
        row = {"parcels": record["parcels"], "townships": record["townships"], "patches": record["patches"],
               "merge_rounds": record["merge_rounds"], "parcels_merged": record["parcels_merged"],
               "patches_below_mmu": record["patches_below_mmu"], "mmu_mu": record["mmu_mu"],
               **{f"{k}_s": round(times.get(k, float("nan")), 2) for k in
                  ("read", "rules", "adjacency", "merge", "dissolve", "statistics", "write", "map")},
               "total_s": round(record["total_s"], 2), "peak_mb": round(record["peak_mb"]),
               "instance": str(instance), "when": datetime.now(UTC).isoformat(timespec="seconds"),
               "host": f"{platform.node()} {platform.machine()}"}
        print(row, flush=True)
        rows.append(row)
    kept = []
    if args.out.is_file():
        with open(args.out, encoding="utf-8") as handle:
            done_sizes = {r["parcels"] for r in rows}
            kept = [r for r in csv.DictReader(handle) if int(r["parcels"]) not in done_sizes]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for row in sorted(kept + rows, key=lambda r: int(r["parcels"])):
            writer.writerow(row)


if __name__ == "__main__":
    main()
