"""Studies on top of the solve: Pareto fronts, sensitivity sweeps, transition years, BLM calibration, Marxan,
synthetic instances, what would it take (entry prices of the options a plan leaves out, marginal values of its
targets)."""
