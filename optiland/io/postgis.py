"""PostGIS beside files: read a parcel table with its SRID, write plans and zones to tables in one transaction.

Connections use psycopg 3 (libpq): a URL ``postgresql://user@host:port/db`` (or a libpq keyword string); the password
comes from PGPASSWORD or ~/.pgpass as libpq reads them. A password written into the URL is moved into this process's
PGPASSWORD and dropped from the URL (`without_password`), so it never reaches run.json, logs or error messages
(`redact`). A write replaces its tables (DROP, CREATE, COPY, CREATE INDEX ... USING GIST) inside one transaction:
if any statement fails, the database is left as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from optiland.errors import InputError, Issue, OptilandError
from optiland.io.dburl import redact, without_password  # noqa: F401  (re-exported)

_COPY_CHUNK = 20_000



def connect(url: str) -> Any:
    """A psycopg connection (autocommit off); a failure names the redacted URL."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - a dependency of optiland
        raise OptilandError("PostGIS needs psycopg: pip install 'psycopg[binary]'") from None
    try:
        return psycopg.connect(url)
    except psycopg.Error as exc:
        raise OptilandError(f"cannot connect to {redact(url)}: {redact(str(exc)).strip()}") from None


def _split_name(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return schema or "public", name


def table_source(url: str, table: str) -> str:
    """How a database table is named in messages: the redacted URL and the table."""
    return f"{redact(url)} table {table}"


def read_parcel_table(url: str, table: str) -> gpd.GeoDataFrame:
    """Every row of a PostGIS table with its geometry column (from geometry_columns) and that column's SRID."""
    from psycopg import sql

    schema, name = _split_name(table)
    source = table_source(url, table)
    with connect(url) as conn:
        found = conn.execute("SELECT f_geometry_column, srid FROM geometry_columns "
                             "WHERE f_table_schema = %s AND f_table_name = %s", (schema, name)).fetchall()
        if not found:
            exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.{name}",)).fetchone()[0]
            reason = "has no geometry column" if exists else "not found"
            raise InputError([Issue(f"parcel table {reason}", file=source)])
        geometry_column, srid = found[0]
        columns = [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position", (schema, name)).fetchall() if row[0] != geometry_column]
        srids = [row[0] for row in conn.execute(
            sql.SQL("SELECT DISTINCT ST_SRID({}) FROM {}").format(sql.Identifier(geometry_column),
                                                                  sql.Identifier(schema, name))).fetchall()]
        if not srid and len(srids) == 1:
            srid = srids[0]
        if not srid or len(srids) > 1:
            raise InputError([Issue(f"geometry column has no single SRID (found {srids}); set one with "
                                    f"UpdateGeometrySRID", file=source, column=geometry_column)])
        query = sql.SQL("SELECT {}, ST_AsBinary({}) FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns) if columns else sql.SQL("NULL"),
            sql.Identifier(geometry_column), sql.Identifier(schema, name))
        rows = conn.execute(query).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=[*columns, "__wkb"] if columns else ["__none", "__wkb"])
    geometry = shapely.from_wkb(frame.pop("__wkb").to_numpy())
    frame = frame.drop(columns=["__none"], errors="ignore")
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=f"EPSG:{srid}")


def frame_hash(frame: gpd.GeoDataFrame) -> str:
    """sha256 of a parcel layer's attributes and geometry (run.json's input hash of a table, as a file's would be)."""
    import hashlib

    digest = hashlib.sha256(pd.util.hash_pandas_object(frame.drop(columns="geometry"), index=False).to_numpy())
    digest.update(b"".join(shapely.to_wkb(frame.geometry.to_numpy())))
    return digest.hexdigest()


def with_database(scenario: Any, db: str | None, table: str | None) -> Any:
    """The scenario (a path or Scenario) reading its parcels from ``table`` in ``db``; unchanged without them."""
    from optiland.io.scenario import Scenario, load_scenario

    if db is None and table is None:
        return scenario
    if not db or not table:
        raise OptilandError("--db and --table go together: the database URL and the parcel table in it")
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return scenario.with_(**{"parcels.db": without_password(db), "parcels.table": table})


def _sql_type(series: pd.Series) -> str:
    if isinstance(series, gpd.GeoSeries) or series.dtype.name == "geometry":
        return "geometry"
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "bigint"
    if pd.api.types.is_float_dtype(series):
        return "double precision"
    return "text"


def _copy_values(frame: pd.DataFrame, srid: int | None) -> list[np.ndarray]:
    """Column arrays as COPY takes them: geometry as hex EWKB with the SRID, missing values as None."""
    values = []
    for column in frame.columns:
        series = frame[column]
        if _sql_type(series) == "geometry":
            geometry = np.asarray(series.values, dtype=object)
            if srid:
                geometry = shapely.set_srid(geometry, srid)
            values.append(shapely.to_wkb(geometry, hex=True, include_srid=bool(srid)))
        else:
            array = series.astype(object).to_numpy(copy=True)
            array[pd.isna(series).to_numpy()] = None
            values.append(array)
    return values


MAX_NAME_BYTES = 63
"""PostgreSQL's identifier length: a longer table name would be cut silently."""
PLAN_TABLES = ("plan", "plan_villages", "plan_townships", "plan_run")
ZONE_TABLES = ("zones", "zone_stats", "parcel_zones")


def check_prefix(prefix: str, tables: tuple[str, ...]) -> None:
    """A table-name prefix that keeps every name within PostgreSQL's 63 bytes (it would cut them silently)."""
    longest = max(tables, key=lambda t: len(t.encode()))
    size = len((prefix + longest).encode())
    if size > MAX_NAME_BYTES:
        room = MAX_NAME_BYTES - len(longest.encode())
        raise OptilandError(f"--prefix {prefix!r} makes the table name {prefix + longest!r} {size} bytes long; "
                            f"PostgreSQL keeps {MAX_NAME_BYTES} and would cut it: use a prefix of at most {room} "
                            f"bytes")


def _commit(conn: Any) -> None:
    """Commit a transaction (a function of its own so that a test can make it fail)."""
    conn.commit()


@contextmanager
def pending_tables(url: str, tables: Mapping[str, pd.DataFrame], *,
                   schema: str = "public") -> Iterator[Callable[[], None]]:
    """Write the tables (name -> frame) in a transaction left open and yield its `commit`: whatever else must be
    written with them (a results folder) is written in the block, then committed; leaving the block without
    committing, or by an error, rolls everything back. Each table is replaced (DROP, CREATE, COPY, GiST index)."""
    import psycopg

    for name in tables:
        if len(name.encode()) > MAX_NAME_BYTES:
            raise OptilandError(f"table name {name!r} is longer than PostgreSQL's {MAX_NAME_BYTES} bytes")
    conn = connect(url)
    committed = False
    try:
        name = ""
        try:
            for name, frame in tables.items():
                _write_one(conn, schema, name, frame)
        except psycopg.Error as exc:
            raise OptilandError(f"writing table {schema}.{name} to {redact(url)} failed, nothing was written: "
                                f"{redact(str(exc)).strip()}") from None

        def commit() -> None:
            nonlocal committed
            try:
                _commit(conn)
            except psycopg.Error as exc:
                raise OptilandError(f"committing the tables to {redact(url)} failed, nothing was written: "
                                    f"{redact(str(exc)).strip()}") from None
            committed = True

        yield commit
    finally:
        if not committed:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - a lost connection rolls back by itself
                pass
        conn.close()


def write_tables(url: str, tables: Mapping[str, pd.DataFrame], *, schema: str = "public") -> None:
    """Replace each table (name -> frame, geometry columns kept with their SRID and a GiST index) in one
    transaction: all of them are written, or none and the database is as it was."""
    with pending_tables(url, tables, schema=schema) as commit:
        commit()


def _write_one(conn: Any, schema: str, name: str, frame: pd.DataFrame) -> None:
    from psycopg import sql

    srid = None
    if isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None:
        srid = frame.crs.to_epsg()
        if srid is None:
            raise OptilandError(f"table {schema}.{name}: the layer's CRS {frame.crs.name} has no EPSG code for an "
                                f"SRID")
    target = sql.Identifier(schema, name)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    definitions = []
    for column in frame.columns:
        kind = _sql_type(frame[column])
        if kind == "geometry":
            kind = f"geometry(Geometry, {int(srid)})" if srid else "geometry"
        definitions.append(sql.SQL("{} {}").format(sql.Identifier(str(column)), sql.SQL(kind)))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(definitions)))
    values = _copy_values(frame, srid)
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(
        sql.Identifier(str(c)) for c in frame.columns))
    with conn.cursor().copy(copy) as writer:
        for row in zip(*values, strict=True):
            writer.write_row(row)
    for column in frame.columns:
        if _sql_type(frame[column]) == "geometry":
            conn.execute(sql.SQL("CREATE INDEX {} ON {} USING GIST ({})").format(
                sql.Identifier(f"{name}_{column}_gist"[:63]), target, sql.Identifier(str(column))))


def plan_tables(plan: Any, prefix: str = "") -> dict[str, pd.DataFrame]:
    """A solved plan (optiland.pipeline.results.Plan) as tables ``{prefix}plan`` (parcels with geometry),
    ``{prefix}plan_villages``, ``{prefix}plan_townships`` and ``{prefix}plan_run`` (run.json as JSON text, one row)."""
    check_prefix(prefix, PLAN_TABLES)
    run = pd.DataFrame({"run": [json.dumps(plan.run, ensure_ascii=False, default=str)]})
    return {f"{prefix}plan": plan.to_geodataframe().set_crs(plan.geometry.crs, allow_override=True),
            f"{prefix}plan_villages": plan.villages, f"{prefix}plan_townships": plan.townships,
            f"{prefix}plan_run": run}


def write_plan_tables(url: str, plan: Any, prefix: str = "", schema: str = "public") -> list[str]:
    """Write `plan_tables` in one transaction."""
    tables = plan_tables(plan, prefix)
    write_tables(url, tables, schema=schema)
    return list(tables)


def write_zoning_tables(url: str, zoning: Any, prefix: str = "", schema: str = "public") -> list[str]:
    """A zoning (optiland.views.zoning.Zoning) as tables ``{prefix}zones`` (patch polygons), ``{prefix}zone_stats`` and
    ``{prefix}parcel_zones``."""
    check_prefix(prefix, ZONE_TABLES)
    tables = {f"{prefix}zones": zoning.zones, f"{prefix}zone_stats": zoning.stats,
              f"{prefix}parcel_zones": zoning.parcels}
    write_tables(url, tables, schema=schema)
    return list(tables)
