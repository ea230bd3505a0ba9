"""The MIP engine, independent of land use: HiGHS in or out of process with a watchdog, and column generation."""

from optiland.mip import colgen  # noqa: F401  (registers the colgen strategy with optiland.mip.solver)
