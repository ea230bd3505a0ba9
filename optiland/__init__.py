"""optiland: exact land-use optimisation for ecological-industry planning.

The pipeline follows the data: scenario and catalog -> inputs -> problem (allowed set) -> formulation -> backend and
solver -> results -> check.
"""

from optiland.catalog import load_catalog
from optiland.errors import InfeasibleError, InputError, OptilandError
from optiland.results import Plan, make_plan
from optiland.run import prepare, solve
from optiland.scenario import Scenario, load_scenario
from optiland.sweep import sweep_module as sweep  # callable: optiland.sweep(scenario, design, ...)

__all__ = ["InfeasibleError", "InputError", "OptilandError", "Plan", "Scenario", "load_catalog", "load_scenario",
           "make_plan", "prepare", "solve", "sweep"]
