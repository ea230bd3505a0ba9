"""The transition's data and problem: yearly profiles and price scenarios from the catalog, and the phasing groups
(converted rows grouped by village, option, variant, harvest and the current use's income and labour)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from optiland.errors import InputError, Issue
from optiland.io.catalog import Catalog
from optiland.io.scenario import RiskConfig, TransitionConfig
from optiland.io.tables import duplicate_keys, line, numbers, read_frame, read_table
from optiland.model.problem import PlanningProblem

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
        table = read_frame(file, "profile table", dtype={"variant": str}, keep_default_na=False)
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
    table = read_frame(file, "price risk table")
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
    (1..H; blank: every year). Unlisted products keep factor 1. Read by optiland.io.tables.read_table (Excel's
    encodings, blank lines, error cells); a (scenario, product, year) listed twice with different figures is an
    error naming both lines, and so is a scenario given two probabilities."""
    where = str(path)
    table = read_table(path, "price scenario table", ("scenario", "product", "factor"))
    problems: list[Issue] = []
    for p in np.flatnonzero(~table["product"].isin(products).to_numpy()):
        problems.append(Issue(f"unknown product; known: {', '.join(products)}", file=where, row=line(table, p),
                              column="product", value=table["product"].iloc[p]))
    factors = numbers(table, "factor", where, problems, minimum=0.0)
    if "year" in table.columns:
        years = numbers(table, "year", where, problems, blank=np.nan)
        for p in np.flatnonzero(years.notna().to_numpy()):
            if not (years.iloc[p] == int(years.iloc[p]) and years.iloc[p] >= 1):
                problems.append(Issue("year must be a whole number from 1 (years past the horizon are not "
                                      "planned), or blank",
                                      file=where, row=line(table, p), column="year", value=table["year"].iloc[p]))
    else:
        years = pd.Series(np.nan, index=table.index)
    keyed = table.assign(year=years.fillna(0).astype(str), factor=factors.astype(str))
    problems += duplicate_keys(keyed[["scenario", "product", "year", "factor"]], ("scenario", "product", "year"),
                               where, identical_ok=True, fix="keep the one meant")[1]
    probability = None
    if "probability" in table.columns:
        given = numbers(table, "probability", where, problems, minimum=0.0)
        problems += duplicate_keys(table.assign(probability=given.astype(str))[["scenario", "probability"]],
                                   ("scenario",), where, identical_ok=True, fix="keep the one meant")[1]
        probability = given
    if problems:
        raise InputError(problems)
    names = list(dict.fromkeys(table["scenario"]))
    factor = np.ones((len(names), len(products), horizon))
    for scenario, product, value, year in zip(table["scenario"], table["product"], factors, years, strict=True):
        s, k = names.index(scenario), products.index(product)
        if pd.isna(year):
            factor[s, k, :] = value
        elif year <= horizon:
            factor[s, k, int(year) - 1] = value
    if probability is not None:
        first = probability.groupby(table["scenario"].to_numpy(), sort=False).first()
        chances = first.reindex(names).to_numpy(dtype=float)
        if abs(chances.sum() - 1) > 1e-6:
            raise InputError([Issue("probabilities must be >= 0 and sum to 1 over the scenarios", file=where,
                                    column="probability", value=float(np.nansum(chances)))])
    else:
        chances = np.full(len(names), 1.0 / len(names))
    return PriceScenarios(names, chances, products, factor, f"table {path.name}")


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
