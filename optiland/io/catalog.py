"""Region catalogs: the options, variants, current uses, site rules and coefficients, read from `models/<region>/`.

The format is documented in docs/data-model.md. Money is converted to the catalog's price year with its deflators when
loaded; overrides from the scenario are applied by dotted key (``variants.fruit.orah.net_income_per_mu``).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland._paths import models_dir
from optiland.errors import InputError, Issue
from optiland.io.tables import duplicate_keys, read_frame, read_table, read_text

_BOOL_COLUMNS = {
    "options": ["keeps_current_use", "red_line_allowed", "red_line_harvest", "forest_type", "ranger_area", "livestock",
                "diversity_capped"],
    "current_uses": ["forest_type", "cropland"],
}
_MONEY = {
    "current_uses": ["income_per_mu"],
    "variants": ["establishment_cost_per_mu", "net_income_per_mu"],
}
_LIVESTOCK_MONEY = ["net_income_per_head", "purchase_cost_per_head", "shed_cost_per_head"]
NEVER = "never"


@dataclass
class Catalog:
    """A loaded, validated region catalog (all money in yuan of `price_year`)."""

    path: Path
    region: dict[str, Any]
    defaults: dict[str, Any]
    services: dict[str, dict[str, Any]]
    grade: dict[str, Any]
    site_attributes: dict[str, dict[str, Any]]
    """Parcel columns the site rules read beyond the core ones, by name: type (float or bool), unit, min, max,
    default (a missing column takes it; no default: the column is required)."""
    adaptation: dict[str, str]
    livestock: dict[str, Any]
    rangers: dict[str, Any]
    deflators: dict[int, float]
    current_uses: pd.DataFrame
    options: pd.DataFrame
    variants: pd.DataFrame
    market: pd.DataFrame
    price_steps: pd.DataFrame
    conversions: pd.DataFrame = field(default_factory=lambda: empty_conversions())
    """``conversions.csv``: which current uses may change to which options, on what slopes (read top to bottom,
    the first rule whose conditions hold decides; see docs/data-model.md)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    generate: dict[str, Any] = field(default_factory=dict)
    """``[generate]``: distributions of the synthetic instances of this region (optiland.analysis.generate)."""

    @property
    def name(self) -> str:
        """The region's name."""
        return str(self.region.get("name", self.path.name))

    @property
    def version(self) -> str:
        """The catalog version with a content hash, so that run.json pins exactly which figures were used."""
        return f"{self.region.get('version', '0')}+{self.digest[:12]}"

    @property
    def service_names(self) -> list[str]:
        """Ecosystem services, in catalog order."""
        return list(self.services)

    @property
    def grade_names(self) -> list[str]:
        """Grade bands from least to most degraded."""
        return [band["name"] for band in self.grade["bands"]]

    @property
    def keep_option(self) -> str:
        """The option that keeps the current use."""
        return str(self.options.index[self.options["keeps_current_use"]][0])

    def grade_of(self, values: np.ndarray, applies: np.ndarray) -> np.ndarray:
        """Grade index per parcel: half-open bands [lower, next lower); band 0 where it does not apply."""
        lowers = np.array([band["lower"] for band in self.grade["bands"]], dtype=float)
        index = np.searchsorted(lowers, values, side="right") - 1
        return np.where(applies, np.clip(index, 0, len(lowers) - 1), 0)

    def grade_rank(self, name: str | None) -> int:
        """Rank of a grade name; blank means any grade; 'never' means none (-1)."""
        if name is None or (isinstance(name, float) and np.isnan(name)) or name == "":
            return len(self.grade_names) - 1
        if name == NEVER:
            return -1
        return self.grade_names.index(name)


CONVERSION_COLUMNS = ("rule", "current_use", "red_line", "basic_farmland", "min_slope_deg", "max_slope_deg", "to",
                      "allowed", "description", "source")


def empty_conversions() -> pd.DataFrame:
    """A conversion table without rules (every change the site rules allow is allowed)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in CONVERSION_COLUMNS})


def read_conversions(path: Path) -> pd.DataFrame:
    """Read a conversion table (docs/data-model.md, ``conversions.csv``): columns checked, booleans and slopes
    parsed; codes and options are checked against the catalog by `validate_catalog`."""
    frame = read_table(path, "conversion table", ("rule", "current_use", "to", "allowed"), empty_ok=True)
    return conversions_frame(frame.to_dict("records"), str(path))


def conversions_frame(rows: list[dict[str, Any]], where: str) -> pd.DataFrame:
    """Conversion rules from records (a CSV's rows or a scenario's ``[[catalog.conversion_rules]]``)."""
    problems: list[Issue] = []
    out = []
    for i, row in enumerate(rows):
        label = str(row.get("rule") or f"line {i + 2}")
        unknown = set(row) - set(CONVERSION_COLUMNS)
        for column in sorted(unknown):
            problems.append(Issue("unknown column of a conversion rule", file=where, row=label, column=column))
        for column in ("rule", "current_use", "to", "allowed"):
            value = row.get(column)
            if value is None or str(value).strip() == "":  # a TOML `allowed = false` is a value
                problems.append(Issue("missing value", file=where, row=label, column=column))
        record = {c: str(row.get(c, "") if row.get(c) is not None else "").strip() for c in CONVERSION_COLUMNS}
        for column in ("red_line", "basic_farmland", "allowed"):
            text = str(row.get(column, "")).strip().lower()
            if text in ("", "nan", "none"):
                record[column] = None
            elif text in ("true", "1", "yes"):
                record[column] = True
            elif text in ("false", "0", "no"):
                record[column] = False
            else:
                problems.append(Issue("not a boolean (true/false)", file=where, row=label, column=column,
                                      value=row.get(column)))
        for column in ("min_slope_deg", "max_slope_deg"):
            text = str(row.get(column, "") or "").strip()
            try:
                record[column] = float(text) if text not in ("", "nan") else None
            except ValueError:
                problems.append(Issue("not a number", file=where, row=label, column=column, value=text))
        out.append(record)
    if problems:
        raise InputError(problems)
    frame = pd.DataFrame(out, columns=list(CONVERSION_COLUMNS)) if out else empty_conversions()
    duplicated = frame["rule"][frame["rule"].duplicated()]
    if len(duplicated):
        raise InputError([Issue("duplicate rule name", file=where, row=r, column="rule") for r in duplicated])
    return frame


def _read_csv(path: Path, index: list[str] | str, dtype: dict[str, Any] | None = None) -> pd.DataFrame:
    """A catalog table (optiland.io.tables.read_frame: Excel's encodings, blank rows, error cells, "1,200")."""
    if not path.is_file():
        raise InputError([Issue("catalog table missing", file=str(path))])
    keys = [index] if isinstance(index, str) else index
    frame = read_frame(path, "catalog table", keys, dtype=dtype, keep_default_na=True)
    repeated = duplicate_keys(frame[keys].astype(str), keys, str(path), fix="keep one")[1]  # which would count?
    if repeated:
        raise InputError(repeated)
    return frame.set_index(index)


def _to_bool(frame: pd.DataFrame, columns: list[str], file: Path) -> None:
    mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    for column in columns:
        if column not in frame.columns:
            raise InputError([Issue("missing column", file=str(file), column=column)])
        text = frame[column].astype(str).str.strip().str.lower()
        bad = ~text.isin(list(mapping))
        if bad.any():
            row = frame.index[bad.to_numpy()][0]
            raise InputError([Issue("not a boolean (true/false)", file=str(file), row=str(row), column=column,
                                      value=frame.loc[row, column])])
        frame[column] = text.map(mapping).astype(bool)


def resolve_catalog_path(region: str | None, path: Path | None) -> Path:
    """The catalog folder named by a region name (under models/) or a path."""
    if path is not None:
        return path
    known = sorted(p.name for p in models_dir().iterdir() if (p / "catalog.toml").is_file())
    if not region:
        raise InputError([Issue(f"no catalog: set [catalog] region (one of {', '.join(known)}) or path",
                                column="catalog.region")])
    name = region
    folder = models_dir() / name
    if not folder.is_dir():
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
        raise InputError([Issue(f"unknown region{hint}", column="catalog.region", value=name)])
    return folder


def load_catalog(folder: str | Path | None = None, overrides: dict[str, Any] | None = None,
                 region: str | None = None) -> Catalog:
    """Load a catalog folder (or a region name), convert money to its price year and apply overrides."""
    folder = resolve_catalog_path(region, Path(folder) if folder else None)
    meta_path = folder / "catalog.toml"
    if not meta_path.is_file():
        raise InputError([Issue("catalog.toml missing", file=str(meta_path))])
    try:
        meta = tomllib.loads(read_text(meta_path))  # Notepad's BOM or GBK read (optiland.io.tables)
    except tomllib.TOMLDecodeError as exc:
        raise InputError([Issue(f"not valid TOML: {exc}", file=str(meta_path))]) from None
    digest = hashlib.sha256()
    for file in sorted(folder.glob("*")):
        if file.suffix in {".toml", ".csv"}:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())

    current_uses = _read_csv(folder / "current_uses.csv", "code", dtype={"code": str})
    options = _read_csv(folder / "options.csv", "option")
    variants = _read_csv(folder / "variants.csv", ["option", "variant"])
    market = _read_csv(folder / "market.csv", ["option", "variant"]) if (folder / "market.csv").is_file() else (
        pd.DataFrame(columns=["option", "variant", "max_area_mu"]).set_index(["option", "variant"]))
    steps_file = folder / "price_steps.csv"
    price_steps = read_frame(steps_file, "catalog table") if steps_file.is_file() else pd.DataFrame(
        columns=["option", "variant", "from_area_mu", "income_factor"])
    _to_bool(options, _BOOL_COLUMNS["options"], folder / "options.csv")
    if "plannable" not in current_uses.columns:  # a catalog without the column plans every current use
        current_uses["plannable"] = True
    _to_bool(current_uses, [*_BOOL_COLUMNS["current_uses"], "plannable"], folder / "current_uses.csv")
    conversions_file = folder / "conversions.csv"
    conversions = read_conversions(conversions_file) if conversions_file.is_file() else empty_conversions()

    catalog = Catalog(
        path=folder,
        region=meta.get("region", {}),
        defaults=meta.get("defaults", {}),
        services=meta.get("services", {}),
        grade=meta.get("grade", {}),
        site_attributes=_site_attributes(meta),
        adaptation={k: v for k, v in meta.get("adaptation", {}).items() if not k.endswith("source")},
        livestock=meta.get("livestock", {}),
        rangers=meta.get("rangers", {}),
        deflators={int(d["year"]): float(d["factor"]) for d in meta.get("deflators", [])},
        current_uses=current_uses,
        options=options,
        variants=variants,
        market=market,
        price_steps=price_steps,
        conversions=conversions,
        digest=digest.hexdigest(),
        generate=meta.get("generate", {}),
    )
    _deflate(catalog)
    if overrides:
        apply_overrides(catalog, overrides)
        catalog.digest = hashlib.sha256((catalog.digest + repr(sorted(overrides.items()))).encode()).hexdigest()
    validate_catalog(catalog)
    from optiland.io.overrides import check_catalog_ranges  # types and ranges, the overrides' included

    check_catalog_ranges(catalog, overrides)
    return catalog


def _site_attributes(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``[site.attributes]``; a catalog without it declares only the grade's attribute (float) and applies_where
    (bool)."""
    declared = meta.get("site", {}).get("attributes")
    if declared is not None:
        return {name: dict(spec) for name, spec in declared.items()}
    grade = meta.get("grade", {})
    attributes: dict[str, dict[str, Any]] = {}
    if grade.get("attribute"):
        attributes[grade["attribute"]] = {"type": "float"}
    if grade.get("applies_where"):
        attributes[grade["applies_where"]] = {"type": "bool"}
    return attributes


def _deflator(catalog: Catalog, year: Any, where: str) -> float:
    target = int(catalog.region.get("price_year", 2020))
    if year is None or (isinstance(year, float) and np.isnan(year)) or int(year) == target:
        return 1.0
    if int(year) not in catalog.deflators:
        raise InputError([Issue(f"no deflator for price year {int(year)} (add a [[deflators]] entry)",
                                  file=str(catalog.path / "catalog.toml"), row=where)])
    return catalog.deflators[int(year)]


def _deflate(catalog: Catalog) -> None:
    for table_name, columns in _MONEY.items():
        table: pd.DataFrame = getattr(catalog, table_name)
        if "price_year" not in table.columns:
            continue
        factors = np.array([_deflator(catalog, y, f"{table_name} {idx}") for idx, y in table["price_year"].items()])
        for column in columns:
            table[column] = table[column].astype(float) * factors
    factor = _deflator(catalog, catalog.livestock.get("price_year"), "livestock")
    for key in _LIVESTOCK_MONEY:
        if key in catalog.livestock:
            catalog.livestock[key] = float(catalog.livestock[key]) * factor


def _unknown(kind: str, name: str, known: list[str], key: str) -> InputError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return InputError([Issue(f"unknown {kind} in override{hint}", column=key, value=name)])


def _new_value(old: Any, value: Any, key: str) -> Any:
    """An override is a number/string, or a table {scale = f} multiplying the current figure."""
    if isinstance(value, dict):
        if set(value) != {"scale"}:
            raise InputError([Issue("an override table takes only 'scale'", column=key, value=value)])
        return float(old) * float(value["scale"])
    return copy.deepcopy(value)


def apply_overrides(catalog: Catalog, overrides: dict[str, Any]) -> None:
    """Apply scenario overrides in place. Keys (``*`` matches every name at its level):

    - ``variants.<option>.<variant>.<column>``, ``options.<option>.<column>``, ``current_uses.<code>.<column>``;
    - ``market.<option>.<variant>`` (max area in mu);
    - ``livestock.<key>``, ``rangers.<key>``, ``defaults.<key>``, ``adaptation.<class>``.
    """
    for key, value in overrides.items():
        parts = key.split(".")
        table = parts[0]
        if table in {"livestock", "rangers", "defaults", "adaptation"} and len(parts) == 2:
            target = getattr(catalog, table)
            if parts[1] not in target:
                raise _unknown(f"{table} key", parts[1], list(target), key)
            target[parts[1]] = _new_value(target[parts[1]], value, key)
        elif table == "variants" and len(parts) == 4:
            _override_rows(catalog.variants, (parts[1], parts[2]), parts[3], value, key, "variant")
        elif table == "options" and len(parts) == 3:
            _override_rows(catalog.options, parts[1], parts[2], value, key, "option")
        elif table == "current_uses" and len(parts) == 3:
            _override_rows(catalog.current_uses, parts[1], parts[2], value, key, "land-survey code")
        elif table == "market" and len(parts) in (3, 4):
            pair = (parts[1], parts[2])
            if pair not in catalog.variants.index:
                raise _unknown("option.variant", f"{parts[1]}.{parts[2]}",
                               [f"{o}.{v}" for o, v in catalog.variants.index], key)
            catalog.market.loc[pair, "max_area_mu"] = float(value)
            if "source" in catalog.market.columns:
                catalog.market.loc[pair, "source"] = "scenario override"
        else:
            raise InputError([Issue("unknown override key; see catalog.apply_overrides for the forms", column=key)])


def _override_rows(frame: pd.DataFrame, selector: Any, column: str, value: Any, key: str, kind: str) -> None:
    if column not in frame.columns:
        raise _unknown("column", column, list(frame.columns), key)
    if isinstance(selector, tuple):
        option, variant = selector
        options = frame.index.get_level_values(0)
        variants = frame.index.get_level_values(1)
        if option != "*" and option not in set(options):
            raise _unknown("option", option, sorted(set(options)), key)
        mask = (options == option) | (option == "*")
        if variant != "*":
            if variant not in set(variants[mask]):
                raise _unknown(kind, variant, sorted(set(variants[mask])), key)
            mask &= variants == variant
    else:
        if selector != "*" and selector not in frame.index:
            raise _unknown(kind, selector, [str(i) for i in frame.index], key)
        mask = (frame.index == selector) | (selector == "*")
    rows = frame.index[np.asarray(mask)]
    for row in rows:
        frame.loc[row, column] = _new_value(frame.loc[row, column], value, key)


CORE_PARCEL_COLUMNS = ("parcel_id", "village", "land_use", "slope_deg", "red_line", "basic_farmland")
SITE_TYPES = ("float", "bool")


def _validate_site_attributes(catalog: Catalog, problems: list[Issue]) -> None:
    """Declared site attributes: known types, ordered ranges, no clash with core columns; the grade reads them."""
    file = str(catalog.path / "catalog.toml")
    for name, spec in catalog.site_attributes.items():
        where = f"site.attributes.{name}"
        if name in CORE_PARCEL_COLUMNS:
            problems.append(Issue("a core parcel column cannot be redeclared", file=file, column=where, value=name))
        if spec.get("type") not in SITE_TYPES:
            problems.append(Issue(f"type must be one of {', '.join(SITE_TYPES)}", file=file, column=f"{where}.type",
                                  value=spec.get("type")))
        low, high = spec.get("min", -np.inf), spec.get("max", np.inf)
        if not float(low) <= float(high):
            problems.append(Issue("min above max", file=file, column=where, value=[low, high]))
    attribute = catalog.grade.get("attribute")
    if attribute is not None and catalog.site_attributes.get(attribute, {}).get("type") != "float":
        problems.append(Issue("the grade's attribute must be a declared float site attribute", file=file,
                              column="grade.attribute", value=attribute))
    applies = catalog.grade.get("applies_where")
    if applies is not None and catalog.site_attributes.get(applies, {}).get("type") != "bool":
        problems.append(Issue("applies_where must be a declared bool site attribute", file=file,
                              column="grade.applies_where", value=applies))


def validate_catalog(catalog: Catalog) -> None:
    """Check the catalog is self-consistent; every problem is named."""
    problems: list[Issue] = []
    file = str(catalog.path)
    bands = catalog.grade.get("bands", [])
    if not bands or float(bands[0]["lower"]) != 0.0:
        problems.append(Issue("grade bands must start at 0", file=file, column="grade.bands"))
    lowers = [float(b["lower"]) for b in bands]
    if any(b <= a for a, b in zip(lowers, lowers[1:], strict=False)):
        problems.append(Issue("grade bands must rise strictly (half-open, no gaps)", file=file, column="grade.bands",
                                value=lowers))
    _validate_site_attributes(catalog, problems)
    if "excluded_where" in catalog.options.columns:
        for option, zone in catalog.options["excluded_where"].dropna().items():
            if catalog.site_attributes.get(zone, {}).get("type") != "bool":
                problems.append(Issue("excluded_where must name a declared bool site attribute", file=file,
                                      row=str(option), column="excluded_where", value=zone))
    names = catalog.grade_names
    for cls, grade in catalog.adaptation.items():
        if grade != NEVER and grade not in names:
            problems.append(Issue(f"unknown grade; known: {names + [NEVER]}", file=file, column=f"adaptation.{cls}",
                                    value=grade))
    keep = catalog.options.index[catalog.options["keeps_current_use"]]
    if len(keep) != 1:
        problems.append(Issue("exactly one option must keep the current use", file=file, column="keeps_current_use",
                                value=list(keep)))
    for option, grade in catalog.options["max_grade"].items():
        if isinstance(grade, str) and grade not in names:
            problems.append(Issue("unknown grade", file=file, row=str(option), column="max_grade", value=grade))
    known_options = set(catalog.options.index)
    for option, variant in catalog.variants.index:
        if option not in known_options:
            problems.append(Issue("variant of an unknown option", file=file, row=f"{option}.{variant}",
                                    column="option", value=option))
    classes = catalog.variants.get("adaptation_class", pd.Series(dtype=object)).dropna()
    for (option, variant), cls in classes.items():
        if cls not in catalog.adaptation:
            problems.append(Issue(f"unknown adaptation class; known: {sorted(catalog.adaptation)}", file=file,
                                    row=f"{option}.{variant}", column="adaptation_class", value=cls))
    numeric = ["establishment_cost_per_mu", "net_income_per_mu", "labour_days_per_mu", *catalog.service_names]
    for column in numeric:
        if column not in catalog.variants.columns:
            problems.append(Issue("missing column", file=file, column=f"variants.{column}"))
            continue
        values = pd.to_numeric(catalog.variants[column], errors="coerce")
        for row in catalog.variants.index[values.isna().to_numpy()]:
            problems.append(Issue("not a number", file=file, row=".".join(row), column=column,
                                    value=catalog.variants.loc[row, column]))
        catalog.variants[column] = values.astype(float)
    for column in ["income_per_mu", "labour_days_per_mu", *catalog.service_names]:
        if column not in catalog.current_uses.columns:
            problems.append(Issue("missing column", file=file, column=f"current_uses.{column}"))
        else:
            catalog.current_uses[column] = pd.to_numeric(catalog.current_uses[column], errors="coerce").astype(float)
    for (option, variant) in catalog.market.index:
        if (option, variant) not in catalog.variants.index:
            problems.append(Issue("market limit for an unknown variant", file=file, row=f"{option}.{variant}"))
    for key in ("head_per_mu", "net_income_per_head", "purchase_cost_per_head", "shed_cost_per_head",
                "labour_days_per_head"):
        if key not in catalog.livestock:
            problems.append(Issue("missing livestock figure", file=file, column=f"livestock.{key}"))
    for key in ("mu_per_post", "wage_per_post"):
        if key not in catalog.rangers:
            problems.append(Issue("missing ranger figure", file=file, column=f"rangers.{key}"))
    problems += conversion_issues(catalog, catalog.conversions, str(catalog.path / "conversions.csv"))
    if problems:
        raise InputError(problems)


def conversion_issues(catalog: Catalog, table: pd.DataFrame, where: str) -> list[Issue]:
    """Unknown land-survey codes or options in a conversion table."""
    problems: list[Issue] = []
    codes = set(catalog.current_uses.index.astype(str))
    classes = {c[:2] for c in codes}
    options = set(catalog.options.index)
    pairs = {f"{o}.{v}" for o, v in catalog.variants.index} | options
    for row in table.itertuples(index=False):
        for code in str(row.current_use).split(";"):
            code = code.strip()
            if code not in codes and code not in classes and code != "*":
                problems.append(Issue("unknown land-survey code (GB/T 21010)", file=where, row=row.rule,
                                      column="current_use", value=code))
        for target in str(row.to).split(";"):
            target = target.strip()
            if target != "*" and target not in pairs:
                close = difflib.get_close_matches(target, sorted(pairs), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(Issue(f"unknown option or option.variant{hint}", file=where, row=row.rule,
                                      column="to", value=target))
            if target == catalog.keep_option if (catalog.options["keeps_current_use"].sum() == 1) else False:
                problems.append(Issue("the keep option is not a change; the table governs changes only", file=where,
                                      row=row.rule, column="to", value=target))
    return problems
