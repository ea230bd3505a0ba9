"""PostGIS input and output against a real database (OPTILAND_TEST_DB, set up by .ci/run); skipped without one."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from optiland.analysis.generate import generate_instance
from optiland.cli import app
from optiland.errors import OptilandError
from optiland.io.postgis import read_parcel_table, redact, without_password, write_tables
from optiland.pipeline.run import prepare
from optiland.views.zoning import zone

DB = os.environ.get("OPTILAND_TEST_DB", "")


def _reachable() -> str | None:
    if not DB:
        return "OPTILAND_TEST_DB is not set (a postgresql:// URL of a database with PostGIS; .ci/run sets one up)"
    try:
        import psycopg

        with psycopg.connect(DB) as conn:
            conn.execute("SELECT postgis_version()")
    except Exception as exc:  # any failure to reach PostGIS is a reason to skip, shown with -ra
        return f"cannot use the PostGIS database {redact(DB)}: {redact(str(exc)).strip()}"
    return None


REASON = _reachable()
needs_db = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def _sql(statement: str, *params: object) -> list[tuple]:
    import psycopg

    with psycopg.connect(DB) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def names() -> Iterator[tuple[str, str]]:
    """A schema and a table-name prefix of this test run, dropped at the end."""
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"optiland_test_{tag}", f"t{tag}_"
    _sql(f"CREATE SCHEMA {schema}")
    yield schema, prefix
    _sql(f"DROP SCHEMA {schema} CASCADE")
    for (table,) in _sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE %s",
                         f"{prefix}%"):
        _sql(f'DROP TABLE public."{table}"')
    for (table,) in _sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE %s",
                         f"{prefix}%"):
        _sql(f'DROP TABLE IF EXISTS public."{table}"')


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory, names: tuple[str, str]) -> Path:
    folder = tmp_path_factory.mktemp("postgis") / "instance"
    generate_instance(150, 2, 4, 5, folder)
    parcels = pyogrio.read_dataframe(folder / "parcels.gpkg")
    write_tables(DB, {"parcels": parcels}, schema=names[0])
    return folder


@needs_db
def test_parcels_round_trip_with_srid_and_index(instance: Path, names: tuple[str, str]) -> None:
    schema, _ = names
    original = pyogrio.read_dataframe(instance / "parcels.gpkg")
    back = read_parcel_table(DB, f"{schema}.parcels")
    assert back.crs.to_epsg() == original.crs.to_epsg() == 4545
    pd.testing.assert_frame_equal(back.drop(columns="geometry").reset_index(drop=True),
                                  original.drop(columns="geometry"), check_dtype=False)
    assert back.geometry.geom_equals_exact(original.geometry, tolerance=0).all()
    indexes = _sql("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'parcels'", schema)
    assert any("USING gist" in definition for (definition,) in indexes)
    # the scenario read from the table validates to the same parcels as from its file
    from_file = prepare(instance / "scenario.toml").inputs.parcels
    from optiland.io.postgis import with_database

    from_db = prepare(with_database(instance / "scenario.toml", DB, f"{schema}.parcels")).inputs.parcels
    pd.testing.assert_frame_equal(from_db.drop(columns="geometry"), from_file.drop(columns="geometry"))


@needs_db
def test_solve_and_zone_through_the_database(instance: Path, names: tuple[str, str], tmp_path: Path) -> None:
    schema, prefix = names
    url, password = DB, os.environ.get("PGPASSWORD")
    parts = urlsplit(DB)
    if password and parts.username and parts.password is None:  # a password on the command line is refused (ps)
        port = f":{parts.port}" if parts.port else ""
        with_password = urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}{port}"))
        result = CliRunner().invoke(app, ["solve", str(instance / "scenario.toml"), "--out", str(tmp_path / "x"),
                                          "--db", with_password, "--table", f"{schema}.parcels"])
        assert result.exit_code == 2 and "PGPASSWORD" in result.output and password not in result.output
        assert not (tmp_path / "x").exists()
    result = CliRunner().invoke(app, ["solve", str(instance / "scenario.toml"), "--out", str(tmp_path / "plan"),
                                      "--gap", "0.01", "--db", url, "--table", f"{schema}.parcels",
                                      "--prefix", prefix])
    assert result.exit_code == 0, result.output
    run_text = (tmp_path / "plan" / "run.json").read_text(encoding="utf-8")
    run = json.loads(run_text)
    assert run["scenario"]["parcels"]["table"] == f"{schema}.parcels"
    if password:
        assert f":{password}@" not in run_text and f":{password}@" not in result.output
        assert '"db": "' + redact(url).replace(":***@", "@") + '"' in run_text
    # the plan table holds the plan as plan.gpkg does; plan.gpkg adds for QGIS only the Chinese display names
    plan_file = pyogrio.read_dataframe(tmp_path / "plan" / "plan.gpkg", layer="parcels")
    plan_db = read_parcel_table(DB, f"{prefix}plan")
    assert plan_db.crs.to_epsg() == 4545
    display = ["option_name_zh", "variant_name_zh", "current_use_name_zh"]
    assert [c for c in plan_file.columns if c not in plan_db.columns] == display
    pd.testing.assert_frame_equal(plan_db.drop(columns="geometry"), plan_file.drop(columns=["geometry", *display]),
                                  check_dtype=False)
    assert plan_db.geometry.geom_equals_exact(plan_file.geometry, tolerance=0).all()
    stored = json.loads(_sql(f'SELECT run FROM public."{prefix}plan_run"')[0][0])
    assert stored["objective"] == run["objective"]
    villages = pd.DataFrame(_sql(f'SELECT village, income_total FROM public."{prefix}plan_villages"'),
                            columns=["village", "income_total"])
    expected = pd.read_csv(tmp_path / "plan" / "villages.csv", encoding="utf-8-sig", dtype={"village": str})
    assert np.allclose(villages.set_index("village")["income_total"].reindex(expected["village"]),
                       expected["income_total"])

    result = CliRunner().invoke(app, ["zone", str(tmp_path / "plan"), "--out", str(tmp_path / "zones"),
                                      "--db", url, "--prefix", prefix])
    assert result.exit_code == 0, result.output
    if password:
        assert f":{password}@" not in result.output
        assert f":{password}@" not in (tmp_path / "zones" / "zoning.json").read_text(encoding="utf-8")
    zones_file = pyogrio.read_dataframe(tmp_path / "zones" / "zones.gpkg", layer="zones")
    zones_db = read_parcel_table(DB, f"{prefix}zones")
    assert len(zones_db) == len(zones_file)
    assert np.allclose(zones_db["area_mu"].sum(), zones_file["area_mu"].sum())
    assert _sql(f'SELECT count(*) FROM public."{prefix}parcel_zones"')[0][0] == 150
    indexes = _sql("SELECT indexdef FROM pg_indexes WHERE tablename = %s", f"{prefix}zones")
    assert any("USING gist" in definition for (definition,) in indexes)


@needs_db
def test_a_write_failing_half_way_leaves_the_database_as_it_was(instance: Path, names: tuple[str, str],
                                                                 tmp_path: Path) -> None:
    schema, _ = names
    from optiland.views.zoning import synthetic_plan

    synthetic_plan(instance, tmp_path / "plan")
    _sql(f"CREATE TABLE {schema}.zones (marker text)")
    _sql(f"INSERT INTO {schema}.zones VALUES ('earlier zones')")
    _sql(f"CREATE VIEW {schema}.zone_stats AS SELECT 1 AS one")  # DROP TABLE on a view fails: the second table
    with pytest.raises(OptilandError, match=r"zone_stats.*nothing was written"):
        zone(tmp_path / "plan", tmp_path / "zones", db=DB, schema=schema)
    assert _sql(f"SELECT marker FROM {schema}.zones") == [("earlier zones",)]
    assert _sql("SELECT to_regclass(%s)", f"{schema}.parcel_zones") == [(None,)]
    assert not (tmp_path / "zones").exists()  # the folder is not written either


def test_password_is_redacted_and_moved_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    assert redact("postgresql://ana:s3cret@db.example/plans") == "postgresql://ana:***@db.example/plans"
    assert redact("host=db password='a b' dbname=x") == "host=db password=*** dbname=x"
    assert without_password("postgresql://ana:s%40cret@db.example/plans") == "postgresql://ana@db.example/plans"
    assert os.environ["PGPASSWORD"] == "s@cret"


@needs_db
def test_missing_table_is_named(names: tuple[str, str]) -> None:
    from optiland.errors import InputError

    with pytest.raises(InputError, match=r"no_such_parcels.*not found|not found.*no_such_parcels"):
        read_parcel_table(DB, f"{names[0]}.no_such_parcels")


@needs_db
def test_solve_writes_the_database_and_the_folder_or_neither(instance: Path, names: tuple[str, str],
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: `solve --db` committed its tables, then failed to write the folder (traceback, rc 1, the tables
    committed). A folder that fails after the tables are written rolls them back; a commit that fails puts the
    previous folder back."""
    schema, prefix = names
    prefix = prefix + "order_"
    plan = tmp_path / "plan"
    args = ["solve", str(instance / "scenario.toml"), "--out", str(plan), "--gap", "0.01", "--db", DB,
            "--table", f"{schema}.parcels", "--prefix", prefix]
    import optiland.pipeline.outdir as outdir

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outdir, "write_marker", full_disk)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "nothing there changed" in " ".join(result.output.split()), result.output
    assert _sql("SELECT to_regclass(%s)", f'public."{prefix}plan"') == [(None,)] and not plan.exists()
    monkeypatch.undo()

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    before = (plan / "run.json").read_text()
    count = _sql(f'SELECT count(*) FROM public."{prefix}plan"')[0][0]
    import psycopg

    import optiland.io.postgis as postgis

    def refused(conn: object) -> None:
        raise psycopg.OperationalError("server closed the connection")

    monkeypatch.setattr(postgis, "_commit", refused)
    result = CliRunner().invoke(app, [*args[:5], "0.02", *args[6:]])
    assert result.exit_code == 2 and "committing" in result.output, result.output
    monkeypatch.undo()
    assert (plan / "run.json").read_text() == before  # the previous folder is back
    assert _sql(f'SELECT count(*) FROM public."{prefix}plan"')[0][0] == count
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan"]


def test_prefix_too_long_is_refused_before_solving(tiny_scenario: Path, tmp_path: Path) -> None:
    """Before: a 55-character --prefix cut table names silently (PostgreSQL keeps 63 bytes)."""
    result = CliRunner().invoke(app, ["solve", str(tiny_scenario), "--out", str(tmp_path / "plan"),
                                      "--db", "postgresql://nobody@localhost/none", "--table", "parcels",
                                      "--prefix", "p" * 55])
    assert result.exit_code == 2 and "63" in result.output and not (tmp_path / "plan").exists()
