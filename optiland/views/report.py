"""Township plan reports: a county overview and one page per township, in HTML and Markdown, from a solve OUTDIR.

``write_report(outdir)`` reads plan.gpkg, villages.csv, townships.csv and run.json (no solver), and the catalog that
run.json names, and writes ``OUTDIR/report/`` whole or not at all: ``index.html`` / ``index.md`` (the county),
``township-<name>.html`` / ``.md`` per township, and ``img/`` (maps and charts as PNG files beside the pages, so the
folder is self-contained and the Markdown twins show the same pictures).

Every figure on a page is traceable: a table cell taken from a results file carries ``data-village`` or
``data-township`` and ``data-field`` (the CSV column), ``data-value`` (the value as read) and ``data-decimals`` /
``data-scale`` (how it is shown); figures the report derives carry ``data-derived`` instead of ``data-field``.

Labels come from a translation table (``report_templates/strings.toml``) and, for options, variants, services and
livestock, from the catalog's ``name`` / ``name_zh`` and ``label`` / ``label_zh``. Chinese plots need a CJK font:
with ``lang="zh"`` and no Noto CJK font, the report is not written and the error names the Debian package to install
(a report whose Chinese labels print as empty boxes would mislead the officials it is written for).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from optiland.errors import InputError, Issue, OptilandError
from optiland.io.catalog import Catalog, load_catalog
from optiland.pipeline.results import FLOOR_TOLERANCE, INCOME_SOURCES, write_atomically

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
DPI = 110

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
    villages = pd.read_csv(out_dir / "villages.csv", encoding="utf-8-sig", dtype={"village": str, "township": str})
    townships = pd.read_csv(out_dir / "townships.csv", encoding="utf-8-sig", dtype={"township": str})
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
# Page model: sections of paragraphs, figures and tables, rendered the same way to HTML and Markdown


@dataclass
class Cell:
    """A table cell: its text, its data-* attributes (where the figure comes from), an optional link."""

    text: str
    attrs: dict[str, str] = field(default_factory=dict)
    href: str | None = None
    numeric: bool = False


@dataclass
class Table:
    """Headers and rows of cells."""

    headers: list[str]
    rows: list[list[Cell]]
    key: str = ""


@dataclass
class Picture:
    """An image beside the page (``img/...``) with its pixel size."""

    src: str
    alt: str
    width: int
    height: int
    caption: str = ""


@dataclass
class Paragraph:
    """A paragraph; ``warning`` ones are highlighted."""

    text: str
    warning: bool = False


@dataclass
class Section:
    """A titled part of a page."""

    key: str
    title: str
    paragraphs: list[Paragraph] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Page:
    """A report page: written as ``<stem>.html`` and ``<stem>.md``."""

    stem: str
    title: str
    sections: list[Section]
    back: str | None = None


def format_number(value: float, decimals: int) -> str:
    """Thousands separators and fixed decimals; a blank for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:,.{decimals}f}"


def format_figure(value: float) -> str:
    """A catalog figure as written: whole numbers with thousands separators, others to at most 6 decimals."""
    if value.is_integer():
        return f"{value:,.0f}"
    return f"{value:,.6f}".rstrip("0").rstrip(".")


def number(value: Any, decimals: int, *, scale: float = 1.0, suffix: str = "", **attrs: str) -> Cell:
    """A numeric cell: shown as ``value * scale`` at ``decimals``; data-value keeps the value as read."""
    value = float(value)
    data = {**{k.replace("_", "-"): str(v) for k, v in attrs.items()}, "data-value": repr(value),
            "data-decimals": str(decimals)}
    if scale != 1.0:
        data["data-scale"] = repr(scale)
    return Cell(format_number(value * scale, decimals) + suffix, data, numeric=True)


def text(value: Any, **attrs: str) -> Cell:
    """A text cell with optional data-* attributes."""
    return Cell(str(value), {k.replace("_", "-"): str(v) for k, v in attrs.items()})


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
        """An ecosystem service's unit."""
        return _localised(self.catalog.services.get(service, {}), "unit", self.lang, "")

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
    options = [o for o in catalog.options.index if o in set(parcels["option"])]
    options += sorted(set(parcels["option"]) - set(options))
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
    """The options that change the land use, by income share, largest first (dominant, secondary, ...)."""
    keep = catalog.keep_option
    ranked = income[(income.index != keep) & (income["total"] > 0)].sort_values("total", ascending=False)
    return list(ranked.index)


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
    table = pd.read_csv(front_dir / "front.csv", encoding="utf-8-sig")
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
# Pictures


class Plotter:
    """Draws the maps and charts of a report with matplotlib's object API (no global pyplot state)."""

    def __init__(self, folder: Path, fonts: list[str], labels: Labels, catalog: Catalog) -> None:
        self.folder, self.fonts, self.labels, self.t = folder, fonts, labels, labels.t
        options = [o for o in catalog.options.index if o != catalog.keep_option]
        self.colours = {o: OPTION_COLOURS[i % len(OPTION_COLOURS)] for i, o in enumerate(options)}
        self.colours[catalog.keep_option] = KEEP_COLOUR
        self.option_order = list(catalog.options.index)

    def _save(self, fig: Any, name: str, alt: str, caption: str = "") -> Picture:
        from PIL import Image

        path = self.folder / "img" / name
        fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
        with Image.open(path) as image:
            width, height = image.size
        return Picture(f"img/{name}", alt, width, height, caption)

    def _figure(self, width: float, height: float) -> tuple[Any, Any]:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width, height))  # callers draw inside rc_context(self._rc()), where fonts resolve
        return fig, fig.subplots()

    def _rc(self) -> dict[str, Any]:
        return {"font.family": "sans-serif", "font.sans-serif": self.fonts, "axes.unicode_minus": False}

    def plan_map(self, parcels: gpd.GeoDataFrame, name: str, title: str, alt: str, areas: str) -> Picture:
        """Parcels coloured by option, red lines outlined, the ``areas`` (village or township) outlined and named,
        with legend, scale bar and north arrow."""
        import matplotlib
        from matplotlib import patheffects
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        frame = parcels
        if frame.crs is not None and frame.crs.is_geographic:  # metres are needed for the scale bar
            frame = frame.to_crs(frame.estimate_utm_crs())
        with matplotlib.rc_context(self._rc()):
            fig, ax = self._figure(7.5, 6.5)
            present = [o for o in self.option_order if o in set(frame["option"])]
            present += sorted(set(frame["option"]) - set(present))
            handles: list[Any] = []
            for option in present:
                colour = self.colours.get(option, "#999999")
                frame[frame["option"] == option].plot(ax=ax, color=colour, edgecolor="white", linewidth=0.2)
                handles.append(Patch(facecolor=colour, edgecolor="#555555", label=self.labels.option(option)))
            outlines = frame[[areas, "geometry"]].dissolve(by=areas)
            outlines.boundary.plot(ax=ax, color="#333333", linewidth=0.9)
            red = frame[frame["red_line"].astype(bool)]
            if len(red):
                outline = gpd.GeoSeries([red.geometry.union_all()], crs=frame.crs).boundary
                outline.plot(ax=ax, color=RED_LINE_COLOUR, linewidth=1.4)  # over the area outlines
                handles.append(Line2D([0], [0], color=RED_LINE_COLOUR, linewidth=1.5, label=self.t["legend_red_line"]))
            halo = [patheffects.withStroke(linewidth=3, foreground="white")]
            for label, point in zip(outlines.index, outlines.geometry.representative_point(), strict=True):
                ax.text(point.x, point.y, str(label), ha="center", va="center", fontsize=8, path_effects=halo)
            ax.set_aspect("equal")
            ax.set_axis_off()
            ax.set_title(title, fontsize=12)
            self._scale_bar(ax)
            ax.annotate(self.t["north"], xy=(1.04, 0.98), xytext=(1.04, 0.86), xycoords="axes fraction",
                        ha="center", va="center", fontsize=12, fontweight="bold",
                        arrowprops={"facecolor": "black", "width": 3, "headwidth": 10, "headlength": 10})
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False,
                      fontsize=9)
            return self._save(fig, name, alt)

    def _scale_bar(self, ax: Any) -> None:
        """A two-segment bar of a round length, about a quarter of the map's width, at its lower left."""
        from matplotlib.patches import Rectangle

        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        width, height = x1 - x0, y1 - y0
        target = width / 4
        magnitude = 10 ** math.floor(math.log10(target)) if target > 0 else 1.0
        length = max((m * magnitude for m in (1, 2, 5) if m * magnitude <= target), default=magnitude)
        left, bottom, thick = x0 + 0.04 * width, y0 + 0.03 * height, 0.012 * height
        for i, colour in enumerate(("black", "white")):
            ax.add_patch(Rectangle((left + i * length / 2, bottom), length / 2, thick, facecolor=colour,
                                   edgecolor="black", linewidth=0.8))
        label = (self.t["scale_km"].format(n=f"{length / 1000:g}") if length >= 1000
                 else self.t["scale_m"].format(n=f"{length:g}"))
        ax.text(left + length / 2, bottom + thick * 1.8, label, ha="center", va="bottom", fontsize=9,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5})
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)

    def income_chart(self, villages: pd.DataFrame, name: str, alt: str) -> Picture:
        """Per-capita income before and after, per village, with each village's floor."""
        import matplotlib

        with matplotlib.rc_context(self._rc()):
            n = len(villages)
            fig, ax = self._figure(7.0, 1.4 + 0.55 * n)
            y = np.arange(n)
            ax.barh(y + 0.2, villages["income_per_capita_before"], height=0.38, color="#bdbdbd",
                    label=self.t["chart_before"])
            ax.barh(y - 0.2, villages["income_per_capita_after"], height=0.38, color="#1b9e77",
                    label=self.t["chart_after"])
            for i, floor in enumerate(villages["floor"]):
                ax.plot([floor, floor], [i - 0.45, i + 0.45], color="black", linewidth=2,
                        label=self.t["chart_floor"] if i == 0 else None)
            ax.set_yticks(y, villages["village"])
            ax.invert_yaxis()
            ax.set_xlabel(self.t["chart_income_axis"])
            ax.grid(axis="x", alpha=0.3)
            ax.legend(loc="lower right", fontsize=8)
            return self._save(fig, name, alt)

    def sources_chart(self, villages: pd.DataFrame, name: str, alt: str) -> Picture:
        """Per-capita income after the plan, stacked by source, per village."""
        import matplotlib

        colours = ("#bdbdbd", "#1b9e77", "#e6ab02", "#7570b3", "#66a61e")
        with matplotlib.rc_context(self._rc()):
            n = len(villages)
            fig, ax = self._figure(7.0, 1.6 + 0.45 * n)
            y = np.arange(n)
            left = np.zeros(n)
            population = villages["population"].to_numpy(dtype=float)
            for source, colour in zip(INCOME_SOURCES, colours, strict=True):
                values = villages[f"income_{source}"].to_numpy(dtype=float) / population
                ax.barh(y, values, left=left, height=0.6, color=colour, label=self.t[f"source_{source}"])
                left += values
            ax.set_yticks(y, villages["village"])
            ax.invert_yaxis()
            ax.set_xlabel(self.t["chart_income_axis"])
            ax.grid(axis="x", alpha=0.3)
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8)
            return self._save(fig, name, alt)

    def front_chart(self, front: FrontInfo, name: str) -> Picture:
        """The front over its first two objectives (a third colours the points), knee, ideal, chosen point."""
        import matplotlib
        from matplotlib.ticker import StrMethodFormatter

        names = front.run["objectives"]
        table = front.table
        x, y = names[0], names[1]
        senses = front.run.get("senses") or {}
        label = {k: f"{self.labels.objective(k)} ({self.t['senses'].get(senses.get(k, ''), '')})" for k in names}
        alt = self.t["front_alt"].format(x=self.labels.objective(x), y=self.labels.objective(y))
        with matplotlib.rc_context(self._rc()):
            fig, ax = self._figure(7.0, 5.0)
            ordered = table.sort_values(x)
            if len(names) > 2:
                points = ax.scatter(ordered[x], ordered[y], c=ordered[names[2]], cmap="viridis", s=25,
                                    label=self.t["front_line"])
                fig.colorbar(points, ax=ax, label=label[names[2]])
            else:
                ax.plot(ordered[x], ordered[y], "-o", color="#1f78b4", ms=4, label=self.t["front_line"])
            for key, marker, colour, text_key in (("knee", "s", "#7570b3", "front_knee"),
                                                  ("ideal", "D", "#66a61e", "front_ideal")):
                row = table[table["plan_id"] == front.run.get(key)]
                if len(row):
                    ax.plot(row[x], row[y], marker, mfc="none", color=colour, ms=11,
                            label=f"{self.t[text_key]} ({int(row['plan_id'].iat[0])})")
            base = front.run.get("baseline") or {}
            if x in base and y in base:
                ax.plot(base[x], base[y], "X", color="black", ms=10, label=self.t["front_baseline"])
            chosen = table[table["plan_id"] == front.chosen] if front.chosen is not None else table.iloc[0:0]
            if len(chosen):
                ax.plot(chosen[x], chosen[y], "*", color=RED_LINE_COLOUR, ms=18,
                        label=f"{self.t['front_chosen']} ({front.chosen})")
            ax.set_xlabel(label[x])
            ax.set_ylabel(label[y])
            for axis, column in ((ax.xaxis, x), (ax.yaxis, y)):
                if table[column].abs().max() >= 1e4:  # yuan read better in full than as an offset "1e6"
                    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
            ax.grid(alpha=0.3)
            ax.legend(loc="best", fontsize=8)
            return self._save(fig, name, alt)


# ------------------------------------------------------------------------------------------------------------
# Building the pages


def _slug(name: str) -> str:
    return re.sub(r"[^\w-]+", "_", name).strip("_") or "township"


class ReportBuilder:
    """Turns a results folder into pages (sections of text, pictures and traceable tables)."""

    def __init__(self, results: Results, catalog: Catalog, lang: str, plotter: Plotter,
                 front: FrontInfo | None, notes: list[Paragraph]) -> None:
        self.r, self.catalog, self.lang = results, catalog, lang
        self.t = load_strings(lang)
        self.labels = plotter.labels
        self.plot = plotter
        self.front = front
        self.notes = notes
        self.township_names = sorted(results.townships["township"].astype(str))
        stems: dict[str, str] = {}
        for i, name in enumerate(self.township_names):
            stem = f"township-{_slug(name)}"
            stems[name] = stem if stem not in stems.values() else f"{stem}-{i + 1}"
        self.stems = stems
        self.binding = binding_constraints(results.run, results.villages, self.township_names)
        self._front_picture: Picture | None = None

    # shared parts ------------------------------------------------------------------------------------------

    def _front_section(self) -> Section | None:
        if self.front is None:
            return None
        if self._front_picture is None:
            self._front_picture = self.plot.front_chart(self.front, "front.png")
        section = Section("front", self.t["front"], pictures=[self._front_picture])
        if self.front.chosen is None:
            section.paragraphs.append(Paragraph(self.t["front_not_chosen"]))
            return section
        pick = {"knee": self.t["front_knee"], "ideal": self.t["front_ideal"]}.get(self.front.pick or "",
                                                                                self.front.pick or "")
        section.paragraphs.append(Paragraph(self.t["front_chosen_text"].format(
            point=self.front.chosen, pick=pick, dir=self.front.directory)))
        row = self.front.table[self.front.table["plan_id"] == self.front.chosen]
        if len(row):
            names = self.front.run["objectives"]
            section.tables.append(Table(
                [self.t["front_point"], *[self.labels.objective(n) for n in names]],
                [[text(self.front.chosen, data_front_point=self.front.chosen),
                  *[number(row[n].iat[0], 4 if abs(float(row[n].iat[0])) < 100 else 0,
                           data_front_point=self.front.chosen, data_front_field=n) for n in names]]]))
        return section

    def _binding_section(self, township: str | None) -> Section:
        section = Section("binding", self.t["binding"])
        entries = [b for b in self.binding if township is None or b.township in (None, township)]
        # a village within the floor tolerance is held by its floor in practice, though the solver's tolerance
        # (the MIP gap) left it a few yuan above, so that the model row is not exactly at its bound
        listed = {b.village for b in entries if b.family == "income_floor"}
        villages = self.r.villages
        near = villages[villages["at_or_below_floor"].astype(bool)
                        & ((villages["township"] == township) if township is not None else True)]
        entries += [Binding("income_floor", self.t["binding_near_floor"].format(tol=FLOOR_TOLERANCE),
                            village=str(v.village), township=str(v.township))
                    for v in near.itertuples(index=False) if v.village not in listed]
        if not entries:
            section.paragraphs.append(Paragraph(self.t["binding_none"]))
            return section
        section.paragraphs.append(Paragraph(self.t["binding_note"]))
        rows = []
        for b in entries:
            scope = b.village or b.township or self.t["binding_county"]
            row = b.row if b.rows == 1 else self.t["binding_rows"].format(n=b.rows)
            rows.append([text(scope), text(self.labels.constraint(b.family), data_binding=b.family), text(row)])
        section.tables.append(Table([self.t["binding_scope"], self.t["binding_constraint"], self.t["binding_row"]],
                                    rows))
        return section

    def _provenance_section(self, parcels: pd.DataFrame, villages: pd.DataFrame) -> Section:
        t, run = self.t, self.r.run
        section = Section("provenance", t["provenance"], paragraphs=list(self.notes))
        solver = run.get("solver") or {}
        objective = run.get("objective") or {}
        catalog = run.get("catalog") or {}
        facts: list[list[Cell]] = [
            [text(t["solver"]), text(f"{solver.get('name', '')} {solver.get('version') or ''}".strip(),
                                     data_run_field="solver.name")],
            [text(t["status"]), text(self.labels.status(str(run.get("status", ""))), data_run_field="status")],
        ]
        if objective:
            sense = t["senses"].get(objective.get("sense", ""), "")
            facts.append([text(t["objective"]), text(f"{self.labels.objective(objective.get('name', ''))} "
                                                     f"({sense})")])
            for key, label in (("value", "objective_value"), ("bound", "bound"), ("gap", "gap")):
                value = objective.get(key)
                if value is not None:
                    facts.append([text(t[label]), Cell(f"{float(value):.6g}", {
                        "data-run-field": f"objective.{key}", "data-value": repr(float(value))}, numeric=True)])
        facts += [
            [text(t["catalog"]), text(f"{catalog.get('name', '')} {catalog.get('version', '')}")],
            [text(t["scenario"]), text(run.get("scenario_path") or t["dash"])],
            [text(t["created"]), text(run.get("created", t["dash"]))],
            [text(t["optiland_version"]), text(run.get("optiland_version", t["dash"]))],
        ]
        for key, digest in (run.get("input_hashes") or {}).items():
            facts.append([text(f"{t['input_hashes']}{t['colon']}{key}"), text(str(digest)[:16])])
        section.tables.append(Table([t["item"], t["value"]], facts, key="run"))
        for note in run.get("notes") or []:
            if isinstance(note, str) and not note.startswith("binding:"):
                section.paragraphs.append(Paragraph(f"{t['notes']}{t['colon']}{note}"))
        section.tables.append(Table([t["item"], t["figure"], t["value"], t["source"]],
                                    self._catalog_rows(parcels, villages), key="catalog-figures"))
        return section

    def _catalog_rows(self, parcels: pd.DataFrame, villages: pd.DataFrame) -> list[list[Cell]]:
        """The catalog figures behind the page: defaults, current uses, options, variants, livestock, rangers."""
        c, f, dash = self.catalog, self.t["figures"], self.t["dash"]
        rows: list[list[Cell]] = []

        def add(item: str, figure: str, value: Any, source: Any, key: str) -> None:
            """One figure; ``key`` is its dotted catalog key, the form scenario overrides use."""
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return
            numeric = isinstance(value, (int, float, np.number))
            attrs = {"data-catalog": key, **({"data-value": repr(float(value))} if numeric else {})}
            shown = format_figure(float(value)) if numeric else str(value)
            rows.append([text(item), text(figure), Cell(shown, attrs, numeric=numeric),
                         text(source if isinstance(source, str) and source else dash)])

        if "income_floor" in c.defaults:
            add(f["defaults"], f["income_floor"], float(c.defaults["income_floor"]),
                c.defaults.get("income_floor_source"), "defaults.income_floor")
        for code in sorted(set(parcels["current_use"])):
            if code in c.current_uses.index:
                use = c.current_uses.loc[code]
                add(f"{f['current_use']} {code} {self.labels.current_use(code)}", f["income_per_mu"],
                    float(use["income_per_mu"]), use.get("income_source"), f"current_uses.{code}.income_per_mu")
        services = ", ".join(self.labels.service(s) for s in c.service_names)
        planted = parcels[parcels["option"] != c.keep_option]
        for option in [o for o in c.options.index if o in set(planted["option"])]:
            record = c.options.loc[option]
            for key in ("compensation_per_mu", "mu_per_household"):
                if key in record.index:
                    add(self.labels.option(option), f[key], _float(record[key]), record.get("source"),
                        f"options.{option}.{key}")
            for variant in sorted(set(planted.loc[planted["option"] == option, "variant"])):
                if (option, variant) not in c.variants.index:
                    continue
                v = c.variants.loc[(option, variant)]
                item = self.labels.option(option) if variant == option else (
                    f"{self.labels.option(option)} · {self.labels.variant(option, variant)}")
                for key, source in (("establishment_cost_per_mu", "cost_source"),
                                    ("net_income_per_mu", "income_source"), ("labour_days_per_mu", "labour_source")):
                    if key in v.index:
                        add(item, f[key], _float(v[key]), v.get(source), f"variants.{option}.{variant}.{key}")
                coefficients = ", ".join(f"{self.labels.service(s)} {float(v[s]):g}" for s in c.service_names
                                         if s in v.index)
                add(item, f["es_coefficients"].format(services=services), coefficients, v.get("es_source"),
                    f"variants.{option}.{variant}")
        groups = (("livestock", c.livestock, int(villages["herd"].sum())),
                  ("rangers", c.rangers, int(villages["ranger_posts"].sum())))
        for group, figures, used in groups:
            if not used:
                continue
            for key, value in figures.items():
                if key in f and not str(key).endswith("source"):
                    add(f[group], f[key], _float(value), figures.get(f"{key}_source", figures.get("source")),
                        f"{group}.{key}")
        return rows

    def _village_tables(self, villages: pd.DataFrame) -> list[Section]:
        t = self.t
        income = Section("villages", t["villages_income"])
        rows = []
        for v in villages.itertuples(index=False):
            key = {"data_village": v.village}
            below = bool(v.at_or_below_floor)
            rows.append([
                text(v.village, **key),
                number(v.population, 0, data_field="population", **key),
                number(v.floor, 0, data_field="floor", **key),
                number(v.income_per_capita_before, 0, data_field="income_per_capita_before", **key),
                number(v.income_per_capita_after, 0, data_field="income_per_capita_after", **key),
                Cell(t["at_floor"] if below else t["above_floor"],
                     {"data-village": v.village, "data-field": "at_or_below_floor", "data-value": str(below).lower(),
                      "class": "below" if below else "above"}),
            ])
        income.tables.append(Table([t["village"], t["population"], t["floor"], t["income_before"],
                                    t["income_after"], t["floor_status"]], rows, key="village-income"))
        sources = Section("sources", t["income_by_source"])
        rows = []
        for v in villages.itertuples(index=False):
            key = {"data_village": v.village}
            rows.append([text(v.village, **key),
                         *[number(getattr(v, f"income_{s}"), 0, data_field=f"income_{s}", **key)
                           for s in INCOME_SOURCES],
                         number(v.income_total, 0, data_field="income_total", **key)])
        sources.tables.append(Table([t["village"], *[t[f"source_{s}"] for s in INCOME_SOURCES], t["income_total"]],
                                    rows, key="village-sources"))
        return [income, sources]

    # township page ------------------------------------------------------------------------------------------

    def township_page(self, name: str) -> Page:
        """Everything one township's officials need: where, what, who gains, what it costs, what limits it."""
        t, c, labels = self.t, self.catalog, self.labels
        row = self.r.townships[self.r.townships["township"] == name].iloc[0]
        villages = self.r.villages[self.r.villages["township"] == name].reset_index(drop=True)
        parcels = self.r.parcels[self.r.parcels["township"] == name]
        stem = self.stems[name]
        at = {"data_township": name}
        title = t["township_title"].format(name=name)
        sections: list[Section] = []

        overview = Section("overview", t["overview"])
        fields = (("area_mu", "area_mu", 1), ("establishment_cost", "establishment_cost", 0),
                  ("labour_days", "labour_days", 0), ("herd", "herd", 0), ("ranger_posts", "ranger_posts", 0),
                  ("households_reached", "households_reached", 0), ("population", "population", 0),
                  ("villages_at_or_below_floor", "villages_at_or_below_floor", 0))
        overview.tables.append(Table([t["item"], t["value"]],
                                     [[text(t[label]), number(row[column], decimals, data_field=column, **at)]
                                      for column, label, decimals in fields], key="overview"))
        income = industry_income(parcels, villages, c)
        leading = leading_industries(income, c)
        for key, position in (("dominant", 0), ("secondary", 1)):
            option = leading[position] if len(leading) > position else None
            shown = (f"{labels.option(option)} ({income.loc[option, 'share'] * 100:.1f}%)" if option
                     else t["none"])
            overview.paragraphs.append(Paragraph(f"{t[key]}{t['colon']}{shown}"))
        sections.append(overview)

        plan_map = Section("map", t["map"], [Paragraph(t["map_note"])])
        plan_map.pictures.append(self.plot.plan_map(parcels, f"{stem}-map.png", title,
                                                    t["map_alt"].format(name=name), areas="village"))
        sections.append(plan_map)

        areas = Section("areas", t["area_by_option"])
        rows = []
        for option in [o for o in c.options.index if f"area_mu__{o}" in row.index and row[f"area_mu__{o}"] > 0]:
            rows.append([text(labels.option(option), data_option=option), text(""),
                         number(row[f"area_mu__{option}"], 1, data_field=f"area_mu__{option}", **at),
                         number(row[f"share__{option}"], 1, scale=100.0, suffix="%", data_field=f"share__{option}",
                                **at)])
            for variant in [v for o, v in c.variants.index if o == option]:
                column = f"area_mu__{option}.{variant}"
                if column in row.index and row[column] > 0:
                    rows.append([text(""), text(labels.variant(option, variant), data_variant=f"{option}.{variant}"),
                                 number(row[column], 1, data_field=column, **at),
                                 number(row[f"share__{option}.{variant}"], 1, scale=100.0, suffix="%",
                                        data_field=f"share__{option}.{variant}", **at)])
        areas.tables.append(Table([t["option"], t["variant"], t["area_mu"], t["share"]], rows, key="areas"))
        sections.append(areas)

        industries = Section("industries", t["industries"], [Paragraph(t["industries_note"])])
        rows = []
        for option, values in income.iterrows():
            if values["total"] <= 0:
                continue
            keys = {"data_township": name, "data_option": option}
            rows.append([text(labels.option(option), data_option=option),
                         *[number(values[k], 0, data_derived=f"industry_{k}", **keys)
                           for k in ("land", "compensation", "cattle", "wages", "total")],
                         number(values["share"], 1, scale=100.0, suffix="%", data_derived="industry_share", **keys)])
        industries.tables.append(Table([t["option"], t["land_income"], t["compensation_income"], t["cattle_income"],
                                        t["wages_income"], t["income_yuan"], t["income_share"]], rows,
                                       key="industries"))
        sections.append(industries)

        village_sections = self._village_tables(villages)
        village_sections[0].pictures.append(self.plot.income_chart(
            villages, f"{stem}-income.png", t["income_chart_alt"].format(name=name)))
        village_sections[1].pictures.append(self.plot.sources_chart(
            villages, f"{stem}-sources.png", t["income_sources_alt"].format(name=name)))
        sections += village_sections

        services = Section("services", t["ecosystem_services"], [Paragraph(t["es_note"])])
        rows = []
        for service in c.service_names:
            if f"gain_{service}" not in row.index:
                continue
            index_value = row.get(f"index_{service}")
            rows.append([text(labels.service(service), data_service=service), text(labels.service_unit(service)),
                         number(row[f"gain_{service}"], 2, data_field=f"gain_{service}", **at),
                         number(index_value, 1, scale=100.0, suffix="%", data_field=f"index_{service}", **at)
                         if index_value is not None and pd.notna(index_value) else text(t["dash"])])
        services.tables.append(Table([t["service"], t["unit"], t["gain"], t["index"]], rows, key="services"))
        sections.append(services)

        cost = Section("cost", t["cost_labour"])
        cost.tables.append(Table([t["township"], t["establishment_cost"], t["labour_days"]], [[
            text(name, **at), number(row["establishment_cost"], 0, data_field="establishment_cost", **at),
            number(row["labour_days"], 1, data_field="labour_days", **at)]], key="cost"))
        cost.tables.append(Table([t["village"], t["labour_used"], t["labour_available"]], [[
            text(v.village, data_village=v.village),
            number(v.labour_used, 1, data_field="labour_used", data_village=v.village),
            number(v.labour_available, 1, data_field="labour_available", data_village=v.village)]
            for v in villages.itertuples(index=False)], key="labour"))
        sections.append(cost)

        posts = Section("posts", t["herd_posts"])
        rows = [[text(v.village, data_village=v.village),
                 *[number(getattr(v, k), 0, data_field=k, data_village=v.village)
                   for k in ("herd", "ranger_posts", "households_reached", "households")]]
                for v in villages.itertuples(index=False)]
        rows.append([text(name, **at), *[number(row[k], 0, data_field=k, **at)
                                         for k in ("herd", "ranger_posts", "households_reached")], text("")])
        posts.tables.append(Table([t["village"], t["herd"], t["ranger_posts"], t["households_reached"],
                                   t["households"]], rows, key="posts"))
        sections.append(posts)

        sections.append(self._species_section(name, row, parcels))
        sections.append(self._binding_section(name))
        front = self._front_section()
        if front is not None:
            sections.append(front)
        sections.append(self._provenance_section(parcels, villages))
        return Page(stem, title, sections, back="index")

    def _species_section(self, name: str, row: pd.Series, parcels: pd.DataFrame) -> Section:
        t, c, labels = self.t, self.catalog, self.labels
        section = Section("species", t["species"])
        planted = parcels[parcels["option"] != c.keep_option]
        counts = planted.groupby(["option", "variant"]).size()
        rows = []
        for (option, variant), n in counts.items():
            record = c.variants.loc[(option, variant)] if (option, variant) in c.variants.index else pd.Series()
            scientific = record.get("scientific_name")
            cls = record.get("adaptation_class")
            has_class = isinstance(cls, str) and bool(cls)
            if not has_class and not (isinstance(scientific, str) and scientific):
                continue  # an option without a species (e.g. natural regeneration) plants nothing
            column = f"area_mu__{option}.{variant}" if option != variant else f"area_mu__{option}"
            area = (number(row[column], 1, data_field=column, data_township=name) if column in row.index
                    else number(planted.loc[(planted["option"] == option) & (planted["variant"] == variant),
                                            "area_mu"].sum(), 1, data_derived="area_mu", data_township=name))
            rows.append([text(labels.variant(option, variant), data_variant=f"{option}.{variant}"),
                         text(scientific if isinstance(scientific, str) else t["dash"]),
                         text(labels.option(option)),
                         text(labels.adaptation(cls) if has_class else t["dash"], data_adaptation=cls or ""),
                         area, number(n, 0, data_derived="parcels", data_township=name)])
        if rows:
            section.tables.append(Table([t["variant"], t["scientific_name"], t["option"], t["adaptation_class"],
                                         t["area_mu"], t["parcels"]], rows, key="species"))
        else:
            section.paragraphs.append(Paragraph(t["no_species"]))
        return section

    # county page --------------------------------------------------------------------------------------------

    def index_page(self) -> Page:
        """The county: totals, a map, every township linked with its headline figures, the front, provenance."""
        t, c = self.t, self.catalog
        r = self.r
        sections: list[Section] = []
        fields = (("area_mu", 1), ("establishment_cost", 0), ("labour_days", 0), ("herd", 0), ("ranger_posts", 0),
                  ("households_reached", 0), ("population", 0), ("villages_at_or_below_floor", 0))
        totals = Section("totals", t["county_totals"])
        totals.tables.append(Table([t["item"], t["value"]], [
            [text(t[k]), number(r.townships[k].sum(), d, data_county_field=k)] for k, d in fields], key="totals"))
        sections.append(totals)
        county_map = Section("map", t["map"], [Paragraph(t["map_note"])])
        county_map.pictures.append(self.plot.plan_map(r.parcels, "county-map.png", t["county_title"],
                                                      t["map_alt"].format(name=t["county_title"]), areas="township"))
        sections.append(county_map)

        listing = Section("townships", t["townships"])
        rows = []
        for name in self.township_names:
            row = r.townships[r.townships["township"] == name].iloc[0]
            parcels = r.parcels[r.parcels["township"] == name]
            villages = r.villages[r.villages["township"] == name]
            leading = leading_industries(industry_income(parcels, villages, c), c)
            rows.append([Cell(name, {"data-township": name}, href=self.stems[name]),
                         *[number(row[k], d, data_field=k, data_township=name) for k, d in fields],
                         text(self.labels.option(leading[0]) if leading else t["none"], data_township=name,
                              data_derived="dominant", data_option=leading[0] if leading else "")])
        listing.tables.append(Table([t["township"], *[t[k] for k, _ in fields], t["dominant"]], rows,
                                    key="township-list"))
        sections.append(listing)
        front = self._front_section()
        if front is not None:
            sections.append(front)
        sections.append(self._binding_section(None))
        sections.append(self._provenance_section(r.parcels, r.villages))
        return Page("index", t["county_title"], sections)


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


# ------------------------------------------------------------------------------------------------------------
# Rendering and writing


@cache
def _environments() -> tuple[Any, Any]:
    import jinja2

    loader = jinja2.FileSystemLoader(str(TEMPLATES))
    html = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)
    markdown = jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined,
                                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    markdown.filters["md"] = lambda value: str(value).replace("|", "\\|").replace("\n", " ")
    return html, markdown


def render(page: Page, strings: Mapping[str, Any], generated: str) -> tuple[str, str]:
    """A page as HTML and as Markdown."""
    html, markdown = _environments()
    context = {"page": page, "t": strings, "generated": generated}
    return (html.get_template("page.html.j2").render(**context),
            markdown.get_template("page.md.j2").render(**context))


def write_report(outdir: str | Path, lang: str = "zh", front_dir: str | Path | None = None) -> Path:
    """Write OUTDIR/report/ (index and one page per township, HTML and Markdown, pictures in img/), whole or not at
    all; returns the report folder. ``front_dir``: a pareto OUTDIR to show (default: the one run.json records)."""
    strings = load_strings(lang)
    results = read_results(outdir)
    fonts = plot_fonts(lang)
    catalog, changed = read_catalog(results)
    front, missing_front = read_front(results, front_dir)
    notes = []
    if changed:
        notes.append(Paragraph(strings["catalog_changed"].format(old=changed, new=catalog.version), warning=True))
    if missing_front:
        notes.append(Paragraph(strings["front_missing"].format(dir=missing_front), warning=True))
    labels = Labels(catalog, strings, lang)
    run = results.run
    generated = strings["generated"].format(version=run.get("optiland_version", "?"), created=run.get("created", "?"),
                                            outdir=results.out_dir.resolve())

    def write(folder: Path) -> None:
        (folder / "img").mkdir()
        builder = ReportBuilder(results, catalog, lang, Plotter(folder, fonts, labels, catalog), front, notes)
        pages = [builder.index_page()] + [builder.township_page(name) for name in builder.township_names]
        for page in pages:
            html, markdown = render(page, strings, generated)
            (folder / f"{page.stem}.html").write_text(html, encoding="utf-8")
            (folder / f"{page.stem}.md").write_text(markdown, encoding="utf-8")

    with warnings.catch_warnings():
        # a village or township name in a script the chosen fonts lack still plots (as boxes); not worth a failure
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        return write_atomically(Path(outdir) / "report", write)
