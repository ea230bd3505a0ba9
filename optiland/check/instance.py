"""What a plan is checked against: the parcels, villages and townships, the allowed set and every target of the
scenario, gathered by the checker's own code from the scenario, the catalog and the input tables (read by the io
layer), never from the model layer (docs/data-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.check.rules import (
    Kinds,
    Rule,
    allowed_mask,
    blank,
    coefficients,
    grade_bands,
    grade_of,
    kinds_of,
    rules_of,
)
from optiland.io.tables import numbers, read_table

M2_PER_MU = 10000.0 / 15.0
"""1 mu = 10,000 / 15 m2 (15 mu to the hectare)."""
REFERENCE_FLOOR = 1e-9
"""A service whose potential is not above this is left out of the index."""
LOCK_WORDS = {"in": True, "out": False, "locked_in": True, "locked_out": False, "2": True, "3": False}
OUTSIDE = "outside"


@dataclass
class Cap:
    """A neighbourhood cap: per grid cell, the parcels whose centroid lies within the radius of its centre."""

    name: str
    options: list[str]
    per: str
    max_area: float
    cell: np.ndarray
    parcel: np.ndarray
    centres: np.ndarray


@dataclass
class Spatial:
    """The scenario's ``[spatial]`` and ``[features]`` sections as the check reads them."""

    locks: pd.DataFrame | None = None
    """parcel_id, option, locked_in, line."""
    parcel_costs: pd.DataFrame | None = None
    """parcel_id, option, cost."""
    features: list[str] = field(default_factory=list)
    amounts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    credited: dict[str, dict[str, float]] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    caps: list[Cap] = field(default_factory=list)
    blm: float = 0.0
    option_group: dict[str, str] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """(left, right, length) of every shared boundary, by parcel position."""
    outer: np.ndarray | None = None
    """Length of each parcel's boundary with the outside."""

    def penalty(self, options: np.ndarray) -> float:
        """BLM x sum of w(group, group) x boundary for a plan given as each parcel's option."""
        if self.blm <= 0 or self.edges is None:
            return 0.0
        position = {g: k for k, g in enumerate(self.groups)}
        g = np.array([position[self.option_group[o]] if o in self.option_group else len(self.groups) - 1
                      for o in options], dtype=np.int64)
        left, right, length = self.edges
        shared = float((self.weights[g[left], g[right]] * length).sum())
        outer = float((self.weights[g, len(self.groups) - 1] * self.outer).sum()) if self.outer is not None else 0.0
        return self.blm * (shared + outer)


@dataclass
class Instance:
    """Everything a plan is checked against."""

    scenario: Any
    catalog: Any
    parcels: pd.DataFrame
    """Input columns with area_mu, then grade_rank, grade, village_idx (-1: none), township."""
    villages: pd.DataFrame
    """Input columns with floor, township_idx, current_land_income."""
    townships: pd.DataFrame
    kinds: Kinds
    rules: list[list[Rule]]
    allowed: np.ndarray
    """(parcels, kinds) under the site rules and the locks."""
    params: dict[str, Any]
    market: dict[tuple[str, str], float]
    price_steps: dict[tuple[str, str], list[tuple[float, float]]]
    services: list[str]
    spatial: Spatial | None = None

    @property
    def n_parcels(self) -> int:
        """Number of parcels."""
        return len(self.parcels)

    def coefficients(self, parcel: np.ndarray, kind: np.ndarray) -> dict[str, np.ndarray]:
        """Per (parcel, kind) pair, with the scenario's parcel costs added to the establishment cost."""
        coef = coefficients(self.catalog, self.parcels, self.kinds, parcel, kind)
        costs = self.spatial.parcel_costs if self.spatial is not None else None
        if costs is not None and len(parcel):
            summed = costs.groupby(["parcel_id", "option"])["cost"].sum()
            keys = pd.MultiIndex.from_arrays([self.parcels["parcel_id"].astype(str).to_numpy()[parcel],
                                              self.kinds.option[kind]])
            coef["cost"] = coef["cost"] + summed.reindex(keys).fillna(0.0).to_numpy()
        return coef

    def needs_index(self) -> bool:
        """Whether the scenario uses the service index (its objective, or a bound on it)."""
        return self.params["objective"] == "ecosystem_services" or "ecosystem_services" in (self.params["bounds"]
                                                                                           or {})

    def index_reference(self) -> dict[str, float]:
        """The index's divisor per weighted service (docs/data-model.md, README "The model"): the scenario's pinned
        value (``[objective.reference]``) or else the parcels' potential; a service whose potential is not above
        REFERENCE_FLOOR is left out."""
        pinned = dict(getattr(self.scenario.objective, "reference", {}) or {})
        potentials = self.references()
        out = {}
        for service, weight in self.params["weights"].items():
            if not weight:
                continue
            if service in pinned:
                out[service] = float(pinned[service])
            elif potentials.get(service, 0.0) > REFERENCE_FLOOR:
                out[service] = potentials[service]
        return out

    def references(self) -> dict[str, float]:
        """Per service, the parcels' potential: the sum over parcels of the largest gain any allowed kind gives."""
        n = self.n_parcels
        best = {s: np.full(n, -np.inf) for s in self.services}
        parcels = np.arange(n)
        for j in range(len(self.kinds)):
            ok = self.allowed[:, j]
            if not ok.any():
                continue
            coef = self.coefficients(parcels[ok], np.full(int(ok.sum()), j))
            for s in self.services:
                best[s][ok] = np.maximum(best[s][ok], coef[f"gain_{s}"])
        return {s: float(np.where(np.isfinite(b), b, 0.0).sum()) for s, b in best.items()}


def build_instance(scenario: Any, catalog: Any, parcels: pd.DataFrame, villages: pd.DataFrame,
                   geometry: Any = None) -> Instance:
    """The instance of a scenario: `parcels` with the canonical columns and area_mu, `villages` as read."""
    parcels = pd.DataFrame(parcels).drop(columns=["geometry"], errors="ignore").reset_index(drop=True).copy()
    parcels["parcel_id"] = parcels["parcel_id"].astype(str)
    villages = pd.DataFrame(villages).reset_index(drop=True).copy()
    constraints = scenario.constraints
    default_floor = constraints.income_floor
    if default_floor is None:
        default_floor = float(catalog.defaults.get("income_floor", 4000.0))
    floor = np.full(len(villages), float(default_floor))
    names = villages["village"].astype(str).to_numpy() if len(villages) else np.array([], dtype=object)
    towns = villages["township"].astype(str).to_numpy() if len(villages) else np.array([], dtype=object)
    for township, value in getattr(constraints, "township_floors", {}).items():
        floor[towns == str(township)] = float(value)
    if "income_floor" in villages.columns:  # the village table's own floor, then village_floors, win
        own = pd.to_numeric(villages["income_floor"], errors="coerce").to_numpy(dtype=float)
        floor = np.where(np.isnan(own), floor, own)
    for village, value in constraints.village_floors.items():
        floor[names == str(village)] = float(value)
    villages["floor"] = floor
    villages["growth"] = _growth(constraints, catalog, names, towns)
    villages["transfer_share"] = _transfer_shares(constraints, catalog, names, towns)
    township_names = sorted(set(villages["township"].astype(str))) if len(villages) else []
    villages["township_idx"] = pd.Index(township_names).get_indexer(villages["township"].astype(str)) \
        if len(villages) else np.zeros(0, dtype=np.int64)

    names_, lowers = grade_bands(catalog)
    parcels["grade_rank"] = grade_of(catalog, parcels)
    parcels["grade"] = np.array(names_, dtype=object)[parcels["grade_rank"].to_numpy()] if names_ else ""
    parcels["village_idx"] = pd.Index(names).get_indexer(parcels["village"].astype(str)) if "village" in parcels \
        else -1
    town_of_village = villages["township_idx"].to_numpy(dtype=np.int64)
    parcels["township"] = np.append(np.array(township_names, dtype=object)[town_of_village], "")[
        parcels["village_idx"].to_numpy()] if len(villages) else ""

    kinds = kinds_of(catalog)
    rules = rules_of(catalog, parcels, kinds, scenario)
    allowed = allowed_mask(rules, len(parcels))
    spatial = _spatial(scenario, catalog, parcels, kinds, allowed, geometry)

    uses = catalog.current_uses
    income_now = pd.to_numeric(uses["income_per_mu"], errors="coerce").to_numpy(dtype=float)[
        pd.Index(uses.index.astype(str)).get_indexer(parcels["land_use"].astype(str))]
    area = parcels["area_mu"].to_numpy(dtype=float)
    vidx = parcels["village_idx"].to_numpy(dtype=np.int64)
    inside = vidx >= 0
    villages["current_land_income"] = np.bincount(vidx[inside], weights=(area * income_now)[inside],
                                                  minlength=len(villages))
    village_area = np.bincount(vidx[inside], weights=area[inside], minlength=len(villages))
    townships = pd.DataFrame({"township": township_names,
                              "area_mu": np.bincount(town_of_village, weights=village_area,
                                                     minlength=len(township_names))})

    market = {}
    market_share = getattr(constraints, "market_share", None)  # the planning area's share of the county market
    market_share = 1.0 if market_share is None else float(market_share)
    if len(catalog.market) and "max_area_mu" in catalog.market.columns:
        for pair, value in catalog.market["max_area_mu"].items():
            if not blank(value):
                market[(str(pair[0]), str(pair[1]))] = float(value) * market_share
    for key, value in constraints.market.items():
        option, _, variant = key.partition(".")
        market[(option, variant)] = float(value)
    steps: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in catalog.price_steps.itertuples(index=False):
        steps.setdefault((str(row.option), str(row.variant)), []).append(
            (float(row.from_area_mu), float(row.income_factor)))
    steps = {pair: sorted(v) for pair, v in steps.items()}
    services = list(catalog.services)
    weights = dict(scenario.objective.weights) or {s: 1.0 / len(services) for s in services}
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
        "livestock": _livestock(catalog),
        "rangers": dict(catalog.rangers),
        "area_limits": _area_limits(constraints),
    }
    return Instance(scenario=scenario, catalog=catalog, parcels=parcels, villages=villages, townships=townships,
                    kinds=kinds, rules=rules, allowed=allowed, params=params, market=market, price_steps=steps,
                    services=services, spatial=spatial)


def _livestock(catalog: Any) -> dict[str, Any]:
    """[livestock] as the budget counts it: the purchase cost less the share financed by household microcredit
    (``credit_financed_share``, default 0; docs/data-model.md)."""
    livestock = dict(catalog.livestock)
    share = livestock.get("credit_financed_share")
    share = 0.0 if blank(share) else float(share)
    livestock["purchase_cost_per_head"] = float(livestock["purchase_cost_per_head"]) * (1.0 - share)
    return livestock


def _area_limits(constraints: Any) -> dict[str, tuple[float | None, float | None]]:
    """Scenario ``areas`` (scope ``*``) and ``township_areas`` as ``{"<scope>:<name>": (min, max)}`` (name: option,
    option.variant or herd; docs/data-model.md)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    tables = [("*", getattr(constraints, "areas", {}) or {})]
    tables += list((getattr(constraints, "township_areas", {}) or {}).items())
    for scope, table in tables:
        for name, limits in table.items():
            low, high = limits.get("min"), limits.get("max")
            out[f"{scope}:{name}"] = (None if low is None else float(low), None if high is None else float(high))
    return out


def _transfer_shares(constraints: Any, catalog: Any, names: np.ndarray, towns: np.ndarray) -> np.ndarray:
    """Per village, the cap on its income's share from transfers (NaN: none; docs/data-model.md): the scenario's
    max_transfer_share (else the catalog default; 1 is no cap), then village_transfer_shares per township and per
    village (a village's own entry wins; 1 lifts the cap)."""
    share = getattr(constraints, "max_transfer_share", None)
    if share is None:
        share = float(catalog.defaults.get("max_transfer_share", 1.0))
    out = np.full(len(names), float(share) if float(share) < 1.0 else np.nan)
    table = getattr(constraints, "village_transfer_shares", {}) or {}
    for level in (towns, names):
        for key, value in table.items():
            out[level == key] = float(value) if float(value) < 1.0 else np.nan
    return out


def _growth(constraints: Any, catalog: Any, names: np.ndarray, towns: np.ndarray) -> np.ndarray:
    """Per village, the per-capita income growth over today it must reach (0: no worse off), NaN where no such rule
    holds (docs/data-model.md, "Income rules"): the catalog's defaults.no_worse_off (off when absent), the
    scenario's no_worse_off and income_growth, then per township and per village (a village's own entry wins)."""
    on = getattr(constraints, "no_worse_off", None)
    if on is None:
        on = bool(catalog.defaults.get("no_worse_off", False))
    base = getattr(constraints, "income_growth", None)
    growth = np.full(len(names), float(base) if base is not None else (0.0 if on else np.nan))
    switches = getattr(constraints, "village_no_worse_off", {})
    targets = getattr(constraints, "village_income_growth", {})
    for level in (towns, names):
        for key, flag in switches.items():
            where = level == str(key)
            growth[where] = np.nan_to_num(growth[where], nan=0.0) if flag else np.nan
        for key, value in targets.items():
            growth[level == str(key)] = float(value)
    return growth


# ------------------------------------------------------------------------------------------------------------
# [spatial] and [features]


def _table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A scenario's CSV table read as the solve reads it (optiland.io.tables: encodings, blank lines, repeated
    headers, stripped cells), so that the checker sees the same rows."""
    return read_table(path, path.name, columns, empty_ok=True)


def _number(table: pd.DataFrame, column: str) -> pd.Series:
    """A number column as the solve reads it ("1,200", full-width digits); what the solve refuses counts 0 here."""
    return numbers(table, column, "", []).fillna(0.0)


def _spatial(scenario: Any, catalog: Any, parcels: pd.DataFrame, kinds: Kinds, allowed: np.ndarray,
             geometry: Any) -> Spatial | None:
    config, features = getattr(scenario, "spatial", None), getattr(scenario, "features", None)
    if config is None and features is None:
        return None
    out = Spatial()
    ids = parcels["parcel_id"].astype(str)
    position = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
    options = [str(o) for o in catalog.options.index]
    if config is not None and config.locks is not None:
        table = _table(scenario.resolve(config.locks), ("parcel_id", "option", "lock"))
        locked_in = table["lock"].str.lower().map(LOCK_WORDS)
        out.locks = pd.DataFrame({"parcel_id": table["parcel_id"].to_numpy(), "option": table["option"].to_numpy(),
                                  "locked_in": locked_in.astype(bool).to_numpy(), "line": table.index.to_numpy()})
        for lock in out.locks.itertuples(index=False):  # a lock shrinks the allowed set
            if lock.parcel_id in position.index:
                of_option = kinds.option == lock.option
                p = int(position[lock.parcel_id])
                allowed[p] &= of_option if lock.locked_in else ~of_option
    if config is not None and config.parcel_costs is not None:
        table = _table(scenario.resolve(config.parcel_costs), ("parcel_id", "option", "cost"))
        out.parcel_costs = pd.DataFrame({"parcel_id": table["parcel_id"], "option": table["option"],
                                         "cost": _number(table, "cost").to_numpy()})
    if features is not None:
        table = _table(scenario.resolve(features.path), ("parcel_id", "feature", "amount"))
        out.features = sorted(table["feature"].unique())
        out.amounts = np.zeros((len(ids), len(out.features)))
        rows = position.reindex(table["parcel_id"]).to_numpy()
        cols = pd.Index(out.features).get_indexer(table["feature"])
        ok = ~np.isnan(rows)
        np.add.at(out.amounts, (rows[ok].astype(np.int64), cols[ok]),
                  _number(table, "amount").to_numpy(dtype=float)[ok])
        credited = {k: v if isinstance(v, dict) else dict.fromkeys(v, 1.0) for k, v in features.credited.items()}
        default = credited.get("*", {o: 1.0 for o in options if o != kinds.option[0]})
        out.credited = {f: {str(o): float(s) for o, s in credited.get(f, default).items()} for f in out.features}
        totals = out.amounts.sum(axis=0)
        for name, value in features.targets.items():
            out.targets[name] = max(out.targets.get(name, -np.inf), float(value))
        for name, value in features.relative_targets.items():
            if name in out.features:
                target = float(value) * float(totals[out.features.index(name)])
                out.targets[name] = max(out.targets.get(name, -np.inf), target)
    if config is not None:
        _groups(out, config, catalog, options)
        if config.boundary_penalty > 0:
            out.blm = float(config.boundary_penalty)
            if config.boundaries is not None:
                out.edges, out.outer = _boundary_file(scenario.resolve(config.boundaries), position)
            elif geometry is not None:
                out.edges, out.outer = boundaries_of(geometry)
        if config.neighbourhood_caps:
            import shapely

            centroids = shapely.get_coordinates(shapely.centroid(np.asarray(geometry)))
            for k, cap in enumerate(config.neighbourhood_caps):
                cell, parcel, centres = _cells(centroids, float(cap.radius_m),
                                               float(cap.spacing_m or cap.radius_m / 2.0))
                out.caps.append(Cap(f"cap{k}", list(cap.options), cap.per, float(cap.max_area_mu), cell, parcel,
                                    centres))
    return out


def _groups(out: Spatial, config: Any, catalog: Any, options: list[str]) -> None:
    """Each option's boundary group and the weights between groups (README, "Spatial coherence")."""
    groups = {o: o for o in options}
    if "group" in catalog.options.columns:
        for option, group in catalog.options["group"].items():
            if isinstance(group, str) and group.strip():
                groups[str(option)] = group.strip()
    groups.update({str(o): str(g) for o, g in config.groups.items()})
    if config.between == "protected":
        protected = set(config.protected)
        groups = {o: "protected" if (g in protected or o in protected) else "unprotected" for o, g in groups.items()}
        names = ["protected", "unprotected"]
    else:
        names = sorted(set(groups.values()))
    names.append(OUTSIDE)
    k = len(names)
    weights = 1.0 - np.eye(k)
    weights[-1, :] = weights[:, -1] = 0.0
    if config.between == "protected":
        weights[0, -1] = weights[-1, 0] = 1.0
    for key, value in config.group_weights.items():
        a, b = (names.index(part.strip()) for part in key.split("|"))
        weights[a, b] = weights[b, a] = float(value)
    out.option_group, out.groups, out.weights = groups, names, weights


def _boundary_file(path: Path, position: pd.Series) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray],
                                                               np.ndarray]:
    """A boundary table (id1, id2, boundary; id1 = id2 is an outer edge), comma, tab or space separated."""
    if path.suffix.lower() == ".parquet":
        table = pd.read_parquet(path)
        table["boundary"] = pd.to_numeric(table["boundary"], errors="coerce")
    else:
        table = read_table(path, path.name, ("id1", "id2", "boundary"), separators=("\t", ",", ";", " "))
        table["boundary"] = _number(table, "boundary")
    left = position.reindex(table["id1"].astype(str).str.strip()).to_numpy()
    right = position.reindex(table["id2"].astype(str).str.strip()).to_numpy()
    length = pd.to_numeric(table["boundary"], errors="coerce").to_numpy(dtype=float)
    ok = ~np.isnan(left) & ~np.isnan(right)
    left, right, length = left[ok].astype(np.int64), right[ok].astype(np.int64), length[ok]
    outer = np.zeros(len(position))
    same = left == right
    np.add.at(outer, left[same], length[same])
    return (left[~same], right[~same], length[~same]), outer


def boundaries_of(geometry: Any) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Shared boundary length of every pair of touching parcels and each parcel's outer boundary, by shapely
    intersection of the polygons' boundaries (slow, independent of optiland.model.adjacency)."""
    import shapely

    geometry = np.asarray(geometry)
    rings = shapely.boundary(geometry)
    left, right = shapely.STRtree(geometry).query(geometry, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    length = shapely.length(shapely.intersection(rings[left], rings[right]))
    keep = length > 0
    left, right, length = left[keep], right[keep], length[keep]
    shared = np.bincount(left, weights=length, minlength=len(geometry)) + np.bincount(
        right, weights=length, minlength=len(geometry))
    outer = np.maximum(shapely.length(rings) - shared, 0.0)
    return (left.astype(np.int64), right.astype(np.int64), length), outer


def _cells(centroids: np.ndarray, radius: float, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell, parcel) pairs of a hexagonal grid of centres `spacing` apart covering the parcels grown by the
    radius: a parcel belongs to a cell when its centroid lies within `radius` of the centre."""
    import shapely

    xmin, ymin = centroids.min(axis=0) - radius
    xmax, ymax = centroids.max(axis=0) + radius
    dy = spacing * np.sqrt(3.0) / 2.0
    ys = np.arange(ymin, ymax + dy, dy)
    xs = np.arange(xmin, xmax + spacing, spacing)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + (np.arange(len(ys)) % 2)[:, None] * spacing / 2.0
    centres = np.column_stack([gx.ravel(), gy.ravel()])
    cell, parcel = shapely.STRtree(shapely.points(centroids)).query(shapely.points(centres), predicate="dwithin",
                                                                     distance=radius)
    used, cell = np.unique(cell, return_inverse=True)
    return cell.astype(np.int64), parcel.astype(np.int64), centres[used]


def instance_of(source: Any) -> Instance:
    """The checker's instance of an Instance, of a Prepared-like object (scenario, catalog, inputs), or of anything with
    a scenario, a catalog and the parcel and village tables."""
    if isinstance(source, Instance):
        return source
    inputs = getattr(source, "inputs", None)
    if inputs is not None:
        return instance_from_inputs(source.scenario, source.catalog, inputs)
    if all(hasattr(source, a) for a in ("scenario", "catalog", "parcels", "villages")):
        # a table of parcels and villages with a scenario and catalog (a PlanningProblem, say): only the input
        # columns are read; without geometry a neighbourhood cap cannot be checked
        return build_instance(source.scenario, source.catalog, source.parcels, source.villages)
    raise TypeError(f"cannot check against a {type(source).__name__}: give the scenario's Prepared (scenario, "
                    "catalog, inputs) or an optiland.check Instance")


def instance_from_inputs(scenario: Any, catalog: Any, inputs: Any) -> Instance:
    """An instance from the io layer's Inputs: areas in mu from the geometry where there is one."""
    parcels = pd.DataFrame(inputs.parcels.drop(columns="geometry", errors="ignore"))
    geometry = None
    if "geometry" in inputs.parcels and len(inputs.parcels) and inputs.parcels.geometry.notna().all():
        geometry = inputs.parcels.geometry.to_numpy()
        import shapely

        parcels["area_mu"] = shapely.area(geometry) / M2_PER_MU
    return build_instance(scenario, catalog, parcels, inputs.villages, geometry)
