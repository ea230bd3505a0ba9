"""plan.gpkg as a planner opens it in QGIS: Chinese names on the parcels, layers of villages, townships and red lines,
and a default style per layer stored in the GeoPackage.

``style_plan(folder, catalog)`` runs inside a solve's atomic write (``Plan.extras``, after plan.gpkg, villages.csv
and townships.csv are written) and adds to plan.gpkg:

- to layer ``parcels``: ``option_name_zh``, ``variant_name_zh`` and ``current_use_name_zh`` (the catalog's
  ``name_zh``, its ``name`` where it has none), so the attribute table reads in Chinese;
- layer ``villages`` and layer ``townships``: the parcels dissolved by village and by township, with villages.csv's
  and townships.csv's figures and the dominant and secondary industries (``report_data.leading_industries``, the
  seeds' definition as the report states it);
- layer ``red_lines``: the ecological protection red-line parcels dissolved per township;
- table ``layer_styles``, the QGIS convention for styles kept in a GeoPackage (the columns QGIS's OGR provider
  creates when "Save style > in database" is chosen: f_table_catalog, f_table_schema, f_table_name,
  f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner, ui, update_time), one default
  style per layer: parcels categorized by ``option`` in the report's colours with the options' Chinese names as
  legend labels, villages and townships outlined and labelled, red lines outlined in the report's red.

QGIS applies a layer's default style when it loads the layer; other GIS read the SLD column or ignore the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd

from optiland.io.catalog import Catalog
from optiland.io.tables import read_results_csv
from optiland.views.report_data import (
    KEEP_COLOUR,
    OPTION_COLOURS,
    RED_LINE_COLOUR,
    leading_by,
    load_strings,
)

PLAN = "plan.gpkg"
STYLE_NAME = "optiland"
OUTLINE = "#333333"
FIELD_ALIASES = {
    "parcels": {"parcel_id": "地块编号", "village": "行政村", "township": "乡镇", "area_mu": "面积（亩）",
                "current_use_name_zh": "现状用途", "option_name_zh": "规划用途", "variant_name_zh": "品种",
                "red_line": "生态保护红线", "basic_farmland": "永久基本农田", "income": "土地收入（元/年）",
                "compensation": "补偿（元/年）", "establishment_cost": "建设投入（元）"},
    "villages": {"village": "行政村", "township": "乡镇", "population": "人口", "households": "户数",
                 "floor": "收入底线（元/人）", "income_per_capita_before": "规划前人均收入（元）",
                 "income_per_capita_after": "规划后人均收入（元）", "income_change": "人均收入变化（元）",
                 "dominant_industry": "主导产业", "secondary_industry": "次要产业",
                 "households_reached": "带动农户（估计）"},
    "townships": {"township": "乡镇", "area_mu": "面积（亩）", "population": "人口", "herd": "牛存栏（头）",
                  "dominant_industry": "主导产业", "secondary_industry": "次要产业",
                  "households_reached": "带动农户（估计）"},
    "red_lines": {"township": "乡镇", "area_mu": "红线面积（亩）"},
}
"""Chinese column titles QGIS shows in the attribute table (QML ``aliases``)."""


def option_colours(catalog: Catalog) -> dict[str, str]:
    """Each option's colour, as the report's maps draw it (report_plots.Plotter): catalog order, the kept current
    use grey."""
    options = [o for o in catalog.options.index if o != catalog.keep_option]
    colours = {o: OPTION_COLOURS[i % len(OPTION_COLOURS)] for i, o in enumerate(options)}
    colours[catalog.keep_option] = KEEP_COLOUR
    return colours


def _zh(record: pd.Series | dict, fallback: str) -> str:
    for key in ("name_zh", "name"):
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return fallback


def _names(catalog: Catalog) -> tuple[dict[str, str], dict[tuple[str, str], str], dict[str, str]]:
    options = {o: _zh(catalog.options.loc[o], o) for o in catalog.options.index}
    variants = {(o, v): _zh(catalog.variants.loc[(o, v)], v) for o, v in catalog.variants.index}
    uses = {str(c): _zh(catalog.current_uses.loc[c], str(c)) for c in catalog.current_uses.index}
    return options, variants, uses


# ------------------------------------------------------------------------------------------------------------
# Styles (QML for QGIS, SLD for the rest)


def _rgba(colour: str, alpha: int = 255) -> str:
    colour = colour.lstrip("#")
    return ",".join(str(int(colour[i:i + 2], 16)) for i in (0, 2, 4)) + f",{alpha}"


def _fill_symbol(name: str, fill: str | None, outline: str, width_mm: float) -> str:
    """A QGIS fill symbol (one SimpleFill layer), written both ways QGIS 3 reads (``Option`` maps since 3.26,
    ``prop`` before)."""
    props = {"color": _rgba(fill) if fill else "0,0,0,0", "style": "solid" if fill else "no",
             "outline_color": _rgba(outline), "outline_style": "solid", "outline_width": f"{width_mm:g}",
             "outline_width_unit": "MM", "joinstyle": "bevel"}
    options = "".join(f'<Option name="{k}" type="QString" value="{v}"/>' for k, v in props.items())
    legacy = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (f'<symbol name="{name}" type="fill" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" locked="0" pass="0"><Option type="Map">{options}</Option>'
            f"{legacy}</layer></symbol>")


def _aliases(layer: str, columns: Iterable[str]) -> str:
    names = FIELD_ALIASES.get(layer, {})
    items = "".join(f'<alias field={quoteattr(c)} index="{i}" name={quoteattr(names[c])}/>'
                    for i, c in enumerate(columns) if c in names)
    return f"<aliases>{items}</aliases>"


def _labeling(field: str, size: float) -> str:
    """Simple labels by ``field`` with a white buffer (QGIS ``labeling type="simple"``)."""
    return ('<labeling type="simple"><settings calloutType="simple">'
            f'<text-style fieldName="{field}" isExpression="0" fontSize="{size:g}" fontSizeUnit="Point" '
            'textColor="0,0,0,255" fontFamily="Noto Sans CJK SC" namedStyle="Regular" textOpacity="1">'
            '<text-buffer bufferDraw="1" bufferSize="1" bufferSizeUnits="MM" bufferColor="255,255,255,255" '
            'bufferOpacity="1"/></text-style>'
            '<placement placement="1" centroidInside="1" centroidWhole="0"/>'
            '<rendering obstacle="1" scaleVisibility="0"/></settings></labeling>')


def _qml(renderer: str, layer: str, columns: Iterable[str], labels: str = "") -> str:
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="3.28.0" styleCategories="Symbology|Labeling|Fields" '
            f'labelsEnabled="{1 if labels else 0}">{renderer}{labels}{_aliases(layer, columns)}</qgis>\n')


def parcels_qml(catalog: Catalog, columns: Iterable[str]) -> str:
    """Parcels categorized by ``option``, one category per catalog option in the report's colour, labelled with
    the option's Chinese name."""
    colours = option_colours(catalog)
    names = _names(catalog)[0]
    categories, symbols = [], []
    for i, option in enumerate(catalog.options.index):
        categories.append(f'<category value={quoteattr(option)} symbol="{i}" label={quoteattr(names[option])} '
                          'render="true"/>')
        symbols.append(_fill_symbol(str(i), colours[option], "#ffffff", 0.1))
    renderer = ('<renderer-v2 type="categorizedSymbol" attr="option" symbollevels="0" enableorderby="0" '
                f'forceraster="0"><categories>{"".join(categories)}</categories>'
                f'<symbols>{"".join(symbols)}</symbols></renderer-v2>')
    return _qml(renderer, "parcels", columns)


def outline_qml(layer: str, colour: str, width_mm: float, columns: Iterable[str], label: str | None) -> str:
    """Areas drawn as outlines only (villages, townships, red lines), labelled by ``label`` if given."""
    renderer = ('<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0"><symbols>'
                f'{_fill_symbol("0", None, colour, width_mm)}</symbols></renderer-v2>')
    return _qml(renderer, layer, columns, _labeling(label, 9 if layer == "villages" else 11) if label else "")


def _sld(layer: str, rules: list[tuple[str | None, str, str | None, str, float]]) -> str:
    """An SLD 1.1 style: rules of (option value or None, title, fill or None, stroke, stroke width in px)."""
    body = []
    for value, title, fill, stroke, width in rules:
        where = ("<ogc:Filter><ogc:PropertyIsEqualTo><ogc:PropertyName>option</ogc:PropertyName>"
                 f"<ogc:Literal>{escape(value)}</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>"
                 if value is not None else "")
        paint = (f'<se:Fill><se:SvgParameter name="fill">{fill}</se:SvgParameter></se:Fill>' if fill else "")
        body.append(f"<se:Rule><se:Name>{escape(title)}</se:Name>{where}<se:PolygonSymbolizer>{paint}"
                    f'<se:Stroke><se:SvgParameter name="stroke">{stroke}</se:SvgParameter>'
                    f'<se:SvgParameter name="stroke-width">{width:g}</se:SvgParameter></se:Stroke>'
                    "</se:PolygonSymbolizer></se:Rule>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<StyledLayerDescriptor version="1.1.0" '
            'xmlns="http://www.opengis.net/sld" xmlns:se="http://www.opengis.net/se" '
            'xmlns:ogc="http://www.opengis.net/ogc">'
            f"<NamedLayer><se:Name>{escape(layer)}</se:Name><UserStyle><se:Name>{STYLE_NAME}</se:Name>"
            f"<se:FeatureTypeStyle>{''.join(body)}</se:FeatureTypeStyle></UserStyle></NamedLayer>"
            "</StyledLayerDescriptor>\n")


# ------------------------------------------------------------------------------------------------------------
# Layers


def _leading_names(leading: dict[str, list[str]], area: str, names: dict[str, str]) -> tuple[str, str]:
    ranked = leading.get(area, [])
    none = load_strings("zh")["none"]
    return (names.get(ranked[0], ranked[0]) if ranked else none,
            names.get(ranked[1], ranked[1]) if len(ranked) > 1 else none)


def _dissolved(parcels: gpd.GeoDataFrame, by: str) -> gpd.GeoDataFrame:
    """Parcels merged by ``by`` (one multipolygon per value), with their area in mu.

    Parcels tile the land, so they are merged as a coverage (GEOS's coverage union: 0.2 s for 100,000 generated
    parcels, against 4 s for a general union); where that fails or its result is not valid or differs in area
    from its parcels (parcels that overlap, leave slivers or do not share vertices, as digitised layers may), the
    area is merged again the general way."""
    import shapely
    from shapely.errors import GEOSException

    keys, shapes, areas = [], [], []
    for key, group in parcels.groupby(by, sort=True):
        geometries = group.geometry.values
        try:
            merged = shapely.coverage_union_all(geometries)
            exact = bool(shapely.is_valid(merged)) and bool(np.isclose(
                shapely.area(merged), shapely.area(geometries).sum(), rtol=1e-9, atol=1e-6))
        except GEOSException:
            exact = False
        keys.append(key)
        shapes.append(merged if exact else shapely.union_all(geometries))
        areas.append(float(group["area_mu"].sum()))
    return gpd.GeoDataFrame({by: keys, "area_mu": areas}, geometry=shapes, crs=parcels.crs)


def area_layers(parcels: gpd.GeoDataFrame, villages: pd.DataFrame, townships: pd.DataFrame,
                catalog: Catalog) -> dict[str, gpd.GeoDataFrame]:
    """The villages, townships and red_lines layers from the plan's parcels and tables."""
    names = _names(catalog)[0]
    layers: dict[str, gpd.GeoDataFrame] = {}
    if len(villages):
        shapes = _dissolved(parcels, "village").drop(columns="area_mu")
        table = villages[["village", "township", "population", "households", "floor", "income_per_capita_before",
                          "income_per_capita_after", "households_reached"]].copy()
        table["income_change"] = table["income_per_capita_after"] - table["income_per_capita_before"]
        ranked = leading_by(parcels, villages, catalog, "village")
        leading = [_leading_names(ranked, v, names) for v in table["village"]]
        table["dominant_industry"] = [d for d, _ in leading]
        table["secondary_industry"] = [s for _, s in leading]
        layers["villages"] = shapes.merge(table, on="village", how="inner")
    if len(townships):
        shapes = _dissolved(parcels, "township").drop(columns="area_mu")
        table = townships[["township", "area_mu", "population", "herd", "households_reached"]].copy()
        ranked = leading_by(parcels, villages, catalog, "township")
        leading = [_leading_names(ranked, t, names) for t in table["township"]]
        table["dominant_industry"] = [d for d, _ in leading]
        table["secondary_industry"] = [s for _, s in leading]
        layers["townships"] = shapes.merge(table, on="township", how="inner")
    red = parcels[parcels["red_line"].astype(bool)]
    layers["red_lines"] = _dissolved(red, "township") if len(red) else gpd.GeoDataFrame(
        {"township": pd.Series(dtype=str), "area_mu": pd.Series(dtype=float)}, geometry=gpd.GeoSeries(crs=parcels.crs))
    return layers


def _never_called(_geometry: bytes) -> None:
    raise RuntimeError("a geometry function ran while only attribute columns were updated")


def _add_zh_columns(connection: sqlite3.Connection, catalog: Catalog) -> None:
    """option_name_zh, variant_name_zh, current_use_name_zh on layer parcels, set in SQL (no rewrite of the
    geometry, which for a county is most of the file)."""
    options, variants, uses = _names(catalog)
    # GDAL's R-tree triggers name SpatiaLite-style functions in their WHEN clauses: SQLite needs them to compile
    # the triggers, though for these updates (neither fid nor geometry changes) they never run
    for function in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        connection.create_function(function, 1, _never_called)
    # one pass per column, names looked up in a keyed temporary table (an UPDATE per name would scan the layer
    # once per name: 120 scans of a county's parcels)
    connection.execute("CREATE TEMP TABLE zh_names (kind TEXT, key TEXT, name TEXT, PRIMARY KEY (kind, key))")
    connection.executemany("INSERT INTO zh_names VALUES (?, ?, ?)",
                           [("option", o, n) for o, n in options.items()]
                           + [("variant", f"{o}.{v}", n) for (o, v), n in variants.items()]
                           + [("use", c, n) for c, n in uses.items()])
    for column, kind, key in (("option_name_zh", "option", '"option"'),
                              ("variant_name_zh", "variant", '"option" || \'.\' || "variant"'),
                              ("current_use_name_zh", "use", '"current_use"')):
        connection.execute(f'ALTER TABLE "parcels" ADD COLUMN "{column}" TEXT')
        connection.execute(f'UPDATE "parcels" SET "{column}" = (SELECT name FROM zh_names '
                           f"WHERE kind = '{kind}' AND key = {key})")
    # a variant of an option's own name (an option with one variant) has no row of its own: the option's name
    connection.execute('UPDATE "parcels" SET "variant_name_zh" = "option_name_zh" '
                       'WHERE "variant_name_zh" IS NULL AND "variant" = "option"')
    connection.execute("DROP TABLE zh_names")


def style_plan(folder: str | Path, catalog: Catalog) -> None:
    """Add the Chinese names, the area layers and the default styles to ``folder/plan.gpkg`` (see the module's
    docstring). A plan without geometry (a Marxan import) is left as it is."""
    import pyogrio

    folder = Path(folder)
    gpkg = folder / PLAN
    parcels = pyogrio.read_dataframe(gpkg, layer="parcels")
    if parcels.geometry.isna().all():
        return
    villages = read_results_csv(folder / "villages.csv", dtype={"village": str, "township": str})
    townships = read_results_csv(folder / "townships.csv", dtype={"township": str})
    for column in ("village", "township", "option", "variant", "current_use"):
        parcels[column] = parcels[column].astype(str).to_numpy(dtype=object)  # plain strings: set() and masks are fast
    layers = area_layers(parcels, villages, townships, catalog)
    for name, layer in layers.items():
        pyogrio.write_dataframe(layer, gpkg, layer=name, driver="GPKG", promote_to_multi=True)
    styles = []
    with closing(sqlite3.connect(gpkg)) as connection, connection:  # one transaction, then closed
        _add_zh_columns(connection, catalog)
        geometry = dict(connection.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
        columns = {name: [row[1] for row in connection.execute(f'PRAGMA table_info("{name}")')]
                   for name in ("parcels", *layers)}
    names = _names(catalog)[0]
    colours = option_colours(catalog)
    styles.append(("parcels", parcels_qml(catalog, columns["parcels"]), _sld("parcels", [
        (o, names[o], colours[o], "#ffffff", 0.3) for o in catalog.options.index]), "规划用途"))
    for layer, colour, width, label, title in (("villages", OUTLINE, 0.4, "village", "行政村界"),
                                               ("townships", "#000000", 0.8, "township", "乡镇界"),
                                               ("red_lines", RED_LINE_COLOUR, 0.6, None, "生态保护红线")):
        if layer in layers:
            styles.append((layer, outline_qml(layer, colour, width, columns[layer], label),
                           _sld(layer, [(None, title, None, colour, width * 3.78)]), title))
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    table = pd.DataFrame({
        "f_table_catalog": "", "f_table_schema": "", "f_table_name": [s[0] for s in styles],
        "f_geometry_column": [geometry.get(s[0], "geom") for s in styles], "styleName": STYLE_NAME,
        "styleQML": [s[1] for s in styles], "styleSLD": [s[2] for s in styles], "useAsDefault": True,
        "description": [s[3] for s in styles], "owner": "", "ui": "", "update_time": now})
    # QGIS creates the table with an "id" key (FID=id); written as an attributes table it is listed in
    # gpkg_contents, as QGIS's own is
    pyogrio.write_dataframe(table, gpkg, layer="layer_styles", driver="GPKG", layer_options={"FID": "id"})
