"""The report's pictures: plan maps with legend, scale bar, north arrow and red lines; income and area charts; the
front."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from optiland.io.catalog import Catalog
from optiland.pipeline.results import INCOME_SOURCES
from optiland.views.report_data import (
    DPI,
    KEEP_COLOUR,
    OPTION_COLOURS,
    RED_LINE_COLOUR,
    SCREEN_DPI,
    FrontInfo,
    Labels,
)
from optiland.views.report_page import Picture, no_negative_zero

# ------------------------------------------------------------------------------------------------------------
# Pictures


def _thousands(value: float, _position: int) -> str:
    """Tick labels as the tables write numbers: thousands separators, never "-0"."""
    return no_negative_zero(f"{value:,.0f}") if float(value).is_integer() else no_negative_zero(f"{value:,g}")


def _formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(_thousands)


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
        fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")  # 300 dpi: print quality on A4
        with Image.open(path) as image:
            width, height = image.size
        # shown at its size in inches (CSS px at 96 per inch), so that it prints at 300 dpi
        return Picture(f"img/{name}", alt, round(width * SCREEN_DPI / DPI), round(height * SCREEN_DPI / DPI),
                       caption)

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
            ax.set(xlabel="", ylabel="")  # geopandas names the CRS axes ("Easting [metre]"); the map shows none
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
            fig, ax = self._figure(7.0, 1.2 + 0.36 * n)
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
            ax.xaxis.set_major_formatter(_formatter())
            ax.grid(axis="x", alpha=0.3)
            ax.legend(loc="lower right", fontsize=8)
            return self._save(fig, name, alt)

    def sources_chart(self, villages: pd.DataFrame, name: str, alt: str) -> Picture:
        """Per-capita income after the plan, stacked by source, per village."""
        import matplotlib

        colours = ("#bdbdbd", "#1b9e77", "#e6ab02", "#7570b3", "#66a61e")
        with matplotlib.rc_context(self._rc()):
            n = len(villages)
            fig, ax = self._figure(7.0, 1.4 + 0.32 * n)
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
            ax.xaxis.set_major_formatter(_formatter())
            ax.grid(axis="x", alpha=0.3)
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8)
            return self._save(fig, name, alt)

    def front_chart(self, front: FrontInfo, name: str) -> Picture:
        """The front over its first two objectives (a third colours the points), knee, ideal, chosen point."""
        import matplotlib

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
                    axis.set_major_formatter(_formatter())
            ax.grid(alpha=0.3)
            ax.legend(loc="best", fontsize=8)
            return self._save(fig, name, alt)
