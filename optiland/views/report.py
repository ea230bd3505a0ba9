"""Township plan reports: a county overview and one page per township, in HTML and Markdown, from a solve OUTDIR.

``write_report(outdir)`` reads plan.gpkg, villages.csv, townships.csv and run.json (no solver), and the catalog that
run.json names, and writes ``OUTDIR/report/`` whole or not at all: ``index.html`` / ``index.md`` (the county),
``township-<name>.html`` / ``.md`` per township, and ``img/`` (maps and charts as PNG files beside the pages, so the
folder is self-contained and the Markdown twins show the same pictures).

Every figure on a page is traceable: a table cell taken from a results file carries ``data-village`` or
``data-township`` and ``data-field`` (the CSV column), ``data-value`` (the value as read) and ``data-decimals`` /
``data-scale`` (how it is shown); figures the report derives carry ``data-derived`` instead of ``data-field``.

Labels come from a translation table (``report_templates/strings.toml``) and, for options, variants, services and
livestock, from the catalog's ``name`` / ``name_zh`` and ``label`` / ``label_zh``. Chinese plots need a CJK font:
with ``lang="zh"`` and no Noto CJK font, the report is not written and the error names the Debian package to install
(a report whose Chinese labels print as empty boxes would mislead the officials it is written for).
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import OptilandError
from optiland.io.catalog import Catalog
from optiland.pipeline.results import FLOOR_TOLERANCE, INCOME_SOURCES, write_atomically
from optiland.views.report_data import (
    Binding,
    FrontInfo,
    Labels,
    Results,
    WhatIf,
    binding_constraints,
    industry_income,
    leading_industries,
    load_strings,
    plot_fonts,
    read_catalog,
    read_front,
    read_results,
    read_whatif,
)
from optiland.views.report_page import (
    Cell,
    Page,
    Paragraph,
    Picture,
    Section,
    Table,
    format_figure,
    format_general,
    format_number,
    number,
    render,
    text,
)
from optiland.views.report_plots import Plotter
from optiland.views.report_text import cite, format_time, gap_words, latin_names, reference_note, translated_notes

# ------------------------------------------------------------------------------------------------------------
# Building the pages


def _slug(name: str) -> str:
    return re.sub(r"[^\w-]+", "_", name).strip("_") or "township"


class ReportBuilder:
    """Turns a results folder into pages (sections of text, pictures and traceable tables)."""

    def __init__(self, results: Results, catalog: Catalog, lang: str, plotter: Plotter,
                 front: FrontInfo | None, notes: list[Paragraph], whatif: WhatIf | None = None) -> None:
        self.r, self.catalog, self.lang = results, catalog, lang
        self.whatif = whatif
        self.t = load_strings(lang)
        self.labels = plotter.labels
        self.plot = plotter
        self.front = front
        self.notes = notes
        self.township_names = sorted(results.townships["township"].astype(str))
        stems: dict[str, str] = {}
        for i, name in enumerate(self.township_names):
            stem = f"township-{_slug(name)}"
            stems[name] = stem if stem not in stems.values() else f"{stem}-{i + 1}"
        self.stems = stems
        self.binding = binding_constraints(results.run, results.villages, self.township_names)
        self._front_picture: Picture | None = None

    # shared parts ------------------------------------------------------------------------------------------

    def _front_section(self) -> Section | None:
        if self.front is None:
            return None
        if self._front_picture is None:
            self._front_picture = self.plot.front_chart(self.front, "front.png")
        section = Section("front", self.t["front"], pictures=[self._front_picture])
        if self.front.chosen is None:
            section.paragraphs.append(Paragraph(self.t["front_not_chosen"]))
            return section
        pick = {"knee": self.t["front_knee"], "ideal": self.t["front_ideal"]}.get(self.front.pick or "",
                                                                                self.front.pick or "")
        section.paragraphs.append(Paragraph(self.t["front_chosen_text"].format(
            point=self.front.chosen, pick=pick, dir=self.front.directory)))
        row = self.front.table[self.front.table["plan_id"] == self.front.chosen]
        if len(row):
            names = self.front.run["objectives"]
            section.tables.append(Table(
                [self.t["front_point"], *[self.labels.objective(n) for n in names]],
                [[text(self.front.chosen, data_front_point=self.front.chosen),
                  *[number(row[n].iat[0], 4 if abs(float(row[n].iat[0])) < 100 else 0,
                           data_front_point=self.front.chosen, data_front_field=n) for n in names]]]))
        return section

    def _binding_section(self, township: str | None) -> Section:
        section = Section("binding", self.t["binding"])
        entries = [b for b in self.binding if township is None or b.township in (None, township)]
        # a village within the floor tolerance is held by its floor in practice, though the solver's tolerance
        # (the MIP gap) left it a few yuan above, so that the model row is not exactly at its bound
        listed = {b.village for b in entries if b.family == "income_floor"}
        villages = self.r.villages
        near = villages[villages["at_or_below_floor"].astype(bool)
                        & ((villages["township"] == township) if township is not None else True)]
        entries += [Binding("income_floor", self.t["binding_near_floor"].format(tol=FLOOR_TOLERANCE),
                            village=str(v.village), township=str(v.township))
                    for v in near.itertuples(index=False) if v.village not in listed]
        if not entries:
            section.paragraphs.append(Paragraph(self.t["binding_none"]))
            return section
        section.paragraphs.append(Paragraph(self.t["binding_note"]))
        rows = []
        model_rows = self.lang != "zh"  # a model row's name (carrying_capacity[1]) means nothing on a printed plan
        for b in entries:
            scope = b.village or b.township or self.t["binding_county"]
            if b.rows > 1 and not model_rows:
                scope += self.t["paren"].format(self.t["binding_rows"].format(n=b.rows))
            row = b.row if b.rows == 1 else self.t["binding_rows"].format(n=b.rows)
            rows.append([text(scope), text(self.labels.constraint(b.family), data_binding=b.family),
                         *([text(row)] if model_rows else [])])
        section.tables.append(Table([self.t["binding_scope"], self.t["binding_constraint"],
                                     *([self.t["binding_row"]] if model_rows else [])], rows))
        return section

    def _provenance_section(self, parcels: pd.DataFrame, villages: pd.DataFrame) -> Section:
        t, run = self.t, self.r.run
        section = Section("provenance", t["provenance"], paragraphs=list(self.notes))
        solver = run.get("solver") or {}
        objective = run.get("objective") or {}
        catalog = run.get("catalog") or {}
        status = str(run.get("status", ""))
        facts: list[list[Cell]] = [
            [text(t["solver"]), text(self.labels.solver(str(solver.get("name", "")), str(solver.get("version") or "")),
                                     data_run_field="solver.name")],
            [text(t["status"]), text(self.labels.status(status), data_run_field="status")],
        ]
        if objective:
            sense = objective.get("sense", "")
            facts.append([text(t["objective"]), text(f"{self.labels.objective(objective.get('name', ''))}"
                                                     f"{t['paren'].format(t['senses'].get(sense, ''))}")])
            for key, label in (("value", "objective_value"), ("bound", f"bound_{sense}" if sense else "bound")):
                value = objective.get(key)
                if value is not None:
                    facts.append([text(t[label]), Cell(format_general(float(value)), {
                        "data-run-field": f"objective.{key}", "data-value": repr(float(value))}, numeric=True)])
            gap = objective.get("gap")
            if gap is not None:
                facts.append([text(t["gap"]), Cell(gap_words(float(gap), status, t), {
                    "data-run-field": "objective.gap", "data-value": repr(float(gap))})])
        facts += [
            [text(t["catalog"]), text(_catalog_version(catalog, self.labels.region(), t))],
            [text(t["scenario"]), text(run.get("scenario_path") or t["dash"])],
            [text(t["created"]), text(format_time(run.get("created", t["dash"]), self.lang))],
            [text(t["optiland_version"]), text(run.get("optiland_version", t["dash"]))],
        ]
        for key, digest in (run.get("input_hashes") or {}).items():
            name = t["inputs"].get(key, key)
            facts.append([text(f"{t['input_hashes']}{t['colon']}{name}"), text(str(digest)[:16])])
        section.tables.append(Table([t["item"], t["value"]], facts, key="run"))
        reference = reference_note(run.get("reference"), self.labels.service, t)
        if reference is not None:
            section.paragraphs.append(Paragraph(reference))
        shown, left = translated_notes(run.get("notes") or [], t)
        for note in shown:
            section.paragraphs.append(Paragraph(f"{t['notes']}{t['colon']}{note}"))
        if left:
            section.paragraphs.append(Paragraph(t["notes_left"].format(n=left)))
        if t["sources_note"]:
            section.paragraphs.append(Paragraph(t["sources_note"].format(path=self.catalog.path)))
        section.tables.append(Table([t["item"], t["figure"], t["value"], t["source"]],
                                    self._catalog_rows(parcels, villages), key="catalog-figures"))
        return section

    def _catalog_rows(self, parcels: pd.DataFrame, villages: pd.DataFrame) -> list[list[Cell]]:
        """The catalog figures behind the page: defaults, current uses, options, variants, livestock, rangers."""
        c, f, dash = self.catalog, self.t["figures"], self.t["dash"]
        rows: list[list[Cell]] = []

        def add(item: str, figure: str, value: Any, source: Any, key: str) -> None:
            """One figure; ``key`` is its dotted catalog key, the form scenario overrides use."""
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return
            numeric = isinstance(value, (int, float, np.number))
            attrs = {"data-catalog": key, **({"data-value": repr(float(value))} if numeric else {})}
            shown = format_figure(float(value)) if numeric else str(value)
            rows.append([text(item), text(figure), Cell(shown, attrs, numeric=numeric),
                         text(cite(source, self.t) if isinstance(source, str) and source else dash)])

        if "income_floor" in c.defaults:
            add(f["defaults"], f["income_floor"], float(c.defaults["income_floor"]),
                c.defaults.get("income_floor_source"), "defaults.income_floor")
        for code in sorted(set(parcels["current_use"])):
            if code in c.current_uses.index:
                use = c.current_uses.loc[code]
                add(f"{f['current_use']} {code} {self.labels.current_use(code)}", f["income_per_mu"],
                    float(use["income_per_mu"]), use.get("income_source"), f"current_uses.{code}.income_per_mu")
        services = self.t["list_sep"].join(self.labels.service(s) for s in c.service_names)
        planted = parcels[parcels["option"] != c.keep_option]
        for option in [o for o in c.options.index if o in set(planted["option"])]:
            record = c.options.loc[option]
            for key in ("compensation_per_mu", "mu_per_household"):
                if key in record.index:
                    add(self.labels.option(option), f[key], _float(record[key]), record.get("source"),
                        f"options.{option}.{key}")
            for variant in sorted(set(planted.loc[planted["option"] == option, "variant"])):
                if (option, variant) not in c.variants.index:
                    continue
                v = c.variants.loc[(option, variant)]
                item = self.labels.option(option) if variant == option else (
                    f"{self.labels.option(option)} · {self.labels.variant(option, variant)}")
                for key, source in (("establishment_cost_per_mu", "cost_source"),
                                    ("net_income_per_mu", "income_source"), ("labour_days_per_mu", "labour_source")):
                    if key in v.index:
                        add(item, f[key], _float(v[key]), v.get(source), f"variants.{option}.{variant}.{key}")
                coefficients = self.t["list_sep"].join(f"{self.labels.service(s)} {format_general(float(v[s]))}"
                                                       for s in c.service_names if s in v.index)
                add(item, f["es_coefficients"].format(services=services), coefficients, v.get("es_source"),
                    f"variants.{option}.{variant}")
        groups = (("livestock", c.livestock, int(villages["herd"].sum())),
                  ("rangers", c.rangers, int(villages["ranger_posts"].sum())))
        for group, figures, used in groups:
            if not used:
                continue
            for key, value in figures.items():
                if key in f and not str(key).endswith("source"):
                    add(f[group], f[key], _float(value), figures.get(f"{key}_source", figures.get("source")),
                        f"{group}.{key}")
        return rows

    def _village_tables(self, villages: pd.DataFrame) -> list[Section]:
        t = self.t
        income = Section("villages", t["villages_income"], tables_first=True)
        rows = []
        for v in villages.itertuples(index=False):
            key = {"data_village": v.village}
            below = bool(v.at_or_below_floor)
            rows.append([
                text(v.village, **key),
                number(v.population, 0, data_field="population", **key),
                number(v.floor, 0, data_field="floor", **key),
                number(v.income_per_capita_before, 0, data_field="income_per_capita_before", **key),
                number(v.income_per_capita_after, 0, data_field="income_per_capita_after", **key),
                number(v.income_per_capita_after - v.income_per_capita_before, 0, data_derived="income_change",
                       **key),
                Cell(t["at_floor"] if below else t["above_floor"],
                     {"data-village": v.village, "data-field": "at_or_below_floor", "data-value": str(below).lower(),
                      "class": "below" if below else "above"}),
            ])
        income.tables.append(Table([t["village"], t["population"], t["floor"], t["income_before"],
                                    t["income_after"], t["income_change"], t["floor_status"]], rows,
                                   key="village-income"))
        better = int((villages["income_per_capita_after"] > villages["income_per_capita_before"] + 0.005).sum())
        worse = int((villages["income_per_capita_after"] < villages["income_per_capita_before"] - 0.005).sum())
        income.paragraphs.append(Paragraph(t["villages_better_off"].format(better=better, total=len(villages),
                                                                           worse=worse)))
        balance = _balance_note(self.r.run)
        if balance is not None:
            income.paragraphs.append(Paragraph(t["balance_rule"].format(**balance)))
        sources = Section("sources", t["income_by_source"])
        rows = []
        for v in villages.itertuples(index=False):
            key = {"data_village": v.village}
            rows.append([text(v.village, **key),
                         *[number(getattr(v, f"income_{s}"), 0, data_field=f"income_{s}", **key)
                           for s in INCOME_SOURCES],
                         number(v.income_total, 0, data_field="income_total", **key)])
        sources.tables.append(Table([t["village"], *[t[f"source_{s}"] for s in INCOME_SOURCES], t["income_total"]],
                                    rows, key="village-sources"))
        return [income, sources]

    # township page ------------------------------------------------------------------------------------------

    def township_page(self, name: str) -> Page:
        """Everything one township's officials need: where, what, who gains, what it costs, what limits it."""
        t, c, labels = self.t, self.catalog, self.labels
        row = self.r.townships[self.r.townships["township"] == name].iloc[0]
        villages = self.r.villages[self.r.villages["township"] == name].reset_index(drop=True)
        parcels = self.r.parcels[self.r.parcels["township"] == name]
        stem = self.stems[name]
        at = {"data_township": name}
        title = t["township_title"].format(name=name)
        sections: list[Section] = []
        village_sections = self._village_tables(villages)  # first on the page: who gains, by how much
        village_sections[0].pictures.append(self.plot.income_chart(
            villages, f"{stem}-income.png", t["income_chart_alt"].format(name=name)))
        sections.append(village_sections[0])

        overview = Section("overview", t["overview"])
        fields = (("area_mu", "area_mu", 1), ("establishment_cost", "establishment_cost", 0),
                  ("labour_days", "labour_days", 0), ("herd", "herd", 0), ("ranger_posts", "ranger_posts", 0),
                  ("households_reached", "households_reached", 0), ("population", "population", 0),
                  ("villages_at_or_below_floor", "villages_at_or_below_floor", 0))
        overview.tables.append(Table([t["item"], t["value"]],
                                     [[text(t[label]), number(row[column], decimals, data_field=column, **at)]
                                      for column, label, decimals in fields], key="overview"))
        income = industry_income(parcels, villages, c)
        leading = leading_industries(income, c)
        for key, position in (("dominant", 0), ("secondary", 1)):
            overview.paragraphs.append(Paragraph(f"{t[key]}{t['colon']}{self._industry(income, leading, position)}"))
        sections.append(overview)

        plan_map = Section("map", t["map"], [Paragraph(t["map_note"])])
        plan_map.pictures.append(self.plot.plan_map(parcels, f"{stem}-map.png", title,
                                                    t["map_alt"].format(name=name), areas="village"))
        sections.append(plan_map)

        areas = Section("areas", t["area_by_option"])
        rows = []
        for option in [o for o in c.options.index if f"area_mu__{o}" in row.index and row[f"area_mu__{o}"] > 0]:
            rows.append([text(labels.option(option), data_option=option), text(""),
                         number(row[f"area_mu__{option}"], 1, data_field=f"area_mu__{option}", **at),
                         number(row[f"share__{option}"], 1, scale=100.0, suffix="%", data_field=f"share__{option}",
                                **at)])
            for variant in [v for o, v in c.variants.index if o == option]:
                column = f"area_mu__{option}.{variant}"
                if column in row.index and row[column] > 0:
                    rows.append([text(""), text(labels.variant(option, variant), data_variant=f"{option}.{variant}"),
                                 number(row[column], 1, data_field=column, **at),
                                 number(row[f"share__{option}.{variant}"], 1, scale=100.0, suffix="%",
                                        data_field=f"share__{option}.{variant}", **at)])
        areas.tables.append(Table([t["option"], t["variant"], t["area_mu"], t["share"]], rows, key="areas"))
        sections.append(areas)

        industries = Section("industries", t["industries"], [Paragraph(t["industries_note"])])
        rows = []
        for option, values in income.iterrows():
            if values["total"] <= 0:
                continue
            keys = {"data_township": name, "data_option": option}
            rows.append([text(labels.option(option), data_option=option),
                         *[number(values[k], 0, data_derived=f"industry_{k}", **keys)
                           for k in ("land", "compensation", "cattle", "wages", "total")],
                         number(values["share"], 1, scale=100.0, suffix="%", data_derived="industry_share", **keys)])
        industries.tables.append(Table([t["option"], t["land_income"], t["compensation_income"], t["cattle_income"],
                                        t["wages_income"], t["income_yuan"], t["income_share"]], rows,
                                       key="industries"))
        industries.tables.append(self._village_industries(parcels, villages))
        sections.append(industries)

        village_sections[1].pictures.append(self.plot.sources_chart(
            villages, f"{stem}-sources.png", t["income_sources_alt"].format(name=name)))
        sections.append(village_sections[1])

        services = Section("services", t["ecosystem_services"], [Paragraph(t["es_note"])])
        rows = []
        for service in c.service_names:
            if f"gain_{service}" not in row.index:
                continue
            index_value = row.get(f"index_{service}")
            rows.append([text(labels.service(service), data_service=service), text(labels.service_unit(service)),
                         number(row[f"gain_{service}"], 2, data_field=f"gain_{service}", **at),
                         number(index_value, 1, scale=100.0, suffix="%", data_field=f"index_{service}", **at)
                         if index_value is not None and pd.notna(index_value) else text(t["dash"])])
        services.tables.append(Table([t["service"], t["unit"], t["gain"], t["index"]], rows, key="services"))
        sections.append(services)

        cost = Section("cost", t["cost_labour"])
        cost.tables.append(Table([t["township"], t["establishment_cost"], t["labour_days"]], [[
            text(name, **at), number(row["establishment_cost"], 0, data_field="establishment_cost", **at),
            number(row["labour_days"], 1, data_field="labour_days", **at)]], key="cost"))
        cost.tables.append(Table([t["village"], t["labour_used"], t["labour_available"]], [[
            text(v.village, data_village=v.village),
            number(v.labour_used, 1, data_field="labour_used", data_village=v.village),
            number(v.labour_available, 1, data_field="labour_available", data_village=v.village)]
            for v in villages.itertuples(index=False)], key="labour"))
        sections.append(cost)

        posts = Section("posts", t["herd_posts"])
        rows = [[text(v.village, data_village=v.village),
                 *[number(getattr(v, k), 0, data_field=k, data_village=v.village)
                   for k in ("herd", "ranger_posts", "households_reached", "households")]]
                for v in villages.itertuples(index=False)]
        rows.append([text(name, **at), *[number(row[k], 0, data_field=k, **at)
                                         for k in ("herd", "ranger_posts", "households_reached")], text("")])
        posts.tables.append(Table([t["village"], t["herd"], t["ranger_posts"], t["households_reached"],
                                   t["households"]], rows, key="posts"))
        sections.append(posts)

        sections.append(self._species_section(name, row, parcels))
        sections.append(self._binding_section(name))
        front = self._front_section()
        if front is not None:
            sections.append(front)
        sections.append(self._provenance_section(parcels, villages))
        return Page(stem, title, sections, back="index")

    def _species_section(self, name: str, row: pd.Series, parcels: pd.DataFrame) -> Section:
        t, c, labels = self.t, self.catalog, self.labels
        section = Section("species", t["species"])
        planted = parcels[parcels["option"] != c.keep_option]
        counts = planted.groupby(["option", "variant"]).size()
        rows = []
        for (option, variant), n in counts.items():
            record = c.variants.loc[(option, variant)] if (option, variant) in c.variants.index else pd.Series()
            scientific = record.get("scientific_name")
            cls = record.get("adaptation_class")
            has_class = isinstance(cls, str) and bool(cls)
            if not has_class and not (isinstance(scientific, str) and scientific):
                continue  # an option without a species (e.g. natural regeneration) plants nothing
            column = f"area_mu__{option}.{variant}" if option != variant else f"area_mu__{option}"
            area = (number(row[column], 1, data_field=column, data_township=name) if column in row.index
                    else number(planted.loc[(planted["option"] == option) & (planted["variant"] == variant),
                                            "area_mu"].sum(), 1, data_derived="area_mu", data_township=name))
            rows.append([text(labels.variant(option, variant), data_variant=f"{option}.{variant}"),
                         text(self._scientific(scientific), lang="la") if isinstance(scientific, str)
                         else text(t["dash"]),
                         text(labels.option(option)),
                         text(labels.adaptation(cls) if has_class else t["dash"], data_adaptation=cls or ""),
                         area, number(n, 0, data_derived="parcels", data_township=name)])
        if rows:
            section.tables.append(Table([t["variant"], t["scientific_name"], t["option"], t["adaptation_class"],
                                         t["area_mu"], t["parcels"]], rows, key="species"))
        else:
            section.paragraphs.append(Paragraph(t["no_species"]))
        return section

    def _industry(self, income: pd.DataFrame, leading: list[str], position: int) -> str:
        """The dominant (0) or secondary (1) industry with its share of land-based income, or "none"."""
        if len(leading) <= position:
            return self.t["none"]
        option = leading[position]
        share = format_number(float(income.loc[option, "share"]) * 100, 1)
        return f"{self.labels.option(option)}{self.t['paren'].format(share + '%')}"

    def _village_industries(self, parcels: pd.DataFrame, villages: pd.DataFrame) -> Table:
        """Per village: its dominant and secondary industries by the same rule as the township's
        (``leading_industries``), and the households the plan reaches there."""
        t, rows = self.t, []
        for v in villages.itertuples(index=False):
            mine = parcels[parcels["village"] == v.village]
            income = industry_income(mine, villages[villages["village"] == v.village], self.catalog)
            leading = leading_industries(income, self.catalog)
            cells = [text(v.village, data_village=v.village)]
            for key, position in (("dominant", 0), ("secondary", 1)):
                option = leading[position] if len(leading) > position else ""
                cells.append(text(self._industry(income, leading, position), data_village=v.village,
                                  data_derived=key, data_option=option))
            cells.append(number(v.households_reached, 0, data_field="households_reached", data_village=v.village))
            rows.append(cells)
        return Table([t["village"], t["dominant"], t["secondary"], t["households_reached"]], rows,
                     key="village-industries")

    def _lever(self, lever: str, kind: str) -> str:
        """A what-would-it-take lever by its names: an option, "option · variant", or the herd."""
        if kind == "livestock":
            return self.t["whatif_herd"]
        option, _, variant = lever.partition(".")
        if not variant:
            return self.labels.option(option)
        return f"{self.labels.option(option)} · {self.labels.variant(option, variant)}"

    def _unit(self, unit: str) -> str:
        return str(self.t.get("units", {}).get(unit, unit))

    def _whatif_sections(self) -> list[Section]:
        """What it would take (optiland whatif, if run on this folder): for each option, variant or the herd the
        plan leaves out or caps, the net income or subsidy at which it enters and the parcels it takes first
        (proven by re-solving where `--exact` asked for it, else the LP estimate); for each binding target, what one
        more unit of it is worth to the objective."""
        if self.whatif is None:
            return []
        t, w = self.t, self.whatif
        section = Section("whatif", t["whatif"], [Paragraph(t["whatif_note"])])
        rows = []
        left_out = w.options[w.options["status"].astype(str) != "in the plan"].copy()
        exact = pd.to_numeric(left_out["subsidy"], errors="coerce")
        left_out["_order"] = exact.where(exact.notna(), pd.to_numeric(left_out["lp_subsidy"], errors="coerce"))
        for row in left_out.sort_values("_order", na_position="last", kind="stable").itertuples(index=False):
            proven = pd.notna(row.entry_price)
            entry, subsidy = (row.entry_price, row.subsidy) if proven else (row.lp_entry_price, row.lp_subsidy)
            if pd.isna(entry) and pd.isna(subsidy):
                continue  # no estimate (e.g. an option whose variants are listed one by one)
            first = str(row.first_parcels if proven else row.lp_first_parcels)
            parcels = [p for p in re.split(r"[;,\s]+", first) if p and p != "nan"]
            keys = {"data_lever": row.lever}
            status = t["whatif_capped"] if str(row.status).startswith("capped") else t["whatif_absent"]
            basis = (t["whatif_proven"] if bool(row.proven) else t["whatif_resolved"]) if proven else t["whatif_lp"]
            rows.append([text(self._lever(row.lever, row.kind), **keys), text(status),
                         number(row.income_now, 0, data_whatif="income_now", **keys)
                         if pd.notna(row.income_now) else text(t["dash"]),
                         self._price(entry, "entry_price" if proven else "lp_entry_price", keys),
                         self._price(subsidy, "subsidy" if proven else "lp_subsidy", keys), text(basis),
                         text(t["list_sep"].join(parcels[:3]) + (t["whatif_more"] if len(parcels) > 3 else "")
                              if parcels else t["dash"])])
        if rows:
            section.tables.append(Table([t["whatif_lever"], t["whatif_status"], t["whatif_income_now"],
                                         t["whatif_entry"], t["whatif_subsidy"], t["whatif_basis"],
                                         t["whatif_first"]], rows, key="whatif-options"))
        targets = Section("whatif-targets", t["whatif_targets"])
        rows = []
        for row in w.targets.itertuples(index=False):
            resolved = pd.notna(row.value_per_unit)
            value = row.value_per_unit if resolved else row.lp_value_per_unit
            key = " ".join(self._key(part) for part in str(row.key).split()) if pd.notna(row.key) else ""
            rows.append([text(self.labels.constraint(row.family), data_row=row.row), text(key or t["dash"]),
                         Cell(format_general(float(row.figure)), {"data-row": row.row, "data-whatif": "figure",
                                                                 "data-value": repr(float(row.figure))}, numeric=True),
                         text(self._unit(row.unit)),
                         Cell(format_general(float(value), 3) if pd.notna(value) else t["dash"],
                              {"data-row": row.row, "data-whatif": "value_per_unit" if resolved else
                               "lp_value_per_unit", "data-value": repr(float(value))}, numeric=True),
                         text(t["whatif_resolved"] if resolved else t["whatif_dual"])])
        if rows:
            targets.paragraphs.append(Paragraph(t["whatif_targets_note"].format(unit=self._unit(w.objective_unit))))
            targets.tables.append(Table([t["binding_constraint"], t["whatif_key"], t["value"], t["unit"],
                                         t["whatif_value"], t["whatif_basis"]], rows, key="whatif-targets"))
        return [section, *([targets] if rows else [])]

    def _price(self, value: Any, column: str, keys: dict[str, str]) -> Cell:
        """An entry price or subsidy: "never" above the study's ceiling, "today" when it already enters."""
        value = float(value) if pd.notna(value) else math.nan
        if math.isnan(value):
            return text(self.t["dash"])
        if math.isinf(value):
            return text(self.t["whatif_never"] if value > 0 else self.t["whatif_today"], data_whatif=column, **keys)
        return number(value, 0, data_whatif=column, **keys)

    def _key(self, part: str) -> str:
        """A target's key: a variant (option.variant) by its names, a village or township as written."""
        option, _, variant = part.partition(".")
        if variant and option in self.catalog.options.index:
            return self._lever(part, "variant")
        return part

    def _scientific(self, name: str) -> str:
        """A scientific name; in Chinese without the catalog's English glosses (Latin names are printed in Latin
        in Chinese plans too)."""
        return latin_names(name) if self.lang == "zh" else name

    # county page --------------------------------------------------------------------------------------------

    def index_page(self) -> Page:
        """The county: totals, a map, every township linked with its headline figures, the front, provenance."""
        t, c = self.t, self.catalog
        r = self.r
        sections: list[Section] = [self._village_tables(r.villages)[0]]  # first: every village, before and after
        fields = (("area_mu", 1), ("establishment_cost", 0), ("labour_days", 0), ("herd", 0), ("ranger_posts", 0),
                  ("households_reached", 0), ("population", 0), ("villages_at_or_below_floor", 0))
        totals = Section("totals", t["county_totals"])
        totals.tables.append(Table([t["item"], t["value"]], [
            [text(t[k]), number(r.townships[k].sum(), d, data_county_field=k)] for k, d in fields], key="totals"))
        sections.append(totals)
        areas = Section("areas", t["area_by_option"])
        options = [o for o in c.options.index if f"area_mu__{o}" in r.townships.columns
                   and r.townships[f"area_mu__{o}"].sum() > 0]
        total_area = float(r.townships["area_mu"].sum())
        areas.tables.append(Table([t["option"], t["area_mu"], t["share"]], [
            [text(self.labels.option(o), data_option=o),
             number(r.townships[f"area_mu__{o}"].sum(), 1, data_county_field=f"area_mu__{o}"),
             number(r.townships[f"area_mu__{o}"].sum() / total_area if total_area else 0.0, 1, scale=100.0,
                    suffix="%", data_derived="county_share", data_option=o)] for o in options], key="county-areas"))
        sections.append(areas)
        county_map = Section("map", t["map"], [Paragraph(t["map_note"])])
        county_map.pictures.append(self.plot.plan_map(r.parcels, "county-map.png", t["county_title"],
                                                      t["map_alt"].format(name=t["county_title"]), areas="township"))
        sections.append(county_map)

        listing = Section("townships", t["townships"])
        rows = []
        for name in self.township_names:
            row = r.townships[r.townships["township"] == name].iloc[0]
            parcels = r.parcels[r.parcels["township"] == name]
            villages = r.villages[r.villages["township"] == name]
            income = industry_income(parcels, villages, c)
            leading = leading_industries(income, c)
            rows.append([Cell(name, {"data-township": name}, href=self.stems[name]),
                         *[number(row[k], d, data_field=k, data_township=name) for k, d in fields],
                         *[text(self._industry(income, leading, position), data_township=name, data_derived=key,
                                data_option=leading[position] if len(leading) > position else "")
                           for key, position in (("dominant", 0), ("secondary", 1))]])
        listing.tables.append(Table([t["township"], *[t[k] for k, _ in fields], t["dominant"], t["secondary"]],
                                    rows, key="township-list"))
        sections.append(listing)
        sections += self._whatif_sections()
        front = self._front_section()
        if front is not None:
            sections.append(front)
        sections.append(self._binding_section(None))
        sections.append(self._provenance_section(r.parcels, r.villages))
        return Page("index", t["county_title"], sections)


_BALANCE = re.compile(r"balance: the most (?P<objective>\S+) with total income at least (?P<need>[\d,]+) yuan/yr = "
                      r"today (?P<today>[\d,]+) \+ (?P<share>\d+)% of the gain to the most income, (?P<best>[\d,]+)")


def _balance_note(run: dict[str, Any]) -> dict[str, str] | None:
    """The balance rule's figures from run.json's notes (optiland.pipeline.run.balance_income), if it applied."""
    for note in run.get("notes") or []:
        found = _BALANCE.match(str(note))
        if found:
            return found.groupdict()
    return None


def _catalog_version(record: dict[str, Any], region: str, strings: dict[str, Any]) -> str:
    """run.json's catalog: the region, and its version (number and content digest) in the page's words."""
    version = str(record.get("version", ""))
    number, _, digest = version.partition("+")
    return strings["catalog_version"].format(name=record.get("name", ""), region=region, version=version,
                                             number=number, digest=digest or strings["dash"])


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


REPORT_FOLDERS = {"zh": "report", "en": "report-en"}
"""The report's folder in a results folder, per language: the default (Chinese) one keeps the name other tools and
the README use, and an English report never replaces the Chinese one a bureau prints."""


def report_folder(outdir: str | Path, lang: str) -> Path:
    """Where ``write_report(outdir, lang)`` writes: ``OUTDIR/report`` (zh) or ``OUTDIR/report-en`` (en)."""
    load_strings(lang)  # an unknown language is an error naming the known ones
    return Path(outdir) / REPORT_FOLDERS.get(lang, f"report-{lang}")


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""Browsers that print a page to PDF headless (Debian's chromium first); $OPTILAND_CHROMIUM names another."""
PDF_SECONDS = 120


def find_browser() -> str | None:
    """A headless-capable Chromium for printing pages to PDF, or None."""
    import os
    import shutil

    given = os.environ.get("OPTILAND_CHROMIUM")
    if given:
        return given if Path(given).is_file() else shutil.which(given)
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def print_pdf(browser: str, page: Path, pdf: Path) -> None:
    """Print one HTML page to PDF with the page's own CSS page size (A4, its margins), no browser header or
    footer; a failure is an error naming the page."""
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="optiland-chromium-") as profile:
        command = [browser, "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                   "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # chromium refuses to run as root inside its sandbox
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PDF_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise OptilandError(f"printing {page.name} to PDF with {browser} took over {PDF_SECONDS} s") from None
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise OptilandError(f"printing {page.name} to PDF with {browser} failed (exit {done.returncode}): "
                            f"{done.stderr.strip()[-300:]}")


def write_report(outdir: str | Path, lang: str = "zh", front_dir: str | Path | None = None,
                 pdf: bool = False) -> Path:
    """Write the report folder (``report_folder``: index and one page per township, HTML and Markdown, pictures in
    img/), whole or not at all; returns it. ``front_dir``: a pareto OUTDIR to show (default: the one run.json
    records). ``pdf``: each page also as ``<page>.pdf`` (A4), printed by a headless Chromium (``find_browser``)."""
    strings = load_strings(lang)
    browser = find_browser() if pdf else None
    if pdf and browser is None:
        raise OptilandError("printing the report to PDF needs a Chromium browser and none was found: install "
                            "Debian's chromium (apt-get install chromium) or name one in $OPTILAND_CHROMIUM; the "
                            "HTML pages print on A4 from any browser's print dialog too")
    results = read_results(outdir)
    fonts = plot_fonts(lang)
    catalog, changed = read_catalog(results)
    front, missing_front = read_front(results, front_dir)
    whatif = read_whatif(results)
    notes = []
    if changed:
        notes.append(Paragraph(strings["catalog_changed"].format(old=changed, new=catalog.version), warning=True))
    if missing_front:
        notes.append(Paragraph(strings["front_missing"].format(dir=missing_front), warning=True))
    labels = Labels(catalog, strings, lang)
    run = results.run
    generated = strings["generated"].format(version=run.get("optiland_version", "?"),
                                            created=format_time(run.get("created", "?"), lang),
                                            outdir=results.out_dir.resolve())

    def write(folder: Path) -> None:
        (folder / "img").mkdir()
        builder = ReportBuilder(results, catalog, lang, Plotter(folder, fonts, labels, catalog), front, notes, whatif)
        pages = [builder.index_page()] + [builder.township_page(name) for name in builder.township_names]
        for page in pages:
            html, markdown = render(page, strings, generated)
            (folder / f"{page.stem}.html").write_text(html, encoding="utf-8")
            (folder / f"{page.stem}.md").write_text(markdown, encoding="utf-8")
        if browser is not None:
            for page in pages:
                print_pdf(browser, folder / f"{page.stem}.html", folder / f"{page.stem}.pdf")

    with warnings.catch_warnings():
        # a village or township name in a script the chosen fonts lack still plots (as boxes); not worth a failure
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        return write_atomically(report_folder(outdir, lang), write)
