"""Ecological-space zoning of a plan: a zone per parcel by the region's rule table, zone polygons, statistics, map.

Each parcel gets a zone from its planned option and its attributes by ``models/<region>/zone_rules.csv`` (first
matching rule wins; ``zones.csv`` names and colours the zones; docs/data-model.md). Neighbouring parcels of one zone,
one township and one side of the ecological red line form a patch: the connected components of the shared-boundary
graph (optiland.model.adjacency) restricted to such pairs, found by scipy's csgraph. A patch smaller than the minimum
mapping unit joins the neighbouring patch it shares the longest boundary with (taking that patch's zone), in rounds,
all patches of a round at once; patches never join across a red line or a township boundary, so a small patch with no
such neighbour is kept and flagged (``below_mmu``). Each patch's polygon is the union of its parcels, computed for all
patches in one vectorised call. Nothing loops over parcels in Python.

Outputs (``write_zoning``, whole or not at all): ``zones.gpkg`` with layers ``zones`` (patch polygons),
``zone_stats`` (per township and county) and ``parcel_zones`` (parcel to zone and patch, no geometry), ``zones.png``
and ``zoning.json``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from optiland.errors import InputError, Issue, OptilandError
from optiland.model.adjacency import boundary_indices
from optiland.pipeline.results import MU_PER_HA, write_atomically

M2_PER_MU = 10000.0 / 15.0
DEFAULT_MMU_MU = 15.0
"""Default minimum mapping unit: 15 mu = 1 ha (assumption: a patch of a township zoning map at 1:10,000 is drawn
from about 1 ha; set ``--mmu`` for other scales)."""
RULE_COLUMNS = ("rule", "option", "red_line", "basic_farmland", "grade", "current_use", "zone")
ZONE_COLUMNS = ("zone", "name", "name_zh", "colour")
PLAN_COLUMNS = ("parcel_id", "township", "area_mu", "option", "red_line", "basic_farmland", "grade", "current_use")
MAX_ROUNDS = 50
RED_LINE_COLOUR = "#d7301f"


@dataclass
class ZoneRules:
    """The rule table (in priority order) and the zones it may assign, from a catalog folder."""

    rules: pd.DataFrame
    zones: pd.DataFrame
    rules_file: Path
    zones_file: Path


@dataclass
class Zoning:
    """A zoned plan: parcels with their zone and patch, patch polygons, statistics, and how it was computed."""

    parcels: pd.DataFrame
    zones: gpd.GeoDataFrame
    stats: pd.DataFrame
    record: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------------
# Rules


def _split(cell: Any) -> list[str]:
    return [] if pd.isna(cell) or str(cell).strip() == "" else [p.strip() for p in str(cell).split(";") if p.strip()]


def load_zone_rules(folder: str | Path) -> ZoneRules:
    """Read ``zone_rules.csv`` and ``zones.csv`` of a catalog folder; errors name the file, line, column and value."""
    folder = Path(folder)
    rules_file, zones_file = folder / "zone_rules.csv", folder / "zones.csv"
    for path in (rules_file, zones_file):
        if not path.is_file():
            raise InputError([Issue("zoning table not found (the region catalog needs zone_rules.csv and zones.csv, "
                                    "docs/data-model.md)", file=str(path))])
    rules = pd.read_csv(rules_file, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    zones = pd.read_csv(zones_file, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    problems = []
    for frame, path, columns in ((rules, rules_file, RULE_COLUMNS), (zones, zones_file, ZONE_COLUMNS)):
        problems += [Issue("missing column", file=str(path), column=c) for c in columns if c not in frame.columns]
    if problems:
        raise InputError(problems)
    for position, zone in enumerate(rules["zone"]):
        if zone not in set(zones["zone"]):
            problems.append(Issue(f"zone not in zones.csv (known: {', '.join(zones['zone'])})", file=str(rules_file),
                                  row=f"line {position + 2}", column="zone", value=zone))
    for column in ("red_line", "basic_farmland"):
        for position, value in enumerate(rules[column]):
            if value.strip().lower() not in ("", "true", "false"):
                problems.append(Issue("must be true, false or blank (any)", file=str(rules_file),
                                      row=f"line {position + 2}", column=column, value=value))
    for position in np.flatnonzero(zones["zone"].duplicated().to_numpy()):
        problems.append(Issue("duplicate zone", file=str(zones_file), row=f"line {position + 2}", column="zone",
                              value=zones["zone"].iloc[position]))
    if problems:
        raise InputError(problems)
    return ZoneRules(rules.reset_index(drop=True), zones.set_index("zone"), rules_file, zones_file)


def assign_zones(parcels: pd.DataFrame, rules: ZoneRules, file: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Zone and rule name of every parcel: the first rule (in file order) whose conditions all hold (blank: any).

    A parcel no rule matches is an error naming the parcel and its option and attributes.
    """
    n = len(parcels)
    zone = np.full(n, "", dtype=object)
    rule_of = np.full(n, "", dtype=object)
    open_ = np.ones(n, dtype=bool)
    attributes = {"option": parcels["option"].astype(str).to_numpy(), "grade": parcels["grade"].astype(str).to_numpy(),
                  "current_use": parcels["current_use"].astype(str).to_numpy()}
    flags = {c: parcels[c].to_numpy(dtype=bool) for c in ("red_line", "basic_farmland")}
    for rule in rules.rules.itertuples(index=False):  # a loop over the rules, each applied to all parcels at once
        match = open_.copy()
        for column, values in attributes.items():
            wanted = _split(getattr(rule, column))
            if wanted:
                match &= np.isin(values, wanted)
        for column, values in flags.items():
            wanted = str(getattr(rule, column)).strip().lower()
            if wanted:
                match &= values == (wanted == "true")
        zone[match] = rule.zone
        rule_of[match] = rule.rule
        open_ &= ~match
    if open_.any():
        raise InputError([Issue(f"no zoning rule matches (option {parcels['option'].iloc[i]}, red_line "
                                f"{bool(flags['red_line'][i])}, basic_farmland {bool(flags['basic_farmland'][i])}, "
                                f"grade {attributes['grade'][i]}, current_use {attributes['current_use'][i]}); "
                                f"add a rule to {rules.rules_file}", file=file,
                                row=str(parcels["parcel_id"].iloc[i]), column="option")
                          for i in np.flatnonzero(open_)[:20]])
    return zone, rule_of


# ------------------------------------------------------------------------------------------------------------
# Patches


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1]


def merge_small_patches(zone: np.ndarray, red: np.ndarray, area: np.ndarray, left: np.ndarray, right: np.ndarray,
                        length: np.ndarray, mmu: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Zones (integer codes) after merging patches below ``mmu`` into neighbours, and the final patch of each parcel.

    ``left``/``right``/``length`` are the shared boundaries between parcels that may share a patch (same township);
    ``red`` is the red-line flag, which a patch never crosses. Each round forms the patches (connected parcels of one
    zone and one red-line side), and every patch below ``mmu`` points at the neighbour patch with the longest shared
    boundary on its side of the red line; each group of patches so linked takes the zone of its largest patch.
    Returns (zone, patch, rounds).
    """
    n = len(zone)
    zone = zone.copy()
    rounds = 0
    same_side = red[left] == red[right]
    while True:
        same = same_side & (zone[left] == zone[right])
        patch = _components(n, left[same], right[same])
        if rounds >= MAX_ROUNDS:
            break
        patches = int(patch.max()) + 1 if n else 0
        patch_area = np.bincount(patch, area, minlength=patches)
        small = patch_area < mmu
        across = same_side & ~same
        src = np.concatenate([patch[left[across]], patch[right[across]]])
        dst = np.concatenate([patch[right[across]], patch[left[across]]])
        shared = np.concatenate([length[across], length[across]])
        wanted = small[src]
        if not wanted.any():
            break
        src, dst, shared = src[wanted], dst[wanted], shared[wanted]
        code, inverse = np.unique(src.astype(np.int64) * patches + dst, return_inverse=True)
        shared = np.bincount(inverse, shared)
        src, dst = code // patches, code % patches
        order = np.lexsort((dst, -shared, src))  # per source: longest boundary first, ties to the lower patch
        first = order[np.r_[True, src[order][1:] != src[order][:-1]]]
        linked = _components(patches, src[first], dst[first])
        groups = int(linked.max()) + 1
        # the largest patch of each linked group gives its zone (a group holds at most one patch >= mmu)
        by_area = np.lexsort((-patch_area, linked))
        head = by_area[np.r_[True, linked[by_area][1:] != linked[by_area][:-1]]]
        head_of_group = np.empty(groups, dtype=np.int64)
        head_of_group[linked[head]] = head
        patch_zone = np.empty(patches, dtype=zone.dtype)
        patch_zone[patch] = zone
        new_zone = patch_zone[head_of_group[linked]][patch]
        rounds += 1
        if np.array_equal(new_zone, zone):
            break
        zone = new_zone
    return zone, patch, rounds


def _patch_polygons(geometry: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """The union of each patch's parcels, all patches in one call (parts grouped into collections by patch)."""
    order = np.argsort(patch, kind="stable")
    return _union_each(shapely.geometrycollections(geometry[order], indices=patch[order]))


def _union_each(collections: np.ndarray) -> np.ndarray:
    """Element-wise union of the parts of each collection: coverage union where the parcels tile cleanly (shared
    vertices, no overlap), the general (overlay) union where GEOS refuses that or its result is not valid."""
    from shapely import lib  # the element-wise ufuncs behind shapely.coverage_union_all and union_all

    try:
        polygons = lib.coverage_union(collections)
    except shapely.errors.GEOSException:  # T-junctions or overlaps somewhere: the general union for all
        return lib.unary_union(collections)
    bad = ~shapely.is_valid(polygons)
    if bad.any():
        polygons[bad] = lib.unary_union(collections[bad])
    return polygons


def _dissolve(frame: gpd.GeoDataFrame, by: str | list[str]) -> gpd.GeoDataFrame:
    """Dissolve (geopandas) by coverage union, or by the general union if the polygons are not a clean coverage."""
    try:
        return frame[[*([by] if isinstance(by, str) else by), "geometry"]].dissolve(by=by, method="coverage")
    except shapely.errors.GEOSException:
        return frame[[*([by] if isinstance(by, str) else by), "geometry"]].dissolve(by=by)


# ------------------------------------------------------------------------------------------------------------
# Zoning a parcel layer


def zone_parcels(parcels: gpd.GeoDataFrame, rules: ZoneRules, mmu_mu: float = DEFAULT_MMU_MU,
                 file: str | None = None) -> Zoning:
    """Zone a planned parcel layer (the columns of plan.gpkg's ``parcels``; ``county`` if several counties) into
    patches and statistics."""
    times: dict[str, float] = {}
    clock = time.perf_counter()
    if mmu_mu < 0:
        raise OptilandError(f"the minimum mapping unit must be >= 0 mu, not {mmu_mu}")
    if "county" not in parcels.columns:
        parcels = parcels.assign(county="county")
    missing = [c for c in PLAN_COLUMNS if c not in parcels.columns]
    if missing:
        raise InputError([Issue("missing column (is this a plan written by `optiland solve`?)", file=file, column=c)
                          for c in missing])
    if parcels.crs is not None and parcels.crs.is_geographic:
        raise InputError([Issue("the plan's CRS is geographic; zoning needs a projected CRS (metres)", file=file,
                                column="geometry", value=parcels.crs.name)])
    geometry = parcels.geometry.to_numpy()
    bad = shapely.is_missing(geometry) | shapely.is_empty(geometry)
    if bad.any():
        raise InputError([Issue("empty or missing geometry", file=file, row=str(parcels["parcel_id"].iloc[i]),
                                column="geometry") for i in np.flatnonzero(bad)[:20]])
    rule_zone, rule_name = assign_zones(parcels, rules, file)
    times["rules"] = time.perf_counter() - clock

    clock = time.perf_counter()
    left, right, length = boundary_indices(geometry)
    inner = left != right
    left, right, length = left[inner], right[inner], length[inner]
    area_unit = parcels.groupby(["county", "township"], sort=True).ngroup().to_numpy()
    one_unit = area_unit[left] == area_unit[right]
    left, right, length = left[one_unit], right[one_unit], length[one_unit]
    times["adjacency"] = time.perf_counter() - clock

    clock = time.perf_counter()
    names = np.array(list(rules.zones.index), dtype=object)
    code = pd.Categorical(rule_zone, categories=names).codes.astype(np.int16)
    red = parcels["red_line"].to_numpy(dtype=bool)
    area = parcels["area_mu"].to_numpy(dtype=float)
    final, patch, rounds = merge_small_patches(code, red, area, left, right, length, mmu_mu)
    times["merge"] = time.perf_counter() - clock

    clock = time.perf_counter()
    polygons = _patch_polygons(geometry, patch)
    times["dissolve"] = time.perf_counter() - clock

    clock = time.perf_counter()
    patches = len(polygons)
    first = np.unique(patch, return_index=True)[1]
    merged = final != code
    zone_of_patch = names[final[first]]
    poly_area = shapely.area(polygons) / M2_PER_MU
    perimeter = shapely.length(polygons)
    compactness = np.where(perimeter > 0, 4 * math.pi * shapely.area(polygons) / np.maximum(perimeter, 1e-12) ** 2,
                           0.0)
    parcel_area = np.bincount(patch, area, minlength=patches)
    zones = gpd.GeoDataFrame({
        "zone_id": np.arange(1, patches + 1),
        "county": parcels["county"].to_numpy()[first].astype(str),
        "township": parcels["township"].to_numpy()[first].astype(str),
        "zone": zone_of_patch,
        "zone_name": rules.zones["name"].reindex(zone_of_patch).to_numpy(),
        "zone_name_zh": rules.zones["name_zh"].reindex(zone_of_patch).to_numpy(),
        "red_line": red[first],
        "parcels": np.bincount(patch, minlength=patches),
        "merged_parcels": np.bincount(patch, merged, minlength=patches).astype(int),
        "area_mu": poly_area.round(4),
        "area_ha": (poly_area / MU_PER_HA).round(5),
        "parcel_area_mu": parcel_area.round(4),
        "compactness": compactness.round(5),
        "below_mmu": parcel_area < mmu_mu,
    }, geometry=polygons, crs=parcels.crs)
    table = pd.DataFrame({
        "parcel_id": parcels["parcel_id"].astype(str).to_numpy(),
        "county": parcels["county"].astype(str).to_numpy(),
        "township": parcels["township"].astype(str).to_numpy(),
        "option": parcels["option"].astype(str).to_numpy(),
        "rule": rule_name,
        "rule_zone": rule_zone,
        "zone": names[final],
        "merged": merged,
        "zone_id": patch + 1,
    })
    stats = zone_statistics(zones, list(names))
    times["statistics"] = time.perf_counter() - clock
    record = {
        "parcels": len(parcels), "patches": patches, "merge_rounds": rounds, "mmu_mu": mmu_mu,
        "parcels_merged": int(merged.sum()), "patches_below_mmu": int(zones["below_mmu"].sum()),
        "rules": str(rules.rules_file), "zones_table": str(rules.zones_file),
        "times": {k: round(v, 3) for k, v in times.items()},
    }
    return Zoning(table, zones, stats, record)


def zone_statistics(zones: gpd.GeoDataFrame, order: list[str]) -> pd.DataFrame:
    """Per township and per county and zone: area (mu, ha), share of the area, patch count, mean patch size,
    area-weighted mean compactness (Polsby-Popper 4 pi A / P^2: 1 for a disc), patches below the MMU."""
    frames = []
    weighted = zones.assign(weighted=zones["compactness"] * zones["area_mu"])
    for level, keys in (("township", ["county", "township"]), ("county", ["county"])):
        grouped = weighted.groupby([*keys, "zone"], sort=False)
        table = pd.DataFrame({
            "area_mu": grouped["area_mu"].sum(),
            "patches": grouped.size(),
            "patches_below_mmu": grouped["below_mmu"].sum().astype(int),
            "weighted": grouped["weighted"].sum(),
        }).reset_index()
        total = table.groupby(keys)["area_mu"].transform("sum")
        table["level"] = level
        if level == "county":
            table["township"] = ""
        table["area_ha"] = table["area_mu"] / MU_PER_HA
        table["share"] = table["area_mu"] / total
        table["mean_patch_mu"] = table["area_mu"] / table["patches"]
        table["compactness"] = table["weighted"] / table["area_mu"]
        frames.append(table)
    stats = pd.concat(frames, ignore_index=True)
    stats["zone_rank"] = stats["zone"].map({z: i for i, z in enumerate(order)})
    stats = stats.sort_values(["level", "county", "township", "zone_rank"],
                              key=lambda s: s.map({"county": 0, "township": 1}) if s.name == "level" else s)
    columns = ["level", "county", "township", "zone", "area_mu", "area_ha", "share", "patches", "mean_patch_mu",
               "compactness", "patches_below_mmu"]
    return stats[columns].reset_index(drop=True).round(6)


# ------------------------------------------------------------------------------------------------------------
# Plan folders in, zones.gpkg out


def plan_dirs(path: str | Path) -> list[Path]:
    """A plan folder (written by solve), or a folder of plan folders (a regional run: one per county)."""
    path = Path(path)
    if (path / "plan.gpkg").is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / "plan.gpkg").is_file()) if path.is_dir() else []
    if not found:
        raise InputError([Issue("not a plan folder (no plan.gpkg) nor a folder of plan folders", file=str(path))])
    return found


def _catalog_folder(run: dict[str, Any], run_file: Path) -> Path:
    from optiland.io.catalog import resolve_catalog_path

    record = run.get("catalog") or {}
    path = Path(record["path"]) if record.get("path") else None
    if path is not None and path.is_dir():
        return path
    if not record.get("name"):
        raise InputError([Issue("run.json names no catalog; pass the rule table's folder (--rules)",
                                file=str(run_file), column="catalog")])
    return resolve_catalog_path(record["name"], None)


def read_plans(path: str | Path) -> tuple[gpd.GeoDataFrame, Path, list[Path]]:
    """The parcels of one plan folder or of a folder of them (county: the folder's name, or a ``county`` column),
    the catalog folder of the first plan, and the plan folders read."""
    import pyogrio

    folders = plan_dirs(path)
    frames = []
    catalog = None
    crs = None
    for folder in folders:
        run_file = folder / "run.json"
        if not run_file.is_file():
            raise InputError([Issue("results file missing (is this a folder written by `optiland solve`?)",
                                    file=str(run_file))])
        run = json.loads(run_file.read_text(encoding="utf-8"))
        if catalog is None:
            catalog = _catalog_folder(run, run_file)
        frame = pyogrio.read_dataframe(folder / "plan.gpkg", layer="parcels", use_arrow=True)
        missing = [c for c in PLAN_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError([Issue("missing column (is this a plan written by `optiland solve`?)",
                                    file=str(folder / "plan.gpkg"), column=c) for c in missing])
        if "county" not in frame.columns:
            frame["county"] = folder.resolve().name
        if crs is None:
            crs = frame.crs
        elif frame.crs != crs:
            raise InputError([Issue(f"CRS differs from the first plan's ({crs.name})", file=str(folder / "plan.gpkg"),
                                    column="geometry", value=frame.crs.name if frame.crs else None)])
        frames.append(frame[[*PLAN_COLUMNS, "county", "geometry"]])
    parcels = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)
    return parcels, catalog, folders


def zone(plan_dir: str | Path, out: str | Path | None = None, *, mmu_mu: float = DEFAULT_MMU_MU,
         rules: str | Path | None = None, lang: str = "en", map_png: bool = True, db: str | None = None,
         schema: str = "public", prefix: str = "") -> Zoning:
    """Zone a plan folder (or a folder of plan folders) and write ``out`` (zones.gpkg, zones.png, zoning.json) whole
    or not at all; with ``db`` also write tables ``{prefix}zones``, ``{prefix}zone_stats``, ``{prefix}parcel_zones``
    in one transaction (optiland.io.postgis)."""
    clock = time.perf_counter()
    parcels, catalog, folders = read_plans(plan_dir)
    read_seconds = time.perf_counter() - clock
    zone_rules = load_zone_rules(rules if rules is not None else catalog)
    zoning = zone_parcels(parcels, zone_rules, mmu_mu, file=str(plan_dir))
    zoning.record = {"created": datetime.now(UTC).isoformat(timespec="seconds"),
                     "plans": [str(f) for f in folders], **zoning.record}
    zoning.record["times"] = {"read": round(read_seconds, 3), **zoning.record["times"]}
    if out is not None:
        write_zoning(zoning, out, zone_rules, lang=lang, map_png=map_png, db=db, schema=schema, prefix=prefix)
    elif db is not None:
        _write_database(zoning, db, schema, prefix)
    return zoning


def _write_database(zoning: Zoning, db: str, schema: str, prefix: str) -> None:
    from optiland.io.postgis import redact, without_password, write_zoning_tables

    clock = time.perf_counter()
    db = without_password(db)
    write_zoning_tables(db, zoning, schema=schema, prefix=prefix)
    zoning.record["database"] = {"url": redact(db), "schema": schema, "prefix": prefix}
    zoning.record["times"]["database"] = round(time.perf_counter() - clock, 3)


def write_zoning(zoning: Zoning, out: str | Path, rules: ZoneRules, lang: str = "en", map_png: bool = True,
                 db: str | None = None, schema: str = "public", prefix: str = "") -> Path:
    """Write zones.gpkg (zones, zone_stats, parcel_zones), zones.png and zoning.json to ``out`` whole or not at all;
    with ``db`` the tables are written (one transaction) before the folder is moved into place: all or nothing."""
    import pyogrio

    def write(folder: Path) -> None:
        clock = time.perf_counter()
        target = folder / "zones.gpkg"
        pyogrio.write_dataframe(zoning.zones, target, layer="zones", driver="GPKG", use_arrow=True)
        pyogrio.write_dataframe(zoning.stats, target, layer="zone_stats", driver="GPKG")
        pyogrio.write_dataframe(zoning.parcels, target, layer="parcel_zones", driver="GPKG", use_arrow=True)
        zoning.record["times"]["write"] = round(time.perf_counter() - clock, 3)
        if map_png:
            clock = time.perf_counter()
            zone_map(zoning, rules, folder / "zones.png", lang=lang)
            zoning.record["times"]["map"] = round(time.perf_counter() - clock, 3)
        if db is not None:
            _write_database(zoning, db, schema, prefix)
        (folder / "zoning.json").write_text(json.dumps(zoning.record, indent=2, ensure_ascii=False),
                                            encoding="utf-8")

    return write_atomically(Path(out), write)


def zone_map(zoning: Zoning, rules: ZoneRules, path: Path, lang: str = "en") -> None:
    """Zones coloured by zone, township outlines, red-line outline, flagged small patches hatched; legend, scale bar
    and north arrow (the report's map helpers)."""
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from optiland.io.catalog import load_catalog
    from optiland.views.report_data import Labels, load_strings, plot_fonts
    from optiland.views.report_plots import Plotter

    strings = load_strings(lang)
    catalog = load_catalog(rules.rules_file.parent)
    plotter = Plotter(path.parent, plot_fonts(lang), Labels(catalog, strings, lang), catalog)
    zones = zoning.zones
    label_column = "name_zh" if lang == "zh" else "name"
    with matplotlib.rc_context(plotter._rc()):
        fig, ax = plotter._figure(8.0, 7.0)
        handles: list[Any] = []
        by_zone = _dissolve(zones, "zone")  # one multipolygon per zone draws fast
        for name in rules.zones.index:
            if name not in by_zone.index:
                continue
            colour = rules.zones.loc[name, "colour"]
            by_zone.loc[[name]].plot(ax=ax, color=colour, edgecolor="none")
            handles.append(Patch(facecolor=colour, edgecolor="#555555", label=rules.zones.loc[name, label_column]))
        zones.boundary.plot(ax=ax, color="white", linewidth=0.15)
        townships = _dissolve(zones, ["county", "township"])
        townships.boundary.plot(ax=ax, color="#333333", linewidth=0.8)
        red = zones[zones["red_line"]]
        if len(red):
            _dissolve(red, "red_line").boundary.plot(ax=ax, color=RED_LINE_COLOUR, linewidth=1.2)
            handles.append(Line2D([0], [0], color=RED_LINE_COLOUR, linewidth=1.5, label=strings["legend_red_line"]))
        small = zones[zones["below_mmu"]]
        if len(small):
            small.plot(ax=ax, facecolor="none", edgecolor="black", hatch="////", linewidth=0.3)
            handles.append(Patch(facecolor="white", edgecolor="black", hatch="////",
                                 label=f"< {zoning.record['mmu_mu']:g} mu (kept, flagged)" if lang != "zh"
                                 else f"小于 {zoning.record['mmu_mu']:g} 亩（保留并标注）"))
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(f"Ecological-space zones ({len(zones):,} patches)" if lang != "zh"
                     else f"生态空间分区（{len(zones):,} 个图斑）", fontsize=12)
        plotter._scale_bar(ax)
        ax.annotate(strings["north"], xy=(1.04, 0.98), xytext=(1.04, 0.86), xycoords="axes fraction",
                    ha="center", va="center", fontsize=12, fontweight="bold",
                    arrowprops={"facecolor": "black", "width": 3, "headwidth": 10, "headlength": 10})
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False,
                  fontsize=9)
        fig.savefig(path, dpi=150, bbox_inches="tight", facecolor="white")


def synthetic_plan(instance: Path, plan: Path, seed: int = 6) -> None:
    """A plan folder (plan.gpkg, run.json) from an instance written by `optiland generate`, without solving: red-line
    parcels take the first option the catalog allows in red lines, basic farmland keeps its current use (the option
    that keeps it), elsewhere the village's leading option with probability 0.6, else any option at random (seeded).
    Options come from the instance's region catalog. For measuring and testing zoning alone (benchmarks/zoning.py,
    tests/test_zoning.py)."""
    import pyogrio

    from optiland.io.catalog import load_catalog
    from optiland.io.scenario import load_scenario

    config = load_scenario(instance / "scenario.toml").catalog
    catalog = load_catalog(config.path, region=config.region)
    options = catalog.options
    choices = np.array(options.index, dtype=object)
    protect = str(options.index[options["red_line_allowed"].astype(bool)][0])
    keep = str(options.index[options["keeps_current_use"].astype(bool)][0])
    parcels = pyogrio.read_dataframe(instance / "parcels.gpkg", use_arrow=True)
    villages = pd.read_csv(instance / "villages.csv", dtype={"village": str, "township": str})
    rng = np.random.default_rng(seed)
    n = len(parcels)
    village_codes, village_of = np.unique(parcels["village"].astype(str), return_inverse=True)
    lead = rng.integers(0, len(choices), len(village_codes))[village_of]
    option = choices[np.where(rng.random(n) < 0.6, lead, rng.integers(0, len(choices), n))]
    red = parcels["red_line"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    farmland = parcels["basic_farmland"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    option[red] = protect
    option[farmland & ~red] = keep
    bands = sorted(catalog.grade["bands"], key=lambda b: b["lower"])
    exposure = pd.to_numeric(parcels[catalog.grade.get("attribute", "bedrock_exposure")]).to_numpy()
    grade = np.array([b["name"] for b in bands])[np.searchsorted([b["lower"] for b in bands], exposure,
                                                                 side="right") - 1]
    township = villages.set_index("village")["township"].reindex(parcels["village"].astype(str)).to_numpy()
    frame = gpd.GeoDataFrame({
        "parcel_id": parcels["parcel_id"].astype(str), "village": parcels["village"].astype(str),
        "township": township, "area_mu": parcels.geometry.area / (10000 / 15), "option": option, "variant": option,
        "red_line": red, "basic_farmland": farmland, "grade": grade, "current_use": parcels["land_use"].astype(str),
    }, geometry=parcels.geometry, crs=parcels.crs)
    plan.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(frame, plan / "plan.gpkg", layer="parcels", use_arrow=True)
    (plan / "run.json").write_text(json.dumps({"catalog": {"name": catalog.name, "path": str(catalog.path)},
                                               "note": f"options by a seeded rule (seed {seed}), not solved"}))
