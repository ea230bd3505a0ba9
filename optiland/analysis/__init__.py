"""Studies on top of the solve: Pareto fronts, sensitivity sweeps, transition years, BLM calibration, Marxan,
synthetic instances."""
