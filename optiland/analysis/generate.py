"""Synthetic planning instances: a jittered quadrilateral lattice of parcels with terrain, site attributes, current
land use, ecological protection red lines, basic farmland, townships and villages, plus the village table and a
scenario file.

Nothing here belongs to a region: the distributions (parcel size, relief, the site attributes the catalog declares,
land-use shares and scores, red line, farmland, village figures, scenario limits) are the catalog's ``[generate]``
table, written as formulas (optiland.io.expressions). Instances are synthetic: no parcel, village or figure describes a
real place; the calibration of each region's table is documented in instances/README.md.

Everything is computed with numpy / scipy / shapely array functions on the lattice; the only Python loops run over
land-use classes, townships and villages, never over parcels. One million parcels take about 12 s and 1.5 GB at
peak, writing the GeoPackage included (instances/README.md has the measurements).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from optiland._paths import models_dir
from optiland.errors import InputError, Issue
from optiland.io.catalog import Catalog, load_catalog
from optiland.io.expressions import ExpressionError, evaluate
from optiland.model.problem import best_income_per_mu

M2_PER_MU = 10000.0 / 15.0  # 1 mu = 666.67 m2
JITTER = 0.3  # interior vertices move up to this fraction of a cell in x and in y (< 0.5 keeps quads simple)

GPKG_TIMESTAMP = "2020-01-01T00:00:00.000Z"  # fixed gpkg_contents.last_change: identical arguments, identical bytes


# --------------------------------------------------------------------------------------------------------------------
# fields on the lattice


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise (correlation length `sigma` cells), standardised to mean 0 and std 1.

    The noise is drawn on a grid padded by 3 sigma (no edge artefacts, and fields wider than the instance stay
    smooth); wide kernels work on a grid coarser by sigma/4 and are interpolated back (cubic), which keeps the cost
    of a 100-cell kernel on a million cells small.
    """
    factor = max(1, int(sigma // 4))
    coarse_sigma = sigma / factor
    pad = int(math.ceil(3 * coarse_sigma)) + 2
    coarse_shape = tuple(math.ceil(size / factor) + 1 + 2 * pad for size in shape)
    coarse = ndi.gaussian_filter(rng.standard_normal(coarse_shape), coarse_sigma, mode="reflect")
    if factor == 1:
        field = coarse[pad:pad + shape[0], pad:pad + shape[1]]
    else:
        rows = (np.arange(shape[0]) + 0.5) / factor - 0.5 + pad
        cols = (np.arange(shape[1]) + 0.5) / factor - 0.5 + pad
        grid_rows = np.broadcast_to(rows[:, None], shape)
        grid_cols = np.broadcast_to(cols[None, :], shape)
        field = ndi.map_coordinates(coarse, [grid_rows, grid_cols], order=3, mode="nearest")
    return _standardise(field)


def _standardise(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return (values - values.mean()) / (std if std > 0 else 1.0)


def _smooth(grid: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a cell grid that ignores cells outside the instance (normalised convolution)."""
    weight = ndi.gaussian_filter(valid.astype(float), sigma, mode="constant")
    value = ndi.gaussian_filter(np.where(valid, grid, 0.0), sigma, mode="constant")
    return value / np.maximum(weight, 1e-12)


def _rank01(values: np.ndarray) -> np.ndarray:
    """Rank of each value in [0, 1] (ties broken by position, deterministic)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks / max(len(values) - 1, 1)


def _lattice(n: int, rng: np.random.Generator, cell_m: float,
             centre: tuple[float, float]) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Columns, rows and the jittered vertex coordinates ((rows+1) x (cols+1)) of a lattice holding n cells.

    Cells are numbered row by row from the south-west corner; the last row may be partly filled (cells >= n are not
    parcels). Vertices on the outer rectangle stay in place, interior ones move uniformly by less than JITTER cells.
    """
    nx = math.ceil(math.sqrt(n))
    ny = math.ceil(n / nx)
    x0 = centre[0] - nx * cell_m / 2
    y0 = centre[1] - ny * cell_m / 2
    vx = x0 + np.arange(nx + 1, dtype=float)[None, :] * cell_m + np.zeros((ny + 1, 1))
    vy = y0 + np.arange(ny + 1, dtype=float)[:, None] * cell_m + np.zeros((1, nx + 1))
    jitter = rng.uniform(-JITTER, JITTER, size=(2, ny + 1, nx + 1)) * cell_m
    jitter[:, [0, -1], :] = 0.0
    jitter[:, :, [0, -1]] = 0.0
    vx = np.round(vx + jitter[0], 2)  # centimetres: neighbours read the same vertex, so shared edges stay exact
    vy = np.round(vy + jitter[1], 2)
    return nx, ny, vx, vy


def _terrain(rng: np.random.Generator, ny: int, nx: int, cell_m: float,
             terrain: dict) -> tuple[np.ndarray, np.ndarray]:
    """Elevation (m) and slope (degrees) of every cell, from the catalog's ``[generate.terrain]``.

    Noise octaves ([sigma in cells, weight]) pass through a logistic curve (steepness, midpoint, plus a linear share),
    which gives flat floors and steep flanks, scaled so the median slope is ``slope_median_deg``; a regional trend
    (``regional_sigma``) fills the rest of ``elevation_range``. Slope is the gradient of the bilinear surface through
    each cell's four corners, at the cell centre.
    """
    shape = (ny + 1, nx + 1)
    octaves = [(float(sigma), float(weight)) for sigma, weight in terrain["octaves"]]
    h = _standardise(sum(weight * _noise(rng, shape, sigma) for sigma, weight in octaves))
    regional = _noise(rng, shape, float(terrain["regional_sigma"]))

    def gradient(z: np.ndarray) -> np.ndarray:
        gx = ((z[:-1, 1:] - z[:-1, :-1]) + (z[1:, 1:] - z[1:, :-1])) / (2 * cell_m)
        gy = ((z[1:, :-1] - z[:-1, :-1]) + (z[1:, 1:] - z[:-1, 1:])) / (2 * cell_m)
        return np.hypot(gx, gy)

    steepness, midpoint = float(terrain["logistic_steepness"]), float(terrain["logistic_midpoint"])
    cones = 1.0 / (1.0 + np.exp(-steepness * (h - midpoint))) + float(terrain["linear_share"]) * h
    scale = (math.tan(math.radians(float(terrain["slope_median_deg"])))
             / max(float(np.median(gradient(cones))), 1e-12))
    local = scale * cones
    local -= local.min()
    low, high = (float(v) for v in terrain["elevation_range"])
    spare = max(high - low - float(local.max()), 0.0)
    spread = float(regional.max() - regional.min())
    trend = (regional - regional.min()) / (spread if spread > 0 else 1.0) * 0.9 * spare
    vertex_elevation = np.clip(low + local + trend, low, high)
    slope = np.degrees(np.arctan(gradient(vertex_elevation)))
    elevation = (vertex_elevation[:-1, :-1] + vertex_elevation[:-1, 1:] + vertex_elevation[1:, :-1]
                 + vertex_elevation[1:, 1:]) / 4
    return elevation, np.clip(slope, 0.0, float(terrain["slope_max_deg"]))


# --------------------------------------------------------------------------------------------------------------------
# attributes


def _take_top(score: np.ndarray, free: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` free entries with the highest score (deterministic)."""
    candidates = np.flatnonzero(free)
    count = min(count, len(candidates))
    if count <= 0:
        return candidates[:0]
    order = np.argsort(-score[candidates], kind="stable")
    return candidates[order[:count]]


def _land_use(steps: list[tuple[str, float, np.ndarray]], remainder: str, n: int) -> np.ndarray:
    """Current land use by ranked suitability: each (code, share, score) step in turn gives its code to the free
    parcels with the highest score; counts follow the shares exactly; the rest takes `remainder`."""
    land_use = np.full(n, remainder, dtype=object)
    free = np.ones(n, dtype=bool)
    done = 0.0
    for code, share, score in steps:
        # cumulative rounding: the counts add up to round(cumulative share x n) after every step
        count = round((done + share) * n) - round(done * n)
        done += share
        taken = _take_top(score, free, count)
        land_use[taken] = code
        free[taken] = False
    return land_use.astype(str)


def _components_fix(labels: np.ndarray, group: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Make every label 4-connected: keep each label's largest component, give the other cells to a 4-neighbour
    of the same group (township; or the whole instance), repeating until every cell is assigned."""
    labels = labels.copy()
    structure = ndi.generate_binary_structure(2, 1)
    for label, box in enumerate(ndi.find_objects(labels + 1)):  # labels -1 (outside) become background 0
        if box is None:
            continue
        mask = labels[box] == label
        parts, count = ndi.label(mask, structure)
        if count > 1:
            sizes = np.bincount(parts.ravel())
            sizes[0] = 0
            keep = int(np.argmax(sizes))
            sub = labels[box]
            sub[mask & (parts != keep)] = -2
    orphan = labels == -2
    for _ in range(labels.size):
        if not orphan.any():
            break
        for axis, shift in ((1, 1), (1, -1), (0, 1), (0, -1)):
            neighbour = np.roll(labels, shift, axis=axis)
            neighbour_group = np.roll(group, shift, axis=axis)
            edge = np.zeros_like(valid)
            if axis == 1:
                edge[:, 0 if shift == 1 else -1] = True
            else:
                edge[0 if shift == 1 else -1, :] = True
            take = orphan & (neighbour >= 0) & (neighbour_group == group) & ~edge
            labels[take] = neighbour[take]
            orphan &= ~take
    if orphan.any():
        raise RuntimeError("could not make the regions contiguous")
    labels[~valid] = -1
    return labels


def _spread_centres(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 6) -> np.ndarray:
    """Indices of k distinct points spread over `points` (a few Lloyd iterations, then snapped to points)."""
    if k >= len(points):
        return np.arange(len(points))
    centres = points[rng.choice(len(points), size=k, replace=False)]
    for _ in range(iterations):
        nearest = cKDTree(centres).query(points)[1]
        counts = np.bincount(nearest, minlength=k)
        sums = np.stack([np.bincount(nearest, weights=points[:, d], minlength=k) for d in (0, 1)], axis=1)
        moved = counts > 0
        centres[moved] = sums[moved] / counts[moved, None]
    snapped = cKDTree(points).query(centres)[1]
    if len(np.unique(snapped)) < k:  # two centres on one point: fall back to a random spread
        snapped = rng.choice(len(points), size=k, replace=False)
    return snapped


def _regions(rng: np.random.Generator, ny: int, nx: int, valid: np.ndarray, n_townships: int,
             n_villages: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Township label grid, village label grid and each village's township (labels are 0-based)."""
    rows, cols = np.nonzero(valid)
    points = np.stack([cols + 0.5, rows + 0.5], axis=1)
    township = np.full((ny, nx), -1, dtype=np.int64)
    seeds = _spread_centres(points, n_townships, rng)
    township[rows, cols] = cKDTree(points[seeds]).query(points)[1]
    whole = valid.astype(np.int64)
    township = _components_fix(township, whole, valid)

    cells = np.bincount(township[valid], minlength=n_townships)
    extra = n_villages - n_townships
    quota = cells / cells.sum() * extra
    count = np.floor(quota).astype(np.int64)
    rest = extra - int(count.sum())
    count[np.argsort(-(quota - count), kind="stable")[:rest]] += 1
    count += 1
    if (count > cells).any():
        raise ValueError("a township has fewer parcels than villages; use more parcels or fewer villages")
    village_township = np.repeat(np.arange(n_townships), count)

    village = np.full((ny, nx), -1, dtype=np.int64)
    flat_township = township[rows, cols]
    first = 0
    for t in range(n_townships):
        inside = np.flatnonzero(flat_township == t)
        centres = _spread_centres(points[inside], int(count[t]), rng)
        nearest = cKDTree(points[inside][centres]).query(points[inside])[1]
        village[rows[inside], cols[inside]] = first + nearest
        first += int(count[t])
    village = _components_fix(village, township, valid)
    return township, village, village_township


# --------------------------------------------------------------------------------------------------------------------
# the instance


def _label(prefix: str, index: np.ndarray, total: int) -> np.ndarray:
    """Ids like T01 (0-based index -> 1-based, zero-padded to at least two digits)."""
    width = max(2, len(str(total)))
    return np.char.add(prefix, np.char.zfill((np.asarray(index) + 1).astype(str), width))


def _round_sig(value: float, digits: int = 3) -> int:
    if value <= 0:
        return 0
    magnitude = 10 ** (math.floor(math.log10(value)) - digits + 1)
    return int(round(value / magnitude) * magnitude)


def default_region() -> str:
    """The region `optiland generate` uses without --region (models/defaults.toml, so no module names one)."""
    path = models_dir() / "defaults.toml"
    if not path.is_file():
        raise InputError([Issue("no default region: pass a region", file=str(path))])
    return str(tomllib.loads(path.read_text(encoding="utf-8"))["default_region"])


class _Draws:
    """The random functions formulas call, in the order they are written (one generator, one lattice)."""

    def __init__(self, rng: np.random.Generator, ny: int, nx: int, n: int, valid: np.ndarray) -> None:
        self.rng, self.ny, self.nx, self.n, self.valid = rng, ny, nx, n, valid

    def flat(self, grid: np.ndarray) -> np.ndarray:
        return grid.ravel()[:self.n]

    def grid(self, values: np.ndarray) -> np.ndarray:
        grid = np.zeros(self.ny * self.nx)
        grid[:self.n] = values
        return grid.reshape(self.ny, self.nx)

    def noise(self, sigma: float) -> np.ndarray:
        return self.flat(_noise(self.rng, (self.ny, self.nx), float(sigma)))

    def white(self) -> np.ndarray:
        return self.rng.standard_normal(self.n)

    def patches(self) -> np.ndarray:
        return self.noise(2.0) + 0.3 * self.rng.standard_normal(self.n)

    def smooth_std(self, values: np.ndarray, sigma: float) -> np.ndarray:
        return self.flat(_standardise(_smooth(self.grid(np.asarray(values, dtype=float)), self.valid, float(sigma))))

    def functions(self) -> dict:
        return {"noise": self.noise, "white": self.white, "patches": self.patches, "smooth_std": self.smooth_std,
                "quantile": np.quantile, "where": np.where, "clip": np.clip, "exp": np.exp, "abs": np.abs,
                "maximum": np.maximum, "minimum": np.minimum, "isin": lambda values, *codes: np.isin(values, codes)}


def _spec(catalog: Catalog, key: str) -> dict:
    """A required ``[generate]`` entry (dotted key), or an error naming the catalog and the key."""
    value: object = catalog.generate
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise InputError([Issue("missing entry: the catalog cannot generate instances without it",
                                    file=str(catalog.path / "catalog.toml"), column=f"generate.{key}")])
        value = value[part]
    return value  # type: ignore[return-value]


def build_instance(n_parcels: int, n_townships: int, n_villages: int, seed: int, crs: str | None = None,
                   region: str | Catalog | None = None) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, float]]:
    """The parcels (GeoDataFrame), the village table and the scenario constraints, without writing anything.

    The region's catalog (a name, a loaded catalog, or models/defaults.toml's default) gives every distribution
    through its ``[generate]`` table; `crs` defaults to the table's.
    """
    if n_townships < 1 or n_villages < n_townships:
        raise ValueError("need at least one township and at least one village per township")
    if n_parcels < max(16, 4 * n_villages):
        raise ValueError(f"need at least max(16, 4 x villages) = {max(16, 4 * n_villages)} parcels")
    catalog = region if isinstance(region, Catalog) else load_catalog(region=region or default_region())
    file = str(catalog.path / "catalog.toml")
    crs = crs or str(_spec(catalog, "crs"))
    cell_m = math.sqrt(float(_spec(catalog, "parcel_mu")) * M2_PER_MU)
    centre = tuple(float(v) for v in _spec(catalog, "centre"))
    rng = np.random.default_rng(seed)
    n = n_parcels

    nx, ny, vx, vy = _lattice(n, rng, cell_m, centre)  # type: ignore[arg-type]
    valid = (np.arange(ny * nx) < n).reshape(ny, nx)
    elevation, slope = _terrain(rng, ny, nx, cell_m, _spec(catalog, "terrain"))
    draws = _Draws(rng, ny, nx, n, valid)
    functions = draws.functions()
    s = draws.flat(slope)
    names: dict[str, object] = {"slope": s, "elevation_rank": _rank01(draws.flat(elevation))}

    def run(formula: object, where: str) -> np.ndarray:
        try:
            return np.asarray(evaluate(str(formula), names, functions, f"{file}: generate.{where}"))
        except ExpressionError as exc:
            raise InputError([Issue(str(exc), file=file, column=f"generate.{where}", value=formula)]) from None

    for position, draw in enumerate(_spec(catalog, "draws")):
        names[draw["name"]] = run(draw["formula"], f"draws[{position}] ({draw['name']})")

    steps = []
    for position, step in enumerate(_spec(catalog, "land_use")):
        where = f"land_use[{position}] ({step['code']})"
        steps.append((str(step["code"]), float(run(step["share"], where)), run(step["score"], where)))
    land_use = _land_use(steps, str(_spec(catalog, "land_use_remainder.code")), n)
    unknown = sorted(set(land_use) - set(catalog.current_uses.index))
    if unknown:
        raise InputError([Issue(f"land-use code not in current_uses.csv: {', '.join(unknown)}", file=file,
                                column="generate.land_use")])
    forest = np.isin(land_use, catalog.current_uses.index[catalog.current_uses["forest_type"]])
    cropland = np.isin(land_use, catalog.current_uses.index[catalog.current_uses["cropland"]])
    names.update(land_use=land_use, forest=forest, cropland=cropland)

    # geometry and areas
    i, j = np.divmod(np.arange(n), nx)
    corners = [(i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j), (i, j)]
    coords = np.stack([np.stack([vx[a, b], vy[a, b]], axis=-1) for a, b in corners], axis=1)
    geometry = shapely.polygons(coords)
    if not shapely.is_valid(geometry).all():  # cannot happen with JITTER < 0.5; a guard against edits
        raise RuntimeError("generated an invalid parcel")
    area_mu = shapely.area(geometry) / M2_PER_MU

    # ecological protection red line: the highest-scoring parcels up to its share of the area
    red_score = run(_spec(catalog, "red_line.score"), "red_line.score")
    order = np.argsort(-red_score, kind="stable")
    within = np.cumsum(area_mu[order]) <= float(_spec(catalog, "red_line.share")) * area_mu.sum()
    red_line = np.zeros(n, dtype=bool)
    red_line[order[within]] = True

    # permanent basic farmland: a share of the gentle cropland outside the red line, the highest scores first
    farmland = _spec(catalog, "basic_farmland")
    eligible = cropland & (s < float(farmland["max_slope_deg"])) & ~red_line
    farm_score = run(farmland["score"], "basic_farmland.score")
    basic_farmland = np.zeros(n, dtype=bool)
    basic_farmland[_take_top(farm_score, eligible, round(float(farmland["share"]) * eligible.sum()))] = True
    names.update(red_line=red_line, basic_farmland=basic_farmland)
    for position, draw in enumerate(catalog.generate.get("zones", [])):  # attributes drawn after land use
        names[draw["name"]] = run(draw["formula"], f"zones[{position}] ({draw['name']})")

    # townships and villages
    _, village_grid, village_township = _regions(rng, ny, nx, valid, n_townships, n_villages)
    village_index = draws.flat(village_grid)
    total_villages = len(village_township)
    township_ids = _label("T", village_township, n_townships)
    starts = np.searchsorted(village_township, np.arange(n_townships))
    per_township = np.arange(total_villages) - starts[village_township]
    width = max(2, len(str(int(np.bincount(village_township).max()))))
    village_ids = np.char.add(np.char.add(township_ids, "-V"),
                              np.char.zfill((per_township + 1).astype(str), width))

    village_area = np.bincount(village_index, weights=area_mu, minlength=total_villages)
    village_crop = np.bincount(village_index, weights=area_mu * cropland, minlength=total_villages)
    spec = _spec(catalog, "villages")
    names["crop_share"] = village_crop / np.maximum(village_area, 1e-9)
    functions["normal"] = lambda mean, sd: rng.normal(mean, sd, total_villages)
    low, high = (float(v) for v in spec["land_per_capita_range"])
    land_per_capita = np.clip(run(spec["land_per_capita"], "villages.land_per_capita"), low, high)
    population = np.maximum(np.round(village_area / land_per_capita), 1).astype(np.int64)
    households = np.maximum(np.round(population / rng.uniform(*spec["people_per_household"], total_villages)),
                            1).astype(np.int64)
    labour_days = np.round(float(spec["working_age_share"]) * population * float(spec["days_per_worker"]), 1)
    nonland = np.round(rng.uniform(*spec["nonland_income"], total_villages), -1)

    width = max(7, len(str(n)))
    columns: dict[str, object] = {
        "parcel_id": np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(str),
        "village": village_ids[village_index].astype(str),
        "land_use": land_use,
        "slope_deg": np.round(s, 1),
    }
    for name, attribute in catalog.site_attributes.items():
        if name in names:
            value = np.broadcast_to(np.asarray(names[name]), (n,))
        elif "default" in attribute:
            value = np.full(n, attribute["default"])
        else:
            raise InputError([Issue(f"site attribute {name!r} has neither a draw nor a default", file=file,
                                    column="generate.draws")])
        columns[name] = value.astype(bool) if attribute.get("type") == "bool" else np.round(value.astype(float), 1)
    columns.update(red_line=red_line, basic_farmland=basic_farmland)
    parcels = gpd.GeoDataFrame(columns, geometry=geometry, crs=crs)
    scenario = _spec(catalog, "scenario")

    if "nonland_income_min" in spec:  # villages whose land earns little live on wages and transfers
        land_income = np.bincount(village_index, weights=best_income_per_mu(catalog, pd.DataFrame(columns)) * area_mu,
                                  minlength=total_villages)
        names.update(income_floor=float(scenario["income_floor"]), land_income_per_capita=land_income / population)
        least = run(spec["nonland_income_min"], "villages.nonland_income_min")
        nonland = np.maximum(nonland, np.ceil(np.round(least, 6) / 10.0) * 10.0)
    villages = pd.DataFrame({
        "village": village_ids.astype(str),
        "township": township_ids.astype(str),
        "population": population,
        "households": households,
        "labour_days": labour_days.astype(float),
        "nonland_income_per_capita": nonland.astype(float),
    })

    total_mu = float(area_mu.sum())
    forest_share = float(area_mu[forest].sum()) / total_mu
    constraints = {
        "region": catalog.name,
        "income_floor": scenario["income_floor"],
        "transfer_budget": _round_sig(float(scenario["transfer_budget_per_mu"]) * total_mu),
        "budget": _round_sig(float(scenario["budget_per_mu"]) * total_mu),
        "diversity_cap": scenario["diversity_cap"],
        "forest_cover_min": math.floor(forest_share * 20.0) / 20.0,
    }
    return parcels, villages, constraints


def _scenario_text(constraints: dict) -> str:
    return f"""[parcels]
path = "parcels.gpkg"
layer = "parcels"
id_column = "parcel_id"

[villages]
path = "villages.csv"

[catalog]
region = "{constraints["region"]}"

[objective]
maximise = "ecosystem_services"

[constraints]
income_floor = {constraints["income_floor"]}
transfer_budget = {constraints["transfer_budget"]}
budget = {constraints["budget"]}
diversity_cap = {constraints["diversity_cap"]}
forest_cover_min = {constraints["forest_cover_min"]:.2f}

[solver]
preset = "default"
"""


def _write_parcels(parcels: gpd.GeoDataFrame, path: Path) -> None:
    """Write the GeoPackage through pyogrio (Arrow when available). GDAL stamps gpkg_contents.last_change with the
    current time; OGR_CURRENT_DATE pins it so the same instance gives the same bytes."""
    import pyogrio

    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIMESTAMP})
    try:
        try:
            parcels.to_file(path, layer="parcels", driver="GPKG", engine="pyogrio", use_arrow=True)
        except Exception:  # pyarrow missing or a GDAL without Arrow write support: the row-wise writer
            if path.exists():
                path.unlink()
            parcels.to_file(path, layer="parcels", driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def generate_instance(n_parcels: int, n_townships: int, n_villages: int, seed: int, out_dir: Path, *,
                      crs: str | None = None, region: str | None = None) -> Path:
    """Write a synthetic instance (parcels.gpkg, villages.csv, scenario.toml) into `out_dir`; return the scenario.

    `out_dir` is created; it must not exist or be empty. The same arguments give byte-identical files
    (numpy.random.default_rng(seed); the GeoPackage's timestamp is pinned to GPKG_TIMESTAMP). Coordinates are metres
    around the catalog's ``[generate] centre``; `crs` (default the catalog's) only labels them, so it should be a
    projected CRS in metres. `region` names the catalog (default: models/defaults.toml).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not an empty folder")
    parcels, villages, constraints = build_instance(n_parcels, n_townships, n_villages, seed, crs=crs,
                                                    region=region)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_parcels(parcels, out_dir / "parcels.gpkg")
    villages.to_csv(out_dir / "villages.csv", index=False, float_format="%.1f", lineterminator="\n")
    scenario = out_dir / "scenario.toml"
    scenario.write_text(_scenario_text(constraints), encoding="utf-8", newline="\n")
    return scenario
