"""The `optiland` command: solve, validate, check, explain, zone, generate, sweep, pareto, report, catalog show."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from optiland.errors import InfeasibleError, OptilandError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Exact land-use optimisation for ecological-industry planning.")
catalog_app = typer.Typer(no_args_is_help=True, help="Inspect region catalogs.")
app.add_typer(catalog_app, name="catalog")
import_app = typer.Typer(no_args_is_help=True, help="Turn other tools' inputs and solutions into optiland's.")
app.add_typer(import_app, name="import")
console = Console()
err = Console(stderr=True)

ScenarioArg = Annotated[Path, typer.Argument(help="scenario TOML file")]
OutOpt = Annotated[Path, typer.Option("--out", help="output folder (written whole or not at all)")]
BACKEND_HELP = "pyomo | matrix | auto (matrix above 20,000 allowed parcel-option rows)"
DB_HELP = "PostGIS database postgresql://user@host[:port]/db (password from PGPASSWORD or .pgpass)"
TABLE_HELP = "with --db: read the parcels from this table ([schema.]name) instead of the scenario's file"


@contextmanager
def _elapsed(description: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the step's name and the time elapsed; yields a function that renames the step."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda text: bar.update(task, description=text)


def _fail(exc: Exception, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
    raise typer.Exit(code)


@app.command()
def solve(scenario: ScenarioArg, out: OutOpt,
          time_limit: Annotated[float | None, typer.Option(help="seconds, kept even if HiGHS overruns")] = None,
          gap: Annotated[float | None, typer.Option(help="relative MIP gap")] = None,
          backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
          threads: Annotated[int | None, typer.Option(help="HiGHS threads")] = None,
          strategy: Annotated[str | None, typer.Option(help="auto (LP relaxation, repair, then MIP if needed) | "
                                                            "mip (HiGHS's MIP at once) | decompose (township by "
                                                            "township, for counties and regions)")] = None,
          workers: Annotated[int, typer.Option(help="with --strategy decompose: local processes")] = 2,
          dask: Annotated[str | None, typer.Option(help="with --strategy decompose: a Dask scheduler address "
                                                        "(tcp://host:8786) to run the townships on")] = None,
          verbose: Annotated[bool, typer.Option("--verbose", help="HiGHS's log on stderr")] = False,
          from_front: Annotated[Path | None, typer.Option("--from-front", help="a folder written by pareto: "
                                                          "write the plan of one of its points")] = None,
          pick: Annotated[str, typer.Option(help="with --from-front: knee | ideal | a point id")] = "knee",
          report: Annotated[bool, typer.Option("--report", help="also write OUT/report/ (see `optiland report`)")
                            ] = False,
          lang: Annotated[str, typer.Option(help="with --report: zh | en")] = "zh",
          db: Annotated[str | None, typer.Option("--db", help=DB_HELP + "; the plan is written to its tables "
                                                 "plan, plan_villages, plan_townships, plan_run too")] = None,
          table: Annotated[str | None, typer.Option("--table", help=TABLE_HELP)] = None,
          prefix: Annotated[str, typer.Option(help="with --db: prefix of the plan's table names")] = "") -> None:
    """Solve a scenario and write plan.gpkg, villages.csv, townships.csv and run.json to OUT."""
    from optiland.postgis import with_database
    from optiland.results import make_plan
    from optiland.run import prepare, solve_prepared, solver_options

    try:
        scenario = with_database(scenario, db, table)
        if strategy == "decompose":
            from optiland.run import solve_by_township

            with _elapsed("township decomposition") as status:
                outcome = solve_by_township(scenario, workers=workers, dask_address=dask,
                                            progress=status,
                                            time_limit=time_limit, mip_rel_gap=gap, threads=threads,
                                            log_file="-" if verbose else None)
        else:
            prepared = prepare(scenario)
            options = solver_options(prepared.scenario, time_limit=time_limit, mip_rel_gap=gap, threads=threads,
                                     strategy=strategy, log_file="-" if verbose else None)
            with _elapsed("solving"):
                if from_front is not None:
                    from optiland.pareto import outcome_from_front

                    outcome, point = outcome_from_front(prepared, from_front, pick, options)
                else:
                    outcome = solve_prepared(prepared, options, backend)
        plan = make_plan(outcome)
        if from_front is not None:
            plan.run["front"] = point
        if db:  # the database first (one transaction), then the folder: a failure writes neither
            from optiland.postgis import without_password, write_plan_tables

            write_plan_tables(without_password(db), plan, prefix=prefix)
        plan.write(out)
    except InfeasibleError as exc:
        _fail(exc, 3)
    except OptilandError as exc:
        _fail(exc)
    print_summary(plan)
    console.print(f"written to {out}")
    if report:
        from optiland.report import write_report

        try:
            folder = write_report(out, lang=lang, front_dir=from_front)
        except OptilandError as exc:
            _fail(OptilandError(f"the plan is written to {out}, but not its report: {exc}"))
        console.print(f"report written to {folder / 'index.html'}")


def print_summary(plan: object) -> None:
    """Area by option per township, villages at or below their floor, objective, bound, gap, times."""
    run = plan.run  # type: ignore[attr-defined]
    parcels: pd.DataFrame = plan.parcels  # type: ignore[attr-defined]
    villages: pd.DataFrame = plan.villages  # type: ignore[attr-defined]
    areas = parcels.pivot_table(index="township", columns="option", values="area_mu", aggfunc="sum", fill_value=0)
    table = Table(title="area by option (mu)")
    table.add_column("township")
    for option in areas.columns:
        table.add_column(str(option), justify="right")
    for township, row in areas.iterrows():
        table.add_row(str(township), *[f"{v:,.0f}" for v in row])
    console.print(table)
    low = villages[villages["at_or_below_floor"]]
    console.print(f"villages at or below their floor: {len(low)} of {len(villages)}"
                  + (f" ({', '.join(low['village'])})" if len(low) else ""))
    objective = run["objective"]
    gap = objective["gap"]
    console.print(f"objective {objective['name']} ({objective['sense']}): {objective['value']:.6g}; "
                  f"bound {objective['bound']:.6g}; gap {gap if gap is None else f'{gap:.2e}'}; "
                  f"status {run['status']}")
    times = run["times"]
    console.print("times (s): " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))


@app.command()
def validate(scenario: ScenarioArg,
             db: Annotated[str | None, typer.Option("--db", help=DB_HELP)] = None,
             table: Annotated[str | None, typer.Option("--table", help=TABLE_HELP)] = None) -> None:
    """Check the scenario, catalog and inputs without solving."""
    from optiland.postgis import with_database
    from optiland.run import prepare

    try:
        prepared = prepare(with_database(scenario, db, table))
    except OptilandError as exc:
        _fail(exc)
    problem = prepared.problem
    console.print(f"ok: {problem.n_parcels:,} parcels, {len(problem.villages)} villages, "
                  f"{len(problem.townships)} townships, {len(problem.allowed):,} allowed (parcel, option, variant) "
                  f"rows; catalog {prepared.catalog.name} {prepared.catalog.version}; {prepared.inputs.crs_note}")


@app.command()
def check(out_dir: Annotated[Path, typer.Argument(help="a folder written by solve")]) -> None:
    """Recompute every constraint from the results, scenario and catalog (no solver); non-zero exit on violations."""
    from optiland.check import check_outdir
    from optiland.marxan import score_outdir

    try:
        violations = check_outdir(out_dir)
    except OptilandError as exc:
        _fail(exc)
    try:
        score = score_outdir(out_dir)
    except OptilandError as exc:  # e.g. a parcel given a zone it may not take: the violations say which
        score = None
        err.print(f"Marxan score not computed: {exc}", highlight=False)
    if score is not None:
        console.print("Marxan score: " + ", ".join(f"{k} {score[k]:,.6g}" for k in (
            "cost", "blm_x_boundary", "spf_x_shortfall", "cost_threshold_penalty", "score"))
            + f" (boundary {score['boundary_length']:,.6g}, targets missed {score['targets_missed']})")
    if violations:
        for v in violations:
            err.print(f"[red]{v.family}[/] {v.key}: {v.message}", highlight=False)
        err.print(f"{len(violations)} violation(s)")
        raise typer.Exit(1)
    console.print("ok: every constraint holds")


@import_app.command("marxan")
def import_marxan(input_dat: Annotated[Path, typer.Argument(help="Marxan input.dat (Marxan or Marxan with Zones)")],
                  out: OutOpt) -> None:
    """Write a Marxan input set as an optiland instance (scenario.toml: minimum cost + BLM x boundary, every
    target met)."""
    from optiland.marxan import read_marxan, totals, write_instance
    from optiland.results import write_atomically

    try:
        data = read_marxan(input_dat)
        write_atomically(out, lambda folder: write_instance(data, folder))
    except OptilandError as exc:
        _fail(exc)
    figures = totals(data)
    console.print(f"{len(data.units):,} planning units, {len(data.features)} features, zones "
                  f"{', '.join(data.zones)}; cost {figures['cost']:,.6g}, amount {figures['amount']:,.6g}, "
                  f"shared boundary {figures['shared_boundary']:,.6g}, outer {figures['outer_boundary']:,.6g}; "
                  f"BLM {data.blm:g}")
    for note in data.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"instance written to {out} (solve it: optiland solve {out / 'scenario.toml'} --out DIR)")


@import_app.command("marxan-solution")
def import_marxan_solution(
        solution: Annotated[Path, typer.Argument(help="a Marxan solution file (output_best, output_r00001...)")],
        instance: Annotated[Path, typer.Option("--instance", help="the folder `optiland import marxan` wrote")],
        out: OutOpt) -> None:
    """Write a Marxan solution as an optiland plan folder (for `optiland check`) and print its score terms."""
    from optiland.marxan import solution_plan

    try:
        score = solution_plan(instance, solution, out)
    except OptilandError as exc:
        _fail(exc)
    console.print("Marxan score: " + ", ".join(f"{k} {score[k]:,.6g}" for k in (
        "cost", "blm_x_boundary", "spf_x_shortfall", "cost_threshold_penalty", "score")))
    console.print(f"plan written to {out} (check it: optiland check {out})")


@app.command("calibrate-blm")
def calibrate_blm(scenario: ScenarioArg, out: OutOpt,
                  weights: Annotated[str | None, typer.Option(help="sweep weights, comma-separated (default: 0 and "
                                                              "--points weights from a tenth to ten times Cohon's)")
                                     ] = None,
                  points: Annotated[int, typer.Option(help="sweep points around Cohon's penalty")] = 9,
                  time_limit: Annotated[float | None, typer.Option(help="seconds per solve")] = None,
                  gap: Annotated[float | None, typer.Option(help="relative MIP gap")] = None) -> None:
    """Cohon's boundary penalty (prioritizr's calibrate_cohon_penalty) and a weight sweep: calibration.json,
    sweep.csv and sweep.png (objective against boundary) in OUT."""
    from optiland.calibrate import calibrate, write_calibration
    from optiland.results import write_atomically

    try:
        given = [float(w) for w in weights.split(",")] if weights else None
        with console.status("calibrating"):
            result = calibrate(scenario, given, points, time_limit=time_limit, mip_rel_gap=gap)
        write_atomically(out, lambda folder: write_calibration(result, folder))
    except ValueError as exc:
        _fail(OptilandError(f"--weights wants numbers separated by commas: {exc}"))
    except InfeasibleError as exc:
        _fail(exc, 3)
    except OptilandError as exc:
        _fail(exc)
    for anchor in (result.anchor_objective, result.anchor_boundary):
        console.print(f"{anchor.kind}: {result.objective} {anchor.objective:,.6g}, boundary {anchor.boundary:,.6g}")
    console.print(f"Cohon's boundary penalty (BLM): {result.blm:.6g}")
    console.print(f"written to {out} (calibration.json, sweep.csv, sweep.png)")


@app.command()
def explain(scenario: ScenarioArg, parcel_id: Annotated[str, typer.Argument(help="parcel id")]) -> None:
    """List each option and variant for one parcel and why it is allowed or not."""
    from optiland.problem import explain as explain_parcel
    from optiland.run import prepare

    try:
        prepared = prepare(scenario)
        table = explain_parcel((prepared.catalog, prepared.problem.parcels), parcel_id)
    except OptilandError as exc:
        _fail(exc)
    parcel = prepared.problem.parcels.set_index("parcel_id").loc[parcel_id]
    console.print(f"parcel {parcel_id}: village {parcel['village']}, land use {parcel['land_use']}, "
                  f"slope {parcel['slope_deg']:g} deg, grade {parcel['grade']}, "
                  + "".join(f"{name} {parcel[name]}, " for name in prepared.catalog.site_attributes) +
                  f"red line {bool(parcel['red_line'])}, basic farmland {bool(parcel['basic_farmland'])}, "
                  f"{parcel['area_mu']:.2f} mu")
    out = Table()
    for column in ("option", "variant", "allowed", "why"):
        out.add_column(column)
    for row in table.itertuples(index=False):
        out.add_row(row.option, row.variant, "yes" if row.allowed else "no", row.why)
    console.print(out)
    locks = prepared.problem.spatial.locks if prepared.problem.spatial is not None else None
    if locks is not None:
        for lock in locks[locks["parcel_id"] == parcel_id].itertuples(index=False):
            console.print(f"locked {'in to' if lock.locked_in else 'out of'} {lock.option} "
                          f"(lock table line {lock.line})")


@app.command("zone")
def zone_command(
        plan_dir: Annotated[Path, typer.Argument(help="a folder written by solve, or a folder of them (a region)")],
        out: OutOpt,
        mmu: Annotated[float, typer.Option(help="minimum mapping unit in mu (smaller patches merge or are flagged)")
                       ] = 15.0,
        rules: Annotated[Path | None, typer.Option(help="folder with zone_rules.csv and zones.csv (default: the "
                                                        "plan's region catalog)")] = None,
        lang: Annotated[str, typer.Option(help="map labels: en | zh")] = "en",
        db: Annotated[str | None, typer.Option("--db", help="also write tables zones, zone_stats, parcel_zones to "
                                               "this PostGIS database (postgresql://user@host/db; the password "
                                               "from PGPASSWORD or .pgpass), in one transaction")] = None,
        prefix: Annotated[str, typer.Option(help="with --db: table name prefix")] = "") -> None:
    """Ecological-space zones of a plan: DIR/zones.gpkg (zones, zone_stats, parcel_zones), zones.png, zoning.json."""
    from optiland.postgis import redact
    from optiland.zoning import zone

    try:
        zoning = zone(plan_dir, out, mmu_mu=mmu, rules=rules, lang=lang, db=db, prefix=prefix)
    except OptilandError as exc:
        _fail(exc)
    record = zoning.record
    console.print(f"{record['parcels']:,} parcels in {record['patches']:,} patches ({record['merge_rounds']} merge "
                  f"rounds, {record['parcels_merged']:,} parcels merged, {record['patches_below_mmu']} patches below "
                  f"{mmu:g} mu kept and flagged)")
    county = zoning.stats[zoning.stats["level"] == "county"]
    table = Table(title="zones per county")
    for column in ("county", "zone", "area_ha", "share", "patches", "mean_patch_mu", "compactness"):
        table.add_column(column, justify="left" if column in ("county", "zone") else "right")
    for row in county.itertuples(index=False):
        table.add_row(row.county, row.zone, f"{row.area_ha:,.1f}", f"{row.share:.1%}", f"{row.patches:,}",
                      f"{row.mean_patch_mu:,.1f}", f"{row.compactness:.3f}")
    console.print(table)
    console.print("times (s): " + ", ".join(f"{k} {v:.2f}" for k, v in record["times"].items()))
    console.print(f"written to {out} (zones.gpkg, zones.png, zoning.json)"
                  + (f" and to {redact(db)}" if db else ""))


@app.command()
def generate(parcels: Annotated[int, typer.Option(help="number of parcels")],
             out: OutOpt,
             townships: Annotated[int, typer.Option(help="number of townships")] = 1,
             villages: Annotated[int, typer.Option(help="number of villages")] = 12,
             seed: Annotated[int, typer.Option(help="random seed")] = 2020,
             region: Annotated[str | None, typer.Option(help="region catalog whose [generate] table is drawn "
                                                             "(default: models/defaults.toml)")] = None) -> None:
    """Write a synthetic instance (parcels.gpkg, villages.csv, scenario.toml) to OUT."""
    from optiland.generate import generate_instance
    from optiland.results import write_atomically

    if out.exists() and any(out.iterdir()):
        _fail(OptilandError(f"{out} exists and is not empty"))
    try:
        write_atomically(out, lambda tmp: generate_instance(parcels, townships, villages, seed, tmp,
                                                                     region=region))
    except OptilandError as exc:
        _fail(exc)
    console.print(f"instance written to {out} (scenario: {out / 'scenario.toml'})")


@app.command("sweep")
def sweep_command(
        scenario: ScenarioArg,
        design: Annotated[Path, typer.Option("--design", help="design TOML file: a design table and a parameters "
                                                              "table per dotted path (README, Sensitivity sweeps)")],
        out: Annotated[Path, typer.Option("--out", help="sweep folder: runs/ as they finish, then the results; "
                                                         "run again to resume")],
        executor: Annotated[str, typer.Option(help="serial | processes | dask (a LocalCluster)")] = "processes",
        dask: Annotated[str | None, typer.Option("--dask", help="connect to a Dask scheduler, e.g. tcp://host:8786"
                                                 )] = None,
        workers: Annotated[int | None, typer.Option(help="processes or LocalCluster workers (default: one per core "
                                                         "for processes, 2 for dask)")] = None,
        time_limit: Annotated[float | None, typer.Option(help="seconds per run")] = None,
        gap: Annotated[float | None, typer.Option(help="relative MIP gap")] = None,
        preset: Annotated[str | None, typer.Option(help="solver preset (default, fast, exact)")] = None,
        backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
        plots: Annotated[bool, typer.Option(help="write tornado and spider plots")] = True) -> None:
    """Solve every run of a design (one-at-a-time, factorial, Latin hypercube); write tidy results and a summary.

    Exit 1 if any run failed (each is recorded with its error), 2 on bad input.
    """
    from optiland.sweep import FAILED, connect, load_design
    from optiland.sweep import sweep as run_sweep

    client = None
    try:
        table = load_design(design)
        target: object = executor
        if dask:
            client = connect(dask)
            target = client
        elif executor not in ("serial", "processes", "dask"):
            raise OptilandError(f"unknown executor {executor!r}; known: serial, processes, dask")
        results = run_sweep(scenario, table, executor=target, workers=workers, out_dir=out, plots=plots,
                            time_limit=time_limit, mip_rel_gap=gap, preset=preset, backend=backend)
    except OptilandError as exc:
        _fail(exc)
    finally:
        if client is not None:
            client.close()
    runs = results.drop_duplicates("run_id")
    counts = runs["status"].value_counts()
    console.print(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    ranking = pd.read_csv(out / "ranking.csv", encoding="utf-8-sig")
    solver_figures = ranking["metric"].isin(["gap", "bound"]) | ranking["metric"].str.endswith("_seconds")
    top = ranking[(ranking["rank"] == 1) & ranking["effect"].notna() & ~solver_figures]
    if len(top):
        summary = Table(title="largest effect per metric")
        for column in ("metric", "parameter", "effect", "measure"):
            summary.add_column(column)
        for row in top.itertuples(index=False):
            summary.add_row(row.metric, row.parameter, f"{row.effect:,.4g}", row.measure)
        console.print(summary)
    console.print(f"written to {out} (results.csv, results.parquet, ranking.csv, design.csv, plots/)")
    if counts.get(FAILED, 0):
        failed = runs[runs["status"] == FAILED]
        for row in failed.head(5).itertuples(index=False):
            err.print(f"[red]failed[/] {row.run_id}: {row.error}", highlight=False)
        raise typer.Exit(1)


@app.command()
def pareto(scenario: ScenarioArg, out: OutOpt,
           objectives: Annotated[str, typer.Option(help="two or three of ecosystem_services, carbon, soil, water, "
                                                        "habitat, income, cost (cost minimised), comma-separated; "
                                                        "the first is optimised, the others constrained")
                                 ] = "ecosystem_services,income",
           points: Annotated[int, typer.Option(help="grid points per constrained objective")] = 25,
           method: Annotated[str, typer.Option(help="augmecon2 | augmecon2-classic | weighted-sum (supported "
                                                    "points only) | lexicographic (extreme points only)")
                             ] = "augmecon2",
           step: Annotated[str | None, typer.Option(help="exact mode: NAME=STEP,... the resolution of each "
                                                         "constrained objective (e.g. income=1: every yuan)")] = None,
           max_points: Annotated[int, typer.Option(help="cap on grid solves (exact mode)")] = 10_000,
           refine: Annotated[int, typer.Option(help="extra solves where the front bends (two objectives)")] = 0,
           time_limit: Annotated[float | None, typer.Option(help="seconds per solve")] = None,
           gap: Annotated[float | None, typer.Option(help="relative MIP gap")] = None,
           threads: Annotated[int | None, typer.Option(help="HiGHS threads")] = None,
           backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto") -> None:
    """Pareto front by AUGMECON2: write front.csv, front.png, plans.parquet and run.json to OUT."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from optiland.pareto import run_front, write_front
    from optiland.run import prepare, solver_options

    names = [name.strip() for name in objectives.split(",") if name.strip()]
    try:
        steps = _parse_steps(step)
        options = solver_options(prepare(scenario).scenario, time_limit=time_limit, mip_rel_gap=gap,
                                 threads=threads)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("payoff table", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description="payoff table" if stage == "payoff" else f"{stage} points",
                           completed=done, total=None if stage == "payoff" else total)

            prepared, result, model, times = run_front(scenario, names, points, options, progress, backend=backend,
                                                       method=method,
                                                       steps=steps, max_points=max_points, refine=refine)
        write_front(out, prepared, result, model, options, times)
    except InfeasibleError as exc:
        _fail(exc, 3)
    except (OptilandError, ValueError) as exc:
        _fail(exc)
    shown = Table(title=f"Pareto front: {len(result.table)} nondominated points")
    for column in ("point", *result.names, "gap", "solve_seconds"):
        shown.add_column(column, justify="right")
    for row in result.table.itertuples(index=False):
        values = row._asdict()
        mark = " knee" if values["point"] == result.knee else ""
        mark += " ideal" if values["point"] == result.ideal else ""
        shown.add_row(f"{values['point']}{mark}", *[f"{values[k]:,.6g}" for k in result.names],
                      "" if values["gap"] is None else f"{values['gap']:.1e}", f"{values['solve_seconds']:.2f}")
    console.print(shown)
    if result.grid_points:
        console.print(f"{result.solves} solves for {result.grid_points} grid points "
                      f"({result.skipped} skipped by bypass and early exit), {result.payoff_solves} payoff solves; "
                      f"{result.seconds:.1f} s")
    else:
        console.print(f"{result.method}: {result.solves} solves, {result.payoff_solves} payoff solves; "
                      f"{result.seconds:.1f} s")
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"written to {out} (front.csv, front.png, plans.parquet, run.json)")


def _parse_steps(text: str | None) -> dict[str, float] | None:
    """NAME=STEP,NAME=STEP into a dict; a clear error naming the bad item."""
    if not text:
        return None
    steps = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            steps[name.strip()] = float(value)
        except ValueError:
            raise OptilandError(f"--step wants NAME=STEP items (e.g. income=1), not {item!r}") from None
        if steps[name.strip()] <= 0:
            raise OptilandError(f"--step {item!r}: the step must be positive")
    return steps


@app.command("report")
def report_command(out_dir: Annotated[Path, typer.Argument(help="a folder written by solve")],
                   lang: Annotated[str, typer.Option(help="zh | en")] = "zh",
                   front: Annotated[Path | None, typer.Option("--front", help="a folder written by pareto to show "
                                                              "(default: the one solve --from-front recorded)")
                                    ] = None) -> None:
    """Write OUT_DIR/report/: a county overview and one page per township (HTML and Markdown, maps and charts)."""
    from optiland.report import write_report

    try:
        folder = write_report(out_dir, lang=lang, front_dir=front)
    except OptilandError as exc:
        _fail(exc)
    pages = len(list(folder.glob("*.html")))
    console.print(f"report written to {folder / 'index.html'} ({pages} pages, Markdown twins beside them)")


@catalog_app.command("show")
def catalog_show(region: Annotated[str | None, typer.Argument(help="region name or catalog folder "
                                                                  "(default: models/defaults.toml)")] = None,
                 table: Annotated[str | None, typer.Option(help="options|variants|current_uses|market|rules")] = None,
                 ) -> None:
    """Print a catalog: options, variants with their figures and sources, current uses, site rules."""
    from optiland.catalog import load_catalog
    from optiland.generate import default_region

    try:
        region = region or default_region()
        path = Path(region)
        catalog = load_catalog(path if path.is_dir() else None, region=None if path.is_dir() else region)
    except OptilandError as exc:
        _fail(exc)
    console.print(f"[bold]{catalog.name}[/] {catalog.version}: {catalog.region.get('title', '')} "
                  f"(money in {catalog.region.get('price_year', 2020)} yuan)")
    wanted = [table] if table else ["rules", "options", "variants", "current_uses", "market"]
    if "rules" in wanted:
        bands = ", ".join(f"{b['name']} >= {b['lower']}" for b in catalog.grade["bands"])
        console.print(f"{catalog.grade.get('label', 'grade')} on {catalog.grade.get('attribute')} "
                      f"(where {catalog.grade.get('applies_where', 'everywhere')}): {bands}")
        console.print("adaptation: " + ", ".join(f"{k} up to {v}" for k, v in catalog.adaptation.items()))
        console.print("livestock: " + ", ".join(f"{k} {v}" for k, v in catalog.livestock.items()
                                                 if not str(k).endswith("source")))
        console.print("rangers: " + ", ".join(f"{k} {v}" for k, v in catalog.rangers.items()
                                               if not str(k).endswith("source")))
    frames = {"options": catalog.options.reset_index(), "variants": catalog.variants.reset_index(),
              "current_uses": catalog.current_uses.reset_index(), "market": catalog.market.reset_index()}
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                           "display.max_colwidth", 60):
        for name in wanted:
            if name in frames:
                console.print(f"\n[bold]{name}[/]")
                console.print(frames[name].to_string(index=False), highlight=False, markup=False)


def main() -> None:
    """Entry point for `python -m optiland`."""
    app()


if __name__ == "__main__":
    sys.exit(main())
