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
import sys
import time
import types
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.analysis.sweep_design import (
    DEFAULT_METRICS,
    EXECUTORS,
    FAILED,
    INFEASIBLE,
    KINDS,
    NO_PLAN,
    RUN_ID,
    TIDY_COLUMNS,
    _plain,
    factorial,
    latin_hypercube,
    load_design,
    one_at_a_time,
    override_value,
    parameters_of,
    run_id_of,
)
from optiland.analysis.sweep_run import (
    Metric,
    RunTask,
    _metric_names,
    _run_dask,
    _run_processes,
    _run_serial,
    cache_info,
    clear_cache,
    connect,
    default_workers,
    local_cluster,
)
from optiland.analysis.sweep_summary import (
    _write_file,
    plot_summary,
    rank_parameters,
    wide,
    write_outputs,
)
from optiland.errors import InputError, Issue, OptilandError
from optiland.io.inputs import input_hashes
from optiland.io.scenario import CatalogConfig, Scenario, load_scenario

__all__ = ["DEFAULT_METRICS", "FAILED", "INFEASIBLE", "KINDS", "NO_PLAN", "cache_info", "clear_cache", "connect",
           "default_workers", "factorial", "latin_hypercube", "load_design", "load_results", "local_cluster",
           "one_at_a_time", "override_value", "parameters_of", "plot_summary", "rank_parameters", "run_id_of",
           "sweep", "sweep_module", "wide", "write_outputs"]

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


SWEEP_ENTRIES = ("runs", "results.parquet", "results.csv", "design.csv", "ranking.csv", "plots", "sweep.json")
"""What a sweep folder holds (optiland.pipeline.outdir: anything else in it is not optiland's)."""


def _open_out_dir(out_dir: Path, fingerprint: str, inputs: dict[str, str]) -> dict[str, Any]:
    """Make OUT a sweep folder, or check that it holds this very sweep, computed from these very input files (to
    resume it): a file changed since its runs were solved is named and the sweep refused."""
    from optiland.pipeline.outdir import claim_folder, foreign_entries, read_marker, write_marker

    meta_path = out_dir / "sweep.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("fingerprint") != fingerprint:
            raise OptilandError(f"{out_dir} holds runs of another sweep (its scenario, solver options or metrics "
                                "differ); choose another folder or remove it")
        before = meta.get("inputs")
        finished = any((out_dir / "runs").glob("*.parquet"))
        if before is not None and finished:
            changed = sorted(k for k in set(before) | set(inputs) if before.get(k) != inputs.get(k))
            if changed:
                raise OptilandError(
                    f"{out_dir} holds runs computed from other data: {', '.join(changed)} changed since they were "
                    f"solved (sha256 differs); resuming would mix results of different inputs. Choose another "
                    f"folder, or remove {out_dir / 'runs'} to solve every run again")
        if read_marker(out_dir) is None:  # a sweep folder of an earlier release
            write_marker(out_dir, "sweep", SWEEP_ENTRIES)
        return meta
    if out_dir.is_dir():
        foreign = [f for f in foreign_entries(out_dir) if f.rstrip("/") not in SWEEP_ENTRIES]
        if foreign:
            raise OptilandError(f"{out_dir} exists and is not a sweep folder (no sweep.json; it holds "
                                f"{', '.join(foreign[:5])}); choose a new or empty folder")
    claim_folder(out_dir, "sweep", SWEEP_ENTRIES, force=True)
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
        inputs = input_hashes(scenario)
        previous = _open_out_dir(out, fingerprint, inputs)
        meta = {"fingerprint": fingerprint, "inputs": inputs, "scenario_path": str(scenario.source_path or ""),
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



class _CallableModule(types.ModuleType):
    """`optiland.analysis.sweep(...)` calls `optiland.analysis.sweep.sweep(...)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
sweep_module = sys.modules[__name__]
