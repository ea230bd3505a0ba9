"""The app's JSON API (FastAPI) over the engine; the page in ``static/`` calls it.

Security: the server binds 127.0.0.1 unless told otherwise; with a token (required for any other host) every
request must carry it (header ``X-Optiland-Token``, or the cookie the page gets from ``/?token=...``); without
one, only requests addressed to a local host name are served (a DNS-rebinding guard). No path from a request
reaches the file system: instances and jobs are named by hex keys checked against a pattern and looked up in
the app's own records; uploaded files are stored under fixed names. The page puts every string it shows into
the document as text (``textContent``), never as HTML.
"""

from __future__ import annotations

import hmac
import io
import json
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from optiland.app import toml
from optiland.app._engine import InputError, Issue, OptilandError, check_outdir, default_region, explain, load_scenario
from optiland.app.jobs import DONE, JobRunner, JobStore, progress_of
from optiland.app.project import (
    KEY_RE,
    Instance,
    atomic_write,
    build_instance,
    link_or_copy,
    load_instance,
    suitability,
)
from optiland.app.uploads import (
    UploadError,
    check_magic,
    new_upload,
    parcel_format,
    problems_of,
    receive,
    unpack_shapefile,
    write_scenario,
)
from optiland.io.tables import read_results_csv, read_table, write_csv

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "x-optiland-token"
TOKEN_COOKIE = "optiland_token"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]", "testserver"}


class ScenarioForm(BaseModel):
    """What the page's scenario form sets; blank fields keep the instance's scenario (or catalog) value."""

    model_config = ConfigDict(extra="forbid")
    income_floor: float | None = Field(None, ge=0)
    village_floors: dict[str, float] = Field(default_factory=dict)
    transfer_budget: float | None = Field(None, ge=0)
    max_transfer_share: float | None = Field(None, gt=0, le=1)
    budget: float | None = Field(None, ge=0)
    township_budgets: dict[str, float] = Field(default_factory=dict)
    diversity_cap: float | None = Field(None, gt=0, le=1)
    forest_cover_min: float | None = Field(None, ge=0, le=1)
    market: dict[str, float] = Field(default_factory=dict)
    objective: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    bounds: dict[str, list[float | None]] = Field(default_factory=dict)
    preset: str | None = None
    time_limit: float | None = Field(None, gt=0)
    mip_rel_gap: float | None = Field(None, ge=0)


class SolveRequest(BaseModel):
    """A solve: the form, and parcels locked into options (hand edits to keep)."""

    model_config = ConfigDict(extra="forbid")
    form: ScenarioForm = Field(default_factory=ScenarioForm)
    locks: dict[str, str] = Field(default_factory=dict, description="parcel_id -> option")
    label: str = Field("", max_length=200)
    parent: str | None = None


class FrontRequest(BaseModel):
    """A trade-off front (ES index against income)."""

    model_config = ConfigDict(extra="forbid")
    form: ScenarioForm = Field(default_factory=ScenarioForm)
    points: int = Field(7, ge=2, le=50)
    time_limit: float | None = Field(None, gt=0)
    gap: float | None = Field(None, ge=0)


class CheckRequest(BaseModel):
    """Hand edits of a plan: parcel_id -> index into the instance's kinds."""

    model_config = ConfigDict(extra="forbid")
    edits: dict[str, int] = Field(default_factory=dict)


class OpenUpload(BaseModel):
    """Make an instance of an upload: the region catalog, a Shapefile's encoding, column names."""

    model_config = ConfigDict(extra="forbid")
    region: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")  # None: models/defaults.toml's
    encoding: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    columns: dict[str, str] = Field(default_factory=dict)
    name: str = Field("upload", max_length=120)


def apply_form(data: dict[str, Any], form: ScenarioForm) -> dict[str, Any]:
    """The scenario as data with the form's values set (blank fields leave the scenario's own)."""
    data = json.loads(json.dumps(data))
    constraints = data.setdefault("constraints", {})
    for key in ("income_floor", "transfer_budget", "max_transfer_share", "budget", "diversity_cap",
                "forest_cover_min"):
        value = getattr(form, key)
        if value is not None:
            constraints[key] = value
    for key in ("village_floors", "township_budgets", "market"):
        if getattr(form, key):
            constraints[key] = dict(getattr(form, key))
    if form.bounds:
        constraints["bounds"] = {k: {n: v for n, v in zip(("min", "max"), pair, strict=False) if v is not None}
                                 for k, pair in form.bounds.items()}
    elif "bounds" in constraints:
        constraints["bounds"] = {k: {n: v for n, v in zip(("min", "max"), pair, strict=False) if v is not None}
                                 for k, pair in constraints["bounds"].items()}
    if form.objective:
        objective = {"minimise": "cost"} if form.objective == "cost" else {"maximise": form.objective}
        weights = form.weights or data.get("objective", {}).get("weights")
        if weights:
            objective["weights"] = weights
        data["objective"] = objective
    elif form.weights:
        data.setdefault("objective", {})["weights"] = dict(form.weights)
    solver = data.setdefault("solver", {})
    if form.preset:
        solver["preset"] = form.preset
    if form.time_limit is not None:
        solver["time_limit"] = form.time_limit
    if form.mip_rel_gap is not None:
        solver["mip_rel_gap"] = form.mip_rel_gap
    return data


class AppState:
    """The project folder, its instances, the job queue and the access token."""

    def __init__(self, root: Path, token: str | None = None, slots: int = 1, client: Any = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.instances_dir = self.root / "instances"
        self.instances_dir.mkdir(exist_ok=True)
        self.tmp = self.root / "tmp"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        self.store = JobStore(self.root / "jobs.sqlite")
        self.runner = JobRunner(self.store, self.root / "jobs", slots=slots, client=client)
        self.instances: dict[str, Instance] = {}
        self.default: str | None = None
        self._lock = threading.Lock()
        for folder in sorted(self.instances_dir.iterdir()):
            if KEY_RE.match(folder.name) and (folder / "instance.json").is_file():
                self.instances[folder.name] = load_instance(folder)

    def open(self, scenario: Path, name: str | None = None, default: bool = False) -> Instance:
        """Open (validate, copy, tile once) an instance from a scenario file given by the app's user."""
        instance = build_instance(scenario, self.instances_dir, name)
        with self._lock:
            self.instances[instance.key] = instance
            if default or self.default is None:
                self.default = instance.key
        return instance

    def instance(self, key: str) -> Instance:
        """A known instance, or 404."""
        if not KEY_RE.match(key) or key not in self.instances:
            raise HTTPException(404, f"no such instance: {key[:40]!r}")
        return self.instances[key]

    def job_folder(self, job_id: str, want_done: bool = True) -> Path:
        """A known job's folder, or 404 (409 if it has not finished)."""
        job = self.store.get(job_id) if KEY_RE.match(job_id) else None
        if job is None:
            raise HTTPException(404, f"no such job: {job_id[:40]!r}")
        if want_done and job.state != DONE:
            raise HTTPException(409, f"job {job_id} is {job.state}, not done")
        return self.runner.folder(job_id)

    def close(self) -> None:
        """Stop every job."""
        self.runner.stop()
        self.store.close()


def _error(status: int, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc) if not isinstance(exc, (InputError, UploadError)) else
                         f"{len(problems_of(exc))} problem(s)", "problems": problems_of(exc)}, status_code=status)


def _job_input(state: AppState, instance: Instance, folder: Path, form: ScenarioForm,
               locks: dict[str, str] | None = None) -> Path:
    """The job's own input folder: the instance's inputs (hard links), its scenario with the form applied, and
    a lock table for hand-edited parcels. Returns the scenario file; an invalid scenario raises InputError."""
    target = folder / "input"
    target.mkdir(parents=True)
    for f in (instance.folder / "input").iterdir():
        if f.name != "scenario.toml" and f.is_file():
            link_or_copy(f, target / f.name)
    data = apply_form(load_scenario(instance.scenario_path).to_dict(), form)
    if locks:
        index = instance.parcel_index()
        unknown = [pid for pid in locks if pid not in index]
        if unknown:
            raise InputError([Issue("no such parcel", column="parcel_id", row=pid) for pid in unknown[:20]])
        kinds = {k["option"] for k in instance.meta["kinds"]}
        bad = [(pid, opt) for pid, opt in locks.items() if opt not in kinds]
        if bad:
            raise InputError([Issue("no such option", row=pid, column="option", value=opt) for pid, opt in bad])
        rows = pd.DataFrame({"parcel_id": list(locks), "option": list(locks.values()), "lock": "in"})
        spatial = data.setdefault("spatial", {})
        if spatial.get("locks"):
            old = read_table(Path(spatial["locks"]), "lock table", ("parcel_id", "option", "lock"), empty_ok=True)
            old = old[~old["parcel_id"].isin(rows["parcel_id"])]
            rows = pd.concat([old, rows], ignore_index=True)
        write_csv(rows, target / "locks.csv")
        spatial["locks"] = "locks.csv"
    path = target / "scenario.toml"
    atomic_write(path, toml.dumps(data))
    load_scenario(path)
    return path


def _plan_codes(instance: Instance, plan_gpkg: Path) -> list[int]:
    """The plan as one kind index per parcel, in the instance's parcel order."""
    import pyogrio

    table = pyogrio.read_dataframe(plan_gpkg, layer="parcels", read_geometry=False,
                                   columns=["parcel_id", "option", "variant"])
    return _codes(instance, table)


def _codes(instance: Instance, table: pd.DataFrame) -> list[int]:
    kinds = {(k["option"], k["variant"]): i for i, k in enumerate(instance.meta["kinds"])}
    index = instance.parcel_index()
    codes = [-1] * len(index)
    for pid, option, variant in zip(table["parcel_id"].astype(str), table["option"], table["variant"],
                                    strict=True):
        at = index.get(pid)
        if at is not None:
            codes[at] = kinds.get((option, variant), -1)
    return codes


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    frame = read_results_csv(path, dtype={"village": str, "township": str})
    return json.loads(frame.to_json(orient="records"))


def create_app(state: AppState) -> FastAPI:
    """The FastAPI application over `state`."""
    app = FastAPI(title="optiland app", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.optiland = state

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if state.token:
            given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or ""
            from_query = request.query_params.get("token", "")
            ok = hmac.compare_digest(given.encode(), state.token.encode())
            if not ok and request.url.path == "/" and from_query:
                ok = hmac.compare_digest(from_query.encode(), state.token.encode())
                if ok:
                    response = await call_next(request)
                    response.set_cookie(TOKEN_COOKIE, state.token, httponly=True, samesite="strict")
                    return response
            if not ok:
                return JSONResponse({"error": "a token is required (start the page from the address the app "
                                              "printed, or send the X-Optiland-Token header)"}, status_code=401)
        else:
            header = request.headers.get("host") or ""
            host = header if header.endswith("]") else header.rsplit(":", 1)[0]
            if host not in LOCAL_HOSTS:
                return JSONResponse({"error": f"host {host!r} is not served without a token"}, status_code=403)
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path == "/":
            response.headers["Content-Security-Policy"] = (
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: "
                "blob:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'")
        return response

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return _error(422, exc)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        return _error(exc.status, exc)

    @app.exception_handler(OptilandError)
    async def optiland_error(request: Request, exc: OptilandError) -> JSONResponse:
        return _error(422, exc)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ---------------------------------------------------------------- instances

    @app.get("/api/instances")
    def instances() -> dict[str, Any]:
        return {"default": state.default,
                "instances": [{"key": k, "name": i.meta["name"], "parcels": i.meta["parcels"]}
                              for k, i in state.instances.items()]}

    @app.get("/api/instances/{key}")
    def instance_meta(key: str) -> dict[str, Any]:
        meta = dict(state.instance(key).meta)
        meta.pop("source", None)  # the server's own path is not the page's business
        return meta

    @app.get("/api/instances/{key}/parcels")
    def instance_parcels(key: str) -> FileResponse:
        return FileResponse(state.instance(key).folder / "parcels.json", media_type="application/json")

    @app.get("/api/instances/{key}/tiles.pmtiles")
    def instance_tiles(key: str) -> FileResponse:
        return FileResponse(state.instance(key).folder / "tiles.pmtiles", media_type="application/octet-stream")

    @app.get("/api/instances/{key}/areas")
    def instance_areas(key: str) -> FileResponse:
        return FileResponse(state.instance(key).folder / "areas.geojson", media_type="application/geo+json")

    @app.get("/api/instances/{key}/suitability/{option}")
    def instance_suitability(key: str, option: str) -> dict[str, Any]:
        return suitability(state.instance(key), option)

    @app.get("/api/instances/{key}/explain/{parcel_id}")
    def instance_explain(key: str, parcel_id: str) -> dict[str, Any]:
        instance = state.instance(key)
        if parcel_id not in instance.parcel_index():
            raise HTTPException(404, f"no such parcel: {parcel_id[:80]!r}")
        prepared = instance.prepared()
        table = explain((prepared.catalog, prepared.problem.parcels), parcel_id)
        parcel = prepared.problem.parcels.set_index("parcel_id").loc[parcel_id]
        attributes = {k: parcel[k] for k in ("village", "township", "land_use", "slope_deg", "grade", "red_line",
                                              "basic_farmland", "area_mu", *prepared.catalog.site_attributes)
                      if k in parcel.index}
        return {"parcel_id": parcel_id, "attributes": json.loads(pd.Series(attributes).to_json()),
                "options": json.loads(table.to_json(orient="records"))}

    @app.post("/api/instances/{key}/scenario")
    def scenario_toml(key: str, form: ScenarioForm) -> dict[str, Any]:
        instance = state.instance(key)
        data = apply_form(load_scenario(instance.scenario_path).to_dict(), form)
        text = toml.dumps(data)
        folder = Path(tempfile.mkdtemp(dir=state.tmp))
        try:
            for f in (instance.folder / "input").iterdir():
                if f.name != "scenario.toml":
                    os.symlink(f, folder / f.name)
            (folder / "scenario.toml").write_text(text, encoding="utf-8")
            load_scenario(folder / "scenario.toml")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return {"toml": text}

    # ---------------------------------------------------------------- jobs

    @app.post("/api/instances/{key}/solve")
    def solve(key: str, request: SolveRequest) -> dict[str, Any]:
        instance = state.instance(key)

        def prepare(folder: Path) -> list[str]:
            scenario = _job_input(state, instance, folder, request.form, request.locks)
            return ["solve", str(scenario), "--out", str(folder / "out"), "--verbose"]

        label = request.label or ("re-optimised around edits" if request.locks else "plan")
        job_id = state.runner.submit("solve", key, [], label=label, parent=request.parent, prepare=prepare)
        return {"job": job_id}

    @app.post("/api/instances/{key}/front")
    def front(key: str, request: FrontRequest) -> dict[str, Any]:
        instance = state.instance(key)

        def prepare(folder: Path) -> list[str]:
            scenario = _job_input(state, instance, folder, request.form)
            args = ["pareto", str(scenario), "--out", str(folder / "out"), "--objectives",
                    "ecosystem_services,income", "--points", str(request.points)]
            if request.time_limit:
                args += ["--time-limit", str(request.time_limit)]
            if request.gap is not None:
                args += ["--gap", str(request.gap)]
            return args

        return {"job": state.runner.submit("front", key, [], label=f"front ({request.points} points)",
                                           prepare=prepare)}

    @app.get("/api/jobs")
    def jobs(instance: str | None = None) -> dict[str, Any]:
        return {"jobs": [j.as_dict() for j in state.store.all(instance)]}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        folder = state.job_folder(job_id, want_done=False)
        record = state.store.get(job_id)
        assert record is not None
        return {**record.as_dict(), "progress": progress_of(folder / "log.txt")}

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        state.job_folder(job_id, want_done=False)
        return {"cancelled": state.runner.cancel(job_id)}

    @app.get("/api/jobs/{job_id}/scenario.toml")
    def job_scenario(job_id: str) -> Response:
        folder = state.job_folder(job_id, want_done=False)
        return Response((folder / "input" / "scenario.toml").read_text(encoding="utf-8"),
                        media_type="application/toml",
                        headers={"Content-Disposition": 'attachment; filename="scenario.toml"'})

    # ---------------------------------------------------------------- plans

    def plan_instance(job_id: str) -> tuple[Instance, Path]:
        folder = state.job_folder(job_id)
        record = state.store.get(job_id)
        assert record is not None
        if record.kind != "solve":
            raise HTTPException(409, f"job {job_id} is a {record.kind}, not a plan")
        return state.instance(record.instance), folder / "out"

    @app.get("/api/plans/{job_id}")
    def plan(job_id: str) -> dict[str, Any]:
        instance, out = plan_instance(job_id)
        run = json.loads((out / "run.json").read_text(encoding="utf-8"))
        binding = [n[len("binding: "):] for n in run.get("notes", []) if n.startswith("binding: ")]
        return {"job": job_id, "codes": _plan_codes(instance, out / "plan.gpkg"),
                "villages": _csv_rows(out / "villages.csv"), "townships": _csv_rows(out / "townships.csv"),
                "run": {"status": run.get("status"), "objective": run.get("objective"), "totals": run.get("totals"),
                        "times": run.get("times"), "binding": binding[0] if binding else None,
                        "front": run.get("front")}}

    @app.post("/api/plans/{job_id}/check")
    def check(job_id: str, request: CheckRequest) -> dict[str, Any]:
        instance, out = plan_instance(job_id)
        import pyogrio

        parcels = pyogrio.read_dataframe(out / "plan.gpkg", layer="parcels", read_geometry=False,
                                         columns=["parcel_id", "option", "variant"])
        parcels["parcel_id"] = parcels["parcel_id"].astype(str)
        kinds = instance.meta["kinds"]
        at = {pid: i for i, pid in enumerate(parcels["parcel_id"])}
        unknown = [pid for pid in request.edits if pid not in at]
        if unknown:
            raise HTTPException(404, {"error": "no such parcel", "parcels": unknown[:50]})
        for pid, k in request.edits.items():
            if not 0 <= k < len(kinds):
                raise HTTPException(422, f"no such option index {k} for parcel {pid}")
            parcels.loc[at[pid], ["option", "variant"]] = [kinds[k]["option"], kinds[k]["variant"]]
        villages = read_results_csv(out / "villages.csv", dtype={"village": str})
        folder = Path(tempfile.mkdtemp(dir=state.tmp))
        try:  # the edited plan as a results folder, checked by `optiland check`'s own code
            pyogrio.write_dataframe(parcels, folder / "plan.gpkg", layer="parcels")
            write_csv(villages[["village", "herd", "ranger_posts"]], folder / "villages.csv")
            run = json.loads((out / "run.json").read_text(encoding="utf-8"))
            for key in ("objective", "totals", "status"):  # the solve's record is not the edited plan's
                run.pop(key, None)
            (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
            violations = check_outdir(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return {"edits": len(request.edits),
                "violations": [{"family": v.family, "key": str(v.key), "message": v.message,
                                "amount": float(v.amount)} for v in violations]}

    @app.get("/api/plans/{job_id}/export.zip")
    def export(job_id: str) -> Response:
        _, out = plan_instance(job_id)
        inputs = state.runner.folder(job_id) / "input"
        buffer = io.BytesIO()
        run = json.loads((out / "run.json").read_text(encoding="utf-8"))
        run["scenario_path"] = "input/scenario.toml"  # the folder carries its scenario and inputs
        run.setdefault("notes", []).append("exported by optiland app with its scenario and inputs in input/")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(out.rglob("*")):  # the results, and reports written into the folder by `report`
                if f.is_file() and f.name != "run.json" and not any(p.startswith(".") for p in f.relative_to(
                        out).parts):
                    zf.write(f, f"plan/{f.relative_to(out).as_posix()}")
            zf.writestr("plan/run.json", json.dumps(run, indent=2, ensure_ascii=False))
            zones = state.runner.folder(job_id) / "zones"
            if zones.is_dir():
                for f in sorted(zones.rglob("*")):
                    if f.is_file():
                        zf.write(f, f"zones/{f.relative_to(zones).as_posix()}")
            for f in sorted(inputs.iterdir()):
                if f.is_file():
                    zf.write(f, f"plan/input/{f.name}")
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="plan-{job_id}.zip"'})

    @app.post("/api/plans/{job_id}/extras/{what}")
    def extras(job_id: str, what: str) -> dict[str, Any]:
        """Township reports (zh or en, written into the plan folder by `optiland report`) or the plan's
        ecological-space zones (`optiland zone`), as a job; the export zip then carries them."""
        instance, out = plan_instance(job_id)
        commands = {"report-zh": ["report", str(out), "--lang", "zh"],
                    "report-en": ["report", str(out), "--lang", "en"],
                    "zones": ["zone", str(out), "--out", str(state.runner.folder(job_id) / "zones")]}
        if what not in commands:
            raise HTTPException(404, f"no such extra: {what[:40]!r} (known: {', '.join(commands)})")
        return {"job": state.runner.submit("extra", instance.key, commands[what], label=what, parent=job_id)}

    @app.get("/api/compare")
    def compare(a: str, b: str) -> dict[str, Any]:
        ia, out_a = plan_instance(a)
        ib, out_b = plan_instance(b)
        if ia.key != ib.key:
            raise HTTPException(409, "the two plans are of different instances")
        codes_a, codes_b = _plan_codes(ia, out_a / "plan.gpkg"), _plan_codes(ib, out_b / "plan.gpkg")
        area = json.loads((ia.folder / "parcels.json").read_text(encoding="utf-8"))["area_mu"]
        changed = [i for i, (x, y) in enumerate(zip(codes_a, codes_b, strict=True)) if x != y]
        run_a = json.loads((out_a / "run.json").read_text(encoding="utf-8"))
        run_b = json.loads((out_b / "run.json").read_text(encoding="utf-8"))
        totals = [{"name": k, "a": run_a["totals"].get(k), "b": run_b["totals"].get(k)}
                  for k in dict.fromkeys([*run_a["totals"], *run_b["totals"]])]
        totals.insert(0, {"name": "objective", "a": run_a["objective"]["value"], "b": run_b["objective"]["value"]})
        va = read_results_csv(out_a / "villages.csv", dtype={"village": str})
        vb = read_results_csv(out_b / "villages.csv", dtype={"village": str})
        both = va[["village", "floor", "income_per_capita_before", "income_per_capita_after"]].merge(
            vb[["village", "income_per_capita_after"]], on="village", suffixes=("_a", "_b"))
        return {"a": a, "b": b, "codes_a": codes_a, "codes_b": codes_b, "changed": len(changed),
                "changed_area_mu": round(sum(area[i] for i in changed), 3), "totals": totals,
                "villages": json.loads(both.to_json(orient="records"))}

    # ---------------------------------------------------------------- fronts

    @app.get("/api/fronts/{job_id}")
    def front_data(job_id: str) -> dict[str, Any]:
        folder = state.job_folder(job_id)
        record = state.store.get(job_id)
        assert record is not None
        if record.kind != "front":
            raise HTTPException(409, f"job {job_id} is a {record.kind}, not a front")
        instance = state.instance(record.instance)
        out = folder / "out"
        run = json.loads((out / "run.json").read_text(encoding="utf-8"))
        table = read_results_csv(out / "front.csv")
        plans = pd.read_parquet(out / "plans.parquet")
        point_col = "point" if "point" in plans.columns else "plan_id"
        parcel_rows = plans[plans["kind"] == "parcel"].rename(columns={"id": "parcel_id"})
        codes = {str(p): _codes(instance, rows) for p, rows in parcel_rows.groupby(point_col)}
        return {"job": job_id, "points": json.loads(table.to_json(orient="records")), "codes": codes,
                "knee": run.get("knee"), "ideal": run.get("ideal"), "objectives": ["ecosystem_services", "income"]}

    @app.post("/api/fronts/{job_id}/pick/{point}")
    def pick(job_id: str, point: int) -> dict[str, Any]:
        folder = state.job_folder(job_id)
        record = state.store.get(job_id)
        assert record is not None
        if record.kind != "front":
            raise HTTPException(409, f"job {job_id} is a {record.kind}, not a front")

        def prepare(target: Path) -> list[str]:
            (target / "input").mkdir()
            for f in (folder / "input").iterdir():
                link_or_copy(f, target / "input" / f.name)
            return ["solve", str(target / "input" / "scenario.toml"), "--from-front", str(folder / "out"),
                    "--pick", str(point), "--out", str(target / "out"), "--verbose"]

        return {"job": state.runner.submit("solve", record.instance, [], label=f"front point {point}",
                                           parent=job_id, prepare=prepare)}

    # ---------------------------------------------------------------- uploads

    @app.post("/api/uploads")
    def upload_start() -> dict[str, Any]:
        folder = new_upload(state.root / "uploads")
        return {"upload": folder.name[len("up-"):]}

    def upload_folder(upload: str) -> Path:
        if not upload.replace("_", "").isalnum() or len(upload) > 40:
            raise HTTPException(404, "no such upload")
        folder = state.root / "uploads" / f"up-{upload}"
        if not folder.is_dir():
            raise HTTPException(404, "no such upload")
        return folder

    @app.put("/api/uploads/{upload}/parcels")
    async def upload_parcels(upload: str, request: Request, filename: str) -> dict[str, Any]:
        folder = upload_folder(upload)
        kind = parcel_format(filename)
        for old in folder.glob("parcels.*"):
            old.unlink()
        raw = folder / f".incoming.{kind}"
        declared = request.headers.get("content-length")
        await receive(request.stream(), raw, int(declared) if declared and declared.isdigit() else None)
        try:
            check_magic(raw, kind, filename)
            if kind == "zip":
                unpack_shapefile(raw, folder, filename)
                raw.unlink()
                stored = "parcels.shp"
            else:
                stored = {"gpkg": "parcels.gpkg", "geojson": "parcels.geojson", "parquet": "parcels.parquet"}[kind]
                os.replace(raw, folder / stored)
        finally:
            raw.unlink(missing_ok=True)
        return {"stored": stored}

    @app.put("/api/uploads/{upload}/villages")
    async def upload_villages(upload: str, request: Request) -> dict[str, Any]:
        folder = upload_folder(upload)
        declared = request.headers.get("content-length")
        await receive(request.stream(), folder / "villages.csv",
                      int(declared) if declared and declared.isdigit() else None)
        return {"stored": "villages.csv"}

    @app.post("/api/uploads/{upload}/open")
    def upload_open(upload: str, request: OpenUpload) -> dict[str, Any]:
        folder = upload_folder(upload)
        parcels = [p.name for p in folder.glob("parcels.*") if p.suffix in (".gpkg", ".geojson", ".parquet",
                                                                            ".shp")]
        problems = []
        if not parcels:
            problems.append(Issue("no parcel layer uploaded yet", file="parcels"))
        if not (folder / "villages.csv").is_file():
            problems.append(Issue("no villages table uploaded yet", file="villages.csv"))
        if problems:
            raise InputError(problems)
        region = request.region or default_region()
        scenario = write_scenario(folder, parcels[0], region, request.encoding, request.columns)
        instance = state.open(scenario, name=request.name)
        shutil.rmtree(folder, ignore_errors=True)
        return {"instance": instance.key}

    return app


def make_state(project: Path, token: str | None = None, slots: int = 1, client: Any = None) -> AppState:
    """The app's state over a project folder; jobs on a Dask `client` if one is given, else local processes."""
    return AppState(project, token=token, slots=slots, client=client)
