"""Brute-force optimum of a tiny planning problem, written from the constraint definitions, not from the MIP.

Every plan is enumerated: one allowed row per parcel (derived here, by `derive_rows`, from the catalog's own files
and the parcel attributes: never ``problem.allowed``) and, per village,
every herd in ``0..floor(head_per_mu x forage area)`` and every number of ranger posts in
``0..min(households x max_posts_per_household, floor(closure area / mu_per_post))``. Each plan is checked in
plain numpy against the families of ``optiland.model.formulation`` (vectorised over the assignments), and the best
feasible value of each objective is kept. The allowed set and its coefficients (income, cost, labour, area,
gains...) are this module's own reading of docs/data-model.md (site rules, red line, farmland, adaptation, the
conversion table, deflation, overrides, the soil weight), so a fault in optiland.model.problem or optiland.io.catalog
shows as a disagreement; the villages' floors, the scenario's limits and the price steps are the problem's. No Pyomo
model, matrix or solver is involved.

Price steps (piecewise revenue of a variant): the model splits a village's harvested area of a priced variant
over steps whose widths are shared by all villages. Every constraint a village's priced income enters (income
floor, transfer share, a lower bound on income) wants it high and the income objective wants the total high, so:

- with one village, the best split fills the highest-paying steps first (any number of steps and variants);
- with several villages, one priced variant with one step is handled exactly: village v needs
  ``e_v = max(L_v - f i A_v, 0)`` yuan more than its whole area at the lower price earns, each mu of the first
  (full-price) step adds ``(1 - f) i``, and the first step holds ``T`` mu in all, so the villages' needs can be met
  together iff ``e_v <= (1 - f) i min(A_v, T)`` for each v and ``sum_v e_v <= (1 - f) i T``; the total then
  reaches the concave revenue of the total area. Anything else raises NotImplementedError.
"""

from __future__ import annotations

import csv
import itertools
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from optiland.io.catalog import load_catalog
from optiland.model.problem import PlanningProblem, build_problem
from optiland.pipeline.run import Prepared, RunOutcome, solve_prepared, solver_options
from optiland.testing import SMALL_CATALOG, make_inputs, make_scenario

TOL = 1e-6
"""Relative feasibility tolerance: ``lhs <= rhs`` holds when ``lhs - rhs <= TOL * max(1, |rhs|)``."""
DROPPABLE = ("income_floor", "no_worse_off", "transfer_budget", "transfer_share", "carrying_capacity", "ranger_posts",
             "labour", "budget", "township_budget", "diversity", "forest_cover", "market", "area_limits",
             "price_steps", "objective_bound")
MAX_PLANS = 30_000_000
"""Refuse enumerations larger than this (assignments x village integers): a test instance is too big."""


@dataclass
class Best:
    """The best feasible plan for one objective and sense."""

    value: float
    rows: np.ndarray  # the chosen allowed row of each parcel
    herd: np.ndarray
    posts: np.ndarray
    table: pd.DataFrame | None = field(default=None, repr=False)
    """The rows `rows` index (derive_rows's); None: ``problem.allowed``."""


@dataclass
class Scan:
    """What the enumeration found: counts, and the best plan per (objective, sense)."""

    n_plans: int
    n_feasible: int
    best: dict[tuple[str, str], Best]
    nondominated: np.ndarray | None = None  # with `collect`: the nondominated objective vectors (one per value)

    @property
    def feasible(self) -> bool:
        """Whether any plan satisfies every constraint."""
        return self.n_feasible > 0

    def optimum(self, name: str, sense: str = "max") -> float | None:
        """The best value of `name` over the feasible plans (None: no feasible plan)."""
        found = self.best.get((name, sense))
        return None if found is None else found.value


def _le(lhs: np.ndarray, rhs: np.ndarray | float, scale: np.ndarray | float | None = None) -> np.ndarray:
    """lhs <= rhs within the relative tolerance (scale: the magnitude the tolerance is relative to)."""
    magnitude = np.abs(rhs) if scale is None else np.abs(scale)
    return lhs - rhs <= TOL * np.maximum(1.0, magnitude)


def _per_village(values: Sequence[int] | int | None, default: np.ndarray) -> np.ndarray:
    if values is None:
        return default
    if np.isscalar(values):
        return np.full(len(default), int(values))  # type: ignore[arg-type]
    return np.asarray(values, dtype=int)


def _fill_high(area: np.ndarray, per_mu: float, steps: list[tuple[float, float]]) -> np.ndarray:
    """Revenue of `area` mu with the highest-paying steps filled first (step 0 from 0 mu at factor 1)."""
    starts = [0.0] + [start for start, _ in steps]
    factors = [1.0] + [factor for _, factor in steps]
    widths = [starts[k + 1] - starts[k] for k in range(len(steps))] + [np.inf]
    remaining = area.astype(float).copy()
    revenue = np.zeros_like(remaining)
    for k in sorted(range(len(factors)), key=lambda k: factors[k], reverse=True):
        take = np.minimum(remaining, widths[k])
        revenue += factors[k] * per_mu * take
        remaining -= take
    return revenue


def scan(problem: PlanningProblem, *, drop: Iterable[str] = (), herd_max: Sequence[int] | int | None = None,
         posts_max: Sequence[int] | int | None = None, es_scale: dict[str, float] | None = None,
         chunk_cells: int = 1_000_000, collect: Sequence[tuple[str, str]] = ()) -> Scan:
    """Enumerate every plan of `problem`; keep the best feasible value of income, cost, each service gain and
    (with `es_scale`, the G*_s of the index) ecosystem_services, both maximised and minimised.

    `drop` removes constraint families (names in DROPPABLE; ``price_steps`` then pays the full price for all
    area). Without ``carrying_capacity`` or ``ranger_posts`` the herd or post range is unbounded, so
    `herd_max` / `posts_max` (per village or one for all) must give the range to enumerate. With `collect`, a list
    of (objective, sense), the nondominated set of those objectives over every feasible plan is kept too.
    """
    drop = set(drop)
    unknown = drop - set(DROPPABLE)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}")
    if "carrying_capacity" in drop and herd_max is None:
        raise ValueError("without carrying_capacity give herd_max")
    if "ranger_posts" in drop and posts_max is None:
        raise ValueError("without ranger_posts give posts_max")
    p, a, params = problem, derive_rows(problem), problem.params
    villages, parcels = p.villages, p.parcels
    nv, nt, n = len(villages), len(p.townships), p.n_parcels
    services = list(p.services)

    # -- per allowed row ------------------------------------------------------------------------------------
    row_parcel = a["parcel"].to_numpy()
    area = a["area"].to_numpy(dtype=float)
    income = a["income"].to_numpy(dtype=float)
    comp = a["compensation"].to_numpy(dtype=float)
    cost = a["cost"].to_numpy(dtype=float)
    labour = a["labour"].to_numpy(dtype=float)
    forest = a["forest"].to_numpy(dtype=bool)
    closure = a["ranger_area"].to_numpy(dtype=float)
    forage = a["livestock_area"].to_numpy(dtype=float)
    harvest = a["harvest"].to_numpy(dtype=bool)
    capped = a["diversity_capped"].to_numpy(dtype=bool)
    gains = np.stack([a[f"gain_{s}"].to_numpy(dtype=float) for s in services], axis=1)
    pair = np.array([f"{o}.{v}" for o, v in zip(a["option"], a["variant"], strict=True)], dtype=object)
    option = a["option"].to_numpy(dtype=object)
    priced_pairs = [f"{o}.{v}" for o, v in p.price_steps if (pair == f"{o}.{v}").any()]
    priced = np.isin(pair, priced_pairs) & harvest
    income_plain = np.where(priced, 0.0, income)  # priced rows earn through the steps below

    village_of_parcel = parcels["village_idx"].to_numpy()
    town_of_village = villages["township_idx"].to_numpy()
    town_of_parcel = town_of_village[village_of_parcel]
    population = villages["population"].to_numpy(dtype=float)
    households = villages["households"].to_numpy(dtype=float)
    nonland = villages["nonland_income_per_capita"].to_numpy(dtype=float) * population
    need = villages["floor"].to_numpy(dtype=float) * population
    # no village worse off: (1 + growth) x today's income (non-land plus every parcel's current use), per village
    today_land = np.zeros(nv)
    current_income = p.catalog.current_uses["income_per_mu"].reindex(parcels["land_use"]).to_numpy(dtype=float)
    np.add.at(today_land, village_of_parcel, current_income * parcels["area_mu"].to_numpy(dtype=float))
    keep_today = (1.0 + villages["growth"].to_numpy(dtype=float)) * (nonland + today_land)  # NaN: no such rule
    labour_available = villages["labour_days"].to_numpy(dtype=float)
    town_area = p.townships["area_mu"].to_numpy(dtype=float)

    livestock, rangers = params["livestock"], params["rangers"]
    kappa = float(livestock["head_per_mu"])
    per_head = float(livestock["net_income_per_head"])
    herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
    days_per_head = float(livestock["labour_days_per_head"])
    mu_per_post = float(rangers["mu_per_post"])
    wage = float(rangers["wage_per_post"])
    per_household = float(rangers.get("max_posts_per_household", 1))

    # -- the assignments: one allowed row per parcel ---------------------------------------------------------
    groups = [np.flatnonzero(row_parcel == i) for i in range(n)]
    n_assign = int(np.prod([len(g) for g in groups]))

    # -- the village integers: herd and posts ----------------------------------------------------------------
    most_forage = np.zeros(nv)
    most_closure = np.zeros(nv)
    for i, g in enumerate(groups):
        most_forage[village_of_parcel[i]] += forage[g].max()
        most_closure[village_of_parcel[i]] += closure[g].max()
    h_top = _per_village(herd_max, np.floor(kappa * most_forage + 1e-9).astype(int))
    r_top = _per_village(posts_max, np.minimum(np.floor(per_household * households + 1e-9),
                                               np.floor(most_closure / mu_per_post + 1e-9)).astype(int))
    ranges = []
    for v in range(nv):
        ranges += [range(int(h_top[v]) + 1), range(int(r_top[v]) + 1)]
    grid = np.array(list(itertools.product(*ranges)), dtype=float).reshape(-1, 2 * nv)
    herd_grid, posts_grid = grid[:, 0::2], grid[:, 1::2]
    nh = len(grid)
    if n_assign * nh > MAX_PLANS:
        raise ValueError(f"{n_assign} assignments x {nh} herd/post combinations is too many to enumerate")

    # -- price steps -----------------------------------------------------------------------------------------
    schedules = {}
    for (o, v), steps in p.price_steps.items():
        if f"{o}.{v}" in priced_pairs:
            schedules[f"{o}.{v}"] = (float(p.catalog.variants.loc[(o, v), "net_income_per_mu"]), steps)
    if "price_steps" not in drop and nv > 1 and schedules:
        if len(schedules) > 1 or any(len(steps) != 1 for _, steps in schedules.values()):
            raise NotImplementedError("several villages: only one priced variant with one price step")

    capped_pairs = sorted(set(pair[capped]))
    capped_options = sorted(set(option[capped]))
    market = [(f"{o}.{v}", float(limit)) for (o, v), limit in p.market.items() if (pair == f"{o}.{v}").any()]
    bounds = {} if "objective_bound" in drop else dict(params.get("bounds") or {})
    if es_scale is None:
        bounds.pop("ecosystem_services", None)  # as the pipeline: the bound needs the G*_s, found without it
    # each village's cap on its transfers' share of income (scenario max_transfer_share, per village or township)
    shares = villages["transfer_share"].to_numpy(dtype=float) if "transfer_share" not in drop else np.full(nv, np.nan)
    names = ["income", "cost", *services] + (["ecosystem_services"] if es_scale is not None else [])
    weights = params.get("weights") or {}
    best: dict[tuple[str, str], Best] = {}
    n_feasible = 0
    pool: list[np.ndarray] = []

    product = itertools.product(*groups)
    chunk = max(1, chunk_cells // nh)
    done = 0
    while done < n_assign:
        rows = np.array(list(itertools.islice(product, chunk)), dtype=np.int64).reshape(-1, n)
        done += len(rows)
        na = len(rows)

        # per-assignment sums
        def by_village(values: np.ndarray, rows: np.ndarray = rows, na: int = na) -> np.ndarray:
            out = np.zeros((na, nv))
            for i in range(n):
                out[:, village_of_parcel[i]] += values[rows[:, i]]
            return out

        def by_township(values: np.ndarray, rows: np.ndarray = rows, na: int = na) -> np.ndarray:
            out = np.zeros((na, nt))
            for i in range(n):
                out[:, town_of_parcel[i]] += values[rows[:, i]]
            return out

        land_v = by_village(income_plain)
        comp_v = by_village(comp)
        labour_v = by_village(labour)
        forage_v = by_village(forage)
        closure_v = by_village(closure)
        cost_t = by_township(cost)
        cost_rows = cost_t.sum(axis=1)
        forest_t = by_township(area * forest)
        gain = sum(gains[rows[:, i]] for i in range(n))  # (na, services)
        priced_area = {g: by_village(area * (priced & (pair == g))) for g in schedules}

        ok = np.ones((na, nh), dtype=bool)
        herd_total = herd_grid.sum(axis=1)[None, :]
        other = np.zeros((nv, na, nh))  # village income apart from priced land
        transfers = np.zeros((nv, na, nh))
        for v in range(nv):
            h, r = herd_grid[None, :, v], posts_grid[None, :, v]
            if "carrying_capacity" not in drop:
                ok &= _le(h, kappa * forage_v[:, v, None], 1.0)
            if "ranger_posts" not in drop:
                ok &= _le(mu_per_post * r, closure_v[:, v, None], 1.0)
                ok &= _le(r, per_household * households[v])
            if "labour" not in drop:
                ok &= _le(labour_v[:, v, None] + days_per_head * h, labour_available[v])
            transfers[v] = comp_v[:, v, None] + wage * r
            other[v] = nonland[v] + land_v[:, v, None] + per_head * h + transfers[v]
        if params.get("transfer_budget") is not None and "transfer_budget" not in drop:
            ok &= _le(transfers.sum(axis=0), float(params["transfer_budget"]))
        total_cost = cost_rows[:, None] + herd_cost * herd_total
        if params.get("budget") is not None and "budget" not in drop:
            ok &= _le(total_cost, float(params["budget"]))
        if "township_budget" not in drop:
            names_t = list(p.townships["township"])
            for township, limit in (params.get("township_budgets") or {}).items():
                t = names_t.index(township)
                herd_t = herd_grid[:, town_of_village == t].sum(axis=1)[None, :]
                ok &= _le(cost_t[:, t, None] + herd_cost * herd_t, float(limit))
        if params.get("diversity_cap") is not None and "diversity" not in drop:
            cap = float(params["diversity_cap"])
            option_t = {o: by_township(area * (option == o)) for o in capped_options}
            for g in capped_pairs:
                own = by_township(area * (pair == g))
                ok &= _le(own, cap * option_t[g.split(".")[0]]).all(axis=1)[:, None]
        if params.get("forest_cover_min") is not None and "forest_cover" not in drop:
            ok &= _le(float(params["forest_cover_min"]) * town_area[None, :], forest_t).all(axis=1)[:, None]
        if "market" not in drop:
            for g, limit in market:
                planned = sum(area[rows[:, i]] * (pair[rows[:, i]] == g) for i in range(n))
                ok &= _le(planned, limit)[:, None]
        if "area_limits" not in drop:  # scenario areas / township_areas: "<scope>:<option[.variant] or herd>"
            names_t = list(p.townships["township"])
            for key, (low, high) in (params.get("area_limits") or {}).items():
                scope, name = key.split(":", 1)
                parcel_in = np.ones(n, dtype=bool) if scope == "*" else town_of_parcel == names_t.index(scope)
                if name == "herd":
                    villages_in = np.ones(nv, dtype=bool) if scope == "*" else town_of_village == names_t.index(scope)
                    held = np.broadcast_to(herd_grid[:, villages_in].sum(axis=1)[None, :].astype(float), (na, nh))
                else:
                    wanted = (pair == name) if "." in name else (option == name)
                    held = np.broadcast_to(sum(area[rows[:, i]] * wanted[rows[:, i]] * parcel_in[i]
                                               for i in range(n))[:, None], (na, nh))
                if low is not None:
                    ok &= _le(float(low), held, float(low))
                if high is not None:
                    ok &= _le(held, float(high))

        # income: what each village needs from its priced land (floor, transfer share), and what it can get
        needed = np.full((nv, na, nh), -np.inf)
        for v in range(nv):
            if "income_floor" not in drop:
                needed[v] = np.maximum(needed[v], need[v] - other[v])
            if "no_worse_off" not in drop and np.isfinite(keep_today[v]):
                needed[v] = np.maximum(needed[v], keep_today[v] - other[v])
            if np.isfinite(shares[v]):
                needed[v] = np.maximum(needed[v], transfers[v] / float(shares[v]) - other[v])
        scale = np.maximum(1.0, np.abs(need))[:, None, None]
        if not schedules:
            ok &= (needed <= TOL * scale).all(axis=0)
            priced_total = np.zeros((na, 1))
        elif "price_steps" in drop or nv == 1:
            most = np.zeros((nv, na))
            for g, (per_mu, steps) in schedules.items():
                area_g = priced_area[g].T  # (nv, na)
                most += per_mu * area_g if "price_steps" in drop else _fill_high(area_g, per_mu, steps)
            ok &= (needed - most[:, :, None] <= TOL * scale).all(axis=0)
            priced_total = most.sum(axis=0)[:, None]
        else:
            (g, (per_mu, steps)), = schedules.items()
            (start, factor), = steps
            area_g = priced_area[g].T  # (nv, na)
            low = factor * per_mu * area_g
            premium = (1.0 - factor) * per_mu
            extra = np.maximum(needed - low[:, :, None], 0.0)  # yuan each village needs above the low price
            ok &= (extra - premium * np.minimum(area_g, start)[:, :, None] <= TOL * scale).all(axis=0)
            ok &= extra.sum(axis=0) - premium * start <= TOL * scale.max()
            total_area = area_g.sum(axis=0)
            priced_total = (factor * per_mu * total_area + premium * np.minimum(total_area, start))[:, None]
        total_income = other.sum(axis=0) + priced_total

        values = {"income": total_income, "cost": total_cost}
        for k, s in enumerate(services):
            values[s] = np.broadcast_to(gain[:, k, None], (na, nh))
        if es_scale is not None:
            index = np.zeros(na)
            for s, w in weights.items():
                if w and es_scale.get(s):
                    index += float(w) / float(es_scale[s]) * gain[:, services.index(s)]
            values["ecosystem_services"] = np.broadcast_to(index[:, None], (na, nh))
        for name, (lower, upper) in bounds.items():
            if name not in values:
                raise NotImplementedError(f"a bound on {name} needs es_scale")
            if lower is not None:
                ok &= _le(float(lower), values[name], float(lower))
            if upper is not None:
                if name == "income" and schedules:
                    raise NotImplementedError("an upper bound on income with priced variants")
                ok &= _le(values[name], float(upper))

        n_feasible += int(ok.sum())
        if not ok.any():
            continue
        if collect:
            vectors = np.stack([np.broadcast_to(values[name], ok.shape)[ok] * (1.0 if sense == "max" else -1.0)
                                for name, sense in collect], axis=1)
            pool.append(_pareto_filter(np.unique(np.round(vectors, 6), axis=0)))
        for name in names:
            value = values[name]
            for sense in ("max", "min"):
                masked = np.where(ok, value, -np.inf if sense == "max" else np.inf)
                flat = int(np.argmax(masked) if sense == "max" else np.argmin(masked))
                i, j = divmod(flat, nh)
                found = float(masked[i, j])
                current = best.get((name, sense))
                if current is None or (found > current.value if sense == "max" else found < current.value):
                    best[(name, sense)] = Best(found, rows[i].copy(), herd_grid[j].copy(), posts_grid[j].copy(), a)
    front = None
    if collect:
        signs = np.array([1.0 if sense == "max" else -1.0 for _, sense in collect])
        front = _pareto_filter(np.unique(np.concatenate(pool), axis=0)) * signs if pool else np.zeros((0, 2))
    return Scan(n_plans=n_assign * nh, n_feasible=n_feasible, best=best, nondominated=front)


def _pareto_filter(points: np.ndarray) -> np.ndarray:
    """The rows (maximised, distinct) that no other row dominates."""
    keep = [i for i in range(len(points))
            if not ((points >= points[i]).all(axis=1) & (points > points[i]).any(axis=1)).any()]
    return points[keep]


REFERENCE_FLOOR = 1e-9
"""A service whose potential is not above this is left out of the index (as optiland.pipeline.reference.FLOOR)."""


def es_scales(problem: PlanningProblem) -> dict[str, float]:
    """The index's reference of every weighted service whose potential is positive (the pipeline leaves the others
    out): the parcels' potential, the sum over parcels of the best gain of any allowed row (derive_rows's), by a
    plain loop (the pipeline's optiland.pipeline.reference computes it vectorised), unless the scenario pins it."""
    pinned = dict(problem.scenario.objective.reference) if problem.scenario is not None else {}
    scales = {}
    for service, weight in problem.params["weights"].items():
        if not weight:
            continue
        best: dict[int, float] = {}
        rows = derive_rows(problem)  # this module's own rows, not problem.allowed
        for parcel, gain in zip(rows["parcel"].tolist(), rows[f"gain_{service}"].tolist(), strict=True):
            best[parcel] = max(best.get(parcel, -float("inf")), gain)
        value = float(pinned.get(service, sum(best.values())))
        if value > REFERENCE_FLOOR:
            scales[service] = value
    return scales


def optimal_plan(problem: PlanningProblem, scales: dict[str, float] | None = None,
                 **kwargs: object) -> tuple[Best | None, dict[str, float]]:
    """The brute-force optimal plan of the problem's own objective (None if infeasible), and the index references it
    used: the potentials (es_scales), or `scales` if given."""
    name, sense = problem.params["objective"], problem.params["sense"]
    first = scan(problem, **kwargs)  # type: ignore[arg-type]
    if name != "ecosystem_services" and "ecosystem_services" not in (problem.params.get("bounds") or {}):
        return first.best.get((name, sense)), {}
    scales = es_scales(problem) if scales is None else scales
    if not first.feasible or (name == "ecosystem_services" and not scales):
        return None, scales
    second = scan(problem, es_scale=scales, **kwargs)  # type: ignore[arg-type]
    return second.best.get((name, sense)), scales


def expected(problem: PlanningProblem, scales: dict[str, float] | None = None,
             **kwargs: object) -> tuple[float | None, dict[str, float]]:
    """The brute-force optimum of the problem's own objective (None if infeasible), and the references it used."""
    best, scales = optimal_plan(problem, scales, **kwargs)
    return (None if best is None else best.value), scales


def scales_agree(found: dict[str, float], enumerated: dict[str, float]) -> bool:
    """A run's index references against the brute force's: the same services, equal up to rounding (closed form)."""
    return found.keys() == enumerated.keys() and all(
        abs(found[s] - enumerated[s]) <= 1e-9 * max(1.0, abs(enumerated[s])) for s in found)


def plan_tables(problem: PlanningProblem, best: Best) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A plan's decisions as the tables optiland.check.check_plan reads (parcels: option, variant; villages:
    herd, ranger_posts)."""
    a = (problem.allowed if best.table is None else best.table).iloc[best.rows]
    parcels = pd.DataFrame({"parcel_id": problem.parcels["parcel_id"].to_numpy()[a["parcel"].to_numpy()],
                            "option": a["option"].to_numpy(), "variant": a["variant"].to_numpy()})
    villages = pd.DataFrame({"village": problem.villages["village"].to_numpy(), "herd": best.herd.astype(int),
                             "ranger_posts": best.posts.astype(int)})
    return parcels, villages


# ------------------------------------------------------------------------------------------------------------
# Building and solving tiny in-memory instances

SITE = ("parcel_id", "village", "land_use", "slope_deg", "bedrock_exposure", "area_mu", "karst", "red_line",
        "basic_farmland")


def parcels_table(rows: Sequence[tuple]) -> pd.DataFrame:
    """Parcels from tuples (id, village, land_use, slope, exposure, area[, karst, red_line, basic_farmland])."""
    full = [tuple(r) + (True, False, False)[len(r) - 6:] for r in rows]
    frame = pd.DataFrame(full, columns=list(SITE))
    frame["soil_depth_cm"] = 50.0
    return frame.astype({"slope_deg": float, "bedrock_exposure": float, "area_mu": float, "karst": bool,
                         "red_line": bool, "basic_farmland": bool})


def villages_table(rows: Sequence[tuple]) -> pd.DataFrame:
    """Villages from tuples (village, township, population, households, labour_days, nonland per capita)."""
    return pd.DataFrame(rows, columns=["village", "township", "population", "households", "labour_days",
                                       "nonland_income_per_capita"]).astype(
        {"labour_days": float, "nonland_income_per_capita": float})


def prepare_tiny(parcels: pd.DataFrame, villages: pd.DataFrame, objective: str = "income",
                 constraints: dict | None = None, overrides: dict | None = None,
                 weights: dict | None = None) -> Prepared:
    """A Prepared instance on the small catalog, built in memory."""
    overrides = dict(overrides or {})
    sense = {"minimise": objective} if objective == "cost" else {"maximise": objective}
    scenario = make_scenario(catalog={"path": str(SMALL_CATALOG), "overrides": overrides},
                             objective={**sense, "weights": dict(weights or {})},
                             constraints=dict(constraints or {}))
    catalog = load_catalog(SMALL_CATALOG, overrides=overrides)
    inputs = make_inputs(parcels, villages)
    return Prepared(scenario, catalog, inputs, build_problem(scenario, catalog, inputs), 0.0)


def solve_exact(prepared: Prepared) -> RunOutcome:
    """Solve to a proven optimum (gap 0)."""
    return solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=30))


def agrees(solver_value: float, outcome: RunOutcome, enumerated: float) -> bool:
    """The solver's optimum equals the enumerated one within 1e-6 relative plus the solver's own gap."""
    result = outcome.result
    slack = 1e-6 * max(1.0, abs(enumerated)) + outcome.options.mip_abs_gap
    if result.bound is not None:
        slack += abs(result.bound - solver_value)
    return abs(solver_value - enumerated) <= slack


# ------------------------------------------------------------------------------------------------------------
# The allowed rows and their coefficients, from the catalog's own files and the parcel attributes
#
# Written from docs/data-model.md in plain Python, one parcel and one option at a time: the catalog folder's CSV
# files and catalog.toml are read here with the csv and tomllib modules (not optiland.io.catalog), money is
# converted to the price year with the deflators here, and the scenario's catalog overrides (exact keys, `*` and
# `{scale = f}`) are applied here. Nothing comes from optiland.model.problem or optiland.check.


def _raw_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def _truth(text: str) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes")


def _number(text: object, default: float = 0.0) -> float:
    return default if text is None or str(text).strip() in ("", "nan") else float(text)


def _override(rows: list[dict[str, str]], keys: tuple[str, ...], selector: tuple[str, ...], column: str,
              value: object) -> None:
    for row in rows:
        if all(s == "*" or row[k] == s for k, s in zip(keys, selector, strict=True)):
            old = row.get(column, "")
            row[column] = str(float(old) * float(value["scale"])) if isinstance(value, dict) else str(value)


@dataclass
class RawCatalog:
    """The catalog's tables as the files say, deflated and overridden by this module's own code."""

    meta: dict
    uses: dict[str, dict[str, str]]
    options: dict[str, dict[str, str]]
    variants: list[dict[str, str]]
    conversions: list[dict[str, str]]


def raw_catalog(folder: Path, overrides: dict | None = None) -> RawCatalog:
    """Read a catalog folder with csv and tomllib; convert money of other price years with the deflators."""
    meta = tomllib.loads((folder / "catalog.toml").read_text(encoding="utf-8"))
    uses = _raw_csv(folder / "current_uses.csv")
    options = _raw_csv(folder / "options.csv")
    variants = _raw_csv(folder / "variants.csv")
    year = int(meta["region"].get("price_year", 2020))
    factors = {int(d["year"]): float(d["factor"]) for d in meta.get("deflators", [])}
    for rows, money in ((uses, ("income_per_mu",)), (variants, ("establishment_cost_per_mu", "net_income_per_mu"))):
        for row in rows:
            own = row.get("price_year", "")
            factor = 1.0 if own in ("", str(year)) or int(float(own)) == year else factors[int(float(own))]
            for column in money:
                row[column] = str(_number(row[column]) * factor)
    livestock = dict(meta.get("livestock", {}))
    own = livestock.get("price_year")
    factor = 1.0 if own is None or int(own) == year else factors[int(own)]
    for key in ("net_income_per_head", "purchase_cost_per_head", "shed_cost_per_head"):
        livestock[key] = float(livestock[key]) * factor
    meta["livestock"] = livestock
    for key, value in (overrides or {}).items():
        parts = key.split(".")
        if parts[0] == "variants":
            _override(variants, ("option", "variant"), (parts[1], parts[2]), parts[3], value)
        elif parts[0] == "options":
            _override(options, ("option",), (parts[1],), parts[2], value)
        elif parts[0] == "current_uses":
            _override(uses, ("code",), (parts[1],), parts[2], value)
        elif parts[0] in ("livestock", "rangers", "defaults", "adaptation"):
            table = meta.setdefault(parts[0], {})
            table[parts[1]] = float(table[parts[1]]) * float(value["scale"]) if isinstance(value, dict) else value
        # market overrides do not change the rows
    return RawCatalog(meta=meta, uses={row["code"]: row for row in uses},
                      options={row["option"]: row for row in options}, variants=variants,
                      conversions=_raw_csv(folder / "conversions.csv"))


def _grade(meta: dict, value: float, applies: bool) -> int:
    """Position of the band [lower, next lower) holding the value (the first band where the grade does not apply)."""
    if not applies:
        return 0
    position = 0
    for k, band in enumerate(meta["grade"]["bands"]):
        if value >= float(band["lower"]):
            position = k
    return position


def _conversion_forbids(rules: list[dict], parcel: dict, use: str, option: str, variant: str) -> bool:
    """The first conversion rule whose conditions hold and whose `to` names the option decides."""
    for rule in rules:
        targets = {t.strip() for t in str(rule["to"]).split(";")}
        if "*" not in targets and option not in targets and f"{option}.{variant}" not in targets:
            continue
        codes = [c.strip() for c in str(rule["current_use"]).split(";")]
        if "*" not in codes and use not in codes and use[:2] not in [c for c in codes if len(c) == 2]:
            continue
        if str(rule.get("red_line") or "").strip() not in ("", "None", "nan") and \
                _truth(rule["red_line"]) != bool(parcel["red_line"]):
            continue
        if str(rule.get("basic_farmland") or "").strip() not in ("", "None", "nan") and \
                _truth(rule["basic_farmland"]) != bool(parcel["basic_farmland"]):
            continue
        low, high = rule.get("min_slope_deg"), rule.get("max_slope_deg")
        if str(low or "").strip() not in ("", "None", "nan") and not parcel["slope_deg"] >= float(low):
            continue
        if str(high or "").strip() not in ("", "None", "nan") and not parcel["slope_deg"] < float(high):
            continue
        return not _truth(rule["allowed"])
    return False


def derive_rows(problem: PlanningProblem) -> pd.DataFrame:
    """Every allowed (parcel, option, variant) of the problem's parcels with its coefficients, derived from the
    catalog's files and the parcel attributes (the columns of ``problem.allowed``, in this module's own order)."""
    scenario = problem.scenario
    if problem.spatial is not None and (problem.spatial.locks is not None or problem.spatial.parcel_costs is not None):
        raise NotImplementedError("locks and parcel costs are not enumerated here")
    raw = raw_catalog(Path(problem.catalog.path), scenario.catalog.overrides if scenario is not None else {})
    meta = raw.meta
    services = list(meta["services"])
    names = [band["name"] for band in meta["grade"]["bands"]]
    attribute, where = meta["grade"].get("attribute"), meta["grade"].get("applies_where")
    crop_limit = meta.get("defaults", {}).get("cropland_max_slope_deg")
    reference = _number(meta.get("defaults", {}).get("soil_slope_reference_deg"), 0.0)
    rules = ([dict(r) for r in scenario.catalog.conversion_rules] if scenario is not None else [])
    if scenario is not None and scenario.catalog.conversions is not None:
        rules += _raw_csv(scenario.resolve(scenario.catalog.conversions))
    else:
        rules += raw.conversions
    keep = next(o for o, row in raw.options.items() if _truth(row["keeps_current_use"]))
    kinds = [(keep, keep, raw.options[keep], {})]
    kinds += [(v["option"], v["variant"], raw.options[v["option"]], v) for v in raw.variants if v["option"] != keep]
    village_index = {str(v): i for i, v in enumerate(problem.villages["village"])}
    out = []
    for i, parcel in enumerate(problem.parcels.to_dict("records")):
        use = str(parcel["land_use"])
        now = raw.uses[use]
        plannable = now.get("plannable", "") == "" or _truth(now["plannable"])
        red, farmland, slope = bool(parcel["red_line"]), bool(parcel["basic_farmland"]), float(parcel["slope_deg"])
        applies = bool(parcel[where]) if where else True
        grade = _grade(meta, float(parcel[attribute]), applies) if attribute else 0
        area = float(parcel["area_mu"])
        for option, variant, opt, var in kinds:
            is_keep = option == keep
            zone = opt.get("excluded_where", "")
            if zone and bool(parcel[zone]) and not farmland and plannable:
                continue
            if is_keep:
                if red and not farmland and plannable:
                    continue
                if crop_limit is not None and _truth(now["cropland"]) and slope >= float(crop_limit) \
                        and not farmland and plannable:
                    continue
            else:
                if not plannable or farmland:
                    continue
                if _conversion_forbids(rules, parcel, use, option, variant):
                    continue
                if red and not _truth(opt["red_line_allowed"]):
                    continue
                limit = var.get("max_slope_deg") or opt.get("max_slope_deg")
                if limit and slope >= float(limit):
                    continue
                if opt.get("max_grade") and applies and grade > names.index(opt["max_grade"]):
                    continue
                cls = var.get("adaptation_class", "")
                if cls:
                    top = meta["adaptation"][cls]
                    if applies and (top == "never" or grade > names.index(top)):
                        continue
            harvest = (not red) or _truth(opt["red_line_harvest"])
            row = {
                "parcel": i, "option": option, "variant": variant,
                "village": village_index.get(str(parcel.get("village")), -1), "area": area,
                "converted": not is_keep,
                "income": area * (_number(now["income_per_mu"]) if is_keep
                                  else _number(var["net_income_per_mu"]) * harvest),
                "compensation": 0.0 if is_keep else area * _number(opt.get("compensation_per_mu")),
                "cost": 0.0 if is_keep else area * _number(var["establishment_cost_per_mu"]),
                "labour": area * _number(now["labour_days_per_mu"] if is_keep else var["labour_days_per_mu"]),
                "forest": _truth(now["forest_type"] if is_keep else opt["forest_type"]),
                "ranger_area": area if _truth(opt["ranger_area"]) else 0.0,
                "livestock_area": area if _truth(opt["livestock"]) else 0.0,
                "diversity_capped": _truth(opt["diversity_capped"]),
                "harvest": harvest,
            }
            for service in services:
                gain = 0.0 if is_keep else (_number(var[service]) - _number(now[service])) * area
                if service == "soil" and reference > 0:
                    gain *= max(slope, 5.0) / reference
                row[f"gain_{service}"] = gain
            out.append(row)
    return pd.DataFrame(out)
