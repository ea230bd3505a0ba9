"""`python -m optiland ...` runs the command line."""

from optiland.cli import app

app(prog_name="optiland")
