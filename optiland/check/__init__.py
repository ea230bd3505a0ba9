"""The checker: a plan against every rule, from the scenario file, the catalog tables and the parcel layer, by its
own code (docs/data-model.md), sharing nothing with the model, solve or mip layers."""

from optiland.check.folder import check, check_outdir, check_tables, instance_from_inputs, instance_of
from optiland.check.instance import Instance, build_instance
from optiland.check.plan import CSV_TOLERANCE, FAMILIES, check_plan, evaluate
from optiland.violations import Violation

__all__ = ["CSV_TOLERANCE", "FAMILIES", "Instance", "Violation", "build_instance", "check", "check_outdir",
           "check_plan", "check_tables", "evaluate", "instance_from_inputs", "instance_of"]
