"""Sensitivity sweeps: a design of runs (one-at-a-time, factorial, Latin hypercube), solved serially, on local
processes or on a Dask cluster, with every finished run kept, and a summary (parameters ranked by effect, tornado and
spider plots).

    from optiland.analysis.sweep import one_at_a_time, sweep

    design = one_at_a_time(None, {"catalog.variants.fruit.*.net_income_per_mu": [0.9, 0.7, 0.5],
                                  "constraints.income_floor": [4500, 5000]},
                           as_scale=["catalog.variants.fruit.*.net_income_per_mu"])
    results = sweep("instances/huanjiang-demo/scenario.toml", design, executor="processes", out_dir="out/sweep")

A design is a pandas DataFrame: one row per run, a `run_id` (a short hash of the run's parameter values, so that a
resumed sweep recognises finished runs) and one column per varied dotted path (`Scenario.with_` paths; a path listed
in `as_scale` takes `{scale = value}`, a multiplier of the catalog figure). The results are tidy: one row per (run,
metric) with run_id, status, error, every varied parameter, metric and value. The module is callable:
`optiland.analysis.sweep(scenario, design, ...)` is `optiland.analysis.sweep.sweep(...)`.

Executors, measured with benchmarks/sweep_executors.py on 8 runs of a generated 100-parcel instance (one township,
3 villages, income floors 3,600 to 4,300 yuan; about 4.5 s per run with the default preset, HiGHS threads=1) on the
2-core development machine, with little other load (load average 0.7 to 1.4):

    executor                          wall     speed-up   sum of per-run times
    serial                            36.0 s   1.00x      36.0 s
    processes, 2 workers, spawn       22.6 s   1.59x      36.5 s
    processes, 2 workers, fork        21.4 s   1.68x      36.9 s
    Dask LocalCluster, 2 workers      27.1 s   1.33x      43.8 s   (cluster start-up, about 4 s, included)

With other engineers' jobs on the same cores (load average 2.3 to 3.0; floors 4,000 to 4,700, about 23 s per run):
serial 186 s, processes 137 s (1.36x), Dask 144 s (1.30x). Two one-thread solves on two cores take as long per run
as one alone (36.5 s against 36.0 s summed), whereas two solves with two threads each run about 4 times slower; so
each run solves with threads=1 and the default is local processes with one worker per core (`os.cpu_count()`). The
8 runs over 2 workers leave start-up and the last, unpaired runs as the gap to 2x. "spawn" is the default context
(safe when the calling process has threads: notebooks, Dask clients); "fork" saves the workers' import time.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import socket
import sys
import time
import tomllib
import traceback
import types
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import InfeasibleError, InputError, Issue, OptilandError
from optiland.io.catalog import Catalog, load_catalog, resolve_catalog_path
from optiland.io.inputs import Inputs, read_inputs
from optiland.io.scenario import CatalogConfig, Scenario, load_scenario
from optiland.model.problem import build_problem
from optiland.pipeline.results import Plan, make_plan, write_atomically
from optiland.pipeline.run import Prepared, solve_prepared, solver_options

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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
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


# --------------------------------------------------------------------------------------------------- one run


_CACHE_SIZE = 4
_catalogs: OrderedDict[tuple[Any, ...], Catalog] = OrderedDict()
_inputs: OrderedDict[tuple[Any, ...], Inputs] = OrderedDict()
_models: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_cache_stats = {"catalog_hits": 0, "catalog_misses": 0, "inputs_hits": 0, "inputs_misses": 0, "model_hits": 0,
                "model_misses": 0}


def cache_info() -> dict[str, int]:
    """Counts, in this process, of catalogs, inputs and built models made anew (misses) and reused (hits)."""
    return dict(_cache_stats)


def clear_cache() -> None:
    """Forget the catalogs and inputs this process has kept."""
    _catalogs.clear()
    _inputs.clear()
    _models.clear()
    for key in _cache_stats:
        _cache_stats[key] = 0


def _stamp(path: Path) -> tuple[str, int, int]:
    """A file's identity for the cache: path, size and modification time."""
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _remember(cache: OrderedDict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def prepare_cached(scenario: Scenario) -> Prepared:
    """`run.prepare` for a sweep worker: the catalog is reused while its folder and overrides are unchanged, and the
    parcels and villages (the expensive read, validation and reprojection) while their files, their settings and the
    catalog folder are unchanged; the problem (allowed set and targets) is derived anew for every run.
    """
    start = time.perf_counter()
    config = scenario.catalog
    folder = resolve_catalog_path(config.region, scenario.resolve(config.path) if config.path else None)
    files = tuple(_stamp(f) for f in sorted(folder.glob("*")) if f.suffix in {".toml", ".csv"})
    catalog_key = (files, json.dumps(_plain(config.overrides), sort_keys=True, default=str))
    catalog = _catalogs.get(catalog_key)
    if catalog is None:
        _cache_stats["catalog_misses"] += 1
        catalog = load_catalog(folder, overrides=config.overrides)
        _remember(_catalogs, catalog_key, catalog)
    else:
        _cache_stats["catalog_hits"] += 1
        _catalogs.move_to_end(catalog_key)
    inputs_key = (
        files,
        json.dumps(scenario.parcels.model_dump(mode="json"), sort_keys=True),
        json.dumps(scenario.villages.model_dump(mode="json"), sort_keys=True),
        _stamp(scenario.resolve(scenario.parcels.path)),
        _stamp(scenario.resolve(scenario.villages.path)),
        _stamp(scenario.source_path) if scenario.source_path else None,
    )
    inputs = _inputs.get(inputs_key)
    if inputs is None:
        _cache_stats["inputs_misses"] += 1
        inputs = read_inputs(scenario, catalog)
        _remember(_inputs, inputs_key, inputs)
    else:
        _cache_stats["inputs_hits"] += 1
        _inputs.move_to_end(inputs_key)
    problem = build_problem(scenario, catalog, inputs)
    return Prepared(scenario, catalog, inputs, problem, time.perf_counter() - start)


def _totals(plan: Plan, key: str) -> float:
    value = plan.run["totals"].get(key)
    return float(value) if value is not None else float("nan")


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")


METRICS: dict[str, Callable[[Plan], float]] = {
    "objective": lambda plan: _number(plan.run["objective"]["value"]),
    "bound": lambda plan: _number(plan.run["objective"]["bound"]),
    "gap": lambda plan: _number(plan.run["objective"]["gap"]),
    "income": lambda plan: _totals(plan, "income"),
    "villages_below_floor": lambda plan: _totals(plan, "villages_at_or_below_floor"),
    "establishment_cost": lambda plan: _totals(plan, "establishment_cost"),
    **{f"gain_{s}": (lambda plan, s=s: _totals(plan, f"gain_{s}")) for s in SERVICES},
    "min_income_per_capita": lambda plan: float(plan.villages["income_per_capita_after"].min()),
    "min_margin_per_capita": lambda plan: float((plan.villages["income_per_capita_after"]
                                                  - plan.villages["floor"]).min()),
    "herd": lambda plan: float(plan.villages["herd"].sum()),
    "ranger_posts": lambda plan: float(plan.villages["ranger_posts"].sum()),
    "solve_seconds": lambda plan: _number(plan.run["times"].get("solve")),
    "read_seconds": lambda plan: _number(plan.run["times"].get("read")),
    "build_seconds": lambda plan: _number(plan.run["times"].get("build")),
}
"""Metrics by name, each computed from a run's Plan. `villages_below_floor` counts villages at or below their floor
(within 0.5 yuan per person); `gain_*` are totals of chosen minus current; `solve_seconds` includes the service-index
normalisation solves. `run_seconds` (the worker's wall time for the run) is also known."""

Metric = str | Callable[[Plan], dict[str, float]]


def _metric_names(metrics: Sequence[Metric]) -> list[str]:
    names = []
    for metric in metrics:
        if isinstance(metric, str):
            if metric not in METRICS and metric != "run_seconds":
                known = ", ".join([*METRICS, "run_seconds"])
                raise InputError([Issue(f"unknown metric; known: {known}", value=metric)])
            names.append(metric)
        elif callable(metric):
            names.append(f"<{getattr(metric, '__qualname__', type(metric).__name__)}>")
        else:
            raise InputError([Issue("a metric is a name or a function Plan -> {name: value}", value=metric)])
    return names


def _allow_children() -> None:
    """Let this process start the solver's child process.

    Dask's worker processes are daemonic unless `distributed.worker.daemon` is false, and a daemonic process may not
    start children. The solver's child is itself daemonic, and the solver joins or kills it, so nothing is orphaned.
    """
    process = multiprocessing.current_process()
    if process.daemon:
        process._config["daemon"] = False  # type: ignore[attr-defined]


@dataclass
class RunTask:
    """One run of a sweep, as sent to a worker."""

    run_id: str
    scenario: Scenario
    overrides: dict[str, Any]
    solver: dict[str, Any] = field(default_factory=dict)
    backend: str = "auto"
    metrics: tuple[Metric, ...] = DEFAULT_METRICS


def _villages_short(exc: InfeasibleError) -> float:
    table = exc.shortfalls
    if isinstance(table, pd.DataFrame) and not table.empty and "family" in table.columns:
        return float(table.loc[table["family"] == "income_floor", "village"].nunique())
    return float("nan")


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def execute(task: RunTask) -> dict[str, Any]:
    """Solve one run and measure it; never raises for a failing run (status "failed" with the error text).

    An infeasible run has status "infeasible", NaN metrics, the diagnosis as its error text, and
    `villages_below_floor` = the number of villages the diagnosis finds short of their floor.
    """
    _allow_children()
    start = time.perf_counter()
    names = [m for m in task.metrics if isinstance(m, str)]
    metrics: dict[str, float] = {name: float("nan") for name in names}
    error = None
    try:
        scenario = task.scenario.with_(**task.overrides) if task.overrides else task.scenario
        prepared = prepare_cached(scenario)
        options = solver_options(prepared.scenario, **task.solver)
        # keyed by the inputs object itself (kept alive beside the model, so its id cannot be reused)
        model_key = (id(prepared.inputs), prepared.catalog.version, task.backend)
        built = _models[model_key][1] if model_key in _models else None
        reused_before = built.reused if built is not None else 0
        outcome = solve_prepared(prepared, options, task.backend, reuse=built)
        reused = outcome.model is built and built is not None and built.reused > reused_before
        _cache_stats["model_hits" if reused else "model_misses"] += 1
        _remember(_models, model_key, (prepared.inputs, outcome.model))
        plan = make_plan(outcome)
        status = outcome.result.status.value
        for metric in task.metrics:
            if isinstance(metric, str):
                if metric in METRICS:
                    metrics[metric] = float(METRICS[metric](plan))
            else:
                metrics.update({str(k): float(v) for k, v in metric(plan).items()})
    except InfeasibleError as exc:
        error = str(exc)
        if error.startswith("no plan"):
            status = NO_PLAN
        else:
            status = INFEASIBLE
            if "villages_below_floor" in metrics:
                metrics["villages_below_floor"] = _villages_short(exc)
    except Exception as exc:  # noqa: BLE001 - a failing run is a result of the sweep
        status, error = FAILED, _error_text(exc)
    if "run_seconds" in metrics:
        metrics["run_seconds"] = time.perf_counter() - start
    return {"run_id": task.run_id, "status": status, "error": error, "metrics": metrics,
            "seconds": time.perf_counter() - start, "worker": f"{socket.gethostname()}:{os.getpid()}"}


def _failure(task: RunTask, exc: BaseException) -> dict[str, Any]:
    """The record of a run whose worker failed (not the run itself: a lost worker, a broken pool)."""
    names = [m for m in task.metrics if isinstance(m, str)]
    return {"run_id": task.run_id, "status": FAILED, "error": f"worker failed: {_error_text(exc)}",
            "metrics": {name: float("nan") for name in names}, "seconds": float("nan"), "worker": None}


# --------------------------------------------------------------------------------------------------- executors


def _run_serial(tasks: list[RunTask], workers: int, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield execute(task)


def _run_processes(tasks: list[RunTask], workers: int, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    context = multiprocessing.get_context(options.get("mp_context") or DEFAULT_MP_CONTEXT)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    finished = False
    try:
        futures = {pool.submit(execute, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool: record it, go on
                record = _failure(futures[future], exc)
            yield record
        finished = True
    finally:
        if not finished:  # interrupted: stop the runs in flight (finished ones are already written)
            processes = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
        pool.shutdown(wait=True)


def _run_dask(tasks: list[RunTask], workers: int, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from distributed import as_completed as dask_completed

    client = options["client"]
    futures = {client.submit(execute, task, key=f"optiland-run-{task.run_id}-{os.getpid()}", pure=False): task
               for task in tasks}
    finished = False
    try:
        for future in dask_completed(list(futures)):
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: record it, go on
                record = _failure(futures[future], exc)
            yield record
        finished = True
    finally:
        if not finished:
            client.cancel(list(futures))


def local_cluster(workers: int = 2) -> Any:
    """A Dask client on a LocalCluster of `workers` processes with one thread each (workers not daemonic, so that
    each may start the solver's child process)."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


def connect(address: str, timeout: float = 30.0) -> Any:
    """A Dask client connected to a running scheduler ("tcp://host:8786")."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise OptilandError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None


def default_workers() -> int:
    """One worker per core (see the module docstring for the measurement)."""
    return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------------- sweep


class _Progress:
    """A rich progress bar: runs done of all, failed, infeasible, time elapsed and left."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.bar = None
        if not enabled or total == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("failed {task.fields[failed]}"),
                            TextColumn("infeasible {task.fields[infeasible]}"),
                            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                            console=Console(stderr=True))
        self.task = self.bar.add_task("runs", total=total, completed=done, failed=0, infeasible=0)
        self.failed = self.infeasible = 0
        self.bar.start()

    def advance(self, status: str) -> None:
        if self.bar is None:
            return
        self.failed += status == FAILED
        self.infeasible += status == INFEASIBLE
        self.bar.update(self.task, advance=1, failed=self.failed, infeasible=self.infeasible)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _kind_of(design: pd.DataFrame, column: str) -> str:
    values = [v for v in design[column] if _plain(v) is not None]
    numeric = all(isinstance(_plain(v), (int, float)) and not isinstance(_plain(v), bool) for v in values)
    return "number" if numeric else "text"


def _cell(value: Any, kind: str) -> Any:
    value = _plain(value)
    if kind == "number":
        return float("nan") if value is None else float(value)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _tidy(record: dict[str, Any], row: dict[str, Any], kinds: dict[str, str]) -> pd.DataFrame:
    """One run's rows of the tidy table (a run without any metric value keeps one row, metric None)."""
    metrics = record["metrics"] or {None: float("nan")}
    frame = pd.DataFrame({
        RUN_ID: [record["run_id"]] * len(metrics),
        "status": [record["status"]] * len(metrics),
        "error": pd.Series([record["error"]] * len(metrics), dtype=object),
        **{p: [_cell(row[p], kinds[p])] * len(metrics) for p in kinds},
        "metric": list(metrics),
        "value": np.array([metrics[m] for m in metrics], dtype=float),
    })
    return frame


def _write_file(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary name beside PATH, then rename it into place (whole or not at all)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fingerprint(scenario: Scenario, solver: dict[str, Any], backend: str, metrics: list[str]) -> str:
    data = {"scenario": scenario.to_dict(), "source": str(scenario.source_path), "solver": solver,
            "backend": backend, "metrics": metrics}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _compose(scenario: Scenario, path: str, value: Any) -> Any:
    """A multiplier on a catalog figure the scenario already overrides by the same key multiplies that figure."""
    parts = path.split(".")
    if parts[0] != "catalog" or len(parts) < 2 or parts[1] in CatalogConfig.model_fields:
        return value
    old = scenario.catalog.overrides.get(".".join(parts[1:]))
    if not isinstance(value, dict) or old is None:
        return value
    if isinstance(old, dict):
        return {"scale": float(old["scale"]) * float(value["scale"])}
    return float(old) * float(value["scale"])


def overrides_for(scenario: Scenario, row: dict[str, Any], as_scale: Iterable[str] = ()) -> dict[str, Any]:
    """The `Scenario.with_` changes of one design row (a NaN/None value leaves the scenario's own value)."""
    changes = {}
    for path, value in row.items():
        if path == RUN_ID:
            continue
        given = override_value(path, value, as_scale)
        if given is not None:
            changes[path] = _compose(scenario, path, given)
    return changes


def _finished_runs(runs_dir: Path, wanted: set[str], retry_failed: bool) -> dict[str, pd.DataFrame]:
    done = {}
    for file in sorted(runs_dir.glob("*.parquet")):
        if file.stem not in wanted:
            continue
        try:
            frame = pd.read_parquet(file)
        except Exception:  # noqa: BLE001 - an unreadable file is a run to do again
            continue
        if retry_failed and (frame["status"] == FAILED).any():
            continue
        done[file.stem] = frame
    return done


def _open_out_dir(out_dir: Path, fingerprint: str) -> dict[str, Any]:
    """Make OUT a sweep folder, or check that it holds this very sweep (to resume it)."""
    meta_path = out_dir / "sweep.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("fingerprint") != fingerprint:
            raise OptilandError(f"{out_dir} holds runs of another sweep (its scenario, solver options or metrics "
                                "differ); choose another folder or remove it")
        return meta
    if out_dir.exists() and any(p.name != "runs" for p in out_dir.iterdir()):
        raise OptilandError(f"{out_dir} exists and is not a sweep folder (no sweep.json)")
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    return {}


def sweep(scenario: Scenario | str | Path, design: pd.DataFrame, *, executor: Any = "processes",
          workers: int | None = None, out_dir: str | Path | None = None, metrics: Sequence[Metric] = DEFAULT_METRICS,
          as_scale: Iterable[str] | None = None, backend: str = "auto", progress: bool = True,
          retry_failed: bool = True, on_run: Callable[[pd.DataFrame], None] | None = None,
          mp_context: str | None = None, plots: bool = True, **solver_overrides: Any) -> pd.DataFrame:
    """Solve every run of a design and return the tidy results (run_id, status, error, parameters, metric, value).

    executor: "serial"; "processes" (a ProcessPoolExecutor of `workers`, default one per core, `mp_context`
    "spawn" by default or "fork"); "dask" (a LocalCluster of `workers`, default 2, one thread each) or a
    `distributed.Client`. Each run solves with HiGHS threads=1 unless `threads` is given. `solver_overrides`
    (time_limit, mip_rel_gap, preset, ...) apply to every run, as `run.solver_options` does.

    With `out_dir`, each finished run is written at once to out_dir/runs/<run_id>.parquet; a sweep run again into
    the same folder skips the runs already there (and runs again those that failed, unless `retry_failed` is
    false); then results.parquet, results.csv, design.csv, ranking.csv, sweep.json and plots/ are written.
    `on_run` is called with each finished run's rows (after they are written).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    scales = sorted(set(as_scale if as_scale is not None else design.attrs.get("as_scale", ())))
    params = parameters_of(design)
    attrs = {"kind": design.attrs.get("kind"), "base": design.attrs.get("base", {}), "as_scale": scales}
    rows = [{p: row[p] for p in params} for row in design.to_dict("records")]
    design = pd.DataFrame(rows, columns=params)
    design.insert(0, RUN_ID, [run_id_of(row, scales) for row in rows])
    design = design.drop_duplicates(RUN_ID).reset_index(drop=True)
    design.attrs.update(attrs)
    kinds = {p: _kind_of(design, p) for p in params}
    metrics = tuple(metrics)
    metric_names = _metric_names(metrics)
    solver = {"threads": 1, **{k: v for k, v in solver_overrides.items() if v is not None}}
    fingerprint = _fingerprint(scenario, solver, backend, metric_names)

    out = Path(out_dir) if out_dir is not None else None
    done: dict[str, pd.DataFrame] = {}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if out is not None:
        previous = _open_out_dir(out, fingerprint)
        meta = {"fingerprint": fingerprint, "scenario_path": str(scenario.source_path or ""),
                "created": previous.get("created", started),
                **attrs, "parameters": params, "metrics": metric_names, "solver": solver, "backend": backend}
        _write_file(out / "sweep.json", lambda p: p.write_text(json.dumps(meta, indent=2, default=str),
                                                                 encoding="utf-8"))
        (out / "runs").mkdir(exist_ok=True)
        done = _finished_runs(out / "runs", set(design[RUN_ID]), retry_failed)

    by_id = {r[RUN_ID]: {p: r[p] for p in params} for r in design.to_dict("records")}
    tasks = [RunTask(run_id, scenario, overrides_for(scenario, by_id[run_id], scales), solver, backend, metrics)
             for run_id in design[RUN_ID] if run_id not in done]
    name, workers, options, cleanup = _choose_executor(executor, workers, len(tasks), mp_context)
    results = dict(done)
    clock = time.perf_counter()
    bar = _Progress(len(design), len(done), progress)
    try:
        runner = {"serial": _run_serial, "processes": _run_processes, "dask": _run_dask}[name]
        for record in runner(tasks, workers, options):
            frame = _tidy(record, by_id[record["run_id"]], kinds)
            if out is not None:
                _write_file(out / "runs" / f"{record['run_id']}.parquet", lambda p, f=frame: f.to_parquet(p))
            results[record["run_id"]] = frame
            bar.advance(record["status"])
            if on_run is not None:
                on_run(frame)
    finally:
        bar.close()
        cleanup()
    seconds = time.perf_counter() - clock

    table = _assemble(design, results, params)
    table.attrs.update(attrs)
    if out is not None:
        statuses = table.drop_duplicates(RUN_ID)["status"].value_counts().to_dict()
        meta.update(finished=datetime.now(UTC).isoformat(timespec="seconds"), executor=name, workers=workers,
                    runs=len(design), solved_now=len(tasks), resumed=len(done), seconds=round(seconds, 2),
                    statuses=statuses)
        write_outputs(out, table, design, scenario=scenario, plots=plots)
        _write_file(out / "sweep.json", lambda p: p.write_text(json.dumps(meta, indent=2, default=str),
                                                                 encoding="utf-8"))
    return table


def _choose_executor(executor: Any, workers: int | None, n_tasks: int,
                     mp_context: str | None) -> tuple[str, int, dict[str, Any], Callable[[], None]]:
    """The executor's name, worker count, options and a cleanup to run at the end."""
    if executor is None:
        executor = "processes"
    if not isinstance(executor, str):
        if hasattr(executor, "submit") and hasattr(executor, "cancel"):
            count = len(getattr(executor, "scheduler_info", dict)().get("workers", {})) or (workers or 1)
            return "dask", count, {"client": executor}, lambda: None
        raise InputError([Issue(f"unknown executor; known: {', '.join(EXECUTORS)} or a distributed.Client",
                                value=repr(executor))])
    if executor not in EXECUTORS:
        raise InputError([Issue(f"unknown executor; known: {', '.join(EXECUTORS)} or a distributed.Client",
                                value=executor)])
    if executor == "dask":
        count = workers or 2
        if n_tasks == 0:
            return "serial", 1, {}, lambda: None
        client = local_cluster(count)

        def close() -> None:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()

        return "dask", count, {"client": client}, close
    if executor == "processes":
        count = min(workers or default_workers(), max(n_tasks, 1))
        if count <= 1 and workers is None:
            return "serial", 1, {}, lambda: None
        return "processes", count, {"mp_context": mp_context}, lambda: None
    return "serial", 1, {}, lambda: None


def _assemble(design: pd.DataFrame, results: dict[str, pd.DataFrame], params: list[str]) -> pd.DataFrame:
    frames = [results[run_id] for run_id in design[RUN_ID] if run_id in results]
    columns = [*TIDY_COLUMNS, *params, "metric", "value"]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    table["error"] = table["error"].astype(object).where(table["error"].notna(), None)
    return table[columns]


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """The tidy results of a sweep folder (results.parquet, or the runs written so far if it has not finished)."""
    out = Path(out_dir)
    meta = json.loads((out / "sweep.json").read_text(encoding="utf-8")) if (out / "sweep.json").is_file() else {}
    if (out / "results.parquet").is_file():
        table = pd.read_parquet(out / "results.parquet")
    else:
        frames = [pd.read_parquet(f) for f in sorted((out / "runs").glob("*.parquet"))]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "error" in table.columns:
        table["error"] = table["error"].astype(object).where(table["error"].notna(), None)
    table.attrs.update({k: meta[k] for k in ("kind", "base", "as_scale") if k in meta})
    return table


# --------------------------------------------------------------------------------------------------- summary


def write_outputs(out: Path, table: pd.DataFrame, design: pd.DataFrame, *, scenario: Scenario | None = None,
                  plots: bool = True) -> pd.DataFrame:
    """Write results.parquet, results.csv (UTF-8 with BOM), design.csv, ranking.csv and plots/; return the ranking."""
    _write_file(out / "results.parquet", lambda p: table.to_parquet(p, index=False))
    _write_file(out / "results.csv", lambda p: table.to_csv(p, index=False, encoding="utf-8-sig"))
    _write_file(out / "design.csv", lambda p: design.to_csv(p, index=False, encoding="utf-8-sig"))
    ranking = rank_parameters(table)
    _write_file(out / "ranking.csv", lambda p: ranking.to_csv(p, index=False, encoding="utf-8-sig"))
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


class _CallableModule(types.ModuleType):
    """`optiland.analysis.sweep(...)` calls `optiland.analysis.sweep.sweep(...)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
sweep_module = sys.modules[__name__]
