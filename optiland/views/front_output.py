"""A land-use front's files: front.csv, front.png (the plot), plans.parquet and run.json (write_front)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from optiland.analysis.front_engine import Front
from optiland.analysis.front_landuse import LandUseFrontModel, baseline, plans_table
from optiland.io.tables import write_csv
from optiland.mip.solver import SolverOptions

LABELS = {"ecosystem_services": "ecosystem services index", "income": "income (yuan/yr)",
          "cost": "establishment cost (yuan)", "carbon": "carbon gain", "soil": "soil retention gain",
          "water": "water retention gain", "habitat": "habitat gain"}


METHOD_LABELS = {"augmecon2": "Pareto front (AUGMECON2)", "augmecon-r": "Pareto front (AUGMECON-R)",
                 "augmecon2-classic": "Pareto front (AUGMECON2)",
                 "weighted-sum": "supported points only (weighted sum)",
                 "lexicographic": "extreme points only (lexicographic)"}


def _annotate_marginal_rates(ax: Any, ordered: pd.DataFrame, names: Sequence[str], most: int = 12) -> None:
    """Write the marginal rate (change of the second objective per unit of the first) at the middle of segments
    of the front, at most `most` of them spread evenly so the labels stay legible."""
    if "marginal_rate" not in ordered or len(ordered) < 2:
        return
    x, y = ordered[names[0]].to_numpy(dtype=float), ordered[names[1]].to_numpy(dtype=float)
    rates = ordered["marginal_rate"].to_numpy(dtype=float)
    segments = np.arange(1, len(ordered))
    if len(segments) > most:
        segments = segments[np.linspace(0, len(segments) - 1, most).round().astype(int)]
    for j in segments:
        if np.isfinite(rates[j]):
            ax.annotate(f"{rates[j]:,.3g}", ((x[j - 1] + x[j]) / 2, (y[j - 1] + y[j]) / 2), fontsize=6,
                        color="tab:gray", xytext=(4, 4), textcoords="offset points")
    ax.text(0.01, 0.01, f"grey figures: marginal rate, {names[1]} per unit of {names[0]}", transform=ax.transAxes,
            fontsize=7, color="tab:gray")


def plot_front(result: Front, path: Any, base: Mapping[str, float] | None = None, title: str = "") -> None:
    """The front (a line for two objectives, a 3-D scatter for three), the knee and ideal picks, and the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, table = result.names, result.table
    label = {k: f"{LABELS.get(k, k)} ({result.senses[k]})" for k in names}
    knee = table[table["point"] == result.knee]
    ideal = table[table["point"] == result.ideal]
    if len(names) == 2:
        fig, ax = plt.subplots(figsize=(7, 5))
        ordered = table.sort_values(names[0])
        ax.plot(ordered[names[0]], ordered[names[1]], "-o", color="tab:blue", ms=4, label=METHOD_LABELS.get(
            result.method, result.method))
        refined = ordered[ordered["found_by"] == "refine"] if "found_by" in ordered else ordered.iloc[0:0]
        if len(refined):
            ax.plot(refined[names[0]], refined[names[1]], "o", mfc="none", color="tab:orange", ms=8,
                    label="added by refinement")
        _annotate_marginal_rates(ax, ordered, names)
        if len(knee):
            ax.plot(knee[names[0]], knee[names[1]], "*", color="tab:red", ms=16, label=f"knee (point {result.knee})")
        if len(ideal):
            ax.plot(ideal[names[0]], ideal[names[1]], "D", mfc="none", color="tab:green", ms=10,
                    label=f"ideal pick (point {result.ideal})")
        if base:
            ax.plot(base[names[0]], base[names[1]], "X", color="black", ms=10, label="current use")
        ax.set_xlabel(label[names[0]])
        ax.set_ylabel(label[names[1]])
        ax.grid(alpha=0.3)
    else:
        fig = plt.figure(figsize=(8, 6))
        ax = fig.add_subplot(projection="3d")
        ax.scatter(table[names[0]], table[names[1]], table[names[2]], c=table[names[0]], cmap="viridis", s=18,
                   label=METHOD_LABELS.get(result.method, result.method))
        if len(knee):
            ax.scatter(knee[names[0]], knee[names[1]], knee[names[2]], marker="*", color="tab:red", s=200,
                       label=f"knee (point {result.knee})")
        if base:
            ax.scatter([base[names[0]]], [base[names[1]]], [base[names[2]]], marker="X", color="black", s=80,
                       label="current use")
        ax.set_xlabel(label[names[0]])
        ax.set_ylabel(label[names[1]])
        ax.set_zlabel(label[names[2]])
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or f"Pareto front, {len(table)} points")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def front_status(result: Any) -> str:
    """The front's status: "time_limit" when a point's solve was cut off by the time limit (its point kept with its
    gap, or its grid point left without a plan), "interrupted" likewise, else "optimal" (every point within its
    gap, or proven infeasible)."""
    statuses = set(result.table["status"]) if "status" in result.table.columns else set()
    if "interrupted" in statuses:
        return "interrupted"
    if "time_limit" in statuses or any(": no plan (" in note for note in result.notes):
        return "time_limit"
    return "optimal"


def write_front(out_dir: Any, prepared: Any, result: Front, model: LandUseFrontModel, options: SolverOptions,
                times: Mapping[str, float]) -> Any:
    """Write front.csv, front.png, plans.parquet and run.json to OUT_DIR, whole or not at all."""
    import json
    from pathlib import Path

    from optiland.pipeline.results import _json, provenance, write_atomically

    problem = prepared.problem
    base = baseline(problem, result.names, model.es_scale)
    table = result.table.rename(columns={"point": "plan_id"})
    scenario = prepared.scenario

    def write(folder: Path) -> None:
        start = time.perf_counter()
        write_csv(table, folder / "front.csv")
        plot_front(result, folder / "front.png", base, title=f"{scenario.name or 'scenario'}: Pareto front")
        plans_table(problem, result).to_parquet(folder / "plans.parquet", index=False)
        run = {
            **provenance(prepared),
            "backend": getattr(getattr(model, "backend", None), "name", None),
            "solver": {"name": "highs", "options": options.as_dict()},
            "reference": model.reference,
            "status": front_status(result),
            **result.summary(),
            "baseline": base,
            "points": json.loads(table.to_json(orient="records")),
            "times": {**{k: round(v, 3) for k, v in times.items()},
                      "per_point_mean": round(float(table["solve_seconds"].mean()), 4) if len(table) else None,
                      "write": round(time.perf_counter() - start, 3)},
            "notes": model.notes + [n for n in result.notes if n not in model.notes],
        }
        (folder / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False, default=_json),
                                         encoding="utf-8")

    return write_atomically(Path(out_dir), write)
