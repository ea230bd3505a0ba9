"""Catalog figures checked against one schema of types and ranges, for the catalog's own tables and for a scenario's
``[catalog.overrides]`` alike: a text where a number belongs (``head_per_mu = "lots"``), a share above 1
(``max_transfer_share = 5``), a habitat score of 3 or a negative cost is an input error naming the override key (or
the catalog file) and the value, before anything is solved.

`override_value_issues` checks what an override may hold, from its key alone (the scenario calls it);
`check_catalog_ranges` checks every figure once the overrides are applied (`catalog.load_catalog` calls it).
"""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import InputError, Issue, plain

Range = tuple[float, float, bool]
"""(low, high, low is strict): the figure must be finite and within; (0, inf, True) means > 0."""

ANY: Range = (-math.inf, math.inf, False)
NON_NEGATIVE: Range = (0.0, math.inf, False)
POSITIVE: Range = (0.0, math.inf, True)
SHARE: Range = (0.0, 1.0, True)
UNIT: Range = (0.0, 1.0, False)
SLOPE: Range = (0.0, 90.0, False)

TABLE_RANGES: dict[str, dict[str, Range]] = {
    "variants": {"establishment_cost_per_mu": NON_NEGATIVE, "net_income_per_mu": ANY,
                 "labour_days_per_mu": NON_NEGATIVE, "max_slope_deg": SLOPE},
    "options": {"max_slope_deg": SLOPE, "compensation_per_mu": NON_NEGATIVE, "mu_per_household": POSITIVE},
    "current_uses": {"income_per_mu": ANY, "labour_days_per_mu": NON_NEGATIVE},
}
"""Number columns of the catalog tables (service columns are added per catalog: see `_service_range`)."""
TEXT_COLUMNS = {"name", "name_zh", "scientific_name", "adaptation_class", "max_grade", "excluded_where", "group",
                "source"}
BOOL_COLUMNS = {"keeps_current_use", "red_line_allowed", "red_line_harvest", "forest_type", "ranger_area",
                "livestock", "diversity_capped", "cropland", "plannable"}
SECTION_RANGES: dict[str, dict[str, Range]] = {
    "livestock": {"head_per_mu": NON_NEGATIVE, "net_income_per_head": ANY, "purchase_cost_per_head": NON_NEGATIVE,
                  "shed_cost_per_head": NON_NEGATIVE, "labour_days_per_head": NON_NEGATIVE},
    "rangers": {"mu_per_post": POSITIVE, "wage_per_post": NON_NEGATIVE, "max_posts_per_household": NON_NEGATIVE},
    "defaults": {"income_floor": NON_NEGATIVE, "max_transfer_share": SHARE, "soil_slope_reference_deg": POSITIVE},
}
MARKET: Range = NON_NEGATIVE


def _describe(bounds: Range) -> str:
    low, high, strict = bounds
    if (low, high) == (-math.inf, math.inf):
        return "a finite number"
    if high == math.inf:
        return "a number above 0" if strict and low == 0 else f"a number of at least {low:g}"
    return f"a number {'above' if strict else 'from'} {low:g} {'and at most' if strict else 'to'} {high:g}"


def _outside(value: float, bounds: Range) -> bool:
    low, high, strict = bounds
    return not math.isfinite(value) or value > high or (value <= low if strict else value < low)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _column_kind(key: str) -> str:
    """'number', 'text', 'bool' or 'grade' (adaptation classes take a grade name) for an override key."""
    parts = key.split(".")
    column = parts[-1]
    if parts[0] == "adaptation":
        return "grade"
    if parts[0] == "defaults" and column == "no_worse_off":
        return "bool"
    if column in TEXT_COLUMNS or column.endswith("_source"):
        return "text"
    if column in BOOL_COLUMNS:
        return "bool"
    return "number"


def override_value_issues(overrides: dict[str, Any], file: str | None = None) -> list[Issue]:
    """What each override holds, against what its key takes: a number (or {scale = number}), a true/false, a text
    or a grade name. Unknown keys are left to the catalog (which names the nearest known one)."""
    problems = []
    for key, value in overrides.items():
        kind = _column_kind(str(key))
        if isinstance(value, dict):
            scale = value.get("scale")
            if set(value) != {"scale"}:
                problems.append(Issue("an override table takes only 'scale' (a multiplier)", file=file, column=key,
                                      value=value))
            elif kind != "number":
                problems.append(Issue(f"{{scale = ...}} multiplies a number; this figure is a {kind}", file=file,
                                      column=key, value=value))
            elif not _is_number(scale) or not math.isfinite(scale) or scale < 0:
                problems.append(Issue("scale must be a finite number of at least 0", file=file, column=key,
                                      value=scale))
        elif kind == "number" and not (_is_number(value) and math.isfinite(value)):
            problems.append(Issue("must be a finite number (or {scale = f})", file=file, column=key, value=value))
        elif kind == "bool" and not isinstance(value, bool):
            problems.append(Issue("must be true or false", file=file, column=key, value=value))
        elif kind in ("text", "grade") and not isinstance(value, str):
            problems.append(Issue(f"must be a {'grade name' if kind == 'grade' else 'text'}", file=file,
                                  column=key, value=value))
    return problems


def _service_range(catalog: Any, service: str) -> Range:
    unit = str(catalog.services.get(service, {}).get("unit", ""))
    return UNIT if "0-1" in unit else ANY


def _override_for(overrides: dict[str, Any], table: str, row: tuple[str, ...], column: str) -> str | None:
    """The override key that set this figure, if one did (its `*` matching any name)."""
    for key in overrides:
        parts = str(key).split(".")
        if parts[0] != table or parts[-1] != column or len(parts) != len(row) + 2:
            continue
        if all(fnmatchcase(name, pattern) for name, pattern in zip(row, parts[1:-1], strict=True)):
            return str(key)
    return None


def check_catalog_ranges(catalog: Any, overrides: dict[str, Any] | None = None) -> None:
    """Every number of the catalog within its range; a figure out of range is named by the override key that set
    it, or else by the catalog file, its row and column."""
    overrides = overrides or {}
    problems: list[Issue] = []
    tables = {"variants": catalog.variants, "options": catalog.options, "current_uses": catalog.current_uses}
    for table, frame in tables.items():
        ranges = dict(TABLE_RANGES[table])
        if table != "options":
            ranges.update({s: _service_range(catalog, s) for s in catalog.service_names})
        for column, bounds in ranges.items():
            if column not in frame.columns:
                continue
            raw = frame[column]
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            blank = raw.isna().to_numpy()
            optional = column in ("max_slope_deg", "mu_per_household")
            for position in range(len(frame)):
                if blank[position] and optional:
                    continue
                value = values[position]
                if not _outside(value, bounds):
                    continue
                index = frame.index[position]
                row = tuple(str(i) for i in index) if isinstance(index, tuple) else (str(index),)
                key = _override_for(overrides, table, row, column)
                shown = plain(raw.iloc[position])
                if key is not None:
                    problems.append(Issue(f"must be {_describe(bounds)} (a catalog override)", row=".".join(row),
                                          column=key, value=shown))
                else:
                    problems.append(Issue(f"must be {_describe(bounds)}", file=str(catalog.path / f"{table}.csv"),
                                          row=".".join(row), column=column, value=shown))
    for section, ranges in SECTION_RANGES.items():
        figures = getattr(catalog, section)
        for name, bounds in ranges.items():
            if name not in figures:
                continue
            value = figures[name]
            number = float(value) if _is_number(value) or isinstance(value, np.number) else math.nan
            if _outside(number, bounds):
                key = f"{section}.{name}"
                where: dict[str, str] = ({"column": f"{key} (a catalog override)"} if key in overrides else
                                         {"file": str(catalog.path / "catalog.toml"), "column": key})
                problems.append(Issue(f"must be {_describe(bounds)}", value=plain(value), **where))
    market = catalog.market
    if "max_area_mu" in market.columns:
        values = pd.to_numeric(market["max_area_mu"], errors="coerce").to_numpy(dtype=float)
        for position in np.flatnonzero([_outside(v, MARKET) for v in values]):
            option, variant = market.index[position]
            key = f"market.{option}.{variant}"
            problems.append(Issue(f"must be {_describe(MARKET)}", value=plain(market["max_area_mu"].iloc[position]),
                                  **({"column": key} if key in overrides else
                                     {"file": str(catalog.path / "market.csv"), "row": f"{option}.{variant}",
                                      "column": "max_area_mu"})))
    if problems:
        raise InputError(problems)
