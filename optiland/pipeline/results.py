"""The results schema: plan.gpkg (layer parcels), villages.csv, townships.csv, run.json; written whole or not at all.

Documented in README.md ("Results"); other commands (pareto, zone, report, sweep) read it, so keep it stable.
CSV files are UTF-8 with a byte-order mark so that Excel opens them cleanly.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from optiland.io.tables import write_csv
from optiland.model.problem import village_sum
from optiland.pipeline.outdir import write_atomically  # noqa: F401 - writers import it from here too
from optiland.pipeline.run import Prepared, RunOutcome, village_income_parts

MU_PER_HA = 15.0
FLOOR_TOLERANCE = 0.5  # yuan per capita: a village this close to its floor counts as "at" it
INCOME_SOURCES = ("nonland", "land", "cattle", "compensation", "wages")


@dataclass
class Plan:
    """Tidy results of one solve; `to_geodataframe()` joins geometry back."""

    parcels: pd.DataFrame
    villages: pd.DataFrame
    townships: pd.DataFrame
    run: dict[str, Any]
    geometry: gpd.GeoSeries | None = None
    extras: list[Callable[[Path], None]] = field(default_factory=list)
    """Writers of more content into the new folder, run after the tables and inside the same atomic write (the
    command line adds views' styles and layers to plan.gpkg: optiland.views.report_gpkg.style_plan)."""

    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """Parcels with their geometry."""
        return gpd.GeoDataFrame(self.parcels, geometry=self.geometry.reset_index(drop=True))

    def write(self, out_dir: str | Path, commit: Callable[[], None] | None = None) -> Path:
        """Write every output to a temporary folder beside OUTDIR, then move it into place in one step
        (`optiland.pipeline.outdir`); `commit` (a database transaction's) runs after the swap, which it undoes if it
        fails."""
        return write_atomically(Path(out_dir), self._write_into, commit=commit)

    def _write_into(self, folder: Path) -> None:
        start = time.perf_counter()
        frame = self.to_geodataframe()
        with warnings.catch_warnings():
            if frame.crs is None and frame.geometry.isna().all():  # units without geometry (a Marxan import)
                warnings.filterwarnings("ignore", message="'crs' was not provided")
            frame.to_file(folder / "plan.gpkg", layer="parcels", driver="GPKG", engine="pyogrio")
        write_csv(self.villages, folder / "villages.csv")  # formula-like names protected (optiland.io.tables)
        write_csv(self.townships, folder / "townships.csv")
        self.run["times"]["write"] = round(time.perf_counter() - start, 3)
        (folder / "run.json").write_text(json.dumps(self.run, indent=2, ensure_ascii=False, default=_json),
                                         encoding="utf-8")
        for extra in self.extras:
            extra(folder)


def _json(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def households_reached(outcome: RunOutcome) -> np.ndarray:
    """Per village: converted area / mu one household works, plus ranger posts, capped at the village's households.

    An estimate (the model does not assign households); `mu_per_household` per option is in the catalog.
    """
    problem = outcome.prepared.problem
    allowed = problem.allowed
    chosen = outcome.solution.x > 0.5
    per_hh = allowed["mu_per_household"].to_numpy()
    reach = np.where(chosen & allowed["converted"].to_numpy() & (per_hh > 0),
                     allowed["area"].to_numpy() / np.where(per_hh > 0, per_hh, 1.0), 0.0)
    reached = village_sum(allowed["village"], np.nan_to_num(reach), len(problem.villages))
    reached += outcome.solution.posts
    return np.minimum(np.floor(reached), problem.villages["households"].to_numpy())


def parcel_table(outcome: RunOutcome) -> pd.DataFrame:
    """One row per parcel: its assignment and what it earns, costs and gives."""
    problem = outcome.prepared.problem
    allowed = problem.allowed
    rows = outcome.solution.chosen_rows()
    chosen = allowed.iloc[rows].set_index("parcel").sort_index()
    parcels = problem.parcels
    uses = problem.catalog.current_uses
    table = pd.DataFrame({
        "parcel_id": parcels["parcel_id"],
        "village": parcels["village"],
        "township": parcels["township"],
        "area_mu": parcels["area_mu"].round(4),
        "area_ha": (parcels["area_mu"] / MU_PER_HA).round(5),
        "current_use": parcels["land_use"],
        "current_use_name": uses["name"].reindex(parcels["land_use"]).to_numpy(),
        "grade": parcels["grade"],
        "red_line": parcels["red_line"],
        "basic_farmland": parcels["basic_farmland"],
        "option": chosen["option"].to_numpy(),
        "variant": chosen["variant"].to_numpy(),
        "income": chosen["income"].round(2).to_numpy(),
        "compensation": chosen["compensation"].round(2).to_numpy(),
        "establishment_cost": chosen["cost"].round(2).to_numpy(),
        "labour_days": chosen["labour"].round(3).to_numpy(),
    })
    for service in problem.services:
        table[f"gain_{service}"] = chosen[f"gain_{service}"].round(6).to_numpy()
    return table


def village_table(outcome: RunOutcome) -> pd.DataFrame:
    """One row per village: incomes before and after, by source, herd, posts, labour, households reached."""
    problem = outcome.prepared.problem
    solution = outcome.solution
    villages = problem.villages
    parts = village_income_parts(problem, solution)
    population = villages["population"].to_numpy(dtype=float)
    allowed = problem.allowed
    chosen = solution.x > 0.5
    labour = village_sum(allowed["village"], allowed["labour"].to_numpy() * chosen, len(villages))
    labour += float(problem.params["livestock"]["labour_days_per_head"]) * solution.herd
    total_after = sum(parts[s] for s in INCOME_SOURCES)
    before = parts["nonland"] + villages["current_land_income"].to_numpy()
    after_pc = total_after / population
    table = pd.DataFrame({
        "village": villages["village"],
        "township": villages["township"],
        "population": villages["population"].astype(int),
        "households": villages["households"].astype(int),
        "floor": villages["floor"],
        "income_per_capita_before": (before / population).round(2),
        "income_per_capita_after": after_pc.round(2),
        **{f"income_{s}": np.round(parts[s], 2) for s in INCOME_SOURCES},
        "income_total": np.round(total_after, 2),
        "herd": solution.herd.astype(int),
        "ranger_posts": solution.posts.astype(int),
        "labour_used": labour.round(2),
        "labour_available": villages["labour_days"],
        "households_reached": households_reached(outcome).astype(int),
        "at_or_below_floor": after_pc <= villages["floor"].to_numpy() + FLOOR_TOLERANCE,
    })
    return table


def township_table(outcome: RunOutcome, parcels: pd.DataFrame, villages: pd.DataFrame) -> pd.DataFrame:
    """One row per township: totals, then area and share by option and by option.variant."""
    problem = outcome.prepared.problem
    grouped = parcels.groupby("township")
    table = pd.DataFrame({"area_mu": grouped["area_mu"].sum()})
    table["area_ha"] = table["area_mu"] / MU_PER_HA
    table["establishment_cost"] = grouped["establishment_cost"].sum()
    herd_cost = float(problem.params["livestock"]["purchase_cost_per_head"]) + float(
        problem.params["livestock"]["shed_cost_per_head"])
    by_village = villages.groupby("township")

    def of_villages(column: str) -> pd.Series:  # a township of parcels in no village (a Marxan import) has 0
        return by_village[column].sum().reindex(table.index, fill_value=0)

    table["establishment_cost"] += of_villages("herd") * herd_cost
    table["labour_days"] = of_villages("labour_used")
    table["herd"] = of_villages("herd")
    table["ranger_posts"] = of_villages("ranger_posts")
    table["households_reached"] = of_villages("households_reached")
    table["population"] = of_villages("population")
    table["villages_at_or_below_floor"] = of_villages("at_or_below_floor")
    for service in problem.services:
        table[f"gain_{service}"] = grouped[f"gain_{service}"].sum()
        scale = outcome.es_scale.get(service)
        table[f"index_{service}"] = table[f"gain_{service}"] / scale if scale else np.nan
    areas = parcels.pivot_table(index="township", columns="option", values="area_mu", aggfunc="sum", fill_value=0)
    for option in areas.columns:
        table[f"area_mu__{option}"] = areas[option]
        table[f"share__{option}"] = areas[option] / table["area_mu"]
    pair = parcels["option"] + "." + parcels["variant"]
    variants = parcels.assign(pair=pair).pivot_table(index="township", columns="pair", values="area_mu",
                                                     aggfunc="sum", fill_value=0)
    for name in variants.columns:
        option, variant = name.split(".", 1)
        if option == variant:
            continue
        table[f"area_mu__{name}"] = variants[name]
        table[f"share__{name}"] = variants[name] / table["area_mu"]
    return table.reset_index().round(6)


def provenance(prepared: Prepared) -> dict[str, Any]:
    """What produced a result: version, time, scenario and its path, input hashes, catalog and CRS (for run.json)."""
    scenario = prepared.scenario
    return {
        "optiland_version": version("optiland"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenario_path": str(scenario.source_path) if scenario.source_path else None,
        "scenario": scenario.to_dict(),
        "input_hashes": prepared.inputs.hashes,
        "catalog": {"name": prepared.catalog.name, "version": prepared.catalog.version,
                    "path": str(prepared.catalog.path), "overrides": scenario.catalog.overrides},
        "crs": prepared.inputs.crs_note,
    }


def reference_record(outcome: RunOutcome) -> dict[str, Any] | None:
    """run.json's "reference": the index's R_s, their kind and the potentials (None when the run used no index)."""
    if outcome.reference is not None:
        return outcome.reference.record()
    if not outcome.es_scale:
        return None
    from optiland.pipeline.reference import kind_of

    scenario = outcome.prepared.scenario
    pinned = scenario.objective.reference if scenario is not None else {}
    return {"kind": kind_of(outcome.es_scale, pinned), "values": dict(outcome.es_scale),
            "pinned": [s for s in outcome.es_scale if s in pinned]}


def make_plan(outcome: RunOutcome) -> Plan:
    """Collect the tables and the provenance record of a solved scenario."""
    prepared = outcome.prepared
    parcels = parcel_table(outcome)
    villages = village_table(outcome)
    townships = township_table(outcome, parcels, villages)
    result = outcome.result
    run = {
        **provenance(prepared),
        "backend": outcome.backend,
        "solver": {"name": result.solver, "version": result.solver_version, "options": outcome.options.as_dict()},
        "status": result.status.value,
        "message": result.message,
        "objective": {"name": prepared.problem.params["objective"], "sense": prepared.problem.params["sense"],
                      "value": result.objective, "bound": result.bound, "gap": result.gap,
                      "weights": prepared.problem.params["weights"]},
        "reference": reference_record(outcome),
        "totals": {
            "income": float(villages["income_total"].sum()),
            "establishment_cost": float(townships["establishment_cost"].sum()),
            **{f"gain_{s}": float(parcels[f"gain_{s}"].sum()) for s in prepared.problem.services},
            "villages_at_or_below_floor": int(villages["at_or_below_floor"].sum()),
        },
        "model_size": outcome.model_size,
        "times": {k: round(v, 3) for k, v in outcome.times.items()},
        "notes": outcome.notes,
    }
    return Plan(parcels=parcels, villages=villages, townships=townships, run=run,
                geometry=prepared.inputs.parcels.geometry)
