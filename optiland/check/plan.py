r"""Check a plan's decisions against every constraint family, without a solver, and list each violation.

The check takes only the plan's decisions, the (option, variant) of every parcel from the parcels table and
the herd and ranger posts of every village from the village table, and recomputes everything else from the
checker's own reading of the scenario, the catalog and the inputs (optiland.check.instance and
optiland.check.rules, written from docs/data-model.md), never from the model layer or the solver's values.
The figures the results report (village incomes by source, labour used, per-parcel coefficients) are then
compared with the recomputed ones (family ``consistency``).

Families (docs/data-model.md, "Site rules and coefficients" and "Constraints"):

- ``one_use``: every parcel has exactly one (option, variant) of the catalog. ``red_line``, ``farmland``,
  ``suitability``: no site rule forbids the pair; if one does, it is named.
- ``income_floor``, ``transfer_budget``, ``transfer_share``, ``carrying_capacity``, ``ranger_posts``,
  ``labour``, ``budget``, ``township_budget``, ``diversity``, ``forest_cover``, ``market``,
  ``objective_bound``.
- ``feature_target``, ``locks``, ``neighbourhood_cap`` (scenario sections ``[features]`` and ``[spatial]``).
- ``price_steps``: the plan may share the land income of variants with price steps among villages (the
  model's :math:`z_{v,g,k}`, which the results do not list), so that income is bounded, not recomputed: a
  village's priced income lies between its own harvested area put into the lowest- and into the
  highest-paying steps, and all villages' priced income together is at most the concave revenue of the total
  harvested area (highest-paying step first). Non-priced land income is recomputed exactly.

An inequality ``lhs <= rhs`` is violated when ``lhs - rhs > tol * max(1, |lhs|, |rhs|)``, plus
``CSV_TOLERANCE`` where a reported (2-decimal) figure enters it. A violation's ``amount`` is how far the
constraint is missed in its own unit (yuan, yuan per capita for the floor, mu, head, posts, days); the
parcel's area in mu for a site rule; for ``consistency`` the largest absolute difference (1 for a missing or
unknown row).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optiland.check.instance import Instance, instance_of
from optiland.check.rules import Kinds
from optiland.errors import InputError, Issue
from optiland.violations import FEATURE_TARGET_TOLERANCE, Violation

FAMILIES = (
    "one_use", "current_use", "conversion", "red_line", "suitability", "farmland", "income_floor", "no_worse_off",
    "transfer_budget", "transfer_share", "carrying_capacity", "ranger_posts", "labour", "budget", "township_budget",
    "diversity", "forest_cover", "market", "area_min", "area_max", "price_steps", "objective_bound", "feature_target",
    "locks", "neighbourhood_cap", "consistency", "provenance",
)
"""Constraint families a violation belongs to, in the order violations are listed."""

INCOME_SOURCES = ("nonland", "land", "cattle", "compensation", "wages")  # as optiland.results writes them
CSV_TOLERANCE = 0.011
"""Yuan or days: villages.csv rounds to 2 decimals, so a figure may be 0.005 off and a sum of two 0.01."""

_PARCEL_COLUMNS = {  # parcels-table column -> (coefficient, rounding of what optiland.results writes)
    "area_mu": ("area", 1.1e-4),
    "income": ("income", 0.011),
    "compensation": ("compensation", 0.011),
    "establishment_cost": ("cost", 0.011),
    "labour_days": ("labour", 0.0011),
}
_NUMERIC = ("income", "compensation", "cost", "labour", "ranger_area", "livestock_area")
_FLAGS = ("forest", "harvest", "converted")
_SHOW = 5  # ids named in a message about a group
MU_PER_HA = 15.0
"""1 ha = 15 mu (1 mu = 10,000 / 15 m2; docs/data-model.md)."""
FLOOR_TOLERANCE = 0.5
"""Yuan per capita: villages.csv's at_or_below_floor is true when income after is at most floor + this."""
TRUE_WORDS = {"true", "1", "yes", "1.0"}


class _Report:
    """Collects violations; `over` flags every position where lhs exceeds rhs beyond the tolerance."""

    def __init__(self, tol: float) -> None:
        self.tol = tol
        self.items: list[Violation] = []

    def add(self, family: str, key: Any, message: str, amount: float) -> None:
        self.items.append(Violation(family, str(key), message, float(amount)))

    def over(self, family: str, keys: Sequence[Any], lhs: Any, rhs: Any, describe: Callable[[int], str],
             slack: np.ndarray | float = 0.0, amount: Callable[[int], float] | None = None) -> None:
        lhs = np.atleast_1d(np.asarray(lhs, dtype=float))
        rhs = np.atleast_1d(np.asarray(rhs, dtype=float))
        excess = lhs - rhs
        limit = self.tol * np.maximum(1.0, np.maximum(np.abs(lhs), np.abs(rhs))) + slack
        for i in np.flatnonzero(excess > limit):
            self.add(family, keys[i], describe(int(i)), amount(int(i)) if amount else excess[i])

    def differs(self, keys: Sequence[Any], reported: np.ndarray, recomputed: np.ndarray, what: str,
                slack: np.ndarray | float) -> None:
        """Consistency of a reported village figure with the recomputed one (a blank is a mismatch too)."""
        diff = np.abs(reported - recomputed)
        limit = self.tol * np.maximum(1.0, np.maximum(np.abs(reported), np.abs(recomputed))) + slack
        for i in np.flatnonzero(~(diff <= limit)):
            self.add("consistency", f"{keys[i]}.{what}",
                     f"village {keys[i]}: reported {what} {_num(reported[i])} but the plan gives "
                     f"{_num(recomputed[i])}", diff[i] if np.isfinite(diff[i]) else 1.0)

    def sorted(self) -> list[Violation]:
        order = {family: i for i, family in enumerate(FAMILIES)}
        return sorted(self.items, key=lambda v: order.get(v.family, len(order)))


def _num(value: float) -> str:
    """Format a figure for a message: thousands separated, at most 2 decimals."""
    if value is None or not math.isfinite(value):
        return str(value)
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _names(ids: np.ndarray, weights: np.ndarray | None = None, limit: int = _SHOW) -> str:
    """Up to `limit` ids, largest weight first, and how many more."""
    ids = np.asarray(ids, dtype=object)
    if weights is not None and len(ids) > limit:
        ids_shown = ids[np.argsort(-np.asarray(weights, dtype=float), kind="stable")[:limit]]
    else:
        ids_shown = ids[:limit]
    text = ", ".join(str(i) for i in ids_shown)
    return text + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Read a numeric column as floats (NaN where blank or absent)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _kind_codes(options: pd.Series, variants: pd.Series, kinds: Kinds) -> np.ndarray:
    """Index into `kinds` of each (option, variant) pair; -1 for a blank or unknown pair."""
    # factorize the columns as they are: arrow-backed strings are encoded without a copy to Python objects
    option_codes, option_names = pd.factorize(options)
    variant_codes, variant_names = pd.factorize(variants)
    # one spare row and column: factorize codes a blank as -1, which lands there and stays -1
    table = np.full((len(option_names) + 1, len(variant_names) + 1), -1, dtype=np.int64)
    option_pos = pd.Index(option_names).get_indexer(kinds.option)
    variant_pos = pd.Index(variant_names).get_indexer(kinds.variant)
    for j, (o, v) in enumerate(zip(option_pos, variant_pos, strict=True)):
        if o >= 0 and v >= 0:
            table[o, v] = j
    return table[option_codes, variant_codes]


# ------------------------------------------------------------------------------------------------------------
# The plan's decisions, mapped onto the problem


@dataclass
class _Parcels:
    """Per problem parcel: the plan row used, the chosen kind (-1: none), its coefficients (0 where none)."""

    row: np.ndarray
    kind: np.ndarray
    coef: dict[str, np.ndarray]
    gains: list[str]


def _parcel_decisions(inst: Instance, parcels: pd.DataFrame, report: _Report) -> _Parcels:
    """Map the parcels table onto the instance's parcels; report one_use, site rules and unknown parcels."""
    for column in ("parcel_id", "option", "variant"):
        if column not in parcels.columns:
            raise InputError([Issue("missing column in the plan's parcels table", column=column)])
    p = inst.parcels
    n = len(p)
    ids = p["parcel_id"].astype(str).to_numpy()
    plan_ids = parcels["parcel_id"].astype(str).to_numpy()
    position = pd.Index(ids).get_indexer(plan_ids)
    for i in np.flatnonzero(position < 0):
        report.add("consistency", plan_ids[i], f"parcel {plan_ids[i]} in the plan is not in the inputs", 1.0)
    counts = np.bincount(position[position >= 0], minlength=n)
    for i in np.flatnonzero(counts == 0):
        report.add("one_use", ids[i], f"parcel {ids[i]} has no assignment in the plan", 1.0)
    for i in np.flatnonzero(counts > 1):
        report.add("one_use", ids[i], f"parcel {ids[i]} is assigned {counts[i]} times (the first row counts)",
                   counts[i] - 1)

    first = (position >= 0) & ~pd.Series(position).duplicated().to_numpy()
    row = np.full(n, -1, dtype=np.int64)
    row[position[first]] = np.flatnonzero(first)
    has_row = row >= 0
    kind = np.full(n, -1, dtype=np.int64)
    kind[has_row] = _kind_codes(parcels["option"], parcels["variant"], inst.kinds)[row[has_row]]
    unknown = np.flatnonzero(has_row & (kind < 0))
    options = parcels["option"].to_numpy(dtype=object)[row[unknown]]
    variants = parcels["variant"].to_numpy(dtype=object)[row[unknown]]
    for i, option, variant in zip(unknown, options, variants, strict=True):
        if pd.isna(option) or pd.isna(variant):
            report.add("one_use", ids[i], f"parcel {ids[i]} has no option or variant", 1.0)
        else:
            report.add("one_use", ids[i],
                       f"parcel {ids[i]}: {option}.{variant} is not an option.variant of the catalog", 1.0)

    valid = np.flatnonzero(kind >= 0)
    gains = [f"gain_{s}" for s in inst.services]
    coef: dict[str, np.ndarray] = {c: np.zeros(n) for c in (*_NUMERIC, *gains)}
    coef.update({c: np.zeros(n, dtype=bool) for c in _FLAGS})
    coef["mu_per_household"] = np.full(n, np.nan)
    computed = inst.coefficients(valid, kind[valid])  # a forbidden pair counts with the figures it would have
    for column in (*_NUMERIC, *gains, *_FLAGS, "mu_per_household"):
        coef[column][valid] = computed[column]
    coef["area"] = p["area_mu"].to_numpy(dtype=float)
    forbidden = valid[~inst.allowed[valid, kind[valid]]]
    if len(forbidden):
        _site_rule_violations(inst, forbidden, kind[forbidden], report)
    return _Parcels(row=row, kind=kind, coef=coef, gains=gains)


def _site_rule_violations(inst: Instance, parcel_idx: np.ndarray, kind_idx: np.ndarray, report: _Report) -> None:
    """Name the rules forbidding assigned pairs; one violation per parcel and family."""
    p = inst.parcels
    ids = p["parcel_id"].astype(str).to_numpy()
    area = p["area_mu"].to_numpy(dtype=float)
    slope, grade = p["slope_deg"].to_numpy(dtype=float), p["grade"].astype(str).to_numpy()
    red, farmland = p["red_line"].to_numpy().astype(bool), p["basic_farmland"].to_numpy().astype(bool)
    pairs = inst.kinds.pairs
    locks = inst.spatial.locks if inst.spatial is not None else None
    locked = set(locks["parcel_id"]) if locks is not None else set()
    for i, j in zip(parcel_idx.tolist(), kind_idx.tolist(), strict=True):
        pair = f"{pairs[j][0]}.{pairs[j][1]}"
        by_family: dict[str, list[str]] = {}
        for rule in inst.rules[j]:
            if rule.mask[i]:
                by_family.setdefault(rule.family, []).append(rule.reason)
        if not by_family:
            if ids[i] not in locked:  # a broken lock is reported by the locks family
                report.add("one_use", ids[i], f"parcel {ids[i]}: {pair} is not in the allowed set", area[i])
            continue
        site = f"slope {slope[i]:g} deg, grade {grade[i]}, red line {red[i]}, basic farmland {farmland[i]}"
        for family, texts in by_family.items():
            report.add(family, ids[i], f"parcel {ids[i]} ({site}): {pair} is forbidden: {'; '.join(texts)}",
                       area[i])


def _village_decisions(problem: Instance, villages: pd.DataFrame,
                       report: _Report) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
    """Map the village table onto the problem's villages.

    Returns herd and posts per problem village (0 where missing), the table aligned to the problem's villages,
    and which villages it lists.
    """
    for column in ("village", "herd", "ranger_posts"):
        if column not in villages.columns:
            raise InputError([Issue("missing column in the plan's village table", column=column)])
    names = problem.villages["village"].astype(str).to_numpy()
    plan_names = villages["village"].astype(str).to_numpy()
    for name in sorted(set(plan_names) - set(names)):
        report.add("consistency", name, f"village {name} in the plan is not in the inputs", 1.0)
    duplicated = pd.Series(plan_names).duplicated().to_numpy()
    for name in sorted(set(plan_names[duplicated])):
        report.add("consistency", name,
                   f"village {name} appears more than once in the plan (the first row counts)", 1.0)
    table = villages.loc[~duplicated].set_axis(plan_names[~duplicated], axis=0)
    aligned = table.reindex(names)
    listed = pd.Index(names).isin(plan_names)
    for name in names[~listed]:
        report.add("consistency", name, f"village {name} is missing from the plan's village table", 1.0)
    values = {}
    for column in ("herd", "ranger_posts"):
        raw = _column(aligned, column)
        bad = (raw < 0) | (raw != np.round(raw))
        bad |= np.isnan(raw) & listed
        for i in np.flatnonzero(bad):
            report.add("consistency", f"{names[i]}.{column}",
                       f"village {names[i]}: {column} must be a whole number >= 0, "
                       f"not {aligned[column].iat[i]}", abs(raw[i]) if np.isfinite(raw[i]) else 1.0)
        values[column] = np.nan_to_num(raw, nan=0.0)
    return values["herd"], values["ranger_posts"], aligned, listed


# ------------------------------------------------------------------------------------------------------------
# Price steps


# ------------------------------------------------------------------------------------------------------------
# The check


@dataclass
class _Context:
    """What the family checks share: the problem, the decisions mapped onto it, and per-village sums."""

    problem: Instance
    kinds: Kinds
    pairs: list[tuple[str, str]]
    parcels: _Parcels
    herd: np.ndarray
    posts: np.ndarray
    reported: pd.DataFrame
    listed: np.ndarray
    report: _Report
    households_reached: np.ndarray | None = None
    below_floor: np.ndarray | None = None

    def __post_init__(self) -> None:
        p, v = self.problem.parcels, self.problem.villages
        self.parcel_ids = p["parcel_id"].astype(str).to_numpy()
        self.village_names = v["village"].astype(str).to_numpy()
        self.township_names = self.problem.townships["township"].astype(str).to_numpy()
        self.vidx = p["village_idx"].to_numpy(dtype=np.int64)
        self.town_of_village = v["township_idx"].to_numpy(dtype=np.int64)
        self.tidx = np.append(self.town_of_village, -1)[self.vidx]  # -1: a parcel in no village
        self.kind = self.parcels.kind
        self.coef = self.parcels.coef
        self.area = self.coef["area"]

    def per_village(self, values: np.ndarray) -> np.ndarray:
        inside = self.vidx >= 0
        return np.bincount(self.vidx[inside], weights=np.asarray(values, dtype=float)[inside],
                           minlength=len(self.village_names)).astype(float)


@dataclass
class Evaluation:
    """A plan's violations and the figures recomputed on the way (for the results files' own checks)."""

    violations: list[Violation]
    ctx: _Context
    income: np.ndarray
    """Per village, yuan/yr (priced land income: the reported share within its bounds)."""
    parts: dict[str, np.ndarray]
    labour_used: np.ndarray
    slack: np.ndarray
    """Per village: the rounding slack of its priced land income (0 without priced area)."""
    values: dict[str, float]
    """Objective values: income, cost, each service's gain, and ecosystem_services given the references."""


def evaluate(inst: Instance, parcels: pd.DataFrame, villages: pd.DataFrame, tol: float = 1e-6, *,
             scale: dict[str, float] | None = None) -> Evaluation:
    """Every constraint violation of a plan and the figures it gives (see check_plan)."""
    report = _Report(tol)
    if scale is None and inst.needs_index():
        scale = inst.index_reference()
    kinds = inst.kinds
    decisions = _parcel_decisions(inst, parcels, report)
    herd, posts, reported, listed = _village_decisions(inst, villages, report)
    ctx = _Context(inst, kinds, kinds.pairs, decisions, herd, posts, reported, listed, report)
    land, slack = _price_steps(ctx)
    income, parts, labour_used = _village_limits(ctx, land, slack)
    total_cost = _budgets(ctx)
    _areas(ctx)
    _area_limits(ctx)
    values = _bounds(ctx, income, slack, total_cost, scale)
    _features_and_locks(ctx)
    _consistency(ctx, parts, income, labour_used, slack, parcels)
    return Evaluation(report.sorted(), ctx, income, parts, labour_used, slack, values)


def check_plan(source: Any, parcels: pd.DataFrame, villages: pd.DataFrame, tol: float = 1e-6, *,
               scale: dict[str, float] | None = None) -> list[Violation]:
    """Every constraint violation of a plan, recomputed from the checker's own instance.

    `parcels` needs parcel_id, option, variant (layer ``parcels`` of plan.gpkg); `villages` needs village,
    herd, ranger_posts (villages.csv). Their other columns, where present, are checked against the recomputed
    figures (``consistency``). `source` is an Instance, a Prepared or a PlanningProblem-like object (see
    instance_of). `scale`: each service's reference in the index (for a bound on ``ecosystem_services``); without
    it the checker's own (the parcels' potential, or the scenario's pinned values).
    """
    return evaluate(instance_of(source), parcels, villages, tol, scale=scale).violations


def _features_and_locks(ctx: _Context) -> None:
    """``feature_target``: the amount of each feature the plan earns (the parcel's amount times the credited share
    of its option) reaches the target within FEATURE_TARGET_TOLERANCE x max(1, target) (optiland.violations: the one
    tolerance Marxan's score counts a target missed by); ``locks``: a parcel locked in to an option has it, a parcel
    locked out of one has not."""
    spatial = ctx.problem.spatial
    if spatial is None:
        return
    assigned = ctx.kind >= 0
    option = np.where(assigned, ctx.kinds.option[np.maximum(ctx.kind, 0)], None)
    for f, name in enumerate(spatial.features):
        if name not in spatial.targets:
            continue
        share = pd.Series(spatial.credited[name], dtype=float).reindex(option).fillna(0.0).to_numpy()
        held = float((spatial.amounts[:, f] * share).sum())
        target = spatial.targets[name]
        if target - held > FEATURE_TARGET_TOLERANCE * max(1.0, abs(target)):  # the tolerance of Marxan's score
            ctx.report.add("feature_target", name, f"feature {name} reaches {_num(held)} of its target "
                           f"{_num(target)} (short by {target - held:,.6g})", target - held)
    variant = np.where(assigned, ctx.kinds.variant[np.maximum(ctx.kind, 0)], None)
    for cap in spatial.caps:
        label = option if cap.per == "option" else np.array([f"{o}.{v}" for o, v in zip(option, variant,
                                                                                             strict=True)])
        capped = np.isin(option, cap.options)
        label = np.where(capped, label, "").astype(str)
        hit = capped[cap.parcel]
        frame = pd.DataFrame({"cell": cap.cell[hit], "label": label[cap.parcel[hit]],
                              "area": np.asarray(ctx.area, dtype=float)[cap.parcel[hit]]})
        totals = frame.groupby(["cell", "label"])["area"].sum()
        over = totals[totals > cap.max_area + ctx.report.tol * max(1.0, cap.max_area)]
        for (cell, name), area in over.items():
            x, y = cap.centres[int(cell)]
            ctx.report.add("neighbourhood_cap", f"{name}@{x:.0f},{y:.0f}",
                           f"{_num(area)} mu of {name} within {cap.name}'s radius of ({x:.0f}, {y:.0f}), cap "
                           f"{_num(cap.max_area)} mu", area - cap.max_area)
    if spatial.locks is None:
        return
    locks = spatial.locks
    parcel = pd.Series(np.arange(len(ctx.parcel_ids)), index=pd.Index(ctx.parcel_ids)).reindex(
        locks["parcel_id"]).to_numpy(dtype=np.int64)
    locked_in = locks["locked_in"].to_numpy(dtype=bool)
    broken = assigned[parcel] & ((option[parcel] == locks["option"].to_numpy()) != locked_in)
    for i in np.flatnonzero(broken):  # only the broken locks are visited
        lock, p = locks.iloc[i], parcel[i]
        kind = "locked in to" if locked_in[i] else "locked out of"
        ctx.report.add("locks", lock.parcel_id, f"parcel {lock.parcel_id} is {kind} {lock.option} "
                       f"(lock table line {lock.line}) but has {option[p]}", float(ctx.area[p]))


def fill_steps(area: np.ndarray, rates: list[float], widths: list[float], best: bool) -> np.ndarray:
    """Revenue of `area` put into steps of the given widths, highest-paying first (best) or lowest first."""
    remaining = np.asarray(area, dtype=float).copy()
    revenue = np.zeros_like(remaining)
    for k in sorted(range(len(rates)), key=lambda k: rates[k], reverse=best):
        take = np.minimum(remaining, widths[k])
        revenue += rates[k] * take
        remaining -= take
    return revenue


def _schedule(inst: Instance, option: str, variant: str) -> tuple[list[float], list[float]]:
    """Yuan per mu and width (mu) of each price step: from 0 mu at the variant's net income, each step from its
    from_area_mu at income_factor times it, the last unbounded (docs/data-model.md, price_steps.csv)."""
    per_mu = float(inst.catalog.variants.loc[(option, variant), "net_income_per_mu"])
    steps = inst.price_steps[(option, variant)]
    starts = [0.0] + [start for start, _ in steps]
    rates = [per_mu] + [factor * per_mu for _, factor in steps]
    widths = [starts[k + 1] - starts[k] for k in range(len(steps))] + [np.inf]
    return rates, widths


def _price_steps(ctx: _Context) -> tuple[np.ndarray, np.ndarray]:
    """Bound the priced land income.

    Returns the land income per village the other checks use (non-priced exactly, plus the reported priced
    share clipped to its bounds) and the rounding slack it carries.
    """
    problem, report, kind = ctx.problem, ctx.report, ctx.kind
    nv = len(ctx.village_names)
    priced_kinds = [j for j, pair in enumerate(ctx.pairs) if pair in problem.price_steps]
    is_priced = np.zeros(len(ctx.pairs) + 1, dtype=bool)  # + 1: kind -1 (none) is not priced
    is_priced[priced_kinds] = True
    priced = is_priced[kind] & ctx.coef["harvest"]
    exact = ctx.per_village(ctx.coef["income"] * ~priced)
    low, high, area_priced = np.zeros(nv), np.zeros(nv), np.zeros(nv)
    total_high = 0.0
    what: list[list[str]] = [[] for _ in range(nv)]
    names = []
    for j in priced_kinds:
        option, variant = ctx.pairs[j]
        area_v = ctx.per_village(ctx.area * (priced & (kind == j)))
        if not area_v.any():
            continue
        rates, widths = _schedule(problem, option, variant)
        low += fill_steps(area_v, rates, widths, best=False)
        high += fill_steps(area_v, rates, widths, best=True)
        total_high += float(fill_steps(np.array([area_v.sum()]), rates, widths, best=True)[0])
        area_priced += area_v
        names.append(f"{option}.{variant}")
        for i in np.flatnonzero(area_v):
            what[i].append(f"{_num(area_v[i])} mu of {option}.{variant}")
    has = area_priced > 0
    reported_land = _column(ctx.reported, "income_land")
    share = reported_land - exact

    def message(i: int, bound: str, value: float) -> str:
        return (f"village {ctx.village_names[i]}: reported land income {_num(reported_land[i])} yuan is "
                f"{_num(exact[i])} of non-priced land plus {_num(share[i])} from {', '.join(what[i])}, which "
                f"earns at {bound} {_num(value)}")

    report.over("price_steps", ctx.village_names, np.where(has, share, 0.0), np.where(has, high, 0.0),
                lambda i: message(i, "most", high[i]), slack=CSV_TOLERANCE)
    report.over("price_steps", ctx.village_names, np.where(has, low, 0.0), np.where(has, share, 0.0),
                lambda i: message(i, "least", low[i]), slack=CSV_TOLERANCE)
    if has.any():
        together = float(np.nansum(np.where(has, share, 0.0)))
        key = ", ".join(names)
        report.over("price_steps", [key], together, total_high,
                    lambda _: (f"{key}: villages {_names(ctx.village_names[has])} report {_num(together)} "
                               f"yuan of priced land income together, above the {_num(total_high)} yuan "
                               "their total harvested area earns with the highest-price steps filled first"),
                    slack=CSV_TOLERANCE * int(has.sum()))
    # without a reported share, credit the most the area can earn (no violation is claimed on its account)
    clipped = np.where(np.isnan(share), high, np.clip(share, low, high))
    return exact + np.where(has, clipped, 0.0), np.where(has, CSV_TOLERANCE, 0.0)


def _village_limits(ctx: _Context, land: np.ndarray,
                    slack: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Income floor, transfers, carrying capacity, ranger posts and labour, per village."""
    problem, report, names = ctx.problem, ctx.report, ctx.village_names
    v, params = problem.villages, problem.params
    livestock, rangers = params["livestock"], params["rangers"]
    herd, posts = ctx.herd, ctx.posts
    population = v["population"].to_numpy(dtype=float)
    parts = {
        "nonland": (v["nonland_income_per_capita"] * v["population"]).to_numpy(dtype=float),
        "land": land,
        "cattle": float(livestock["net_income_per_head"]) * herd,
        "compensation": ctx.per_village(ctx.coef["compensation"]),
        "wages": float(rangers["wage_per_post"]) * posts,
    }
    income = sum(parts[s] for s in INCOME_SOURCES)
    floor = v["floor"].to_numpy(dtype=float)
    per_capita = income / population
    report.over("income_floor", names, floor * population, income,
                lambda i: (f"village {names[i]}: income {_num(per_capita[i])} yuan per capita is below its "
                           f"floor of {_num(floor[i])} (short by {_num(floor[i] - per_capita[i])} per "
                           f"capita, {_num(floor[i] * population[i] - income[i])} yuan in all)"),
                slack=slack, amount=lambda i: floor[i] - per_capita[i])

    growth = v["growth"].to_numpy(dtype=float) if "growth" in v.columns else np.full(len(v), np.nan)
    on = np.isfinite(growth)
    if on.any():  # no village worse off: (1 + growth) x today's income (non-land plus the current uses' land income)
        today = (parts["nonland"] + v["current_land_income"].to_numpy(dtype=float)) / population
        target = (1.0 + np.nan_to_num(growth)) * today
        report.over("no_worse_off", names, np.where(on, target * population, 0.0), np.where(on, income, 0.0),
                    lambda i: (f"village {names[i]}: income {_num(per_capita[i])} yuan per capita is below "
                               + ("its income today" if growth[i] == 0 else f"{growth[i]:+.0%} over its income today")
                               + f", {_num(target[i])} (short by {_num(target[i] - per_capita[i])} per capita)"),
                    slack=slack, amount=lambda i: target[i] - per_capita[i])

    transfers = parts["compensation"] + parts["wages"]
    budget = params.get("transfer_budget")
    if budget is not None:
        total = float(transfers.sum())
        paid = transfers > 0
        report.over("transfer_budget", ["total"], total, float(budget),
                    lambda _: (f"compensation {_num(parts['compensation'].sum())} + ranger wages "
                               f"{_num(parts['wages'].sum())} = {_num(total)} yuan exceed the transfer "
                               f"budget of {_num(float(budget))} (largest: villages "
                               f"{_names(names[paid], transfers[paid])})"))
    shares = (v["transfer_share"].to_numpy(dtype=float) if "transfer_share" in v.columns
              else np.full(len(names), np.nan if params.get("max_transfer_share") is None
                           else float(params["max_transfer_share"])))
    capped = np.isfinite(shares)
    if capped.any():
        share = np.where(capped, shares, 0.0)
        report.over("transfer_share", names, np.where(capped, transfers, 0.0), share * income,
                    lambda i: (f"village {names[i]}: transfers of {_num(transfers[i])} yuan are "
                               f"{transfers[i] / max(income[i], 1e-9):.1%} of its income {_num(income[i])}, "
                               f"above the {share[i]:.0%} allowed"), slack=slack * share)

    kappa = float(livestock["head_per_mu"])
    forage = ctx.per_village(ctx.coef["livestock_area"])
    report.over("carrying_capacity", names, herd, kappa * forage,
                lambda i: (f"village {names[i]}: a herd of {_num(herd[i])} head exceeds the "
                           f"{_num(kappa * forage[i])} head its {_num(forage[i])} mu of forage carry "
                           f"({kappa:g} head/mu)"))
    mu_per_post = float(rangers["mu_per_post"])
    per_household = float(rangers.get("max_posts_per_household", 1))
    closed = ctx.per_village(ctx.coef["ranger_area"])
    report.over("ranger_posts", names, mu_per_post * posts, closed,
                lambda i: (f"village {names[i]}: {_num(posts[i])} ranger posts need "
                           f"{_num(mu_per_post * posts[i])} mu of closed hills ({mu_per_post:g} mu per "
                           f"post); the plan closes {_num(closed[i])} mu"))
    households = v["households"].to_numpy(dtype=float)
    report.over("ranger_posts", names, posts, per_household * households,
                lambda i: (f"village {names[i]}: {_num(posts[i])} ranger posts exceed {per_household:g} per "
                           f"household x {_num(households[i])} households"))
    labour_used = ctx.per_village(ctx.coef["labour"]) + float(livestock["labour_days_per_head"]) * herd
    available = v["labour_days"].to_numpy(dtype=float)
    report.over("labour", names, labour_used, available,
                lambda i: (f"village {names[i]}: the plan needs {_num(labour_used[i])} days of labour a "
                           f"year; {_num(available[i])} are available"))
    return income, parts, labour_used


def _budgets(ctx: _Context) -> float:
    """Check the establishment budgets (scenario, townships); return the total establishment cost."""
    problem, report = ctx.problem, ctx.report
    livestock = problem.params["livestock"]
    herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
    cost = ctx.coef["cost"]
    herd_spend = herd_cost * ctx.herd
    cost_village = ctx.per_village(cost) + herd_spend
    total = float(cost.sum() + herd_spend.sum())  # parcels in no village (a Marxan import) cost too

    def largest(parcel_mask: np.ndarray, village_mask: np.ndarray) -> str:
        items = [(cost[i], f"parcel {ctx.parcel_ids[i]} {_num(cost[i])}") for i in _top(cost, parcel_mask, 3)]
        items += [(herd_spend[i], f"herd of village {ctx.village_names[i]} {_num(herd_spend[i])}")
                  for i in _top(herd_spend, village_mask, 3)]
        return "; ".join(text for _, text in sorted(items, key=lambda item: -item[0])[:3])

    limit = problem.params.get("budget")
    if limit is not None:
        everywhere = np.ones(len(cost), dtype=bool), np.ones(len(herd_spend), dtype=bool)
        report.over("budget", ["total"], total, float(limit),
                    lambda _: (f"establishment cost {_num(total)} yuan exceeds the budget of "
                               f"{_num(float(limit))} (largest: {largest(*everywhere)})"))
    per_township = problem.params.get("township_budgets") or {}
    names = [t for t in per_township if t in set(ctx.township_names)]
    if names:
        cost_township = np.bincount(ctx.town_of_village, weights=cost_village,
                                    minlength=len(ctx.township_names))
        index = [int(np.flatnonzero(ctx.township_names == t)[0]) for t in names]
        spent = cost_township[index]
        limits = np.array([float(per_township[t]) for t in names])
        report.over("township_budget", names, spent, limits,
                    lambda i: (f"township {names[i]}: establishment cost {_num(spent[i])} yuan exceeds its "
                               f"budget of {_num(limits[i])} (largest: "
                               f"{largest(ctx.tidx == index[i], ctx.town_of_village == index[i])})"))
    return total


def _top(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest positive values within mask."""
    candidates = np.flatnonzero(mask & (values > 0))
    if len(candidates) > k:
        candidates = candidates[np.argpartition(-values[candidates], k)[:k]]
    return candidates


def _area_limits(ctx: _Context) -> None:
    """``area_min`` / ``area_max``: the plan's area of an option or variant (or its herd), over the plan or in a
    township, within the scenario's ``areas`` / ``township_areas`` (docs/data-model.md)."""
    limits = ctx.problem.params.get("area_limits") or {}
    if not limits:
        return
    assigned = ctx.kind >= 0
    option = np.where(assigned, ctx.kinds.option[np.maximum(ctx.kind, 0)], None)
    variant = np.where(assigned, ctx.kinds.variant[np.maximum(ctx.kind, 0)], None)
    towns = list(ctx.township_names)
    for key, (low, high) in limits.items():
        scope, name = key.split(":", 1)
        if scope != "*" and scope not in towns:
            ctx.report.add("area_min" if low is not None else "area_max", key, f"unknown township {scope}", 1.0)
            continue
        if name == "herd":
            villages = np.ones(len(ctx.herd), dtype=bool) if scope == "*" else (
                ctx.town_of_village == towns.index(scope))
            held, unit = float(ctx.herd[villages].sum()), "head"
        else:
            in_scope = np.ones(len(ctx.kind), dtype=bool) if scope == "*" else ctx.tidx == towns.index(scope)
            wanted, _, own = name.partition(".")
            match = assigned & (option == wanted) & ((variant == own) if own else True) & in_scope
            held, unit = float(ctx.area[match].sum()), "mu"
        where = "the plan" if scope == "*" else f"township {scope}"
        if low is not None:
            ctx.report.over("area_min", [key], float(low), held, lambda _, w=where, h=held, lo=low, u=unit, n=name: (
                f"{w} has {_num(h)} {u} of {n}, below its minimum of {_num(lo)}"))
        if high is not None:
            ctx.report.over("area_max", [key], held, float(high), lambda _, w=where, h=held, hi=high, u=unit,
                            n=name: f"{w} has {_num(h)} {u} of {n}, above its maximum of {_num(hi)}")


def _areas(ctx: _Context) -> None:
    """Diversity and forest cover per township, market limits per variant."""
    problem, report, kind, area = ctx.problem, ctx.report, ctx.kind, ctx.area
    towns, pairs = ctx.township_names, ctx.pairs
    nt, n_kinds = len(towns), len(pairs)
    assigned = kind >= 0
    params = problem.params
    cap = params.get("diversity_cap")
    if cap is not None:
        code = np.where(assigned, ctx.tidx * n_kinds + kind, nt * n_kinds)
        by_kind = np.bincount(code, weights=area, minlength=nt * n_kinds + 1)[:-1].reshape(nt, n_kinds)
        option_codes, option_names = pd.factorize(pd.Series(ctx.kinds.option))
        by_option = np.zeros((len(option_names), nt))
        np.add.at(by_option, option_codes, by_kind.T)
        group = by_option[option_codes].T  # per (township, kind): the area of the kind's option
        capped = ctx.kinds.flag("diversity_capped")
        t_idx, k_idx = np.nonzero((by_kind > 0) & capped[None, :])
        keys = [f"{towns[t]}:{pairs[k][0]}.{pairs[k][1]}" for t, k in zip(t_idx, k_idx, strict=True)]

        def diversity_message(i: int) -> str:
            t, k = t_idx[i], k_idx[i]
            members = np.flatnonzero((ctx.tidx == t) & (kind == k))
            return (f"township {towns[t]}: {pairs[k][0]}.{pairs[k][1]} covers {_num(by_kind[t, k])} mu, "
                    f"{by_kind[t, k] / group[t, k]:.1%} of the {_num(group[t, k])} mu of {pairs[k][0]} (cap "
                    f"{float(cap):.0%}; parcels {_names(ctx.parcel_ids[members], area[members])})")

        report.over("diversity", keys, by_kind[t_idx, k_idx], float(cap) * group[t_idx, k_idx],
                    diversity_message)

    forest_min = params.get("forest_cover_min")
    if forest_min is not None:
        forest = np.bincount(ctx.tidx, weights=area * ctx.coef["forest"], minlength=nt)
        total = problem.townships["area_mu"].to_numpy(dtype=float)
        report.over("forest_cover", towns, float(forest_min) * total, forest,
                    lambda t: (f"township {towns[t]}: forest-type uses cover {_num(forest[t])} mu, "
                               f"{forest[t] / total[t]:.1%} of its {_num(total[t])} mu, below the "
                               f"{float(forest_min):.0%} required"))

    kind_of = {pair: j for j, pair in enumerate(pairs)}
    limits = [(pair, float(limit)) for pair, limit in problem.market.items() if pair in kind_of]
    if limits:
        by_kind_total = np.bincount(np.where(assigned, kind, n_kinds), weights=area, minlength=n_kinds + 1)
        keys = [f"{o}.{v}" for (o, v), _ in limits]
        planned = np.array([by_kind_total[kind_of[pair]] for pair, _ in limits])
        cap_mu = np.array([limit for _, limit in limits])

        def market_message(i: int) -> str:
            members = np.flatnonzero(kind == kind_of[limits[i][0]])
            return (f"{keys[i]}: {_num(planned[i])} mu planned, above the market limit of "
                    f"{_num(cap_mu[i])} mu (parcels {_names(ctx.parcel_ids[members], area[members])})")

        report.over("market", keys, planned, cap_mu, market_message)


def _bounds(ctx: _Context, income: np.ndarray, slack: np.ndarray, total_cost: float,
            es_scale: dict[str, float] | None) -> dict[str, float]:
    """Bounds on the objectives (scenario ``constraints.bounds``); returns every objective's value."""
    params = ctx.problem.params
    values: dict[str, float] = {"income": float(income.sum()), "cost": total_cost}
    gains = {g[len("gain_"):]: float(ctx.coef[g].sum()) for g in ctx.parcels.gains}
    values.update(gains)
    if es_scale:
        values["ecosystem_services"] = sum(float(w) / float(es_scale[s]) * gains.get(s, 0.0)
                                           for s, w in (params.get("weights") or {}).items()
                                           if w and es_scale.get(s))
    for name, (lower, upper) in (params.get("bounds") or {}).items():
        if name not in values:
            continue  # ecosystem_services without the run's service scales
        extra = float(slack.sum()) if name == "income" else 0.0
        value = values[name]
        if lower is not None:
            ctx.report.over("objective_bound", [f"{name}.lower"], float(lower), value,
                            lambda _, n=name, b=lower: f"{n} is {_num(values[n])}, below its lower bound "
                                                       f"{_num(b)}",
                            slack=extra)
        if upper is not None:
            ctx.report.over("objective_bound", [f"{name}.upper"], value, float(upper),
                            lambda _, n=name, b=upper: f"{n} is {_num(values[n])}, above its upper bound "
                                                       f"{_num(b)}",
                            slack=extra)
    return values


def _consistency(ctx: _Context, parts: dict[str, np.ndarray], income: np.ndarray, labour_used: np.ndarray,
                 slack: np.ndarray, parcels: pd.DataFrame) -> None:
    """Compare the figures the results report with the recomputed ones."""
    v, report, names, listed = ctx.problem.villages, ctx.report, ctx.village_names, ctx.listed
    population = v["population"].to_numpy(dtype=float)
    has_priced = slack > 0  # the rounding slack of _price_steps is set exactly where there is priced area
    recomputed = {f"income_{s}": parts[s] for s in INCOME_SOURCES}
    recomputed["income_total"] = income
    recomputed["income_per_capita_after"] = income / population
    recomputed["income_per_capita_before"] = (
        parts["nonland"] + v["current_land_income"].to_numpy(dtype=float)) / population
    recomputed["labour_used"] = labour_used
    for column, value in recomputed.items():
        if column not in ctx.reported.columns:
            continue
        # the land income of a village with priced area is bounded (price_steps), not recomputed
        rows = listed & ~has_priced if column == "income_land" else listed
        tolerance = CSV_TOLERANCE + (slack / population if column == "income_per_capita_after" else 0.0)
        report.differs(names[rows], _column(ctx.reported, column)[rows], value[rows], column,
                       np.broadcast_to(tolerance, value.shape)[rows])
    if "income_land" in ctx.reported.columns:
        for i in np.flatnonzero(listed & has_priced & np.isnan(_column(ctx.reported, "income_land"))):
            report.add("consistency", f"{names[i]}.income_land",
                       f"village {names[i]}: income_land is blank, so its priced land income cannot be "
                       "checked", 1.0)
    households = v["households"].to_numpy(dtype=float)
    per_hh = ctx.coef["mu_per_household"]
    reach = np.where(ctx.coef["converted"] & (per_hh > 0), ctx.area / np.where(per_hh > 0, per_hh, 1.0), 0.0)
    reached = np.minimum(np.floor(ctx.per_village(np.nan_to_num(reach)) + ctx.posts + 1e-9), households)
    if "households_reached" in ctx.reported.columns:
        report.differs(names[listed], _column(ctx.reported, "households_reached")[listed], reached[listed],
                       "households_reached", 1e-9)
    ctx.households_reached = reached
    floor = v["floor"].to_numpy(dtype=float)
    below = income / population <= floor + FLOOR_TOLERANCE
    ctx.below_floor = below
    if "at_or_below_floor" in ctx.reported.columns:
        shown = ctx.reported["at_or_below_floor"].astype(str).str.strip().str.lower().isin(TRUE_WORDS).to_numpy()
        # a village within the rounding slack of the flag's edge may show either
        edge = np.abs(income / population - floor - FLOOR_TOLERANCE) <= (slack + CSV_TOLERANCE) / population
        for i in np.flatnonzero(listed & (shown != below) & ~edge):
            report.add("consistency", f"{names[i]}.at_or_below_floor",
                       f"village {names[i]}: at_or_below_floor is {shown[i]} but its income of "
                       f"{_num(income[i] / population[i])} per capita against its floor of {_num(floor[i])} makes "
                       f"it {bool(below[i])}", 1.0)
    for column, source in (("population", "population"), ("households", "households"), ("floor", "floor"),
                           ("labour_available", "labour_days")):
        if column in ctx.reported.columns:
            report.differs(names[listed], _column(ctx.reported, column)[listed],
                           v[source].to_numpy(dtype=float)[listed], column, 1e-9)
    if "township" in ctx.reported.columns:
        shown = ctx.reported["township"].astype(str).to_numpy()
        for i in np.flatnonzero(listed & (shown != v["township"].astype(str).to_numpy())):
            report.add("consistency", f"{names[i]}.township",
                       f"village {names[i]}: reported township {shown[i]} but the inputs say "
                       f"{v['township'].iat[i]}", 1.0)
    _parcel_consistency(ctx, parcels)


def _parcel_consistency(ctx: _Context, parcels: pd.DataFrame) -> None:
    """Check the parcels table's own figures against the recomputed ones, for parcels with a known pair.

    One violation per parcel, naming every column that differs.
    """
    p, coef = ctx.problem.parcels, ctx.coef
    valid = ctx.kind >= 0
    rows = np.where(valid, ctx.parcels.row, 0)
    wrong: dict[int, list[str]] = {}
    amount: dict[int, float] = {}

    def flag(i: int, text: str, diff: float) -> None:
        wrong.setdefault(i, []).append(text)
        amount[i] = max(amount.get(i, 0.0), diff)

    uses = ctx.problem.catalog.current_uses
    names = uses["name"].reindex(p["land_use"].astype(str)) if "name" in uses.columns else None
    texts = {"village": p["village"], "township": p["township"], "current_use": p["land_use"],
             "grade": p["grade"]}
    if names is not None:
        texts["current_use_name"] = pd.Series(names.to_numpy(), index=p.index)
    for column, source in texts.items():
        if column in parcels.columns:
            shown = parcels[column].astype(str).to_numpy()[rows]
            expected_names = source.astype(str).to_numpy()
            for i in np.flatnonzero(valid & (shown != expected_names)):
                flag(int(i), f"{column} {shown[i]} (inputs: {expected_names[i]})", 1.0)
    for column in ("red_line", "basic_farmland"):
        if column in parcels.columns:
            shown_flags = parcels[column].astype(str).str.strip().str.lower().isin(TRUE_WORDS).to_numpy()[rows]
            expected_flags = p[column].to_numpy().astype(bool)
            for i in np.flatnonzero(valid & (shown_flags != expected_flags)):
                flag(int(i), f"{column} {parcels[column].to_numpy()[rows[i]]} (inputs: {expected_flags[i]})", 1.0)
    if "area_ha" in parcels.columns:
        shown = _column(parcels, "area_ha")[rows]
        expected = coef["area"] / MU_PER_HA
        for i in np.flatnonzero(valid & ~(np.abs(shown - expected) <= 1.1e-5 + ctx.report.tol * expected)):
            flag(int(i), f"area_ha {_num(shown[i])} (recomputed {expected[i]:.5f}: area_mu / {MU_PER_HA:g})",
                 abs(shown[i] - expected[i]) if np.isfinite(shown[i]) else 1.0)
    checks = [(column, source, rounding) for column, (source, rounding) in _PARCEL_COLUMNS.items()]
    checks += [(gain, gain, 1.1e-6) for gain in ctx.parcels.gains]
    for column, source, rounding in checks:
        if column not in parcels.columns:
            continue
        shown = _column(parcels, column)[rows]
        expected = coef[source]
        diff = np.abs(shown - expected)
        bad = valid & ~(diff <= rounding + ctx.report.tol * np.maximum(1.0, np.abs(expected)))
        for i in np.flatnonzero(bad):
            flag(int(i), f"{column} {_num(shown[i])} (recomputed {_num(expected[i])})",
                 diff[i] if np.isfinite(diff[i]) else 1.0)
    for i in sorted(wrong):
        ctx.report.add("consistency", ctx.parcel_ids[i],
                       f"parcel {ctx.parcel_ids[i]}: reported {', '.join(wrong[i])}", amount[i])


# ------------------------------------------------------------------------------------------------------------
# Results in memory and on disk
