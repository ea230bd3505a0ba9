"""Why the proof of a Marxan optimum is slow: machine-independent measures on a plain highspy model of a standard
Marxan problem (default: the shipped sample at BLM 1), one HiGHS thread, in process.

    flock /work/bench.lock .venv/bin/python benchmarks/marxan_proof.py
        [--input ../shared/data/marxan-sample/input.dat] [--blm 1] [--optimum VALUE]
        [--out benchmarks/results/marxan_proof.csv]

The model is the hard-target problem optiland solves (minimise cost + BLM x boundary, every target met): one binary
per free unit (units locked in or out are eliminated: their costs and their boundaries with free units become
constants and linear terms) and one variable per boundary between two free units. Rows written (`measure`):

- ``lp <form>``: the LP bound of three linearisations of the boundary b_e |x_i - x_j|: ``abs`` (s_e >= x_i - x_j,
  s_e >= x_j - x_i), ``prioritizr`` (z_e <= x_i, z_e <= x_j, cost b_e (x_i + x_j - 2 z_e)) and ``prioritizr+`` (with
  z_e >= x_i + x_j - 1); with the LP's fractional units, their distinct values (clusters) and the targets that bind;
- ``root``: HiGHS's bound after its root cuts (the MIP stopped after one node);
- ``proof with cutoff``: the whole proof with the optimum (--optimum, default: optiland's proven optimum at this BLM
  in benchmarks/results/marxan.csv) given as the objective cutoff from the start, i.e. with a perfect incumbent;
- ``fixed by reduced cost`` and ``fixed by probing``: the binaries that the LP's reduced costs, and then an LP solve
  of each remaining unit at its other value (hot-started dual simplex, repeated until nothing changes), prove to
  keep their LP value in every plan at most as costly as the optimum.

`cpu_s` is the process CPU time of the step (time.process_time), `nodes` and `lp_iterations` HiGHS's counts. The CSV
is rewritten whole.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import highspy
import numpy as np
import pandas as pd
import scipy.sparse as sp

from optiland.analysis.marxan import read_marxan

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["blm", "measure", "value", "fractional_units", "clusters", "binding_targets", "nodes", "lp_iterations",
          "cpu_s", "status", "highs"]
INF = highspy.kHighsInf


def build(input_dat: Path, blm: float, form: str) -> tuple[highspy.HighsLp, int, int]:
    """The MIP as a HighsLp (columns: the free units' x, then one per boundary of two free units; rows: the targets,
    then the boundary rows); the number of x and of target rows."""
    data = read_marxan(input_dat)
    units = data.units
    ids = units["id"].astype(str).to_numpy()
    at = pd.Series(np.arange(len(ids)), index=ids)
    status = units["status"].to_numpy(int)
    fixed = np.where(status == 2, 1, np.where(status == 3, 0, -1))
    linear = units["cost"].to_numpy(float).copy()
    i = at.reindex(data.boundaries["id1"].astype(str)).to_numpy()
    j = at.reindex(data.boundaries["id2"].astype(str)).to_numpy()
    b = blm * data.boundaries["boundary"].to_numpy(float)
    outer = i == j
    np.add.at(linear, i[outer], b[outer])  # an outer edge counts when its unit is selected
    i, j, b = i[~outer], j[~outer], b[~outer]
    constant = 0.0
    both = (fixed[i] >= 0) & (fixed[j] >= 0)
    constant += float((b[both] * np.abs(fixed[i[both]] - fixed[j[both]])).sum())
    for a, c in ((i, j), (j, i)):  # a fixed, c free: b |f - x_c| = b (1 - x_c) if f = 1, else b x_c
        one = (fixed[a] >= 0) & (fixed[c] < 0)
        constant += float(b[one & (fixed[a] == 1)].sum())
        np.add.at(linear, c[one], np.where(fixed[a[one]] == 1, -b[one], b[one]))
    constant += float(linear[fixed == 1].sum())
    free = np.flatnonzero(fixed < 0)
    column = np.full(len(ids), -1)
    column[free] = np.arange(len(free))
    pair = (fixed[i] < 0) & (fixed[j] < 0)
    ei, ej, eb = column[i[pair]], column[j[pair]], b[pair]
    n, m = len(free), int(pair.sum())

    features = data.features[data.features["target"] > 0]
    f_at = pd.Series(np.arange(len(features)), index=features["id"].astype(str).to_numpy())
    amounts = data.amounts
    f_row = f_at.reindex(amounts["species"].astype(str)).to_numpy()
    u = at.reindex(amounts["pu"].astype(str)).to_numpy()
    amount = amounts["amount"].to_numpy(float)
    keep = ~np.isnan(f_row)
    f_row, u, amount = f_row[keep].astype(int), u[keep], amount[keep]
    target = features["target"].to_numpy(float) - np.bincount(f_row[fixed[u] == 1], amount[fixed[u] == 1],
                                                                len(features))
    on_free = fixed[u] < 0
    rows = [sp.coo_matrix((amount[on_free], (f_row[on_free], column[u[on_free]])), shape=(len(features), n + m))]
    lower, upper = [target], [np.full(len(features), INF)]
    cost = np.concatenate([linear[free], eb])
    e = np.arange(m)
    y = n + e

    def two(a: np.ndarray, c: np.ndarray, va: float, vc: float) -> sp.coo_matrix:
        return sp.coo_matrix((np.concatenate([np.ones(m), np.full(m, va), np.full(m, vc)]),
                              (np.tile(e, 3), np.concatenate([y, a, c]))), shape=(m, n + m))

    if form == "abs":
        rows += [two(ei, ej, -1.0, 1.0), two(ei, ej, 1.0, -1.0)]
        lower += [np.zeros(m), np.zeros(m)]
        upper += [np.full(m, INF), np.full(m, INF)]
    else:  # prioritizr: b (x_i + x_j - 2 z)
        cost[:n] += np.bincount(ei, eb, n) + np.bincount(ej, eb, n)
        cost[n:] = -2 * eb
        one_side = [sp.coo_matrix((np.concatenate([np.ones(m), -np.ones(m)]), (np.tile(e, 2), np.concatenate([y, a]))),
                                  shape=(m, n + m)) for a in (ei, ej)]
        rows += one_side
        lower += [np.full(m, -INF), np.full(m, -INF)]
        upper += [np.zeros(m), np.zeros(m)]
        if form == "prioritizr+":
            rows.append(two(ei, ej, -1.0, -1.0))
            lower.append(np.full(m, -1.0))
            upper.append(np.full(m, INF))
    matrix = sp.vstack(rows).tocsc()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n + m, matrix.shape[0]
    lp.col_cost_, lp.offset_ = cost, constant
    lp.col_lower_, lp.col_upper_ = np.zeros(n + m), np.ones(n + m)
    lp.row_lower_, lp.row_upper_ = np.concatenate(lower), np.concatenate(upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = matrix.indptr, matrix.indices, matrix.data
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n + [highspy.HighsVarType.kContinuous] * m
    return lp, n, len(features)


def highs(lp: highspy.HighsLp, relax: bool = False, **options: Any) -> highspy.Highs:
    """A silent one-thread HiGHS holding `lp` (its LP relaxation with `relax`)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for key, value in {"threads": 1, "random_seed": 0, "mip_rel_gap": 0.0, **options}.items():
        h.setOptionValue(key, value)
    h.passModel(lp)
    if relax:
        relaxed = h.getLp()  # a copy: `lp` keeps its integrality
        relaxed.integrality_ = []
        h.passModel(relaxed)
    return h


def measure(input_dat: Path, blm: float, optimum: float) -> list[dict[str, Any]]:
    """The rows of the CSV (module docstring)."""
    rows: list[dict[str, Any]] = []
    version = highspy.Highs().version()
    for form in ("abs", "prioritizr", "prioritizr+"):
        lp, n, targets = build(input_dat, blm, form)
        h = highs(lp, relax=True)
        start = time.process_time()
        h.run()
        x = np.array(h.getSolution().col_value[:n])
        fractional = x[(x > 1e-6) & (x < 1 - 1e-6)]
        duals = np.array(h.getSolution().row_dual[:targets])
        rows.append({"measure": f"lp {form}", "value": h.getInfo().objective_function_value,
                     "fractional_units": len(fractional), "clusters": len(np.unique(np.round(fractional, 6))),
                     "binding_targets": int((np.abs(duals) > 1e-9).sum()),
                     "lp_iterations": h.getInfo().simplex_iteration_count,
                     "cpu_s": round(time.process_time() - start, 2),
                     "status": h.modelStatusToString(h.getModelStatus())})
    lp, n, _ = build(input_dat, blm, "abs")
    h = highs(lp, mip_max_nodes=1)
    start = time.process_time()
    h.run()
    rows.append({"measure": "root", "value": h.getInfo().mip_dual_bound, "nodes": h.getInfo().mip_node_count,
                 "lp_iterations": h.getInfo().simplex_iteration_count, "cpu_s": round(time.process_time() - start, 2),
                 "status": h.modelStatusToString(h.getModelStatus())})
    cutoff = optimum + 1e-9 * abs(optimum)
    h = highs(lp, objective_bound=cutoff)
    start = time.process_time()
    h.run()
    rows.append({"measure": "proof with cutoff", "value": h.getInfo().mip_dual_bound,
                 "nodes": h.getInfo().mip_node_count, "lp_iterations": h.getInfo().simplex_iteration_count,
                 "cpu_s": round(time.process_time() - start, 2), "status": h.modelStatusToString(h.getModelStatus())})
    rows += fixing(lp, n, cutoff)[0]
    return [{"blm": blm, "highs": version, **row} for row in rows]


def fixing(lp: highspy.HighsLp, n: int, cutoff: float) -> tuple[list[dict[str, Any]], dict[int, float]]:
    """Binaries proven at their LP value for every plan costing at most `cutoff`: by the LP's reduced costs, then by
    probing (the LP with the unit at its other value costs more than `cutoff`), passes repeated until none is new.
    The two CSV rows, and the value of every binary fixed (by its column)."""
    h = highs(lp, relax=True)
    start = time.process_time()
    h.run()
    base = h.getInfo().objective_function_value
    x = np.array(h.getSolution().col_value[:n])
    reduced = np.array(h.getSolution().col_dual[:n])
    fixed = {k: float(round(x[k])) for k in range(n) if base + abs(reduced[k]) > cutoff
             and (x[k] < 1e-6 or x[k] > 1 - 1e-6)}
    rows = [{"measure": "fixed by reduced cost", "value": len(fixed),
             "lp_iterations": h.getInfo().simplex_iteration_count, "cpu_s": round(time.process_time() - start, 2)}]
    start, iterations, changed = time.process_time(), 0, True
    for k, v in fixed.items():
        h.changeColBounds(k, v, v)
    while changed:
        changed = False
        for k in range(n):
            if k in fixed:
                continue
            for value in (0.0, 1.0):
                h.changeColBounds(k, value, value)
                h.run()
                iterations += h.getInfo().simplex_iteration_count
                optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
                if not optimal or h.getInfo().objective_function_value > cutoff:
                    fixed[k], changed = 1.0 - value, True
                    break
            h.changeColBounds(k, fixed.get(k, 0.0), fixed.get(k, 1.0))
    rows.append({"measure": "fixed by probing", "value": len(fixed), "lp_iterations": iterations,
                 "cpu_s": round(time.process_time() - start, 2)})
    return rows, fixed


def main() -> None:
    """Measure and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=ROOT.parent / "shared" / "data" / "marxan-sample" / "input.dat")
    parser.add_argument("--blm", type=float, default=1.0)
    parser.add_argument("--optimum", type=float, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "marxan_proof.csv")
    args = parser.parse_args()
    optimum = args.optimum
    if optimum is None:
        table = pd.read_csv(ROOT / "benchmarks" / "results" / "marxan.csv")
        proven = table[(table["blm"] == args.blm) & (table["tool"] == "optiland") & (table["setting"] == "gap 0")
                       & (table["status"] == "optimal")]
        if proven.empty:
            raise SystemExit(f"no proven optimum at BLM {args.blm:g} in benchmarks/results/marxan.csv: give --optimum")
        optimum = float(proven["objective"].iloc[0])
    rows = measure(args.input, args.blm, optimum)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(", ".join(f"{k}={row.get(k)}" for k in FIELDS if row.get(k) is not None), flush=True)


if __name__ == "__main__":
    main()
