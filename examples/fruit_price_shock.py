"""Fruit price shock: what happens to villages, income and ecosystem services when fruit earns less?

Fruit net income per mu (every fruit variant at once) is scaled from 1.0 down to 0.5 of the catalog figure and the
plan is made again at each price. For each price the study reports whether every village can still reach its income
floor (a run is infeasible when one cannot; its diagnosis says how many villages fall short), how many villages end
at or below the floor, the land income, the fruit area, and the gain of each ecosystem service.

    .venv/bin/python examples/fruit_price_shock.py [SCENARIO] [--runs 6] [--out out/fruit-price-shock]
        [--executor processes|serial|dask] [--workers N] [--time-limit 300]

Default: the shipped demo township, 6 prices (1.0, 0.9, ..., 0.5), the `fast` solver preset (1% gap) with a time
limit per run. The demo takes about 2 minutes per run at the default 0.01% gap; with `fast` the base run took 36 s on
the 2-core development machine, and two runs go side by side (about 2 to 3 minutes for the 6 runs). With a 1% gap,
differences between runs smaller than about 1% of the objective may be the solver's, not the price's. Results go to
OUT (see README, "Sensitivity sweeps"); run again to resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.analysis.sweep import DEFAULT_METRICS, one_at_a_time, sweep, wide
from optiland.io.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "instances" / "huanjiang-demo" / "scenario.toml"
PRICE = "catalog.variants.fruit.*.net_income_per_mu"


def fruit_area(plan: Any) -> dict[str, float]:
    """Area under fruit (mu) and the smallest margin of any village above its floor (yuan per person)."""
    parcels = plan.parcels
    villages = plan.villages
    return {"fruit_area_mu": float(parcels.loc[parcels["option"] == "fruit", "area_mu"].sum()),
            "min_margin_per_capita": float((villages["income_per_capita_after"] - villages["floor"]).min())}


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(DEMO))
    parser.add_argument("--runs", type=int, default=6, help="number of prices from 1.0 down to 0.5")
    parser.add_argument("--out", default=str(ROOT / "out" / "fruit-price-shock"))
    parser.add_argument("--executor", default="processes", choices=["serial", "processes", "dask"])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the study; print and return one row per price."""
    args = parse(argv)
    scenario = load_scenario(args.scenario).with_(**{"solver.preset": "fast", "solver.time_limit": args.time_limit})
    factors = [round(float(f), 4) for f in np.linspace(1.0, 0.5, args.runs)]
    design = one_at_a_time({PRICE: 1.0}, {PRICE: factors}, as_scale=[PRICE])
    results = sweep(scenario, design, executor=args.executor, workers=args.workers, out_dir=args.out,
                    metrics=(*DEFAULT_METRICS, fruit_area))
    table = wide(results).sort_values(PRICE, ascending=False).rename(columns={PRICE: "fruit_price_factor"})
    columns = ["fruit_price_factor", "status", "villages_below_floor", "min_margin_per_capita", "income",
               "fruit_area_mu", *[f"gain_{s}" for s in ("carbon", "soil", "water", "habitat")]]
    table = table[[c for c in columns if c in table.columns]].reset_index(drop=True)
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.float_format",
                           "{:,.2f}".format):
        print("Fruit price shock (villages_below_floor: at or below the floor; for an infeasible run, the number "
              "the diagnosis finds short)")
        print(table.to_string(index=False))
    print(f"written to {args.out}")
    return table


if __name__ == "__main__":
    main()
