"""Zoning alone (optiland.views.zoning) on synthetic plans of 100,000 and 1,000,000 parcels: time and peak memory.

    flock /tmp/optiland-heavy.lock .venv/bin/python benchmarks/zoning.py INSTANCE_DIR [INSTANCE_DIR ...]
        [--mmu 15] [--out benchmarks/results/zoning.csv]

INSTANCE_DIR is a folder written by `optiland generate`. Its parcels get options without solving, by a seeded rule
(red line: closure; basic farmland: keep; elsewhere the village's leading option with probability 0.6, else any
option at random), and are written as a plan folder (plan.gpkg, run.json). Each plan is then zoned in its own process,
so that `peak_mb` (peak resident memory) is its own: `read_s`, `rules_s`, `adjacency_s`, `merge_s`, `dissolve_s`,
`statistics_s`, `write_s` (zones.gpkg), `map_s` (zones.png) and `total_s` (wall clock of optiland.views.zoning.zone).
With `--db postgresql://...` a second process writes the plan's parcels to a PostGIS table (`db_write_parcels_s`),
reads them back with their SRID (`db_read_parcels_s`), zones the plan and writes the zone tables in one transaction
(`db_write_zones_s`), with its own `db_peak_mb`; the tables (zoning_bench_*) are dropped afterwards.
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

from optiland.views.zoning import synthetic_plan

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["parcels", "townships", "patches", "merge_rounds", "parcels_merged", "patches_below_mmu", "mmu_mu",
          "read_s", "rules_s", "adjacency_s", "merge_s", "dissolve_s", "statistics_s", "write_s", "map_s", "total_s",
          "peak_mb", "db_write_parcels_s", "db_read_parcels_s", "db_write_zones_s", "db_peak_mb", "instance", "when",
          "host"]
DB_PREFIX = "zoning_bench_"


def child(plan: str, out: str, mmu: float) -> None:
    """Zone one plan in this process and print its record as JSON, with the peak memory."""
    from optiland.views.zoning import zone

    start = time.perf_counter()
    zoning = zone(plan, out, mmu_mu=mmu)
    record = dict(zoning.record)
    record["total_s"] = time.perf_counter() - start
    record["townships"] = int(zoning.parcels.groupby(["county", "township"]).ngroups)
    record["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(record))


def db_child(plan: str, out: str, mmu: float, db: str) -> None:
    """PostGIS round trip of one plan in this process: parcels written and read back, zone tables written."""
    import psycopg
    import pyogrio

    from optiland.io.postgis import read_parcel_table, write_tables
    from optiland.views.zoning import zone

    parcels = pyogrio.read_dataframe(Path(plan) / "plan.gpkg", layer="parcels", use_arrow=True)
    start = time.perf_counter()
    write_tables(db, {f"{DB_PREFIX}parcels": parcels})
    record = {"db_write_parcels_s": time.perf_counter() - start}
    start = time.perf_counter()
    back = read_parcel_table(db, f"{DB_PREFIX}parcels")
    record["db_read_parcels_s"] = time.perf_counter() - start
    assert len(back) == len(parcels)
    del back, parcels
    zoning = zone(plan, None, mmu_mu=mmu, db=db, prefix=DB_PREFIX)
    record["db_write_zones_s"] = zoning.record["times"]["database"]
    record["db_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with psycopg.connect(db) as conn:
        for table in ("parcels", "zones", "zone_stats", "parcel_zones"):
            conn.execute(f'DROP TABLE IF EXISTS "{DB_PREFIX}{table}"')
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("instances", nargs="*", type=Path)
    parser.add_argument("--mmu", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zoning.csv")
    parser.add_argument("--db", help="also time a PostGIS round trip in this database (postgresql://...)")
    parser.add_argument("--child", nargs=3, metavar=("PLAN", "OUT", "MMU"), help=argparse.SUPPRESS)
    parser.add_argument("--db-child", nargs=4, metavar=("PLAN", "OUT", "MMU", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]))
        return
    if args.db_child:
        db_child(args.db_child[0], args.db_child[1], float(args.db_child[2]), args.db_child[3])
        return
    rows = []
    for instance in args.instances:
        with tempfile.TemporaryDirectory(prefix="zoning-bench-") as scratch:
            plan = Path(scratch) / "plan"
            synthetic_plan(instance, plan)
            done = subprocess.run([sys.executable, __file__, "--child", str(plan), str(Path(scratch) / "zones"),
                                   str(args.mmu)], check=True, capture_output=True, text=True)
            database = {}
            if args.db:
                db_done = subprocess.run([sys.executable, __file__, "--db-child", str(plan), "-", str(args.mmu),
                                          args.db], check=True, capture_output=True, text=True)
                database = json.loads(db_done.stdout.strip().splitlines()[-1])
        record = json.loads(done.stdout.strip().splitlines()[-1])
        times = record["times"]
        row = {"parcels": record["parcels"], "townships": record["townships"], "patches": record["patches"],
               "merge_rounds": record["merge_rounds"], "parcels_merged": record["parcels_merged"],
               "patches_below_mmu": record["patches_below_mmu"], "mmu_mu": record["mmu_mu"],
               **{f"{k}_s": round(times.get(k, float("nan")), 2) for k in
                  ("read", "rules", "adjacency", "merge", "dissolve", "statistics", "write", "map")},
               "total_s": round(record["total_s"], 2), "peak_mb": round(record["peak_mb"]),
               **{k: round(v, 2) if k.endswith("_s") else round(v) for k, v in database.items()},
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
