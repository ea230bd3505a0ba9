"""The report's page model (sections of paragraphs, pictures and tables whose cells carry the figures they show) and
its rendering, the same way, to HTML and Markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from optiland.views.report_data import TEMPLATES

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
    tables_first: bool = False  # the figures before the picture of them (the village incomes: numbers first)


@dataclass
class Page:
    """A report page: written as ``<stem>.html`` and ``<stem>.md``."""

    stem: str
    title: str
    sections: list[Section]
    back: str | None = None


def no_negative_zero(shown: str) -> str:
    """``shown`` without the sign of a value that rounds to zero ("-0", "-0.00" and "-0%" read as a loss that is
    not there)."""
    if shown.startswith("-") and not any(ch in "123456789" for ch in shown):
        return shown[1:]
    return shown


def format_number(value: float, decimals: int) -> str:
    """Thousands separators and fixed decimals, never "-0"; a dash for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return no_negative_zero(f"{value:,.{decimals}f}")


def format_figure(value: float) -> str:
    """A catalog figure as written: whole numbers with thousands separators, others to at most 6 decimals; never
    "-0"."""
    if value.is_integer():
        return no_negative_zero(f"{value:,.0f}")
    return no_negative_zero(f"{value:,.6f}".rstrip("0").rstrip("."))


def format_general(value: float, digits: int = 6) -> str:
    """A figure to ``digits`` significant digits (whole numbers in full), in positional notation (no "e+06",
    which a planner does not read), with thousands separators; never "-0"."""
    if not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    shown = f"{round(value, decimals):,.{decimals}f}"
    if "." in shown:
        shown = shown.rstrip("0").rstrip(".")
    return no_negative_zero(shown)


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
# Rendering and writing


def markdown_text(value: Any) -> str:
    """Text from the input (a village or township name, a title) made inert in Markdown: HTML's &, < and > as
    entities (a `<script>` in a village name is shown, never run), table bars escaped, one line."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


@cache
def _environments() -> tuple[Any, Any]:
    import jinja2

    loader = jinja2.FileSystemLoader(str(TEMPLATES))
    html = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)
    markdown = jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined,
                                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    markdown.filters["md"] = markdown_text
    return html, markdown


def render(page: Page, strings: Mapping[str, Any], generated: str) -> tuple[str, str]:
    """A page as HTML and as Markdown."""
    html, markdown = _environments()
    context = {"page": page, "t": strings, "generated": generated}
    return (html.get_template("page.html.j2").render(**context),
            markdown.get_template("page.md.j2").render(**context))
