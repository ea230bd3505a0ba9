"""optiland: exact land-use optimisation for ecological-industry planning."""
