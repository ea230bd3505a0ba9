"""What the solve pipeline hands on: the prepared inputs, a solved scenario, and the objective's terms.

Kept apart from the pipeline (optiland.pipeline.run) so that the township decomposition, which the pipeline calls,
can build the same records without importing the pipeline back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optiland.io.catalog import Catalog
from optiland.io.inputs import Inputs
from optiland.io.scenario import Scenario
from optiland.mip.solver import SolveResult, SolverOptions
from optiland.model.backend import Backend, Solution
from optiland.model.problem import PlanningProblem
from optiland.pipeline.reference import Reference


@dataclass
class Prepared:
    """Inputs read and the problem derived, ready to build."""

    scenario: Scenario
    catalog: Catalog
    inputs: Inputs
    problem: PlanningProblem
    read_seconds: float


@dataclass
class RunOutcome:
    """A solved scenario: the plan, the solver's account, and what produced it.

    `times` (seconds): read (inputs and the allowed set), build (the model), matrix (handing it to the solver as
    matrices, summed over the run's solves: Pyomo's compile, or the matrix backend's assembly), solve (the solver,
    hand-over excluded); the plan's writer adds write.
    """

    prepared: Prepared
    solution: Solution
    result: SolveResult
    options: SolverOptions
    backend: str
    es_scale: dict[str, float] = field(default_factory=dict)
    """The service index's reference per service (its divisor; `reference` says how it was set)."""
    reference: Reference | None = None
    times: dict[str, float] = field(default_factory=dict)
    model_size: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model: Backend | None = None


def objective_terms(problem: PlanningProblem) -> dict[str, float]:
    """The scenario's objective, and with a boundary penalty that penalty too: added to a minimised objective,
    subtracted from a maximised one (optiland.model.formulation.boundary_penalty)."""
    name, sense = problem.params["objective"], problem.params["sense"]
    terms = {name: 1.0}
    if problem.spatial is not None and problem.spatial.penalised:
        terms["boundary_penalty"] = 1.0 if sense == "min" else -1.0
    return terms
