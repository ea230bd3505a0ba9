r"""Choosing the boundary penalty (BLM): Cohon's method, as prioritizr's ``calibrate_cohon_penalty``, and a sweep.

Cohon et al. (1979): two anchor plans, each lexicographic so that it is efficient. Anchor A optimises the scenario's
objective f alone, then among its optima takes the least boundary B; anchor B minimises the boundary alone, then
among those plans optimises f. The penalty that makes both anchors equally good is the slope between them,
:math:`\beta = |f_A - f_B| / (B_A - B_B)` (0 when anchor A is already the most compact). B is the weighted boundary
of optiland.model.formulation.boundary_penalty with the penalty set to 1, computed from the plan itself.

The sweep solves f with the penalty at each of several weights and records f and B: the cost (or gain) against
boundary curve, drawn with the Cohon point marked.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import InfeasibleError, InputError, Issue
from optiland.io.scenario import Scenario, load_scenario
from optiland.io.tables import write_csv
from optiland.mip.solver import SolverOptions, Status
from optiland.model.backend import Backend, make_backend
from optiland.pipeline.run import Prepared, index_reference, prepare, solver_options

TIE = 1e-7
"""Relative slack with which a lexicographic second stage keeps the first stage's optimum."""


@dataclass
class Point:
    """One plan of the calibration: its weight, objective f, boundary B (penalty 1) and the solver's account."""

    weight: float
    objective: float
    boundary: float
    status: str
    gap: float | None
    kind: str = "sweep"


@dataclass
class Calibration:
    """The anchors, Cohon's penalty, and the sweep."""

    objective: str
    sense: str
    anchor_objective: Point
    anchor_boundary: Point
    blm: float
    sweep: list[Point] = field(default_factory=list)


def _prepared_with_unit_penalty(scenario: Scenario | str | Path) -> Prepared:
    scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if scenario.spatial is None:
        raise InputError([Issue("calibrate-blm needs a [spatial] section (groups, boundaries)",
                                file=str(scenario.source_path), column="spatial")])
    prepared = prepare(scenario.with_(**{"spatial.boundary_penalty": 1.0}))
    if prepared.problem.spatial is None or not prepared.problem.spatial.penalised:
        raise InputError([Issue("no boundary between groups can be penalised (no shared boundary, or every group "
                                "weight is 0)", file=str(scenario.source_path), column="spatial")])
    return prepared


def _boundary(prepared: Prepared, backend: Backend, result: Any) -> float:
    """The plan's weighted boundary (penalty 1), from the chosen option of every parcel."""
    problem = prepared.problem
    rows = backend.solution(result).chosen_rows()
    group = np.zeros(problem.n_parcels, dtype=np.int64)
    spatial = problem.spatial
    assert spatial is not None
    group[problem.allowed["parcel"].to_numpy()[rows]] = spatial.group_index(problem.allowed["option"].to_numpy()[rows])
    return spatial.penalty_of(group)


def _objective_value(backend: Backend, name: str, scales: dict[str, float], weights: dict[str, float]) -> float:
    """The objective f of the plan last solved (the Pyomo backend keeps the values)."""
    import pyomo.environ as pyo

    from optiland.model.formulation import objective_expression

    return float(pyo.value(objective_expression(backend.model, name, weights, scales)))  # type: ignore[attr-defined]


def _solve(backend: Backend, options: SolverOptions, what: str) -> Any:
    result = backend.solve(options)
    if result.status == Status.INFEASIBLE:
        raise InfeasibleError(f"the scenario is infeasible ({what}); solve it for an explanation")
    if not result.status.has_plan or result.objective is None:
        from optiland.pipeline.run import no_plan

        raise no_plan(result, f"for {what}")
    return result


def calibrate(scenario: Scenario | str | Path, weights: list[float] | None = None, sweep_points: int = 9,
              **solver_overrides: Any) -> Calibration:
    """Cohon's penalty from the two anchors, then the objective and boundary at each sweep weight (default:
    0 and `sweep_points` weights spaced geometrically from a tenth to ten times Cohon's)."""
    prepared = _prepared_with_unit_penalty(scenario)
    problem = prepared.problem
    options = solver_options(prepared.scenario, **solver_overrides)
    backend = make_backend("pyomo", problem)
    backend.build(problem)
    name, sense = problem.params["objective"], problem.params["sense"]
    scales: dict[str, float] = {}
    if name == "ecosystem_services":
        scales = index_reference(problem).values
        backend.es_scale = scales
    weights_of_index = problem.params["weights"]

    def optimise_objective() -> Any:
        backend.set_objective({name: 1.0}, sense, scale=scales, weights=weights_of_index)
        return _solve(backend, options, f"best {name}")

    first = optimise_objective()
    slack = TIE * max(1.0, abs(first.objective))
    backend.set_bound(name, *((first.objective - slack, None) if sense == "max" else (None, first.objective + slack)))
    backend.set_objective({"boundary_penalty": 1.0}, "min")
    tied = _solve(backend, options, f"least boundary among the best {name}")
    backend.set_bound(name, None, None)
    anchor_a = Point(0.0, _objective_value(backend, name, scales, weights_of_index),
                     _boundary(prepared, backend, tied), tied.status.value, tied.gap, "anchor: objective first")

    compact = _solve(backend, options, "least boundary")
    least = _boundary(prepared, backend, compact)
    backend.set_bound("boundary_penalty", None, least + TIE * max(1.0, least))
    best = optimise_objective()
    backend.set_bound("boundary_penalty", None, None)
    anchor_b = Point(np.inf, _objective_value(backend, name, scales, weights_of_index),
                     _boundary(prepared, backend, best), best.status.value, best.gap, "anchor: boundary first")
    drop = anchor_a.boundary - anchor_b.boundary
    blm = abs(anchor_a.objective - anchor_b.objective) / drop if drop > TIE * max(1.0, anchor_a.boundary) else 0.0

    if weights is None:
        weights = [0.0] + (list(np.geomspace(blm / 10, blm * 10, sweep_points)) if blm > 0 else [])
    sign = 1.0 if sense == "min" else -1.0
    points = []
    for weight in weights:
        backend.set_objective({name: 1.0, "boundary_penalty": sign * float(weight)}, sense, scale=scales,
                              weights=weights_of_index)
        result = _solve(backend, options, f"weight {weight:g}")
        points.append(Point(float(weight), _objective_value(backend, name, scales, weights_of_index),
                            _boundary(prepared, backend, result), result.status.value, result.gap))
    return Calibration(name, sense, anchor_a, anchor_b, float(blm), points)


def write_calibration(calibration: Calibration, folder: Path) -> None:
    """calibration.json (anchors and penalty), sweep.csv and sweep.png (objective against boundary) into `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = asdict(calibration)
    data["anchor_boundary"]["weight"] = None
    (folder / "calibration.json").write_text(json.dumps(data, indent=2, default=float), encoding="utf-8")
    table = pd.DataFrame([asdict(p) for p in calibration.sweep])
    write_csv(table, folder / "sweep.csv")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(table["objective"], table["boundary"], "o-", color="#2a6f97", label="sweep (weight beside each point)")
    for row in table.itertuples(index=False):
        ax.annotate(f"{row.weight:.3g}", (row.objective, row.boundary), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    anchors = [calibration.anchor_objective, calibration.anchor_boundary]
    ax.plot([a.objective for a in anchors], [a.boundary for a in anchors], "s--", color="#c1121f",
            label=f"anchors; Cohon BLM = {calibration.blm:.4g}")
    ax.set_xlabel(f"{calibration.objective} ({'minimised' if calibration.sense == 'min' else 'maximised'})")
    ax.set_ylabel("weighted boundary (penalty 1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "sweep.png", dpi=130)
    plt.close(fig)
