"""Check a results folder: plan.gpkg, villages.csv, townships.csv and run.json, against the scenario file on disk.

The scenario is the file run.json names, read again; its sha256 must be the one run.json records, and run.json's
copy of it must say what the file says (a copy edited after the run, a budget raised for instance, is reported
naming both values, and the plan is checked against the file). The inputs and the catalog are read by the io
layer's readers; everything derived from them (the allowed set, coefficients, areas, references of the index) is
the checker's own (optiland.check.rules, optiland.check.instance).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.check.instance import Instance, instance_from_inputs, instance_of
from optiland.check.plan import CSV_TOLERANCE, MU_PER_HA, Evaluation, _column, _num, _Report, evaluate
from optiland.errors import InputError, Issue
from optiland.io.tables import read_results_csv
from optiland.violations import Violation

GAP_TOLERANCE = 1e-6
"""run.json's gap may differ from |bound - objective| / max(|objective|, 1e-9) by this much (rounding)."""
IGNORED_SCENARIO_KEYS = ("solver",)
"""Sections of run.json's scenario copy that may differ from the file (command-line solver settings)."""


def check(plan: Any, prepared: Any = None, tol: float = 1e-6) -> list[Violation]:
    """Check a plan in memory against a Prepared-like object (scenario, catalog, inputs).

    `plan` has the tables `parcels` and `villages` (and optionally `townships` and the dict `run` of run.json), as
    optiland.pipeline.results.Plan; or it is a RunOutcome (its `prepared` is used, and only its decisions and
    objective are checked: the chosen (option, variant) of each parcel, the herds and posts, and the objective,
    bound and gap of its result).
    """
    if not hasattr(plan, "parcels") and hasattr(plan, "solution") and hasattr(plan, "prepared"):
        prepared = prepared or plan.prepared
        parcels, villages, run = _outcome_tables(plan)
        return check_tables(instance_of(prepared), parcels, villages, None, run, tol)
    if prepared is None:
        raise TypeError("check(plan, prepared): a plan's tables do not carry the scenario they answer")
    inst = instance_of(prepared)
    return check_tables(inst, plan.parcels, plan.villages, getattr(plan, "townships", None),
                        getattr(plan, "run", None), tol)


def _outcome_tables(outcome: Any) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The decisions of a solve's outcome as plan tables, and its objective record (read through attributes: the
    row each parcel chose, decoded by the outcome's own table of rows; nothing of the model is computed)."""
    rows = np.asarray(outcome.solution.chosen_rows())
    table = outcome.prepared.problem.allowed
    ids = outcome.prepared.problem.parcels["parcel_id"].astype(str).to_numpy()
    parcels = pd.DataFrame({"parcel_id": ids[table["parcel"].to_numpy()[rows]],
                            "option": table["option"].to_numpy()[rows], "variant": table["variant"].to_numpy()[rows]})
    solution = outcome.solution
    villages = pd.DataFrame({"village": outcome.prepared.problem.villages["village"].astype(str).to_numpy(),
                             "herd": np.asarray(solution.herd), "ranger_posts": np.asarray(solution.posts)})
    result = outcome.result
    run = {"objective": {"value": result.objective, "bound": result.bound, "gap": result.gap},
           "reference": {"values": dict(getattr(outcome, "es_scale", {}) or {})}}
    return parcels, villages, run


def check_tables(inst: Instance, parcels: pd.DataFrame, villages: pd.DataFrame, townships: pd.DataFrame | None,
                 run: dict[str, Any] | None, tol: float = 1e-6) -> list[Violation]:
    """Every violation of the plan's tables and of its run record."""
    report = _Report(tol)
    scale = _scale(inst, run, report)
    result = evaluate(inst, parcels, villages, tol, scale=scale)
    if townships is not None:
        _townships(inst, result, parcels, townships, scale, report)
    if run is not None:
        _run(inst, result, run, report, scale)
    return result.violations + report.sorted()


def _scale(inst: Instance, run: dict[str, Any] | None, report: _Report) -> dict[str, float] | None:
    """Each service's reference in the index, the checker's own (Instance.index_reference: the parcels' potential or
    the scenario's pinned value), compared with what run.json records ("reference", or "es_scale" before it); a
    folder that records references without the scenario needing them is read with its own (townships.csv's
    index columns)."""
    recorded = None
    if run is not None:
        recorded = (run.get("reference") or {}).get("values") or run.get("es_scale")
        recorded = {str(k): float(v) for k, v in recorded.items() if v} if recorded else None
    if not inst.needs_index():
        return recorded
    own = inst.index_reference()
    if recorded is not None:
        for service in sorted(set(own) | set(recorded)):
            said, found = recorded.get(service), own.get(service)
            if said is None or found is None or abs(said - found) > 1e-9 * max(1.0, abs(found)):
                report.add("consistency", f"run.reference.{service}",
                           f"run.json's index reference for {service} is {said} but the parcels' potential (or the "
                           f"scenario's pinned value) is {found}", abs((said or 0.0) - (found or 0.0)) or 1.0)
    return own


# ------------------------------------------------------------------------------------------------------------
# townships.csv


def _townships(inst: Instance, result: Evaluation, parcels: pd.DataFrame, table: pd.DataFrame,
               scale: dict[str, float] | None, report: _Report) -> None:
    """Every column of townships.csv recomputed from the plan's decisions."""
    ctx = result.ctx
    v = inst.villages
    parcel_town = inst.parcels["township"].astype(str).to_numpy()
    village_town = v["township"].astype(str).to_numpy()
    names = np.array(sorted(set(parcel_town) | set(village_town)), dtype=object)  # "": parcels in no village
    nt = len(names)
    tidx = pd.Index(names).get_indexer(parcel_town)
    town_of_village = pd.Index(names).get_indexer(village_town)

    def per_township(values: np.ndarray) -> np.ndarray:
        return np.bincount(tidx, weights=np.asarray(values, dtype=float), minlength=nt)

    def villages_per_township(values: np.ndarray) -> np.ndarray:
        return np.bincount(town_of_village, weights=np.asarray(values, dtype=float), minlength=nt)

    parcel_count = np.bincount(tidx, minlength=nt).astype(float)
    village_count = np.bincount(town_of_village, minlength=nt).astype(float)

    livestock = inst.params["livestock"]
    herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
    area = per_township(ctx.area)
    expected: dict[str, np.ndarray] = {
        "area_mu": area,
        "area_ha": area / MU_PER_HA,
        "establishment_cost": per_township(ctx.coef["cost"]) + herd_cost * villages_per_township(ctx.herd),
        "labour_days": villages_per_township(result.labour_used),
        "herd": villages_per_township(ctx.herd),
        "ranger_posts": villages_per_township(ctx.posts),
        "population": villages_per_township(v["population"].to_numpy(dtype=float)),
    }
    if ctx.households_reached is not None:
        expected["households_reached"] = villages_per_township(ctx.households_reached)
    if ctx.below_floor is not None:
        expected["villages_at_or_below_floor"] = villages_per_township(ctx.below_floor.astype(float))
    for service in inst.services:
        gain = per_township(ctx.coef[f"gain_{service}"])
        expected[f"gain_{service}"] = gain
        if scale and scale.get(service):
            expected[f"index_{service}"] = gain / float(scale[service])
    options = ctx.kinds.option[np.maximum(ctx.kind, 0)]
    variants = ctx.kinds.variant[np.maximum(ctx.kind, 0)]
    assigned = ctx.kind >= 0
    for option in dict.fromkeys(ctx.kinds.option.tolist()):
        by_option = per_township(ctx.area * (assigned & (options == option)))
        expected[f"area_mu__{option}"] = by_option
        expected[f"share__{option}"] = by_option / np.where(area > 0, area, 1.0)
    for option, variant in ctx.pairs:
        if option == variant:
            continue
        by_pair = per_township(ctx.area * (assigned & (options == option) & (variants == variant)))
        expected[f"area_mu__{option}.{variant}"] = by_pair
        expected[f"share__{option}.{variant}"] = by_pair / np.where(area > 0, area, 1.0)

    if "township" not in table.columns:
        report.add("consistency", "townships.csv", "townships.csv has no township column", 1.0)
        return
    shown_names = table["township"].fillna("").astype(str).to_numpy()
    for name in sorted(set(shown_names) - set(names)):
        report.add("consistency", f"townships.{name}", f"township {name} in townships.csv is not in the inputs",
                   1.0)
    for name in sorted(set(names) - set(shown_names)):
        report.add("consistency", f"townships.{name}", f"township {name} is missing from townships.csv", 1.0)
    row = pd.Index(shown_names).get_indexer(names)
    present = row >= 0
    for column in table.columns:
        if column == "township":
            continue
        if column not in expected:
            if np.nan_to_num(_column(table, column)).any():  # figures the plan does not give: another catalog's?
                report.add("consistency", f"townships.{column}",
                           f"townships.csv has a column {column} this plan does not give", 1.0)
            continue
    for column, value in expected.items():
        if column not in table.columns:
            if np.abs(value).max(initial=0.0) > 0 and not column.startswith(("area_mu__", "share__")):
                report.add("consistency", f"townships.{column}", f"townships.csv lacks the column {column}", 1.0)
            elif np.abs(value).max(initial=0.0) > 0:
                report.add("consistency", f"townships.{column}",
                           f"townships.csv lacks {column} though the plan has {_num(float(value.sum()))} there", 1.0)
            continue
        shown = _column(table, column)
        # the plan's own figures are rounded (area_mu to 4 decimals, money and days to 2, gains to 6) and
        # townships.csv may sum the rounded ones: allow half a unit of the last place per parcel or village
        slack = np.zeros(nt) + 1e-6
        if column.startswith(("area_mu", "area_ha", "share__")):
            slack += 5.1e-5 * parcel_count / (MU_PER_HA if column == "area_ha" else 1.0)
            if column.startswith("share__"):
                slack = slack / np.where(area > 0, area, 1.0)
        elif column.startswith(("gain_", "index_")):
            slack += 5.1e-7 * parcel_count
            service = column.split("_", 1)[1]
            if column.startswith("index_") and scale and scale.get(service):
                slack = slack / abs(float(scale[service]))
        elif column in ("establishment_cost", "labour_days"):
            slack += 5.1e-3 * (parcel_count + village_count)
        for t in np.flatnonzero(present):
            reported, recomputed = shown[row[t]], value[t]
            if column.startswith("index_") and math.isnan(reported):
                continue  # an index left blank is not reported (a transition folder's plan at maturity)
            limit = report.tol * max(1.0, abs(recomputed)) + slack[t]
            if not abs(reported - recomputed) <= limit:
                report.add("consistency", f"townships.{names[t]}.{column}",
                           f"township {names[t]}: townships.csv says {column} {_num(reported)} but the plan gives "
                           f"{_num(recomputed)}", abs(reported - recomputed) if math.isfinite(reported) else 1.0)


# ------------------------------------------------------------------------------------------------------------
# run.json


def _objective_value(inst: Instance, result: Evaluation, name: str) -> float | None:
    """The value of an objective for the plan, the boundary penalty included (subtracted from a maximised one,
    added to a minimised one)."""
    value = result.values.get(name)
    if value is None:
        return None
    spatial = inst.spatial
    if spatial is not None and spatial.blm > 0:
        ctx = result.ctx
        options = np.where(ctx.kind >= 0, ctx.kinds.option[np.maximum(ctx.kind, 0)], "")
        penalty = spatial.penalty(options)
        value = value - penalty if inst.params["sense"] == "max" else value + penalty
    return float(value)


def _close(a: float, b: float, rel: float = 1e-6, absolute: float = 1e-6) -> bool:
    return abs(a - b) <= absolute + rel * max(abs(a), abs(b))


def _run(inst: Instance, result: Evaluation, run: dict[str, Any], report: _Report,
         scale: dict[str, float] | None) -> None:
    """run.json: the objective recomputed from the plan, its bound and gap, the status, and the totals."""
    objective = run.get("objective") or {}
    name = objective.get("name", inst.params["objective"])
    sense = objective.get("sense", inst.params["sense"])
    if name != inst.params["objective"] or sense != inst.params["sense"]:
        report.add("consistency", "run.objective.name",
                   f"run.json's objective is to {sense} {name}; the scenario's is to {inst.params['sense']} "
                   f"{inst.params['objective']}", 1.0)
    weights = objective.get("weights")
    if weights is not None and {k: float(w) for k, w in weights.items()} != {
            k: float(w) for k, w in inst.params["weights"].items()}:
        report.add("consistency", "run.objective.weights",
                   f"run.json's service weights {weights} are not the scenario's {inst.params['weights']}", 1.0)
    value, bound, gap = objective.get("value"), objective.get("bound"), objective.get("gap")
    status = run.get("status")
    has_plan = value is not None
    recomputed = _objective_value(inst, result, inst.params["objective"])
    slack = float(result.slack.sum()) if inst.params["objective"] == "income" else 0.0
    if has_plan and recomputed is not None and not _close(float(value), recomputed, absolute=1e-6 + slack):
        report.add("consistency", "run.objective.value",
                   f"run.json's objective {name} is {_num(float(value))} but the plan gives {_num(recomputed)}",
                   abs(float(value) - recomputed))
    if has_plan and bound is not None:
        b, o = float(bound), float(value)
        excess = (o - b) if inst.params["sense"] == "max" else (b - o)
        if excess > 1e-6 * max(1.0, abs(o), abs(b)):
            word = "above" if inst.params["sense"] == "max" else "below"
            report.add("consistency", "run.objective.bound",
                       f"run.json's objective {_num(o)} is {word} its own bound {_num(b)}: no plan can beat a "
                       "proven bound", excess)
        true_gap = abs(b - o) / max(abs(o), 1e-9) if b != o else 0.0
        if gap is None or not abs(float(gap) - true_gap) <= GAP_TOLERANCE * max(1.0, true_gap):
            report.add("consistency", "run.objective.gap",
                       f"run.json's gap {gap} is not |bound - objective| / |objective| = {true_gap:.6g}",
                       abs(float(gap) - true_gap) if gap is not None else 1.0)
        asked = ((run.get("solver") or {}).get("options") or {}).get("mip_rel_gap")
        absolute = ((run.get("solver") or {}).get("options") or {}).get("mip_abs_gap") or 0.0
        if status == "optimal" and asked is not None and true_gap > float(asked) * (1 + 1e-6) + 1e-9 \
                and abs(b - o) > float(absolute) + 1e-9:
            report.add("consistency", "run.status",
                       f"run.json says optimal, but its gap {true_gap:.6g} is above the {float(asked):g} asked", 1.0)
    elif has_plan and status == "optimal" and bound is None:
        report.add("consistency", "run.objective.bound", "run.json says optimal but gives no bound", 1.0)
    totals = run.get("totals") or {}
    ctx = result.ctx
    expected = {"income": float(result.income.sum()), "establishment_cost": result.values["cost"]}
    expected.update({f"gain_{s}": result.values[s] for s in inst.services})
    if ctx.below_floor is not None:
        expected["villages_at_or_below_floor"] = float(ctx.below_floor.sum())
    for key, shown in totals.items():
        if key not in expected:
            continue
        extra = float(result.slack.sum()) if key == "income" else 0.0
        if shown is None or not _close(float(shown), expected[key], absolute=1e-6 + extra + CSV_TOLERANCE):
            report.add("consistency", f"run.totals.{key}",
                       f"run.json's totals.{key} is {shown} but the plan gives {_num(expected[key])}",
                       abs(float(shown) - expected[key]) if shown is not None else 1.0)
    for key in expected:
        if totals and key not in totals:
            report.add("consistency", f"run.totals.{key}", f"run.json's totals lack {key}", 1.0)


# ------------------------------------------------------------------------------------------------------------
# The folder


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): data}


def _scenario_differences(copy: dict[str, Any], on_disk: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Dotted keys where run.json's copy of the scenario and the file differ (solver settings aside)."""
    a = {k: v for k, v in _flatten(copy).items() if k.split(".")[0] not in IGNORED_SCENARIO_KEYS}
    b = {k: v for k, v in _flatten(on_disk).items() if k.split(".")[0] not in IGNORED_SCENARIO_KEYS}
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_outdir(out_dir: str | Path, tol: float = 1e-6) -> list[Violation]:
    """Check a results folder (plan.gpkg, villages.csv, townships.csv, run.json) against the scenario file on disk,
    its inputs and its catalog."""
    import pyogrio

    from optiland.io.catalog import load_catalog
    from optiland.io.inputs import file_hash, read_inputs
    from optiland.io.scenario import load_scenario

    out_dir = Path(out_dir)
    for name in ("run.json", "plan.gpkg", "villages.csv"):
        if not (out_dir / name).is_file():
            raise InputError([Issue("results file missing", file=str(out_dir / name))])
    run_file = out_dir / "run.json"
    run = json.loads(run_file.read_text(encoding="utf-8"))
    if not run.get("scenario_path"):
        raise InputError([Issue("run.json names no scenario file (the plan was solved from a scenario in "
                                "memory), so it cannot be checked from files", file=str(run_file),
                                column="scenario_path")])
    path = Path(run["scenario_path"])
    if not path.is_absolute() and not path.is_file() and (out_dir / path).is_file():
        path = out_dir / path
    scenario = load_scenario(path)
    report = _Report(tol)
    recorded = run.get("input_hashes") or {}
    if recorded.get("scenario") is not None and recorded["scenario"] != file_hash(path):
        report.add("provenance", "input_hashes.scenario",
                   f"the scenario file {path} is not the one the run read (sha256 {str(recorded['scenario'])[:12]} "
                   f"in run.json, {file_hash(path)[:12]} on disk); the plan is checked against the file", 1.0)
    copy = run.get("scenario")
    if copy is not None:
        on_disk = json.loads(json.dumps(scenario.to_dict(), default=str))
        for key, said, found in _scenario_differences(json.loads(json.dumps(copy, default=str)), on_disk):
            report.add("provenance", f"scenario.{key}",
                       f"run.json's copy of the scenario says {key} = {said!r} but the scenario file {path} says "
                       f"{found!r}; the plan is checked against the file", 1.0)
    overrides = (run.get("catalog") or {}).get("overrides")
    if overrides is not None and json.loads(json.dumps(overrides)) != json.loads(
            json.dumps(scenario.catalog.overrides)):
        report.add("provenance", "catalog.overrides",
                   f"run.json's catalog overrides {overrides} are not the scenario file's "
                   f"{scenario.catalog.overrides}; the plan is checked against the file", 1.0)
    catalog_path = scenario.resolve(scenario.catalog.path) if scenario.catalog.path else None
    catalog = load_catalog(catalog_path, overrides=scenario.catalog.overrides, region=scenario.catalog.region)
    inputs = read_inputs(scenario, catalog)
    for key in sorted(recorded):  # what run.json records (a plan from another tool may record nothing)
        if key == "scenario":
            continue
        old, new = recorded.get(key), inputs.hashes.get(key)
        if old != new:
            report.add("provenance", f"input_hashes.{key}",
                       f"the {key} input changed since the run (sha256 {str(old)[:12]} in run.json, "
                       f"{str(new)[:12]} now); the plan is checked against it as it is now", 1.0)
    version = (run.get("catalog") or {}).get("version")
    if version is not None and version != catalog.version:
        report.add("provenance", "catalog",
                   f"the catalog {catalog.path} changed since the run (version {version} in run.json, "
                   f"{catalog.version} now); the plan is checked against it as it is now", 1.0)
    parcels = pyogrio.read_dataframe(out_dir / "plan.gpkg", layer="parcels", read_geometry=False)
    villages = read_results_csv(out_dir / "villages.csv", dtype={"village": str, "township": str})
    townships_file = out_dir / "townships.csv"
    townships = read_results_csv(townships_file, dtype={"township": str}, keep_default_na=False) \
        if townships_file.is_file() else None
    if townships is None and "objective" in run:  # a solve writes it; a plan from another tool may lack it
        report.add("consistency", "townships.csv", f"{townships_file} is missing", 1.0)
    inst = instance_from_inputs(scenario, catalog, inputs)
    violations = check_tables(inst, parcels, villages, townships, run, tol)
    if "transition" in run:  # a folder of `optiland transition`: the yearly rows too (the transition's own check)
        from optiland.views.transition_output import check_transition_folder

        violations += check_transition_folder(out_dir, scenario, run, parcels, villages)
    return report.sorted() + violations
