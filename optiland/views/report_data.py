"""What a report reads and derives: the results folder and its catalog, the language's labels and fonts, the
industries' incomes, binding constraints and the front."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from optiland.errors import InputError, Issue, OptilandError
from optiland.io.catalog import Catalog, load_catalog
from optiland.io.tables import read_results_csv
from optiland.pipeline.results import INCOME_SOURCES

TEMPLATES = Path(__file__).resolve().parent / "report_templates"
LANGS = ("zh", "en")
CJK_PACKAGE = "fonts-noto-cjk"
CJK_FAMILY_PREFIXES = ("Noto Sans CJK", "Noto Serif CJK")
"""Fonts searched for Chinese plot labels, best first (Debian's fonts-noto-cjk installs both)."""

VILLAGE_COLUMNS = ("village", "township", "population", "households", "floor", "income_per_capita_before",
                   "income_per_capita_after", *(f"income_{s}" for s in INCOME_SOURCES), "income_total", "herd",
                   "ranger_posts", "labour_used", "labour_available", "households_reached", "at_or_below_floor")
TOWNSHIP_COLUMNS = ("township", "area_mu", "establishment_cost", "labour_days", "herd", "ranger_posts",
                    "households_reached", "population", "villages_at_or_below_floor")
PARCEL_COLUMNS = ("parcel_id", "village", "township", "area_mu", "current_use", "red_line", "option", "variant",
                  "income", "compensation")

KEEP_COLOUR = "#d9d9d9"
OPTION_COLOURS = ("#1b9e77", "#66a61e", "#e6ab02", "#7570b3", "#a6761d", "#e7298a", "#1f78b4", "#666666",
                  "#b2df8a", "#fb9a99")
"""Colour of each option in catalog order (no red: red outlines the red lines); the kept current use is grey."""
RED_LINE_COLOUR = "#d7191c"
DPI = 300
"""Resolution of every map and chart: print quality on A4 (the pages show them at their size in inches)."""
SCREEN_DPI = 96
"""CSS pixels per inch: a picture's width and height attributes are its printed size in CSS pixels."""

VILLAGE_FAMILIES = {"income_floor", "transfer_share", "carrying_capacity", "ranger_posts", "ranger_households",
                    "labour"}
TOWNSHIP_FAMILIES = {"township_budget", "forest_cover", "diversity"}
"""Constraint families indexed by village / township position (optiland.model.formulation); the rest cover the plan."""


# ------------------------------------------------------------------------------------------------------------
# Reading a results folder


@dataclass
class Results:
    """A solve OUTDIR read back: the tables as written and run.json."""

    out_dir: Path
    run: dict[str, Any]
    villages: pd.DataFrame
    townships: pd.DataFrame
    parcels: gpd.GeoDataFrame


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], file: Path, command: str = "solve") -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError([Issue(f"missing column (is this a folder written by `optiland {command}`?)",
                                file=str(file), column=c) for c in missing])


def read_results(out_dir: str | Path) -> Results:
    """Read a solve OUTDIR the way ``optiland.check.check_outdir`` does; a missing file or column is named."""
    import pyogrio

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError([Issue("not a folder written by `optiland solve`", file=str(out_dir))])
    missing = [name for name in ("run.json", "plan.gpkg", "villages.csv", "townships.csv")
               if not (out_dir / name).is_file()]
    if missing:
        raise InputError([Issue("results file missing (is this a folder written by `optiland solve`?)",
                                file=str(out_dir / name)) for name in missing])
    try:
        run = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError([Issue(f"not valid JSON: {exc}", file=str(out_dir / "run.json"))]) from None
    villages = read_results_csv(out_dir / "villages.csv", dtype={"village": str, "township": str})
    townships = read_results_csv(out_dir / "townships.csv", dtype={"township": str})
    _require_columns(villages, VILLAGE_COLUMNS, out_dir / "villages.csv")
    _require_columns(townships, TOWNSHIP_COLUMNS, out_dir / "townships.csv")
    parcels = pyogrio.read_dataframe(out_dir / "plan.gpkg", layer="parcels")
    _require_columns(parcels, PARCEL_COLUMNS, out_dir / "plan.gpkg")
    for column in ("village", "township", "option", "variant", "current_use"):
        parcels[column] = parcels[column].astype(str)
    if villages.empty:
        raise InputError([Issue("no villages: township reports need villages and townships (an instance without "
                                "villages, such as a Marxan import, has none)", file=str(out_dir / "villages.csv"))])
    blank = townships["township"].isna() | (townships["township"].astype(str).str.strip() == "")
    if blank.any():
        raise InputError([Issue("blank township name (parcels outside every village?)",
                                file=str(out_dir / "townships.csv"), column="township")])
    unknown = sorted(set(villages["township"]) - set(townships["township"]))
    if unknown:
        raise InputError([Issue("township of a village is not in townships.csv", file=str(out_dir / "villages.csv"),
                                column="township", value=t) for t in unknown])
    return Results(out_dir, run, villages, townships, parcels)


def read_catalog(results: Results) -> tuple[Catalog, str | None]:
    """The catalog run.json names (path, else region name) with its overrides; and a note if it changed since."""
    record = results.run.get("catalog") or {}
    run_file = str(results.out_dir / "run.json")
    overrides = record.get("overrides") or {}
    path = Path(record["path"]) if record.get("path") else None
    if path is not None and path.is_dir():
        catalog = load_catalog(path, overrides=overrides)
    elif record.get("name"):
        catalog = load_catalog(None, overrides=overrides, region=record["name"])
    else:
        raise InputError([Issue("run.json names no catalog path or region", file=run_file, column="catalog")])
    recorded = record.get("version")
    changed = recorded if recorded and recorded != catalog.version else None
    return catalog, changed


# ------------------------------------------------------------------------------------------------------------
# Language and fonts


@cache
def load_strings(lang: str) -> dict[str, Any]:
    """The report's labels in one language (``report_templates/strings.toml``)."""
    table = tomllib.loads((TEMPLATES / "strings.toml").read_text(encoding="utf-8"))
    if lang not in table:
        raise OptilandError(f"unknown report language {lang!r}; known: {', '.join(sorted(table))}")
    return table[lang]


def find_cjk_font() -> str | None:
    """The family name of an installed Noto CJK font known to matplotlib, registering system files if needed.

    Matplotlib caches its font list, so a font installed after the cache was built is found by scanning the system
    font folders and adding it.
    """
    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        for prefix in CJK_FAMILY_PREFIXES:
            found = sorted(n for n in names if n.startswith(prefix))
            if found:  # Simplified Chinese glyph forms where the font has them, as the readers write them
                return next((n for n in found if n.endswith(" SC")), found[0])
        return None

    name = known()
    if name is None:
        for path in font_manager.findSystemFonts():
            base = Path(path).name.replace("-", "").replace(" ", "").lower()
            if "cjk" in base and ("notosans" in base or "notoserif" in base):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # an unreadable font file is skipped, not fatal
                    continue
        name = known()
    return name


def plot_fonts(lang: str) -> list[str]:
    """The font families for plot text; for Chinese a CJK font is required and its absence is an error."""
    cjk = find_cjk_font()
    if cjk is None and lang == "zh":
        raise OptilandError(
            f"Chinese plot labels need a CJK font and none was found: install Debian's {CJK_PACKAGE} "
            f"(apt-get install {CJK_PACKAGE}), or write the report in English with --lang en")
    return ([cjk] if cjk else []) + ["DejaVu Sans"]


# ------------------------------------------------------------------------------------------------------------
# Catalog labels


def _localised(record: Mapping[str, Any], key: str, lang: str, fallback: str) -> str:
    """``record[key_zh]`` in Chinese where it is given, else ``record[key]``, else the fallback."""
    for name in ([f"{key}_zh"] if lang == "zh" else []) + [key]:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return fallback


class Labels:
    """Names of options, variants, services, current uses and constraints in the report's language."""

    def __init__(self, catalog: Catalog, strings: Mapping[str, Any], lang: str) -> None:
        self.catalog, self.t, self.lang = catalog, strings, lang

    def option(self, option: str) -> str:
        """An option's name."""
        if option not in self.catalog.options.index:
            return option
        return _localised(self.catalog.options.loc[option].to_dict(), "name", self.lang, option)

    def variant(self, option: str, variant: str) -> str:
        """A variant's name (the option's name where the option has a single variant of its own name)."""
        if (option, variant) not in self.catalog.variants.index:
            return variant if variant != option else self.option(option)
        return _localised(self.catalog.variants.loc[(option, variant)].to_dict(), "name", self.lang, variant)

    def service(self, service: str) -> str:
        """An ecosystem service's label."""
        return _localised(self.catalog.services.get(service, {}), "label", self.lang, service)

    def service_unit(self, service: str) -> str:
        """An ecosystem service's unit: the catalog's ``unit_zh`` in Chinese, else the unit's translation in
        strings.toml (``[zh.units]``), else the catalog's ``unit``."""
        record = self.catalog.services.get(service, {})
        unit = _localised(record, "unit", self.lang, "")
        if self.lang != "zh" or record.get("unit_zh"):
            return unit
        return self.t.get("units", {}).get(unit, unit)

    def region(self) -> str:
        """The catalog's region: its ``title_zh`` in Chinese, else strings.toml's ``[zh.regions]``, else the
        catalog's title or name."""
        region = self.catalog.region
        if self.lang == "zh":
            zh = region.get("title_zh") or self.t.get("regions", {}).get(self.catalog.name)
            if zh:
                return str(zh)
        return str(region.get("title") or self.catalog.name)

    def solver(self, name: str, version: str) -> str:
        """A solver by its own spelling (HiGHS), with its version."""
        shown = self.t.get("solvers", {}).get(name.lower(), name)
        return self.t["solver_name"].format(name=shown, version=version).strip()

    def current_use(self, code: str) -> str:
        """A current land use's name."""
        if code not in self.catalog.current_uses.index:
            return code
        return _localised(self.catalog.current_uses.loc[code].to_dict(), "name", self.lang, code)

    def adaptation(self, cls: str) -> str:
        """An adaptation class with the highest grade it may be planted on."""
        name = self.t.get("adaptation", {}).get(cls, cls)
        limit = self.catalog.adaptation.get(cls)
        if limit is None:
            return name
        if limit == "never":
            return self.t["adaptation_never"].format(cls=name)
        return self.t["adaptation_limit"].format(cls=name, grade=self.t.get("grades", {}).get(limit, limit))

    def objective(self, name: str) -> str:
        """An objective's label (a single service by its catalog label)."""
        return self.t["objectives"].get(name) or self.service(name)

    def constraint(self, family: str) -> str:
        """A constraint family's description."""
        return self.t["constraints"].get(family, family)

    def status(self, status: str) -> str:
        """A solve status."""
        return self.t["statuses"].get(status, status)


# ------------------------------------------------------------------------------------------------------------
# Derived figures


def industry_income(parcels: pd.DataFrame, villages: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Land-based income by option for one township: land income and compensation of its parcels (plan.gpkg), cattle
    income to the options with livestock and ranger wages to the ranger-area options (villages.csv), each split by
    area where several options share it. Columns: land, compensation, cattle, wages, total, share; catalog order."""
    present = set(parcels["option"].unique())  # once: the layer's strings may be Arrow-backed, slow to iterate
    options = [o for o in catalog.options.index if o in present]
    options += sorted(present - set(options))
    grouped = parcels.groupby("option")
    table = pd.DataFrame(index=pd.Index(options, name="option"))
    table["land"] = grouped["income"].sum().reindex(options).fillna(0.0)
    table["compensation"] = grouped["compensation"].sum().reindex(options).fillna(0.0)
    area = grouped["area_mu"].sum().reindex(options).fillna(0.0)
    table["cattle"] = 0.0
    table["wages"] = 0.0
    for flag, column, source in (("livestock", "cattle", "income_cattle"), ("ranger_area", "wages", "income_wages")):
        members = [o for o in options if o in catalog.options.index and bool(catalog.options.loc[o, flag])]
        if members and area[members].sum() > 0:
            table.loc[members, column] = float(villages[source].sum()) * area[members] / area[members].sum()
    table["total"] = table[["land", "compensation", "cattle", "wages"]].sum(axis=1)
    grand = table["total"].sum()
    table["share"] = table["total"] / grand if grand > 0 else 0.0
    return table


def leading_industries(income: pd.DataFrame, catalog: Catalog) -> list[str]:
    """The options that change the land use, by income share, largest first (dominant, secondary, ...); ties in
    catalog order.

    The seeds' township industrial plans name each township's dominant and secondary industries, identified from
    the industries' standing and the households they reach (seed 001, huanjiang-sci-tech-poverty-alleviation.txt,
    "Research and Social Impact": "the dominant and secondary industries of each town (township) were basically
    identified"; domain brief, "Rules the seeds state"). The seed gives no numeric rule; this reading, stated on
    every report page: the dominant industry of an area is the option (the kept current use aside) bringing the
    largest share of its land-based income under the plan (``industry_income``), the secondary one the next."""
    keep = catalog.keep_option
    ranked = income[(income.index != keep) & (income["total"] > 0)].sort_values("total", ascending=False,
                                                                               kind="stable")
    return list(ranked.index)


def leading_by(parcels: pd.DataFrame, villages: pd.DataFrame, catalog: Catalog, by: str) -> dict[str, list[str]]:
    """``leading_industries(industry_income(...))`` of every village or township (``by``) at once, grouped rather
    than masked area by area (a county has thousands of villages and a million parcels)."""
    order = {o: i for i, o in enumerate(catalog.options.index)}
    grouped = parcels.groupby([by, "option"], sort=False)
    table = pd.DataFrame({"total": grouped["income"].sum() + grouped["compensation"].sum(),
                          "area": grouped["area_mu"].sum()})
    options = table.index.get_level_values("option")
    for flag, source in (("livestock", "income_cattle"), ("ranger_area", "income_wages")):
        members = [o for o in set(options) if o in catalog.options.index and bool(catalog.options.loc[o, flag])]
        member = options.isin(members)
        if not member.any():
            continue
        area = table["area"].where(member, 0.0)
        shared = area.groupby(level=by).transform("sum")
        income = villages.groupby(by)[source].sum().reindex(table.index.get_level_values(by)).fillna(0.0).to_numpy()
        table["total"] += (income * area / shared.where(shared > 0, 1.0)).where(member, 0.0).fillna(0.0)
    table = table[(options != catalog.keep_option) & (table["total"] > 0)].reset_index()
    table["order"] = table["option"].map(lambda o: order.get(o, len(order)))
    table = table.sort_values([by, "total", "order"], ascending=[True, False, True], kind="stable")
    return {str(area): list(group["option"]) for area, group in table.groupby(by, sort=False)}


@dataclass
class Binding:
    """One binding-constraint entry of run.json's notes, placed where it applies."""

    family: str
    row: str
    village: str | None = None
    township: str | None = None
    rows: int = 1


def binding_constraints(run: Mapping[str, Any], villages: pd.DataFrame, townships: list[str]) -> list[Binding]:
    """Parse the ``binding: ...`` note of run.json; village- and township-indexed rows are named by position
    (villages.csv order, townships sorted), as optiland.model.formulation indexes them; anything else covers the
    plan."""
    entries: list[Binding] = []
    for note in run.get("notes") or []:
        if not isinstance(note, str) or not note.startswith("binding:"):
            continue
        body = note[len("binding:"):].strip()
        if body in ("", "none"):
            continue
        for item in re.split(r",\s+", body):  # a row's own index has no space after its commas
            grouped = re.fullmatch(r"(\w+) \((\d+) rows\)", item)
            if grouped:
                entries.append(Binding(grouped[1], item, rows=int(grouped[2])))
                continue
            match = re.fullmatch(r"(\w+?)(?:\[(.*)\])?", item)
            family = match[1] if match else item
            index = match[2] if match and match[2] is not None else ""
            position = re.match(r"\(?\s*(\d+)\s*[,)]?", index)
            entry = Binding(family, item)
            if position and family in VILLAGE_FAMILIES and int(position[1]) < len(villages):
                entry.village = str(villages["village"].iat[int(position[1])])
                entry.township = str(villages["township"].iat[int(position[1])])
            elif position and family in TOWNSHIP_FAMILIES and int(position[1]) < len(townships):
                entry.township = townships[int(position[1])]
            entries.append(entry)
    return entries


@dataclass
class FrontInfo:
    """A Pareto front folder and the point of it this plan is, if any."""

    directory: Path
    table: pd.DataFrame
    run: dict[str, Any]
    chosen: int | None
    pick: str | None


def read_front(results: Results, front_dir: str | Path | None) -> tuple[FrontInfo | None, str | None]:
    """The front given, or the one run.json's ``front`` record names (``solve --from-front``); and a note when the
    recorded folder is gone. A given folder that is not a pareto OUTDIR is an error naming the file."""
    record = results.run.get("front") or {}
    if front_dir is None:
        if not record.get("dir"):
            return None, None
        front_dir = Path(record["dir"])
        if not (front_dir / "front.csv").is_file():
            return None, str(front_dir)
    front_dir = Path(front_dir)
    for name in ("front.csv", "run.json"):
        if not (front_dir / name).is_file():
            raise InputError([Issue("Pareto front file missing (is this a folder written by `optiland pareto`?)",
                                    file=str(front_dir / name))])
    table = read_results_csv(front_dir / "front.csv")
    run = json.loads((front_dir / "run.json").read_text(encoding="utf-8"))
    names = run.get("objectives") or []
    _require_columns(table, ["plan_id", *names], front_dir / "front.csv", command="pareto")
    if len(names) < 2:
        raise InputError([Issue("run.json of a front names fewer than two objectives", file=str(front_dir / "run.json"),
                                column="objectives")])
    chosen = pick = None
    if record.get("dir") and Path(record["dir"]).resolve() == front_dir.resolve():
        chosen, pick = int(record["point"]), str(record.get("pick", ""))
    return FrontInfo(front_dir, table, run, chosen, pick), None


# ------------------------------------------------------------------------------------------------------------
# What would it take (optiland whatif)

WHATIF_DIR = "whatif"
"""Where ``optiland whatif OUTDIR`` writes options.csv, targets.csv and notes.json (optiland.analysis.whatif)."""


@dataclass
class WhatIf:
    """A results folder's "what would it take" study, as written."""

    options: pd.DataFrame
    targets: pd.DataFrame
    objective_unit: str


def read_whatif(results: Results) -> WhatIf | None:
    """OUTDIR/whatif/ if `optiland whatif` wrote it, else None; a file missing from it or a column missing from a
    file is named."""
    folder = results.out_dir / WHATIF_DIR
    if not folder.is_dir():
        return None
    for name in ("options.csv", "targets.csv"):
        if not (folder / name).is_file():
            raise InputError([Issue("what-would-it-take file missing (is this a folder written by `optiland "
                                    "whatif`?)", file=str(folder / name))])
    options = read_results_csv(folder / "options.csv", dtype={"lever": str})
    targets = read_results_csv(folder / "targets.csv", dtype={"row": str, "key": str})
    _require_columns(options, ("lever", "kind", "status", "unit", "income_now", "lp_entry_price", "lp_subsidy",
                               "lp_first_parcels", "entry_price", "subsidy", "first_parcels", "proven"),
                     folder / "options.csv", command="whatif")
    _require_columns(targets, ("row", "family", "key", "figure", "unit", "lp_value_per_unit", "value_per_unit"),
                     folder / "targets.csv", command="whatif")
    notes = folder / "notes.json"
    unit = json.loads(notes.read_text(encoding="utf-8")).get("objective_unit", "") if notes.is_file() else ""
    return WhatIf(options, targets, str(unit))
