"""The scenario file: a TOML document validated by pydantic; unknown keys are errors naming the nearest key.

Every key is documented in README.md ("The scenario file"). Paths are relative to the scenario file.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from optiland.errors import InputError, Issue
from optiland.io.tables import not_found, read_text

OBJECTIVES = ("ecosystem_services", "income", "cost", "carbon", "soil", "water", "habitat")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ParcelsConfig(_Strict):
    """`[parcels]`: where the parcel layer is and how its columns are named."""

    path: Path
    layer: str | None = None
    id_column: str = "parcel_id"
    encoding: str | None = Field(None, description="attribute encoding of a Shapefile, e.g. GBK")
    columns: dict[str, str] = Field(default_factory=dict, description="canonical name -> column in the file")
    db: str | None = Field(None, description="a PostGIS database (postgresql://user@host/db) to read `table` from "
                                             "instead of `path`; the password from PGPASSWORD or .pgpass")
    table: str | None = Field(None, description="with db: the parcel table ([schema.]name)")

    @field_validator("db")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        """A password in the URL moves to PGPASSWORD, so that run.json never holds it (optiland.io.postgis)."""
        if value is None:
            return None
        from optiland.io.dburl import without_password

        return without_password(value)


class VillagesConfig(_Strict):
    """`[villages]`: the village table (CSV)."""

    path: Path
    encoding: str | None = Field(None, description="none: UTF-8 (with or without BOM), UTF-16 with BOM or GBK/GB18030 "
                                                   "as Excel saves it, detected (optiland.io.tables)")
    columns: dict[str, str] = Field(default_factory=dict)


class CatalogConfig(_Strict):
    """`[catalog]`: a region name under models/ or a path, plus figure overrides by dotted key."""

    region: str | None = None
    path: Path | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    conversions: Path | None = Field(None, description="a conversion table (conversions.csv format) replacing the "
                                                       "catalog's")
    conversion_rules: list[dict[str, Any]] = Field(
        default_factory=list, description="conversion rules read before the table's (the first that holds decides)")


class ObjectiveConfig(_Strict):
    """`[objective]`: what to maximise (or minimise, for cost) and the service weights of the index."""

    maximise: Literal["ecosystem_services", "income", "carbon", "soil", "water", "habitat"] | None = (
        "ecosystem_services"
    )
    minimise: Literal["cost"] | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    income_gain_share: float | None = Field(
        None, ge=0, le=1, description="a balanced plan: the best objective among plans whose total income gains at "
                                      "least this share of the largest gain over today's (two solves); catalog "
                                      "default defaults.income_gain_share; 0 turns it off")
    reference: dict[str, float] = Field(
        default_factory=dict, description="service -> the gain the index divides it by (default: the parcels' "
                                          "potential, optiland.pipeline.reference); pins one scale for a study")

    @field_validator("reference")
    @classmethod
    def _positive_references(cls, value: dict[str, float]) -> dict[str, float]:
        import math

        bad = {k: v for k, v in value.items() if not (math.isfinite(v) and v > 0)}
        if bad:
            name, given = next(iter(bad.items()))
            raise ValueError(f"reference {name} = {given}: a reference must be a positive finite number")
        return value

    @property
    def name(self) -> str:
        """The chosen objective's name."""
        return self.minimise or self.maximise or "ecosystem_services"

    @property
    def sense(self) -> str:
        """'min' or 'max'."""
        return "min" if self.minimise else "max"


class ConstraintsConfig(_Strict):
    """`[constraints]`: the targets and limits of the plan."""

    income_floor: float | None = Field(None, ge=0, description="yuan per capita per year; catalog default")
    village_floors: dict[str, float] = Field(default_factory=dict)
    township_floors: dict[str, float] = Field(
        default_factory=dict, description="township -> per-capita floor of each of its villages (a village's own "
                                          "floor wins)")
    no_worse_off: bool | None = Field(
        None, description="every village's per-capita income after the plan at least its income today (catalog "
                          "default defaults.no_worse_off; off when the catalog says nothing)")
    village_no_worse_off: dict[str, bool] = Field(
        default_factory=dict, description="village or township -> the rule on or off there (a village's own entry "
                                          "wins over its township's)")
    income_growth: float | None = Field(
        None, ge=-1, description="per-capita income growth over today required of every village (0.1 = 10% more); "
                                 "implies no_worse_off")
    village_income_growth: dict[str, float] = Field(
        default_factory=dict, description="village or township -> its growth target (a village's own entry wins)")
    transfer_budget: float | None = Field(None, ge=0, description="yuan/yr for compensation and ranger wages")
    max_transfer_share: float | None = Field(None, gt=0, le=1)
    village_transfer_shares: dict[str, float] = Field(
        default_factory=dict, description="village or township -> cap on the share of its income from transfers "
                                          "(a village's own entry wins; 1 lifts the cap there)")
    budget: float | None = Field(None, ge=0, description="establishment budget, yuan")
    township_budgets: dict[str, float] = Field(default_factory=dict)
    diversity_cap: float | None = Field(None, gt=0, le=1)
    forest_cover_min: float | None = Field(None, ge=0, le=1)
    market: dict[str, float] = Field(default_factory=dict, description="'option.variant' -> max area in mu")
    areas: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="option, 'option.variant' or 'herd' -> {min = , max = } over the whole "
                                          "plan (mu; herd: head): demonstration bases, market plans")
    township_areas: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict, description="township -> {option, 'option.variant' or 'herd' -> {min = , max = }}")
    market_share: float | None = Field(
        None, gt=0, le=1, description="the planning area's share of the catalog's (county) market limits, e.g. 1/12 "
                                      "for one of a county's 12 townships; scales market.csv, not `market`")
    bounds: dict[str, list[float | None]] = Field(
        default_factory=dict, description="objective name -> {min = , max = } (or [lower, upper] with None open)"
    )

    @field_validator("bounds", mode="before")
    @classmethod
    def _bounds_pairs(cls, value: dict[str, Any]) -> dict[str, list[float | None]]:
        pairs: dict[str, list[float | None]] = {}
        for name, given in value.items():
            if name not in OBJECTIVES:
                close = difflib.get_close_matches(name, OBJECTIVES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(OBJECTIVES)}"
                raise ValueError(f"unknown objective {name!r} in bounds{hint}")
            if isinstance(given, dict):
                unknown = set(given) - {"min", "max"}
                if unknown:
                    raise ValueError(f"bounds.{name} takes min and max, not {sorted(unknown)}")
                pairs[name] = [given.get("min"), given.get("max")]
            elif isinstance(given, (list, tuple)) and len(given) == 2:
                pairs[name] = list(given)
            else:
                raise ValueError(f"bounds.{name} must be {{min = .., max = ..}} or [lower, upper]")
        return pairs


class SolverConfig(_Strict):
    """`[solver]`: a preset from solvers/ and options overriding it."""

    preset: str = "default"
    mip_rel_gap: float | None = Field(None, ge=0)
    mip_abs_gap: float | None = Field(None, ge=0)
    time_limit: float | None = Field(None, gt=0)
    threads: int | None = Field(None, ge=1)
    random_seed: int | None = Field(None, ge=0)
    presolve: Literal["on", "off", "choose"] | None = None


class NeighbourhoodCapConfig(_Strict):
    """One `[[spatial.neighbourhood_caps]]`: at most `max_area_mu` of any one variant (or option) of `options` among
    the parcels whose centroid lies within `radius_m` of a centre of a hexagonal grid of spacing `spacing_m`."""

    options: list[str] = Field(min_length=1)
    per: Literal["variant", "option"] = "variant"
    radius_m: float = Field(gt=0)
    max_area_mu: float = Field(ge=0)
    spacing_m: float | None = Field(None, gt=0, description="grid spacing; default radius_m / 2")


class SpatialConfig(_Strict):
    """`[spatial]`: the boundary penalty (Marxan's BLM) between option groups, and locked parcels
    (optiland.model.spatial)."""

    boundary_penalty: float = Field(0.0, ge=0, description="objective units per unit of boundary length (BLM)")
    between: Literal["groups", "protected"] = "groups"
    groups: dict[str, str] = Field(default_factory=dict, description="option -> group, over the catalog's group")
    protected: list[str] = Field(default_factory=list, description="groups or options counted as protected")
    group_weights: dict[str, float] = Field(default_factory=dict, description="'group|group' -> weight")
    boundaries: Path | None = Field(None, description="boundary table (id1, id2, boundary); default: geometry")
    locks: Path | None = Field(None, description="lock table (parcel_id, option, lock = in | out)")
    parcel_costs: Path | None = Field(None, description="(parcel_id, option, cost): added when the parcel takes it")
    neighbourhood_caps: list[NeighbourhoodCapConfig] = Field(default_factory=list)


class FeaturesConfig(_Strict):
    """`[features]`: per-parcel feature amounts, the options that earn them, and the targets to meet."""

    path: Path = Field(description="long table: parcel_id, feature, amount")
    credited: dict[str, list[str] | dict[str, float]] = Field(
        default_factory=dict, description="feature (or '*') -> options, or option -> share of the amount credited")
    targets: dict[str, float] = Field(default_factory=dict, description="feature -> absolute amount")
    relative_targets: dict[str, float] = Field(default_factory=dict, description="feature -> share of its total")


class RiskConfig(_Strict):
    """`[transition.risk]`: how the income floor treats the price and yield scenarios (optiland.analysis.transition)."""

    measure: Literal["expected", "robust", "cvar", "icc"] = Field(
        "expected", description="expected: the floor at average prices; robust: in every scenario; cvar: the "
                                "conditional value at risk of the shortfall below the floor at most `max_shortfall`; "
                                "icc: integrated chance constraint, the expected shortfall at most `max_shortfall`")
    alpha: float = Field(0.9, gt=0, lt=1, description="cvar: the level (the worst 1 - alpha of the scenarios)")
    max_shortfall: float = Field(0.0, ge=0, description="cvar, icc: yuan per capita per year")
    scenarios: Path | None = Field(None, description="table: scenario, product, factor[, probability][, year]")
    sample: int | None = Field(None, ge=1, description="draw this many scenarios around the catalog's figures "
                                                        "(price_risk.csv), instead of a table")
    seed: int = Field(0, ge=0, description="seed of the sampled scenarios")


class TransitionConfig(_Strict):
    """`[transition]`: plan the years from today to maturity (optiland.analysis.transition)."""

    horizon: int = Field(10, ge=1, le=60, description="years")
    yearly_budget: float | list[float] | None = Field(
        None, description="establishment spending per year, yuan (one figure, or one per year)")
    subsidy_budget: float = Field(0.0, ge=0, description="transition subsidy over the whole horizon, yuan")
    discount_rate: float = Field(0.04, ge=0, lt=1)
    phasing: list[float] | None = Field(
        None, description="the most of each village's final area of an option converted by the end of year 1, 2, "
                          "...: e.g. [0.2, 0.6, 1.0] (demonstration, promotion, full coverage)")
    objective: Literal["end", "cumulated", "discounted_income"] = Field(
        "end", description="end: [objective] at maturity; cumulated: the service index summed over the years; "
                           "discounted_income: the expected village incomes, discounted")
    risk: RiskConfig = Field(default_factory=RiskConfig)

    @field_validator("phasing")
    @classmethod
    def _rising(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (any(not 0 <= v <= 1 for v in value) or value != sorted(value)):
            raise ValueError("phasing shares must rise and lie in [0, 1]")
        return value


class Scenario(_Strict):
    """A whole scenario. `base_dir` (the scenario file's folder) resolves relative paths."""

    name: str | None = None
    description: str | None = None
    parcels: ParcelsConfig
    villages: VillagesConfig | None = Field(None, description="none: an instance without villages (e.g. Marxan)")
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    constraints: ConstraintsConfig = Field(default_factory=ConstraintsConfig)
    solver: SolverConfig = Field(default_factory=SolverConfig)
    spatial: SpatialConfig | None = None
    features: FeaturesConfig | None = None
    transition: TransitionConfig | None = None
    base_dir: Path = Field(default=Path("."), exclude=True)
    source_path: Path | None = Field(default=None, exclude=True)

    def resolve(self, path: Path) -> Path:
        """A path of the scenario, resolved against the scenario file's folder."""
        return path if path.is_absolute() else (self.base_dir / path)

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data (for run.json)."""
        return self.model_dump(mode="json", exclude_none=True)

    def with_(self, **changes: Any) -> Scenario:
        """A modified copy; keys are dotted paths into the scenario ("constraints.income_floor": 4500).

        The original is never mutated. Keys starting with "catalog." that are not fields of `[catalog]` go to the
        catalog overrides ("catalog.variants.fruit.orah.net_income_per_mu").
        """
        data = self.model_dump(mode="python")
        for dotted, value in changes.items():
            dotted = dotted.replace("__", ".")
            parts = dotted.split(".")
            if parts[0] == "catalog" and len(parts) > 1 and parts[1] not in CatalogConfig.model_fields:
                data["catalog"]["overrides"][".".join(parts[1:])] = value
                continue
            node = data
            for key in parts[:-1]:
                if not isinstance(node, dict) or key not in node:
                    raise InputError([Issue(f"no such scenario key {dotted!r}", column=dotted)])
                node = node[key]
            node[parts[-1]] = copy.deepcopy(value)
        return _validate(data, self.source_path, self.base_dir)


def _suggest(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """The nearest valid key for an unknown key at `loc`."""
    model: type[BaseModel] | None = Scenario
    for key in loc[:-1]:
        field = model.model_fields.get(str(key)) if model else None
        annotation = field.annotation if field else None
        optional = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        annotation = optional[0] if optional else annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _validate(data: dict[str, Any], source: Path | None, base_dir: Path) -> Scenario:
    try:
        scenario = Scenario.model_validate({**data, "base_dir": base_dir, "source_path": source})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc)
            if err["type"] == "extra_forbidden":
                message = f"unknown key{_suggest(loc, data)}"
            else:
                message = err["msg"]
            problems.append(Issue(message, file=str(source) if source else None, column=key,
                                    value=err.get("input") if err["type"] != "extra_forbidden" else None))
        raise InputError(problems) from None
    from optiland.io.overrides import override_value_issues

    wrong = override_value_issues(scenario.catalog.overrides, str(source) if source else None)
    if wrong:
        raise InputError(wrong)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    path = Path(path)
    if not path.is_file():
        raise InputError([not_found(path, "scenario file")])
    try:
        data = tomllib.loads(read_text(path))  # Notepad's BOM or GBK read (optiland.io.tables)
    except tomllib.TOMLDecodeError as exc:
        raise InputError([Issue(f"not valid TOML: {exc}", file=str(path))]) from None
    return _validate(data, path.resolve(), path.resolve().parent)
