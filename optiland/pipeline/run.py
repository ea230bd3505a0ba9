"""The solve pipeline: read, build, normalise the service index, solve, explain infeasibility, collect results."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from optiland.errors import InfeasibleError, InputError, Interrupted, Issue, NoPlanError, OptilandError, SolverError
from optiland.io.catalog import Catalog, load_catalog
from optiland.io.inputs import Inputs, read_inputs
from optiland.io.scenario import Scenario, load_scenario
from optiland.mip.solver import MatrixLP, SolveResult, SolverOptions, Status, load_preset
from optiland.model.backend import Backend, Solution, make_backend
from optiland.model.problem import PlanningProblem, build_problem, village_sum
from optiland.pipeline.outcome import Prepared, RunOutcome, objective_terms  # noqa: F401  (re-exported)
from optiland.pipeline.reference import Reference, constrained_bounds, reference
from optiland.progress import current


def read(scenario: Scenario | str | Path) -> tuple[Scenario, Catalog, Inputs]:
    """Load the scenario (if a path), its catalog with overrides, and the inputs (no problem derived yet)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    config = scenario.catalog
    path = scenario.resolve(config.path) if config.path else None
    catalog = load_catalog(path, overrides=config.overrides, region=config.region)
    return scenario, catalog, read_inputs(scenario, catalog)


def prepare(scenario: Scenario | str | Path) -> Prepared:
    """Load the scenario (if a path), its catalog with overrides, and the inputs; derive the problem."""
    start = time.perf_counter()
    scenario, catalog, inputs = read(scenario)
    problem = build_problem(scenario, catalog, inputs)
    return Prepared(scenario, catalog, inputs, problem, time.perf_counter() - start)


DECOMPOSE_WHOLE_PARCELS = 2_000
"""Up to this many parcels, a township decomposition that stops in a township (its share of the county limits too
tight for it, or no plan in its time) or ends short of the gap asked goes on with the county model whole, in the
time left: the shares are a heuristic, and on instances this small the whole model takes seconds (issue 22: tiny
two-township instances exited 2, "no plan found in its share of the time limit", on feasible and on infeasible
scenarios, and one returned a plan 80% worse than the optimum)."""


def solve_by_township(scenario: Scenario | str | Path, workers: int = 2, dask_address: str | None = None,
                      progress: Any = None, **solver_overrides: Any) -> RunOutcome:
    """Read, then solve township by township (optiland.pipeline.decompose): for counties and regions too large for one
    model. The county problem is never built whole (below DECOMPOSE_WHOLE_PARCELS parcels it is, when the
    decomposition fails or stops short of the gap); the plan, its Lagrangian bound and true gap come back as a
    RunOutcome."""
    from optiland.errors import OptilandError
    from optiland.pipeline import decompose

    start = time.perf_counter()
    scenario, catalog, inputs = read(scenario)
    read_seconds = time.perf_counter() - start
    options = solver_options(scenario, **solver_overrides)
    small = len(inputs.parcels) <= DECOMPOSE_WHOLE_PARCELS and not scenario.constraints.bounds

    def whole(note: str) -> RunOutcome:
        left = max(options.time_limit - (time.perf_counter() - start), 1.0)
        prepared = Prepared(scenario, catalog, inputs, build_problem(scenario, catalog, inputs), read_seconds)
        outcome = solve_prepared(prepared, SolverOptions(**{**options.as_dict(), "time_limit": left}))
        outcome.notes.insert(0, note)
        return outcome

    try:
        decomposed = decompose.solve_by_township(scenario, catalog, inputs, options, workers=workers,
                                                 dask_address=dask_address, progress=progress)
    except InfeasibleError as exc:
        if not small:
            raise
        return whole(f"township decomposition: a township cannot meet its targets with its share of the county "
                     f"limits ({exc}); the county model was solved whole")
    except OptilandError as exc:
        if not small or "objective bounds" in str(exc):
            raise
        return whole(f"township decomposition stopped ({exc}); the county model was solved whole")
    outcome = decompose.outcome(scenario, catalog, inputs, read_seconds, options, decomposed)
    result = outcome.result
    short = result.gap is None or (result.gap > options.mip_rel_gap
                                   and abs(result.bound - result.objective) > options.mip_abs_gap)
    if small and short and options.time_limit - (time.perf_counter() - start) > 1.0:
        try:
            alone = whole(f"township decomposition ended at a gap of {result.gap}, above the {options.mip_rel_gap} "
                          "asked; the county model was solved whole")
        except InfeasibleError:  # cannot be: the decomposition's plan is one; keep it
            return outcome
        if alone.result.status == Status.OPTIMAL or (alone.result.gap or 1.0) < (result.gap or 1.0):
            return alone
    return outcome


AUTO_DECOMPOSE_PARCELS = 50_000
"""From this many parcels in two townships or more, `solve` without --strategy goes township by township
(benchmarks/results/scale.csv: the monolithic model found no plan at 100,000 parcels in 300 s; the decomposition
proves 0.1% in about 100 s)."""


def default_strategy(scenario: Scenario | str | Path) -> str | None:
    """"decompose" for a county-sized scenario the decomposition can take (file inputs, at least
    AUTO_DECOMPOSE_PARCELS parcels in two townships or more, no objective bounds, spatial families or transition),
    else None (the preset's strategy). Reads only the layer's feature count and the village table's townships."""
    import pyogrio

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if (scenario.parcels.db or scenario.villages is None or scenario.constraints.bounds or scenario.spatial
            or scenario.objective.income_gain_share
            or scenario.features or scenario.transition):
        return None
    from pyogrio.errors import DataLayerError, DataSourceError

    from optiland.io.tables import read_table

    try:
        info = pyogrio.read_info(scenario.resolve(scenario.parcels.path), layer=scenario.parcels.layer)
        villages = read_table(scenario.resolve(scenario.villages.path), "village table", (),
                              encoding=scenario.villages.encoding)
        townships = villages[scenario.villages.columns.get("township", "township")].nunique()
    except (OSError, ValueError, KeyError, DataSourceError, DataLayerError, InputError):
        return None  # unreadable here: the read proper reports it with its own error
    count = int(info["features"])
    return "decompose" if count >= AUTO_DECOMPOSE_PARCELS and townships >= 2 else None


def solver_options(scenario: Scenario, **overrides: Any) -> SolverOptions:
    """The scenario's preset and options, then explicit overrides (e.g. a CLI time limit)."""
    config = scenario.solver.model_dump(exclude_none=True)
    config.update({k: v for k, v in overrides.items() if v is not None})
    return load_preset(config.pop("preset", "default"), config)


class _Clock:
    """Wall-clock budget of one command, started before the model is built: the user's time limit holds for the
    build, every solve and the diagnosis together (reading the inputs and writing the results excepted; run.json's
    times report them apart). No stage gets a fixed share of it: what a stage ends with never depends on the clock
    unless the limit itself is reached."""

    def __init__(self, options: SolverOptions) -> None:
        self.options = options
        self.start = time.perf_counter()
        self.deadline = self.start + options.time_limit

    def left(self) -> float:
        """Seconds left (0 once the limit is reached)."""
        return max(self.deadline - time.perf_counter(), 0.0)

    def options_now(self, **changes: Any) -> SolverOptions:
        """The options for the next solve: its time limit is the time left."""
        return SolverOptions(**{**self.options.as_dict(), "time_limit": max(self.left(), 0.01), **changes})


def index_reference(problem: PlanningProblem, backend: Backend | None = None, options: SolverOptions | None = None,
                    constrained: bool = False) -> Reference:
    """The ecosystem-service index's reference (optiland.pipeline.reference): the parcels' potential per service, or
    the scenario's pinned values; closed form, no solve. With `constrained` (and a built backend), also each
    service's constrained best gain bounded by its LP relaxation, as a report figure."""
    ref = reference(problem)
    if constrained and backend is not None and options is not None:
        ref.constrained_lp_bound = constrained_bounds(backend, problem, options)
        ref.notes.append("constrained best gain per service, LP bound (a report figure, not the index's scale): "
                         + ", ".join(f"{s} {v:.6g}" for s, v in ref.constrained_lp_bound.items()))
    return ref


def _no_index(ref: Reference) -> InputError:
    return InputError([Issue("no ecosystem service can gain on these parcels (every weighted service's potential "
                             "is 0): choose another objective, or weights", column="objective.maximise",
                             value="ecosystem_services")])


def solve_prepared(prepared: Prepared, options: SolverOptions, backend_name: str = "auto",
                   reuse: Backend | None = None, constrained_reference: bool = False) -> RunOutcome:
    """Build, set the service index's reference, solve; raise InfeasibleError with a diagnosis if no plan exists.
    `constrained_reference`: also bound each service's constrained best gain by LP (a report figure)."""
    problem = prepared.problem
    clock = _Clock(options)  # the time limit counts the build too
    progress = current()
    progress.stage(f"building the model ({len(problem.allowed):,} allowed rows)")
    if reuse is not None and reuse.update(problem):
        backend, build_seconds = reuse, 0.0
    else:
        backend = make_backend(backend_name, problem)
        backend.build(problem)
        build_seconds = backend.build_seconds
    matrix_before = backend.matrix_seconds
    params = problem.params
    name, sense = params["objective"], params["sense"]
    notes: list[str] = []
    solve_start = time.perf_counter()
    scales: dict[str, float] = {}
    ref: Reference | None = None
    es_bound = params["bounds"].get("ecosystem_services")
    if name == "ecosystem_services" or es_bound is not None:
        ref = index_reference(problem, backend, clock.options_now(), constrained=constrained_reference)
        if not ref.values and name == "ecosystem_services":
            raise _no_index(ref)
        scales = ref.values
        notes += ref.notes
        backend.es_scale = scales
    if es_bound is not None:
        backend.set_bound("ecosystem_services", *es_bound)
    start = None
    if params.get("income_gain_share") is not None:
        note, start = balance_income(backend, problem, clock)
        notes.append(note)
    backend.set_objective(objective_terms(problem), sense, scale=scales, weights=params["weights"])
    progress.stage(f"solving ({name}, gap {options.mip_rel_gap:g}, time limit {options.time_limit:g} s)")
    result = backend.solve(clock.options_now()) if start is None else backend.solve(clock.options_now(), start=start)
    if result.status == Status.INFEASIBLE:
        progress.stage("no plan exists: diagnosing which targets cannot be met")
        raise _infeasible(problem, clock)
    if not result.status.has_plan or result.x is None:
        raise no_plan(result)
    if problem.spatial is not None and problem.spatial.caps:
        result, more = _lazy_neighbourhood_caps(backend, problem, result, clock)
        notes += more
    matrix_seconds = backend.matrix_seconds - matrix_before
    solve_seconds = time.perf_counter() - solve_start - matrix_seconds
    lp = backend.last_lp or backend.matrix()
    n_cols, n_rows, nnz = lp.shape
    notes.append("binding: " + (", ".join(binding_rows(lp, result.x)) or "none"))
    spatial_size = getattr(getattr(backend, "model", None), "_boundary_size", None) or {}
    if problem.spatial is not None:
        notes += problem.spatial.notes
    return RunOutcome(
        prepared=prepared, solution=backend.solution(result), result=result, options=options,
        backend=backend.name, es_scale=scales, reference=ref,
        times={"read": prepared.read_seconds, "build": build_seconds, "matrix": matrix_seconds,
               "solve": solve_seconds, "limited": time.perf_counter() - clock.start},
        model_size={"variables": n_cols, "binaries": int(lp.integer.sum()), "constraints": n_rows,
                    "nonzeros": nnz, "allowed_rows": len(problem.allowed), "parcels": problem.n_parcels,
                    **{f"boundary_{k}": v for k, v in spatial_size.items()}},
        notes=notes, model=backend)


BALANCE_GAP = 0.01
"""Relative gap within which the income maximum of the balance rule is accepted: the income bound then lies within
share x 1% of the gain of the exact rule's (the note gives the gap); proving the income optimum of a karst township
to 0.1% took minutes (600 generated parcels: 178 s, stopped at 0.24%; 1.4 s to 1%)."""


def balance_income(backend: Backend, problem: PlanningProblem, clock: _Clock) -> tuple[str, np.ndarray | None]:
    r"""The balance rule (``[objective] income_gain_share`` s): bound the total income from below by
    :math:`B + s\,(I^* - B)`, B today's total income (optiland.model.problem: non-land plus current-use income of
    every village), :math:`I^*` the most income a plan reaches under the same constraints (solved first, to within
    BALANCE_GAP); the scenario's objective is then optimised under that
    bound. Returns the note that states the rule and its figures, and the income plan (it meets the bound: the
    objective's solve starts from it)."""
    share = float(problem.params["income_gain_share"])
    current().stage(f"the most income, for the balance rule (gap {BALANCE_GAP:g})")
    backend.set_objective({"income": 1.0}, "max")
    result = backend.solve(clock.options_now(mip_rel_gap=BALANCE_GAP, repair_accept_gap=BALANCE_GAP))
    if result.status == Status.INFEASIBLE:
        raise _infeasible(problem, clock)
    if not result.status.has_plan or result.objective is None:
        raise no_plan(result)  # a time limit without a plan says nothing about feasibility
    if result.status == Status.INTERRUPTED:  # SIGINT stops the command, not only this stage
        raise Interrupted("interrupted while finding the most income (balance rule), before any plan of the "
                          "scenario's objective; nothing written")
    today = float(problem.villages["income_before"].sum())
    best = float(result.objective)
    need = today + share * max(best - today, 0.0)
    lower, upper = problem.params["bounds"].get("income", (None, None))
    backend.set_bound("income", max(need, lower) if lower is not None else need, upper)
    gap = "unknown" if result.gap is None else f"{result.gap:.2e}"
    note = (f"balance: the most {problem.params['objective']} with total income at least {need:,.0f} yuan/yr = today "
            f"{today:,.0f} + {share:.0%} of the gain to the most income, {best:,.0f} (gap {gap})")
    return note, None if result.x is None else np.asarray(result.x, dtype=float)


def _lazy_neighbourhood_caps(backend: Backend, problem: PlanningProblem, result: SolveResult,
                             clock: _Clock) -> tuple[SolveResult, list[str]]:
    """Add the neighbourhood-cap rows the plan breaks and solve again, until it breaks none
    (optiland.model.formulation.neighbourhood_caps)."""
    from optiland.model.formulation import add_neighbourhood_caps

    spatial = problem.spatial
    assert spatial is not None
    model = getattr(backend, "model", None)
    if model is None or not hasattr(model, "neighbourhood_cap"):
        raise InfeasibleError("neighbourhood caps need the Pyomo backend")
    rounds = 0
    while True:
        rows = backend.solution(result).chosen_rows()
        broken = [(k, cell, group) for k, cap in enumerate(spatial.caps)
                  for cell, group, _ in cap.excess(problem.allowed, rows, problem.n_parcels)]
        if not broken:
            break
        add_neighbourhood_caps(model, problem, broken)
        rounds += 1
        current().stage(f"neighbourhood caps: round {rounds}, {len(broken)} cells over their cap")
        result = backend.solve(clock.options_now())
        if result.status == Status.INFEASIBLE:
            raise InfeasibleError(f"the neighbourhood caps cannot all hold ({len(model._cap_keys)} cells capped "
                                  f"after {rounds} rounds)")
        if not result.status.has_plan or result.x is None:
            raise no_plan(result, f"under the neighbourhood caps (round {rounds})")
        if result.status == Status.INTERRUPTED:
            break
    possible = sum(len(np.unique(cap.cell)) * len(cap.groups_of_rows(problem.allowed)[1]) for cap in spatial.caps)
    return result, [f"neighbourhood caps: {len(model._cap_keys)} rows added lazily in {rounds} rounds "
                    f"(of {possible:,} cell-group pairs)"]


_DEFINITIONS = ("one_use", "option_area_def", "price_step_link", "objective")
"""Row families that hold with equality by definition, so that 'binding' says nothing about them."""


def binding_rows(lp: MatrixLP, x: np.ndarray, tol: float = 1e-6) -> list[str]:
    """Constraint rows at their bound in a plan (what limits it), grouped per family with a count beyond three."""
    activity = lp.A @ x
    scale = np.maximum(1.0, np.abs(np.where(np.isfinite(lp.row_upper), lp.row_upper, lp.row_lower)))
    at_upper = np.isfinite(lp.row_upper) & (np.abs(activity - lp.row_upper) <= tol * scale)
    at_lower = np.isfinite(lp.row_lower) & (np.abs(activity - lp.row_lower) <= tol * scale)
    engaged = abs(lp.A) @ np.abs(x) > tol  # a row whose every term is zero binds trivially
    names: dict[str, list[str]] = {}
    for i in np.flatnonzero((at_upper | at_lower) & engaged):
        name = lp.row_names[i] if lp.row_names else str(i)
        family = name.split("[")[0].rstrip("<=>")
        if family.startswith(_DEFINITIONS) or lp.row_lower[i] == lp.row_upper[i]:
            continue
        names.setdefault(family, []).append(name.rstrip("<=>"))
    out = []
    for family, rows in names.items():
        out.append(", ".join(rows) if len(rows) <= 3 else f"{family} ({len(rows)} rows)")
    return out


def no_plan(result: SolveResult, where: str = "") -> OptilandError:
    """The error for a solve that ended without a plan and without a proof that none exists: the time limit (or a
    HiGHS work limit) came first (NoPlanError: nothing is claimed about feasibility), an interruption, or a solver
    failure."""
    at = f" {where}" if where else ""
    if result.status == Status.INTERRUPTED:
        return Interrupted(f"interrupted before any plan was found{at}; nothing written")
    if result.status == Status.TIME_LIMIT:
        return NoPlanError(f"no plan found{at} before the time limit ({result.message}); nothing is known about "
                           "whether one exists: give more time (--time-limit)")
    return SolverError(f"the solver ended without a plan{at} and without a proof that none exists: {result.message}")


def _infeasible(problem: PlanningProblem, clock: _Clock) -> InfeasibleError:
    """Explain an infeasible scenario from an elastic version of the model (slack on every target and limit)."""
    from optiland.pipeline.diagnose import diagnose

    return diagnose(problem, clock.options_now())


def solve(scenario: Scenario | str | Path, *, backend: str = "auto", **solver_overrides: Any) -> RunOutcome:
    """Solve a scenario (object or path) end to end."""
    prepared = prepare(scenario)
    options = solver_options(prepared.scenario, **solver_overrides)
    return solve_prepared(prepared, options, backend)


def village_income_parts(problem: PlanningProblem, solution: Solution) -> dict[str, np.ndarray]:
    """Income by source per village (yuan/yr) for a plan, computed from the problem's coefficients."""
    allowed = problem.allowed
    chosen = solution.x > 0.5
    nv = len(problem.villages)
    village = allowed["village"].to_numpy()
    priced = np.zeros(len(allowed), dtype=bool)
    for option, variant in problem.price_steps:
        priced |= ((allowed["option"].to_numpy() == option) & (allowed["variant"].to_numpy() == variant)
                   & allowed["harvest"].to_numpy())
    land = village_sum(village, allowed["income"].to_numpy() * chosen * ~priced, nv)
    for (v, pair, k), area in solution.segments.items():
        option, variant = pair.split(".")
        per_mu = float(problem.catalog.variants.loc[(option, variant), "net_income_per_mu"])
        factor = 1.0 if k == 0 else problem.price_steps[(option, variant)][k - 1][1]
        land[v] += factor * per_mu * area
    livestock = problem.params["livestock"]
    rangers = problem.params["rangers"]
    return {
        "nonland": (problem.villages["nonland_income_per_capita"] * problem.villages["population"]).to_numpy(),
        "land": land,
        "cattle": float(livestock["net_income_per_head"]) * solution.herd,
        "compensation": village_sum(village, allowed["compensation"].to_numpy() * chosen, nv),
        "wages": float(rangers["wage_per_post"]) * solution.posts,
    }
