"""One sweep run (a scenario with overrides, solved, reduced to metrics) and the executors that run many: serial,
local processes, a Dask cluster. Prepared inputs are cached by file stamps so that runs sharing data read it once."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from optiland.analysis.sweep_design import (
    DEFAULT_METRICS,
    DEFAULT_MP_CONTEXT,
    FAILED,
    INFEASIBLE,
    NO_PLAN,
    SERVICES,
    _plain,
)
from optiland.errors import InfeasibleError, InputError, Issue, NoPlanError, OptilandError
from optiland.io.catalog import Catalog, load_catalog, resolve_catalog_path
from optiland.io.inputs import Inputs, read_inputs
from optiland.io.scenario import Scenario
from optiland.mip.lifeline import die_with_parent
from optiland.model.problem import build_problem
from optiland.pipeline.results import Plan, make_plan
from optiland.pipeline.run import Prepared, solve_prepared, solver_options

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
(within 0.5 yuan per person); `gain_*` are totals of chosen minus current; `objective` (the service index) has one scale
for every run on the same parcels and catalog (the parcels' potential, optiland.pipeline.reference), so runs compare.
`run_seconds` (the worker's wall time for the run) is also known."""

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
    except InfeasibleError as exc:  # proven: no plan exists
        error = str(exc)
        status = INFEASIBLE
        if "villages_below_floor" in metrics:
            metrics["villages_below_floor"] = _villages_short(exc)
    except NoPlanError as exc:  # the time limit came first: nothing known about feasibility
        status, error = NO_PLAN, str(exc)
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
    # each worker dies with this process, whatever kills it (optiland.mip.lifeline): no orphan holding memory
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent,
                               initargs=(os.getpid(),))
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
