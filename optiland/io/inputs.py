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

from optiland.errors import InputError, Issue, Problems
from optiland.io.catalog import CORE_PARCEL_COLUMNS, Catalog
from optiland.io.scenario import Scenario
from optiland.io.tables import (  # noqa: F401 - codec_message, guess_encoding imported from here too
    codec_message,
    guess_encoding,
    not_found,
    number_text,
    read_table,
)

M2_PER_MU = 10000.0 / 15.0
CORE_BOOL_COLUMNS = ["red_line", "basic_farmland"]
VILLAGE_COLUMNS = ["village", "township", "population", "households", "labour_days", "nonland_income_per_capita"]
_TRUE = {"true", "1", "yes", "y", "t", "是"}
_FALSE = {"false", "0", "no", "n", "f", "否", ""}
SLOPE_RANGE = (0.0, 90.0)
GK_MERIDIANS = (75, 135)
"""Central meridians of the CGCS2000 3-degree Gauss-Kruger zones (EPSG:4534-4554)."""
FAR_DEGREES = 3.0
"""A geographic layer whose centre lies further than this from the nearest zone's meridian cannot be projected to a
Gauss-Kruger zone without distorting its areas: the planner must project it."""
AREA_OF_USE_MARGIN = 2.0
"""Degrees a layer may reach beyond its CRS's area of use (counties straddle zone edges)."""


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
        raise InputError([not_found(path, "parcel file")])
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":  # a parcel table without geometry (area_mu given; boundaries from a table)
            return read_table(path, "parcel table", (), encoding=encoding, section="parcels").reset_index(drop=True)
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
    except UnicodeError as exc:
        raise InputError([Issue(codec_message(path, encoding, "parcels", str(exc)), file=str(path))]) from None
    except Exception as exc:  # the reader's own message names the layer or encoding problem
        if "not encoded in UTF-8" in str(exc) or "codec" in str(exc):
            message = codec_message(path, encoding, "parcels", "the file does not say which encoding its "
                                    "attributes use (no .cpg file)" if suffix == ".shp" else str(exc))
            raise InputError([Issue(message, file=str(path))]) from None
        raise InputError([Issue(f"cannot read parcel layer: {exc}", file=str(path), column=layer)]) from None


def _as_bool(series: pd.Series, name: str, ids: pd.Series, file: str, problems: Problems) -> pd.Series:
    if series.dtype == bool:
        return series
    text = series.astype(str).str.strip().str.lower()
    text = text.where(series.notna(), "nan")
    valid = text.isin(_TRUE | _FALSE)
    problems.each(np.flatnonzero(~valid.to_numpy()), lambda p: Issue(
        "not a boolean (true/false, 1/0, 是/否)", file=file, row=str(ids.iloc[p]), column=name,
        value=series.iloc[p]))
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


def _numeric(frame: pd.DataFrame, column: str, ids: pd.Series, file: str, problems: Problems,
             optional: bool = False) -> None:
    """The column as floats; a missing value (unless `optional`), text that is not a number ("45OO") and an
    infinite number are problems."""
    raw = frame[column]
    values = pd.to_numeric(number_text(raw), errors="coerce").astype(float)
    array = values.to_numpy()
    blank = raw.isna().to_numpy() | raw.astype(str).str.strip().isin(["", "nan", "NaN"]).to_numpy()
    if not optional:
        problems.each(np.flatnonzero(np.isnan(array) & blank), lambda p: Issue(
            "missing value (NaN)", file=file, row=str(ids.iloc[p]), column=column))
    problems.each(np.flatnonzero(np.isnan(array) & ~blank), lambda p: Issue(
        "not a number", file=file, row=str(ids.iloc[p]), column=column, value=raw.iloc[p]))
    problems.each(np.flatnonzero(np.isinf(array)), lambda p: Issue(
        "not a finite number", file=file, row=str(ids.iloc[p]), column=column, value=raw.iloc[p]))
    frame[column] = values


def _relabel(error: InputError, mapping: dict[str, str]) -> InputError:
    """The problems with each column named as the planner's file names it ('坡度 (slope_deg)')."""
    for issue in error.problems:
        source = mapping.get(issue.column or "")
        if source and source != issue.column:
            issue.column = f"{source} ({issue.column})"
    return InputError(list(error.problems), more=error.more)


def read_villages(scenario: Scenario) -> pd.DataFrame:
    """Read and validate the village table (an empty one for a scenario without ``[villages]``)."""
    try:
        return _read_villages(scenario)
    except InputError as exc:
        raise _relabel(exc, scenario.villages.columns if scenario.villages else {}) from None


def _read_villages(scenario: Scenario) -> pd.DataFrame:
    if scenario.villages is None:
        return pd.DataFrame({c: pd.Series(dtype=str if c in ("village", "township") else float)
                             for c in VILLAGE_COLUMNS})
    path = scenario.resolve(scenario.villages.path)
    file = str(path)
    if not path.is_file():
        raise InputError([not_found(path, "village file")])
    # every cell as text, Excel's encodings, blank rows and error cells handled (the reader of all tables)
    frame = read_table(path, "village table", (), encoding=scenario.villages.encoding, section="villages",
                       empty_ok=True)
    lines = frame.index.to_numpy()
    frame = frame.reset_index(drop=True)
    problems = Problems()
    frame = _rename(frame, scenario.villages.columns, VILLAGE_COLUMNS, file, problems, "village")
    if problems:
        raise InputError(problems)
    if not len(frame):
        raise InputError([Issue("the village table has no villages", file=file)])
    missing = frame["village"].isna().to_numpy() | (frame["village"].astype(str).str.strip() == "").to_numpy()
    problems.each(np.flatnonzero(missing), lambda p: Issue("missing village id", file=file, row=f"line {lines[p]}",
                                                           column="village"))
    frame["village"] = frame["village"].astype(str).where(~missing, [f"line {n}" for n in lines])
    frame["township"] = frame["township"].astype(str)
    ids = frame["village"]
    for village in ids[ids.duplicated() & ~missing].unique():
        where = " and ".join(f"line {n}" for n in lines[(ids == village).to_numpy()])
        problems.append(Issue(f"duplicate village id ({where})", file=file, row=village, column="village"))
    numeric = ["population", "households", "labour_days", "nonland_income_per_capita"]
    if "income_floor" in frame.columns:  # blank: the scenario's floor; anything else must be a number
        _numeric(frame, "income_floor", ids, file, problems, optional=True)
        floors = frame["income_floor"].to_numpy()
        problems.each(np.flatnonzero(floors < 0), lambda p: Issue("must not be negative", file=file,
                                                                  row=ids.iloc[p], column="income_floor",
                                                                  value=floors[p]))
    for column in numeric:
        _numeric(frame, column, ids, file, problems)
    for column, strict in (("population", True), ("households", True), ("labour_days", False),
                           ("nonland_income_per_capita", False)):
        values = frame[column].to_numpy()
        bad = (values <= 0) if strict else (values < 0)
        problems.each(np.flatnonzero(bad & ~np.isnan(values)), lambda p, c=column, v=values, st=strict: Issue(
            "must be positive" if st else "must not be negative", file=file, row=ids.iloc[p], column=c, value=v[p]))
    for column, what in (("population", "people"), ("households", "households")):
        values = frame[column].to_numpy()
        whole = np.isfinite(values) & (values > 0)
        problems.each(np.flatnonzero(whole & (values != np.round(values))), lambda p, c=column, v=values, w=what:
                      Issue(f"must be a whole number of {w}", file=file, row=ids.iloc[p], column=c, value=v[p]))
    if problems:
        raise InputError(problems)
    keep = VILLAGE_COLUMNS + (["income_floor"] if "income_floor" in frame.columns else [])
    return frame[keep].reset_index(drop=True)


def read_parcels(scenario: Scenario, catalog: Catalog, villages: pd.DataFrame) -> tuple[gpd.GeoDataFrame, str]:
    """Read, validate and reproject the parcel layer; returns the parcels and a note on the CRS used."""
    mapping = dict(scenario.parcels.columns)
    if scenario.parcels.id_column != "parcel_id":
        mapping.setdefault("parcel_id", scenario.parcels.id_column)
    try:
        return _read_parcels(scenario, catalog, villages)
    except InputError as exc:
        raise _relabel(exc, mapping) from None
    except UnicodeDecodeError as exc:  # text read as arrow strings decodes only when used
        path = scenario.resolve(scenario.parcels.path)
        reason = ("the file does not say which encoding its attributes use (no .cpg file)"
                  if path.suffix.lower() == ".shp" and not path.with_suffix(".cpg").exists() else str(exc))
        raise InputError([Issue(codec_message(path, scenario.parcels.encoding, "parcels", reason),
                                file=str(path))]) from None


def _read_parcels(scenario: Scenario, catalog: Catalog, villages: pd.DataFrame) -> tuple[gpd.GeoDataFrame, str]:
    config = scenario.parcels
    path = scenario.resolve(config.path)
    file = str(path)
    if config.db:  # a PostGIS table instead of the file (optiland.io.postgis)
        from optiland.io.postgis import read_parcel_table, table_source

        file, frame = table_source(config.db, config.table or ""), read_parcel_table(config.db, config.table or "")
    else:
        frame = _read_layer(path, config.layer, config.encoding)
    problems = Problems()
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
    if not len(frame):
        raise InputError([Issue("the parcel layer has no parcels", file=file, column=config.layer)])
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
    problems.each(np.flatnonzero(empty), lambda p: Issue("empty or missing geometry", file=file, row=ids.iloc[p],
                                                         column="geometry"))
    problems.each(np.flatnonzero(invalid), lambda p: Issue(
        f"invalid geometry: {shapely.is_valid_reason(geometry[p])}", file=file, row=ids.iloc[p], column="geometry"))
    if problems:
        raise InputError(problems)

    crs = CRS.from_user_input(frame.crs)
    check_area_of_use(frame, crs, file)
    if crs.is_geographic:
        centre = shapely.centroid(shapely.union_all(shapely.envelope(geometry[:1000])))
        target = gauss_kruger_crs(centre.x)
        meridian = 75 + 3 * (target.to_epsg() - 4534)
        if abs(centre.x - meridian) > FAR_DEGREES:
            raise InputError([Issue(
                f"the layer lies at {centre.x:.1f}°E, {centre.y:.1f}°N, outside the CGCS2000 Gauss-Kruger zones "
                f"(central meridians {GK_MERIDIANS[0]}-{GK_MERIDIANS[1]}°E) used to compute areas in a geographic "
                f"CRS; projecting it to the nearest ({target.name}) would move it {abs(centre.x - meridian):.0f}° "
                f"and distort its areas: project the layer to a CRS for its region first", file=file,
                column="geometry")])
        frame = frame.to_crs(target)
        note = f"reprojected from {crs.name} (EPSG:{crs.to_epsg()}) to {target.name} (EPSG:{target.to_epsg()})"
    else:
        note = f"projected CRS {crs.name} (EPSG:{crs.to_epsg()}) used as given"
    area = shapely.area(frame.geometry.to_numpy()) / M2_PER_MU
    bad_area = ~np.isfinite(area) | (area <= 0)
    problems.each(np.flatnonzero(bad_area), lambda p: Issue("zero, negative or undefined area", file=file,
                                                            row=ids.iloc[p], column="geometry", value=float(area[p])))
    if problems:
        raise InputError(problems)
    frame["area_mu"] = area
    columns = parcel_columns(catalog) + ["area_mu", "geometry"]
    return gpd.GeoDataFrame(frame[columns].reset_index(drop=True), geometry="geometry", crs=frame.crs), note


def _common_checks(frame: pd.DataFrame, catalog: Catalog, villages: pd.DataFrame, file: str,
                   problems: Problems) -> pd.Series:
    """Ids, numbers, ranges, booleans, villages and land-use codes of a parcel table (with or without geometry)."""
    raw = frame["parcel_id"]
    missing = (raw.isna() | (raw.astype(str).str.strip() == "")).to_numpy()
    problems.each(np.flatnonzero(missing), lambda p: Issue("missing parcel id", file=file, row=f"feature {p + 1}",
                                                           column="parcel_id"))
    ids = raw.astype(str).where(~missing, [f"feature {p + 1}" for p in range(len(raw))])
    frame["parcel_id"] = ids
    duplicated = ids[ids.duplicated() & ~missing].unique()
    problems.each(range(len(duplicated)), lambda i: Issue("duplicate parcel id", file=file, row=duplicated[i],
                                                          column="parcel_id"))
    frame["village"] = frame["village"].astype(str)
    frame["land_use"] = frame["land_use"].astype(str).str.strip()
    for column, (low, high) in _site_ranges(catalog).items():
        _numeric(frame, column, ids, file, problems)
        values = frame[column].to_numpy()
        bad = ((values < low) | (values > high)) & np.isfinite(values)
        problems.each(np.flatnonzero(bad), lambda p, c=column, v=values, lo=low, hi=high: Issue(
            f"outside {lo:g}-{hi:g}", file=file, row=ids.iloc[p], column=c, value=v[p]))
    for column in _bool_columns(catalog):
        frame[column] = _as_bool(frame[column], column, ids, file, problems)
    unknown_villages = ~frame["village"].isin(villages["village"]) if len(villages) else frame["village"] != ""
    problems.each(np.flatnonzero(unknown_villages.to_numpy()), lambda p: Issue(
        "village not in the village table", file=file, row=ids.iloc[p], column="village",
        value=frame["village"].iloc[p]))
    unknown_uses = ~frame["land_use"].isin(catalog.current_uses.index)
    known = ", ".join(catalog.current_uses.index)
    problems.each(np.flatnonzero(unknown_uses.to_numpy()), lambda p: Issue(
        f"unknown land-survey code (GB/T 21010); the catalog knows {known}", file=file, row=ids.iloc[p],
        column="land_use", value=frame["land_use"].iloc[p]))
    return ids


def check_area_of_use(frame: gpd.GeoDataFrame, crs: CRS, file: str) -> None:
    """The layer's coordinates must lie where its CRS is meant for: degrees within +-180/+-90 for a geographic
    CRS (metre coordinates declared as EPSG:4326 are not), and the layer's extent within the CRS's area of use
    (plus a margin) for any CRS that declares one."""
    west, south, east, north = (float(v) for v in frame.total_bounds)
    name = f"{crs.name} (EPSG:{crs.to_epsg()})"
    if crs.is_geographic and not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InputError([Issue(
            f"coordinates from ({west:,.6g}, {south:,.6g}) to ({east:,.6g}, {north:,.6g}) are not degrees, but the "
            f"layer declares the geographic CRS {name}: declare the CRS the coordinates are in (metres: a "
            f"projected CRS such as EPSG:4545)", file=file, column="geometry")])
    area = crs.area_of_use
    if area is None:
        return
    if crs.is_geographic:
        lon_lat = (west, south, east, north)
    else:
        from pyproj import Transformer

        try:
            lon_lat = Transformer.from_crs(crs, 4326, always_xy=True).transform_bounds(west, south, east, north)
        except Exception:  # noqa: BLE001 - outside the projection's domain
            lon_lat = (np.inf, np.inf, np.inf, np.inf)
    margin = AREA_OF_USE_MARGIN
    inside = (np.all(np.isfinite(lon_lat)) and lon_lat[0] >= area.west - margin and lon_lat[2] <= area.east + margin
              and lon_lat[1] >= area.south - margin and lon_lat[3] <= area.north + margin)
    if not inside:
        where = ("outside the projection's domain" if not np.all(np.isfinite(lon_lat)) else
                 f"spans {lon_lat[0]:.2f} to {lon_lat[2]:.2f}°E, {lon_lat[1]:.2f} to {lon_lat[3]:.2f}°N")
        raise InputError([Issue(
            f"the layer ({where}) lies outside the area of use of its CRS {name}: {area.name} "
            f"({area.west:g} to {area.east:g}°E, {area.south:g} to {area.north:g}°N); is the declared CRS the one "
            f"the coordinates are in?", file=file, column="geometry")])


def _parcel_table_without_geometry(frame: pd.DataFrame, catalog: Catalog, villages: pd.DataFrame,
                                   file: str) -> gpd.GeoDataFrame:
    """A parcel table (CSV) without geometry: the columns of a layer plus area_mu; geometry stays empty."""
    problems = Problems()
    ids = _common_checks(frame, catalog, villages, file, problems)
    _numeric(frame, "area_mu", ids, file, problems)
    problems.each(np.flatnonzero(frame["area_mu"].to_numpy() <= 0), lambda p: Issue(
        "area must be positive", file=file, row=ids.iloc[p], column="area_mu", value=frame["area_mu"].iloc[p]))
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


def input_files(scenario: Scenario) -> dict[str, Path]:
    """Every file a scenario reads, by what it is: the scenario file, each path in it (parcels, villages, spatial
    tables, features, price scenarios, conversions) and each table of its catalog folder ('catalog/<file>')."""
    from pydantic import BaseModel

    from optiland.io.catalog import resolve_catalog_path

    files: dict[str, Path] = {}
    if scenario.source_path:
        files["scenario"] = Path(scenario.source_path)

    def walk(model: BaseModel, prefix: str) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            key = f"{prefix}{name}"
            if name in ("base_dir", "source_path"):
                continue
            if isinstance(value, Path):
                files[key] = scenario.resolve(value)
            elif isinstance(value, BaseModel):
                walk(value, f"{key}.")

    walk(scenario, "")
    if scenario.parcels.db:
        files.pop("parcels.path", None)  # read from the database: hashed as read (postgis.frame_hash)
    config = scenario.catalog
    folder = files.pop("catalog.path", None) or resolve_catalog_path(config.region, None)
    for file in sorted(Path(folder).glob("*")):
        if file.is_file() and file.suffix in {".toml", ".csv"}:
            files[f"catalog/{file.name}"] = file
    return files


def input_hashes(scenario: Scenario) -> dict[str, str]:
    """sha256 of every file `input_files` names (a missing file: 'missing')."""
    return {key: file_hash(path) if path.exists() else "missing" for key, path in input_files(scenario).items()}
