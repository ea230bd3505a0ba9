"""Sweep designs: one-at-a-time, factorial and Latin-hypercube tables of runs, each run keyed by a hash of its
parameter values (so that a resumed sweep recognises finished runs), and design files read and checked."""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import InputError, Issue
from optiland.io.tables import read_text

RUN_ID = "run_id"
TIDY_COLUMNS = ("run_id", "status", "error")
FAILED = "failed"
INFEASIBLE = "infeasible"
NO_PLAN = "no_plan"
SERVICES = ("carbon", "soil", "water", "habitat")
DEFAULT_METRICS: tuple[str, ...] = ("objective", "income", "villages_below_floor", *(f"gain_{s}" for s in SERVICES),
                                    "establishment_cost", "gap", "solve_seconds")
KINDS = ("one_at_a_time", "factorial", "latin_hypercube")
EXECUTORS = ("serial", "processes", "dask")
DEFAULT_MP_CONTEXT = "spawn"
_NOT_PLOTTED = {"gap", "bound", "solve_seconds", "read_seconds", "build_seconds", "run_seconds"}


# --------------------------------------------------------------------------------------------------- designs


def _plain(value: Any) -> Any:
    """A design value as plain, canonical data: numpy scalars to Python, floats to 12 significant digits, NaN to
    None, tables sorted (so that the same parameters always hash to the same run_id)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        rounded = float(f"{value:.12g}")
        return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
    return value


def override_value(path: str, value: Any, as_scale: Iterable[str] = ()) -> Any:
    """The value a run gives `Scenario.with_` for a path: {"scale": value} for a multiplier path; None if unchanged."""
    value = _plain(value)
    if value is None:
        return None
    if path in set(as_scale) and not isinstance(value, dict):
        return {"scale": value}
    return value


def run_id_of(params: dict[str, Any], as_scale: Iterable[str] = ()) -> str:
    """A short, stable hash of a run's parameter values (12 hex digits)."""
    scales = set(as_scale)
    data = {path: override_value(path, value, scales) for path, value in sorted(params.items())}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _finish(rows: list[dict[str, Any]], columns: list[str], kind: str, base: dict[str, Any],
            as_scale: Iterable[str]) -> pd.DataFrame:
    scales = sorted(set(as_scale))
    unknown = [p for p in scales if p not in columns]
    if unknown:
        raise InputError([Issue("as_scale names a path the design does not vary", column=p) for p in unknown])
    frame = pd.DataFrame(rows, columns=columns)
    frame.insert(0, RUN_ID, [run_id_of(row, scales) for row in rows])
    frame = frame.drop_duplicates(RUN_ID).reset_index(drop=True)
    frame.attrs.update(kind=kind, base={p: _plain(base.get(p)) for p in columns}, as_scale=scales)
    return frame


def one_at_a_time(base: dict[str, Any] | None, ranges: dict[str, Sequence[Any]], *,
                  as_scale: Iterable[str] = ()) -> pd.DataFrame:
    """The base run, then each parameter through its range with the others at their base values.

    `base` maps a path to its base value; a path left out (or `base=None`) keeps the scenario's own value in the other
    parameters' runs (shown as NaN), except a multiplier path (in `as_scale`), whose base is 1.0. A range value equal
    to the base is the base run (not repeated).
    """
    scales = set(as_scale)
    base = dict(base or {})
    columns = list(ranges)
    for path in columns:
        if base.get(path) is None and path in scales:
            base[path] = 1.0
    start = {p: base.get(p) for p in columns}
    rows = [dict(start)]
    for path, values in ranges.items():
        for value in values:
            rows.append({**start, path: value})
    return _finish(rows, columns, "one_at_a_time", start, scales)


def factorial(levels: dict[str, Sequence[Any]], *, as_scale: Iterable[str] = (),
              base: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every combination of the parameters' levels (the first parameter varies slowest)."""
    columns = list(levels)
    grids = np.meshgrid(*[np.arange(len(v)) for v in levels.values()], indexing="ij")
    rows = [{p: list(levels[p])[int(g.flat[i])] for p, g in zip(columns, grids, strict=True)}
            for i in range(grids[0].size if grids else 0)]
    return _finish(rows, columns, "factorial", dict(base or {}), as_scale)


def latin_hypercube(bounds: dict[str, tuple[float, float]], n: int, seed: int, *, as_scale: Iterable[str] = (),
                    base: dict[str, Any] | None = None) -> pd.DataFrame:
    """`n` runs of a Latin-hypercube sample (scipy.stats.qmc) scaled to each parameter's [low, high]."""
    from scipy.stats import qmc

    columns = list(bounds)
    if n < 1 or not columns:
        raise InputError([Issue("a Latin hypercube needs n >= 1 and at least one parameter", value=n)])
    lows = np.array([float(bounds[p][0]) for p in columns])
    highs = np.array([float(bounds[p][1]) for p in columns])
    bad = [p for p, lo, hi in zip(columns, lows, highs, strict=True) if not lo < hi]
    if bad:
        raise InputError([Issue("low must be below high", column=p, value=bounds[p]) for p in bad])
    try:
        engine = qmc.LatinHypercube(d=len(columns), rng=np.random.default_rng(seed))
    except TypeError:  # scipy < 1.15
        engine = qmc.LatinHypercube(d=len(columns), seed=np.random.default_rng(seed))
    sample = qmc.scale(engine.random(n), lows, highs)
    rows = [{p: float(f"{v:.10g}") for p, v in zip(columns, row, strict=True)} for row in sample]
    return _finish(rows, columns, "latin_hypercube", dict(base or {}), as_scale)


def parameters_of(design: pd.DataFrame) -> list[str]:
    """The varied paths of a design (its columns other than run_id)."""
    return [c for c in design.columns if c != RUN_ID]


def _design_error(file: Path, message: str, column: str | None = None, value: Any = None) -> InputError:
    return InputError([Issue(message, file=str(file), column=column, value=value)])


def load_design(path: str | Path) -> pd.DataFrame:
    """Read a design TOML file (documented in README.md, "Sensitivity sweeps").

    `[design]` takes kind ("one_at_a_time", "factorial", "latin_hypercube"), n and seed (Latin hypercube);
    `[parameters."dotted.path"]` takes values = [...] or low/high (with steps for a grid), scale = true for a
    multiplier, and base.
    """
    path = Path(path)
    if not path.is_file():
        raise _design_error(path, "design file not found")
    try:
        data = tomllib.loads(read_text(path))  # Notepad's BOM or GBK read (optiland.io.tables)
    except tomllib.TOMLDecodeError as exc:
        raise _design_error(path, f"not valid TOML: {exc}") from None
    extra = set(data) - {"design", "parameters"}
    if extra:
        raise _design_error(path, "unknown section; a design has [design] and [parameters.\"path\"]",
                            value=sorted(extra))
    head = data.get("design", {})
    extra = set(head) - {"kind", "n", "seed"}
    if extra:
        raise _design_error(path, "unknown key in [design] (kind, n, seed)", column="design", value=sorted(extra))
    kind = head.get("kind", "one_at_a_time")
    if kind not in KINDS:
        raise _design_error(path, f"unknown design kind; known: {', '.join(KINDS)}", column="design.kind", value=kind)
    params = data.get("parameters", {})
    if not params:
        raise _design_error(path, "no [parameters.\"dotted.path\"] tables")
    values: dict[str, list[Any]] = {}
    bounds: dict[str, tuple[float, float]] = {}
    base: dict[str, Any] = {}
    scales: list[str] = []
    for name, spec in params.items():
        where = f"parameters.{name}"
        if not isinstance(spec, dict):
            raise _design_error(path, "a parameter is a table: values = [...] or low/high", column=where)
        extra = set(spec) - {"values", "low", "high", "steps", "scale", "base"}
        if extra:
            raise _design_error(path, "unknown key (values, low, high, steps, scale, base)", column=where,
                                value=sorted(extra))
        if spec.get("scale"):
            scales.append(name)
        if "base" in spec:
            base[name] = spec["base"]
        if "values" in spec:
            if "low" in spec or "high" in spec:
                raise _design_error(path, "give values or low/high, not both", column=where)
            given = list(spec["values"])
            if not given:
                raise _design_error(path, "values is empty", column=where)
            values[name] = given
            numeric = [v for v in given if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(numeric) == len(given):
                bounds[name] = (float(min(numeric)), float(max(numeric)))
        elif "low" in spec and "high" in spec:
            low, high = float(spec["low"]), float(spec["high"])
            steps = int(spec.get("steps", 2 if kind == "one_at_a_time" else 3))
            if steps < 1:
                raise _design_error(path, "steps must be at least 1", column=where, value=steps)
            values[name] = [float(f"{v:.10g}") for v in np.linspace(low, high, steps)]
            bounds[name] = (low, high)
        else:
            raise _design_error(path, "a parameter needs values = [...] or low and high", column=where)
    if kind == "one_at_a_time":
        return one_at_a_time(base, values, as_scale=scales)
    if kind == "factorial":
        return factorial(values, as_scale=scales, base=base)
    if "n" not in head:
        raise _design_error(path, "a Latin hypercube needs n (number of runs)", column="design.n")
    missing = [p for p in params if p not in bounds]
    if missing:
        raise _design_error(path, "a Latin hypercube needs numeric low/high (or numeric values)", column=missing[0])
    return latin_hypercube(bounds, int(head["n"]), int(head.get("seed", 0)), as_scale=scales, base=base)
