"""Spatial coherence and conservation data of a problem: option groups, the boundary-penalty weights, shared
boundaries, locked-in and locked-out parcels, and feature amounts with their targets (scenario sections
``[spatial]`` and ``[features]``; README, "Spatial coherence"). The constraint families are in
optiland.model.formulation.

Groups. Every option belongs to one group: the catalog's optional ``group`` column of options.csv, overridden per
option by ``[spatial] groups``; an option without one is its own group. With ``between = "protected"`` the groups
collapse to two, ``protected`` (the groups listed in ``protected``) and ``unprotected``. A further group,
``outside``, stands for what lies beyond the planning area; a parcel's outer edge borders it.

Weights. The penalty of a boundary of length b between parcels in groups k and l is ``BLM x w[k, l] x b``, with
w symmetric: by default 1 between different groups and 0 within a group; 0 to ``outside`` for ``between =
"groups"`` and 1 from ``protected`` to ``outside`` for ``between = "protected"`` (Marxan counts the outer edge of
a selected unit); ``[spatial] group_weights`` ("k|l" = w) overrides any pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optiland.errors import InputError, Issue
from optiland.io.tables import duplicate_keys, line, numbers, read_table
from optiland.model.adjacency import boundary_arrays, boundary_table, cached_boundary_table, read_boundary_table

if TYPE_CHECKING:
    from optiland.io.catalog import Catalog
    from optiland.io.scenario import Scenario

OUTSIDE = "outside"
PROTECTED, UNPROTECTED = "protected", "unprotected"
LOCK_VALUES = {"in": True, "out": False, "locked_in": True, "locked_out": False, "2": True, "3": False}


@dataclass
class NeighbourhoodCap:
    """A neighbourhood cap as arrays: which parcels each grid cell holds (pairs cell, parcel), the capped options,
    whether the cap applies per variant or per option, and the cap in mu."""

    name: str
    options: list[str]
    per: str
    max_area: float
    cell: np.ndarray
    parcel: np.ndarray
    centres: np.ndarray
    """(n_cells, 2) coordinates of the grid centres."""

    def groups_of_rows(self, allowed: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """The capped group (variant 'option.variant' or option) of every allowed row (-1: not capped), and names."""
        options = allowed["option"].to_numpy()
        capped = np.isin(options, self.options)
        labels = options if self.per == "option" else np.char.add(np.char.add(options.astype(str), "."),
                                                                    allowed["variant"].to_numpy().astype(str))
        names = sorted(set(labels[capped]))
        position = pd.Series(np.arange(len(names)), index=names, dtype=np.int64)
        group = np.full(len(allowed), -1, dtype=np.int64)
        group[capped] = position.reindex(labels[capped]).to_numpy()
        return group, names

    def excess(self, allowed: pd.DataFrame, chosen_rows: np.ndarray, n_parcels: int,
               tol: float = 1e-6) -> list[tuple[int, int, float]]:
        """(cell, group, area) of every cell where a plan (its chosen allowed rows) puts more than the cap of one
        group."""
        group, names = self.groups_of_rows(allowed)
        of_parcel = np.full(n_parcels, -1, dtype=np.int64)
        area = np.zeros(n_parcels)
        rows = chosen_rows[group[chosen_rows] >= 0]
        of_parcel[allowed["parcel"].to_numpy()[rows]] = group[rows]
        area[allowed["parcel"].to_numpy()[rows]] = allowed["area"].to_numpy()[rows]
        return self.excess_of(of_parcel, area, len(names), tol)

    def excess_of(self, group_of_parcel: np.ndarray, area: np.ndarray, n_groups: int,
                  tol: float = 1e-6) -> list[tuple[int, int, float]]:
        """(cell, group, area) over the cap, for a plan given as each parcel's capped group (-1: none) and area."""
        hit = group_of_parcel[self.parcel] >= 0
        keys = self.cell[hit] * max(n_groups, 1) + group_of_parcel[self.parcel[hit]]
        totals = pd.Series(area[self.parcel[hit]]).groupby(keys).sum()
        over = totals[totals > self.max_area + tol * max(1.0, self.max_area)]
        return [(int(k) // max(n_groups, 1), int(k) % max(n_groups, 1), float(v)) for k, v in over.items()]


def hexagon_centres(bounds: tuple[float, float, float, float], spacing: float, margin: float) -> np.ndarray:
    """Centres of a hexagonal (triangular-lattice) grid of `spacing` covering `bounds` grown by `margin`."""
    xmin, ymin, xmax, ymax = bounds
    dy = spacing * np.sqrt(3.0) / 2.0
    ys = np.arange(ymin - margin, ymax + margin + dy, dy)
    xs = np.arange(xmin - margin, xmax + margin + spacing, spacing)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + (np.arange(len(ys)) % 2)[:, None] * spacing / 2.0
    return np.column_stack([gx.ravel(), gy.ravel()])


def neighbourhoods(centroids: np.ndarray, radius: float, spacing: float) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray]:
    """(cell, parcel) pairs: parcel centroids within `radius` of each centre of a hexagonal grid, and the centres
    (only those holding a parcel), vectorised with an STRtree ``dwithin`` query."""
    import shapely

    points = shapely.points(centroids)
    bounds = (centroids[:, 0].min(), centroids[:, 1].min(), centroids[:, 0].max(), centroids[:, 1].max())
    centres = hexagon_centres(bounds, spacing, radius)
    cell, parcel = shapely.STRtree(points).query(shapely.points(centres), predicate="dwithin", distance=radius)
    used, cell = np.unique(cell, return_inverse=True)
    return cell.astype(np.int64), parcel.astype(np.int64), centres[used]


@dataclass
class SpatialData:
    """Boundaries as parcel positions, groups and weights, and the feature targets, ready for the formulation."""

    blm: float = 0.0
    groups: list[str] = field(default_factory=list)
    """Group names; the last is ``outside``."""
    option_group: dict[str, str] = field(default_factory=dict)
    weights: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    """w[k, l] over `groups` (symmetric, >= 0)."""
    edge_left: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    edge_right: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    edge_length: np.ndarray = field(default_factory=lambda: np.zeros(0))
    outer_length: np.ndarray = field(default_factory=lambda: np.zeros(0))
    features: list[str] = field(default_factory=list)
    amounts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """amount[p, f] of feature f on parcel p."""
    credited: dict[str, dict[str, float]] = field(default_factory=dict)
    """Feature -> option -> the share of the parcel's amount the option earns (1 when listed without a share)."""
    targets: dict[str, float] = field(default_factory=dict)
    """Feature -> the absolute amount the plan must reach."""
    notes: list[str] = field(default_factory=list)
    locks: pd.DataFrame | None = None
    """The lock table (parcel_id, option, locked_in, line) applied to the allowed set, for checks."""
    caps: list[NeighbourhoodCap] = field(default_factory=list)
    parcel_costs: pd.DataFrame | None = None
    """The parcel cost table (parcel_id, option, cost) added to the allowed rows' costs, for checks."""

    @property
    def penalised(self) -> bool:
        """Whether the boundary penalty enters the objective."""
        return self.blm > 0 and bool(self.weights.any()) and (len(self.edge_length) > 0 or self.outer_length.any())

    def group_index(self, options: np.ndarray) -> np.ndarray:
        """The group position of each option name."""
        position = {name: k for k, name in enumerate(self.groups)}
        return np.array([position[self.option_group[o]] for o in options], dtype=np.int64)

    def row_amounts(self, allowed: pd.DataFrame) -> np.ndarray:
        """A[f, a]: the amount of feature f allowed row a earns (its parcel's amount if its option is credited)."""
        parcel = allowed["parcel"].to_numpy()
        options = allowed["option"].to_numpy()
        out = np.zeros((len(self.features), len(allowed)))
        for f, name in enumerate(self.features):
            share = pd.Series(self.credited[name], dtype=float).reindex(options).fillna(0.0).to_numpy()
            out[f] = self.amounts[parcel, f] * share
        return out

    def boundary_of(self, parcel_group: np.ndarray) -> float:
        """Sum of w x boundary over a plan given as the group position of every parcel: the boundary length that
        the penalty weighs (Marxan's "boundary"; also at BLM 0 when a boundary table is given)."""
        g = parcel_group
        shared = float((self.weights[g[self.edge_left], g[self.edge_right]] * self.edge_length).sum())
        outer = float((self.weights[g, len(self.groups) - 1] * self.outer_length).sum())
        return shared + outer

    def penalty_of(self, parcel_group: np.ndarray) -> float:
        """BLM x `boundary_of` (for checks)."""
        return self.blm * self.boundary_of(parcel_group)


def option_groups(catalog: Catalog, scenario: Scenario) -> dict[str, str]:
    """Option -> group: the catalog's ``group`` column, then the scenario's ``[spatial] groups``."""
    config = scenario.spatial
    options = list(catalog.options.index)
    groups = {o: o for o in options}
    if "group" in catalog.options.columns:
        for option, group in catalog.options["group"].items():
            if isinstance(group, str) and group.strip():
                groups[str(option)] = group.strip()
    for option, group in (config.groups if config else {}).items():
        if option not in groups:
            raise InputError([Issue(f"unknown option; known: {', '.join(options)}", column="spatial.groups",
                                    value=option)])
        groups[option] = group
    return groups


def _weights(config: object, groups: list[str], file: str | None) -> np.ndarray:
    k = len(groups)
    weights = 1.0 - np.eye(k)
    weights[-1, :] = weights[:, -1] = 0.0
    if getattr(config, "between", "groups") == "protected":
        weights[groups.index(PROTECTED), -1] = weights[-1, groups.index(PROTECTED)] = 1.0
    for key, value in getattr(config, "group_weights", {}).items():
        names = [part.strip() for part in key.split("|")]
        unknown = [name for name in names if name not in groups]
        if len(names) != 2 or unknown:
            raise InputError([Issue(f"a group pair is 'group|group' with groups among {', '.join(groups)}",
                                    file=file, column="spatial.group_weights", value=key)])
        if value < 0:
            raise InputError([Issue("a group weight must be >= 0", file=file, column=f"spatial.group_weights.{key}",
                                    value=value)])
        a, b = groups.index(names[0]), groups.index(names[1])
        weights[a, b] = weights[b, a] = float(value)
    return weights


def _read_parcel_table(path: Path, what: str, columns: tuple[str, ...], parcel_ids: np.ndarray,
                       options: list[str] | None = None, empty_ok: bool = False) -> tuple[pd.DataFrame, list[Issue]]:
    """A CSV table keyed by parcel_id (optiland.io.tables.read_table: Excel's encodings, blank lines and error
    cells handled; the index is the line number): the required columns must be there; unknown parcel ids (and
    options, when `options` is given) come back as problems naming their line."""
    file = str(path)
    table = read_table(path, what, columns, empty_ok=empty_ok)
    known = set(map(str, parcel_ids))
    problems = _bad_lines(table, "parcel_id", ~table["parcel_id"].isin(known), "unknown parcel id (not in the "
                          "parcel layer)", file)
    if options is not None:
        problems += _bad_lines(table, "option", ~table["option"].isin(options),
                               f"unknown option; known: {', '.join(options)}", file)
    return table, problems


def _bad_lines(table: pd.DataFrame, column: str, bad: pd.Series, message: str, file: str,
               most: int = 20) -> list[Issue]:
    """An Issue for each of the first `most` lines where `bad` holds (the line numbers of the file)."""
    return [Issue(message, file=file, row=line(table, i), column=column, value=table[column].iloc[i])
            for i in np.flatnonzero(bad.to_numpy())[:most]]


def read_locks(path: Path, parcel_ids: np.ndarray, options: list[str]) -> pd.DataFrame:
    """Read a lock table (parcel_id, option, lock = in | out); errors name the line, column and value. A header
    without rows locks nothing; a (parcel, option) listed twice is an error naming both lines, unless the rows
    are identical."""
    table, problems = _read_parcel_table(path, "lock table", ("parcel_id", "option", "lock"), parcel_ids, options,
                                         empty_ok=True)
    lock = table["lock"].str.lower()
    problems += _bad_lines(table, "lock", ~lock.isin(list(LOCK_VALUES)), "lock is 'in' or 'out'", str(path))
    table, repeated = duplicate_keys(table.assign(lock=lock)[["parcel_id", "option", "lock"]],
                                     ("parcel_id", "option"), str(path), identical_ok=True,
                                     fix="keep the one meant")
    problems += repeated
    if problems:
        raise InputError(problems)
    return pd.DataFrame({"parcel_id": table["parcel_id"].to_numpy(), "option": table["option"].to_numpy(),
                         "locked_in": table["lock"].map(LOCK_VALUES).astype(bool).to_numpy(),
                         "line": table.index.to_numpy()})


def apply_locks(allowed_mask: np.ndarray, kinds: pd.DataFrame, parcel_ids: np.ndarray, locks: pd.DataFrame,
                file: str) -> None:
    """Restrict the (parcel, kind) mask in place: a parcel locked in to an option keeps only that option's
    variants; a parcel locked out of an option loses them. A parcel left with nothing is an error naming the
    lock's line."""
    position = pd.Series(np.arange(len(parcel_ids)), index=pd.Index(np.asarray(parcel_ids).astype(str)))
    kind_option = kinds["option"].to_numpy()
    problems = []
    for lock in locks.itertuples(index=False):
        p = int(position[lock.parcel_id])
        of_option = kind_option == lock.option
        if lock.locked_in:
            if not (allowed_mask[p] & of_option).any():
                problems.append(Issue("locked in to an option its site rules forbid (see `optiland explain`)",
                                      file=file, row=f"line {lock.line}", column="option", value=lock.option))
            allowed_mask[p] &= of_option
        else:
            allowed_mask[p] &= ~of_option
            if not allowed_mask[p].any():
                problems.append(Issue("the locks leave no option on this parcel", file=file,
                                      row=f"line {lock.line}", column="parcel_id", value=lock.parcel_id))
    if problems:
        raise InputError(problems)


def read_features(path: Path, parcel_ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Read a long feature table (parcel_id, feature, amount) into names and an amount[parcel, feature] matrix;
    a (parcel, feature) listed twice is an error naming both lines (added up or a copy? the planner says)."""
    table, problems = _read_parcel_table(path, "feature table", ("parcel_id", "feature", "amount"), parcel_ids)
    amount = numbers(table, "amount", str(path), problems)
    problems += duplicate_keys(table[["parcel_id", "feature", "amount"]], ("parcel_id", "feature"), str(path))[1]
    if problems:
        raise InputError(problems)
    position = pd.Series(np.arange(len(parcel_ids)), index=pd.Index(np.asarray(parcel_ids).astype(str)))
    parcel = position.reindex(table["parcel_id"].to_numpy()).to_numpy()
    names = sorted(table["feature"].unique())
    feature = pd.Series(np.arange(len(names)), index=names).reindex(table["feature"]).to_numpy()
    matrix = np.zeros((len(parcel_ids), len(names)))
    np.add.at(matrix, (parcel.astype(np.int64), feature), amount.to_numpy(dtype=float))
    return names, matrix


def read_parcel_costs(path: Path, parcel_ids: np.ndarray, options: list[str]) -> pd.DataFrame:
    """Read a parcel cost table (parcel_id, option, cost): the cost of giving the parcel that option (for example
    Marxan's planning-unit cost of a zone), added to the establishment cost of the parcel's rows of the option.
    A header without rows adds nothing; a (parcel, option) listed twice is an error naming both lines."""
    table, problems = _read_parcel_table(path, "parcel cost table", ("parcel_id", "option", "cost"), parcel_ids,
                                         options, empty_ok=True)
    cost = numbers(table, "cost", str(path), problems)
    problems += duplicate_keys(table[["parcel_id", "option", "cost"]], ("parcel_id", "option"), str(path))[1]
    if problems:
        raise InputError(problems)
    return pd.DataFrame({"parcel_id": table["parcel_id"].to_numpy(), "option": table["option"].to_numpy(),
                         "cost": cost.to_numpy()})


def add_parcel_costs(allowed: pd.DataFrame, parcel_ids: np.ndarray, costs: pd.DataFrame) -> None:
    """Add each (parcel, option) cost to the establishment cost of the allowed rows it names, in place."""
    summed = costs.groupby(["parcel_id", "option"])["cost"].sum()
    keys = pd.MultiIndex.from_arrays([np.asarray(parcel_ids).astype(str)[allowed["parcel"].to_numpy()],
                                      allowed["option"].to_numpy()])
    allowed["cost"] = allowed["cost"].to_numpy() + summed.reindex(keys).fillna(0.0).to_numpy()


def build_spatial(scenario: Scenario, catalog: Catalog, parcel_ids: np.ndarray,
                  geometry: np.ndarray | None, parcel_file: Path | None, parcel_hash: str | None) -> SpatialData | None:
    """The spatial data of a scenario with a ``[spatial]`` or ``[features]`` section (None without both)."""
    config, features = scenario.spatial, scenario.features
    if config is None and features is None:
        return None
    data = SpatialData()
    source = str(scenario.source_path) if scenario.source_path else None
    groups = option_groups(catalog, scenario)
    if config is not None and config.between == "protected":
        named = set(groups.values()) | set(groups)
        unknown = [g for g in config.protected if g not in named]
        if unknown or not config.protected:
            raise InputError([Issue(f"'protected' lists groups or options among {', '.join(sorted(named))}",
                                    file=source, column="spatial.protected", value=unknown or config.protected)])
        groups = {o: PROTECTED if (g in config.protected or o in config.protected) else UNPROTECTED
                  for o, g in groups.items()}
        names = [PROTECTED, UNPROTECTED]
    else:
        names = sorted(set(groups.values()))
    data.option_group = groups
    data.groups = names + [OUTSIDE]
    # at BLM 0 a boundary table given is still read (the boundary length is reported, e.g. Marxan's score); the
    # geometry is not intersected for it
    if config is not None and (config.boundary_penalty > 0 or config.boundaries is not None):
        data.blm = float(config.boundary_penalty)
        data.weights = _weights(config, data.groups, source)
        if config.boundaries is not None:
            path = scenario.resolve(config.boundaries)
            table, note = read_boundary_table(path), f"boundaries read from {path}"
            file = str(path)
        elif geometry is not None and parcel_file is not None and parcel_hash:
            table, note = cached_boundary_table(parcel_file, parcel_hash, parcel_ids, geometry)
            file = note
        elif geometry is not None:  # in-memory parcels (no file to cache beside)
            table, note, file = boundary_table(parcel_ids, geometry), "boundaries computed", "geometry"
        else:
            raise InputError([Issue("a boundary penalty needs parcel geometry or a boundary table",
                                    file=source, column="spatial.boundaries")])
        data.edge_left, data.edge_right, data.edge_length, data.outer_length = boundary_arrays(table, parcel_ids,
                                                                                                file)
        data.notes.append(note)
    else:
        data.weights = np.zeros((len(data.groups), len(data.groups)))
        data.outer_length = np.zeros(len(parcel_ids))
    for k, cap in enumerate(config.neighbourhood_caps if config is not None else []):
        unknown = [o for o in cap.options if o not in catalog.options.index]
        if unknown:
            raise InputError([Issue(f"unknown option; known: {', '.join(catalog.options.index)}", file=source,
                                    column=f"spatial.neighbourhood_caps[{k}].options", value=unknown)])
        if geometry is None or all(g is None for g in geometry[:1]):
            raise InputError([Issue("a neighbourhood cap needs parcel geometry", file=source,
                                    column=f"spatial.neighbourhood_caps[{k}]")])
        import shapely

        centroids = shapely.get_coordinates(shapely.centroid(geometry))
        cell, parcel, centres = neighbourhoods(centroids, cap.radius_m, cap.spacing_m or cap.radius_m / 2.0)
        data.caps.append(NeighbourhoodCap(f"cap{k}", list(cap.options), cap.per, float(cap.max_area_mu), cell,
                                          parcel, centres))
    if features is not None:
        path = scenario.resolve(features.path)
        data.features, data.amounts = read_features(path, parcel_ids)
        options = list(catalog.options.index)
        credited = {key: value if isinstance(value, dict) else dict.fromkeys(value, 1.0)
                    for key, value in features.credited.items()}
        default = credited.get("*", {o: 1.0 for o in options if o != catalog.keep_option})
        for key, listed in credited.items():
            unknown = [o for o in listed if o not in options]
            if unknown or (key != "*" and key not in data.features):
                raise InputError([Issue(f"credited options of a feature: known features {', '.join(data.features)},"
                                        f" options {', '.join(options)}", file=source,
                                        column=f"features.credited.{key}", value=unknown or key)])
        data.credited = {f: dict(credited.get(f, default)) for f in data.features}
        totals = data.amounts.sum(axis=0)
        for kind, given in (("targets", features.targets), ("relative_targets", features.relative_targets)):
            for name, value in given.items():
                if name not in data.features:
                    raise InputError([Issue(f"unknown feature; known: {', '.join(data.features)}", file=source,
                                            column=f"features.{kind}", value=name)])
                target = float(value) * float(totals[data.features.index(name)]) if kind == "relative_targets" \
                    else float(value)
                data.targets[name] = max(data.targets.get(name, -np.inf), target)
    return data
