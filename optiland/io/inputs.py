"""Read and validate the parcel layer and the village table; reproject and compute areas.

Every problem found is reported together, each naming the file, the parcel or village id, the column and the value.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from optiland.errors import InputError, Issue
from optiland.io.catalog import CORE_PARCEL_COLUMNS, Catalog
from optiland.io.scenario import Scenario

M2_PER_MU = 10000.0 / 15.0
CORE_BOOL_COLUMNS = ["red_line", "basic_farmland"]
VILLAGE_COLUMNS = ["village", "township", "population", "households", "labour_days", "nonland_income_per_capita"]
_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否", ""}
SLOPE_RANGE = (0.0, 90.0)


def parcel_columns(catalog: Catalog) -> list[str]:
    """Canonical parcel columns: the core ones with the catalog's site attributes after slope_deg, in declared order."""
    core = list(CORE_PARCEL_COLUMNS)
    at = core.index("slope_deg") + 1
    return core[:at] + list(catalog.site_attributes) + core[at:]


def _site_ranges(catalog: Catalog) -> dict[str, tuple[float, float]]:
    """Numeric parcel columns and their allowed ranges (slope and the catalog's float attributes)."""
    ranges = {"slope_deg": SLOPE_RANGE}
    for name, spec in catalog.site_attributes.items():
        if spec.get("type") == "float":
            ranges[name] = (float(spec.get("min", -np.inf)), float(spec.get("max", np.inf)))
    return ranges


def _bool_columns(catalog: Catalog) -> list[str]:
    return [n for n, spec in catalog.site_attributes.items() if spec.get("type") == "bool"] + CORE_BOOL_COLUMNS


@dataclass
class Inputs:
    """Validated inputs: parcels (canonical columns, `area_mu`, geometry in a projected CRS) and villages."""

    parcels: gpd.GeoDataFrame
    villages: pd.DataFrame
    crs_note: str
    hashes: dict[str, str]


def file_hash(path: Path) -> str:
    """sha256 of a file (for a Shapefile, of its .shp, .dbf and .prj together)."""
    digest = hashlib.sha256()
    paths = [path]
    if path.suffix.lower() == ".shp":
        paths = [path.with_suffix(s) for s in (".shp", ".dbf", ".prj", ".cpg") if path.with_suffix(s).exists()]
    for p in paths:
        with open(p, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def gauss_kruger_crs(longitude: float) -> CRS:
    """CGCS2000 3-degree Gauss-Kruger zone (central meridian nearest the longitude), EPSG:4534-4554."""
    meridian = int(np.clip(round(longitude / 3.0) * 3, 75, 135))
    return CRS.from_epsg(4534 + (meridian - 75) // 3)


def _read_layer(path: Path, layer: str | None, encoding: str | None) -> gpd.GeoDataFrame | pd.DataFrame:
    if not path.exists():
        raise InputError([Issue("parcel file not found", file=str(path))])
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":  # a parcel table without geometry (area_mu given; boundaries from a table)
            return pd.read_csv(path, dtype=str, encoding=encoding or "utf-8-sig", skipinitialspace=True)
        if suffix in {".parquet", ".geoparquet"}:
            return gpd.read_parquet(path)
        kwargs: dict[str, object] = {"engine": "pyogrio", "use_arrow": True}  # columnar: no per-feature objects
        if layer:
            kwargs["layer"] = layer
        if encoding:
            kwargs["encoding"] = encoding
        return gpd.read_file(path, **kwargs)
    except InputError:
        raise
    except Exception as exc:  # the reader's own message names the layer or encoding problem
        raise InputError([Issue(f"cannot read parcel layer: {exc}", file=str(path), column=layer)]) from None


def _as_bool(series: pd.Series, name: str, ids: pd.Series, file: str, problems: list[Issue]) -> pd.Series:
    if series.dtype == bool:
        return series
    text = series.astype(str).str.strip().str.lower()
    text = text.where(series.notna(), "nan")
    valid = text.isin(_TRUE | _FALSE)
    for position in np.flatnonzero(~valid.to_numpy())[:20]:
        problems.append(Issue("not a boolean (true/false, 1/0, 是/否)", file=file, row=str(ids.iloc[position]),
                                column=name, value=series.iloc[position]))
    return text.isin(_TRUE)


def _rename(frame: pd.DataFrame, mapping: dict[str, str], required: list[str], file: str,
            problems: list[Issue], kind: str, known: list[str] | None = None) -> pd.DataFrame:
    known = required if known is None else known
    for canonical in mapping:
        if canonical not in known and canonical not in ("income_floor", "geometry", "area_mu"):
            close = difflib.get_close_matches(canonical, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(Issue(f"unknown canonical {kind} column in the column mapping{hint}", file=file,
                                    column=canonical))
    frame = frame.rename(columns={source: canonical for canonical, source in mapping.items()})
    for column in required:
        if column not in frame.columns:
            close = difflib.get_close_matches(column, [str(c) for c in frame.columns], n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}? (map it in the scenario's columns table)" if close else ""
            problems.append(Issue(f"missing column{hint}", file=file, column=column))
    return frame


def _numeric(frame: pd.DataFrame, column: str, ids: pd.Series, file: str, problems: list[Issue]) -> None:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna().to_numpy()
    for position in np.flatnonzero(bad)[:20]:
        raw = frame[column].iloc[position]
        problems.append(Issue("missing value (NaN)" if pd.isna(raw) else "not a number", file=file,
                                row=str(ids.iloc[position]), column=column, value=None if pd.isna(raw) else raw))
    frame[column] = values.astype(float)


def read_villages(scenario: Scenario) -> pd.DataFrame:
    """Read and validate the village table (an empty one for a scenario without ``[villages]``)."""
    if scenario.villages is None:
        return pd.DataFrame({c: pd.Series(dtype=str if c in ("village", "township") else float)
                             for c in VILLAGE_COLUMNS})
    path = scenario.resolve(scenario.villages.path)
    file = str(path)
    if not path.is_file():
        raise InputError([Issue("village file not found", file=file)])
    try:
        frame = pd.read_csv(path, encoding=scenario.villages.encoding, dtype={"village": str, "township": str})
    except Exception as exc:
        raise InputError([Issue(f"cannot read village table: {exc}", file=file)]) from None
    problems: list[Issue] = []
    frame = _rename(frame, scenario.villages.columns, VILLAGE_COLUMNS, file, problems, "village")
    if problems:
        raise InputError(problems)
    frame["village"] = frame["village"].astype(str)
    frame["township"] = frame["township"].astype(str)
    ids = frame["village"]
    for village in ids[ids.duplicated()].unique():
        problems.append(Issue("duplicate village id", file=file, row=village, column="village"))
    numeric = ["population", "households", "labour_days", "nonland_income_per_capita"]
    if "income_floor" in frame.columns:
        frame["income_floor"] = pd.to_numeric(frame["income_floor"], errors="coerce")
    for column in numeric:
        _numeric(frame, column, ids, file, problems)
    for column, strict in (("population", True), ("households", True), ("labour_days", False),
                           ("nonland_income_per_capita", False)):
        values = frame[column].to_numpy()
        bad = (values <= 0) if strict else (values < 0)
        for position in np.flatnonzero(bad & ~np.isnan(values))[:20]:
            problems.append(Issue("must be positive" if strict else "must not be negative", file=file,
                                    row=ids.iloc[position], column=column, value=values[position]))
    if problems:
        raise InputError(problems)
    keep = VILLAGE_COLUMNS + (["income_floor"] if "income_floor" in frame.columns else [])
    return frame[keep].reset_index(drop=True)


def read_parcels(scenario: Scenario, catalog: Catalog, villages: pd.DataFrame) -> tuple[gpd.GeoDataFrame, str]:
    """Read, validate and reproject the parcel layer; returns the parcels and a note on the CRS used."""
    config = scenario.parcels
    path = scenario.resolve(config.path)
    file = str(path)
    if config.db:  # a PostGIS table instead of the file (optiland.io.postgis)
        from optiland.io.postgis import read_parcel_table, table_source

        file, frame = table_source(config.db, config.table or ""), read_parcel_table(config.db, config.table or "")
    else:
        frame = _read_layer(path, config.layer, config.encoding)
    problems: list[Issue] = []
    mapping = dict(config.columns)
    if config.id_column != "parcel_id":
        mapping.setdefault("parcel_id", config.id_column)
    tabular = not isinstance(frame, gpd.GeoDataFrame)
    columns = parcel_columns(catalog)
    defaults = {name: spec["default"] for name, spec in catalog.site_attributes.items() if "default" in spec}
    required = [c for c in columns if (c != "village" or len(villages)) and c not in defaults]
    required += ["area_mu"] if tabular else []
    frame = _rename(frame, mapping, required, file, problems, "parcel", known=columns)
    if problems:
        raise InputError(problems)
    for name, default in defaults.items():  # a declared attribute the layer lacks takes the catalog's default
        if name not in frame.columns:
            frame[name] = default
    if not len(villages):
        frame["village"] = frame["village"].fillna("") if "village" in frame.columns else ""
    if tabular:
        note = "no geometry: a parcel table with area_mu"
        return _parcel_table_without_geometry(frame, catalog, villages, file), note
    if frame.crs is None:
        raise InputError([Issue("the layer has no CRS; areas cannot be computed (set one, e.g. EPSG:4545)",
                                  file=file)])
    ids = _common_checks(frame, catalog, villages, file, problems)
    geometry = frame.geometry.to_numpy()
    empty = shapely.is_missing(geometry) | shapely.is_empty(geometry)
    invalid = ~shapely.is_valid(geometry) & ~empty
    for position in np.flatnonzero(empty)[:20]:
        problems.append(Issue("empty or missing geometry", file=file, row=ids.iloc[position], column="geometry"))
    for position in np.flatnonzero(invalid)[:20]:
        reason = shapely.is_valid_reason(geometry[position])
        problems.append(Issue(f"invalid geometry: {reason}", file=file, row=ids.iloc[position], column="geometry"))
    if problems:
        raise InputError(problems)

    crs = CRS.from_user_input(frame.crs)
    if crs.is_geographic:
        centre = shapely.centroid(shapely.union_all(shapely.envelope(geometry[:1000])))
        target = gauss_kruger_crs(centre.x)
        frame = frame.to_crs(target)
        note = f"reprojected from {crs.name} (EPSG:{crs.to_epsg()}) to {target.name} (EPSG:{target.to_epsg()})"
    else:
        note = f"projected CRS {crs.name} (EPSG:{crs.to_epsg()}) used as given"
    area = shapely.area(frame.geometry.to_numpy()) / M2_PER_MU
    for position in np.flatnonzero(area <= 0)[:20]:
        problems.append(Issue("zero or negative area", file=file, row=ids.iloc[position], column="geometry",
                                value=float(area[position])))
    if problems:
        raise InputError(problems)
    frame["area_mu"] = area
    columns = parcel_columns(catalog) + ["area_mu", "geometry"]
    return gpd.GeoDataFrame(frame[columns].reset_index(drop=True), geometry="geometry", crs=frame.crs), note


def _common_checks(frame: pd.DataFrame, catalog: Catalog, villages: pd.DataFrame, file: str,
                   problems: list[Issue]) -> pd.Series:
    """Ids, numbers, ranges, booleans, villages and land-use codes of a parcel table (with or without geometry)."""
    ids = frame["parcel_id"].astype(str)
    frame["parcel_id"] = ids
    for parcel in ids[ids.duplicated()].unique()[:20]:
        problems.append(Issue("duplicate parcel id", file=file, row=parcel, column="parcel_id"))
    frame["village"] = frame["village"].astype(str)
    frame["land_use"] = frame["land_use"].astype(str).str.strip()
    for column, (low, high) in _site_ranges(catalog).items():
        _numeric(frame, column, ids, file, problems)
        values = frame[column].to_numpy()
        bad = ((values < low) | (values > high)) & ~np.isnan(values)
        for position in np.flatnonzero(bad)[:20]:
            problems.append(Issue(f"outside {low:g}-{high:g}", file=file, row=ids.iloc[position], column=column,
                                    value=values[position]))
    for column in _bool_columns(catalog):
        frame[column] = _as_bool(frame[column], column, ids, file, problems)
    unknown_villages = ~frame["village"].isin(villages["village"]) if len(villages) else frame["village"] != ""
    for position in np.flatnonzero(unknown_villages.to_numpy())[:20]:
        problems.append(Issue("village not in the village table", file=file, row=ids.iloc[position],
                                column="village", value=frame["village"].iloc[position]))
    unknown_uses = ~frame["land_use"].isin(catalog.current_uses.index)
    for position in np.flatnonzero(unknown_uses.to_numpy())[:20]:
        problems.append(Issue(f"unknown land-survey code (GB/T 21010); the catalog knows "
                                f"{', '.join(catalog.current_uses.index)}", file=file, row=ids.iloc[position],
                                column="land_use", value=frame["land_use"].iloc[position]))
    return ids


def _parcel_table_without_geometry(frame: pd.DataFrame, catalog: Catalog, villages: pd.DataFrame,
                                   file: str) -> gpd.GeoDataFrame:
    """A parcel table (CSV) without geometry: the columns of a layer plus area_mu; geometry stays empty."""
    problems: list[Issue] = []
    ids = _common_checks(frame, catalog, villages, file, problems)
    _numeric(frame, "area_mu", ids, file, problems)
    for position in np.flatnonzero(frame["area_mu"].to_numpy() <= 0)[:20]:
        problems.append(Issue("area must be positive", file=file, row=ids.iloc[position], column="area_mu",
                              value=frame["area_mu"].iloc[position]))
    if problems:
        raise InputError(problems)
    columns = parcel_columns(catalog) + ["area_mu"]
    return gpd.GeoDataFrame(frame[columns].reset_index(drop=True), geometry=[None] * len(frame))


def read_inputs(scenario: Scenario, catalog: Catalog) -> Inputs:
    """Read both tables; nothing is computed from an input that failed validation."""
    villages = read_villages(scenario)
    parcels, note = read_parcels(scenario, catalog, villages)
    if scenario.parcels.db:  # a PostGIS table: the hash of what was read
        from optiland.io.postgis import frame_hash

        hashes = {"parcels": frame_hash(parcels)}
    else:
        hashes = {"parcels": file_hash(scenario.resolve(scenario.parcels.path))}
    if scenario.villages is not None:
        hashes["villages"] = file_hash(scenario.resolve(scenario.villages.path))
    if scenario.source_path:
        hashes["scenario"] = file_hash(scenario.source_path)
    return Inputs(parcels=parcels, villages=villages, crs_note=note, hashes=hashes)
