"""The engine functions the app calls, imported in one place (the app adds no rule of its own)."""

from __future__ import annotations

from optiland.analysis.generate import default_region
from optiland.check import check_outdir
from optiland.errors import InfeasibleError, InputError, Issue, OptilandError
from optiland.io.scenario import Scenario, load_scenario
from optiland.model.problem import explain, site_rules, variant_table
from optiland.pipeline.outcome import Prepared
from optiland.pipeline.run import prepare

__all__ = ["InfeasibleError", "InputError", "Issue", "OptilandError", "Prepared", "Scenario", "check_outdir",
           "default_region", "explain", "load_scenario", "prepare", "site_rules", "variant_table"]
