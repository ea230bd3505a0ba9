r"""The transition years and price risk: a plan that keeps every village above its floor on the way to maturity, and
when prices fall.

The core model (optiland.model.formulation) plans the steady state at maturity: one year, average prices. This module
adds
a horizon of years :math:`t = 1..H` to it. The core plan :math:`x` stays the plan at maturity (every core family
keeps holding for it); the years add *when* each conversion happens and what every village earns meanwhile.

**Phasing by groups, not by parcel and year.** A binary per parcel and year would multiply the core's binaries by
H. Instead the converted allowed rows are grouped by (village, option, variant, harvest, current-use income and
labour per mu): inside a group every money figure per mu is the same, so only the *area* established each year
matters, :math:`E_{q,\tau} \ge 0` (mu of group q established in year :math:`\tau`; the model's columns are the
cumulative :math:`D_{q,t} = \sum_{\tau \le t} E_{q,\tau}`), and the group's final area
:math:`A_q(x) = \sum_{a \in q} S_a x_a` is linear in the plan. Every yearly quantity is then linear: a figure per
mu times a profile factor by age :math:`t - \tau` (catalog ``profiles.csv``) summed over the years established.
On the demo (3,000 parcels, 12 villages) that is 4,188 groups: 41,880 continuous columns for 10 years
against 985,000 binaries per parcel and year. Which parcels of a group go first is not decided (they are
interchangeable in every money figure); ``results`` assigns years to parcels in parcel order for the map.
Ecosystem services differ between parcels of a group (the soil gain's slope factor), so the *cumulated* service
objective uses each group's area-weighted mean gain per mu; the end-of-horizon services are the core's, exact.

**Price and yield risk.** A scenario set :math:`\omega \in \Omega` with probabilities :math:`p_\omega` multiplies
the net income of each product (an option, ``livestock`` for the herd, ``current`` for the current uses kept) by a
factor :math:`f_{k,\omega,t}` (from a table, or sampled around the catalog's ``price_risk.csv``). The floor holds
at average prices in every year (``average_floor``) and, by the scenario's risk measure, ``robust_floor`` (every
scenario), ``cvar_floor`` (conditional value at risk of the shortfall) or ``icc_floor`` (integrated chance
constraint: expected shortfall).

Money per year is undiscounted yuan of the catalog's price year.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optiland.errors import InfeasibleError, InputError, Issue
from optiland.io.catalog import Catalog
from optiland.io.scenario import RiskConfig, TransitionConfig
from optiland.mip.solver import SolveResult, SolverOptions, Status
from optiland.model.backend import PyomoBackend, Solution
from optiland.model.formulation import objective_expression
from optiland.model.problem import PlanningProblem, fill_steps, price_schedule
from optiland.violations import Violation

ITEMS = ("income", "cost", "compensation", "labour", "services")
"""What a profile scales: net income (for forage grass: the grass, hence the herd it feeds), establishment cost,
compensation, labour days, ecosystem-service gains."""
LIVESTOCK = "livestock"
CURRENT = "current"
MEASURES = ("expected", "robust", "cvar", "icc")


# --------------------------------------------------------------------------------------------------- catalog data
@dataclass
class Profiles:
    """Yearly factors by age (0 = the year of establishment): per (option, variant) and item, and for the herd."""

    table: pd.DataFrame
    """The long table as read: option, variant (blank: every variant), item, age, factor."""

    def factors(self, option: str, variant: str, item: str, horizon: int) -> np.ndarray:
        """The factor of each age 0..horizon-1: the listed factor of the largest listed age at or below it; without
        a profile, the steady state from the first year (cost: all of it in year 0)."""
        rows = self.table[(self.table["option"] == option) & (self.table["item"] == item)]
        own = rows[rows["variant"] == variant]
        rows = own if len(own) else rows[rows["variant"] == ""]
        if not len(rows):
            default = np.ones(horizon)
            if item == "cost":
                default[1:] = 0.0
            return default
        ages = rows["age"].to_numpy(dtype=int)
        order = np.argsort(ages)
        ages, values = ages[order], rows["factor"].to_numpy(dtype=float)[order]
        position = np.searchsorted(ages, np.arange(horizon), side="right") - 1
        return values[np.clip(position, 0, None)]


def read_profiles(catalog: Catalog, table: pd.DataFrame | None = None) -> Profiles:
    """The catalog's ``profiles.csv`` (or a given table), validated: known options (or ``livestock``), variants and
    items, whole ages from 0, numbers; every (option, variant, item) lists age 0."""
    file = catalog.path / "profiles.csv"
    if table is None:
        if not file.is_file():
            return Profiles(pd.DataFrame(columns=["option", "variant", "item", "age", "factor"]))
        table = pd.read_csv(file, dtype={"variant": str}, keep_default_na=False, encoding="utf-8-sig")
    where = str(file)
    problems = [Issue("missing column", file=where, column=c) for c in ("option", "variant", "item", "age", "factor")
                if c not in table.columns]
    if problems:
        raise InputError(problems)
    table = table.copy()
    table["variant"] = table["variant"].fillna("").astype(str).replace("*", "")
    options = set(catalog.options.index) | {LIVESTOCK}
    variants = set(catalog.variants.index)
    for i, row in enumerate(table.itertuples(index=False), start=2):
        line = f"line {i}"
        if row.option not in options:
            problems.append(Issue("unknown option (or 'livestock')", file=where, row=line, column="option",
                                  value=row.option))
        elif row.variant and (row.option, row.variant) not in variants:
            problems.append(Issue("unknown variant of this option", file=where, row=line, column="variant",
                                  value=row.variant))
        if row.item not in ITEMS:
            problems.append(Issue(f"unknown item; known: {', '.join(ITEMS)}", file=where, row=line, column="item",
                                  value=row.item))
        age = pd.to_numeric(pd.Series([row.age]), errors="coerce").iloc[0]
        if pd.isna(age) or age < 0 or age != int(age):
            problems.append(Issue("age must be a whole number of years from 0", file=where, row=line, column="age",
                                  value=row.age))
        if pd.isna(pd.to_numeric(pd.Series([row.factor]), errors="coerce").iloc[0]):
            problems.append(Issue("not a number", file=where, row=line, column="factor", value=row.factor))
    if problems:
        raise InputError(problems)
    table["age"] = table["age"].astype(int)
    table["factor"] = table["factor"].astype(float)
    for (option, variant, item), rows in table.groupby(["option", "variant", "item"]):
        if 0 not in set(rows["age"]):
            problems.append(Issue("a profile must list age 0", file=where, row=f"{option}.{variant or '*'}",
                                  column=f"item {item}"))
        if rows["age"].duplicated().any():
            problems.append(Issue("an age is listed twice", file=where, row=f"{option}.{variant or '*'}",
                                  column=f"item {item}"))
    if problems:
        raise InputError(problems)
    return Profiles(table[["option", "variant", "item", "age", "factor"]].reset_index(drop=True))


@dataclass
class PriceScenarios:
    """Factors on net income by scenario, product and year, with the scenarios' probabilities."""

    names: list[str]
    probability: np.ndarray
    products: list[str]
    factor: np.ndarray
    """(scenarios, products, years)"""
    source: str

    @property
    def mean(self) -> np.ndarray:
        """Expected factor by (product, year)."""
        return np.tensordot(self.probability, self.factor, axes=1)


def price_risk(catalog: Catalog) -> pd.Series:
    """Coefficient of variation of net income per product (catalog ``price_risk.csv``; absent products: 0)."""
    file = catalog.path / "price_risk.csv"
    if not file.is_file():
        return pd.Series(dtype=float)
    table = pd.read_csv(file, encoding="utf-8-sig")
    if "product" not in table.columns or "cv" not in table.columns:
        raise InputError([Issue("missing column (product, cv)", file=str(file))])
    cv = pd.to_numeric(table["cv"], errors="coerce")
    bad = cv.isna() | (cv < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError([Issue("cv must be a number >= 0", file=str(file), row=str(table["product"].iloc[i]),
                                column="cv", value=table["cv"].iloc[i])])
    return pd.Series(cv.to_numpy(), index=table["product"].astype(str))


def sample_scenarios(products: list[str], cv: pd.Series, n: int, horizon: int, seed: int) -> PriceScenarios:
    r"""N equally likely scenarios, each a persistent price-and-yield level per product over the horizon:
    :math:`f = \exp(\sigma Z - \sigma^2/2)` with :math:`\sigma^2 = \ln(1 + cv^2)` (lognormal, mean 1), independent
    between products (numpy's PCG64 with `seed`: the same seed gives the same scenarios)."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.log1p(np.array([float(cv.get(k, 0.0)) ** 2 for k in products])))
    z = rng.standard_normal((n, len(products)))
    level = np.exp(sigma * z - sigma ** 2 / 2)
    factor = np.repeat(level[:, :, None], horizon, axis=2)
    return PriceScenarios([f"S{i + 1:02d}" for i in range(n)], np.full(n, 1.0 / n), products, factor,
                          f"sampled: {n} lognormal levels, seed {seed}")


def read_scenarios(path: Path, products: list[str], horizon: int) -> PriceScenarios:
    """A scenario table: scenario, product, factor, optional probability (per scenario; default equal) and year
    (1..H; blank: every year). Unlisted products keep factor 1."""
    if not path.is_file():
        raise InputError([Issue("price scenario table not found", file=str(path))])
    table = pd.read_csv(path, dtype={"scenario": str, "product": str}, encoding="utf-8-sig")
    where = str(path)
    missing = [c for c in ("scenario", "product", "factor") if c not in table.columns]
    if missing:
        raise InputError([Issue("missing column", file=where, column=c) for c in missing])
    problems = []
    for i, row in enumerate(table.itertuples(index=False), start=2):
        if row.product not in products:
            problems.append(Issue(f"unknown product; known: {', '.join(products)}", file=where, row=f"line {i}",
                                  column="product", value=row.product))
        if not (isinstance(row.factor, (int, float)) and math.isfinite(row.factor) and row.factor >= 0):
            problems.append(Issue("factor must be a number >= 0", file=where, row=f"line {i}", column="factor",
                                  value=row.factor))
    if problems:
        raise InputError(problems)
    names = list(dict.fromkeys(table["scenario"]))
    factor = np.ones((len(names), len(products), horizon))
    years = table["year"] if "year" in table.columns else pd.Series(np.nan, index=table.index)
    for row, year in zip(table.itertuples(index=False), years, strict=True):
        s, k = names.index(row.scenario), products.index(row.product)
        if pd.isna(year):
            factor[s, k, :] = row.factor
        elif 1 <= int(year) <= horizon:
            factor[s, k, int(year) - 1] = row.factor
    if "probability" in table.columns:
        first = table.groupby("scenario", sort=False)["probability"].first()
        probability = first.reindex(names).to_numpy(dtype=float)
        if np.isnan(probability).any() or (probability < 0).any() or abs(probability.sum() - 1) > 1e-6:
            raise InputError([Issue("probabilities must be >= 0 and sum to 1 over the scenarios", file=where,
                                    column="probability", value=float(np.nansum(probability)))])
    else:
        probability = np.full(len(names), 1.0 / len(names))
    return PriceScenarios(names, probability, products, factor, f"table {path.name}")


# --------------------------------------------------------------------------------------------------- the problem
@dataclass
class TransitionProblem:
    """The core problem plus the years: groups, profiles, scenarios and the yearly limits, as arrays."""

    problem: PlanningProblem
    config: TransitionConfig
    groups: pd.DataFrame
    """One row per phasing group: village, option, variant, harvest, priced, product; per mu: income (0 where the
    price steps set it), current_income, current_labour, cost, compensation, labour, gain_<service> (mean)."""
    row_group: np.ndarray
    """Group of each allowed row; -1 for rows keeping the current use."""
    profile: dict[str, np.ndarray]
    """item -> (groups, H) factor by age."""
    livestock_profile: np.ndarray
    """(H,) the income factor of a head by its age in the herd."""
    prices: PriceScenarios
    yearly_budget: np.ndarray | None
    phasing: np.ndarray | None

    @property
    def horizon(self) -> int:
        """Years planned."""
        return int(self.config.horizon)

    @property
    def risk(self) -> RiskConfig:
        """The risk measure of the floor."""
        return self.config.risk


def _group_key(problem: PlanningProblem) -> tuple[pd.DataFrame, np.ndarray]:
    a = problem.allowed
    uses = problem.catalog.current_uses.reindex(problem.parcels["land_use"])
    parcel = a["parcel"].to_numpy()
    area = a["area"].to_numpy(dtype=float)
    frame = pd.DataFrame({
        "village": a["village"].to_numpy(), "option": a["option"].to_numpy(), "variant": a["variant"].to_numpy(),
        "harvest": a["harvest"].to_numpy(),
        "current_income": uses["income_per_mu"].to_numpy(dtype=float)[parcel],
        "current_labour": uses["labour_days_per_mu"].to_numpy(dtype=float)[parcel],
    })
    converted = a["converted"].to_numpy()
    keys = ["village", "option", "variant", "harvest", "current_income", "current_labour"]
    sub = frame[converted]
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(sub[keys]), sort=True)
    row_group = np.full(len(a), -1, dtype=np.int64)
    row_group[converted] = codes
    groups = pd.DataFrame(list(uniques), columns=keys)
    weight = np.bincount(codes, weights=area[converted], minlength=len(groups))
    for column in ["income", "cost", "compensation", "labour", *(f"gain_{s}" for s in problem.services)]:
        values = a[column].to_numpy(dtype=float)[converted] / area[converted]
        mean = np.bincount(codes, weights=values * area[converted], minlength=len(groups)) / weight
        if not column.startswith("gain_"):
            spread = np.abs(values - mean[codes])
            if (spread > 1e-6 * np.maximum(1.0, np.abs(mean[codes]))).any():
                bad = int(np.flatnonzero(spread > 1e-6 * np.maximum(1.0, np.abs(mean[codes])))[0])
                parcel_id = problem.parcels["parcel_id"].iloc[int(a["parcel"].to_numpy()[converted][bad])]
                raise InputError([Issue("the transition model needs one figure per mu for every parcel of a village, "
                                        "option and variant (per-parcel costs are not supported)", row=str(parcel_id),
                                        column=column)])
        groups[column] = mean
    groups["feeds_herd"] = np.bincount(codes, weights=a["livestock_area"].to_numpy()[converted],
                                   minlength=len(groups)) > 0
    groups["ranger"] = np.bincount(codes, weights=a["ranger_area"].to_numpy()[converted], minlength=len(groups)) > 0
    return groups, row_group


def build_transition(problem: PlanningProblem, config: TransitionConfig, profiles: Profiles | None = None,
                     prices: PriceScenarios | None = None) -> TransitionProblem:
    """Group the converted rows, lay out each group's profiles over the horizon, and read or sample the price
    scenarios (none given and none configured: one scenario at catalog prices)."""
    catalog = problem.catalog
    horizon = int(config.horizon)
    profiles = profiles if profiles is not None else read_profiles(catalog)
    groups, row_group = _group_key(problem)
    keep = catalog.keep_option
    options = [o for o in catalog.options.index if o != keep]
    products = [*options, LIVESTOCK, CURRENT]
    groups["product"] = [options.index(o) for o in groups["option"]]
    priced_pairs = set(problem.price_steps)
    groups["priced"] = [(o, v) in priced_pairs and bool(h)
                        for o, v, h in zip(groups["option"], groups["variant"], groups["harvest"], strict=True)]
    groups.loc[groups["priced"], "income"] = 0.0
    per_kind: dict[tuple[str, str, str], np.ndarray] = {}
    profile = {}
    for item in ITEMS:
        rows = []
        for o, v in zip(groups["option"], groups["variant"], strict=True):
            if (o, v, item) not in per_kind:
                per_kind[(o, v, item)] = profiles.factors(o, v, item, horizon)
            rows.append(per_kind[(o, v, item)])
        profile[item] = np.array(rows).reshape(len(groups), horizon)
    livestock = profiles.factors(LIVESTOCK, "", "income", horizon)
    risk = config.risk
    if prices is None:
        if risk.scenarios is not None:
            scenario = problem.scenario
            path = scenario.resolve(risk.scenarios) if scenario is not None else Path(risk.scenarios)
            prices = read_scenarios(path, products, horizon)
        elif risk.sample:
            prices = sample_scenarios(products, price_risk(catalog), risk.sample, horizon, risk.seed)
        else:
            prices = PriceScenarios(["catalog"], np.ones(1), products, np.ones((1, len(products), horizon)),
                                    "catalog prices")
    if prices.products != products or prices.factor.shape[2] != horizon:
        raise InputError([Issue("price scenarios do not match the catalog's products or the horizon",
                                column="transition.risk", value=prices.products)])
    if risk.measure != "expected" and len(prices.names) < 2:
        raise InputError([Issue(f"the {risk.measure} floor needs price scenarios: set transition.risk.scenarios "
                                "or transition.risk.sample", column="transition.risk.measure", value=risk.measure)])
    budget = config.yearly_budget
    yearly_budget = None
    if budget is not None:
        values = [float(budget)] * horizon if not isinstance(budget, list) else [float(b) for b in budget]
        if len(values) != horizon or min(values) < 0:
            raise InputError([Issue(f"yearly_budget needs one figure >= 0 or {horizon} of them",
                                    column="transition.yearly_budget", value=budget)])
        yearly_budget = np.array(values)
    phasing = None
    if config.phasing:
        phasing = np.ones(horizon)
        given = np.array(config.phasing[:horizon], dtype=float)
        phasing[:len(given)] = given
    return TransitionProblem(problem, config, groups, row_group, profile, livestock, prices, yearly_budget, phasing)


# --------------------------------------------------------------------------------------------------- the model
def increments(factor: np.ndarray) -> np.ndarray:
    r"""A profile as steps: :math:`\Delta\rho(a) = \rho(a) - \rho(a-1)`, :math:`\rho(-1) = 0`."""
    return np.diff(factor, axis=1, prepend=0.0)


def _age_terms(m: pyo.ConcreteModel, groups: np.ndarray, by_age: np.ndarray, t: int) -> list[Any]:
    """Sum over groups q and ages a <= t of by_age[q, a] D[q, t - a], as a term list (zeros skipped)."""
    terms = []
    for q in groups:
        row = by_age[q]
        for age in np.flatnonzero(row[:t + 1]):
            terms.append(float(row[age]) * m.established[int(q), t - int(age)])
    return terms


def _terms(m: pyo.ConcreteModel, groups: np.ndarray, per_mu: np.ndarray, factor: np.ndarray, t: int) -> list[Any]:
    r"""The convolution :math:`\sum_q \sum_{\tau \le t} c_q \rho_q(t-\tau) E_{q,\tau}` over `groups`, written
    with the cumulative areas as :math:`\sum_q \sum_{a \le t} c_q \Delta\rho_q(a) D_{q,t-a}`: one term per
    step of the profile instead of one per year (a flat profile is the single term :math:`c_q D_{q,t}`)."""
    return _age_terms(m, groups, per_mu[:, None] * increments(factor), t)


def _final_area(m: pyo.ConcreteModel, tp: TransitionProblem) -> list[Any]:
    """A_q(x) = sum_{a in q} S_a x_a for each group."""
    area = tp.problem.allowed["area"].to_numpy(dtype=float)
    order = np.argsort(tp.row_group, kind="stable")
    bounds = np.searchsorted(tp.row_group[order], np.arange(len(tp.groups) + 1))
    return [pyo.quicksum(float(area[a]) * m.x[int(a)] for a in order[bounds[q]:bounds[q + 1]])
            for q in range(len(tp.groups))]


def phasing_variables(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Years, phasing areas and the yearly village quantities.

    :math:`D_{q,t} \ge 0` mu of group q established by the end of year t (cumulative: the area established in
    year :math:`\tau` is :math:`E_{q,\tau} = D_{q,\tau} - D_{q,\tau-1}`, :math:`D_{q,-1} = 0`; cumulative
    variables turn every convolution with a profile into one term per step of the profile);
    :math:`b_{v,t} \ge 0` head of cattle
    bought; :math:`r_{v,t} \ge 0` ranger posts staffed (continuous: planning quantities in the transition; the
    mature herd and posts :math:`h_v, r_v` stay integers as in the core); :math:`\sigma_{v,t} \ge 0` transition
    subsidy (only when the scenario gives a subsidy budget); :math:`z_{v,g,k,t} \ge 0` the income-bearing area of
    a priced variant sold in price step k; and the accounting variables of the floor rows."""
    p = tp.problem
    H = tp.horizon
    m.Y = pyo.RangeSet(0, H - 1)
    m.G = pyo.RangeSet(0, len(tp.groups) - 1)
    m.established = pyo.Var(m.G, m.Y, domain=pyo.NonNegativeReals)
    m.herd_bought = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    m.posts_staffed = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    if tp.config.subsidy_budget > 0:
        m.subsidy = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    m.P = pyo.RangeSet(0, len(tp.prices.products) - 1)
    m.product_income = pyo.Var(m.V, m.P, m.Y, domain=pyo.Reals)
    m.compensation_paid = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    steps = []
    for (option, variant), pair_steps in p.price_steps.items():
        for v in sorted(set(tp.groups.loc[tp.groups["priced"] & (tp.groups["option"] == option)
                                          & (tp.groups["variant"] == variant), "village"])):
            for k in range(len(pair_steps) + 1):
                for t in range(H):
                    steps.append((int(v), f"{option}.{variant}", k, t))
    m.ZY = pyo.Set(initialize=steps, dimen=4, ordered=True)
    m.step_area = pyo.Var(m.ZY, domain=pyo.NonNegativeReals)
    m.S_scen = pyo.RangeSet(0, len(tp.prices.names) - 1)
    m._groups_of_village = [np.flatnonzero(tp.groups["village"].to_numpy() == v) for v in range(len(p.villages))]


def phase_complete(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Every conversion of the plan happens within the horizon, once (``phase_complete``):
    :math:`D_{q,H} = A_q(x)`, and land once converted stays converted (``phase_order``): :math:`D_{q,t-1} \le
    D_{q,t}`; the herd reaches the plan's size (``herd_complete``): :math:`\sum_t b_{v,t} = h_v`. The yearly rows
    then read a group's final area as :math:`D_{q,H}`, not as the sum over its parcels again."""
    final = _final_area(m, tp)
    last = tp.horizon - 1
    m.phase_complete = pyo.Constraint(m.G, rule=lambda m, q: m.established[q, last] == final[q])
    m.phase_order = pyo.Constraint(m.G, pyo.RangeSet(1, last) if last else pyo.Set(initialize=[]),
                                   rule=lambda m, q, t: m.established[q, t - 1] <= m.established[q, t])
    m.herd_complete = pyo.Constraint(m.V, rule=lambda m, v: pyo.quicksum(m.herd_bought[v, t] for t in m.Y)
                                     == m.herd[v])
    m._final_area = final


def phasing_cap(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Conversions follow the scenario's phasing ("demonstration in year one, promotion in year two, full coverage
    in year three"): for each village v and option o,
    :math:`\sum_{q \in (v,o)} \sum_{\tau \le t} E_{q,\tau} \le \phi_t \sum_{q \in (v,o)} A_q(x)`."""
    if tp.phasing is None:
        return
    village, option = tp.groups["village"].to_numpy(), tp.groups["option"].to_numpy()
    index = [(int(v), str(o), t) for v, o in sorted(set(zip(village, option, strict=True)))
             for t in range(tp.horizon) if tp.phasing[t] < 1.0]

    def rule(m: pyo.ConcreteModel, v: int, o: str, t: int) -> Any:
        own = np.flatnonzero((village == v) & (option == o))
        done = pyo.quicksum(m.established[int(q), t] for q in own)
        return done <= float(tp.phasing[t]) * pyo.quicksum(m.established[int(q), tp.horizon - 1] for q in own)

    m.phasing_cap = pyo.Constraint(pyo.Set(initialize=index, dimen=3, ordered=True), rule=rule)


def yearly_herd_and_posts(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""The herd each year is fed by the grass established so far (``herd_feed``):
    :math:`\sum_{\tau \le t} b_{v,\tau} \le \kappa \sum_{q \in F_v} \sum_{\tau \le t} \rho_q(t-\tau) E_{q,\tau}`
    with :math:`\rho` forage's income profile (the grass yield by age); posts guard the hills closed so far
    (``posts_area``): :math:`\mu\, r_{v,t} \le \sum_{q \in R_v} \sum_{\tau \le t} E_{q,\tau}`, and at most the
    plan's posts (``posts_cap``): :math:`r_{v,t} \le r_v`."""
    p = tp.problem
    kappa = float(p.params["livestock"]["head_per_mu"])
    mu = float(p.params["rangers"]["mu_per_post"])
    forage = tp.groups["feeds_herd"].to_numpy()
    ranger = tp.groups["ranger"].to_numpy()
    ones = np.ones((len(tp.groups), tp.horizon))

    def feed(m: pyo.ConcreteModel, v: int, t: int) -> Any:
        own = m._groups_of_village[v]
        grass = _terms(m, own[forage[own]], np.full(len(tp.groups), kappa), tp.profile["income"], t)
        herd = pyo.quicksum(m.herd_bought[v, tau] for tau in range(t + 1))
        return herd <= pyo.quicksum(grass) if grass else herd == 0

    def guarded(m: pyo.ConcreteModel, v: int, t: int) -> Any:
        own = m._groups_of_village[v]
        closed = _terms(m, own[ranger[own]], np.ones(len(tp.groups)), ones, t)
        return mu * m.posts_staffed[v, t] <= pyo.quicksum(closed) if closed else m.posts_staffed[v, t] == 0

    m.herd_feed = pyo.Constraint(m.V, m.Y, rule=feed)
    m.posts_area = pyo.Constraint(m.V, m.Y, rule=guarded)
    m.posts_cap = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: m.posts_staffed[v, t] <= m.posts[v])


def yearly_budget(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Establishment spending each year within the yearly budget :math:`B_t`:
    :math:`\sum_q \sum_{\tau \le t} K_q\, c_q(t-\tau) E_{q,\tau} + (c^{\mathrm{buy}} + c^{\mathrm{shed}})
    \sum_v b_{v,t} \le B_t` (:math:`K_q` the catalog's establishment cost per mu, :math:`c_q` its spread over the
    first years, ``profiles.csv`` item cost; the core's total ``budget`` keeps holding over all years)."""
    if tp.yearly_budget is None:
        return
    livestock = tp.problem.params["livestock"]
    herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
    cost = tp.groups["cost"].to_numpy()
    every = np.arange(len(tp.groups))
    m.yearly_budget = pyo.Constraint(m.Y, rule=lambda m, t: pyo.quicksum(_terms(m, every, cost, tp.profile["cost"], t))
                                     + herd_cost * pyo.quicksum(m.herd_bought[v, t] for v in m.V)
                                     - _year_slack(m, "yearly_budget", t) <= float(tp.yearly_budget[t]))


def yearly_labour(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Labour each year within the village's labour days: the rows kept, the land not yet converted at its
    current use's days, the land converted at the option's days by age, and the herd:
    :math:`\sum_{a \in K_v} L_a x_a + \sum_{q \in v} \big[l^{\mathrm{cur}}_q (A_q(x) - \sum_{\tau \le t}
    E_{q,\tau}) + \sum_{\tau \le t} l_q \lambda_q(t-\tau) E_{q,\tau}\big] + \lambda_h \sum_{\tau \le t} b_{v,\tau}
    \le \mathrm{labour}_v`."""
    p = tp.problem
    days = p.allowed["labour"].to_numpy()
    keep = tp.row_group < 0
    per_head = float(p.params["livestock"]["labour_days_per_head"])
    available = p.villages["labour_days"].to_numpy()
    current = tp.groups["current_labour"].to_numpy()
    labour = tp.groups["labour"].to_numpy()
    by_age = labour[:, None] * increments(tp.profile["labour"])  # the option's days by age, less the current use's
    by_age[:, 0] -= current

    def rule(m: pyo.ConcreteModel, v: int, t: int) -> Any:
        rows = m._rows_village[v]
        rows = rows[keep[rows]]
        own = m._groups_of_village[v]
        kept = pyo.quicksum(float(days[a]) * m.x[int(a)] for a in rows if days[a])
        waiting = pyo.quicksum(float(current[q]) * m.established[int(q), tp.horizon - 1] for q in own if current[q])
        converted = pyo.quicksum(_age_terms(m, own, by_age, t))
        herd = per_head * pyo.quicksum(m.herd_bought[v, tau] for tau in range(t + 1))
        return (kept + waiting + converted + herd - _year_slack(m, "yearly_labour", (v, t)) <= float(available[v]))

    m.yearly_labour = pyo.Constraint(m.V, m.Y, rule=rule)


def yearly_income(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Each village's income by product and year, at catalog prices (``product_income``):
    :math:`I_{v,k,t} = \sum_{q \in (v,k)} \sum_{\tau \le t} i_q \rho_q(t-\tau) E_{q,\tau}
    + \sum_{g \in k, j} f_{g,j}\, i_g\, z_{v,g,j,t}` for an option k (the price-stepped variants g sell their
    income-bearing area :math:`\sum_j z_{v,g,j,t} = \sum_{q \in (v,g)} \sum_{\tau \le t} \rho_q(t-\tau)
    E_{q,\tau}` in steps of county-wide width, as in the core's ``market``); the herd
    :math:`I_{v,\mathrm{livestock},t} = \pi \sum_{\tau \le t} \eta(t-\tau) b_{v,\tau}`; the current uses still
    in place :math:`I_{v,\mathrm{current},t} = \sum_{a \in K_v} I_a x_a + \sum_{q \in v} c_q (A_q(x) -
    \sum_{\tau \le t} E_{q,\tau})`; compensation paid
    :math:`C_{v,t} = \sum_{q \in v} \sum_{\tau \le t} \mathrm{comp}_q\, \gamma_q(t-\tau) E_{q,\tau}`.
    The village's income in scenario :math:`\omega`:

    .. math:: Y_{v,t,\omega} = N_v + \sum_k f_{k,\omega,t} I_{v,k,t} + C_{v,t} + w\, r_{v,t} + \sigma_{v,t}

    Ranger wages (:math:`w`, seed 002), compensation and subsidy do not depend on prices. The core's yearly
    ``transfer_budget`` holds in every year: :math:`\sum_v C_{v,t} + w\, r_{v,t} \le B^{\mathrm{transfer}}`;
    the ``subsidy_budget`` over the horizon: :math:`\sum_{v,t} \sigma_{v,t} \le S`."""
    p = tp.problem
    g = tp.groups
    products = tp.prices.products
    live_k, current_k = products.index(LIVESTOCK), products.index(CURRENT)
    income_rows = p.allowed["income"].to_numpy()
    keep = tp.row_group < 0
    income = g["income"].to_numpy()
    current = g["current_income"].to_numpy()
    comp = g["compensation"].to_numpy()
    product = g["product"].to_numpy()
    per_head = float(p.params["livestock"]["net_income_per_head"])
    ones = np.ones((len(g), tp.horizon))
    schedule = {f"{o}.{v}": price_schedule(p, o, v) for o, v in p.price_steps}  # (yuan per mu, width) per step
    pair = (g["option"] + "." + g["variant"]).to_numpy()
    priced = g["priced"].to_numpy()
    step_keys: dict[tuple[int, str, int], list[int]] = {}
    for (v, gg, k, t) in m.ZY:
        step_keys.setdefault((v, gg, t), []).append(k)

    def define(m: pyo.ConcreteModel, v: int, k: int, t: int) -> Any:
        own = m._groups_of_village[v]
        if k == live_k:
            value = per_head * pyo.quicksum(float(tp.livestock_profile[t - tau]) * m.herd_bought[v, tau]
                                            for tau in range(t + 1))
        elif k == current_k:
            rows = m._rows_village[v]
            rows = rows[keep[rows]]
            value = (pyo.quicksum(float(income_rows[a]) * m.x[int(a)] for a in rows if income_rows[a])
                     + pyo.quicksum(float(current[q]) * m.established[int(q), tp.horizon - 1]
                                    for q in own if current[q])
                     - pyo.quicksum(_terms(m, own, current, ones, t)))
        else:
            mine = own[product[own] == k]
            value = pyo.quicksum(_terms(m, mine, income, tp.profile["income"], t))
            for gg in sorted(set(pair[mine[priced[mine]]])):
                value += pyo.quicksum(schedule[gg][0][j] * m.step_area[v, gg, j, t] for j in step_keys[(v, gg, t)])
        return m.product_income[v, k, t] == value

    m.product_income_def = pyo.Constraint(m.V, m.P, m.Y, rule=define)
    m.compensation_def = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: m.compensation_paid[v, t] == pyo.quicksum(
        _terms(m, m._groups_of_village[v], comp, tp.profile["compensation"], t)))

    def link(m: pyo.ConcreteModel, v: int, gg: str, t: int) -> Any:
        own = m._groups_of_village[v]
        mine = own[(pair[own] == gg) & priced[own]]
        bearing = _terms(m, mine, np.ones(len(g)), tp.profile["income"], t)
        return pyo.quicksum(m.step_area[v, gg, j, t] for j in step_keys[(v, gg, t)]) == pyo.quicksum(bearing)

    m.price_step_link_year = pyo.Constraint(sorted(step_keys), rule=link)
    sold: dict[tuple[str, int, int], list[int]] = {}  # the villages selling in each (variant, bounded step, year)
    for (v, gg, k, t) in m.ZY:
        if np.isfinite(schedule[gg][1][k]):
            sold.setdefault((gg, k, t), []).append(v)
    m.price_step_width_year = pyo.Constraint(
        sorted(sold), rule=lambda m, gg, k, t: pyo.quicksum(m.step_area[v, gg, k, t] for v in sold[(gg, k, t)])
        <= float(schedule[gg][1][k]))

    nonland = (p.villages["nonland_income_per_capita"] * p.villages["population"]).to_numpy()
    wage = float(p.params["rangers"]["wage_per_post"])
    factor = tp.prices.factor
    subsidy = hasattr(m, "subsidy")

    def scenario_income(m: pyo.ConcreteModel, v: int, t: int, s: int) -> Any:
        return (float(nonland[v]) + pyo.quicksum(float(factor[s, k, t]) * m.product_income[v, k, t] for k in m.P)
                + m.compensation_paid[v, t] + wage * m.posts_staffed[v, t] + (m.subsidy[v, t] if subsidy else 0))

    m.income_year = pyo.Expression(m.V, m.Y, m.S_scen, rule=scenario_income)
    mean = tp.prices.mean
    m.expected_income_year = pyo.Expression(m.V, m.Y, rule=lambda m, v, t: float(nonland[v]) + pyo.quicksum(
        float(mean[k, t]) * m.product_income[v, k, t] for k in m.P) + m.compensation_paid[v, t]
        + wage * m.posts_staffed[v, t] + (m.subsidy[v, t] if subsidy else 0))
    if p.params.get("transfer_budget") is not None:
        limit = float(p.params["transfer_budget"])
        m.transfer_budget_year = pyo.Constraint(m.Y, rule=lambda m, t: pyo.quicksum(
            m.compensation_paid[v, t] + wage * m.posts_staffed[v, t] for v in m.V) <= limit)
    if subsidy:
        m.subsidy_budget = pyo.Constraint(expr=pyo.quicksum(m.subsidy[v, t] for v in m.V for t in m.Y)
                                          <= float(tp.config.subsidy_budget))


def income_floor_years(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""The floor in every year. Always at average prices (``average_floor``):
    :math:`\sum_\omega p_\omega Y_{v,t,\omega} \ge F_v\, \mathrm{pop}_v`; and by the scenario's risk measure, with
    the shortfall :math:`s_{v,t,\omega} \ge F_v \mathrm{pop}_v - Y_{v,t,\omega}`, :math:`s \ge 0`:

    - ``robust_floor``: :math:`Y_{v,t,\omega} \ge F_v\, \mathrm{pop}_v` for every scenario;
    - ``cvar_floor``: :math:`\eta_{v,t} + \frac{1}{1-\alpha} \sum_\omega p_\omega u_{v,t,\omega} \le \bar s\,
      \mathrm{pop}_v` with :math:`u_{v,t,\omega} \ge s_{v,t,\omega} - \eta_{v,t}`, :math:`u, \eta \ge 0`
      (Rockafellar and Uryasev 2000: the mean shortfall in the worst :math:`1-\alpha` of the scenarios);
    - ``icc_floor``: :math:`\sum_\omega p_\omega s_{v,t,\omega} \le \bar s\, \mathrm{pop}_v` (integrated chance
      constraint, Klein Haneveld 1986: the expected shortfall),

    :math:`\bar s` the scenario's ``max_shortfall`` in yuan per capita. The floor :math:`F_v` is the core's."""
    p = tp.problem
    need = p.floors_total()
    population = p.villages["population"].to_numpy(dtype=float)
    risk = tp.risk
    m.average_floor = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: m.expected_income_year[v, t]
                                     + _year_slack(m, "average_floor", (v, t)) >= float(need[v]))
    if risk.measure == "robust":
        m.robust_floor = pyo.Constraint(m.V, m.Y, m.S_scen, rule=lambda m, v, t, s: m.income_year[v, t, s]
                                        + _year_slack(m, "robust_floor", (v, t)) >= float(need[v]))
        return
    if risk.measure not in ("cvar", "icc"):
        return
    m.shortfall = pyo.Var(m.V, m.Y, m.S_scen, domain=pyo.NonNegativeReals)
    m.shortfall_def = pyo.Constraint(m.V, m.Y, m.S_scen, rule=lambda m, v, t, s: m.shortfall[v, t, s]
                                     >= float(need[v]) - m.income_year[v, t, s])
    probability = tp.prices.probability
    limit = float(risk.max_shortfall)
    if risk.measure == "icc":
        m.icc_floor = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: pyo.quicksum(
            float(probability[s]) * m.shortfall[v, t, s] for s in m.S_scen)
            - _year_slack(m, "icc_floor", (v, t)) <= limit * float(population[v]))
        return
    m.var_level = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    m.tail_excess = pyo.Var(m.V, m.Y, m.S_scen, domain=pyo.NonNegativeReals)
    m.tail_excess_def = pyo.Constraint(m.V, m.Y, m.S_scen, rule=lambda m, v, t, s: m.tail_excess[v, t, s]
                                       >= m.shortfall[v, t, s] - m.var_level[v, t])
    alpha = float(risk.alpha)
    m.cvar_floor = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: m.var_level[v, t] + pyo.quicksum(
        float(probability[s]) * m.tail_excess[v, t, s] for s in m.S_scen) / (1 - alpha)
        - _year_slack(m, "cvar_floor", (v, t)) <= limit * float(population[v]))


FAMILIES = {
    "phasing_variables": phasing_variables,
    "phase_complete": phase_complete,
    "phasing_cap": phasing_cap,
    "yearly_herd_and_posts": yearly_herd_and_posts,
    "yearly_budget": yearly_budget,
    "yearly_labour": yearly_labour,
    "yearly_income": yearly_income,
    "income_floor_years": income_floor_years,
}
"""The transition families in build order, added to the core model."""

ELASTIC_YEAR_FAMILIES = ("average_floor", "robust_floor", "cvar_floor", "icc_floor", "yearly_budget", "yearly_labour")


def _year_slack(m: pyo.ConcreteModel, family: str, key: Any) -> Any:
    """A nonnegative slack on (family, key) in the elastic model that explains an infeasible transition; else 0."""
    if not getattr(m, "_elastic_years", False):
        return 0
    if not hasattr(m, "year_slack"):
        m.year_slack = pyo.Var(pyo.Any, dense=False, domain=pyo.NonNegativeReals)
    where = "|".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
    return m.year_slack[f"{family}|{where}"]


def add_transition(m: pyo.ConcreteModel, tp: TransitionProblem, elastic: bool = False) -> None:
    """Add the transition families to a built core model."""
    m._elastic_years = elastic
    for family in FAMILIES.values():
        family(m, tp)


def cumulated_index(m: pyo.ConcreteModel, tp: TransitionProblem, scales: dict[str, float]) -> Any:
    r"""The mean yearly service index over the horizon, :math:`\frac{1}{H} \sum_s \frac{w_s}{G^*_s} \sum_t
    \sum_q \bar g_{q,s} \sum_{\tau \le t} \varsigma_q(t-\tau) E_{q,\tau}` (:math:`\bar g` the group's
    area-weighted mean gain per mu, :math:`\varsigma` its ``services`` profile)."""
    every = np.arange(len(tp.groups))
    total = 0
    for service, weight in tp.problem.params["weights"].items():
        if not weight or not scales.get(service):
            continue
        gain = tp.groups[f"gain_{service}"].to_numpy()
        # summed over the years the steps telescope: D[q, s] counts the profile's factor at age H - 1 - s
        tail = tp.profile["services"][:, ::-1]
        terms = [float(gain[q] * tail[q, s]) * m.established[int(q), s] for q in every for s in range(tp.horizon)
                 if gain[q] * tail[q, s] != 0.0]
        total += float(weight) / float(scales[service]) / tp.horizon * pyo.quicksum(terms)
    return total


def transition_objective(m: pyo.ConcreteModel, tp: TransitionProblem, scales: dict[str, float]) -> tuple[Any, str]:
    r"""The objective over the horizon: ``end`` the scenario's core objective at maturity (its phasing then
    polished by :func:`polish_phasing`); ``cumulated`` :func:`cumulated_index`; ``discounted_income``
    :math:`\sum_t (1+d)^{-(t-1)} \sum_v \mathrm{E}_\omega Y_{v,t,\omega}`."""
    p = tp.problem
    kind = tp.config.objective
    if kind == "end":
        return objective_expression(m, p.params["objective"], p.params.get("weights"), scales), p.params["sense"]
    if kind == "discounted_income":
        return discounted_income(m, tp), "max"
    return cumulated_index(m, tp, scales), "max"


def discounted_income(m: pyo.ConcreteModel, tp: TransitionProblem) -> Any:
    r"""The villages' expected incomes over the horizon, discounted: :math:`\sum_t (1+d)^{-(t-1)} \sum_v
    \mathrm{E}_\omega Y_{v,t,\omega}`."""
    rate = float(tp.config.discount_rate)
    return pyo.quicksum((1 + rate) ** (-t) * m.expected_income_year[v, t] for v in m.V for t in m.Y)


def polish_phasing(backend: PyomoBackend, tp: TransitionProblem, scales: dict[str, float],
                   options: SolverOptions) -> SolveResult:
    """With the plan at maturity fixed (x, herd, posts), the phasing that brings the gains earliest: maximise the
    cumulated service index (or, without one, the discounted income) over the phasing alone, an LP. The ``end``
    objective cannot tell two phasings apart, and a MIP stopped at its gap leaves the years wherever its search
    left them (on the demo: 9,500 mu closed in the last year with no reason); this second, lexicographic stage
    gives the years a meaning and makes them reproducible. The variables are unfixed afterwards."""
    m = backend._model()
    fixed = [var for var in (*m.x.values(), *m.herd.values(), *m.posts.values()) if not var.fixed]
    for var in fixed:
        var.fix(round(pyo.value(var, exception=False) or 0.0))
    m.del_component("objective")
    m.objective = pyo.Objective(expr=cumulated_index(m, tp, scales) if scales else discounted_income(m, tp),
                                sense=pyo.maximize)
    backend._compiled = None
    try:
        return backend.solve(options)
    finally:
        for var in fixed:
            var.unfix()


# --------------------------------------------------------------------------------------------------- the plan
@dataclass
class TransitionPlan:
    """The years of a plan, as arrays: the core plan at maturity and its phasing."""

    core: Solution
    establish: np.ndarray
    """(groups, H) mu established per year."""
    herd_bought: np.ndarray
    """(villages, H)"""
    posts_staffed: np.ndarray
    """(villages, H)"""
    subsidy: np.ndarray
    """(villages, H)"""
    step_area: dict[tuple[int, str, int, int], float] = field(default_factory=dict)


def read_plan(m: pyo.ConcreteModel, tp: TransitionProblem, core: Solution) -> TransitionPlan:
    """The transition plan of the last solve, read from the Pyomo variables."""
    n_v, H = len(tp.problem.villages), tp.horizon

    def grid(var: Any, rows: int) -> np.ndarray:
        return np.array([[pyo.value(var[i, t], exception=False) or 0.0 for t in range(H)] for i in range(rows)],
                        dtype=float).reshape(rows, H)

    subsidy = grid(m.subsidy, n_v) if hasattr(m, "subsidy") else np.zeros((n_v, H))
    established = grid(m.established, len(tp.groups))
    return TransitionPlan(core=core, establish=np.maximum(np.diff(established, axis=1, prepend=0.0), 0.0),
                          herd_bought=np.maximum(grid(m.herd_bought, n_v), 0.0),
                          posts_staffed=np.maximum(grid(m.posts_staffed, n_v), 0.0), subsidy=np.maximum(subsidy, 0.0),
                          step_area={k: float(pyo.value(m.step_area[k], exception=False) or 0.0) for k in m.ZY})


def immediate_plan(tp: TransitionProblem, core: Solution) -> TransitionPlan:
    """The steady-state plan as most plans are carried out: every conversion and the whole herd in year 1, every
    post staffed as soon as the hills are closed (for comparing with a phased plan)."""
    n_v, H = len(tp.problem.villages), tp.horizon
    final = final_areas(tp, core.x)
    establish = np.zeros((len(tp.groups), H))
    establish[:, 0] = final
    herd = np.zeros((n_v, H))
    herd[:, 0] = core.herd
    posts = np.repeat(np.asarray(core.posts, dtype=float)[:, None], H, axis=1)
    return TransitionPlan(core=core, establish=establish, herd_bought=herd, posts_staffed=posts,
                          subsidy=np.zeros((n_v, H)))


def final_areas(tp: TransitionProblem, x: np.ndarray) -> np.ndarray:
    """A_q(x) per group."""
    area = tp.problem.allowed["area"].to_numpy(dtype=float)
    chosen = (np.asarray(x) > 0.5) & (tp.row_group >= 0)
    return np.bincount(tp.row_group[chosen], weights=area[chosen], minlength=len(tp.groups))


# --------------------------------------------------------------------------------------------------- accounts
@dataclass
class YearlyAccounts:
    """Every yearly quantity of a transition plan, recomputed from the plan with numpy (independently of the
    Pyomo model), so that a plan can be checked against every transition family."""

    income: np.ndarray
    """(villages, H, scenarios) yuan"""
    expected_income: np.ndarray
    """(villages, H)"""
    need: np.ndarray
    """(villages,) floor x population"""
    parts: dict[str, np.ndarray]
    """(villages, H) at average prices: nonland, current, each option, livestock, compensation, wages, subsidy"""
    labour: np.ndarray
    """(villages, H) days"""
    cost: np.ndarray
    """(H,) establishment spending"""
    transfers: np.ndarray
    """(H,) compensation + wages"""
    herd: np.ndarray
    """(villages, H) head"""
    feed: np.ndarray
    """(villages, H) head the grass established so far can feed"""
    guarded: np.ndarray
    """(villages, H) mu closed so far"""


def _convolve(establish: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """out[q, t] = sum_{tau <= t} profile[q, t - tau] establish[q, tau]."""
    H = establish.shape[1]
    out = np.zeros_like(establish)
    for tau in range(H):
        out[:, tau:] += establish[:, [tau]] * profile[:, :H - tau]
    return out


def _step_income(tp: TransitionProblem, bearing: np.ndarray) -> np.ndarray:
    """(groups, H) income of price-stepped groups: the plan's step areas if given are used by `accounts`; this is
    the market's proportional rule (every village gets the county's average step factor) for a plan without them."""
    p = tp.problem
    g = tp.groups
    out = np.zeros_like(bearing)
    for option, variant in p.price_steps:
        mine = np.flatnonzero(g["priced"].to_numpy() & (g["option"].to_numpy() == option)
                              & (g["variant"].to_numpy() == variant))
        if not len(mine):
            continue
        rates, widths = price_schedule(p, option, variant)
        total = bearing[mine].sum(axis=0)
        revenue = fill_steps(total, rates, widths, best=True)  # the steps fill from the best-paying one
        out[mine] = bearing[mine] * np.divide(revenue, total, out=np.zeros_like(total), where=total > 0)
    return out


def accounts(tp: TransitionProblem, plan: TransitionPlan) -> YearlyAccounts:
    """Recompute every yearly quantity of a plan."""
    p = tp.problem
    g = tp.groups
    H, n_v = tp.horizon, len(p.villages)
    a = p.allowed
    x = np.asarray(plan.core.x) > 0.5
    keep = (tp.row_group < 0) & x
    village_of_group = g["village"].to_numpy()
    E = plan.establish
    done = np.cumsum(E, axis=1)
    final = final_areas(tp, plan.core.x)
    waiting = final[:, None] - done

    def per_village(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n_v, values.shape[1]))
        np.add.at(out, village_of_group, values)
        return out

    def kept(column: str) -> np.ndarray:
        return np.bincount(a["village"].to_numpy()[keep], weights=a[column].to_numpy()[keep], minlength=n_v)

    bearing = _convolve(E, tp.profile["income"])
    option_income = g["income"].to_numpy()[:, None] * bearing
    if not plan.step_area:  # a plan without its step areas: the market's proportional rule
        option_income = option_income + _step_income(tp, bearing)
    products = tp.prices.products
    product_income = np.zeros((n_v, len(products), H))
    product = g["product"].to_numpy()
    for k in range(len(products) - 2):
        product_income[:, k, :] = per_village(option_income * (product == k)[:, None])
    if plan.step_area:
        rates = {f"{o}.{v}": price_schedule(p, o, v)[0] for o, v in p.price_steps}
        for (v, gg, j, t), area in plan.step_area.items():
            product_income[v, products.index(gg.split(".")[0]), t] += rates[gg][j] * area
    livestock = p.params["livestock"]
    herd = np.cumsum(plan.herd_bought, axis=1)
    bought_income = np.zeros((n_v, H))
    for tau in range(H):
        bought_income[:, tau:] += plan.herd_bought[:, [tau]] * tp.livestock_profile[None, :H - tau]
    product_income[:, products.index(LIVESTOCK), :] = float(livestock["net_income_per_head"]) * bought_income
    current = kept("income")[:, None] + per_village(g["current_income"].to_numpy()[:, None] * waiting)
    product_income[:, products.index(CURRENT), :] = current
    compensation = per_village(g["compensation"].to_numpy()[:, None] * _convolve(E, tp.profile["compensation"]))
    wage = float(p.params["rangers"]["wage_per_post"])
    wages = wage * plan.posts_staffed
    nonland = (p.villages["nonland_income_per_capita"] * p.villages["population"]).to_numpy()
    base = nonland[:, None] + compensation + wages + plan.subsidy
    income = base[:, :, None] + np.einsum("skt,vkt->vts", tp.prices.factor, product_income)
    expected = base + np.einsum("kt,vkt->vt", tp.prices.mean, product_income)
    parts = {"nonland": np.repeat(nonland[:, None], H, axis=1), "compensation": compensation, "wages": wages,
             "subsidy": plan.subsidy}
    for k, name in enumerate(products):
        parts[name] = tp.prices.mean[k][None, :] * product_income[:, k, :]
    labour = (kept("labour")[:, None] + per_village(g["current_labour"].to_numpy()[:, None] * waiting)
              + per_village(g["labour"].to_numpy()[:, None] * _convolve(E, tp.profile["labour"]))
              + float(livestock["labour_days_per_head"]) * herd)
    herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
    cost = (g["cost"].to_numpy()[:, None] * _convolve(E, tp.profile["cost"])).sum(axis=0) + herd_cost * (
        plan.herd_bought.sum(axis=0))
    kappa = float(livestock["head_per_mu"])
    feed = kappa * per_village(g["feeds_herd"].to_numpy()[:, None] * bearing)
    guarded = per_village(g["ranger"].to_numpy()[:, None] * done)
    return YearlyAccounts(income=income, expected_income=expected, need=p.floors_total(), parts=parts, labour=labour,
                          cost=cost, transfers=(compensation + wages).sum(axis=0), herd=herd, feed=feed,
                          guarded=guarded)


def _broken(family: str, where: str, amount: float, unit: str) -> Violation:
    """A broken transition row, as optiland.check reports any broken row: family, key, message, amount."""
    return Violation(family, where, f"{where}: off by {amount:,.2f} {unit}", float(amount))


def check_plan(tp: TransitionProblem, plan: TransitionPlan, tol: float = 1e-6) -> list[Violation]:
    """Every transition family the plan breaks (empty: it keeps them all), from `accounts`."""
    acc = accounts(tp, plan)
    p = tp.problem
    names = list(p.villages["village"])
    out: list[Violation] = []

    def slack(value: float, scale: float) -> bool:
        return value > tol * max(1.0, abs(scale))

    final = final_areas(tp, plan.core.x)
    done = plan.establish.sum(axis=1)
    for q in np.flatnonzero(np.abs(done - final) > tol * np.maximum(1.0, final)):
        row = tp.groups.iloc[q]
        out.append(_broken("phase_complete", f"{names[row.village]} {row.option}.{row.variant}",
                             float(done[q] - final[q]), "mu"))
    herd_gap = plan.herd_bought.sum(axis=1) - np.asarray(plan.core.herd, dtype=float)
    out += [_broken("herd_complete", names[v], float(herd_gap[v]), "head")
            for v in np.flatnonzero(np.abs(herd_gap) > tol * 10)]
    H = tp.horizon
    for v in range(len(names)):
        for t in range(H):
            where = f"{names[v]} year {t + 1}"
            if slack(acc.need[v] - acc.expected_income[v, t], acc.need[v]):
                out.append(_broken("average_floor", where, float(acc.need[v] - acc.expected_income[v, t]), "yuan"))
            if slack(acc.labour[v, t] - float(p.villages["labour_days"].iloc[v]), acc.labour[v, t]):
                out.append(_broken("yearly_labour", where,
                                     float(acc.labour[v, t] - p.villages["labour_days"].iloc[v]), "days"))
            if slack(acc.herd[v, t] - acc.feed[v, t], acc.herd[v, t]):
                out.append(_broken("herd_feed", where, float(acc.herd[v, t] - acc.feed[v, t]), "head"))
            mu = float(p.params["rangers"]["mu_per_post"])
            if slack(mu * plan.posts_staffed[v, t] - acc.guarded[v, t], acc.guarded[v, t]):
                out.append(_broken("posts_area", where, float(mu * plan.posts_staffed[v, t] - acc.guarded[v, t]),
                                     "mu"))
            if slack(plan.posts_staffed[v, t] - float(plan.core.posts[v]), 1.0):
                out.append(_broken("posts_cap", where, float(plan.posts_staffed[v, t] - plan.core.posts[v]),
                                     "posts"))
    out += _risk_violations(tp, acc, names, slack)
    if tp.yearly_budget is not None:
        for t in np.flatnonzero([slack(c - b, b) for c, b in zip(acc.cost, tp.yearly_budget, strict=True)]):
            out.append(_broken("yearly_budget", f"year {t + 1}", float(acc.cost[t] - tp.yearly_budget[t]), "yuan"))
    limit = p.params.get("transfer_budget")
    if limit is not None:
        for t in np.flatnonzero([slack(value - limit, limit) for value in acc.transfers]):
            out.append(_broken("transfer_budget_year", f"year {t + 1}", float(acc.transfers[t] - limit), "yuan"))
    if slack(plan.subsidy.sum() - tp.config.subsidy_budget, tp.config.subsidy_budget):
        out.append(_broken("subsidy_budget", "horizon", float(plan.subsidy.sum() - tp.config.subsidy_budget),
                             "yuan"))
    if tp.phasing is not None:
        option = tp.groups["option"].to_numpy()
        village = tp.groups["village"].to_numpy()
        cumulative = np.cumsum(plan.establish, axis=1)
        for v, o in sorted(set(zip(village, option, strict=True))):
            own = (village == v) & (option == o)
            for t in range(H):
                excess = cumulative[own, t].sum() - tp.phasing[t] * final[own].sum()
                if slack(excess, final[own].sum()):
                    out.append(_broken("phasing_cap", f"{names[v]} {o} year {t + 1}", float(excess), "mu"))
    return out


def shortfall(acc: YearlyAccounts) -> np.ndarray:
    """(villages, H, scenarios) yuan below the floor (0 where above)."""
    return np.maximum(acc.need[:, None, None] - acc.income, 0.0)


def cvar(values: np.ndarray, probability: np.ndarray, alpha: float) -> float:
    """CVaR_alpha of a discrete loss: the mean of the worst 1 - alpha of the probability mass."""
    order = np.argsort(values)[::-1]
    mass, total, tail = 0.0, 0.0, 1.0 - alpha
    for i in order:
        take = min(float(probability[i]), tail - mass)
        if take <= 0:
            break
        total += take * float(values[i])
        mass += take
    return total / tail


def _risk_violations(tp: TransitionProblem, acc: YearlyAccounts, names: list[str], slack: Any) -> list[Violation]:
    risk = tp.risk
    out: list[Violation] = []
    gap = shortfall(acc)
    population = tp.problem.villages["population"].to_numpy(dtype=float)
    for v in range(len(names)):
        limit = risk.max_shortfall * population[v]
        for t in range(tp.horizon):
            where = f"{names[v]} year {t + 1}"
            if risk.measure == "robust":
                worst = int(np.argmax(gap[v, t]))
                if slack(gap[v, t, worst], acc.need[v]):
                    out.append(_broken("robust_floor", f"{where} scenario {tp.prices.names[worst]}",
                                         float(gap[v, t, worst]), "yuan"))
            elif risk.measure == "icc":
                expected = float(tp.prices.probability @ gap[v, t])
                if slack(expected - limit, acc.need[v]):
                    out.append(_broken("icc_floor", where, expected - limit, "yuan"))
            elif risk.measure == "cvar":
                value = cvar(gap[v, t], tp.prices.probability, risk.alpha)
                if slack(value - limit, acc.need[v]):
                    out.append(_broken("cvar_floor", where, value - limit, "yuan"))
    return out


# --------------------------------------------------------------------------------------------------- solving
@dataclass
class TransitionOutcome:
    """A solved transition: the plan, its accounts, the solver's account, sizes and times."""

    tp: TransitionProblem
    plan: TransitionPlan
    accounts: YearlyAccounts
    result: SolveResult
    objective_name: str
    es_scale: dict[str, float]
    model_size: dict[str, int]
    times: dict[str, float]
    notes: list[str] = field(default_factory=list)


def _explain(tp: TransitionProblem, scales: dict[str, float], options: SolverOptions) -> InfeasibleError:
    """Solve the elastic model (slacks on the yearly floors, budgets and labour) and name what falls short."""
    from optiland.model.formulation import build_model

    m = build_model(tp.problem)
    add_transition(m, tp, elastic=True)
    need = tp.problem.floors_total()
    if not hasattr(m, "year_slack"):
        return InfeasibleError("the transition has no plan (no yearly row can be relaxed to find why)")
    scale = {"average_floor": 1.0, "robust_floor": 1.0, "cvar_floor": 1.0, "icc_floor": 1.0, "yearly_budget": 1.0,
             "yearly_labour": 100.0}
    m.objective = pyo.Objective(expr=pyo.quicksum(scale[str(k).split("|")[0]] * m.year_slack[k] for k in m.year_slack),
                                sense=pyo.minimize)
    backend = PyomoBackend()
    backend.model, backend.problem = m, tp.problem
    result = backend.solve(options)
    if result.status == Status.TIME_LIMIT and result.x is None:
        return InfeasibleError("the transition has no plan; the time limit ran out before the elastic model could "
                               "show which village and year fall short (give more time)")
    if not result.status.has_plan:
        return InfeasibleError("the transition has no plan, and relaxing its yearly floors, budgets and labour does "
                               "not find one either: the steady-state constraints themselves conflict (run "
                               f"`optiland solve` for their diagnosis); solver: {result.message}")
    names = list(tp.problem.villages["village"])
    lines = []
    for key in m.year_slack:
        value = float(pyo.value(m.year_slack[key]) or 0.0)
        if value <= 1e-6:
            continue
        family, *where = str(key).split("|")
        if len(where) == 2:
            v, t = int(where[0]), int(where[1])
            text = f"{family}: village {names[v]}, year {t + 1}: short by {value:,.0f}"
            if family != "yearly_labour":
                text += f" yuan ({value / float(tp.problem.villages['population'].iloc[v]):,.0f} per capita; " \
                        f"needs {need[v]:,.0f})"
            else:
                text += " labour days"
        else:
            text = f"{family}: year {int(where[0]) + 1}: over by {value:,.0f} yuan"
        lines.append((value, text))
    lines.sort(reverse=True)
    body = "\n".join(f"  - {t}" for _, t in lines[:30]) or "  (no yearly row needed relaxing)"
    more = f"\n  ... and {len(lines) - 30} more" if len(lines) > 30 else ""
    return InfeasibleError("no transition plan keeps every yearly row; the least relaxation that would:\n"
                           + body + more)


def solve_transition(tp: TransitionProblem, options: SolverOptions, scales: dict[str, float] | None = None
                     ) -> TransitionOutcome:
    """Build the core model with the transition families, normalise the service index as the core pipeline does
    (G*_s at maturity, from the core model alone), solve, and recompute the accounts of the plan."""
    from optiland.pipeline.run import _Clock, service_scales

    p = tp.problem
    clock = _Clock(options)
    start = time.perf_counter()
    backend = PyomoBackend()
    backend.build(p)
    build_core = backend.build_seconds
    notes: list[str] = []
    uses_index = p.params["objective"] == "ecosystem_services" or tp.config.objective == "cumulated"
    if scales is None:
        scales = {}
        if uses_index:
            scales, notes = service_scales(backend, p, clock)
    solve_scales = time.perf_counter() - start - build_core
    m = backend._model()
    start_build = time.perf_counter()
    add_transition(m, tp)
    expr, sense = transition_objective(m, tp, scales)
    if hasattr(m, "objective"):
        m.del_component("objective")
    m.objective = pyo.Objective(expr=expr, sense=pyo.maximize if sense == "max" else pyo.minimize)
    backend._compiled = None
    build_years = time.perf_counter() - start_build
    solve_start = time.perf_counter()
    result = backend.solve(clock.options_now())
    if result.status == Status.INFEASIBLE:
        raise _explain(tp, scales, clock.options_now())
    if not result.status.has_plan or result.x is None:
        raise InfeasibleError(f"no transition plan within the time limit: {result.message}")
    core = backend.solution(result)
    lp = backend.last_lp
    assert lp is not None
    n_cols, n_rows, nnz = lp.shape
    plan = read_plan(m, tp, core)
    polish_seconds = 0.0
    if tp.config.objective == "end":
        polish_start = time.perf_counter()
        polished = polish_phasing(backend, tp, scales, clock.options_now())
        polish_seconds = time.perf_counter() - polish_start
        if polished.status.has_plan and polished.x is not None:
            plan = read_plan(m, tp, core)
            polish_name = "cumulated index" if scales else "discounted income"
            notes.append(f"phasing polished with the plan at maturity fixed: {polish_name} "
                         f"{polished.objective:.6g} ({polished.status.value})")
        else:
            notes.append(f"phasing not polished ({polished.message}); the years are those of the first solve")
    return TransitionOutcome(
        tp=tp, plan=plan, accounts=accounts(tp, plan), result=result,
        objective_name=tp.config.objective if tp.config.objective != "end" else p.params["objective"],
        es_scale=scales,
        model_size={"variables": n_cols, "binaries": int(lp.integer.sum()), "constraints": n_rows, "nonzeros": nnz,
                    "groups": len(tp.groups), "years": tp.horizon, "scenarios": len(tp.prices.names),
                    "allowed_rows": len(p.allowed), "parcels": p.n_parcels},
        times={"build_core": build_core, "scales": solve_scales, "build_years": build_years,
               "matrix": backend.matrix_seconds, "solve": time.perf_counter() - solve_start - polish_seconds,
               "polish": polish_seconds},
        notes=notes)
