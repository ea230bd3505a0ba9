"""The solve pipeline: prepare, normalise, solve (whole or by township), explain infeasibility, collect the plan."""
