"""The outputs of a transition run (optiland.analysis.transition): the year-by-year plan, each village's income paths
against its floor, the price risk and the cost of robustness; written whole or not at all.

Files (README, "Transition years and price risk"):

- ``plan.gpkg`` layer ``parcels``: the plan at maturity as ``results`` writes it, plus ``start_year`` and
  ``end_year`` (derived, see :func:`parcel_years`);
- ``phasing.csv``: area established per (village, option, variant) and year;
- ``village_years.csv``: per village and year, income per capita at average prices and in the worst scenario
  against the floor, income by source, labour, herd, posts;
- ``village_risk.csv``: per village, the worst year and scenario, the margin to the floor, the expected shortfall
  and the CVaR of the shortfall;
- ``years.csv``: per year, establishment spending, transfers and subsidy against their budgets;
- ``robustness.csv`` (with a comparison plan): the objective of the plan and of the average-price plan, the cost
  of robustness, and how many (village, year, scenario) cells each leaves below the floor;
- ``transition_plan.csv``: the transition's own variables, exactly (:func:`plan_table`), and ``villages.csv``,
  ``townships.csv`` as ``solve`` writes them for the plan at maturity: ``optiland check DIR`` reads them back and
  recomputes every core and every yearly row (:func:`check_transition_folder`);
- ``run.json``: provenance, solver, status, objective, bound, gap, model size, times, notes, the risk measure and
  the price scenarios' source;
- ``income_paths.png`` and ``phasing.png``.

CSV files are UTF-8 with a byte-order mark, as ``results`` writes them. Money is undiscounted yuan of the catalog's
price year; "per capita" divides by the village's population.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.analysis.transition import TransitionOutcome
from optiland.analysis.transition_accounts import TransitionPlan, cvar, final_areas, shortfall
from optiland.analysis.transition_problem import TransitionProblem, build_transition
from optiland.errors import InputError, Issue, OptilandError
from optiland.io.tables import read_results_csv, write_csv
from optiland.mip.solver import SolverOptions
from optiland.model.backend import Solution
from optiland.pipeline.reference import kind_of
from optiland.pipeline.results import (
    FLOOR_TOLERANCE,
    _json,
    parcel_table,
    provenance,
    township_table,
    village_table,
    write_atomically,
)
from optiland.pipeline.run import Prepared, RunOutcome, read

FILES = ("plan.gpkg", "phasing.csv", "village_years.csv", "village_risk.csv", "years.csv", "transition_plan.csv",
         "villages.csv", "townships.csv", "run.json", "income_paths.png", "phasing.png")
"""Always written; ``robustness.csv`` too when a comparison plan is given."""
TOLERANCE = 1e-6
"""Relative tolerance (of a group's final area) below which an area established counts as none."""
MIN_COMPARE_SECONDS = 1.0
"""Below this much time left, the average-price comparison is skipped (with a note)."""
MAX_PANELS = 48
"""The most villages income_paths.png shows; with more, those closest to (or furthest below) their floor."""


# --------------------------------------------------------------------------------------------------- tables
def parcel_years(outcome: TransitionOutcome) -> pd.DataFrame:
    """Per parcel: ``start_year`` and ``end_year`` (1..H) of its conversion; <NA> for parcels keeping their use.

    Derived, not decided by the model: the model phases each group's *area* (its parcels are interchangeable in
    every money figure), so each group's chosen parcels are filled in parcel order with the area it establishes
    year by year. ``start_year`` is the year the parcel's first mu is established, ``end_year`` the year its last
    is; a parcel straddling two years has ``end_year > start_year``.
    """
    tp, plan = outcome.tp, outcome.plan
    allowed = tp.problem.allowed
    n = tp.problem.n_parcels
    start = np.full(n, -1, dtype=np.int64)
    end = np.full(n, -1, dtype=np.int64)
    chosen = np.flatnonzero((np.asarray(plan.core.x) > 0.5) & (tp.row_group >= 0))
    parcel = allowed["parcel"].to_numpy()[chosen]
    area = allowed["area"].to_numpy(dtype=float)[chosen]
    group = tp.row_group[chosen]
    order = np.lexsort((parcel, group))
    cumulative = np.cumsum(plan.establish, axis=1)
    H = tp.horizon
    final = final_areas(tp, plan.core.x)
    filled: dict[int, float] = {}
    for i in order:
        q = int(group[i])
        tol = TOLERANCE * max(1.0, float(final[q]))
        before = filled.get(q, 0.0)
        after = before + float(area[i])
        filled[q] = after
        reached = cumulative[q]
        first = np.flatnonzero(reached > before + tol)
        last = np.flatnonzero(reached >= after - tol)
        start[parcel[i]] = int(first[0]) + 1 if len(first) else H
        end[parcel[i]] = int(last[0]) + 1 if len(last) else H
    return pd.DataFrame({name: pd.Series(values).where(values > 0).astype("Int64")
                         for name, values in (("start_year", start), ("end_year", end))})


def phasing_table(outcome: TransitionOutcome) -> pd.DataFrame:
    """Area established per (village, option, variant) and year, and its share of that pair's final area; only
    nonzero rows. Groups that differ only in the current use they replace are summed."""
    tp, plan = outcome.tp, outcome.plan
    g = tp.groups
    names = tp.problem.villages["village"].to_numpy()
    final = final_areas(tp, plan.core.x)
    rows = []
    for t in range(tp.horizon):
        rows.append(pd.DataFrame({"village": names[g["village"].to_numpy()], "option": g["option"].to_numpy(),
                                  "variant": g["variant"].to_numpy(), "year": t + 1,
                                  "area_mu": plan.establish[:, t], "final_mu": final}))
    table = pd.concat(rows, ignore_index=True)
    keys = ["village", "option", "variant"]
    totals = table[table["year"] == 1].groupby(keys, sort=False)["final_mu"].sum()
    table = table.groupby([*keys, "year"], sort=False, as_index=False)["area_mu"].sum()
    table["final_mu"] = totals.reindex(pd.MultiIndex.from_frame(table[keys])).to_numpy()
    table = table[table["area_mu"] > TOLERANCE * np.maximum(1.0, table["final_mu"])]
    table["share"] = table["area_mu"] / table["final_mu"].where(table["final_mu"] > 0)
    table = table.sort_values([*keys, "year"], kind="stable").reset_index(drop=True)
    return table[["village", "option", "variant", "year", "area_mu", "share"]].round(
        {"area_mu": 4, "share": 6})


def _per_capita(outcome: TransitionOutcome) -> np.ndarray:
    return outcome.tp.problem.villages["population"].to_numpy(dtype=float)


def _worst(income: np.ndarray, tie: float) -> tuple[int, int]:
    """(year, scenario) of a village's lowest income (years x scenarios); among cells within `tie` yuan of it, the
    scenario with the lowest mean income over the years, then the earliest year (a robust plan holds many
    scenarios at the floor exactly)."""
    low = float(income.min())
    years, scenarios = np.nonzero(income <= low + tie)
    mean = income.mean(axis=0)
    best = np.lexsort((years, mean[scenarios]))[0]
    return int(years[best]), int(scenarios[best])


def _worst_by_year(income: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """(villages, H) the scenario of each village's lowest income in each year, ties broken as :func:`_worst`."""
    n_v, H, _ = income.shape
    out = np.zeros((n_v, H), dtype=np.int64)
    for v in range(n_v):
        mean = income[v].mean(axis=0)
        for t in range(H):
            candidates = np.flatnonzero(income[v, t] <= income[v, t].min() + tie[v])
            out[v, t] = candidates[np.argmin(mean[candidates])]
    return out


def village_years_table(outcome: TransitionOutcome) -> pd.DataFrame:
    """One row per village and year: the floor, income per capita at average prices and in the year's worst
    scenario (which one), the shortfall below the floor (worst scenario, and expected over the scenarios), the
    income by source (average prices, per capita), labour used and available, the herd and the posts staffed."""
    tp, acc, plan = outcome.tp, outcome.accounts, outcome.plan
    villages = tp.problem.villages
    pop = _per_capita(outcome)
    H, n_v = tp.horizon, len(villages)
    floor = villages["floor"].to_numpy(dtype=float)
    worst = _worst_by_year(acc.income, FLOOR_TOLERANCE * pop)
    worst_income = np.take_along_axis(acc.income, worst[:, :, None], axis=2)[:, :, 0]
    gap = shortfall(acc)
    expected_gap = np.einsum("vts,s->vt", gap, tp.prices.probability)
    scenario_names = np.array(tp.prices.names, dtype=object)
    table = pd.DataFrame({
        "village": np.repeat(villages["village"].to_numpy(), H),
        "year": np.tile(np.arange(1, H + 1), n_v),
        "floor": np.repeat(floor, H),
        "income_per_capita": (acc.expected_income / pop[:, None]).ravel(),
        "worst_income_per_capita": (worst_income / pop[:, None]).ravel(),
        "worst_scenario": scenario_names[worst].ravel(),
        "shortfall_worst": (gap.max(axis=2) / pop[:, None]).ravel(),
        "shortfall_expected": (expected_gap / pop[:, None]).ravel(),
        "below_floor_average": (acc.expected_income < acc.need[:, None] - FLOOR_TOLERANCE * pop[:, None]).ravel(),
    })
    for name, values in acc.parts.items():
        table[f"income_{name}"] = (values / pop[:, None]).ravel()
    table["labour_used"] = acc.labour.ravel()
    table["labour_available"] = np.repeat(villages["labour_days"].to_numpy(dtype=float), H)
    table["herd"] = acc.herd.ravel()
    table["posts"] = plan.posts_staffed.ravel()
    money = [c for c in table.columns if c.startswith(("income", "worst_income", "shortfall"))]
    return table.round({**dict.fromkeys(money, 2), "labour_used": 2, "herd": 3, "posts": 3})


def village_risk_table(outcome: TransitionOutcome) -> pd.DataFrame:
    """One row per village: the worst (year, scenario) by income per capita, its margin to the floor (negative:
    below), the cells below the floor, and per year the largest expected shortfall and CVaR of the shortfall
    (the risk measure's alpha) with the year it falls in; the measure and its limit."""
    tp, acc = outcome.tp, outcome.accounts
    villages = tp.problem.villages
    pop = _per_capita(outcome)
    n_v, H, S = acc.income.shape
    risk = tp.risk
    gap = shortfall(acc)
    probability = tp.prices.probability
    rows = []
    for v in range(n_v):
        t, s = _worst(acc.income[v], FLOOR_TOLERANCE * pop[v])
        expected = probability @ gap[v].T
        tail = np.array([cvar(gap[v, year], probability, risk.alpha) for year in range(H)])
        floor = float(villages["floor"].iloc[v])
        worst = float(acc.income[v, t, s]) / pop[v]
        rows.append({
            "village": villages["village"].iloc[v],
            "floor": floor,
            "worst_year": t + 1,
            "worst_scenario": tp.prices.names[s],
            "worst_income_per_capita": worst,
            "margin_to_floor": worst - floor,
            "lowest_average_income_per_capita": float(acc.expected_income[v].min()) / pop[v],
            "lowest_average_year": int(np.argmin(acc.expected_income[v])) + 1,
            "cells_below_floor": int((acc.income[v] < acc.need[v] - FLOOR_TOLERANCE * pop[v]).sum()),
            "expected_shortfall_max": float(expected.max()) / pop[v],
            "expected_shortfall_year": int(np.argmax(expected)) + 1,
            "cvar_shortfall_max": float(tail.max()) / pop[v],
            "cvar_shortfall_year": int(np.argmax(tail)) + 1,
            "cvar_alpha": float(risk.alpha),
            "measure": risk.measure,
            "max_shortfall": float(risk.max_shortfall) if risk.measure in ("cvar", "icc") else 0.0,
        })
    table = pd.DataFrame(rows)
    money = ["worst_income_per_capita", "margin_to_floor", "lowest_average_income_per_capita",
             "expected_shortfall_max", "cvar_shortfall_max"]
    return table.round(dict.fromkeys(money, 2))


def years_table(outcome: TransitionOutcome) -> pd.DataFrame:
    """One row per year: area established, herd bought, establishment spending against the yearly budget,
    compensation and wages against the transfer budget, transition subsidy paid (and cumulated, against the
    subsidy budget). Budgets not set are blank."""
    tp, acc, plan = outcome.tp, outcome.accounts, outcome.plan
    H = tp.horizon
    transfer = tp.problem.params.get("transfer_budget")
    subsidy = plan.subsidy.sum(axis=0)
    table = pd.DataFrame({
        "year": np.arange(1, H + 1),
        "area_established_mu": plan.establish.sum(axis=0),
        "herd_bought": plan.herd_bought.sum(axis=0),
        "establishment_cost": acc.cost,
        "yearly_budget": tp.yearly_budget if tp.yearly_budget is not None else np.nan,
        "transfers": acc.transfers,
        "transfer_budget": float(transfer) if transfer is not None else np.nan,
        "subsidy": subsidy,
        "subsidy_cumulated": np.cumsum(subsidy),
        "subsidy_budget": float(tp.config.subsidy_budget),
    })
    return table.round(2)


def floor_breaks(outcome: TransitionOutcome) -> int:
    """How many (village, year, scenario) cells leave the village below its floor (by more than
    results.FLOOR_TOLERANCE yuan per capita)."""
    acc = outcome.accounts
    pop = _per_capita(outcome)
    return int((acc.income < (acc.need - FLOOR_TOLERANCE * pop)[:, None, None]).sum())


def objective_sense(outcome: TransitionOutcome) -> str:
    """The sense, max or min: the scenario's sense for the ``end`` objective, max for the horizon objectives."""
    tp = outcome.tp
    return str(tp.problem.params["sense"]) if tp.config.objective == "end" else "max"


def robustness_table(outcome: TransitionOutcome, compare: TransitionOutcome) -> pd.DataFrame:
    """The plan against the average-price plan (``compare``, solved with measure ``expected`` on the same price
    scenarios): objective of each, the cost of robustness (objective given up, absolute and relative to the
    average-price plan's) and the cells each leaves below the floor."""
    a, b = outcome.tp.prices, compare.tp.prices
    if a.names != b.names or a.factor.shape != b.factor.shape or not np.allclose(a.factor, b.factor):
        raise OptilandError("the comparison plan was solved on other price scenarios; robustness needs the same")
    sense = objective_sense(outcome)
    mine, theirs = outcome.result.objective, compare.result.objective
    cost = relative = math.nan
    if mine is not None and theirs is not None:
        cost = (theirs - mine) if sense == "max" else (mine - theirs)
        relative = cost / abs(theirs) if theirs else math.nan
    cells = int(np.prod(outcome.accounts.income.shape))
    rows = []
    for label, o in ((outcome.tp.risk.measure, outcome), ("average_price", compare)):
        pop = _per_capita(o)
        gap = shortfall(o.accounts) / pop[:, None, None]
        rows.append({"plan": label, "measure": o.tp.risk.measure, "objective_name": o.objective_name,
                     "sense": sense, "objective": o.result.objective, "bound": o.result.bound, "gap": o.result.gap,
                     "status": o.result.status.value, "cells": cells, "cells_below_floor": floor_breaks(o),
                     "worst_shortfall_per_capita": round(float(gap.max()), 2),
                     "cost_of_robustness": cost if o is outcome else 0.0,
                     "relative_cost_of_robustness": relative if o is outcome else 0.0})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------- plots
def plot_income_paths(outcome: TransitionOutcome, path: Path, compare: TransitionOutcome | None = None) -> None:
    """Per village, income per capita over the years: at average prices (line), the scenarios' range (band), the
    worst scenario (the one with the lowest income in any year), the floor (dashed) and, with a comparison plan,
    its path at average prices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    tp, acc = outcome.tp, outcome.accounts
    villages = tp.problem.villages
    pop = _per_capita(outcome)
    n_all, H, S = acc.income.shape
    shown = np.arange(n_all)
    if n_all > MAX_PANELS:
        margin = (acc.income.min(axis=(1, 2)) - acc.need) / pop
        shown = np.sort(np.argsort(margin, kind="stable")[:MAX_PANELS])
    n_v = len(shown)
    years = np.arange(1, H + 1)
    cols = min(4, n_v)
    rows = math.ceil(n_v / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows + 0.6), squeeze=False, sharex=True)
    for panel in range(rows * cols):
        ax = axes[panel // cols][panel % cols]
        if panel >= n_v:
            ax.axis("off")
            continue
        v = int(shown[panel])
        income = acc.income[v] / pop[v]
        worst = _worst(acc.income[v], FLOOR_TOLERANCE * pop[v])[1]
        if S > 1:
            ax.fill_between(years, income.min(axis=1), income.max(axis=1), color="tab:blue", alpha=0.18,
                            linewidth=0, label="price scenarios (min-max)")
            ax.plot(years, income[:, worst], color="tab:red", linewidth=1, linestyle=":",
                    label="worst scenario")
        ax.plot(years, acc.expected_income[v] / pop[v], color="tab:blue", linewidth=1.6, marker="o", markersize=2.5,
                label="average prices")
        if compare is not None:
            ax.plot(years, compare.accounts.expected_income[v] / pop[v], color="tab:orange", linewidth=1.2,
                    marker="s", markersize=2, label="average-price plan")
        ax.axhline(float(villages["floor"].iloc[v]), color="black", linestyle="--", linewidth=0.9, label="floor")
        title = str(villages["village"].iloc[v])
        if S > 1:
            title += f" (worst {tp.prices.names[worst]})"
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, linewidth=0.5)
        if panel % cols == 0:
            ax.set_ylabel("yuan per capita", fontsize=7)
        if panel + cols >= n_v:
            ax.set_xlabel("year", fontsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    subset = f"; the {n_v} of {n_all} villages closest to their floor" if n_v < n_all else ""
    fig.suptitle(f"Income per capita by year against the floor ({tp.risk.measure} floor, {S} price scenario"
                 f"{'s' if S != 1 else ''}{subset})", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_phasing(outcome: TransitionOutcome, path: Path) -> None:
    """Area established per option: each year (stacked bars) and converted so far (stacked area)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tp, plan = outcome.tp, outcome.plan
    H = tp.horizon
    years = np.arange(1, H + 1)
    option = tp.groups["option"].to_numpy()
    total = float(plan.establish.sum())
    options = [o for o in dict.fromkeys(option) if plan.establish[option == o].sum() > TOLERANCE * max(1.0, total)]
    yearly = np.array([plan.establish[option == o].sum(axis=0) for o in options]).reshape(len(options), H)
    colours = plt.get_cmap("tab10")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    bottom = np.zeros(H)
    for i, o in enumerate(options):
        left.bar(years, yearly[i], bottom=bottom, color=colours(i % 10), label=o)
        bottom += yearly[i]
    if len(options):
        right.stackplot(years, np.cumsum(yearly, axis=1), labels=options,
                        colors=[colours(i % 10) for i in range(len(options))], alpha=0.85)
        right.legend(fontsize=7, loc="upper left")
    else:
        right.text(0.5, 0.5, "nothing converted", ha="center", va="center", transform=right.transAxes)
    left.set_title("area established each year", fontsize=9)
    right.set_title("area converted so far", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel("year", fontsize=8)
        ax.set_ylabel("mu", fontsize=8)
        ax.set_xticks(years)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, linewidth=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------- run.json
def run_record(outcome: TransitionOutcome, prepared: Prepared, options: SolverOptions | None,
               compare: TransitionOutcome | None) -> dict[str, Any]:
    """Provenance (as results.provenance), the transition settings, solver, status, objective, sizes, times."""
    tp, result = outcome.tp, outcome.result
    prices = tp.prices
    pinned = tp.problem.scenario.objective.reference if tp.problem.scenario is not None else {}
    risk = tp.risk
    record: dict[str, Any] = {
        **provenance(prepared),
        "transition": tp.config.model_dump(mode="json"),
        "risk": {"measure": risk.measure, "family": f"{risk.measure}_floor" if risk.measure != "expected"
                 else "average_floor", "alpha": risk.alpha, "max_shortfall": risk.max_shortfall,
                 "price_scenarios": {"source": prices.source, "count": len(prices.names), "names": prices.names,
                                     "probability": [float(p) for p in prices.probability],
                                     "products": prices.products}},
        "solver": {"name": result.solver, "version": result.solver_version,
                   "options": options.as_dict() if options is not None else None},
        "status": result.status.value,
        "message": result.message,
        "objective": {"name": outcome.objective_name, "sense": objective_sense(outcome), "value": result.objective,
                      "bound": result.bound, "gap": result.gap,
                      "weights": tp.problem.params.get("weights")},
        "reference": {"kind": kind_of(outcome.es_scale, pinned), "values": outcome.es_scale,
                      "pinned": [s for s in outcome.es_scale if s in pinned]},
        "model_size": outcome.model_size,
        "times": {k: round(v, 3) for k, v in outcome.times.items()},
        "notes": list(outcome.notes),
        "floor_breaks": {"cells": int(np.prod(outcome.accounts.income.shape)),
                         "below_floor": floor_breaks(outcome)},
        "start_year": "derived: each group's yearly established area filled over its parcels in parcel order",
    }
    if compare is not None:
        record["compare"] = {"measure": compare.tp.risk.measure, "status": compare.result.status.value,
                             "objective": compare.result.objective, "bound": compare.result.bound,
                             "gap": compare.result.gap, "model_size": compare.model_size,
                             "times": {k: round(v, 3) for k, v in compare.times.items()},
                             "below_floor": floor_breaks(compare), "notes": list(compare.notes)}
        first = robustness_table(outcome, compare).iloc[0]
        record["compare"]["cost_of_robustness"] = float(first["cost_of_robustness"])
        record["compare"]["relative_cost_of_robustness"] = float(first["relative_cost_of_robustness"])
    return record


def _prepared(outcome: TransitionOutcome) -> Prepared:
    problem = outcome.tp.problem
    if problem.scenario is None:
        raise OptilandError("writing a transition needs its inputs: pass prepared= (the problem has no scenario)")
    scenario, catalog, inputs = read(problem.scenario)
    return Prepared(scenario, catalog, inputs, problem, 0.0)


# --------------------------------------------------------------------------------------------------- reading back
GROUP_KEY = ["village", "option", "variant", "harvest", "current_income", "current_labour"]
"""What identifies a phasing group in transition_plan.csv (optiland.analysis.transition groups by these)."""


def plan_table(outcome: TransitionOutcome) -> pd.DataFrame:
    """The transition's own variables, long and nonzero only: ``established_mu`` (a group's area established that
    year, keyed by GROUP_KEY), ``herd_bought``, ``posts_staffed``, ``subsidy`` (per village) and ``step_area``
    (a price-stepped variant's income-bearing area sold in price step ``step``)."""
    tp, plan = outcome.tp, outcome.plan
    names = np.asarray(tp.problem.villages["village"], dtype=object)
    frames = []
    q, t = np.nonzero(plan.establish > 0)
    groups = tp.groups.iloc[q]
    frames.append(pd.DataFrame({"record": "established_mu", "village": names[groups["village"].to_numpy()],
                                **{k: groups[k].to_numpy() for k in GROUP_KEY[1:]}, "step": pd.NA,
                                "year": t + 1, "value": plan.establish[q, t]}))
    for record, values in (("herd_bought", plan.herd_bought), ("posts_staffed", plan.posts_staffed),
                           ("subsidy", plan.subsidy)):
        v, t = np.nonzero(values > 0)
        frames.append(pd.DataFrame({"record": record, "village": names[v], "year": t + 1, "value": values[v, t]}))
    steps = [(names[v], g.split(".")[0], g.split(".")[1], k, t + 1, area)
             for (v, g, k, t), area in plan.step_area.items() if area > 0]
    frames.append(pd.DataFrame(steps, columns=["village", "option", "variant", "step", "year", "value"]).assign(
        record="step_area"))
    columns = ["record", *GROUP_KEY, "step", "year", "value"]
    return pd.concat([f.reindex(columns=columns) for f in frames if len(f)], ignore_index=True).reindex(
        columns=columns)


def read_plan_table(tp: TransitionProblem, table: pd.DataFrame, core: Solution, where: str) -> TransitionPlan:
    """A TransitionPlan from transition_plan.csv; a row matching no group or village of the problem is an error."""
    names = list(tp.problem.villages["village"])
    index = {n: i for i, n in enumerate(names)}
    H = tp.horizon
    n_v = len(names)
    establish = np.zeros((len(tp.groups), H))
    village_values = {r: np.zeros((n_v, H)) for r in ("herd_bought", "posts_staffed", "subsidy")}
    keys = tp.groups.assign(village=np.asarray(names, dtype=object)[tp.groups["village"].to_numpy()])
    lookup = {tuple(row): i for i, row in enumerate(keys[GROUP_KEY].itertuples(index=False, name=None))}
    steps: dict[tuple[int, str, int, int], float] = {}
    problems = []
    for line, row in enumerate(table.itertuples(index=False), start=2):
        year = int(row.year) - 1
        if row.village not in index or not 0 <= year < H:
            problems.append(Issue("unknown village or year outside the horizon", file=where, row=f"line {line}",
                                  value=f"{row.village} {row.year}"))
            continue
        if row.record == "established_mu":
            key = (row.village, row.option, row.variant, str(row.harvest).lower() == "true",
                   float(row.current_income), float(row.current_labour))
            if key not in lookup:
                problems.append(Issue("no such phasing group in the problem", file=where, row=f"line {line}",
                                      value=str(key)))
                continue
            establish[lookup[key], year] += float(row.value)
        elif row.record in village_values:
            village_values[row.record][index[row.village], year] += float(row.value)
        elif row.record == "step_area":
            steps[(index[row.village], f"{row.option}.{row.variant}", int(row.step), year)] = float(row.value)
        else:
            problems.append(Issue("unknown record", file=where, row=f"line {line}", column="record",
                                  value=row.record))
    if problems:
        raise InputError(problems)
    return TransitionPlan(core=core, establish=establish, herd_bought=village_values["herd_bought"],
                          posts_staffed=village_values["posts_staffed"], subsidy=village_values["subsidy"],
                          step_area=steps)


def check_transition_folder(out_dir: Path, scenario: Any, run: dict[str, Any], parcels: pd.DataFrame,
                            villages: pd.DataFrame) -> list[Any]:
    """Every yearly row of a transition folder, recomputed from transition_plan.csv, the plan at maturity and the
    recorded [transition] settings (the price scenarios are read or sampled again: same table, same seed).
    `scenario` is a Scenario or a Prepared (optiland check passes the scenario file it read)."""
    from optiland.io.scenario import TransitionConfig
    from optiland.pipeline.run import prepare

    prepared = scenario if isinstance(scenario, Prepared) else prepare(scenario)

    file = out_dir / "transition_plan.csv"
    if not file.is_file():
        raise InputError([Issue("results file missing", file=str(file))])
    tp = build_transition(prepared.problem, TransitionConfig.model_validate(run["transition"]))
    allowed = prepared.problem.allowed
    key = pd.MultiIndex.from_arrays([allowed["parcel"].to_numpy(), allowed["option"].to_numpy(),
                                     allowed["variant"].to_numpy()])
    parcel_index = pd.Series(np.arange(len(parcels)), index=prepared.problem.parcels["parcel_id"].astype(str))
    chosen = pd.MultiIndex.from_arrays([parcel_index.reindex(parcels["parcel_id"].astype(str)).to_numpy(),
                                        parcels["option"].to_numpy(), parcels["variant"].to_numpy()])
    rows = key.get_indexer(chosen)
    x = np.zeros(len(allowed))
    x[rows[rows >= 0]] = 1.0
    order = pd.Series(np.arange(len(villages)), index=villages["village"].astype(str))
    position = order.reindex(prepared.problem.villages["village"].astype(str)).to_numpy()
    core = Solution(x=x, herd=villages["herd"].to_numpy(dtype=float)[position],
                    posts=villages["ranger_posts"].to_numpy(dtype=float)[position])
    table = read_results_csv(file, dtype={"village": str, "option": str, "variant": str})
    plan = read_plan_table(tp, table, core, str(file))
    from optiland.analysis.transition_accounts import check_plan as check_years

    return check_years(tp, plan)


# --------------------------------------------------------------------------------------------------- writing
def write_transition(outcome: TransitionOutcome, out_dir: str | Path, compare: TransitionOutcome | None = None, *,
                     prepared: Prepared | None = None, options: SolverOptions | None = None) -> Path:
    """Write every transition output to OUT_DIR, whole or not at all (results.write_atomically).

    `compare` is the average-price plan (the same transition solved with measure ``expected``): its path joins the
    income plot and ``robustness.csv`` is written. `prepared` gives the parcels' geometry and the input hashes
    (default: read again from the problem's scenario); `options` the solver options recorded in run.json.
    """
    prepared = prepared if prepared is not None else _prepared(outcome)
    start = time.perf_counter()
    core = RunOutcome(prepared=prepared, solution=outcome.plan.core, result=outcome.result,
                      options=options, backend="pyomo")  # type: ignore[arg-type]
    parcels = parcel_table(core)
    years = parcel_years(outcome)
    parcels["start_year"] = years["start_year"].to_numpy()
    parcels["end_year"] = years["end_year"].to_numpy()
    villages = village_table(core)
    tables = {"phasing.csv": phasing_table(outcome), "village_years.csv": village_years_table(outcome),
              "village_risk.csv": village_risk_table(outcome), "years.csv": years_table(outcome),
              "transition_plan.csv": plan_table(outcome), "villages.csv": villages,
              "townships.csv": township_table(core, parcels, villages)}
    if compare is not None:
        tables["robustness.csv"] = robustness_table(outcome, compare)
    record = run_record(outcome, prepared, options, compare)
    geometry = prepared.inputs.parcels.geometry.reset_index(drop=True)

    def write_into(folder: Path) -> None:
        import geopandas as gpd

        frame = gpd.GeoDataFrame(parcels, geometry=geometry)
        frame.to_file(folder / "plan.gpkg", layer="parcels", driver="GPKG", engine="pyogrio")
        for name, table in tables.items():
            write_csv(table, folder / name)
        plot_income_paths(outcome, folder / "income_paths.png", compare)
        plot_phasing(outcome, folder / "phasing.png")
        record["times"]["write"] = round(time.perf_counter() - start, 3)
        (folder / "run.json").write_text(json.dumps(record, indent=2, ensure_ascii=False, default=_json),
                                         encoding="utf-8")

    return write_atomically(Path(out_dir), write_into)


# --------------------------------------------------------------------------------------------------- running
def transition_config(scenario: Any, horizon: int | None = None, measure: str | None = None,
                      sample: int | None = None, scenarios: Path | None = None, max_shortfall: float | None = None,
                      alpha: float | None = None) -> Any:
    """The scenario's ``[transition]`` (TransitionConfig defaults without one) with the given overrides, validated.
    A scenario table given here is taken relative to the working folder (the scenario file's own ``scenarios`` key
    is relative to the scenario's folder); giving one drops the scenario's ``sample``, and the reverse."""
    from optiland.io.scenario import TransitionConfig

    base = scenario.transition if scenario.transition is not None else TransitionConfig()
    data = base.model_dump(mode="python")
    risk = data["risk"]
    if horizon is not None:
        data["horizon"] = horizon
    if measure is not None:
        risk["measure"] = measure
    if sample is not None:
        risk["sample"], risk["scenarios"] = sample, None
    if scenarios is not None:
        risk["scenarios"], risk["sample"] = Path(scenarios).resolve(), None
    if max_shortfall is not None:
        risk["max_shortfall"] = max_shortfall
    if alpha is not None:
        risk["alpha"] = alpha
    return TransitionConfig.model_validate(data)


def run_transition(scenario: str | Path, config: Any = None, compare: bool = False, **solver_overrides: Any
                   ) -> tuple[TransitionOutcome, TransitionOutcome | None, Prepared, SolverOptions]:
    """Read the scenario, solve its transition (`config`: default the scenario's, see :func:`transition_config`)
    and, with `compare`, the same transition with measure ``expected`` on the same price scenarios and service
    normalisation (the average-price plan). Raises InfeasibleError as solve_transition does.

    The time limit holds for the whole run: the comparison gets what the plan left; without time left, or without
    a plan in it, it is skipped with a note (the plan itself is kept)."""
    from optiland.analysis.transition import solve_transition
    from optiland.analysis.transition_problem import build_transition
    from optiland.errors import InfeasibleError
    from optiland.pipeline.run import prepare, solver_options

    deadline = time.perf_counter()
    prepared = prepare(scenario)
    config = config if config is not None else transition_config(prepared.scenario)
    options = solver_options(prepared.scenario, **solver_overrides)
    deadline += options.time_limit
    tp = build_transition(prepared.problem, config)
    outcome = solve_transition(tp, options)
    average = None
    if compare:
        left = deadline - time.perf_counter()
        if left < MIN_COMPARE_SECONDS:
            outcome.notes.append(f"average-price plan not solved: {max(left, 0):.1f} s of the time limit left")
            return outcome, None, prepared, options
        flat = config.model_copy(update={"risk": config.risk.model_copy(update={"measure": "expected"})})
        limited = SolverOptions(**{**options.as_dict(), "time_limit": left})
        try:
            average = solve_transition(build_transition(prepared.problem, flat, prices=tp.prices), limited,
                                       scales=outcome.es_scale)
        except InfeasibleError as error:
            outcome.notes.append(f"average-price plan not found within the {left:.0f} s left: {error}")
    return outcome, average, prepared, options
