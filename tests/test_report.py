"""Township plan reports: files, links, Markdown twins, zh and en, every number traced back to the CSVs, errors;
and the pages opened in Debian's headless chromium (skipped with a reason where it is missing)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from conftest import write_instance
from PIL import Image
from typer.testing import CliRunner

from optiland.cli import app
from optiland.errors import InputError, OptilandError
from optiland.io.catalog import load_catalog
from optiland.io.scenario import Scenario
from optiland.model.problem import build_problem
from optiland.pipeline.results import make_plan
from optiland.pipeline.run import Prepared, solve_prepared, solver_options
from optiland.testing import SMALL_CATALOG, make_inputs
from optiland.views import report as report_module
from optiland.views import report_data
from optiland.views.report import report_folder, write_report
from optiland.views.report_data import binding_constraints, find_cjk_font, industry_income, load_strings
from optiland.views.report_page import markdown_text
from optiland.views.report_plots import Plotter

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
runner = CliRunner()
EN = "report-en"  # the English report's folder; the Chinese one is "report" (report_folder)

# Eight parcels, two villages in two townships; maximising income under these limits keeps a herd and a ranger
# post, fills a market limit and binds the cattle carrying capacity of village V2 (so the report has something to
# say in every section).
PARCELS = pd.DataFrame({
    "parcel_id": [f"P{i}" for i in range(8)],
    "village": ["V1"] * 4 + ["V2"] * 4,
    "land_use": ["0103", "0103", "0305", "0404", "0101", "0404", "1206", "0103"],
    "slope_deg": [10.0, 28, 35, 8, 5, 20, 40, 12],
    "bedrock_exposure": [10.0, 40, 60, 15, 5, 25, 95, 10],
    "soil_depth_cm": [50.0] * 8,
    "karst": [True] * 8,
    "red_line": [False, False, True, False, False, False, False, False],
    "basic_farmland": [False, False, False, False, True, False, False, False],
    "area_mu": [14.0, 12, 150, 6, 8, 15, 9, 10],
})
VILLAGES = pd.DataFrame({
    "village": ["V1", "V2"], "township": ["T1", "T2"], "population": [10, 8], "households": [3, 3],
    "labour_days": [1500.0, 1200.0], "nonland_income_per_capita": [2000.0, 2500.0],
})
OVERRIDES = {"livestock.net_income_per_head": 1800, "variants.herbs.sophora.net_income_per_mu": 1500}
CONSTRAINTS = {"income_floor": 4000, "transfer_budget": 30000, "budget": 250000, "diversity_cap": 0.8,
               "forest_cover_min": 0.3, "max_transfer_share": 0.9}


# ------------------------------------------------------------------------------------------------------------
# Fixtures: solved OUTDIRs


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated instance (2 townships, 4 villages, red lines) solved by the CLI."""
    base = tmp_path_factory.mktemp("county")
    result = runner.invoke(app, ["generate", "--parcels", "100", "--townships", "2", "--villages", "4",
                                 "--seed", "7", "--out", str(base / "inst")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["solve", str(base / "inst" / "scenario.toml"), "--out", str(base / "plan"),
                                 "--time-limit", "120"])
    assert result.exit_code == 0, result.output
    return base / "plan"


@pytest.fixture(scope="module")
def county_en(county: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("en") / "plan"
    shutil.copytree(county, out)
    write_report(out, lang="en")
    return out


@pytest.fixture(scope="module")
def county_zh(county: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if find_cjk_font() is None:
        pytest.skip("no Noto CJK font for Chinese plot labels: apt-get install fonts-noto-cjk")
    out = tmp_path_factory.mktemp("zh") / "plan"
    shutil.copytree(county, out)
    save = Plotter._save

    def spy(self: Plotter, fig, name: str, *args: object, **kwargs: object) -> object:  # noqa: ANN001
        """Every text a picture draws (titles, legends, axis and tick labels, map labels), as it is saved."""
        from matplotlib.text import Text

        fig.canvas.draw()  # tick labels exist once drawn
        ZH_PLOT_TEXTS[name] = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
        return save(self, fig, name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Plotter, "_save", spy)
        result = runner.invoke(app, ["report", str(out), "--lang", "zh"])
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output
    return out


ZH_PLOT_TEXTS: dict[str, list[str]] = {}
"""The texts of the Chinese report's pictures, by file name (filled by the county_zh fixture)."""


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An income-maximising plan with a herd, a ranger post and binding constraints, written to an OUTDIR."""
    scenario = Scenario.model_validate({
        "parcels": {"path": "parcels.gpkg"}, "villages": {"path": "villages.csv"},
        "catalog": {"path": str(SMALL_CATALOG), "overrides": OVERRIDES},
        "objective": {"maximise": "income"}, "constraints": CONSTRAINTS})
    catalog = load_catalog(SMALL_CATALOG, overrides=OVERRIDES)
    inputs = make_inputs(PARCELS, VILLAGES)
    prepared = Prepared(scenario, catalog, inputs, build_problem(scenario, catalog, inputs), 0.0)
    outcome = solve_prepared(prepared, solver_options(scenario, time_limit=30))
    out = tmp_path_factory.mktemp("rich") / "plan"
    make_plan(outcome).write(out)
    write_report(out, lang="en")
    return out


@pytest.fixture(scope="module")
def fronted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A plan picked from a Pareto front (solve --from-front --report): (plan OUTDIR, front OUTDIR)."""
    base = tmp_path_factory.mktemp("front")
    scenario = write_instance(base / "inst")
    result = runner.invoke(app, ["pareto", str(scenario), "--objectives", "ecosystem_services,income",
                                 "--points", "3", "--out", str(base / "front")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["solve", str(scenario), "--from-front", str(base / "front"), "--pick", "knee",
                                 "--out", str(base / "plan"), "--report", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output
    return base / "plan", base / "front"


# ------------------------------------------------------------------------------------------------------------
# Reading pages back


class _Cells(HTMLParser):
    """Table cells (attributes and text), links and images of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[dict[str, str], str]] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self.section_ids: list[str] = []
        self._cell: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "td":
            self._cell, self._text = values, []
        elif tag == "a":
            self.links.append(values.get("href", ""))
        elif tag == "img":
            self.images.append(values.get("src", ""))
        elif tag == "section":
            self.section_ids.append(values.get("id", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append((self._cell, "".join(self._text).strip()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)


def parse(path: Path) -> _Cells:
    parser = _Cells()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def flat(output: str) -> str:
    """CLI output without the console's line wrapping."""
    return " ".join(output.split())


def shown_number(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text))


def check_cell(attrs: dict[str, str], text: str, expected: float | bool) -> None:
    """data-value equals the CSV value; the text shows it at data-decimals (times data-scale)."""
    if isinstance(expected, (bool, np.bool_)):
        assert attrs["data-value"] == str(bool(expected)).lower(), (attrs, expected)
        return
    assert float(attrs["data-value"]) == pytest.approx(float(expected), rel=1e-12, abs=1e-9), (attrs, expected)
    scale = float(attrs.get("data-scale", 1.0))
    decimals = int(attrs["data-decimals"])
    assert abs(shown_number(text) - float(expected) * scale) <= 0.5 * 10 ** -decimals + 1e-9, (attrs, text, expected)


def read_tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    villages = pd.read_csv(out / "villages.csv", encoding="utf-8-sig", dtype={"village": str, "township": str})
    townships = pd.read_csv(out / "townships.csv", encoding="utf-8-sig", dtype={"township": str})
    return villages.set_index("village"), townships.set_index("township")


def check_numbers(out: Path, cells: list[tuple[dict[str, str], str]]) -> int:
    """Compare every traced cell with villages.csv / townships.csv; return how many were compared."""
    villages, townships = read_tables(out)
    compared = 0
    for attrs, text in cells:
        field = attrs.get("data-field")
        if field and "data-village" in attrs:
            check_cell(attrs, text, villages.loc[attrs["data-village"], field])
        elif field and "data-township" in attrs:
            check_cell(attrs, text, townships.loc[attrs["data-township"], field])
        elif "data-county-field" in attrs:
            check_cell(attrs, text, townships[attrs["data-county-field"]].sum())
        else:
            continue
        compared += 1
    return compared


def township_pages(out: Path, lang: str = "en") -> list[Path]:
    return sorted(report_folder(out, lang).glob("township-*.html"))


# ------------------------------------------------------------------------------------------------------------
# Content


def test_report_files_links_and_twins(county_en: Path) -> None:
    report = county_en / EN
    _, townships = read_tables(county_en)
    pages = township_pages(county_en)
    assert len(pages) == len(townships) == 2
    index = parse(report / "index.html")
    assert sorted(link for link in index.links if link.startswith("township-")) == sorted(p.name for p in pages)
    index_md = (report / "index.md").read_text(encoding="utf-8")
    for page in pages:
        assert f"({page.stem}.md)" in index_md
        twin = page.with_suffix(".md")
        assert twin.is_file()
        parsed = parse(page)
        assert "index.html" in parsed.links
        for required in ("map", "areas", "industries", "villages", "sources", "services", "cost", "posts",
                         "species", "binding", "provenance"):
            assert required in parsed.section_ids, (page.name, required)
        assert len(parsed.images) == 3
        for src in parsed.images:
            assert (report / src).is_file() and (report / src).stat().st_size > 1000
            assert f"]({src})" in twin.read_text(encoding="utf-8")
        # the Markdown twin shows every table cell of the HTML page
        markdown = twin.read_text(encoding="utf-8")
        for _, text in parsed.cells:
            assert markdown_text(text) in markdown, (page.name, text)  # escaped as Markdown (&, <, >, |)
    assert not [p for p in county_en.iterdir() if p.name.startswith(".") and p.name != ".optiland"]  # no temporaries


def test_numbers_equal_the_csvs(county_en: Path) -> None:
    villages, townships = read_tables(county_en)
    index_cells = parse(county_en / EN / "index.html").cells
    assert check_numbers(county_en, index_cells) >= 8 * (len(townships) + 1)
    for page in township_pages(county_en):
        cells = parse(page).cells
        township = page.stem.removeprefix("township-")
        assert check_numbers(county_en, cells) >= 30
        shown = {a["data-village"] for a, _ in cells if a.get("data-field") == "income_per_capita_after"}
        assert shown == set(villages.index[villages["township"] == township])
        fields = {a["data-field"] for a, _ in cells if "data-field" in a}
        assert {"income_per_capita_before", "income_per_capita_after", "floor", "establishment_cost",
                "labour_days", "herd", "ranger_posts", "gain_carbon", "index_carbon"} <= fields


def test_industry_shares_are_recomputed_from_the_plan(county_en: Path) -> None:
    parcels = pyogrio.read_dataframe(county_en / "plan.gpkg", layer="parcels", read_geometry=False)
    villages = pd.read_csv(county_en / "villages.csv", encoding="utf-8-sig", dtype={"village": str})
    run = json.loads((county_en / "run.json").read_text())
    catalog = load_catalog(run["catalog"]["path"])
    for page in township_pages(county_en):
        township = page.stem.removeprefix("township-")
        cells = parse(page).cells
        shares = {a["data-option"]: float(a["data-value"]) for a, _ in cells
                  if a.get("data-derived") == "industry_share"}
        totals = {a["data-option"]: float(a["data-value"]) for a, _ in cells
                  if a.get("data-derived") == "industry_total"}
        assert sum(shares.values()) == pytest.approx(1.0)
        mine = parcels[parcels["township"] == township]
        land = mine.groupby("option")["income"].sum() + mine.groupby("option")["compensation"].sum()
        expected = industry_income(mine, villages[villages["township"] == township], catalog)
        for option, total in totals.items():
            assert total == pytest.approx(expected.loc[option, "total"])
            assert total >= land.get(option, 0.0) - 1e-6
        non_keep = {o: v for o, v in totals.items() if o != catalog.keep_option}
        if non_keep:
            dominant = max(non_keep, key=non_keep.get)
            strings = load_strings("en")
            assert f"{strings['dominant']}{strings['colon']}{catalog.options.loc[dominant, 'name']}" in page.read_text()


def test_chinese_report_uses_catalog_names(county_zh: Path, county_en: Path) -> None:
    run = json.loads((county_zh / "run.json").read_text())
    catalog = load_catalog(run["catalog"]["path"])
    parcels = pyogrio.read_dataframe(county_zh / "plan.gpkg", layer="parcels", read_geometry=False)
    used = [o for o in catalog.options.index if o in set(parcels["option"])]
    zh = load_strings("zh")
    for page in township_pages(county_zh, "zh"):
        html = page.read_text(encoding="utf-8")
        assert '<html lang="zh-CN">' in html and zh["provenance"] in html
        assert check_numbers(county_zh, parse(page).cells) >= 30
        markdown = page.with_suffix(".md").read_text(encoding="utf-8")
        assert zh["villages_income"] in markdown
    index_zh = (county_zh / "report" / "index.html").read_text(encoding="utf-8")
    index_en = (county_en / EN / "index.html").read_text(encoding="utf-8")
    for option in used:
        assert catalog.options.loc[option, "name_zh"] in index_zh
        assert catalog.options.loc[option, "name"] in index_en
    assert zh["county_title"] in index_zh and zh["county_title"] not in index_en


def test_rich_plan_sections(rich: Path) -> None:
    report = rich / EN
    villages, townships = read_tables(rich)
    assert villages["herd"].sum() > 0 and villages["ranger_posts"].sum() > 0
    run = json.loads((rich / "run.json").read_text())
    binding = next(n for n in run["notes"] if n.startswith("binding:"))
    assert "carrying_capacity[1]" in binding  # village V2, in township T2
    t1, t2 = parse(report / "township-T1.html"), parse(report / "township-T2.html")
    families = {name: {a["data-binding"] for a, _ in page.cells if "data-binding" in a}
                for name, page in (("T1", t1), ("T2", t2))}
    assert "carrying_capacity" in families["T2"] and "carrying_capacity" not in families["T1"]
    assert "market" in families["T1"] and "market" in families["T2"]  # a plan-wide limit shows everywhere
    for name, page in (("T1", t1), ("T2", t2)):
        assert check_numbers(rich, page.cells) >= 30
        html = (report / f"township-{name}.html").read_text(encoding="utf-8")
        if townships.loc[name, "herd"] > 0:
            assert load_strings("en")["figures"]["net_income_per_head"] in html
    # species with their adaptation class, from the catalog
    catalog = load_catalog(SMALL_CATALOG, overrides=OVERRIDES)
    parcels = pyogrio.read_dataframe(rich / "plan.gpkg", layer="parcels", read_geometry=False)
    planted = parcels[parcels["variant"].isin(catalog.variants["adaptation_class"].dropna().index
                                              .get_level_values(1))]
    for row in planted.itertuples():
        page = (report / f"township-{row.township}.html").read_text(encoding="utf-8")
        cls = catalog.variants.loc[(row.option, row.variant), "adaptation_class"]
        assert f'data-adaptation="{cls}"' in page
        assert catalog.variants.loc[(row.option, row.variant), "name"] in page


def catalog_figure(catalog, key: str) -> float:  # noqa: ANN001
    """A catalog figure by the dotted key of scenario overrides."""
    parts = key.split(".")
    if parts[0] in ("defaults", "livestock", "rangers"):
        return float(getattr(catalog, parts[0])[parts[1]])
    if parts[0] == "variants":
        return float(catalog.variants.loc[(parts[1], parts[2]), parts[3]])
    table = {"options": catalog.options, "current_uses": catalog.current_uses}[parts[0]]
    return float(table.loc[parts[1], parts[2]])


def test_catalog_figures_equal_the_catalog(rich: Path) -> None:
    catalog = load_catalog(SMALL_CATALOG, overrides=OVERRIDES)
    keys = set()
    for page in [rich / EN / "index.html", *township_pages(rich)]:
        for attrs, text in parse(page).cells:
            if "data-catalog" in attrs and "data-value" in attrs:
                expected = catalog_figure(catalog, attrs["data-catalog"])
                assert float(attrs["data-value"]) == pytest.approx(expected), attrs
                assert shown_number(text) == pytest.approx(expected, rel=1e-3), (attrs, text)
                keys.add(attrs["data-catalog"].split(".")[0])
    # the overridden cattle income and the ranger wage are shown, as the plan keeps a herd and a ranger post
    assert {"defaults", "current_uses", "options", "variants", "livestock", "rangers"} <= keys
    index = parse(rich / EN / "index.html").cells
    assert any(a.get("data-catalog") == "livestock.net_income_per_head" and float(a["data-value"]) == 1800
               for a, _ in index)
    warning = load_strings("en")["catalog_changed"].split(":")[0]
    assert warning not in (rich / EN / "index.html").read_text(encoding="utf-8")


def test_a_changed_catalog_is_flagged(rich: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    shutil.copytree(rich, out)
    run = json.loads((out / "run.json").read_text())
    run["catalog"]["version"] = "0+older"
    (out / "run.json").write_text(json.dumps(run))
    write_report(out, lang="en")
    warning = load_strings("en")["catalog_changed"].format(old="0+older", new=load_catalog(
        SMALL_CATALOG, overrides=OVERRIDES).version)
    for page in [out / EN / "index.html", *township_pages(out)]:
        assert f'<p class="warning" role="note">{warning.split(";")[0]};' in page.read_text(encoding="utf-8")


def test_a_village_at_its_floor_is_listed_as_binding(county_en: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    shutil.copytree(county_en, out)
    villages = pd.read_csv(out / "villages.csv", encoding="utf-8-sig", dtype={"village": str, "township": str})
    villages["at_or_below_floor"] = False
    villages.loc[0, "at_or_below_floor"] = True  # as when the MIP gap leaves a village a few yuan above its floor
    villages.to_csv(out / "villages.csv", index=False, encoding="utf-8-sig")
    write_report(out, lang="en")
    village, township = villages.loc[0, "village"], villages.loc[0, "township"]
    for page in township_pages(out):
        cells = parse(page).cells
        scopes = [text for attrs, text in cells if attrs.get("data-binding") == "income_floor"]
        rows = [i for i, (attrs, _) in enumerate(cells) if attrs.get("data-binding") == "income_floor"]
        if page.stem == f"township-{township}":
            assert len(rows) == 1 and cells[rows[0] - 1][1] == village, scopes
        else:
            assert rows == []


def test_map_draws_red_lines_only_where_they_are(rich: Path) -> None:
    parcels = pyogrio.read_dataframe(rich / "plan.gpkg", layer="parcels", read_geometry=False)
    red_by_township = parcels.groupby("township")["red_line"].any()
    assert red_by_township["T1"] and not red_by_township["T2"]
    for township, has_red in red_by_township.items():
        image = np.asarray(Image.open(rich / EN / "img" / f"township-{township}-map.png").convert("RGB"))
        red = (image[..., 0] > 190) & (image[..., 1] < 60) & (image[..., 2] < 60)
        assert (red.sum() > 50) == bool(has_red), township


def test_front_with_chosen_point(fronted: tuple[Path, Path]) -> None:
    plan, front = fronted
    run = json.loads((plan / "run.json").read_text())
    point = run["front"]["point"]
    table = pd.read_csv(front / "front.csv", encoding="utf-8-sig").set_index("plan_id")
    for page in [plan / EN / "index.html", *township_pages(plan)]:
        parsed = parse(page)
        assert "front" in parsed.section_ids and "img/front.png" in parsed.images
        values = {a["data-front-field"]: float(a["data-value"]) for a, _ in parsed.cells if "data-front-field" in a}
        assert set(values) == set(run["front"]["objectives"])
        for name, value in values.items():
            assert value == pytest.approx(table.loc[point, name])
    assert f"point {point} (knee)" in (plan / EN / "index.html").read_text(encoding="utf-8")
    # the same front given explicitly to a plan not picked from it is shown without a chosen point
    other = plan.parent / "other"
    shutil.copytree(plan, other)
    record = json.loads((other / "run.json").read_text())
    record.pop("front")
    (other / "run.json").write_text(json.dumps(record))
    result = runner.invoke(app, ["report", str(other), "--lang", "en", "--front", str(front)])
    assert result.exit_code == 0, result.output
    index = parse(other / EN / "index.html")
    assert "front" in index.section_ids and not [a for a, _ in index.cells if "data-front-field" in a]


def test_both_languages_have_every_label() -> None:
    def keys(table: dict, prefix: str = "") -> set[str]:
        out = set()
        for key, value in table.items():
            out |= keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return out

    # grades are named by the catalog in English; units, regions, solvers and sources are the Chinese words for
    # what the catalog and run.json hold in English (English pages show those as written)
    zh_only = ("grades.", "units.", "regions.", "solvers.", "sources.")
    en, zh = keys(load_strings("en")), keys(load_strings("zh"))
    assert {k for k in en if not k.startswith(zh_only)} == {k for k in zh if not k.startswith(zh_only)}


def test_binding_notes_are_placed() -> None:
    villages = pd.DataFrame({"village": ["A1", "B1"], "township": ["A", "B"]})
    run = {"notes": ["G*_carbon = 1", "binding: income_floor[1], forest_cover[0], diversity[1,'fruit.orah'], "
                     "market['herbs.paris'], price_step_width['fruit.pomelo',0], labour (5 rows)"]}
    entries = binding_constraints(run, villages, ["A", "B"])
    placed = [(b.family, b.village, b.township, b.rows) for b in entries]
    assert placed == [("income_floor", "B1", "B", 1), ("forest_cover", None, "A", 1), ("diversity", None, "B", 1),
                      ("market", None, None, 1), ("price_step_width", None, None, 1), ("labour", None, None, 5)]
    assert binding_constraints({"notes": ["binding: none"]}, villages, ["A", "B"]) == []


# ------------------------------------------------------------------------------------------------------------
# Errors and atomicity


def test_not_an_outdir_names_the_files(tmp_path: Path, county: Path) -> None:
    with pytest.raises(InputError, match="townships.csv"):
        write_report(tmp_path, lang="en")
    result = runner.invoke(app, ["report", str(tmp_path / "nowhere"), "--lang", "en"])
    assert result.exit_code == 2 and "not a folder written by" in flat(result.output)
    broken = tmp_path / "broken"
    shutil.copytree(county, broken)
    villages = pd.read_csv(broken / "villages.csv", encoding="utf-8-sig")
    villages.drop(columns="income_per_capita_after").to_csv(broken / "villages.csv", index=False)
    with pytest.raises(InputError) as info:
        write_report(broken, lang="en")
    assert "villages.csv" in str(info.value) and "income_per_capita_after" in str(info.value)
    assert not (broken / EN).exists()
    no_villages = tmp_path / "no-villages"
    shutil.copytree(county, no_villages)
    villages.head(0).to_csv(no_villages / "villages.csv", index=False)  # as an instance without villages writes it
    with pytest.raises(InputError, match="no villages"):
        write_report(no_villages, lang="en")
    with pytest.raises(OptilandError, match="unknown report language 'fr'"):
        write_report(county, lang="fr")
    with pytest.raises(InputError, match="front.csv"):
        write_report(county, lang="en", front_dir=tmp_path)


def test_missing_cjk_font_is_a_clear_error(county_en: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "plan"
    shutil.copytree(county_en, out)
    before = (out / EN / "index.html").read_bytes()
    monkeypatch.setattr(report_data, "find_cjk_font", lambda: None)
    result = runner.invoke(app, ["report", str(out), "--lang", "zh"])
    assert result.exit_code == 2
    assert "fonts-noto-cjk" in flat(result.output) and "--lang en" in flat(result.output)
    assert (out / EN / "index.html").read_bytes() == before  # the English report is untouched
    write_report(out, lang="en")  # English needs no CJK font


def test_cjk_font_installed_after_matplotlibs_cache_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib import font_manager

    if not any("cjk" in Path(f).name.lower() for f in font_manager.findSystemFonts()):
        pytest.skip("no Noto CJK font files installed: apt-get install fonts-noto-cjk")
    cached = [f for f in font_manager.fontManager.ttflist if "CJK" not in f.name]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", cached)  # as if the cache predates the install
    assert find_cjk_font() == "Noto Sans CJK SC"


def test_a_failure_leaves_the_previous_report(county_en: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "plan"
    shutil.copytree(county_en, out)
    before = sorted(p.relative_to(out) for p in (out / EN).rglob("*"))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_module.Plotter, "sources_chart", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(out, lang="en")
    assert sorted(p.relative_to(out) for p in (out / EN).rglob("*")) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".optiland"]


# ------------------------------------------------------------------------------------------------------------
# In a real browser


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (never Playwright's own browser download)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]' to run the browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def artifact_folder() -> Path | None:
    """Where screenshots are copied for a person to look at: $OPTILAND_TEST_ARTIFACTS, or test-artifacts/ if it
    exists at the repository root."""
    if os.environ.get("OPTILAND_TEST_ARTIFACTS"):
        return Path(os.environ["OPTILAND_TEST_ARTIFACTS"])
    folder = ROOT / "test-artifacts"
    return folder if folder.is_dir() else None


def open_page(browser, path: Path, width: int = 1100):  # noqa: ANN001, ANN201 (playwright types are optional)
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors


BROKEN_IMAGES = "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
TRACED_CELLS = """Array.from(document.querySelectorAll('td[data-field], td[data-county-field]')).map(td => {
    const attrs = {}; for (const a of td.attributes) attrs[a.name] = a.value;
    return [attrs, td.innerText]; })"""


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pages_in_chromium(browser, lang: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:  # noqa: ANN001
    out = request.getfixturevalue(f"county_{lang}")
    report = report_folder(out, lang)
    pages = [report / "index.html", *township_pages(out, lang)]
    for path in pages:
        page, errors = open_page(browser, path)
        assert page.evaluate("document.images.length") >= 1
        assert page.evaluate(BROKEN_IMAGES) == [], path.name
        cells = page.evaluate(TRACED_CELLS)
        assert check_numbers(out, [(attrs, text) for attrs, text in cells]) == len(cells) > 8
        assert errors == [], (path.name, errors)
        page.close()
    # a township page on a phone: nothing wider than the screen (wide tables scroll inside their own box)
    township = township_pages(out, lang)[0]
    page, errors = open_page(browser, township, width=390)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot = tmp_path / f"{township.stem}-{lang}-phone.png"
    page.screenshot(path=str(shot), full_page=False)
    page.close()
    page, errors = open_page(browser, township)
    shot_full = tmp_path / f"{township.stem}-{lang}.png"
    page.screenshot(path=str(shot_full), full_page=True)
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('nav.toc')).display") == "none"
    page.close()
    assert errors == []
    for image in (shot, shot_full):
        with Image.open(image) as picture:
            assert picture.size[0] >= 390 and picture.size[1] > 500
    folder = artifact_folder()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for image in (shot, shot_full):
            shutil.copy(image, folder / image.name)


def test_front_page_in_chromium(browser, fronted: tuple[Path, Path]) -> None:  # noqa: ANN001
    plan, _ = fronted
    page, errors = open_page(browser, plan / EN / "index.html")
    assert page.evaluate(BROKEN_IMAGES) == []
    assert page.locator("section#front img").evaluate("i => i.naturalWidth") > 0
    page.close()
    assert errors == []


# ------------------------------------------------------------------------------------------------------------
# A township plan a county bureau prints (issue 21, item 7)

ALLOWED_LATIN = {
    "optiland": "the program's name, in the line saying what wrote the page",
    "HiGHS": "the solver's name, as its authors spell it",
    "GB/T": "Chinese national standards are cited by their code (GB/T 21010—2017) in Chinese documents too",
    "A4": "the paper size, written so in Chinese",
    "run.json": "the results file that keeps the solver's notes, named so that a reader can find it",
}


def latin_only_names(catalog) -> list[str]:  # noqa: ANN001
    """Species the catalog names in Chinese by their Latin name (it knows no Chinese one: karst-southwest's
    Vernicia tonkinensis), which a Chinese page shows as Chinese botanical texts do, in Latin."""
    variants = catalog.variants
    same = variants["name_zh"].astype(str) == variants["scientific_name"].astype(str)
    return [str(name) for name in variants.loc[same, "scientific_name"] if LATIN_NAME.fullmatch(str(name))]
"""Latin-script words a Chinese page may show besides what the input names (villages, townships, parcels), the
paths of the run's files and checksums (shown as they are, so that a reader can find and verify them) and Latin
scientific names (``<td lang="la">``, printed in Latin in Chinese plans too)."""

LATIN_NAME = re.compile(r"[A-Z][a-z]+(?: (?:spp?\.|[a-z]+(?:-[a-z]+)?))?(?: (?:var\.|subsp\.|f\.) [a-z]+)?"
                        r"(?: '[^']+')?(?:、[A-Z][a-z]+(?: (?:spp?\.|[a-z]+(?:-[a-z]+)?))?"
                        r"(?: (?:var\.|subsp\.|f\.) [a-z]+)?(?: '[^']+')?)*")


class _Visible(HTMLParser):
    """What a reader sees of an HTML page (text, alt and title attributes; not style or script), and the text of
    the cells marked as Latin scientific names."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.latin: list[str] = []
        self._hidden = 0
        self._latin: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in ("style", "script", "title"):
            self._hidden += 1
        self.text += [values[k] for k in ("alt", "title", "aria-label") if values.get(k)]
        if tag == "td" and values.get("lang") == "la":
            self._latin = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._hidden -= 1
        if tag == "td" and self._latin is not None:
            self.latin.append("".join(self._latin).strip())
            self._latin = None

    def handle_data(self, data: str) -> None:
        if self._latin is not None:
            self._latin.append(data)
        elif not self._hidden:
            self.text.append(data)


def _allowed_strings(out: Path) -> list[str]:
    """The input's names, the run's paths and checksums: shown as they are (longest first, for removal)."""
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    villages, townships = read_tables(out)
    parcels = pyogrio.read_dataframe(out / "plan.gpkg", layer="parcels", read_geometry=False, columns=["parcel_id"])
    catalog = load_catalog(run["catalog"]["path"])
    strings = [*map(str, villages.index), *map(str, townships.index), *parcels["parcel_id"].astype(str),
               str(out.resolve()), str(run.get("scenario_path")), str(catalog.path), catalog.digest[:12],
               *[str(h)[:16] for h in (run.get("input_hashes") or {}).values()], *ALLOWED_LATIN,
               *latin_only_names(catalog)]
    return sorted({s for s in strings if s}, key=len, reverse=True)


def _latin_words(texts: list[str], allowed: list[str]) -> list[str]:
    found = []
    for value in texts:
        for name in allowed:
            value = value.replace(name, " ")
        found += re.findall(r"[A-Za-z][A-Za-z'’.-]*", value)
    return found


def test_zh_report_has_no_english(county_zh: Path) -> None:
    """Every page, its Markdown twin and every picture of the Chinese report: no Latin-script word outside the
    allow-list (ALLOWED_LATIN, the input's names, paths, checksums and Latin scientific names)."""
    allowed = _allowed_strings(county_zh)
    report = report_folder(county_zh, "zh")
    pages = sorted(report.glob("*.html"))
    latin_cells = []
    for page in pages:
        visible = _Visible()
        visible.feed(page.read_text(encoding="utf-8"))
        assert _latin_words(visible.text, allowed) == [], page.name
        latin_cells += visible.latin
        # the Markdown twin: its text without link and image targets (file names)
        markdown = re.sub(r"\]\([^)]*\)", "]", page.with_suffix(".md").read_text(encoding="utf-8"))
        markdown = markdown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        for name in visible.latin:
            markdown = markdown.replace(name, " ")
        assert _latin_words([markdown], allowed) == [], page.with_suffix(".md").name
    assert latin_cells, "the instance plants species, whose Latin names the species table shows"
    for name in latin_cells:
        assert LATIN_NAME.fullmatch(name), name
    pictures = sorted(p.name for p in (report / "img").glob("*.png"))
    assert sorted(ZH_PLOT_TEXTS) == pictures
    for name, texts in ZH_PLOT_TEXTS.items():
        assert texts and _latin_words(texts, allowed) == [], (name, texts)
    run = json.loads((county_zh / "run.json").read_text(encoding="utf-8"))
    index = (report / "index.html").read_text(encoding="utf-8")
    assert load_strings("zh")["gap_within"].split("{")[0] in index  # the gap in words: 与最优解相差不超过 ...%
    assert load_strings("zh")["statuses"][run["status"]] in index


@pytest.mark.parametrize("region", ["karst-southwest", "sandy-land-north"])
def test_every_catalog_text_has_chinese_words(region: str) -> None:
    """What a Chinese page takes from a shipped catalog (names, units, region, sources) reads in Chinese: a
    figure's source becomes a Chinese note of what it rests on, every service's unit is translated."""
    from optiland.views.report_data import Labels
    from optiland.views.report_text import cite

    catalog = load_catalog(None, region=region)
    zh = load_strings("zh")
    labels = Labels(catalog, zh, "zh")
    shown = [labels.region(), *(labels.option(o) for o in catalog.options.index),
             *(labels.variant(o, v) for o, v in catalog.variants.index),
             *(labels.current_use(c) for c in catalog.current_uses.index),
             *(labels.service(s) for s in catalog.service_names),
             *(labels.service_unit(s) for s in catalog.service_names)]
    sources = [value for table in (catalog.options, catalog.variants, catalog.current_uses)
               for column in table.columns if "source" in column for value in table[column].dropna()]
    sources += [v for group in (catalog.defaults, catalog.livestock, catalog.rangers) for k, v in group.items()
                if str(k).endswith("source") and isinstance(v, str)]
    assert len(sources) > 20
    cited = [cite(source, zh) for source in sources]
    assert _latin_words(shown + cited, [*ALLOWED_LATIN, *latin_only_names(catalog)]) == []
    # a source naming a seed and its stage cites the seed's title and the stage, once
    assert cite("assumption: x (seed 001 stage 2, seed 001 stage 3; COEFFICIENTS.md)", zh) == \
        "假设；参见《环江县科技扶贫二十五年》第二阶段、第三阶段、《系数说明》"


def test_no_negative_zero(county: Path, tmp_path: Path) -> None:
    """A value that rounds to zero is shown without a sign, in tables and figures, in both languages."""
    from optiland.views.report_page import format_figure, format_general, format_number, number

    assert [format_number(-0.0001, d) for d in (0, 1, 2)] == ["0", "0.0", "0.00"]
    assert number(-0.0001, 1, scale=100.0, suffix="%").text == "0.0%"
    assert format_number(-0.6, 0) == "-1" and format_figure(-0.0) == "0" and format_general(-0.0) == "0"
    assert format_general(-1234567.8) == "-1,234,568" and format_general(6.2e-5) == "0.000062"
    out = tmp_path / "plan"
    shutil.copytree(county, out)
    villages = pd.read_csv(out / "villages.csv", encoding="utf-8-sig", dtype={"village": str, "township": str})
    villages["income_per_capita_after"] = villages["income_per_capita_before"] - 0.0001  # a change of -0.0001
    villages.to_csv(out / "villages.csv", index=False, encoding="utf-8-sig")
    townships = pd.read_csv(out / "townships.csv", encoding="utf-8-sig", dtype={"township": str})
    for column in [c for c in townships.columns if c.startswith(("gain_", "index_"))]:
        townships[column] = -0.0001
    townships.to_csv(out / "townships.csv", index=False, encoding="utf-8-sig")
    for lang in ["zh"] if find_cjk_font() is not None else ["en"]:  # the figures' format is the languages' own
        write_report(out, lang=lang)
        for page in report_folder(out, lang).glob("*.*"):
            if page.suffix not in (".html", ".md"):
                continue
            text = page.read_text(encoding="utf-8")
            signed = re.findall(r"(?<![\w-])[-−][\d,]*\.?\d+%?", text)
            assert [s for s in signed if not re.search(r"[1-9]", s)] == [], page.name
        cells = [c for page in township_pages(out, lang) for c in parse(page).cells]
        changes = [text for attrs, text in cells if attrs.get("data-derived") == "income_change"]
        assert changes and set(changes) == {"0"}


def test_english_report_beside_the_chinese_one(county_zh: Path, tmp_path: Path) -> None:
    """`report --lang en` writes report-en/ and leaves report/ (Chinese) as it was, and the other way round."""
    out = tmp_path / "plan"
    shutil.copytree(county_zh, out)
    zh = {p.relative_to(out): p.read_bytes() for p in (out / "report").rglob("*") if p.is_file()}
    result = runner.invoke(app, ["report", str(out), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert str(out / "report-en" / "index.html") in flat(result.output).replace(" ", "") or \
        "report-en" in flat(result.output)
    assert {p.relative_to(out): p.read_bytes() for p in (out / "report").rglob("*") if p.is_file()} == zh
    assert '<html lang="en">' in (out / "report-en" / "index.html").read_text(encoding="utf-8")
    en = {p.relative_to(out): p.stat().st_mtime_ns for p in (out / "report-en").rglob("*") if p.is_file()}
    assert runner.invoke(app, ["report", str(out), "--lang", "zh"]).exit_code == 0
    assert {p.relative_to(out): p.stat().st_mtime_ns for p in (out / "report-en").rglob("*") if p.is_file()} == en


def test_pictures_print_at_300_dpi(county_zh: Path) -> None:
    """Every map and chart is a 300 dpi PNG, shown on the page at its printed size (96 CSS px per inch)."""
    report = report_folder(county_zh, "zh")
    shown = {}
    for page in report.glob("*.html"):
        for match in re.finditer(r'<img src="(?P<src>[^"]+)" alt="[^"]*" width="(?P<w>\d+)" height="(?P<h>\d+)"',
                                 page.read_text(encoding="utf-8")):
            shown[match["src"]] = (int(match["w"]), int(match["h"]))
    assert any("map" in src for src in shown)
    for src, (width, height) in shown.items():
        with Image.open(report / src) as picture:
            dpi = picture.info["dpi"]
            assert dpi[0] == pytest.approx(300, abs=0.5) and dpi[1] == pytest.approx(300, abs=0.5), src
            assert abs(picture.size[0] - width * 300 / 96) <= 3 and abs(picture.size[1] - height * 300 / 96) <= 3
            if "map" in src:
                assert picture.size[0] >= 4 * 300  # at least 4 inches wide on paper, at 300 dpi


def _leading_by_hand(parcels: pd.DataFrame, villages: pd.DataFrame, catalog) -> list[str]:  # noqa: ANN001
    """Dominant and secondary industries derived again from plan.gpkg and villages.csv: each option's land income
    and compensation, the livestock options' share (by area) of the cattle income and the ranger-area options' of
    the ranger wages; the kept current use left out; largest first."""
    total: dict[str, float] = {}
    area = parcels.groupby("option")["area_mu"].sum()
    for option, group in parcels.groupby("option"):
        total[option] = float(group["income"].sum() + group["compensation"].sum())
    for flag, column in (("livestock", "income_cattle"), ("ranger_area", "income_wages")):
        members = [o for o in area.index if bool(catalog.options.loc[o, flag])]
        for option in members:
            total[option] += float(villages[column].sum()) * area[option] / area[members].sum()
    ranked = sorted((o for o in total if o != catalog.keep_option and total[o] > 0), key=lambda o: -total[o])
    return ranked[:2]


def test_dominant_and_secondary_industries_per_township_and_village(county_en: Path) -> None:
    parcels = pyogrio.read_dataframe(county_en / "plan.gpkg", layer="parcels", read_geometry=False)
    villages = pd.read_csv(county_en / "villages.csv", encoding="utf-8-sig", dtype={"village": str, "township": str})
    catalog = load_catalog(json.loads((county_en / "run.json").read_text())["catalog"]["path"])
    shown: dict[tuple[str, str], str] = {}
    for page in [county_en / EN / "index.html", *township_pages(county_en)]:
        for attrs, _ in parse(page).cells:
            if attrs.get("data-derived") in ("dominant", "secondary"):
                where = attrs.get("data-village") or attrs["data-township"]
                shown[(where, attrs["data-derived"])] = attrs["data-option"]
    areas = [("data-village", v, parcels[parcels["village"] == v], villages[villages["village"] == v])
             for v in villages["village"]]
    areas += [("data-township", t, parcels[parcels["township"] == t], villages[villages["township"] == t])
              for t in sorted(set(villages["township"]))]
    assert len(shown) == 2 * len(areas)
    for _, name, mine, theirs in areas:
        expected = _leading_by_hand(mine, theirs, catalog) + ["", ""]
        assert (shown[(name, "dominant")], shown[(name, "secondary")]) == (expected[0], expected[1]), name


def test_plan_gpkg_opens_styled_in_qgis(county: Path) -> None:
    """plan.gpkg holds parcels with Chinese names, villages, townships and red lines, and a default QGIS style per
    layer in layer_styles: parcels categorized by option in the report's colours, labelled in Chinese."""
    import sqlite3
    import xml.etree.ElementTree as ET

    from optiland.check import check_outdir
    from optiland.views.report_data import Labels

    gpkg = county / "plan.gpkg"
    layers = dict(pyogrio.list_layers(gpkg))
    assert layers == {"parcels": "Polygon", "villages": "MultiPolygon", "townships": "MultiPolygon",
                      "red_lines": "MultiPolygon", "layer_styles": None}
    catalog = load_catalog(json.loads((county / "run.json").read_text())["catalog"]["path"])
    parcels = pyogrio.read_dataframe(gpkg, layer="parcels")
    for row in parcels.itertuples():
        assert row.option_name_zh == catalog.options.loc[row.option, "name_zh"]
        assert row.current_use_name_zh == catalog.current_uses.loc[row.current_use, "name_zh"]
        if (row.option, row.variant) in catalog.variants.index:
            assert row.variant_name_zh == catalog.variants.loc[(row.option, row.variant), "name_zh"]
    villages, townships = read_tables(county)
    village_layer = pyogrio.read_dataframe(gpkg, layer="villages").set_index("village")
    assert sorted(village_layer.index) == sorted(villages.index)
    for column in ("income_per_capita_before", "income_per_capita_after", "population"):
        assert np.allclose(village_layer.loc[villages.index, column], villages[column])
    mu = parcels.groupby("village")["area_mu"].sum()  # the merged outline covers its parcels (1 mu = 666.67 m2)
    assert np.allclose(village_layer.loc[mu.index].geometry.area / (10000 / 15), mu, rtol=1e-3)
    villages_csv = pd.read_csv(county / "villages.csv", encoding="utf-8-sig", dtype={"village": str})
    for village, row in village_layer.iterrows():
        expected = [catalog.options.loc[o, "name_zh"] for o in _leading_by_hand(
            parcels[parcels["village"] == village], villages_csv[villages_csv["village"] == village], catalog)]
        expected += [load_strings("zh")["none"]] * 2
        assert (row["dominant_industry"], row["secondary_industry"]) == (expected[0], expected[1]), village
    township_layer = pyogrio.read_dataframe(gpkg, layer="townships").set_index("township")
    assert sorted(township_layer.index) == sorted(townships.index)
    red = pyogrio.read_dataframe(gpkg, layer="red_lines")
    assert red["area_mu"].sum() == pytest.approx(parcels.loc[parcels["red_line"], "area_mu"].sum())
    assert parcels["red_line"].any()
    with sqlite3.connect(gpkg) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(layer_styles)")]
        styles = connection.execute("SELECT f_table_name, f_geometry_column, styleQML, styleSLD, useAsDefault "
                                    "FROM layer_styles").fetchall()
        geometry = dict(connection.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
    connection.close()
    assert columns == ["id", "f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", "styleName",
                       "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui", "update_time"]
    assert sorted(s[0] for s in styles) == ["parcels", "red_lines", "townships", "villages"]
    plotter = Plotter(county, ["DejaVu Sans"], Labels(catalog, load_strings("zh"), "zh"), catalog)
    for table, column, qml, sld, default in styles:
        assert column == geometry[table] and default == 1
        root = ET.fromstring(qml.split("\n", 1)[1])  # after the DOCTYPE line
        ET.fromstring(sld.split("\n", 1)[1])
        renderer = root.find("renderer-v2")
        if table != "parcels":
            assert renderer.get("type") == "singleSymbol"
            continue
        assert (renderer.get("type"), renderer.get("attr")) == ("categorizedSymbol", "option")
        symbols = {s.get("name"): s for s in renderer.find("symbols")}
        categories = renderer.find("categories")
        assert [c.get("value") for c in categories] == list(catalog.options.index)
        for category in categories:
            option = category.get("value")
            assert category.get("label") == catalog.options.loc[option, "name_zh"]
            fill = symbols[category.get("symbol")].find("layer/Option/Option[@name='color']").get("value")
            colour = plotter.colours[option].lstrip("#")
            assert fill == ",".join(str(int(colour[i:i + 2], 16)) for i in (0, 2, 4)) + ",255", option
        aliases = {a.get("field"): a.get("name") for a in root.find("aliases")}
        assert aliases["option_name_zh"] == "规划用途"
    assert check_outdir(county) == []  # the added layers and columns leave the plan as the checker reads it


A4_POINTS = (595.28, 841.89)
"""ISO A4 (210 x 297 mm) in PDF points."""


def pdf_page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    """The MediaBox of every page of a PDF as chromium writes it (page dictionaries are plain objects there)."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in boxes]


A4_TEXT_WIDTH = 642
"""CSS px between the side margins of an A4 page (210 - 2 x 20 mm = 170 mm at 96 px per inch)."""


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_tables_fit_between_the_margins(browser, lang: str, request: pytest.FixtureRequest) -> None:  # noqa: ANN001
    """In print, no table is wider than the text on A4 (a wider one is cut off at the margin on paper)."""
    out = request.getfixturevalue(f"county_{lang}")
    report = report_folder(out, lang)
    for path in (report / "index.html", *township_pages(out, lang)):
        page = browser.new_page(viewport={"width": A4_TEXT_WIDTH, "height": 900})
        page.emulate_media(media="print")
        page.goto(path.as_uri(), wait_until="load")
        wide = page.evaluate(f"""Array.from(document.querySelectorAll('table, img'))
            .filter(e => e.getBoundingClientRect().right > {A4_TEXT_WIDTH + 1}).map(e => e.id || e.src)""")
        page.close()
        assert wide == [], (path.name, wide)


def test_prints_on_a4(browser, county_zh: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """Printed by chromium with the page's own CSS page size (no size given by the printer): A4 portrait, every
    page."""
    report = report_folder(county_zh, "zh")
    for path in (report / "index.html", township_pages(county_zh, "zh")[0]):
        page, errors = open_page(browser, path)
        pdf = page.pdf(prefer_css_page_size=True)  # without the CSS @page size chromium prints US Letter
        margins = page.evaluate("""() => { for (const sheet of document.styleSheets) for (const rule of sheet.cssRules)
            if (rule.type === CSSRule.PAGE_RULE) return rule.style.margin; return null; }""")
        page.close()
        assert errors == []
        sizes = pdf_page_sizes(pdf)
        assert len(sizes) >= 2, path.name
        for width, height in sizes:
            assert width == pytest.approx(A4_POINTS[0], abs=1.0) and height == pytest.approx(A4_POINTS[1], abs=1.0)
        assert margins and all(part.endswith("mm") and float(part[:-2]) >= 15 for part in margins.split()), margins
        (tmp_path / f"{path.stem}.pdf").write_bytes(pdf)
    folder = artifact_folder()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for pdf in tmp_path.glob("*.pdf"):
            shutil.copy(pdf, folder / pdf.name)


def test_what_would_it_take_is_shown(county: Path, county_en: Path, tmp_path: Path) -> None:
    """`optiland whatif` run on the folder: the county page lists what would bring each left-out option into the
    plan and what each binding target is worth, figures as in OUTDIR/whatif/, in Chinese words."""
    assert "whatif" not in parse(county_en / EN / "index.html").section_ids  # no study, no section
    out = tmp_path / "plan"
    shutil.copytree(county, out)
    result = runner.invoke(app, ["whatif", str(out)])
    assert result.exit_code == 0, result.output
    options = pd.read_csv(out / "whatif" / "options.csv", encoding="utf-8-sig").set_index("lever")
    targets = pd.read_csv(out / "whatif" / "targets.csv", encoding="utf-8-sig").set_index("row")
    langs = ["en"] + (["zh"] if find_cjk_font() is not None else [])
    for lang in langs:
        write_report(out, lang=lang)
        page = report_folder(out, lang) / "index.html"
        parsed = parse(page)
        assert {"whatif", "whatif-targets"} <= set(parsed.section_ids) or targets.empty
        shown = 0
        for attrs, text in parsed.cells:
            column = attrs.get("data-whatif")
            if column is None:
                continue
            table = options.loc[attrs["data-lever"]] if "data-lever" in attrs else targets.loc[attrs["data-row"]]
            expected = float(table[column])
            if math.isinf(expected):
                assert text == load_strings(lang)["whatif_never" if expected > 0 else "whatif_today"]
            else:
                assert float(attrs["data-value"]) == pytest.approx(expected)
                assert shown_number(text) == pytest.approx(expected, rel=1e-2, abs=0.5)
            shown += 1
        left_out = options[options["status"] != "in the plan"]
        assert shown > 0 and shown >= len(targets) + len(left_out[left_out["lp_subsidy"].notna()])
        if lang == "zh":
            visible = _Visible()
            visible.feed(page.read_text(encoding="utf-8"))
            assert _latin_words(visible.text, _allowed_strings(out)) == []


def test_report_to_pdf(county_zh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`report --pdf`: every page also as an A4 PDF, printed by Debian's chromium; without a browser, an error
    naming the package, and the report as it was. About 8 s: one chromium process per page (three pages)."""
    out = tmp_path / "plan"
    shutil.copytree(county_zh, out)
    if report_module.find_browser() is None:
        pytest.skip("no chromium to print PDFs: apt-get install chromium")
    result = runner.invoke(app, ["report", str(out), "--pdf"])
    assert result.exit_code == 0, result.output
    report = report_folder(out, "zh")
    pages = sorted(p.stem for p in report.glob("*.html"))
    assert sorted(p.stem for p in report.glob("*.pdf")) == pages
    for pdf in report.glob("*.pdf"):
        sizes = pdf_page_sizes(pdf.read_bytes())
        assert sizes and all(w == pytest.approx(A4_POINTS[0], abs=1.0) and h == pytest.approx(A4_POINTS[1], abs=1.0)
                             for w, h in sizes), (pdf.name, sizes)
    before = sorted(p.relative_to(out) for p in report.rglob("*"))
    monkeypatch.setattr(report_module, "find_browser", lambda: None)
    with pytest.raises(OptilandError, match="apt-get install chromium"):
        write_report(out, lang="zh", pdf=True)
    assert sorted(p.relative_to(out) for p in report.rglob("*")) == before
