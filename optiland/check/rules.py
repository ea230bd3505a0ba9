"""The allowed set and the coefficients, derived again from the catalog tables and the parcel layer.

Written from docs/data-model.md ("Site rules and coefficients") alone: nothing here is shared with the model layer
(optiland.model.problem derives the same for the solver), so a fault in either shows as a disagreement between a
plan and its check. Every rule names its family (``red_line``, ``farmland`` or ``suitability``) and a sentence.

A *kind* is one decision a parcel can take: the keep option, or one variant of another option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SOIL_SERVICE = "soil"
SOIL_MIN_SLOPE_DEG = 5.0
"""A soil-retention gain is weighted by max(slope, 5) / the catalog's soil_slope_reference_deg."""
NEVER = "never"


def blank(value: Any) -> bool:
    """A catalog cell left empty."""
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value) if not blank(value) else False


@dataclass
class Kinds:
    """Every decision kind: the keep option first, then each variant of every other option, in catalog order."""

    option: np.ndarray
    variant: np.ndarray
    keep: np.ndarray
    table: pd.DataFrame
    """One row per kind: the option's columns, then the variant's (a variant's non-blank value wins)."""

    def __len__(self) -> int:
        return len(self.option)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(option, variant) of every kind."""
        return list(zip(self.option.tolist(), self.variant.tolist(), strict=True))

    def number(self, column: str, default: float = 0.0) -> np.ndarray:
        """A numeric attribute per kind (blank: `default`)."""
        if column not in self.table.columns:
            return np.full(len(self), default)
        return pd.to_numeric(self.table[column], errors="coerce").fillna(default).to_numpy(dtype=float)

    def flag(self, column: str) -> np.ndarray:
        """A boolean attribute per kind (blank: false)."""
        if column not in self.table.columns:
            return np.zeros(len(self), dtype=bool)
        return np.array([_flag(v) for v in self.table[column]], dtype=bool)


def kinds_of(catalog: Any) -> Kinds:
    """The decision kinds of a catalog (options.csv and variants.csv)."""
    options = catalog.options
    keep = [o for o in options.index if _flag(options.loc[o, "keeps_current_use"])]
    if len(keep) != 1:
        raise ValueError(f"the catalog has {len(keep)} options that keep the current use, not one")
    rows: list[dict[str, Any]] = [{"option": keep[0], "variant": keep[0], **options.loc[keep[0]].to_dict()}]
    for (option, variant), values in catalog.variants.iterrows():
        if option == keep[0]:
            continue
        row = {"option": option, "variant": variant, **options.loc[option].to_dict()}
        for column, value in values.items():
            if column not in row or not blank(value):  # a blank variant value inherits the option's
                row[column] = value
        rows.append(row)
    table = pd.DataFrame(rows)
    return Kinds(option=table["option"].to_numpy(dtype=object), variant=table["variant"].to_numpy(dtype=object),
                 keep=np.arange(len(table)) == 0, table=table)


def grade_bands(catalog: Any) -> tuple[list[str], np.ndarray]:
    """Grade names from least to most degraded, and each band's lower edge."""
    bands = catalog.grade.get("bands", [])
    return [str(b["name"]) for b in bands], np.array([float(b["lower"]) for b in bands])


def grade_of(catalog: Any, parcels: pd.DataFrame) -> np.ndarray:
    """Each parcel's grade position: the band [lower, next lower) its attribute falls in where the grade applies
    (the catalog's ``applies_where`` attribute is true, or everywhere without one), the first band elsewhere."""
    names, lowers = grade_bands(catalog)
    attribute = catalog.grade.get("attribute")
    n = len(parcels)
    if attribute is None or not len(lowers):
        return np.zeros(n, dtype=np.int64)
    values = parcels[attribute].to_numpy(dtype=float)
    rank = np.zeros(n, dtype=np.int64)
    for k, lower in enumerate(lowers):  # the last band whose lower edge is at or below the value
        rank[values >= lower] = k
    return np.where(grade_applies(catalog, parcels), rank, 0)


def grade_applies(catalog: Any, parcels: pd.DataFrame) -> np.ndarray:
    """Where the grade (and the adaptation rule) applies."""
    where = catalog.grade.get("applies_where")
    if not where:
        return np.ones(len(parcels), dtype=bool)
    return parcels[where].to_numpy().astype(bool)


def cropland_of(catalog: Any, parcels: pd.DataFrame) -> np.ndarray:
    """Whether each parcel's current use is cultivated land (current_uses.csv ``cropland``)."""
    flags = {str(code): _flag(v) for code, v in catalog.current_uses["cropland"].items()}
    return np.array([flags.get(str(code), False) for code in parcels["land_use"]], dtype=bool)


@dataclass
class Rule:
    """Parcels (mask) on which a kind is forbidden, the rule's family and its sentence."""

    family: str
    mask: np.ndarray
    reason: str


def plannable_of(catalog: Any, parcels: pd.DataFrame) -> np.ndarray:
    """Whether each parcel's current use may change (current_uses.csv ``plannable``, true when absent or blank)."""
    uses = catalog.current_uses
    if "plannable" not in uses.columns:
        return np.ones(len(parcels), dtype=bool)
    flags = np.array([True if blank(v) else _flag(v) for v in uses["plannable"]], dtype=bool)
    return flags[pd.Index(uses.index.astype(str)).get_indexer(parcels["land_use"].astype(str))]


def _codes(land_use: np.ndarray, codes: str) -> np.ndarray:
    """Parcels whose land-survey code is listed (';'-separated; a two-digit code is its class, '*' every code)."""
    wanted = [c.strip() for c in str(codes).split(";") if c.strip()]
    if "*" in wanted:
        return np.ones(len(land_use), dtype=bool)
    full = np.isin(land_use, wanted)
    classes = [c for c in wanted if len(c) == 2]
    return full | np.isin(np.array([str(c)[:2] for c in land_use], dtype=object), classes) if classes else full


def conversion_table(catalog: Any, scenario: Any) -> pd.DataFrame | None:
    """The conversion rules in force: the scenario's ``conversion_rules`` first, then its ``conversions`` table
    or else the catalog's conversions.csv (docs/data-model.md)."""
    from optiland.io.catalog import conversions_frame, read_conversions

    table = getattr(catalog, "conversions", None)
    config = getattr(scenario, "catalog", None)
    if config is not None and getattr(config, "conversions", None) is not None:
        table = read_conversions(scenario.resolve(config.conversions))
    if config is not None and getattr(config, "conversion_rules", None):
        first = conversions_frame(config.conversion_rules, "[catalog] conversion_rules")
        table = pd.concat([first, table], ignore_index=True) if table is not None else first
    return table


def conversion_rules_of(table: pd.DataFrame | None, parcels: pd.DataFrame, kinds: Kinds) -> list[list[Rule]]:
    """Per kind other than keep: the conversion rows that forbid it. For each parcel the first row (top to bottom)
    whose conditions hold and whose ``to`` names the kind decides; no such row: the change is not governed here."""
    out: list[list[Rule]] = [[] for _ in range(len(kinds))]
    if table is None or not len(table):
        return out
    land_use = parcels["land_use"].astype(str).to_numpy(dtype=object)
    slope = parcels["slope_deg"].to_numpy(dtype=float)
    red = parcels["red_line"].to_numpy().astype(bool)
    farmland = parcels["basic_farmland"].to_numpy().astype(bool)
    rows = []
    for row in table.to_dict("records"):
        holds = _codes(land_use, row["current_use"])
        if not blank(row.get("red_line")):
            holds &= red == _flag(row["red_line"])
        if not blank(row.get("basic_farmland")):
            holds &= farmland == _flag(row["basic_farmland"])
        if not blank(row.get("min_slope_deg")):
            holds &= slope >= float(row["min_slope_deg"])
        if not blank(row.get("max_slope_deg")):
            holds &= slope < float(row["max_slope_deg"])
        rows.append((row, holds, {t.strip() for t in str(row["to"]).split(";")}))
    for j in range(len(kinds)):
        if kinds.keep[j]:
            continue
        option, variant = kinds.option[j], kinds.variant[j]
        decided = np.zeros(len(parcels), dtype=bool)
        for row, holds, targets in rows:
            if "*" not in targets and option not in targets and f"{option}.{variant}" not in targets:
                continue
            first = holds & ~decided
            decided |= holds
            if not _flag(row["allowed"]) and first.any():
                out[j].append(Rule("conversion", first,
                                   f"conversion rule '{row['rule']}': {row.get('description', '')} "
                                   f"[{row.get('source', '')}]"))
    return out


def rules_of(catalog: Any, parcels: pd.DataFrame, kinds: Kinds, scenario: Any = None) -> list[list[Rule]]:
    """For each kind, the rules forbidding it on some parcels (docs/data-model.md, "Site rules")."""
    names, _ = grade_bands(catalog)
    plannable = plannable_of(catalog, parcels)
    conversions = conversion_rules_of(conversion_table(catalog, scenario), parcels, kinds)
    rank = grade_of(catalog, parcels)
    applies = grade_applies(catalog, parcels)
    slope = parcels["slope_deg"].to_numpy(dtype=float)
    red = parcels["red_line"].to_numpy().astype(bool)
    farmland = parcels["basic_farmland"].to_numpy().astype(bool)
    cropland = cropland_of(catalog, parcels)
    crop_limit = catalog.defaults.get("cropland_max_slope_deg")
    label = catalog.grade.get("label", "grade")
    red_allowed = kinds.flag("red_line_allowed")
    out: list[list[Rule]] = []
    for j in range(len(kinds)):
        row = kinds.table.iloc[j]
        found: list[Rule] = []
        free = ~farmland & plannable  # basic farmland and a use that is not plannable are kept whatever else holds
        zone = row.get("excluded_where")
        if not blank(zone):
            found.append(Rule("suitability", parcels[str(zone)].to_numpy().astype(bool) & free,
                              f"not allowed where {zone} is true"))
        if kinds.keep[j]:
            found.append(Rule("red_line", red & free,
                              "inside an ecological red line only options allowed there may be chosen"))
            if not blank(crop_limit):
                found.append(Rule("suitability", cropland & (slope >= float(crop_limit)) & free,
                                  f"cropland at {float(crop_limit):g} degrees of slope or more may not be kept"))
        else:
            if not plannable.all():
                found.append(Rule("current_use", ~plannable, "the current use is not plannable: it is kept"))
            found += conversions[j]
            found.append(Rule("farmland", farmland.copy(), "basic farmland keeps its current use"))
            if not red_allowed[j]:
                found.append(Rule("red_line", red.copy(), "not allowed inside an ecological red line"))
            limit = row.get("max_slope_deg")
            if not blank(limit):
                found.append(Rule("suitability", slope >= float(limit),
                                  f"slope at or above its limit of {float(limit):g} degrees"))
            highest = row.get("max_grade")
            if not blank(highest):
                top = names.index(str(highest))
                found.append(Rule("suitability", applies & (rank > top), f"{label} above {highest}"))
            cls = row.get("adaptation_class")
            if not blank(cls):
                limit_grade = catalog.adaptation[str(cls)]
                top = -1 if limit_grade == NEVER else names.index(str(limit_grade))
                where = "where the grade applies" if top < 0 else f"above {limit_grade}"
                found.append(Rule("suitability", applies & (rank > top),
                                  f"adaptation class '{cls}' may not be planted {where}"))
        out.append(found)
    return out


def allowed_mask(rules: list[list[Rule]], n: int) -> np.ndarray:
    """(parcels, kinds): whether no rule forbids the kind on the parcel."""
    mask = np.ones((n, len(rules)), dtype=bool)
    for j, found in enumerate(rules):
        for rule in found:
            mask[:, j] &= ~rule.mask
    return mask


COEFFICIENTS = ("area", "income", "compensation", "cost", "labour", "forest", "ranger_area", "livestock_area",
                "harvest", "converted", "mu_per_household")


def coefficients(catalog: Any, parcels: pd.DataFrame, kinds: Kinds, parcel: np.ndarray,
                 kind: np.ndarray) -> dict[str, np.ndarray]:
    """Per (parcel, kind) pair: totals over the parcel's area (yuan/yr, yuan, days/yr, service units/yr).

    The keep option takes the current use's figures and gains nothing; another kind earns its variant's net
    income (none inside a red line unless its option has ``red_line_harvest``), its option's compensation, costs
    its variant's establishment cost, and gains its service levels minus the current use's.
    """
    parcel = np.asarray(parcel, dtype=np.int64)
    kind = np.asarray(kind, dtype=np.int64)
    uses = catalog.current_uses
    codes = parcels["land_use"].astype(str).to_numpy()[parcel]

    position = pd.Index(uses.index.astype(str)).get_indexer(codes)
    if (position < 0).any():
        raise ValueError(f"current use {codes[position < 0][0]} is not in current_uses.csv")

    def use(column: str) -> np.ndarray:
        return pd.to_numeric(uses[column], errors="coerce").to_numpy(dtype=float)[position]

    def use_flag(column: str) -> np.ndarray:
        return np.array([_flag(v) for v in uses[column]], dtype=bool)[position]

    area = parcels["area_mu"].to_numpy(dtype=float)[parcel]
    keep = kinds.keep[kind]
    red = parcels["red_line"].to_numpy().astype(bool)[parcel]
    harvest = ~red | kinds.flag("red_line_harvest")[kind]
    income_per_mu = np.where(keep, use("income_per_mu"), kinds.number("net_income_per_mu")[kind] * harvest)
    labour_per_mu = np.where(keep, use("labour_days_per_mu"), kinds.number("labour_days_per_mu")[kind])
    out = {
        "area": area,
        "income": income_per_mu * area,
        "compensation": np.where(keep, 0.0, kinds.number("compensation_per_mu")[kind]) * area,
        "cost": np.where(keep, 0.0, kinds.number("establishment_cost_per_mu")[kind]) * area,
        "labour": labour_per_mu * area,
        "forest": np.where(keep, use_flag("forest_type"), kinds.flag("forest_type")[kind]),
        "ranger_area": np.where(kinds.flag("ranger_area")[kind], area, 0.0),
        # a livestock variant's area feeds livestock_feed of a mu of open forage (variants.csv; blank: 1)
        "livestock_area": np.where(kinds.flag("livestock")[kind], area * kinds.number("livestock_feed", 1.0)[kind],
                                   0.0),
        "harvest": harvest,
        "converted": ~keep,
        "mu_per_household": kinds.number("mu_per_household", np.nan)[kind],
    }
    reference = catalog.defaults.get("soil_slope_reference_deg")
    slope = parcels["slope_deg"].to_numpy(dtype=float)[parcel]
    for service in catalog.services:
        current = use(service)
        level = np.where(keep, current, kinds.number(service)[kind])
        gain = (level - current) * area
        if service == SOIL_SERVICE and not blank(reference) and float(reference) > 0:
            gain = gain * np.maximum(slope, SOIL_MIN_SLOPE_DEG) / float(reference)
        out[f"gain_{service}"] = gain
    return out
