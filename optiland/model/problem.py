"""The planning problem as tidy arrays: the allowed (parcel, option, variant) table with its coefficients, the villages
and townships, and the scenario's targets. Every backend (Pyomo reference, matrix) builds from this one object.

The allowed set encodes three constraint families by construction (nothing outside it is ever created):

- ``red_line``: inside an ecological protection red line only options with ``red_line_allowed``; they earn no harvest
  income there unless ``red_line_harvest`` (seeds: "inside red lines, no production use").
- ``suitability``: slope below the option's (or variant's) ``max_slope_deg``; degradation grade at most the option's
  ``max_grade``; a species only up to the grade its adaptation class allows where the grade applies; current
  cropland cannot be kept at ``cropland_max_slope_deg`` or more (Grain-for-Green; Soil and Water Law Art. 20); an
  option with ``excluded_where`` (a boolean site attribute, e.g. a grazing-ban zone) is not allowed where it is true.
- ``farmland``: permanent basic farmland keeps its current use.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import InputError, Issue
from optiland.io.catalog import NEVER, Catalog, conversion_issues, conversions_frame, read_conversions
from optiland.io.inputs import Inputs
from optiland.io.scenario import Scenario
from optiland.model.spatial import (
    SpatialData,
    add_parcel_costs,
    apply_locks,
    build_spatial,
    read_locks,
    read_parcel_costs,
)


@dataclass
class PlanningProblem:
    """Everything a backend needs, as arrays; row order of `allowed` is the column order of the decision variables."""

    parcels: pd.DataFrame
    villages: pd.DataFrame
    townships: pd.DataFrame
    allowed: pd.DataFrame
    services: list[str]
    params: dict[str, Any]
    catalog: Catalog
    scenario: Scenario | None = None
    market: dict[tuple[str, str], float] = field(default_factory=dict)
    price_steps: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    spatial: SpatialData | None = None
    """Boundary penalty and feature targets (scenario sections [spatial] and [features]); None without them."""

    @property
    def uses_spatial(self) -> bool:
        """Whether the model has the boundary-penalty or feature-target families (the Pyomo backend builds them;
        the matrix backend does not). Locks need no family: they only shrink the allowed set."""
        return self.spatial is not None and (self.spatial.penalised or bool(self.spatial.targets)
                                             or bool(self.spatial.caps))

    @property
    def needs_reference_backend(self) -> bool:
        """Whether only the Pyomo backend builds this problem: spatial families, or parcels in no village (an
        instance without villages, such as a Marxan import)."""
        return self.uses_spatial or bool((self.parcels["village_idx"].to_numpy() < 0).any())

    @property
    def n_parcels(self) -> int:
        """Number of parcels."""
        return len(self.parcels)

    def floors_total(self) -> np.ndarray:
        """Required income per village, yuan/yr: floor x population."""
        return (self.villages["floor"] * self.villages["population"]).to_numpy()

    def no_worse_off_total(self) -> np.ndarray:
        """Income per village the no-worse-off rule requires, yuan/yr: (1 + growth) x today's income (non-land
        income plus the current uses' land income); NaN where the village has no such target."""
        growth = self.villages["growth"].to_numpy(dtype=float)
        return (1.0 + growth) * self.villages["income_before"].to_numpy(dtype=float)


def village_sum(village_idx: np.ndarray, weights: np.ndarray, n_villages: int) -> np.ndarray:
    """Per-village sums; parcels in no village (index -1: an instance without villages, such as a Marxan import)
    count in none."""
    village_idx = np.asarray(village_idx, dtype=np.int64)
    inside = village_idx >= 0
    return np.bincount(village_idx[inside], weights=np.asarray(weights, dtype=float)[inside],
                       minlength=n_villages).astype(float)


def fill_steps(area: np.ndarray, rates: list[float], widths: list[float], best: bool) -> np.ndarray:
    """Revenue of `area` put into steps of the given widths, highest-paying first (best) or lowest first."""
    remaining = np.asarray(area, dtype=float).copy()
    revenue = np.zeros_like(remaining)
    for k in sorted(range(len(rates)), key=lambda k: rates[k], reverse=best):
        take = np.minimum(remaining, widths[k])
        revenue += rates[k] * take
        remaining -= take
    return revenue


def price_schedule(problem: PlanningProblem, option: str, variant: str) -> tuple[list[float], list[float]]:
    """Yuan per mu and width (mu) of each price step: step 0 from 0 mu at factor 1, the last unbounded."""
    per_mu = float(problem.catalog.variants.loc[(option, variant), "net_income_per_mu"])
    steps = problem.price_steps[(option, variant)]
    starts = [0.0] + [start for start, _ in steps]
    rates = [per_mu] + [factor * per_mu for _, factor in steps]
    widths = [starts[k + 1] - starts[k] for k in range(len(steps))] + [np.inf]
    return rates, widths


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


@dataclass
class _Rule:
    """One reason a (parcel, variant) pair is forbidden: a mask over parcels, a sentence, and its family
    (red_line, farmland or suitability)."""

    mask: np.ndarray
    reason: str
    family: str = "suitability"


def variant_table(catalog: Catalog) -> pd.DataFrame:
    """One row per decision kind: the keep option first, then every variant, with option attributes joined."""
    keep = catalog.keep_option
    rows = [{"option": keep, "variant": keep}]
    rows += [{"option": o, "variant": v} for o, v in catalog.variants.index if o != keep]
    table = pd.DataFrame(rows)
    table = table.join(catalog.options, on="option")
    variant_cols = catalog.variants.drop(columns=[c for c in catalog.variants.columns if c in table.columns],
                                         errors="ignore")
    table = table.join(variant_cols, on=["option", "variant"])
    if "max_slope_deg" in catalog.variants.columns:  # a variant's own slope limit wins; blank inherits the option's
        own = catalog.variants["max_slope_deg"].reindex(pd.MultiIndex.from_frame(table[["option", "variant"]]))
        table["max_slope_deg"] = own.to_numpy(dtype=float) if own.notna().any() else table["max_slope_deg"]
        table["max_slope_deg"] = table["max_slope_deg"].where(own.notna().to_numpy(),
                                                              catalog.options["max_slope_deg"].reindex(
                                                                  table["option"]).to_numpy())
    return table.reset_index(drop=True)


def _codes_match(land_use: np.ndarray, classes: np.ndarray, codes: str) -> np.ndarray:
    """Parcels whose land-survey code is one of `codes` (';'-separated); a two-digit code stands for its class
    (`classes`: each parcel's first two digits)."""
    wanted = [c.strip() for c in codes.split(";") if c.strip()]
    if "*" in wanted:
        return np.ones(len(land_use), dtype=bool)
    return np.isin(land_use, wanted) | np.isin(classes, [c for c in wanted if len(c) == 2])


def conversion_rules(catalog: Catalog, parcels: pd.DataFrame, kinds: pd.DataFrame) -> list[list[_Rule]]:
    """Per decision kind other than keep, the rows of the catalog's conversion table that forbid it: rows are read
    top to bottom and, for each parcel, the first whose conditions hold (current use, basic farmland, slope, and the
    kind among its `to`) decides; a parcel no row matches may change as its other site rules allow."""
    table = catalog.conversions
    out: list[list[_Rule]] = [[] for _ in range(len(kinds))]
    if table is None or not len(table):
        return out
    codes = parcels["land_use"].astype(str)
    land_use, classes = codes.to_numpy(dtype=object), codes.str[:2].to_numpy(dtype=object)
    slope = parcels["slope_deg"].to_numpy(dtype=float)
    farmland = parcels["basic_farmland"].to_numpy(dtype=bool)
    red = parcels["red_line"].to_numpy(dtype=bool)
    conditions = []
    for row in table.itertuples(index=False):
        cond = _codes_match(land_use, classes, str(row.current_use))
        if not _blank(row.red_line):
            cond &= red == bool(row.red_line)
        if not _blank(row.basic_farmland):
            cond &= farmland == bool(row.basic_farmland)
        if not _blank(row.min_slope_deg):
            cond &= slope >= float(row.min_slope_deg)
        if not _blank(row.max_slope_deg):
            cond &= slope < float(row.max_slope_deg)
        targets = {t.strip() for t in str(row.to).split(";")}
        conditions.append((row, cond, targets))
    for j, kind in enumerate(kinds.itertuples(index=False)):
        if kind.keeps_current_use:
            continue
        decided = np.zeros(len(parcels), dtype=bool)
        for row, cond, targets in conditions:
            if not ("*" in targets or kind.option in targets or f"{kind.option}.{kind.variant}" in targets):
                continue
            hit = cond & ~decided
            if not row.allowed and hit.any():
                out[j].append(_Rule(hit, f"conversion rule '{row.rule}': {row.description} [{row.source}]",
                                    "conversion"))
            decided |= hit
    return out


def site_rules(catalog: Catalog, parcels: pd.DataFrame, kinds: pd.DataFrame) -> list[list[_Rule]]:
    """For each decision kind, the rules that forbid it on some parcels (used for the allowed set and `explain`).

    A parcel whose current use is not plannable (``current_uses.plannable`` false: construction, transport, water,
    special use) keeps it: every other option is forbidden there, and no rule forbids keeping it (not even a red
    line). The catalog's conversion table (`conversion_rules`) restricts which current uses change to what."""
    plannable = parcels["plannable"].to_numpy(dtype=bool) if "plannable" in parcels.columns else np.ones(
        len(parcels), dtype=bool)
    conversions = conversion_rules(catalog, parcels, kinds)
    grade = parcels["grade_rank"].to_numpy()
    applies_col = catalog.grade.get("applies_where")
    applies = parcels[applies_col].to_numpy().astype(bool) if applies_col else np.ones(len(parcels), bool)
    slope = parcels["slope_deg"].to_numpy()
    red = parcels["red_line"].to_numpy()
    farmland = parcels["basic_farmland"].to_numpy()
    cropland = parcels["cropland"].to_numpy()
    crop_limit = catalog.defaults.get("cropland_max_slope_deg")
    grade_names = catalog.grade_names
    rules: list[list[_Rule]] = []
    for j, kind in enumerate(kinds.itertuples(index=False)):
        kind_rules: list[_Rule] = []
        excluded = getattr(kind, "excluded_where", None)
        if not _blank(excluded):
            label = catalog.site_attributes.get(excluded, {}).get("label", excluded)
            zone = parcels[excluded].to_numpy().astype(bool) & ~farmland & plannable
            kind_rules.append(_Rule(zone, f"not allowed where {label}"))
        if kind.keeps_current_use:
            kind_rules.append(_Rule(red & ~farmland & plannable, "inside an ecological red line only protection and "
                                                                 "restoration options are allowed", "red_line"))
            if crop_limit is not None:
                kind_rules.append(_Rule(cropland & (slope >= float(crop_limit)) & ~farmland & plannable,
                                        f"cropland at {crop_limit:g} degrees of slope or more must return to forest "
                                        "or grass"))
        else:
            if not plannable.all():
                kind_rules.append(_Rule(~plannable, "the current use is not plannable (construction, transport, "
                                                    "water or special use land, wetland): kept as it is",
                                        "current_use"))
            kind_rules += conversions[j]
            kind_rules.append(_Rule(farmland, "permanent basic farmland stays in its current use", "farmland"))
            if not kind.red_line_allowed:
                kind_rules.append(_Rule(red, "not allowed inside an ecological red line", "red_line"))
            max_slope = kind.max_slope_deg if "max_slope_deg" in kinds.columns else None
            if not _blank(max_slope):
                kind_rules.append(_Rule(slope >= float(max_slope), f"slope at or above {float(max_slope):g} degrees"))
            if not _blank(kind.max_grade):
                rank = catalog.grade_rank(kind.max_grade)
                kind_rules.append(_Rule(applies & (grade > rank),
                                        f"{catalog.grade.get('label', 'grade')} above {kind.max_grade}"))
            cls = getattr(kind, "adaptation_class", None)
            if not _blank(cls):
                limit = catalog.adaptation[cls]
                rank = catalog.grade_rank(limit)
                where = "on any such site" if limit == NEVER else f"above {grade_names[rank]}"
                kind_rules.append(_Rule(applies & (grade > rank),
                                        f"adaptation class '{cls}' may not be planted {where}"))
        rules.append(kind_rules)
    return rules


def best_income_per_mu(catalog: Catalog, parcels: pd.DataFrame) -> np.ndarray:
    """Per parcel, the most a mu of it earns under any option its site rules allow: the kept use's income, or a
    variant's net income (none where a red line forbids harvest) plus its compensation, yuan/mu/yr.

    A reference, not a bound of the model: cattle and ranger wages come on top, and labour, herd feed, market
    limits and price steps only lower it. `parcels` needs the parcel columns of the data model (no village index).
    """
    parcels = _site_columns(pd.DataFrame(parcels), catalog)
    kinds = variant_table(catalog)
    uses = catalog.current_uses.reindex(parcels["land_use"])
    harvest_allowed = ~parcels["red_line"].to_numpy(dtype=bool)
    best = np.full(len(parcels), -np.inf)
    for kind, kind_rules in zip(kinds.itertuples(index=False), site_rules(catalog, parcels, kinds), strict=True):
        if kind.keeps_current_use:
            value = uses["income_per_mu"].to_numpy(dtype=float)
        else:
            harvest = harvest_allowed | bool(kind.red_line_harvest)
            value = (float(kind.net_income_per_mu) * harvest
                     + (0.0 if _blank(kind.compensation_per_mu) else float(kind.compensation_per_mu)))
        allowed = ~np.logical_or.reduce([rule.mask for rule in kind_rules]) if kind_rules else True
        best = np.where(allowed, np.maximum(best, value), best)
    return best


def _site_columns(parcels: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """The parcel table with the columns the site rules read: cropland (from the current use) and grade."""
    uses = catalog.current_uses
    parcels["cropland"] = uses["cropland"].reindex(parcels["land_use"]).to_numpy()
    parcels["plannable"] = (uses["plannable"].reindex(parcels["land_use"]).to_numpy().astype(bool)
                            if "plannable" in uses.columns else True)
    attribute = catalog.grade.get("attribute", "bedrock_exposure")
    applies_col = catalog.grade.get("applies_where")
    applies = parcels[applies_col].to_numpy().astype(bool) if applies_col else np.ones(len(parcels), bool)
    parcels["grade_rank"] = catalog.grade_of(parcels[attribute].to_numpy(dtype=float), applies)
    parcels["grade"] = np.array(catalog.grade_names, dtype=object)[parcels["grade_rank"].to_numpy()]
    return parcels


def _parcel_table(inputs: Inputs, catalog: Catalog, villages: pd.DataFrame) -> pd.DataFrame:
    parcels = _site_columns(pd.DataFrame(inputs.parcels.drop(columns="geometry")), catalog)
    village_index = pd.Series(np.arange(len(villages)), index=villages["village"])
    if len(villages):
        parcels["village_idx"] = village_index.reindex(parcels["village"]).to_numpy()
    else:  # no villages: every parcel is in none (-1), and in no township ("")
        parcels["village_idx"] = np.full(len(parcels), -1, dtype=np.int64)
    parcels["township"] = np.append(villages["township"].to_numpy(dtype=object), "")[parcels["village_idx"]]
    return parcels


def with_scenario_conversions(catalog: Catalog, scenario: Scenario) -> Catalog:
    """The catalog with the scenario's conversion table (``[catalog] conversions``, replacing the catalog's) and
    rules (``conversion_rules``, read before the table's); the catalog itself when the scenario has neither."""
    config = scenario.catalog
    if config.conversions is None and not config.conversion_rules:
        return catalog
    table = catalog.conversions
    if config.conversions is not None:
        table = read_conversions(scenario.resolve(config.conversions))
    if config.conversion_rules:
        where = str(scenario.source_path or "scenario") + " [catalog] conversion_rules"
        table = pd.concat([conversions_frame(config.conversion_rules, where), table], ignore_index=True)
        if table["rule"].duplicated().any():
            raise InputError([Issue("a scenario conversion rule has the name of another rule", column="rule",
                                    value=r) for r in table["rule"][table["rule"].duplicated()]])
    problems = conversion_issues(catalog, table, str(config.conversions or "[catalog] conversion_rules"))
    if problems:
        raise InputError(problems)
    return dataclasses.replace(catalog, conversions=table)


HERD = "herd"
"""The name of the herd in area limits (head, not mu)."""


def _area_limits(constraints: Any, catalog: Catalog, townships: list[str]) -> dict[str, tuple[float | None,
                                                                                            float | None]]:
    """Scenario ``areas`` and ``township_areas`` as ``{"<scope>:<name>": (min, max)}``: scope ``*`` (the whole plan)
    or a township, name an option, ``option.variant`` or ``herd``."""
    known = set(catalog.options.index) | {f"{o}.{v}" for o, v in catalog.variants.index} | {HERD}
    out: dict[str, tuple[float | None, float | None]] = {}
    problems: list[Issue] = []
    tables = [("*", constraints.areas, "constraints.areas")]
    for township, table in constraints.township_areas.items():
        if township not in townships:
            problems.append(Issue("unknown township", column="constraints.township_areas", row=township))
        tables.append((township, table, f"constraints.township_areas.{township}"))
    for scope, table, column in tables:
        for name, limits in table.items():
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(Issue(f"unknown option, option.variant or herd{hint}", column=column, value=name))
            extra = set(limits) - {"min", "max"}
            if extra:
                problems.append(Issue("an area limit takes min and max", column=f"{column}.{name}",
                                      value=sorted(extra)))
            low, high = limits.get("min"), limits.get("max")
            if low is not None and high is not None and float(low) > float(high):
                problems.append(Issue("min above max", column=f"{column}.{name}", value=[low, high]))
            out[f"{scope}:{name}"] = (None if low is None else float(low), None if high is None else float(high))
    if problems:
        raise InputError(problems)
    return out


def _livestock_params(catalog: Catalog) -> dict[str, Any]:
    """The catalog's ``[livestock]`` figures as the model uses them: the purchase cost per head counted against the
    establishment budget (and the cost objective) is ``(1 - credit_financed_share)`` of the catalog's, the rest being
    financed by household microcredit repaid from the herd's sales (``credit_financed_share``, default 0)."""
    livestock = dict(catalog.livestock)
    share = float(livestock.get("credit_financed_share", 0.0) or 0.0)
    livestock["purchase_cost_per_head"] = float(livestock["purchase_cost_per_head"]) * (1.0 - share)
    return livestock


def _income_gain_share(scenario: Scenario, catalog: Catalog) -> float | None:
    """The balance rule's share (scenario ``[objective] income_gain_share``, else the catalog's
    ``defaults.income_gain_share``); None (no rule) when 0, absent, or the objective is income itself."""
    share = scenario.objective.income_gain_share
    if share is None:
        share = catalog.defaults.get("income_gain_share")
    if share is None or float(share) <= 0 or scenario.objective.name == "income":
        return None
    return float(share)


def _transfer_shares(constraints: Any, catalog: Catalog, villages: pd.DataFrame, problems: list[Issue]) -> np.ndarray:
    """Per village, the most of its income that may come from transfers (NaN: no cap): the scenario's
    ``max_transfer_share`` (else the catalog's default; 1 is no cap), then ``village_transfer_shares`` per township
    and per village (a village's own entry wins; 1 lifts the cap)."""
    share = constraints.max_transfer_share
    if share is None:
        share = float(catalog.defaults.get("max_transfer_share", 1.0))
    out = np.full(len(villages), float(share) if share < 1.0 else np.nan)
    names, towns = villages["village"].astype(str).to_numpy(), villages["township"].astype(str).to_numpy()
    known = set(names) | set(towns)
    problems += [Issue("unknown village or township", column="constraints.village_transfer_shares", row=k)
                 for k in constraints.village_transfer_shares if k not in known]
    for level in (towns, names):
        for key, value in constraints.village_transfer_shares.items():
            if not 0 < float(value) <= 1:
                problems.append(Issue("a transfer share lies in (0, 1]", column="constraints.village_transfer_shares",
                                      row=key, value=value))
            out[level == key] = float(value) if float(value) < 1.0 else np.nan
    return out


def _income_growth(constraints: Any, catalog: Catalog, villages: pd.DataFrame, problems: list[Issue]) -> np.ndarray:
    """Per village, the per-capita income growth over today the plan must give (0: no worse off), NaN where the
    village has no such target. The catalog's ``defaults.no_worse_off`` (off when absent), then the scenario's
    ``no_worse_off`` and ``income_growth``, then per township and per village (``village_no_worse_off``,
    ``village_income_growth``; a village's own entry wins over its township's)."""
    on = constraints.no_worse_off
    if on is None:
        on = bool(catalog.defaults.get("no_worse_off", False))
    base = constraints.income_growth if constraints.income_growth is not None else (0.0 if on else np.nan)
    growth = np.full(len(villages), np.nan if base is None else float(base))
    names, towns = villages["village"].astype(str).to_numpy(), villages["township"].astype(str).to_numpy()
    known = set(names) | set(towns)
    for column, table in (("constraints.village_no_worse_off", constraints.village_no_worse_off),
                          ("constraints.village_income_growth", constraints.village_income_growth)):
        problems += [Issue("unknown village or township", column=column, row=k) for k in table if k not in known]
    for level in (towns, names):  # townships first, so that a village's own entry wins
        for key, flag in constraints.village_no_worse_off.items():
            where = level == key
            growth[where] = np.where(flag, np.nan_to_num(growth[where], nan=0.0), np.nan)
        for key, value in constraints.village_income_growth.items():
            growth[level == key] = float(value)
    return growth


def build_problem(scenario: Scenario, catalog: Catalog, inputs: Inputs) -> PlanningProblem:
    """Derive the allowed set and its coefficients, and gather the scenario's targets."""
    catalog = with_scenario_conversions(catalog, scenario)
    constraints = scenario.constraints
    villages = inputs.villages.copy()
    default_floor = constraints.income_floor if constraints.income_floor is not None else float(
        catalog.defaults.get("income_floor", 4000.0))
    floor = pd.Series(default_floor, index=villages.index, dtype=float)
    problems = [Issue("floor for an unknown township", column="constraints.township_floors", row=t)
                for t in constraints.township_floors if t not in set(villages["township"])]
    for township, value in constraints.township_floors.items():
        floor[villages["township"] == township] = value
    if "income_floor" in villages.columns:
        floor = villages["income_floor"].fillna(floor).astype(float)
    problems += [Issue("village floor for an unknown village", column="constraints.village_floors", row=v)
                 for v in constraints.village_floors if v not in set(villages["village"])]
    for village, value in constraints.village_floors.items():
        floor[villages["village"] == village] = value
    villages["floor"] = floor
    villages["growth"] = _income_growth(constraints, catalog, villages, problems)
    villages["transfer_share"] = _transfer_shares(constraints, catalog, villages, problems)
    townships_list = sorted(villages["township"].unique())
    villages["township_idx"] = pd.Series(range(len(townships_list)), index=townships_list).reindex(
        villages["township"]).to_numpy().astype(np.int64)
    for township in constraints.township_budgets:
        if township not in townships_list:
            problems.append(Issue("budget for an unknown township", column="constraints.township_budgets",
                                  row=township))
    if problems:
        raise InputError(problems)

    parcels = _parcel_table(inputs, catalog, villages)
    kinds = variant_table(catalog)
    rules = site_rules(catalog, parcels, kinds)
    n, k = len(parcels), len(kinds)
    allowed_mask = np.ones((n, k), dtype=bool)
    for j, kind_rules in enumerate(rules):
        for rule in kind_rules:
            allowed_mask[:, j] &= ~rule.mask
    locks = None
    if scenario.spatial is not None and scenario.spatial.locks is not None:
        lock_file = scenario.resolve(scenario.spatial.locks)
        locks = read_locks(lock_file, parcels["parcel_id"].to_numpy(), list(catalog.options.index))
        apply_locks(allowed_mask, kinds, parcels["parcel_id"].to_numpy(), locks, str(lock_file))
    no_option = np.flatnonzero(~allowed_mask.any(axis=1))
    if len(no_option):
        raise InputError([Issue("no option is allowed on this parcel (check red line, farmland and slope columns)",
                                row=str(parcels["parcel_id"].iloc[i])) for i in no_option[:20]])
    parcel_idx, kind_idx = np.nonzero(allowed_mask)
    allowed = _coefficients(catalog, parcels, kinds, parcel_idx, kind_idx)
    costs = None
    if scenario.spatial is not None and scenario.spatial.parcel_costs is not None:
        costs = read_parcel_costs(scenario.resolve(scenario.spatial.parcel_costs), parcels["parcel_id"].to_numpy(),
                                  list(catalog.options.index))
        add_parcel_costs(allowed, parcels["parcel_id"].to_numpy(), costs)

    villages["current_land_income"] = village_sum(parcels["village_idx"], parcels["area_mu"].to_numpy()
                                                  * catalog.current_uses["income_per_mu"].reindex(
                                                      parcels["land_use"]).to_numpy(), len(villages))
    villages["area_mu"] = village_sum(parcels["village_idx"], parcels["area_mu"], len(villages))
    villages["income_before"] = (villages["nonland_income_per_capita"] * villages["population"]
                                 + villages["current_land_income"])
    townships = pd.DataFrame({"township": townships_list})
    townships["area_mu"] = np.bincount(villages["township_idx"].to_numpy(dtype=np.int64), weights=villages["area_mu"],
                                       minlength=len(townships_list))

    share = 1.0 if constraints.market_share is None else float(constraints.market_share)
    market = {pair: float(v) * share for pair, v in catalog.market["max_area_mu"].dropna().items()}
    for key, value in constraints.market.items():
        pair = tuple(key.split("."))
        if len(pair) != 2 or pair not in catalog.variants.index:
            raise InputError([Issue("unknown option.variant in constraints.market", column="constraints.market",
                                    value=key)])
        market[pair] = float(value)  # type: ignore[index]
    steps: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in catalog.price_steps.itertuples(index=False):
        steps.setdefault((row.option, row.variant), []).append((float(row.from_area_mu), float(row.income_factor)))
    steps = {pair: sorted(v) for pair, v in steps.items()}

    weights = dict(scenario.objective.weights) or {s: 1.0 / len(catalog.services) for s in catalog.services}
    unknown = [s for s in weights if s not in catalog.services]
    if unknown:
        raise InputError([Issue(f"unknown ecosystem service; known: {', '.join(catalog.services)}",
                                column="objective.weights", value=s) for s in unknown])
    share = constraints.max_transfer_share
    if share is None:
        share = float(catalog.defaults.get("max_transfer_share", 1.0))
    params: dict[str, Any] = {
        "transfer_budget": constraints.transfer_budget,
        "max_transfer_share": share if share < 1.0 else None,
        "budget": constraints.budget,
        "township_budgets": dict(constraints.township_budgets),
        "diversity_cap": constraints.diversity_cap,
        "forest_cover_min": constraints.forest_cover_min,
        "bounds": {k: tuple(v) for k, v in constraints.bounds.items()},
        "objective": scenario.objective.name,
        "sense": scenario.objective.sense,
        "weights": weights,
        "income_gain_share": _income_gain_share(scenario, catalog),
        "area_limits": _area_limits(constraints, catalog, townships_list),
        "livestock": _livestock_params(catalog),
        "rangers": dict(catalog.rangers),
    }
    spatial = build_spatial(scenario, catalog, parcels["parcel_id"].to_numpy(), inputs.parcels.geometry.to_numpy(),
                            scenario.resolve(scenario.parcels.path), inputs.hashes.get("parcels"))
    if spatial is not None:
        spatial.locks = locks
        spatial.parcel_costs = costs
    return PlanningProblem(parcels=parcels, villages=villages, townships=townships, allowed=allowed,
                           services=catalog.service_names, params=params, catalog=catalog, scenario=scenario,
                           market=market, price_steps=steps, spatial=spatial)


def _coefficients(catalog: Catalog, parcels: pd.DataFrame, kinds: pd.DataFrame, parcel_idx: np.ndarray,
                  kind_idx: np.ndarray) -> pd.DataFrame:
    """Per allowed row, the totals over the parcel's area (yuan, days, service units)."""
    uses = catalog.current_uses.reindex(parcels["land_use"])
    area = parcels["area_mu"].to_numpy()[parcel_idx]
    keep = kinds["keeps_current_use"].to_numpy()[kind_idx]
    red = parcels["red_line"].to_numpy()[parcel_idx]

    def kind_col(column: str, default: float = 0.0) -> np.ndarray:
        if column not in kinds.columns:
            return np.full(len(kind_idx), default)
        return pd.to_numeric(kinds[column], errors="coerce").fillna(default).to_numpy(dtype=float)[kind_idx]

    def use_col(column: str) -> np.ndarray:
        return uses[column].to_numpy(dtype=float)[parcel_idx]

    harvest = ~red | kinds["red_line_harvest"].to_numpy()[kind_idx]
    income_per_mu = np.where(keep, use_col("income_per_mu"), kind_col("net_income_per_mu") * harvest)
    labour_per_mu = np.where(keep, use_col("labour_days_per_mu"), kind_col("labour_days_per_mu"))
    forest = np.where(keep, uses["forest_type"].to_numpy()[parcel_idx], kinds["forest_type"].to_numpy()[kind_idx])
    table = pd.DataFrame({
        "parcel": parcel_idx,
        "option": kinds["option"].to_numpy()[kind_idx],
        "variant": kinds["variant"].to_numpy()[kind_idx],
        "village": parcels["village_idx"].to_numpy()[parcel_idx],
        "area": area,
        "converted": ~keep,
        "income": income_per_mu * area,
        "compensation": np.where(keep, 0.0, kind_col("compensation_per_mu")) * area,
        "cost": np.where(keep, 0.0, kind_col("establishment_cost_per_mu")) * area,
        "labour": labour_per_mu * area,
        "forest": forest.astype(bool),
        "ranger_area": np.where(kinds["ranger_area"].to_numpy()[kind_idx], area, 0.0),
        "livestock_area": np.where(kinds["livestock"].to_numpy()[kind_idx], area * kind_col("livestock_feed", 1.0),
                                   0.0),
        "diversity_capped": kinds["diversity_capped"].to_numpy()[kind_idx],
        "harvest": harvest,
        "mu_per_household": kind_col("mu_per_household", np.nan),
    })
    reference = float(catalog.defaults.get("soil_slope_reference_deg", 0) or 0)
    slope = parcels["slope_deg"].to_numpy()[parcel_idx]
    for service in catalog.service_names:
        level = np.where(keep, use_col(service), kind_col(service))
        gain = (level - use_col(service)) * area
        if service == "soil" and reference > 0:
            gain *= np.maximum(slope, 5.0) / reference
        table[f"gain_{service}"] = gain
    return table


def explain(problem_parts: tuple[Catalog, pd.DataFrame], parcel_id: str) -> pd.DataFrame:
    """For one parcel, every option and variant with 'allowed' or the reasons it is not."""
    catalog, parcels = problem_parts
    match = np.flatnonzero(parcels["parcel_id"].to_numpy() == parcel_id)
    if not len(match):
        raise InputError([Issue("no such parcel", row=parcel_id, column="parcel_id")])
    one = parcels.iloc[match]
    kinds = variant_table(catalog)
    rules = site_rules(catalog, one, kinds)
    rows = []
    for kind, kind_rules in zip(kinds.itertuples(index=False), rules, strict=True):
        reasons = [rule.reason for rule in kind_rules if rule.mask[0]]
        rows.append({"option": kind.option, "variant": kind.variant, "allowed": not reasons,
                     "why": "; ".join(reasons) if reasons else "allowed"})
    return pd.DataFrame(rows)
