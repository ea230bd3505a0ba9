"""The app's project folder: one folder per instance (inputs, tiles, parcel attributes), jobs, uploads.

Layout under the project root (nothing is written outside it)::

    instances/<key>/input/       scenario.toml and copies of the parcel layer and villages table it names
    instances/<key>/instance.json  what the page needs: names, counts, catalog kinds and colours, form defaults
    instances/<key>/parcels.json   one array per attribute, in the parcels' order (index = feature id of the tiles)
    instances/<key>/tiles.pmtiles  the parcels as vector tiles (GDAL's PMTiles driver via pyogrio), keyed by `key`
    instances/<key>/areas.geojson  village and township outlines
    jobs/<id>/                     one folder per job (see optiland.app.jobs)
    uploads/                       uploads being checked (see optiland.app.uploads)

`key` is a hash of the scenario as read and of its input files' sha256 (run.json's input hashes), so an
instance opened again reuses its tiles. Every folder is built beside its place and moved in with one rename.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from optiland.app import toml
from optiland.app._engine import (
    InputError,
    Issue,
    Prepared,
    Scenario,
    load_scenario,
    prepare,
    site_rules,
    variant_table,
)

KEY_RE = re.compile(r"^[0-9a-f]{16}$")
"""Instance keys and job ids are lower-case hex; anything else from a request is refused before any path is built."""

USE_COLOURS = {  # first two digits of the GB/T 21010 code -> colour of the current-use map
    "01": "#f2d36b", "02": "#f0a35e", "03": "#3f8f4a", "04": "#a9d279", "05": "#d9776f", "06": "#b05f5a",
    "07": "#d9776f", "08": "#c98f8a", "09": "#a0707a", "10": "#9a9a9a", "11": "#6aa9d8", "12": "#cbb994",
}
OPTION_HUES = [0.33, 0.08, 0.58, 0.15, 0.83, 0.0, 0.5, 0.7, 0.25, 0.95]


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write a file beside its place and rename it in: readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
        umask_mode(Path(tmp), directory=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """JSON, atomically."""
    atomic_write(path, json.dumps(data, ensure_ascii=False, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def umask_mode(path: Path, directory: bool = True) -> None:
    """Give a folder made by mkdtemp (0700) or a file by mkstemp (0600) the modes the umask allows."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if directory else 0o666) & ~mask)


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _hex(hue: float, lightness: float, saturation: float = 0.55) -> str:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def kinds_of(catalog: Any) -> list[dict[str, Any]]:
    """Every (option, variant) of the catalog with its names and a colour: options apart by hue, variants by
    lightness. A plan is sent to the page as one index into this list per parcel."""
    table = variant_table(catalog)
    options = list(dict.fromkeys(table["option"]))
    kinds = []
    option_of = table["option"].to_numpy()
    for idx, row in enumerate(table.itertuples(index=False)):
        o = options.index(row.option)
        siblings = np.flatnonzero(option_of == row.option)
        k = int(np.searchsorted(siblings, idx))
        keep = bool(row.keeps_current_use)
        lightness = 0.35 + 0.4 * (k / max(1, len(siblings) - 1)) if len(siblings) > 1 else 0.5
        colour = "#d8d2c4" if keep else _hex(OPTION_HUES[o % len(OPTION_HUES)], lightness)
        opt = catalog.options.loc[row.option]
        names = {"name": row.variant, "name_zh": row.variant}
        if (row.option, row.variant) in catalog.variants.index:
            variant = catalog.variants.loc[(row.option, row.variant)]
            names = {k: str(variant[k]) if isinstance(variant.get(k), str) and variant.get(k) else row.variant
                     for k in ("name", "name_zh")}
        kinds.append({"option": row.option, "variant": row.variant, "keeps_current_use": keep,
                      "option_name": str(opt.get("name", row.option)),
                      "option_name_zh": str(opt.get("name_zh", row.option)), **names, "colour": colour})
    return kinds


def _zooms(bounds_m: tuple[float, float, float, float], latitude: float) -> tuple[int, int, float]:
    """Tile zooms for a layer of this extent: from two levels below the zoom at which it fills ~1,000 px, to 14
    or more (parcels of ~10 mu are ~10 px wide there; MapLibre over-zooms beyond)."""
    extent = max(bounds_m[2] - bounds_m[0], bounds_m[3] - bounds_m[1], 1.0)
    fit = math.log2(156543.03 * math.cos(math.radians(latitude)) * 1000 / extent)
    low = int(max(0, min(14, math.floor(fit) - 2)))
    return low, max(14, low + 2), fit


TILES_VERSION = 2
"""Part of an instance's key: tiles written by an older app are rebuilt (2: current use in the tiles)."""


def write_tiles(geometry: gpd.GeoSeries, red_line: np.ndarray, path: Path, use: np.ndarray | None = None,
                farmland: np.ndarray | None = None) -> dict[str, Any]:
    """The parcels as one PMTiles file (GDAL's PMTiles driver): property `i` (the parcel's index, promoted to
    the feature id in the page), `r` (1 inside a red line, 2 basic farmland, 3 both) and `u` (the index of its
    current use), so the first map needs no feature state. Written beside `path`, then renamed in."""
    import pyogrio

    bounds_m = tuple(float(v) for v in geometry.total_bounds)
    wgs = geometry.to_crs(4326)
    west, south, east, north = (float(v) for v in wgs.total_bounds)
    low, high, fit = _zooms(bounds_m, (south + north) / 2)
    n = len(wgs)
    flags = red_line.astype(np.int32) + 2 * (np.zeros(n, np.int32) if farmland is None else farmland.astype(np.int32))
    frame = gpd.GeoDataFrame({"i": np.arange(n, dtype=np.int32), "r": flags,
                              "u": np.zeros(n, np.int32) if use is None else use.astype(np.int32)},
                             geometry=wgs.reset_index(drop=True), crs=4326)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}.pmtiles")
    start = time.perf_counter()
    try:
        pyogrio.write_dataframe(frame, tmp, driver="PMTiles", layer="parcels",
                                dataset_options={"MINZOOM": low, "MAXZOOM": high, "NAME": "parcels"})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"minzoom": low, "maxzoom": high, "fit_zoom": fit, "bounds": [west, south, east, north],
            "seconds": round(time.perf_counter() - start, 3), "bytes": path.stat().st_size}


def write_areas(parcels: gpd.GeoDataFrame, path: Path) -> None:
    """Village and township outlines (dissolved parcels) as GeoJSON in WGS 84."""
    frames = []
    for level in ("village", "township"):
        merged = parcels[[level, "geometry"]].dissolve(by=level).reset_index()
        frames.append(gpd.GeoDataFrame({"level": level, "name": merged[level].astype(str)},
                                       geometry=merged.geometry, crs=parcels.crs))
    both = pd.concat(frames, ignore_index=True)
    both = gpd.GeoDataFrame(both, geometry="geometry", crs=parcels.crs).to_crs(4326)
    both["geometry"] = both.geometry.boundary
    atomic_write(path, both.to_json(drop_id=True))


@dataclass
class Instance:
    """One opened instance in the project folder."""

    key: str
    folder: Path
    meta: dict[str, Any]
    _prepared: Prepared | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def scenario_path(self) -> Path:
        """The instance's own scenario file (inputs copied beside it)."""
        return self.folder / "input" / "scenario.toml"

    def prepared(self) -> Prepared:
        """The scenario read and the problem derived (cached)."""
        with self._lock:
            if self._prepared is None:
                self._prepared = prepare(self.scenario_path)
            return self._prepared

    def parcel_index(self) -> dict[str, int]:
        """parcel_id -> index in the instance's parcel order."""
        ids = json.loads((self.folder / "parcels.json").read_text(encoding="utf-8"))["parcel_id"]
        return {pid: i for i, pid in enumerate(ids)}


def _copy_inputs(scenario: Scenario, target: Path) -> dict[str, Any]:
    """Copy the parcel layer (with a Shapefile's side files) and the villages table into `target`; return the
    scenario as data with those paths relative and every other path absolute."""
    data = scenario.to_dict()
    parcels = scenario.resolve(scenario.parcels.path)
    if parcels.is_file():
        files = [parcels]
        if parcels.suffix.lower() == ".shp":
            files = [p for p in parcels.parent.glob(parcels.stem + ".*") if p.suffix.lower() in (
                ".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")]
        for f in files:
            link_or_copy(f, target / f.name)
        data["parcels"]["path"] = parcels.name
    if scenario.villages is not None and scenario.resolve(scenario.villages.path).is_file():
        villages = scenario.resolve(scenario.villages.path)
        link_or_copy(villages, target / villages.name)
        data["villages"]["path"] = villages.name
    if scenario.catalog.path is not None:
        data["catalog"]["path"] = str(scenario.resolve(scenario.catalog.path).resolve())
    for section, keys in (("spatial", ("boundaries", "locks", "parcel_costs")), ("features", ("path",))):
        part = getattr(scenario, section)
        if part is None:
            continue
        for key in keys:
            value = getattr(part, key)
            if value is not None:
                data[section][key] = str(scenario.resolve(value).resolve())
    return data


def form_defaults(scenario: Scenario, catalog: Any) -> dict[str, Any]:
    """The scenario's own values for the page's form (blank where the scenario leaves the catalog's default)."""
    c = scenario.constraints
    return {
        "income_floor": c.income_floor, "catalog_income_floor": catalog.defaults.get("income_floor"),
        "village_floors": c.village_floors, "transfer_budget": c.transfer_budget,
        "max_transfer_share": c.max_transfer_share, "budget": c.budget, "township_budgets": c.township_budgets,
        "diversity_cap": c.diversity_cap, "forest_cover_min": c.forest_cover_min, "market": c.market,
        "bounds": {k: list(v) for k, v in c.bounds.items()},
        "objective": scenario.objective.name, "weights": scenario.objective.weights,
        "preset": scenario.solver.preset, "time_limit": scenario.solver.time_limit,
        "mip_rel_gap": scenario.solver.mip_rel_gap,
    }


def build_instance(scenario_path: Path, instances: Path, name: str | None = None) -> Instance:
    """Validate a scenario as `optiland validate` does, copy its inputs into the project and write tiles,
    attributes and outlines once; an instance already built (same key) is reused as it is."""
    scenario = load_scenario(scenario_path)
    instances.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".new.tmp-", dir=instances))
    umask_mode(tmp)
    try:
        (tmp / "input").mkdir()
        data = _copy_inputs(scenario, tmp / "input")
        atomic_write(tmp / "input" / "scenario.toml", toml.dumps(data))
        try:  # read the copies, so that nothing (a cache beside a layer) is written outside the project
            prepared = prepare(tmp / "input" / "scenario.toml")
        except InputError as exc:  # name the planner's own files, not the copies
            originals = {scenario.resolve(scenario.parcels.path).name: scenario.resolve(scenario.parcels.path),
                         "scenario.toml": scenario_path}
            if scenario.villages is not None:
                originals[scenario.resolve(scenario.villages.path).name] = scenario.resolve(scenario.villages.path)
            for problem in exc.problems:
                if problem.file and str(tmp) in str(problem.file) and Path(problem.file).name in originals:
                    problem.file = str(originals[Path(problem.file).name])
            raise
        digest = hashlib.sha256(json.dumps({"scenario": scenario.to_dict(), "hashes": prepared.inputs.hashes,
                                            "tiles": TILES_VERSION}, sort_keys=True,
                                           default=str).encode()).hexdigest()[:16]
        folder = instances / digest
        if (folder / "instance.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            return load_instance(folder)
        problem = prepared.problem
        catalog = prepared.catalog
        parcels = problem.parcels
        geometry = prepared.inputs.parcels.geometry
        codes = sorted(parcels["land_use"].astype(str).unique())
        use = pd.Categorical(parcels["land_use"].astype(str), categories=codes).codes
        tiles = write_tiles(geometry, parcels["red_line"].to_numpy(bool), tmp / "tiles.pmtiles", use=use,
                            farmland=parcels["basic_farmland"].to_numpy(bool))
        areas = gpd.GeoDataFrame(parcels[["village", "township"]].reset_index(drop=True),
                                 geometry=geometry.reset_index(drop=True), crs=prepared.inputs.parcels.crs)
        write_areas(areas, tmp / "areas.geojson")
        villages = problem.villages
        uses = catalog.current_uses
        village_names = villages["village"].astype(str).tolist()
        township_names = problem.townships["township"].astype(str).tolist()
        write_json(tmp / "parcels.json", {
            "parcel_id": parcels["parcel_id"].astype(str).tolist(),
            "land_use": use.tolist(),
            "village": parcels["village_idx"].astype(int).tolist(),
            "township": pd.Categorical(parcels["township"].astype(str), categories=township_names).codes.tolist(),
            "red_line": parcels["red_line"].astype(bool).astype(int).tolist(),
            "basic_farmland": parcels["basic_farmland"].astype(bool).astype(int).tolist(),
            "area_mu": parcels["area_mu"].round(3).tolist(),
        })
        meta = {
            "key": digest, "name": name or scenario.name or scenario_path.parent.name,
            "source": str(scenario_path), "parcels": int(problem.n_parcels), "crs": prepared.inputs.crs_note,
            "catalog": {"name": catalog.name, "version": catalog.version},
            "uses": [{"code": c, "name": str(uses["name"].get(c, c)), "name_zh": str(uses["name_zh"].get(c, c)),
                      "colour": USE_COLOURS.get(c[:2], "#bbbbbb")} for c in codes],
            "kinds": kinds_of(catalog),
            "services": {s: {"label": v.get("label", s), "label_zh": v.get("label_zh", s)}
                         for s, v in catalog.services.items()},
            "villages": village_names, "townships": township_names,
            "village_township": villages["township"].astype(str).tolist(),
            "tiles": tiles, "form": form_defaults(scenario, catalog),
        }
        write_json(tmp / "instance.json", meta)
        try:
            os.replace(tmp, folder)
        except OSError:  # built meanwhile by another request: keep that one
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    instance = load_instance(folder)
    instance._prepared = prepared  # the same scenario and inputs as the copy's
    return instance


def load_instance(folder: Path) -> Instance:
    """An instance folder written by `build_instance`."""
    meta = json.loads((folder / "instance.json").read_text(encoding="utf-8"))
    return Instance(key=meta["key"], folder=folder, meta=meta)


def suitability(instance: Instance, option: str) -> dict[str, Any]:
    """Per parcel, whether `option` (any of its variants) is allowed, else the site rule that forbids it, by the
    same rules `optiland explain` lists (optiland.problem.site_rules). Codes: 0 allowed, k > 0 reason k - 1."""
    prepared = instance.prepared()
    parcels = prepared.problem.parcels
    kinds = variant_table(prepared.catalog)
    rows = np.flatnonzero(kinds["option"].to_numpy() == option)
    if not len(rows):
        raise InputError([Issue("no such option in the catalog", column="option", value=option)])
    picked = kinds.iloc[rows].reset_index(drop=True)
    rules = site_rules(prepared.catalog, parcels, picked)
    n = len(parcels)
    allowed = prepared.problem.allowed
    allowed_any = np.zeros(n, bool)
    allowed_any[allowed["parcel"].to_numpy()[allowed["option"].to_numpy() == option]] = True
    first_reason = np.full(n, -1)
    reasons: list[str] = []
    for kind_rules in rules:
        for rule in kind_rules:
            mask = np.asarray(rule.mask, bool)
            if rule.reason not in reasons:
                reasons.append(rule.reason)
            code = reasons.index(rule.reason)
            first_reason = np.where((first_reason < 0) & mask, code, first_reason)
    other = "not in the allowed set (a rule beyond the site rules: see optiland explain)"
    if (~allowed_any & (first_reason < 0)).any():
        reasons.append(other)
        first_reason = np.where(first_reason < 0, len(reasons) - 1, first_reason)
    codes = np.where(allowed_any, 0, first_reason + 1)
    return {"option": option, "codes": codes.astype(int).tolist(), "reasons": reasons}
