"""The app's JSON API (optiland.app.server) through FastAPI's TestClient: uploads refused with their culprits, unknown
parcels, jobs (two at once, cancel mid-solve), the token, export checked by `optiland check`'s code, and answers that
follow the catalog as the engine's do."""

from __future__ import annotations

import io
import json
import os
import time
import tomllib
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from optiland.analysis.generate import generate_instance  # noqa: E402
from optiland.app.server import create_app, make_state  # noqa: E402
from optiland.app.uploads import MAX_UPLOAD_BYTES  # noqa: E402
from optiland.check import check_outdir  # noqa: E402
from optiland.model.problem import explain  # noqa: E402
from optiland.pipeline.run import prepare  # noqa: E402

HANG = 240  # seconds: a ceiling against hangs, never what decides a result


@pytest.fixture(scope="module")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inst") / "tiny"
    folder.mkdir()
    generate_instance(60, 2, 4, 3, folder)
    return folder


@pytest.fixture(scope="module")
def app_state(tmp_path_factory: pytest.TempPathFactory, instance_dir: Path):
    state = make_state(tmp_path_factory.mktemp("project"), slots=2)
    instance = state.open(instance_dir / "scenario.toml")
    yield state, instance
    state.close()


@pytest.fixture(scope="module")
def client(app_state) -> TestClient:
    return TestClient(create_app(app_state[0]))


def _wait(client: TestClient, job: str, states: tuple[str, ...] = ("done", "failed", "cancelled")) -> dict:
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        record = client.get(f"/api/jobs/{job}").json()
        if record["state"] in states:
            return record
        time.sleep(0.2)
    raise AssertionError(f"job {job} still {record['state']} after {HANG} s")


def _ids(instance) -> list[str]:
    return json.loads((instance.folder / "parcels.json").read_text(encoding="utf-8"))["parcel_id"]


# ------------------------------------------------------------------ security


def test_token_required_when_set(tmp_path: Path, instance_dir: Path) -> None:
    state = make_state(tmp_path / "p", token="s3cret-token")
    try:
        state.open(instance_dir / "scenario.toml")
        client = TestClient(create_app(state))
        assert client.get("/api/instances").status_code == 401
        assert client.get("/api/instances", headers={"X-Optiland-Token": "wrong"}).status_code == 401
        assert client.get("/api/instances", headers={"X-Optiland-Token": "s3cret-token"}).status_code == 200
        assert client.get("/static/app.js").status_code == 401
        page = client.get("/?token=s3cret-token")  # the printed address sets a cookie for the page's requests
        assert page.status_code == 200 and client.cookies.get("optiland_token") == "s3cret-token"
        assert client.get("/api/instances").status_code == 200
    finally:
        state.close()


def test_other_hosts_refused_without_token(client: TestClient) -> None:
    assert client.get("/api/instances", headers={"Host": "attacker.example:8787"}).status_code == 403
    assert client.get("/api/instances", headers={"Host": "127.0.0.1:8787"}).status_code == 200


def test_page_and_vendored_scripts_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "https://" not in page.text  # no CDN
    for name in ("app.js", "vendor/maplibre-gl.mjs", "vendor/maplibre-gl-worker.mjs", "vendor/pmtiles.js"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../server.py").status_code == 404
    assert client.get("/static/%2e%2e/server.py").status_code == 404


def test_tiles_served_by_ranges(client: TestClient, app_state) -> None:
    _, instance = app_state
    head = client.get(f"/api/instances/{instance.key}/tiles.pmtiles", headers={"Range": "bytes=0-6"})
    assert head.status_code == 206 and head.content == b"PMTiles"


def test_unknown_ids_refused(client: TestClient, app_state) -> None:
    _, instance = app_state
    assert client.get("/api/instances/0123456789abcdef").status_code == 404
    assert client.get("/api/instances/..%2f..%2fetc").status_code == 404
    assert client.get(f"/api/instances/{instance.key}/explain/NO-SUCH-PARCEL").status_code == 404
    assert client.get("/api/jobs/../../jobs.sqlite").status_code == 404
    assert client.get("/api/plans/zzzz").status_code == 404
    r = client.post(f"/api/instances/{instance.key}/solve", json={"locks": {"NO-SUCH-PARCEL": "closure"}})
    assert r.status_code == 422 and r.json()["problems"][0]["row"] == "NO-SUCH-PARCEL"


# ------------------------------------------------------------------ uploads


def _upload(client: TestClient, parcels: bytes, filename: str, villages: bytes | None = None,
            **open_args: object):
    upload = client.post("/api/uploads").json()["upload"]
    r = client.put(f"/api/uploads/{upload}/parcels", params={"filename": filename}, content=parcels)
    if r.status_code != 200:
        return r
    if villages is not None:
        client.put(f"/api/uploads/{upload}/villages", content=villages)
    return client.post(f"/api/uploads/{upload}/open", json=open_args)


def test_upload_wrong_format(client: TestClient) -> None:
    r = _upload(client, b"hello", "parcels.xlsx")
    assert r.status_code == 415 and r.json()["problems"][0]["value"] == ".xlsx"
    r = _upload(client, b"not a geopackage at all", "parcels.gpkg")
    assert r.status_code == 415 and "not a gpkg file" in r.json()["problems"][0]["message"]


def test_upload_zip_with_parent_paths(client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../../evil.shp", b"x")
        zf.writestr("parcels.dbf", b"x")
    r = _upload(client, buffer.getvalue(), "parcels.zip")
    assert r.status_code == 400
    problem = r.json()["problems"][0]
    assert problem["row"] == "../../evil.shp" and "outside" in problem["message"]


def test_upload_too_large(client: TestClient, app_state) -> None:
    state, _ = app_state
    upload = client.post("/api/uploads").json()["upload"]
    declared = client.put(f"/api/uploads/{upload}/parcels", params={"filename": "big.gpkg"},
                          headers={"Content-Length": str(MAX_UPLOAD_BYTES + 1)}, content=b"")
    assert declared.status_code == 413

    def chunks():  # a 200 MB body sent without a length: refused while streaming
        block = b"\0" * (1 << 20)
        for _ in range(MAX_UPLOAD_BYTES // len(block) + 1):
            yield block

    streamed = client.put(f"/api/uploads/{upload}/parcels", params={"filename": "big.gpkg"}, content=chunks())
    assert streamed.status_code == 413 and "limit" in streamed.json()["problems"][0]["message"]
    left = [p for p in (state.root / "uploads").rglob("*") if p.is_file()]
    assert not left, f"a refused upload left files: {left}"


def test_upload_missing_column_named(client: TestClient, instance_dir: Path) -> None:
    layer = gpd.read_file(instance_dir / "parcels.gpkg").drop(columns=["slope_deg"])
    r = _upload(client, layer.to_json().encode(), "parcels.geojson",
                (instance_dir / "villages.csv").read_bytes())
    assert r.status_code == 422
    assert any(p["column"] == "slope_deg" for p in r.json()["problems"]), r.json()


def test_upload_bad_value_named(client: TestClient, instance_dir: Path, tmp_path: Path) -> None:
    layer = gpd.read_file(instance_dir / "parcels.gpkg")
    layer.loc[3, "slope_deg"] = 120.0
    layer.to_parquet(tmp_path / "p.parquet")
    r = _upload(client, (tmp_path / "p.parquet").read_bytes(), "parcels.parquet",
                (instance_dir / "villages.csv").read_bytes())
    assert r.status_code == 422
    problems = r.json()["problems"]
    assert any(p["row"] == layer.loc[3, "parcel_id"] and p["column"] == "slope_deg" for p in problems), problems


def test_upload_gbk_shapefile_opens(client: TestClient, instance_dir: Path, tmp_path: Path) -> None:
    chinese = {"slope_deg": "坡度", "bedrock_exposure": "基岩裸露", "soil_depth_cm": "土层厚度",
               "basic_farmland": "基本农田"}  # Shapefile field names hold 10 bytes: 4 characters in GBK
    layer = gpd.read_file(instance_dir / "parcels.gpkg").rename(columns=chinese)
    layer["备注"] = "石漠化治理"
    layer.to_file(tmp_path / "layer.shp", encoding="GBK", engine="pyogrio")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for f in tmp_path.glob("layer.*"):
            zf.write(f, f"shape/{f.name}")
        zf.writestr("shape/README.txt", "not a Shapefile part: left out")
    r = _upload(client, buffer.getvalue(), "乡镇地块.zip", (instance_dir / "villages.csv").read_bytes(),
                encoding="GBK", name="乡镇地块", columns=chinese)
    assert r.status_code == 200, r.json()
    meta = client.get(f"/api/instances/{r.json()['instance']}").json()
    assert meta["parcels"] == len(layer)


# ------------------------------------------------------------------ scenario, jobs, plans


def test_scenario_form_to_toml(client: TestClient, app_state) -> None:
    _, instance = app_state
    r = client.post(f"/api/instances/{instance.key}/scenario",
                    json={"income_floor": 4321, "village_floors": {"T01-V01": 4500}, "time_limit": 30})
    assert r.status_code == 200
    data = tomllib.loads(r.json()["toml"])
    assert data["constraints"]["income_floor"] == 4321 and data["constraints"]["village_floors"] == {"T01-V01": 4500}
    assert data["solver"]["time_limit"] == 30 and data["parcels"]["path"] == "parcels.gpkg"
    bad = client.post(f"/api/instances/{instance.key}/scenario", json={"diversity_cap": 3})
    assert bad.status_code == 422


def test_two_jobs_then_export_checks(client: TestClient, app_state, tmp_path: Path) -> None:
    state, instance = app_state
    a = client.post(f"/api/instances/{instance.key}/solve", json={"form": {"income_floor": 3000}}).json()["job"]
    b = client.post(f"/api/instances/{instance.key}/solve", json={"form": {"income_floor": 4000}}).json()["job"]
    seen_both = False
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline and not seen_both:
        states = {client.get(f"/api/jobs/{j}").json()["state"] for j in (a, b)}
        seen_both = states == {"running"}
        if states <= {"done", "failed", "cancelled"}:
            break
        time.sleep(0.1)
    ra, rb = _wait(client, a), _wait(client, b)
    assert ra["state"] == rb["state"] == "done", (ra, rb)
    assert seen_both or ra["finished"] > rb["started"], "the two jobs did not overlap"
    pa, pb = client.get(f"/api/plans/{a}").json(), client.get(f"/api/plans/{b}").json()
    assert {v["floor"] for v in pa["villages"]} == {3000} and {v["floor"] for v in pb["villages"]} == {4000}
    assert len(pa["codes"]) == 60 and min(pa["codes"]) >= 0
    # the same figures as the results folder
    out = state.runner.folder(a) / "out"
    assert pa["villages"] == json.loads(__import__("pandas").read_csv(
        out / "villages.csv", encoding="utf-8-sig", dtype={"village": str, "township": str}).to_json(orient="records"))
    # export: a plan folder that `optiland check` passes, wherever it is unpacked
    r = client.get(f"/api/plans/{a}/export.zip")
    assert r.status_code == 200
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path)
    assert check_outdir(tmp_path / "plan") == []
    # the township report and the zones, written by their commands, travel in the export
    assert client.post(f"/api/plans/{a}/extras/nonsense").status_code == 404
    for what in ("report-en", "zones"):
        extra = client.post(f"/api/plans/{a}/extras/{what}").json()["job"]
        assert _wait(client, extra)["state"] == "done", client.get(f"/api/jobs/{extra}").json()
    names = zipfile.ZipFile(io.BytesIO(client.get(f"/api/plans/{a}/export.zip").content)).namelist()
    assert any(n.startswith("plan/report") and n.endswith("index.html") for n in names), names
    assert "zones/zones.gpkg" in names
    compared = client.get("/api/compare", params={"a": a, "b": b}).json()
    assert compared["changed"] == sum(x != y for x, y in zip(compared["codes_a"], compared["codes_b"], strict=True))
    assert [v["village"] for v in compared["villages"]] == [v["village"] for v in pa["villages"]]


def test_hand_edit_checked_and_reoptimised(client: TestClient, app_state) -> None:
    state, instance = app_state
    job = client.post(f"/api/instances/{instance.key}/solve", json={}).json()["job"]
    assert _wait(client, job)["state"] == "done"
    plan = client.get(f"/api/plans/{job}").json()
    kinds = client.get(f"/api/instances/{instance.key}").json()["kinds"]
    assert client.post(f"/api/plans/{job}/check", json={"edits": {}}).json()["violations"] == []
    ids = _ids(instance)
    prepared = prepare(instance.scenario_path)
    # a parcel put into a use its site rules forbid: the checker names the rule
    for pid in ids:
        table = explain((prepared.catalog, prepared.problem.parcels), pid)
        forbidden = table[~table["allowed"]]
        if len(forbidden):
            row = forbidden.iloc[0]
            break
    k = next(i for i, kind in enumerate(kinds) if (kind["option"], kind["variant"]) == (row.option, row.variant))
    broken = client.post(f"/api/plans/{job}/check", json={"edits": {pid: k}}).json()["violations"]
    site_families = {"red_line", "suitability", "farmland", "conversion", "current_use"}  # the checker's own words
    assert any(v["key"] == pid and v["family"] in site_families and f"{row.option}.{row.variant}" in v["message"]
               for v in broken), broken
    assert client.post(f"/api/plans/{job}/check", json={"edits": {"NOPE": 0}}).status_code == 404
    # an allowed change, locked in and re-optimised: the new plan keeps it
    at = ids.index(pid)
    allowed = table[table["allowed"] & (table["option"] != kinds[plan["codes"][at]]["option"])]
    option = allowed.iloc[0]["option"]
    again = client.post(f"/api/instances/{instance.key}/solve", json={"locks": {pid: option}, "parent": job}).json()
    assert _wait(client, again["job"])["state"] == "done"
    replanned = client.get(f"/api/plans/{again['job']}").json()
    assert kinds[replanned["codes"][at]]["option"] == option


def test_cancel_mid_solve_leaves_no_plan(client: TestClient, app_state) -> None:
    state, instance = app_state
    job = client.post(f"/api/instances/{instance.key}/solve",
                      json={"form": {"mip_rel_gap": 0.0, "preset": "exact"}}).json()["job"]
    folder = state.runner.folder(job)
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:  # wait until HiGHS is solving
        log = folder / "log.txt"
        if log.is_file() and "Solving" in log.read_text(errors="replace"):
            break
        assert client.get(f"/api/jobs/{job}").json()["state"] in ("queued", "running")
        time.sleep(0.05)
    proc = state.runner._procs.get(job)
    assert proc is not None, "the job ended before it could be cancelled"
    start = time.monotonic()
    assert client.post(f"/api/jobs/{job}/cancel").json()["cancelled"] is True
    while time.monotonic() - start < 2.0:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(ProcessLookupError):  # the command and its HiGHS child are gone within 2 s
        os.killpg(proc.pid, 0)
    assert client.get(f"/api/jobs/{job}").json()["state"] == "cancelled"
    assert not (folder / "out").exists()
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]
    assert client.get(f"/api/plans/{job}").status_code == 409


# ------------------------------------------------------------------ no rule of its own


def test_answers_follow_the_catalog(tmp_path: Path, instance_dir: Path) -> None:
    """A catalog figure changed in the scenario changes the app's suitability and explain exactly as the engine's."""
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in instance_dir.iterdir():
        if f.is_file():
            (changed / f.name).write_bytes(f.read_bytes())
    with open(changed / "scenario.toml", "a", encoding="utf-8") as handle:
        handle.write('\n[catalog.overrides]\n"options.fruit.max_slope_deg" = 6\n')
    state = make_state(tmp_path / "p")
    try:
        base = state.open(instance_dir / "scenario.toml")
        other = state.open(changed / "scenario.toml")
        client = TestClient(create_app(state))
        codes = {i.key: client.get(f"/api/instances/{i.key}/suitability/fruit").json()["codes"] for i in (base, other)}
        assert codes[base.key] != codes[other.key]
        for instance in (base, other):
            prepared = prepare(instance.scenario_path)
            for at, pid in enumerate(_ids(instance)):
                table = explain((prepared.catalog, prepared.problem.parcels), pid)
                assert (codes[instance.key][at] == 0) == bool(table[table["option"] == "fruit"]["allowed"].any())
                page = client.get(f"/api/instances/{instance.key}/explain/{pid}").json()["options"]
                assert page == json.loads(table.to_json(orient="records"))
    finally:
        state.close()


def test_jobs_on_dask_cancel_and_finish(tmp_path: Path, instance_dir: Path) -> None:
    """With --dask, a job's command runs on a worker: it finishes with its plan, or is killed on cancel."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    state = make_state(tmp_path / "p", slots=2, client=client)
    try:
        instance = state.open(instance_dir / "scenario.toml")
        api = TestClient(create_app(state))
        done = api.post(f"/api/instances/{instance.key}/solve", json={}).json()["job"]
        stopped = api.post(f"/api/instances/{instance.key}/solve",
                           json={"form": {"mip_rel_gap": 0.0, "preset": "exact"}}).json()["job"]
        folder = state.runner.folder(stopped)
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            log = folder / "log.txt"
            if log.is_file() and "Solving" in log.read_text(errors="replace") and (folder / "pid").is_file():
                break
            assert api.get(f"/api/jobs/{stopped}").json()["state"] in ("queued", "running")
            time.sleep(0.05)
        pid = int((folder / "pid").read_text())
        start = time.monotonic()
        assert api.post(f"/api/jobs/{stopped}/cancel").json()["cancelled"] is True
        assert time.monotonic() - start < 2.5
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
        assert not (folder / "out").exists()
        assert _wait(api, done)["state"] == "done"
        assert (state.runner.folder(done) / "out" / "plan.gpkg").is_file()
    finally:
        state.close()
        client.close()
        cluster.close()


def test_job_dies_with_the_app(tmp_path: Path) -> None:
    """An app killed with SIGKILL leaves no job's command running (parent-death signal). The demo's solve runs far
    longer than the 5 s allowed here, so a command that outlived the app would be seen."""
    import signal
    import subprocess
    import sys

    from optiland.app import demo_scenario

    scenario = demo_scenario()

    script = (f"import sys, time\nfrom pathlib import Path\nfrom optiland.app.server import make_state\n"
              f"state = make_state(Path({str(tmp_path / 'p')!r}))\n"
              f"instance = state.open(Path({str(scenario)!r}))\n"
              f"job = state.runner.submit('solve', instance.key, ['solve', str(instance.scenario_path), '--out', "
              f"'out', '--verbose', '--gap', '0'])\n"
              f"print(state.runner.folder(job), flush=True)\ntime.sleep(600)\n")
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        folder = Path(app.stdout.readline().strip())
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            log = folder / "log.txt"
            if (folder / "pid").is_file() and log.is_file() and "Solving" in log.read_text(errors="replace"):
                break
            time.sleep(0.05)
        pid = int((folder / "pid").read_text())
        os.kill(pid, 0)  # running
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        if app.poll() is None:
            app.kill()


def test_command_opens_the_demo_and_wants_a_token_off_localhost(tmp_path: Path) -> None:
    """`optiland app --host 0.0.0.0 --no-browser --port P`: the demo by default, a generated token printed once and
    required on every request."""
    import re
    import signal
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = subprocess.Popen([sys.executable, "-m", "optiland", "app", "--no-browser", "--host", "0.0.0.0", "--port",
                            str(port), "--project", str(tmp_path / "p")], stdout=subprocess.PIPE, text=True)
    try:
        token = None
        deadline = time.monotonic() + HANG
        while token is None and time.monotonic() < deadline:
            line = app.stdout.readline()
            assert line, "the app ended before printing its address"
            match = re.search(r"\?token=(\S+)", line)
            token = match.group(1) if match else None
        url = f"http://127.0.0.1:{port}/api/instances"
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=5)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the app did not answer")
        request = urllib.request.Request(url, headers={"X-Optiland-Token": token})
        listed = json.loads(urllib.request.urlopen(request, timeout=10).read())
        assert [i["name"] for i in listed["instances"]] == ["huanjiang-demo"]
    finally:
        app.send_signal(signal.SIGINT)
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()


def test_bad_instance_named_by_its_own_files(tmp_path: Path, instance_dir: Path) -> None:
    """An instance that does not validate is refused naming the planner's own file (not the project's copy), and
    the project keeps nothing of it."""
    from optiland.errors import InputError

    folder = tmp_path / "mine"
    folder.mkdir()
    layer = gpd.read_file(instance_dir / "parcels.gpkg")
    layer.loc[2, "slope_deg"] = -4.0
    layer.to_file(folder / "parcels.gpkg", layer="parcels", engine="pyogrio")
    (folder / "villages.csv").write_bytes((instance_dir / "villages.csv").read_bytes())
    (folder / "scenario.toml").write_bytes((instance_dir / "scenario.toml").read_bytes())
    before = sorted(p.name for p in folder.iterdir())
    state = make_state(tmp_path / "p")
    try:
        with pytest.raises(InputError) as caught:
            state.open(folder / "scenario.toml")
        named = [p for p in caught.value.problems if p.column == "slope_deg"]
        assert named and named[0].file == str(folder / "parcels.gpkg") and named[0].row == layer.loc[2, "parcel_id"]
        assert not [p for p in (state.root / "instances").iterdir()]
        assert sorted(p.name for p in folder.iterdir()) == before
    finally:
        state.close()
