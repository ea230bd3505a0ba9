"""Synthetic planning instances: a jittered quadrilateral lattice of parcels with karst terrain, current land use,
ecological protection red lines, basic farmland, townships and villages, plus the village table and a scenario file.

Instances are synthetic: no parcel, village or figure here describes a real place. The calibration figures (parcel
size, slope distribution, land-use shares, people per household, land per capita, incomes) and their sources are
documented in instances/README.md.

Everything is computed with numpy / scipy / shapely array functions on the lattice; the only Python loops run over
land-use classes, townships and villages, never over parcels. One million parcels take about 12 s and 1.5 GB at
peak, writing the GeoPackage included (instances/README.md has the measurements).
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

M2_PER_MU = 10000.0 / 15.0  # 1 mu = 666.67 m2
PARCEL_MU = 10.0  # mean parcel area
CELL_M = math.sqrt(PARCEL_MU * M2_PER_MU)  # lattice spacing, about 81.65 m
CENTRE_EASTING = 500_000.0  # EPSG:4545 (CGCS2000 / 3-degree GK CM 108E); Huanjiang is near 108E, 24.8N
CENTRE_NORTHING = 2_745_000.0
JITTER = 0.3  # interior vertices move up to this fraction of a cell in x and in y (< 0.5 keeps quads simple)

ELEVATION_RANGE = (300.0, 1200.0)  # m
SLOPE_MEDIAN_DEG = 17.5  # target median slope of karst hill parcels
SLOPE_MAX_DEG = 80.0
KARST_SHARE = 0.70
RED_LINE_SHARE = 0.20  # of the area
BASIC_FARMLAND_SHARE = 0.5  # of the cropland on slope < BASIC_FARMLAND_MAX_SLOPE outside the red line
BASIC_FARMLAND_MAX_SLOPE = 15.0

# Current land use (GB/T 21010 codes), target share of parcels, in allocation order (see _land_use).
LAND_USE_SHARES = {
    "1207": 0.09,  # bare rock and gravel (GB/T 21010-2017: 1207)
    "0101": 0.05,  # paddy
    "0102": 0.03,  # irrigated land
    "0103": 0.13,  # dry cropland
    "0201": 0.06,  # orchard
    "0301": 0.16,  # arbor forest
    "0401": 0.09,  # natural grassland
    "0305": 0.22,  # shrub forest
    "0307": 0.10,  # other forest
    "0404": 0.07,  # other grassland (takes the remainder)
}
DRY_SLOPING_SHARE = 0.4  # of the dry cropland placed on 15-35 degree slopes
CROPLAND = ("0101", "0102", "0103")
FOREST = ("0301", "0305", "0307")

# Village figures (bases in instances/README.md)
LAND_PER_CAPITA_MU = (4.0, 8.0)
PEOPLE_PER_HOUSEHOLD = (3.4, 4.2)  # Xiarong village: 312 people / 83 households = 3.76
WORKING_AGE_SHARE = 0.55
DAYS_PER_WORKER = 150.0
NONLAND_INCOME = (2500.0, 4500.0)  # yuan per capita; see instances/README.md

# Scenario figures
INCOME_FLOOR = 4000
TRANSFER_BUDGET_PER_MU = 40.0
BUDGET_PER_MU = 600.0

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


def _lattice(n: int, rng: np.random.Generator) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Columns, rows and the jittered vertex coordinates ((rows+1) x (cols+1)) of a lattice holding n cells.

    Cells are numbered row by row from the south-west corner; the last row may be partly filled (cells >= n are not
    parcels). Vertices on the outer rectangle stay in place, interior ones move uniformly by less than JITTER cells.
    """
    nx = math.ceil(math.sqrt(n))
    ny = math.ceil(n / nx)
    x0 = CENTRE_EASTING - nx * CELL_M / 2
    y0 = CENTRE_NORTHING - ny * CELL_M / 2
    vx = x0 + np.arange(nx + 1, dtype=float)[None, :] * CELL_M + np.zeros((ny + 1, 1))
    vy = y0 + np.arange(ny + 1, dtype=float)[:, None] * CELL_M + np.zeros((1, nx + 1))
    jitter = rng.uniform(-JITTER, JITTER, size=(2, ny + 1, nx + 1)) * CELL_M
    jitter[:, [0, -1], :] = 0.0
    jitter[:, :, [0, -1]] = 0.0
    vx = np.round(vx + jitter[0], 2)  # centimetres: neighbours read the same vertex, so shared edges stay exact
    vy = np.round(vy + jitter[1], 2)
    return nx, ny, vx, vy


def _terrain(rng: np.random.Generator, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Elevation (m) and slope (degrees) of every cell.

    Karst peak-cluster relief: a few noise octaves (sigma 1.5-12 cells, about 120 m-1 km) pass through a logistic
    curve, which gives flat-floored depressions and steep cone flanks (a heavy upper tail of slopes), scaled so the
    median slope is SLOPE_MEDIAN_DEG; a regional trend (sigma 100 cells) fills the rest of the 300-1,200 m range.
    Slope is the gradient of the bilinear surface through each cell's four corners, at the cell centre.
    """
    shape = (ny + 1, nx + 1)
    octaves = [(1.5, 0.15), (3.0, 0.45), (6.0, 0.30), (12.0, 0.10)]
    h = _standardise(sum(weight * _noise(rng, shape, sigma) for sigma, weight in octaves))
    regional = _noise(rng, shape, 100.0)

    def gradient(z: np.ndarray) -> np.ndarray:
        gx = ((z[:-1, 1:] - z[:-1, :-1]) + (z[1:, 1:] - z[1:, :-1])) / (2 * CELL_M)
        gy = ((z[1:, :-1] - z[:-1, :-1]) + (z[1:, 1:] - z[:-1, 1:])) / (2 * CELL_M)
        return np.hypot(gx, gy)

    cones = 1.0 / (1.0 + np.exp(-2.5 * (h - 0.3))) + 0.1 * h
    scale = math.tan(math.radians(SLOPE_MEDIAN_DEG)) / max(float(np.median(gradient(cones))), 1e-12)
    local = scale * cones
    local -= local.min()
    low, high = ELEVATION_RANGE
    spare = max(high - low - float(local.max()), 0.0)
    spread = float(regional.max() - regional.min())
    trend = (regional - regional.min()) / (spread if spread > 0 else 1.0) * 0.9 * spare
    vertex_elevation = np.clip(low + local + trend, low, high)
    slope = np.degrees(np.arctan(gradient(vertex_elevation)))
    elevation = (vertex_elevation[:-1, :-1] + vertex_elevation[:-1, 1:] + vertex_elevation[1:, :-1]
                 + vertex_elevation[1:, 1:]) / 4
    return elevation, np.clip(slope, 0.0, SLOPE_MAX_DEG)


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


def _land_use(cells: dict[str, np.ndarray], patches) -> np.ndarray:
    """Current land use by ranked suitability: each step in turn gives its code to the free parcels that suit it best.

    Scores combine slope, bedrock exposure, soil depth and elevation rank with a patchy noise field (sigma 2 cells)
    per step, so uses come in patches; the counts follow LAND_USE_SHARES exactly. Dry cropland is placed in two
    steps: DRY_SLOPING_SHARE of it on 15-35 degree slopes (sloping farmland, where the 25-degree rule bites), the rest
    on gentle ground.
    """
    slope = cells["slope"]
    exposure = cells["exposure"]
    soil = cells["soil"]
    high = cells["elevation_rank"]
    karst = cells["karst"]
    n = len(slope)
    dry = LAND_USE_SHARES["0103"]
    steps = [
        ("1207", LAND_USE_SHARES["1207"], exposure + 6.0 * patches()),
        ("0101", LAND_USE_SHARES["0101"], -slope / 2.0 - 4.0 * high + soil / 25.0 - 0.5 * karst + patches()),
        ("0102", LAND_USE_SHARES["0102"], -slope / 3.0 - 2.5 * high + soil / 30.0 + patches()),
        ("0103", dry * DRY_SLOPING_SHARE, -np.abs(slope - 25.0) / 5.0 - exposure / 60.0 + 1.2 * patches()),
        ("0103", dry * (1 - DRY_SLOPING_SHARE), -np.abs(slope - 10.0) / 6.0 + soil / 60.0 - exposure / 40.0
         + 1.2 * patches()),
        ("0201", LAND_USE_SHARES["0201"], -np.abs(slope - 16.0) / 6.0 - exposure / 25.0 + soil / 50.0
         + 1.5 * patches()),
        ("0301", LAND_USE_SHARES["0301"], 5.0 * high + soil / 30.0 - exposure / 30.0 + patches()),
        ("0401", LAND_USE_SHARES["0401"], exposure / 15.0 + slope / 20.0 - soil / 40.0 + patches()),
        ("0305", LAND_USE_SHARES["0305"], slope / 8.0 + exposure / 25.0 + patches()),
        ("0307", LAND_USE_SHARES["0307"], slope / 10.0 + soil / 40.0 + patches()),
    ]
    remainder = "0404"
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


def build_instance(n_parcels: int, n_townships: int, n_villages: int, seed: int,
                   crs: str = "EPSG:4545") -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, float]]:
    """The parcels (GeoDataFrame), the village table and the scenario constraints, without writing anything."""
    if n_townships < 1 or n_villages < n_townships:
        raise ValueError("need at least one township and at least one village per township")
    if n_parcels < max(16, 4 * n_villages):
        raise ValueError(f"need at least max(16, 4 x villages) = {max(16, 4 * n_villages)} parcels")
    rng = np.random.default_rng(seed)
    n = n_parcels

    nx, ny, vx, vy = _lattice(n, rng)
    valid = (np.arange(ny * nx) < n).reshape(ny, nx)
    elevation, slope = _terrain(rng, ny, nx)

    def flat(grid: np.ndarray) -> np.ndarray:
        return grid.ravel()[:n]

    # karst: a smooth field (sigma 20 cells, about 1.6 km) above its 30th percentile
    karst_field = _noise(rng, (ny, nx), 20.0)
    karst = flat(karst_field > np.quantile(flat(karst_field), 1.0 - KARST_SHARE))
    s = flat(slope)
    e_noise = flat(_noise(rng, (ny, nx), 2.0))
    white = rng.standard_normal((2, n))
    exposure = np.where(karst, 15.0 + 1.2 * s + 16.0 * e_noise + 6.0 * white[0],
                        1.0 + 0.25 * s + 4.0 * e_noise + 3.0 * white[0])
    exposure = np.clip(exposure, 0.0, 100.0)
    soil = (100.0 * (1.0 - exposure / 100.0) ** 1.5 * (1.0 - s / 110.0) * np.where(karst, 0.8, 1.0)
            * np.exp(0.2 * flat(_noise(rng, (ny, nx), 2.0)) + 0.1 * white[1]))
    soil = np.clip(soil, 5.0, 100.0)
    elev = flat(elevation)

    def patches() -> np.ndarray:
        return flat(_noise(rng, (ny, nx), 2.0)) + 0.3 * rng.standard_normal(n)

    cells = {"slope": s, "exposure": exposure, "soil": soil, "elevation_rank": _rank01(elev),
             "karst": karst.astype(float)}
    land_use = _land_use(cells, patches)
    forest = np.isin(land_use, FOREST)
    cropland = np.isin(land_use, CROPLAND)

    # geometry and areas
    i, j = np.divmod(np.arange(n), nx)
    corners = [(i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j), (i, j)]
    coords = np.stack([np.stack([vx[a, b], vy[a, b]], axis=-1) for a, b in corners], axis=1)
    geometry = shapely.polygons(coords)
    if not shapely.is_valid(geometry).all():  # cannot happen with JITTER < 0.5; a guard against edits
        raise RuntimeError("generated an invalid parcel")
    area_mu = shapely.area(geometry) / M2_PER_MU

    # ecological protection red line: contiguous zones on high, steep, forested ground, RED_LINE_SHARE of the area
    def grid_of(values: np.ndarray) -> np.ndarray:
        grid = np.zeros(ny * nx)
        grid[:n] = values
        return grid.reshape(ny, nx)

    red_field = (_noise(rng, (ny, nx), 8.0)
                 + 0.8 * _standardise(_smooth(grid_of(_rank01(elev)), valid, 4.0))
                 + 0.6 * _standardise(_smooth(grid_of(s), valid, 4.0))
                 + 0.8 * _standardise(_smooth(grid_of(forest.astype(float)), valid, 3.0)))
    red_score = flat(red_field)
    order = np.argsort(-red_score, kind="stable")
    within = np.cumsum(area_mu[order]) <= RED_LINE_SHARE * area_mu.sum()
    red_line = np.zeros(n, dtype=bool)
    red_line[order[within]] = True

    # permanent basic farmland: about half of the gentle cropland outside the red line, in blocks
    eligible = cropland & (s < BASIC_FARMLAND_MAX_SLOPE) & ~red_line
    farm_score = flat(_noise(rng, (ny, nx), 4.0)) - s / 10.0 + 0.5 * (land_use == "0101")
    basic_farmland = np.zeros(n, dtype=bool)
    basic_farmland[_take_top(farm_score, eligible, round(BASIC_FARMLAND_SHARE * eligible.sum()))] = True

    # townships and villages
    _, village_grid, village_township = _regions(rng, ny, nx, valid, n_townships, n_villages)
    village_index = flat(village_grid)
    total_villages = len(village_township)
    township_ids = _label("T", village_township, n_townships)
    starts = np.searchsorted(village_township, np.arange(n_townships))
    per_township = np.arange(total_villages) - starts[village_township]
    width = max(2, len(str(int(np.bincount(village_township).max()))))
    village_ids = np.char.add(np.char.add(township_ids, "-V"),
                              np.char.zfill((per_township + 1).astype(str), width))

    village_area = np.bincount(village_index, weights=area_mu, minlength=total_villages)
    village_crop = np.bincount(village_index, weights=area_mu * cropland, minlength=total_villages)
    crop_share = village_crop / np.maximum(village_area, 1e-9)
    low, high = LAND_PER_CAPITA_MU
    # more cropland, denser settlement: land per capita falls with the village's cropland share, with noise
    land_per_capita = np.clip(6.0 * (LAND_USE_SHARES["0101"] + LAND_USE_SHARES["0102"] + LAND_USE_SHARES["0103"])
                              ** 0.4 / np.maximum(crop_share, 0.02) ** 0.4
                              * np.exp(rng.normal(0.0, 0.12, total_villages)), low, high)
    population = np.maximum(np.round(village_area / land_per_capita), 1).astype(np.int64)
    households = np.maximum(np.round(population / rng.uniform(*PEOPLE_PER_HOUSEHOLD, total_villages)),
                            1).astype(np.int64)
    labour_days = np.round(WORKING_AGE_SHARE * population * DAYS_PER_WORKER, 1)
    nonland = np.round(rng.uniform(*NONLAND_INCOME, total_villages), -1)
    villages = pd.DataFrame({
        "village": village_ids.astype(str),
        "township": township_ids.astype(str),
        "population": population,
        "households": households,
        "labour_days": labour_days.astype(float),
        "nonland_income_per_capita": nonland.astype(float),
    })

    width = max(7, len(str(n)))
    parcels = gpd.GeoDataFrame({
        "parcel_id": np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(str),
        "village": village_ids[village_index].astype(str),
        "land_use": land_use,
        "slope_deg": np.round(s, 1),
        "bedrock_exposure": np.round(exposure, 1),
        "soil_depth_cm": np.round(soil, 1),
        "karst": karst,
        "red_line": red_line,
        "basic_farmland": basic_farmland,
    }, geometry=geometry, crs=crs)

    total_mu = float(area_mu.sum())
    forest_share = float(area_mu[forest].sum()) / total_mu
    constraints = {
        "income_floor": INCOME_FLOOR,
        "transfer_budget": _round_sig(TRANSFER_BUDGET_PER_MU * total_mu),
        "budget": _round_sig(BUDGET_PER_MU * total_mu),
        "diversity_cap": 0.4,
        "forest_cover_min": math.floor(forest_share * 20.0) / 20.0,
    }
    return parcels, villages, constraints


def _scenario_text(constraints: dict[str, float]) -> str:
    return f"""[parcels]
path = "parcels.gpkg"
layer = "parcels"
id_column = "parcel_id"

[villages]
path = "villages.csv"

[catalog]
region = "karst-southwest"

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
                      crs: str = "EPSG:4545") -> Path:
    """Write a synthetic instance (parcels.gpkg, villages.csv, scenario.toml) into `out_dir`; return the scenario.

    `out_dir` is created; it must not exist or be empty. The same arguments give byte-identical files
    (numpy.random.default_rng(seed); the GeoPackage's timestamp is pinned to GPKG_TIMESTAMP). Coordinates are metres
    around easting 500,000 / northing 2,745,000; `crs` only labels them, so it should be a projected CRS in metres.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not an empty folder")
    parcels, villages, constraints = build_instance(n_parcels, n_townships, n_villages, seed, crs=crs)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_parcels(parcels, out_dir / "parcels.gpkg")
    villages.to_csv(out_dir / "villages.csv", index=False, float_format="%.1f", lineterminator="\n")
    scenario = out_dir / "scenario.toml"
    scenario.write_text(_scenario_text(constraints), encoding="utf-8", newline="\n")
    return scenario
