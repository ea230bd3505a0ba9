"""Marxan and Marxan with Zones inputs as optiland instances, Marxan's score terms, and Marxan solutions read back.

`read_marxan(input.dat)` reads the parameter file and the tables it names (pu, spec, puvspr, bound; for Marxan with
Zones also zones, costs, zonecost, zonecontrib, zonetarget, zonebound, pulock, puzone). Tables may be comma-, tab-
or space-separated, with spaces after the separators; ``fpf`` is read as ``spf``. Every bad value is an error naming
the file, the line, the column and the value.

MATRIXSPORDERNAME (standard Marxan): Marxan 4.0.6 reads that file (species, pu, amount) and then computes its base
penalties by its routine ``computePenaltiesOptimise`` instead of ``computePenalties`` (marxan.cpp, executeMarxan;
computation.cpp). The two differ where units are locked in: ``computePenalties`` starts every feature's penalty
from the cost of *every* unit locked in (status 2), ``computePenaltiesOptimise`` only from those the sporder file lists
for the feature, and takes the amounts from that file. `read_marxan` reads the file when it is there (its ids checked)
and the score follows Marxan's choice (``marxan.json`` ``penalty_routine``: ``optimise`` or ``standard``). When
input.dat names a file that is missing, Marxan 4.0.6 stops ("PU v Species file ... not found"); the import goes on
with the standard routine, Marxan's without that line, and says so in its notes. Marxan with Zones 4 does not read
the file (its loader is commented out), so there it is ignored, with a note.

`write_instance(data, DIR)` writes an instance without villages and without geometry (README, "Marxan"):
``units.csv`` (one parcel per planning unit, area_mu = 1: Marxan units carry no area), a generated catalog whose
options are the zones (standard Marxan: ``available``, which keeps the current use, and ``selected``), the boundary
table, the feature amounts, the per-zone unit costs, the locks and ``scenario.toml``: minimise cost + BLM x
boundary with every target met, the hard-target problem. ``marxan.json`` keeps Marxan's own parameters (SPF per
feature, cost threshold) for the score terms.

Semantics (Marxan 4 / Marxan with Zones 4 manuals):

- targets: ``prop`` > 0 sets the target to prop x the feature's total amount, else ``target``; a target <= 0 asks
  nothing; ``targetocc`` asks for that many selected units holding the feature (a derived feature
  ``name#occurrences``, amount 1 per unit). Zone targets (zonetarget: type 0 an amount, 1 a proportion of the
  total) count the amount held in that zone (times its contribution).
- standard Marxan: status 2 locks a unit in, 3 locks it out (0 and 1 leave it free); the boundary of the selected set
  counts, and a unit's outer edge (id1 = id2) counts when it is selected.
- zones: the first zone plays ``available`` (it keeps the current use); a unit's cost in zone z is
  sum_k cost_k x zonecost[z, k] (every multiplier 1 without a zonecost file); without zonecontrib every zone but the
  first contributes its whole amount; zonebound gives the weight of a boundary between two zones (without it 1
  between different zones); an outer edge weighs as a boundary with the first zone.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import InputError, Issue
from optiland.model.problem import _coefficients, variant_table
from optiland.violations import FEATURE_TARGET_TOLERANCE

AVAILABLE, SELECTED = "available", "selected"
SPORDER_FILE = "sporder.csv"
"""The instance's copy of the MATRIXSPORDERNAME table (feature name, parcel_id, amount)."""
LAND_USE = "marxan"
_FILE_KEYS = {"pu": "PUNAME", "spec": "SPECNAME", "puvspr": "PUVSPRNAME", "bound": "BOUNDNAME",
              "zones": "ZONESNAME", "costs": "COSTSNAME", "zonecost": "ZONECOSTNAME", "zonecontrib": "ZONECONTRIBNAME",
              "zonetarget": "ZONETARGETNAME", "zonebound": "ZONEBOUNDCOSTNAME", "pulock": "PULOCKNAME",
              "puzone": "PUZONENAME"}
_ALIASES = {"fpf": "spf", "puid": "pu", "speciesid": "species", "featureid": "species", "zoneid": "zone",
            "zoneid1": "zone1", "zoneid2": "zone2", "costid": "costid", "planning_unit": "pu", "solution": "zone",
            "puid1": "id1", "puid2": "id2"}


@dataclass
class MarxanData:
    """A Marxan problem as tables: units (id, cost columns, status), features (id, name, target, spf), amounts
    (species, pu, amount), boundaries (id1, id2, boundary), zones, and the parameters."""

    source: Path
    params: dict[str, str]
    units: pd.DataFrame
    features: pd.DataFrame
    amounts: pd.DataFrame
    boundaries: pd.DataFrame
    zones: list[str] = field(default_factory=lambda: [AVAILABLE, SELECTED])
    zone_ids: list[str] = field(default_factory=list)
    unit_costs: pd.DataFrame = field(default_factory=pd.DataFrame)
    """(parcel_id, option, cost): the cost of each unit in each zone."""
    contributions: dict[str, dict[str, float]] = field(default_factory=dict)
    """feature name -> zone -> share of the amount credited."""
    zone_targets: list[tuple[str, str, float]] = field(default_factory=list)
    """(feature name, zone, absolute target)."""
    zone_weights: dict[tuple[str, str], float] = field(default_factory=dict)
    locks: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["parcel_id", "option", "lock"]))
    notes: list[str] = field(default_factory=list)
    sporder: pd.DataFrame | None = None
    """The MATRIXSPORDERNAME table (species, pu, amount) when read: Marxan's base penalties then come from
    computePenaltiesOptimise (module docstring)."""

    @property
    def penalty_routine(self) -> str:
        """Marxan 4.0.6's routine for the base penalties: ``optimise`` with a sporder table, else ``standard``."""
        return "optimise" if self.sporder is not None else "standard"

    @property
    def blm(self) -> float:
        """Marxan's boundary length modifier (BLM; 0 when not given)."""
        return _number(self.params.get("BLM", "0"), "BLM", self.source)

    def targets(self) -> dict[str, float]:
        """Feature name -> absolute target (only positive ones: a target <= 0 asks nothing)."""
        return {row.name: float(row.target) for row in self.features.itertuples(index=False) if row.target > 0}


def _number(text: str, key: str, file: Path) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError([Issue("not a number", file=str(file), column=key, value=text)]) from None


def read_parameters(path: Path) -> dict[str, str]:
    """The KEY value lines of a Marxan input.dat (other lines are headings)."""
    if not path.is_file():
        raise InputError([Issue("Marxan input file not found", file=str(path))])
    params = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)\s+(\S.*?)\s*$", line)
        if match:
            params[match[1]] = match[2]
    return params


def read_table(path: Path, required: tuple[str, ...], numeric: tuple[str, ...] = (),
               ids: tuple[str, ...] = ()) -> pd.DataFrame:
    """A Marxan table: separator sniffed, column names stripped and lower-cased (aliases applied), ids as text,
    numbers checked (errors name the line, column and value)."""
    file = str(path)
    if not path.is_file():
        raise InputError([Issue("Marxan table not found", file=file)])
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text.strip() else ""
    sep = "," if "," in first else ("\t" if "\t" in first else r"\s+")
    table = pd.read_csv(path, sep=sep, engine="python", skipinitialspace=True, dtype=str, encoding="utf-8-sig")
    table.columns = [_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in table.columns]
    table = table.apply(lambda column: column.str.strip())
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError([Issue(f"missing column (has {', '.join(table.columns)})", file=file, column=c)
                          for c in missing])
    problems = []
    for column in numeric:
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        for i in np.flatnonzero(values.isna().to_numpy())[:20]:
            problems.append(Issue("not a number", file=file, row=f"line {i + 2}", column=column,
                                  value=table[column].iloc[i]))
        table[column] = values.astype(float)
    for column in ids:
        for i in np.flatnonzero(table[column].isna().to_numpy())[:20]:
            problems.append(Issue("missing id", file=file, row=f"line {i + 2}", column=column))
    if problems:
        raise InputError(problems)
    return table


def _unknown(table: pd.DataFrame, column: str, known: Any, file: Path, what: str, first: int = 2) -> list[Issue]:
    """Issues for values of `column` not in `known` (`first`: the file line of the table's first row)."""
    bad = ~table[column].isin(list(known))
    return [Issue(f"unknown {what}", file=str(file), row=f"line {i + first}", column=column,
                  value=table[column].iloc[i])
            for i in np.flatnonzero(bad.to_numpy())[:20]]


def read_features(path: Path) -> pd.DataFrame:
    """spec.dat / feat.dat: id, and prop or target, spf (fpf), name (the id when absent)."""
    table = read_table(path, ("id",), numeric=("prop", "target", "spf", "targetocc"), ids=("id",))
    if "prop" not in table.columns and "target" not in table.columns:
        raise InputError([Issue("a feature table needs prop or target", file=str(path), column="prop")])
    for column, default in (("prop", 0.0), ("target", 0.0), ("spf", 0.0), ("targetocc", 0.0)):
        if column not in table.columns:
            table[column] = default
    if "name" not in table.columns:
        table["name"] = table["id"]
    table["name"] = table["name"].fillna(table["id"])
    duplicated = table["id"].duplicated().to_numpy()
    problems = [Issue("duplicate feature id", file=str(path), row=f"line {i + 2}", column="id",
                      value=table["id"].iloc[i]) for i in np.flatnonzero(duplicated)]
    if problems:
        raise InputError(problems)
    return table[["id", "name", "prop", "target", "spf", "targetocc"]]


def read_marxan(input_dat: str | Path) -> MarxanData:
    """Read a Marxan (or Marxan with Zones) input set from its input.dat."""
    input_dat = Path(input_dat)
    params = read_parameters(input_dat)
    folder = input_dat.parent / params.get("INPUTDIR", "input")
    files = {kind: folder / params[key] for kind, key in _FILE_KEYS.items() if key in params}
    if "spec" not in files and "FEATNAME" in params:
        files["spec"] = folder / params["FEATNAME"]
    if "bound" not in files and "CONNECTIONNAME" in params:
        files["bound"] = folder / params["CONNECTIONNAME"]
    for kind in ("pu", "spec", "puvspr"):
        if kind not in files:
            raise InputError([Issue(f"input.dat names no {kind} file", file=str(input_dat),
                                    column=_FILE_KEYS[kind])])
    data = assemble(input_dat, params, files, [])
    if "MATRIXSPORDERNAME" in params:
        _sporder(data, folder / params["MATRIXSPORDERNAME"], zoned="zones" in files)
    return data


def _sporder(data: MarxanData, path: Path, zoned: bool) -> None:
    """Read the MATRIXSPORDERNAME table into `data.sporder` (standard Marxan), or note why it is not used."""
    if zoned:
        data.notes.append(f"MATRIXSPORDERNAME {path.name} ignored: Marxan with Zones 4 does not read it")
        return
    if not path.is_file():
        data.notes.append(f"MATRIXSPORDERNAME names {path}, which is missing: Marxan 4.0.6 stops there ('PU v Species "
                          f"file not found'); scores use its standard penalty routine (computePenalties), as "
                          f"Marxan without that line")
        return
    table = read_table(path, ("species", "pu", "amount"), numeric=("amount",), ids=("species", "pu"))
    problems = _unknown(table, "pu", data.units["id"], path, "planning unit")
    problems += _unknown(table, "species", data.features["id"], path, "feature")
    if problems:
        raise InputError(problems)
    data.sporder = table[["species", "pu", "amount"]]
    data.notes.append(f"MATRIXSPORDERNAME {path.name} read: base penalties as Marxan 4.0.6's computePenaltiesOptimise "
                      f"(only the units locked in that hold the feature count)")


def assemble(source: Path, params: dict[str, str], files: dict[str, Path], notes: list[str]) -> MarxanData:
    """Read and cross-check the tables of a Marxan input set (file kinds as in _FILE_KEYS)."""
    zoned = "zones" in files
    units = read_table(files["pu"], ("id",), ids=("id",))
    duplicated = units["id"].duplicated().to_numpy()
    if duplicated.any():
        raise InputError([Issue("duplicate planning unit id", file=str(files["pu"]), row=f"line {i + 2}",
                                column="id", value=units["id"].iloc[i]) for i in np.flatnonzero(duplicated)[:20]])
    features = read_features(files["spec"])
    amounts = read_table(files["puvspr"], ("species", "pu", "amount"), numeric=("amount",), ids=("species", "pu"))
    problems = _unknown(amounts, "pu", units["id"], files["puvspr"], "planning unit")
    problems += _unknown(amounts, "species", features["id"], files["puvspr"], "feature")
    if "bound" in files:
        boundaries = read_table(files["bound"], ("id1", "id2", "boundary"), numeric=("boundary",), ids=("id1", "id2"))
        problems += _unknown(boundaries, "id1", units["id"], files["bound"], "planning unit")
        problems += _unknown(boundaries, "id2", units["id"], files["bound"], "planning unit")
    else:
        boundaries = pd.DataFrame({"id1": [], "id2": [], "boundary": []})
    if problems:
        raise InputError(problems)
    name_of = dict(zip(features["id"], features["name"], strict=True))
    totals = amounts.groupby("species")["amount"].sum().reindex(features["id"]).fillna(0.0).to_numpy()
    features = features.assign(total=totals)
    features["target"] = np.where(features["prop"] > 0, features["prop"] * totals, features["target"])
    data = MarxanData(source=source, params=params, units=units, features=features, amounts=amounts,
                      boundaries=boundaries, notes=notes)
    if zoned:
        _zones(data, files, name_of)
    else:
        _standard(data, files)
    return data


def _standard(data: MarxanData, files: dict[str, Path]) -> None:
    """Standard Marxan: two zones, unit cost when selected, status 2/3 locks."""
    units = data.units
    file = files["pu"]
    cost = pd.to_numeric(units["cost"], errors="coerce") if "cost" in units.columns else pd.Series(1.0, units.index)
    status = pd.to_numeric(units["status"], errors="coerce") if "status" in units.columns else pd.Series(
        0.0, units.index)
    problems = [Issue("not a number", file=str(file), row=f"line {i + 2}", column="cost", value=units["cost"].iloc[i])
                for i in np.flatnonzero(cost.isna().to_numpy())[:20]]
    problems += [Issue("status is 0, 1, 2 or 3", file=str(file), row=f"line {i + 2}", column="status",
                       value=units["status"].iloc[i]) for i in np.flatnonzero(~status.isin([0, 1, 2, 3]).to_numpy())]
    if problems:
        raise InputError(problems)
    units["cost"], units["status"] = cost.astype(float), status.astype(int)
    data.zones, data.zone_ids = [AVAILABLE, SELECTED], ["0", "1"]
    data.unit_costs = pd.DataFrame({"parcel_id": units["id"], "option": SELECTED, "cost": units["cost"]})
    data.contributions = {name: {SELECTED: 1.0} for name in data.features["name"]}
    data.zone_weights = {(a, b): float(a != b) for a in data.zones for b in data.zones}
    locked = units[units["status"].isin([2, 3])]
    data.locks = pd.DataFrame({"parcel_id": locked["id"], "option": SELECTED,
                               "lock": np.where(locked["status"] == 2, "in", "out")})


def _zones(data: MarxanData, files: dict[str, Path], name_of: dict[str, str]) -> None:
    """Marxan with Zones: zones, costs and their multipliers, contributions, zone targets, zone weights, locks."""
    zones = read_table(files["zones"], ("zone", "zonename"), ids=("zone",))
    data.zone_ids, data.zones = list(zones["zone"]), list(zones["zonename"])
    zone_name = dict(zip(data.zone_ids, data.zones, strict=True))
    units = data.units
    if "costs" in files:
        costs = read_table(files["costs"], ("costid", "costname"), ids=("costid",))
        cost_names = dict(zip(costs["costid"], costs["costname"], strict=True))
    else:
        cost_names = {"1": "cost"}
    missing = [name for name in cost_names.values() if name not in units.columns]
    if missing:
        raise InputError([Issue(f"a cost named in {files.get('costs', 'the costs')} is not a column of the unit "
                                f"table", file=str(files["pu"]), column=name) for name in missing])
    cost_values = read_table(files["pu"], ("id",), numeric=tuple(cost_names.values()))
    multiplier = pd.DataFrame(1.0, index=data.zone_ids, columns=list(cost_names))
    if "zonecost" in files:
        table = read_table(files["zonecost"], ("zone", "costid", "multiplier"), numeric=("multiplier",))
        problems = _unknown(table, "zone", data.zone_ids, files["zonecost"], "zone")
        problems += _unknown(table, "costid", cost_names, files["zonecost"], "cost id")
        if problems:
            raise InputError(problems)
        multiplier[:] = 0.0
        for row in table.itertuples(index=False):
            multiplier.loc[row.zone, row.costid] = row.multiplier
    rows = []
    for zone in data.zone_ids:
        total = sum(cost_values[name].to_numpy() * multiplier.loc[zone, cid] for cid, name in cost_names.items())
        rows.append(pd.DataFrame({"parcel_id": units["id"], "option": zone_name[zone], "cost": total}))
    data.unit_costs = pd.concat(rows, ignore_index=True)
    data.unit_costs = data.unit_costs[data.unit_costs["cost"] != 0]

    names = list(data.features["name"])
    data.contributions = {name: {z: 1.0 for z in data.zones[1:]} for name in names}
    if "zonecontrib" in files:
        table = read_table(files["zonecontrib"], ("zone", "species", "fraction"), numeric=("fraction",))
        problems = _unknown(table, "zone", data.zone_ids, files["zonecontrib"], "zone")
        problems += _unknown(table, "species", name_of, files["zonecontrib"], "feature")
        if problems:
            raise InputError(problems)
        data.contributions = {name: {} for name in names}
        for row in table.itertuples(index=False):
            data.contributions[name_of[row.species]][zone_name[row.zone]] = float(row.fraction)
    if "zonetarget" in files:
        table = read_table(files["zonetarget"], ("zone", "species", "target"), numeric=("target", "targettype"))
        problems = _unknown(table, "zone", data.zone_ids, files["zonetarget"], "zone")
        problems += _unknown(table, "species", name_of, files["zonetarget"], "feature")
        kinds = table["targettype"] if "targettype" in table.columns else pd.Series(0.0, index=table.index)
        problems += [Issue("target type 0 (amount) or 1 (proportion) is supported", file=str(files["zonetarget"]),
                           row=f"line {i + 2}", column="targettype", value=kinds.iloc[i])
                     for i in np.flatnonzero(~kinds.isin([0, 1]).to_numpy())]
        if problems:
            raise InputError(problems)
        total = dict(zip(data.features["name"], data.features["total"], strict=True))
        for row, kind in zip(table.itertuples(index=False), kinds, strict=True):
            feature = name_of[row.species]
            target = row.target * (total[feature] if kind == 1 else 1.0)
            if target > 0:
                data.zone_targets.append((feature, zone_name[row.zone], float(target)))
    weights = {(a, b): float(a != b) for a in data.zones for b in data.zones}
    if "zonebound" in files:
        table = read_table(files["zonebound"], ("zone1", "zone2", "cost"), numeric=("cost",))
        problems = _unknown(table, "zone1", data.zone_ids, files["zonebound"], "zone")
        problems += _unknown(table, "zone2", data.zone_ids, files["zonebound"], "zone")
        problems += [Issue("must be >= 0", file=str(files["zonebound"]), row=f"line {i + 2}", column="cost",
                           value=table["cost"].iloc[i]) for i in np.flatnonzero(table["cost"].to_numpy() < 0)]
        if problems:
            raise InputError(problems)
        weights = {pair: 0.0 for pair in weights}
        for row in table.itertuples(index=False):
            a, b = zone_name[row.zone1], zone_name[row.zone2]
            weights[(a, b)] = weights[(b, a)] = float(row.cost)
    data.zone_weights = weights
    locks = []
    for kind, lock in (("pulock", "in"), ("puzone", "allowed")):
        if kind not in files:
            continue
        table = read_table(files[kind], ("pu", "zone"), ids=("pu", "zone"))
        problems = _unknown(table, "pu", units["id"], files[kind], "planning unit")
        problems += _unknown(table, "zone", data.zone_ids, files[kind], "zone")
        if problems:
            raise InputError(problems)
        if lock == "in":
            locks.append(pd.DataFrame({"parcel_id": table["pu"], "option": table["zone"].map(zone_name),
                                       "lock": "in"}))
        else:  # a unit listed in puzone may take only its listed zones
            for unit, given in table.groupby("pu")["zone"]:
                out = [zone_name[z] for z in data.zone_ids if z not in set(given)]
                locks.append(pd.DataFrame({"parcel_id": unit, "option": out, "lock": "out"}))
    if locks:
        data.locks = pd.concat(locks, ignore_index=True)


# ------------------------------------------------------------------------------------------------------------
# Writing an optiland instance


def _catalog_files(data: MarxanData, folder: Path) -> None:
    """A generated catalog: one option (and variant) per zone, the first keeping the current use."""
    folder.mkdir(parents=True)
    (folder / "catalog.toml").write_text(
        f'# Generated by `optiland import marxan` from {data.source.name}: the zones as options, no money figures\n'
        f'# (unit costs are per planning unit, in parcel_costs.csv of the instance).\n'
        f'[region]\nname = "marxan-{data.source.parent.name}"\nversion = "1"\n'
        f'title = "zones of the Marxan input {data.source}"\nprice_year = 2020\n\n'
        '[defaults]\nincome_floor = 0\nincome_floor_source = "no villages: Marxan data"\n\n'
        '[grade]\nattribute = "bedrock_exposure"\nlabel = "none"\nsource = "not used: one band"\n'
        '[[grade.bands]]\nname = "any"\nlower = 0\n\n'
        '[livestock]\nhead_per_mu = 0\nnet_income_per_head = 0\npurchase_cost_per_head = 0\n'
        'shed_cost_per_head = 0\nlabour_days_per_head = 0\nsource = "not used"\n\n'
        '[rangers]\nmu_per_post = 1\nwage_per_post = 0\nsource = "not used"\n', encoding="utf-8")
    options = pd.DataFrame({
        "option": data.zones, "name": data.zones, "name_zh": data.zones,
        "keeps_current_use": [i == 0 for i in range(len(data.zones))], "max_slope_deg": "", "max_grade": "",
        "red_line_allowed": True, "red_line_harvest": False, "forest_type": False, "compensation_per_mu": 0,
        "ranger_area": False, "livestock": False, "diversity_capped": False, "mu_per_household": "",
        "group": data.zones, "source": f"Marxan zone (id {', '.join(data.zone_ids)})"})
    options.to_csv(folder / "options.csv", index=False)
    variants = pd.DataFrame({"option": data.zones[1:], "variant": data.zones[1:], "name": data.zones[1:],
                             "name_zh": data.zones[1:], "establishment_cost_per_mu": 0.0, "net_income_per_mu": 0.0,
                             "labour_days_per_mu": 0.0, "price_year": 2020, "source": "Marxan zone"})
    variants.to_csv(folder / "variants.csv", index=False)
    pd.DataFrame({"code": [LAND_USE], "name": ["planning unit"], "name_zh": ["规划单元"], "income_per_mu": [0.0],
                  "labour_days_per_mu": [0.0], "forest_type": [False], "cropland": [False], "price_year": [2020],
                  "source": ["Marxan data: no land use"]}).to_csv(folder / "current_uses.csv", index=False)


def _toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def write_instance(data: MarxanData, folder: Path) -> Path:
    """Write the instance files into `folder` (created); returns scenario.toml."""
    folder.mkdir(parents=True, exist_ok=True)
    _catalog_files(data, folder / "catalog")
    n = len(data.units)
    pd.DataFrame({"parcel_id": data.units["id"], "land_use": LAND_USE, "slope_deg": 0.0, "bedrock_exposure": 0.0,
                  "soil_depth_cm": 0.0, "karst": False, "red_line": False, "basic_farmland": False,
                  "area_mu": np.ones(n)}).to_csv(folder / "units.csv", index=False)
    data.boundaries.to_csv(folder / "bound.csv", index=False)
    data.unit_costs.to_csv(folder / "parcel_costs.csv", index=False)
    data.locks[["parcel_id", "option", "lock"]].to_csv(folder / "locks.csv", index=False)
    name_of = dict(zip(data.features["id"], data.features["name"], strict=True))
    features = pd.DataFrame({"parcel_id": data.amounts["pu"], "feature": data.amounts["species"].map(name_of),
                             "amount": data.amounts["amount"]})
    credited = {name: dict(shares) for name, shares in data.contributions.items()}
    targets = data.targets()
    for feature, zone, target in data.zone_targets:  # a zone target: the same amounts, credited in that zone only
        derived = f"{feature}@{zone}"
        rows = features[features["feature"] == feature].assign(feature=derived)
        features = pd.concat([features, rows], ignore_index=True)
        credited[derived] = {zone: data.contributions.get(feature, {}).get(zone, 1.0)}
        targets[derived] = target
    for feature, count in zip(data.features["name"], data.features["targetocc"], strict=True):
        if count > 0:  # an occurrence target: one per unit holding some of the feature
            derived = f"{feature}#occurrences"
            rows = features[(features["feature"] == feature) & (features["amount"] > 0)]
            features = pd.concat([features, rows.assign(feature=derived, amount=1.0)], ignore_index=True)
            credited[derived] = {z: 1.0 for z, share in credited.get(feature, {}).items() if share > 0}
            targets[derived] = float(count)
    features.to_csv(folder / "features.csv", index=False)
    if data.sporder is not None:
        pd.DataFrame({"feature": data.sporder["species"].map(name_of), "parcel_id": data.sporder["pu"],
                      "amount": data.sporder["amount"]}).to_csv(folder / SPORDER_FILE, index=False)
    weights = {f"{a}|{b}": w for (a, b), w in data.zone_weights.items() if a <= b}
    weights.update({f"{z}|outside": data.zone_weights.get((z, data.zones[0]), 0.0) for z in data.zones})
    lines = [
        f"# Imported from {data.source} by `optiland import marxan`: minimum cost + BLM x boundary, every target met.",
        f"name = {_toml_value('marxan ' + data.source.parent.name)}",
        "", "[parcels]", 'path = "units.csv"', "", "[catalog]", 'path = "catalog"', "",
        "[objective]", 'minimise = "cost"', "",
        "[spatial]", f"boundary_penalty = {data.blm!r}", 'between = "groups"', 'boundaries = "bound.csv"',
        'locks = "locks.csv"', 'parcel_costs = "parcel_costs.csv"',
        "group_weights = {" + ", ".join(f"{_toml_value(k)} = {v!r}" for k, v in sorted(weights.items())) + "}",
        "", "[features]", 'path = "features.csv"',
        "targets = {" + ", ".join(f"{_toml_value(k)} = {v!r}" for k, v in targets.items()) + "}",
        "credited = {" + ", ".join(f"{_toml_value(k)} = {{" + ", ".join(
            f"{_toml_value(z)} = {s!r}" for z, s in v.items()) + "}" for k, v in credited.items()) + "}",
        "", "[solver]", "mip_rel_gap = 0.0", "",
    ]
    (folder / "scenario.toml").write_text("\n".join(lines), encoding="utf-8")
    meta = {"source": str(data.source), "parameters": data.params, "zones": data.zones, "zone_ids": data.zone_ids,
            "features": [{"id": r.id, "name": r.name, "target": float(r.target), "spf": float(r.spf),
                          "total": float(r.total)} for r in data.features.itertuples(index=False)],
            "zone_targets": data.zone_targets, "notes": data.notes, "penalty_routine": data.penalty_routine,
            "sporder": SPORDER_FILE if data.sporder is not None else None}
    (folder / "marxan.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return folder / "scenario.toml"


def totals(data: MarxanData) -> dict[str, float]:
    """Totals of an input set: unit cost (selected zone or all zones), feature amounts, boundary length."""
    shared = data.boundaries[data.boundaries["id1"] != data.boundaries["id2"]]["boundary"].sum()
    outer = data.boundaries[data.boundaries["id1"] == data.boundaries["id2"]]["boundary"].sum()
    return {"cost": float(data.unit_costs["cost"].sum()), "amount": float(data.amounts["amount"].sum()),
            "shared_boundary": float(shared), "outer_boundary": float(outer), "units": float(len(data.units))}


# ------------------------------------------------------------------------------------------------------------
# Marxan's score terms of a plan


DELTA = 1e-14
"""Marxan's stand-in for a zero cost in its greedy penalty (its ``delta``)."""


def _penalties(amounts: np.ndarray, cost: np.ndarray, locked_in: np.ndarray, targets: np.ndarray,
               locked_out: np.ndarray | None = None, holding: np.ndarray | None = None) -> np.ndarray:
    """Marxan's base penalty per feature: the cost of units locked in, then units added greedily until the target
    is met, each step taking the cheapest unit that meets the rest of the target alone, else the unit of most amount
    per cost (in unit order, as Marxan scans them); a unit's cost is its cost plus BLM x its whole boundary (`cost`).
    A target the units cannot reach scales the penalty by target / reachable. Units locked out are never added.

    `holding` None: Marxan's computePenalties, where *every* unit locked in adds its cost and its amount.
    `holding` (units x features, the units the sporder file lists for each feature, `amounts` its amounts): Marxan's
    computePenaltiesOptimise, where only the units locked in that hold the feature count, and only those listed are
    added."""
    out = np.zeros(len(targets))
    n = len(cost)
    banned = locked_in | (locked_out if locked_out is not None else np.zeros(n, dtype=bool))
    for f, target in enumerate(targets):
        if target <= 0:
            continue
        amount = amounts[:, f]
        counted = locked_in if holding is None else locked_in & holding[:, f]
        listed = amount > 0 if holding is None else holding[:, f] & (amount > 0)
        held = float(amount[counted].sum())
        penalty = float(cost[counted].sum())
        free = [int(j) for j in np.flatnonzero(listed & ~banned)]
        used: set[int] = set()
        while held < target:
            best, best_cost, best_ratio, meets = -1, 0.0, 0.0, False
            for j in free:
                if j in used:
                    continue
                unit_cost = float(cost[j]) or DELTA
                if amount[j] >= target - held and (not meets or unit_cost < best_cost):
                    best, best_cost, meets = j, unit_cost, True
                elif best_ratio < amount[j] / unit_cost:
                    best, best_cost, best_ratio = j, unit_cost, amount[j] / unit_cost
            if best < 0:
                break
            used.add(best)
            held += float(amount[best])
            penalty += best_cost
        if held < target:
            penalty *= target / (held or DELTA)
        out[f] = penalty
    return out


def _sporder_matrix(meta: dict[str, Any], parcel_ids: np.ndarray, features: list[str]) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """The instance's sporder table as (amounts, holding) matrices over parcels x features."""
    table = pd.read_csv(Path(meta["folder"]) / meta["sporder"], dtype={"parcel_id": str, "feature": str})
    row = pd.Series(np.arange(len(parcel_ids)), index=pd.Index(parcel_ids.astype(str))).reindex(
        table["parcel_id"]).to_numpy()
    column = pd.Series(np.arange(len(features)), index=pd.Index(features)).reindex(table["feature"]).to_numpy()
    keep = ~(np.isnan(row) | np.isnan(column))
    amounts = np.zeros((len(parcel_ids), len(features)))
    holding = np.zeros((len(parcel_ids), len(features)), dtype=bool)
    r, c = row[keep].astype(np.int64), column[keep].astype(np.int64)
    amounts[r, c] = table["amount"].to_numpy(dtype=float)[keep]
    holding[r, c] = True
    return amounts, holding


def score_terms(problem: Any, zone_of_parcel: np.ndarray, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Marxan's score of a plan (the zone, i.e. option, of every parcel): cost, BLM x boundary, SPF x shortfall
    penalty, the cost-threshold penalty, their sum, the boundary length itself (also at BLM 0, as Marxan reports
    it), and the shortfall of each feature target.

    The shortfall term is Marxan's: sum over features of SPF x base penalty x (shortfall / target), the base
    penalty as `_penalties`, by the routine Marxan 4.0.6 takes (``meta['penalty_routine']``, module docstring);
    the threshold term is (cost - COSTTHRESH) x THRESHPEN1 x exp(THRESHPEN2) when the cost exceeds a positive
    COSTTHRESH (Marxan's at the end of annealing). Without marxan.json every SPF is 0. A target counts as missed
    when the shortfall exceeds FEATURE_TARGET_TOLERANCE x max(1, target), the tolerance of `optiland check`.
    """
    spatial = problem.spatial
    allowed = problem.allowed
    parcel = allowed["parcel"].to_numpy()
    row = pd.Series(np.arange(len(allowed)), index=pd.MultiIndex.from_arrays([parcel, allowed["option"].to_numpy()]))
    rows = row.reindex(pd.MultiIndex.from_arrays([np.arange(problem.n_parcels), zone_of_parcel])).to_numpy()
    unit_cost = np.zeros(problem.n_parcels)
    allowed_pair = ~np.isnan(rows)
    unit_cost[allowed_pair] = allowed["cost"].to_numpy()[rows[allowed_pair].astype(np.int64)]
    barred = np.flatnonzero(~allowed_pair)  # a zone the parcel may not take (a lock broken): what it would cost
    if len(barred):
        kinds = variant_table(problem.catalog)
        kind_of = pd.Series(np.arange(len(kinds)), index=kinds["option"]).groupby(level=0).first()
        extra = _coefficients(problem.catalog, problem.parcels, kinds, barred,
                              kind_of.reindex(zone_of_parcel[barred]).to_numpy())["cost"].to_numpy()
        given = spatial.parcel_costs if spatial is not None else None
        if given is not None:
            summed = given.groupby(["parcel_id", "option"])["cost"].sum()
            extra = extra + summed.reindex(pd.MultiIndex.from_arrays([
                problem.parcels["parcel_id"].astype(str).to_numpy()[barred], zone_of_parcel[barred]])).fillna(
                0.0).to_numpy()
        unit_cost[barred] = extra
    cost = float(unit_cost.sum())
    group = spatial.group_index(zone_of_parcel) if spatial is not None else np.zeros(problem.n_parcels, int)
    blm = spatial.blm if spatial is not None else 0.0
    length = spatial.boundary_of(group) if spatial is not None else 0.0
    names = spatial.features if spatial is not None else []
    plan = pd.DataFrame({"parcel": np.arange(problem.n_parcels), "option": zone_of_parcel})
    held = spatial.row_amounts(plan).sum(axis=1) if spatial is not None else np.zeros(0)
    targets = np.array([spatial.targets.get(f, 0.0) for f in names]) if names else np.zeros(0)
    shortfall = np.maximum(targets - held, 0.0)
    params = (meta or {}).get("parameters", {})
    spf_of = {f["name"]: f["spf"] for f in (meta or {}).get("features", [])}
    spf = np.array([spf_of.get(f.split("@")[0], 0.0) for f in names])
    penalty_term = 0.0
    routine = (meta or {}).get("penalty_routine", "standard")
    if spf.any() and shortfall.any():
        by_row = spatial.row_amounts(allowed).T
        best_amounts = np.zeros((problem.n_parcels, len(names)))
        np.maximum.at(best_amounts, parcel, by_row)
        keep = allowed["option"].to_numpy() == problem.catalog.keep_option
        locked_in = np.bincount(parcel, keep, problem.n_parcels) == 0  # Marxan's status 2: 'available' is barred
        locked_out = np.bincount(parcel, ~keep, problem.n_parcels) == 0  # status 3: only 'available'
        best_cost = np.zeros(problem.n_parcels)
        np.maximum.at(best_cost, parcel, allowed["cost"].to_numpy())
        touching = np.bincount(spatial.edge_left, spatial.edge_length, problem.n_parcels) + np.bincount(
            spatial.edge_right, spatial.edge_length, problem.n_parcels) + spatial.outer_length
        holding = None
        if routine == "optimise":
            best_amounts, holding = _sporder_matrix(meta or {}, problem.parcels["parcel_id"].to_numpy(), names)
        base = _penalties(best_amounts, best_cost + blm * touching, locked_in, targets, locked_out, holding)
        penalty_term = float((spf * base * np.where(targets > 0, shortfall / np.where(targets > 0, targets, 1), 0)
                              ).sum())
    threshold = float(params.get("COSTTHRESH", 0) or 0)
    threshold_term = 0.0
    if threshold > 0 and cost > threshold:
        threshold_term = (cost - threshold) * float(params.get("THRESHPEN1", 0)) * math.exp(
            float(params.get("THRESHPEN2", 0)))
    missed = shortfall > FEATURE_TARGET_TOLERANCE * np.maximum(1.0, np.abs(targets))
    return {"cost": cost, "boundary_length": length, "blm_x_boundary": blm * length,
            "spf_x_shortfall": penalty_term, "cost_threshold_penalty": threshold_term,
            "score": cost + blm * length + penalty_term + threshold_term,
            "targets_missed": int(missed.sum()), "penalty_routine": routine,
            "shortfall": {f: float(s) for f, s in zip(names, shortfall, strict=True) if s > 0}}


def read_solution(path: Path, data_zones: list[str], zone_ids: list[str], unit_ids: np.ndarray) -> np.ndarray:
    """A Marxan solution file as the zone name of every unit; standard Marxan's 0/1 become available/selected.

    Marxan 4.0.6 writes three formats (output.cpp, writeSolution; SAVERUN / SAVEBEST): 3, ``.csv`` with the header
    ``PUID,SOLUTION`` (SOLUTION: BESTFIELDNAME); 2, ``.txt`` with the header ``"planning_unit","solution"``; 1,
    ``.dat`` without a header, a selected unit as its bare id and an unselected one as ``id,0``. Marxan with Zones
    writes ``planning_unit,zone``. With a header every unit must be listed; without one (standard Marxan only), a
    bare id is selected and a unit not listed is not."""
    if not path.is_file():
        raise InputError([Issue("Marxan solution file not found", file=str(path))])
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    fields = [re.split(r"\s*[,\t ]\s*", line.replace('"', "")) for line in lines]
    codes = zone_ids if zone_ids else [str(i) for i in range(len(data_zones))]
    zone = dict(zip(codes, data_zones, strict=True))
    headerless = bool(fields) and _is_number(fields[0][0])
    if headerless:
        if len(data_zones) != 2:
            raise InputError([Issue("a solution file without a header (Marxan's SAVERUN 1) is read for standard "
                                    "Marxan only; Marxan with Zones writes planning_unit,zone", file=str(path))])
        problems = [Issue("one or two fields (id, or id and solution)", file=str(path), row=f"line {i + 1}",
                          value=lines[i]) for i, f in enumerate(fields) if len(f) > 2][:20]
        table = pd.DataFrame({"pu": [_id(f[0]) for f in fields],
                              "zone": [_id(f[1]) if len(f) > 1 else codes[1] for f in fields]})
        first_line = 1
    else:
        header = [_ALIASES.get(c.lower(), c.lower()) for c in fields[0]] if fields else []
        if len(header) != 2 or header[0] != "pu":
            raise InputError([Issue("a solution file has two columns, the unit id (PUID or planning_unit) and its "
                                    f"solution or zone (has {', '.join(header) or 'none'})", file=str(path))])
        problems = [Issue("two fields (unit id and solution)", file=str(path), row=f"line {i + 1}", value=lines[i])
                    for i, f in enumerate(fields) if i > 0 and len(f) != 2][:20]
        table = pd.DataFrame({"pu": [_id(f[0]) for f in fields[1:]],
                              "zone": [_id(f[1]) if len(f) > 1 else "" for f in fields[1:]]})
        first_line = 2
    if problems:
        raise InputError(problems)
    problems = _unknown(table, "pu", set(map(str, unit_ids)), path, "planning unit", first_line)
    problems += _unknown(table, "zone", codes, path, f"zone (known: {', '.join(codes)})", first_line)
    duplicated = table["pu"].duplicated().to_numpy()
    problems += [Issue("planning unit listed twice", file=str(path), row=f"line {i + first_line}", column="pu",
                       value=table["pu"].iloc[i]) for i in np.flatnonzero(duplicated)[:20]]
    if problems:
        raise InputError(problems)
    given = dict(zip(table["pu"], table["zone"].map(zone), strict=True))
    if headerless:
        return np.array([given.get(str(u), data_zones[0]) for u in unit_ids], dtype=object)
    missing = [u for u in map(str, unit_ids) if u not in given]
    if missing:
        raise InputError([Issue("planning unit missing from the solution", file=str(path), row=u, column="pu")
                          for u in missing[:20]])
    return np.array([given[str(u)] for u in unit_ids], dtype=object)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _id(text: str) -> str:
    """An id as Marxan's tables give it: '12' and '12.0' are unit 12."""
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() else text


# ------------------------------------------------------------------------------------------------------------
# Plans as Marxan sees them


def _meta(scenario_dir: Path) -> dict[str, Any] | None:
    """marxan.json of an imported instance (with ``folder``, the instance folder), None elsewhere."""
    path = scenario_dir / "marxan.json"
    if not path.is_file():
        return None
    return {**json.loads(path.read_text(encoding="utf-8")), "folder": str(scenario_dir)}


def score_outdir(out_dir: str | Path) -> dict[str, Any] | None:
    """Marxan's score terms of a plan folder (from `solve` or `import marxan-solution`) whose scenario has a
    ``[spatial]`` or ``[features]`` section; None otherwise."""
    import pyogrio

    from optiland.io.scenario import load_scenario
    from optiland.pipeline.run import prepare

    out_dir = Path(out_dir)
    run = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    scenario = load_scenario(run["scenario_path"])
    if scenario.spatial is None and scenario.features is None:
        return None
    problem = prepare(scenario).problem
    parcels = pyogrio.read_dataframe(out_dir / "plan.gpkg", layer="parcels", read_geometry=False)
    option = pd.Series(parcels["option"].to_numpy(), index=parcels["parcel_id"].astype(str))
    zone = option.reindex(problem.parcels["parcel_id"].astype(str)).to_numpy()
    if pd.isna(zone).any():
        missing = problem.parcels["parcel_id"].to_numpy()[pd.isna(zone)][:20]
        raise InputError([Issue("parcel missing from the plan", file=str(out_dir / "plan.gpkg"), row=str(p),
                                column="parcel_id") for p in missing])
    return score_terms(problem, zone, _meta(scenario.base_dir))


def solution_plan(instance: Path, solution: Path, out_dir: Path) -> dict[str, Any]:
    """Write a Marxan solution file as a plan folder of the instance (plan.gpkg without geometry, an empty
    villages.csv, run.json) that `optiland check` reads; returns its score terms."""
    import pyogrio

    from optiland.pipeline.results import provenance, write_atomically
    from optiland.pipeline.run import prepare

    scenario_file = instance / "scenario.toml"
    prepared = prepare(scenario_file)
    meta = _meta(instance)
    if meta is None:
        raise InputError([Issue("not a folder written by `optiland import marxan` (no marxan.json)",
                                file=str(instance))])
    problem = prepared.problem
    ids = problem.parcels["parcel_id"].astype(str).to_numpy()
    zone = read_solution(solution, meta["zones"], meta["zone_ids"], ids)
    terms = score_terms(problem, zone, meta)
    parcels = pd.DataFrame({"parcel_id": ids, "option": zone, "variant": zone})

    def write(folder: Path) -> None:
        pyogrio.write_dataframe(parcels, folder / "plan.gpkg", layer="parcels", driver="GPKG")
        pd.DataFrame(columns=["village", "herd", "ranger_posts"]).to_csv(folder / "villages.csv", index=False,
                                                                         encoding="utf-8-sig")
        run = {**provenance(prepared), "source": f"Marxan solution {solution}", "marxan_score": terms}
        (folder / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False, default=str),
                                         encoding="utf-8")

    write_atomically(out_dir, write)
    return terms
