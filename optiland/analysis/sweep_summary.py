"""A sweep's summary: the tidy results folder, parameters ranked by effect, tornado and spider plots."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.analysis.sweep_design import _NOT_PLOTTED, RUN_ID, TIDY_COLUMNS, _plain
from optiland.io.catalog import load_catalog
from optiland.io.scenario import CatalogConfig, Scenario
from optiland.io.tables import write_csv
from optiland.pipeline.results import write_atomically

# --------------------------------------------------------------------------------------------------- summary


def _write_file(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary name beside PATH, then rename it into place (whole or not at all)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_outputs(out: Path, table: pd.DataFrame, design: pd.DataFrame, *, scenario: Scenario | None = None,
                  plots: bool = True) -> pd.DataFrame:
    """Write results.parquet, results.csv (UTF-8 with BOM), design.csv, ranking.csv and plots/; return the ranking."""
    _write_file(out / "results.parquet", lambda p: table.to_parquet(p, index=False))
    _write_file(out / "results.csv", lambda p: write_csv(table, p))
    _write_file(out / "design.csv", lambda p: write_csv(design, p))
    ranking = rank_parameters(table)
    _write_file(out / "ranking.csv", lambda p: write_csv(ranking, p))
    if plots:
        base_values = base_values_of(scenario, table) if scenario is not None else {}
        write_atomically(out / "plots", lambda folder: plot_summary(table, folder, base_values=base_values))
    return ranking


def _equal(series: pd.Series, value: Any) -> np.ndarray:
    """Elementwise equality with NaN equal to NaN/None (a parameter at the scenario's own value)."""
    value = _plain(value)
    if value is None:
        return series.isna().to_numpy()
    if isinstance(value, (int, float)):
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        return np.isclose(numbers, float(value), rtol=1e-12, atol=0.0)
    return (series == (value if isinstance(value, str) else json.dumps(value, sort_keys=True))).to_numpy()


def _oat_rows(wide: pd.DataFrame, params: list[str], base: dict[str, Any], path: str) -> pd.DataFrame:
    """The runs of a one-at-a-time design that vary PATH, with the base run: every other parameter at its base."""
    mask = np.ones(len(wide), dtype=bool)
    for other in params:
        if other != path:
            mask &= _equal(wide[other], base.get(other))
    return wide[mask]


def _wide(table: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """One row per run, one column per metric (NaN where a run has no value)."""
    runs = table.drop_duplicates(RUN_ID).set_index(RUN_ID)[[*TIDY_COLUMNS[1:], *params]]
    values = table.pivot_table(index=RUN_ID, columns="metric", values="value", aggfunc="first", dropna=False)
    values.columns.name = None
    return runs.join(values)


def wide(results: pd.DataFrame) -> pd.DataFrame:
    """The tidy results one row per run (in the sweep's order): run_id, status, error, the parameters, then one
    column per metric."""
    params = [c for c in results.columns if c not in (*TIDY_COLUMNS, "metric", "value")]
    order = results[RUN_ID].drop_duplicates()
    table = _wide(results, params).reindex(order).reset_index()
    table.attrs.update(results.attrs)
    return table


def rank_parameters(table: pd.DataFrame) -> pd.DataFrame:
    """Per metric, the parameters ranked by effect: the range of the metric's mean across a parameter's values
    (one-at-a-time: along its own runs with the others at base; factorial: main effects), or for a Latin hypercube
    the absolute Spearman correlation. Runs without a value (failed; infeasible, but for villages_below_floor) are
    left out. Columns: metric, rank, parameter, effect, measure, low, high (the metric's extreme means)."""
    from scipy.stats import spearmanr

    params = [c for c in table.columns if c not in (*TIDY_COLUMNS, "metric", "value")]
    columns = ["metric", "rank", "parameter", "effect", "measure", "low", "high"]
    if table.empty or not params:
        return pd.DataFrame(columns=columns)
    kind = table.attrs.get("kind") or "factorial"
    base = table.attrs.get("base") or {}
    wide = _wide(table, params)
    rows = []
    for metric in table["metric"].drop_duplicates():
        for path in params:
            subset = _oat_rows(wide, params, base, path) if kind == "one_at_a_time" else wide
            subset = subset[subset[metric].notna()] if metric in subset else subset.iloc[0:0]
            effect = low = high = float("nan")
            if kind == "latin_hypercube":
                measure = "abs_spearman"
                x = pd.to_numeric(subset[path], errors="coerce")
                ok = x.notna().to_numpy()
                if ok.sum() >= 3 and x[ok].nunique() > 1 and subset[metric][ok].nunique() > 1:
                    effect = abs(float(spearmanr(x[ok], subset[metric][ok]).statistic))
                    low, high = float(subset[metric].min()), float(subset[metric].max())
            else:
                measure = "range_of_means"
                means = subset.groupby(subset[path].astype(str), dropna=False)[metric].mean()
                if len(means) >= 2:  # an effect needs the metric at two values at least
                    low, high = float(means.min()), float(means.max())
                    effect = high - low
            rows.append({"metric": metric, "parameter": path, "effect": effect, "measure": measure, "low": low,
                         "high": high})
    ranking = pd.DataFrame(rows, columns=[c for c in columns if c != "rank"])
    ranking = ranking.sort_values(["metric", "effect"], ascending=[True, False], na_position="last", kind="stable")
    ranking.insert(1, "rank", ranking.groupby("metric").cumcount() + 1)
    return ranking.reset_index(drop=True)[columns]


def base_values_of(scenario: Scenario | None, table: pd.DataFrame) -> dict[str, float]:
    """Each parameter's base as a number, for relative changes: the design's base, else the scenario's own value
    (a catalog figure as loaded, with the scenario's overrides), else None."""
    params = [c for c in table.columns if c not in (*TIDY_COLUMNS, "metric", "value")]
    base = table.attrs.get("base") or {}
    scales = set(table.attrs.get("as_scale") or ())
    values = {}
    for path in params:
        given = _plain(base.get(path))
        if isinstance(given, (int, float)):
            values[path] = float(given)
        elif path in scales:
            values[path] = 1.0
        elif scenario is not None:
            found = scenario_value(scenario, path)
            if found is not None:
                values[path] = found
    return values


def scenario_value(scenario: Scenario, path: str) -> float | None:
    """The number a dotted path has in the scenario (or its catalog) before any sweep change; None if there is none
    or a wildcard matches different values."""
    try:
        parts = path.split(".")
        if parts[0] == "catalog" and len(parts) > 1 and parts[1] not in CatalogConfig.model_fields:
            return _catalog_value(scenario, parts[1:])
        node: Any = scenario.model_dump(mode="python")
        for key in parts:
            node = node[key]
        if node is None and path == "constraints.income_floor":
            return _catalog_value(scenario, ["defaults", "income_floor"])
        return float(node) if isinstance(node, (int, float)) else None
    except Exception:  # noqa: BLE001 - best effort: a path that does not name one number has no base
        return None


def _catalog_value(scenario: Scenario, parts: list[str]) -> float | None:
    config = scenario.catalog
    catalog = load_catalog(scenario.resolve(config.path) if config.path else None, overrides=config.overrides,
                           region=config.region)
    table = parts[0]
    if table in {"livestock", "rangers", "defaults", "adaptation"}:
        return float(getattr(catalog, table)[parts[1]])
    if table == "market":
        series = catalog.market["max_area_mu"]
        values = series[[(o, v) for o, v in series.index if parts[1] in ("*", o) and parts[2] in ("*", v)]]
    elif table == "variants":
        frame = catalog.variants
        mask = [(parts[1] in ("*", o)) and (parts[2] in ("*", v)) for o, v in frame.index]
        values = frame.loc[mask, parts[3]]
    else:
        frame = getattr(catalog, table)
        values = frame[parts[2]] if parts[1] == "*" else frame.loc[[parts[1]], parts[2]]
    unique = pd.to_numeric(values, errors="coerce").dropna().unique()
    return float(unique[0]) if len(unique) == 1 else None


def plot_summary(table: pd.DataFrame, folder: Path, *, base_values: dict[str, float] | None = None,
                 metrics: Sequence[str] | None = None) -> list[Path]:
    """Tornado plots (one-at-a-time designs) and spider plots per metric, as PNG files in FOLDER."""
    import matplotlib

    matplotlib.use("Agg")
    params = [c for c in table.columns if c not in (*TIDY_COLUMNS, "metric", "value")]
    if table.empty or not params:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    wide = _wide(table, params)
    names = [m for m in (metrics or table["metric"].drop_duplicates()) if m not in _NOT_PLOTTED and m in wide]
    written = []
    for metric in names:
        if wide[metric].notna().sum() == 0:
            continue
        if table.attrs.get("kind") == "one_at_a_time":
            path = _tornado(wide, params, table.attrs.get("base") or {}, metric, folder)
            if path:
                written.append(path)
        if table.attrs.get("kind") in ("one_at_a_time", "factorial", None):
            path = _spider(wide, params, table.attrs, base_values or {}, metric, folder)
            if path:
                written.append(path)
    return written


def _file_name(metric: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in metric)


def _sorted_levels(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    order = pd.to_numeric(frame[path], errors="coerce")
    return frame.assign(_order=order).sort_values("_order", na_position="first").drop(columns="_order")


def _tornado(wide: pd.DataFrame, params: list[str], base: dict[str, Any], metric: str, folder: Path) -> Path | None:
    import matplotlib.pyplot as plt

    base_rows = wide[np.logical_and.reduce([_equal(wide[p], base.get(p)) for p in params])]
    if base_rows.empty or pd.isna(base_rows[metric].iloc[0]):
        return None
    centre = float(base_rows[metric].iloc[0])
    bars = []
    for path in params:
        rows = _oat_rows(wide, params, base, path)
        rows = _sorted_levels(rows[rows[metric].notna() & ~_equal(rows[path], base.get(path))], path)
        if rows.empty:
            continue
        low, high = rows.iloc[0], rows.iloc[-1]
        bars.append((path, low[path], float(low[metric]), high[path], float(high[metric])))
    if not bars:
        return None
    bars.sort(key=lambda b: max(abs(b[2] - centre), abs(b[4] - centre)))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.6 * len(bars)))
    for i, (_, low_x, low_y, high_x, high_y) in enumerate(bars):
        ax.barh(i, low_y - centre, left=centre, color="#4c72b0")
        ax.barh(i, high_y - centre, left=centre, color="#dd8452", alpha=0.85)
        ax.text(low_y, i, f" {_short(low_x)} ", va="center", ha="right" if low_y <= centre else "left", fontsize=8)
        ax.text(high_y, i, f" {_short(high_x)} ", va="center", ha="left" if high_y >= centre else "right",
                fontsize=8)
    ax.axvline(centre, color="black", linewidth=1)
    ax.margins(x=0.18)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_xlabel(f"{metric} (base run: {centre:,.6g}); bars from the base to the metric at the parameter's lowest "
                  "(blue) and highest (orange) value", fontsize=8)
    ax.set_title(f"tornado: {metric}")
    fig.tight_layout()
    path = folder / f"tornado_{_file_name(metric)}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _short(value: Any) -> str:
    value = _plain(value)
    return f"{value:,.4g}" if isinstance(value, (int, float)) else str(value)


def _spider(wide: pd.DataFrame, params: list[str], attrs: dict[str, Any], base_values: dict[str, float],
            metric: str, folder: Path) -> Path | None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    drawn = 0
    for path in params:
        rows = (_oat_rows(wide, params, attrs.get("base") or {}, path) if attrs.get("kind") == "one_at_a_time"
                else wide)
        rows = rows[rows[metric].notna()]
        x = pd.to_numeric(rows[path], errors="coerce")
        reference = base_values.get(path)
        if reference is not None:  # NaN: the scenario's own value
            x = x.fillna(reference)
        rows, x = rows[x.notna()], x[x.notna()]
        if rows.empty:
            continue
        means = rows[metric].groupby(x).mean().sort_index()
        if reference is None or reference == 0:
            reference = float(np.median(means.index))
        if reference == 0:
            continue
        change = (means.index.to_numpy(dtype=float) / reference - 1.0) * 100.0
        ax.plot(change, means.to_numpy(), marker="o", label=path)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("parameter change from its base (%)")
    ax.set_ylabel(metric)
    ax.set_title(f"spider: {metric}")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = folder / f"spider_{_file_name(metric)}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
