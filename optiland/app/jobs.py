"""Background jobs: each one the `optiland` command itself in a child process of its own session.

A job is `python -m optiland solve|pareto ...` with the job's scenario, so the app solves through the same code
as the command line, and its results folder is written by that code whole or not at all. Jobs wait in a queue
(`slots` run at once) and their records (kind, state, times, exit code, message) live in SQLite
(``jobs.sqlite`` in the project folder). Cancel sends SIGTERM to the job's process group (the command and its
HiGHS child) and SIGKILL 1 s later if anything is left, so the solver stops within 2 s; results folders the
command had not moved into place yet (``.out.tmp-*``) are removed.

Progress is read from the command's output: HiGHS's log (``--verbose``) gives each solve's best bound, best plan
and gap as they improve; the command's own lines name the stage.

On a Dask cluster (`optiland app --dask ADDRESS`, or `--dask local` for a LocalCluster) each job is one task that
runs the same child process on a worker (`run_on_worker`), which kills it when the app sets the job's Dask Event;
the job folders must be on a file system the workers share. Local child processes are the default: a running Dask
task cannot be interrupted (Future.cancel only drops queued ones), so cancel needs the process per job anyway, and
on one 2-core machine a LocalCluster adds its start-up and worker processes and gives no more parallel solves than
`slots` child processes do (README, "Sensitivity sweeps": Dask 1.33x against local processes 1.59x on 8 runs).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
EXIT_MEANING = {0: "done", 1: "failed", 2: "bad input", 3: "infeasible",
                4: "time limit reached: the best plan found, with its bound and gap",
                5: "time limit reached before any plan: nothing known about feasibility",
                130: "interrupted"}
"""The command's exit codes (optiland.errors, README "Statuses and exit codes")."""
WROTE_PLAN = (0, 4)
"""Exit codes with which the command wrote its results (a time-limited plan is a result too)."""
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_HIGHS_ROW = re.compile(r"^\s*[A-Z]?\s+\d+\s+\d+\s+\d+\s+[\d.]+%\s+(\S+)\s+(\S+)\s+(\S+)")


@dataclass
class Job:
    """One job's record."""

    id: str
    kind: str
    instance: str
    state: str
    created: float
    started: float | None
    finished: float | None
    exit_code: int | None
    message: str
    label: str
    parent: str | None

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return dict(self.__dict__)


class JobStore:
    """Job records in SQLite; every change is one transaction."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("""CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, instance TEXT NOT NULL, state TEXT NOT NULL,
            created REAL NOT NULL, started REAL, finished REAL, exit_code INTEGER, message TEXT NOT NULL DEFAULT '',
            label TEXT NOT NULL DEFAULT '', parent TEXT, args TEXT NOT NULL)""")

    def add(self, kind: str, instance: str, args: list[str], label: str, parent: str | None,
            job_id: str | None = None) -> str:
        """A new queued job; returns its id."""
        job_id = job_id or secrets.token_hex(8)
        with self._lock:
            self._db.execute("INSERT INTO jobs (id, kind, instance, state, created, label, parent, args) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (job_id, kind, instance, QUEUED, time.time(), label, parent, "\x1f".join(args)))
        return job_id

    def update(self, job_id: str, **values: Any) -> None:
        """Set some fields of one job."""
        names = ", ".join(f"{k} = ?" for k in values)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {names} WHERE id = ?", (*values.values(), job_id))

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self._lock:
            row = self._db.execute("SELECT id, kind, instance, state, created, started, finished, exit_code, "
                                   "message, label, parent FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job(*row) if row else None

    def args(self, job_id: str) -> list[str]:
        """The command-line arguments of a job."""
        with self._lock:
            row = self._db.execute("SELECT args FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row[0].split("\x1f") if row else []

    def all(self, instance: str | None = None) -> list[Job]:
        """Jobs, newest first."""
        query = ("SELECT id, kind, instance, state, created, started, finished, exit_code, message, label, parent "
                 "FROM jobs")
        params: tuple[Any, ...] = ()
        if instance:
            query += " WHERE instance = ?"
            params = (instance,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created DESC", params).fetchall()
        return [Job(*r) for r in rows]

    def next_queued(self) -> Job | None:
        """The oldest queued job."""
        with self._lock:
            row = self._db.execute("SELECT id, kind, instance, state, created, started, finished, exit_code, "
                                   "message, label, parent FROM jobs WHERE state = ? ORDER BY created LIMIT 1",
                                   (QUEUED,)).fetchone()
        return Job(*row) if row else None

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def progress_of(log: Path, tail_bytes: int = 16384) -> dict[str, Any]:
    """The last HiGHS progress row (best bound, best plan, gap), the number of solves started, and the last
    line of the command's own output, read from the job's log."""
    if not log.is_file():
        return {}
    size = log.stat().st_size
    with open(log, "rb") as handle:
        handle.seek(max(0, size - tail_bytes))
        text = handle.read().decode("utf-8", errors="replace")
    lines = [_ANSI.sub("", line).strip() for line in text.replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    out: dict[str, Any] = {}
    for line in reversed(lines):
        match = _HIGHS_ROW.match(line)
        if match:
            bound, best, gap = match.groups()
            out.update(bound=bound, best=best, gap=gap)
            break
    with open(log, "rb") as handle:  # solves so far: count the MIP headers over the whole log (small files)
        whole = handle.read().decode("utf-8", errors="replace") if size < 50_000_000 else ""
    out["solves"] = whole.count("Solving MIP model") + whole.count("Solving LP without presolve") \
        + whole.count("Solving the presolved LP")
    own = [line for line in lines if not line.startswith(("Src", "Nodes", "B&B", "J ", "L ", "B ", "T ", "H ",
                                                          "Presolv", "Solving", "Running HiGHS", "Coefficient",
                                                          "Matrix", "Cost", "Bound", "RHS", "Model"))
           and not _HIGHS_ROW.match(line)]
    if own:
        out["line"] = own[-1][:300]
    return out


class JobRunner:
    """Runs queued jobs, `slots` at a time, each as `python -m optiland ...` in its own session."""

    def __init__(self, store: JobStore, jobs_dir: Path, slots: int = 1,
                 on_finish: Callable[[Job], None] | None = None, client: Any = None) -> None:
        self.client = client
        self.store = store
        self.jobs_dir = jobs_dir
        self.slots = slots
        self.on_finish = on_finish
        self._procs: dict[str, Any] = {}  # job id -> Popen, or _DaskJob on a Dask cluster
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        for job in store.all():  # jobs left running by a previous app: their processes are gone with it
            if job.state in (RUNNING, QUEUED):
                self._clean(job.id)
                store.update(job.id, state=CANCELLED, finished=time.time(), message="the app stopped before it ended")
        self._thread = threading.Thread(target=self._loop, name="optiland-jobs", daemon=True)
        self._thread.start()

    def folder(self, job_id: str) -> Path:
        """The job's folder."""
        return self.jobs_dir / job_id

    def submit(self, kind: str, instance: str, args: list[str], label: str = "", parent: str | None = None,
               prepare: Callable[[Path], list[str]] | None = None) -> str:
        """Queue a job. `prepare(folder)` writes its inputs into the job's folder and returns the command's
        arguments (after `python -m optiland`); without it, `args` are used as they are."""
        job_id = secrets.token_hex(8)
        folder = self.folder(job_id)
        folder.mkdir(parents=True)
        if prepare is not None:
            try:
                args = prepare(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        self.store.add(kind, instance, args, label, parent, job_id=job_id)
        self._wake.set()
        return job_id

    def cancel(self, job_id: str) -> bool:
        """Stop a queued or running job; True if it was stopped. The solver is gone within 2 s."""
        job = self.store.get(job_id)
        if job is None or job.state not in (QUEUED, RUNNING):
            return False
        with self._lock:
            proc = self._procs.get(job_id)
            self.store.update(job_id, state=CANCELLED, finished=time.time(), message="cancelled")
        if isinstance(proc, _DaskJob):
            proc.stop()
        elif proc is not None:
            _kill_group(proc)
        self._clean(job_id)
        return True

    def _clean(self, job_id: str) -> None:
        """Remove what a stopped command had not moved into place (its temporary results folders)."""
        folder = self.folder(job_id)
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp-*"):
                shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
            for old in folder.glob(".*.old-*"):
                shutil.rmtree(old, ignore_errors=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._reap()
            with self._lock:
                free = self.slots - len(self._procs)
            while free > 0:
                job = self.store.next_queued()
                if job is None:
                    break
                try:
                    self._start(job)
                except Exception as exc:  # noqa: BLE001 (one job's fault must not stop the queue)
                    self.store.update(job.id, state=FAILED, finished=time.time(), message=f"not started: {exc}")
                free -= 1
            self._wake.wait(0.2)
            self._wake.clear()

    def _start(self, job: Job) -> None:
        folder = self.folder(job.id)
        with self._lock:
            current = self.store.get(job.id)
            if current is None or current.state != QUEUED:
                return
            args = self.store.args(job.id)
            if self.client is not None:
                handle: Any = _DaskJob(self.client, job.id, args, folder)
            else:
                handle = _popen(args, folder)
            self._procs[job.id] = handle
            self.store.update(job.id, state=RUNNING, started=time.time())

    def _reap(self) -> None:
        with self._lock:
            finished = [(job_id, proc) for job_id, proc in self._procs.items() if proc.poll() is not None]
            for job_id, _ in finished:
                del self._procs[job_id]
        for job_id, proc in finished:
            job = self.store.get(job_id)
            if job is None or job.state == CANCELLED:
                continue
            code = proc.returncode
            state = DONE if code in WROTE_PLAN else FAILED
            message = EXIT_MEANING.get(code, f"exit {code}")
            if code != 0:
                last = _last_error(self.folder(job_id) / "log.txt")
                message = f"{message}: {last}" if last else message
            self.store.update(job_id, state=state, finished=time.time(), exit_code=code, message=message)
            self._clean(job_id)
            if self.on_finish is not None:
                job = self.store.get(job_id)
                if job is not None:
                    try:
                        self.on_finish(job)
                    except Exception:  # noqa: BLE001 (a callback's fault must not stop the queue)
                        pass

    def running(self) -> list[str]:
        """Ids of the jobs whose process runs."""
        with self._lock:
            return list(self._procs)

    def stop(self) -> None:
        """Cancel every job and stop the queue."""
        self._stop.set()
        self._wake.set()
        for job in self.store.all():
            if job.state in (QUEUED, RUNNING):
                self.cancel(job.id)
        self._thread.join(timeout=5)


_SHIM = """import ctypes, os, runpy, signal, sys
try:  # Linux: die with the app (PR_SET_PDEATHSIG), even if the app is killed with SIGKILL
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv[1]):  # the app died before the line above
    sys.exit(1)
sys.argv = ["optiland"] + sys.argv[2:]
runpy.run_module("optiland", run_name="__main__", alter_sys=True)
"""
"""`python -m optiland ARGS`, but killed when the app's process dies (no orphan solve left running)."""


def _popen(args: list[str], folder: Path) -> subprocess.Popen[bytes]:
    """`python -m optiland ARGS` in its own session, output to the job's log, its pid in the job's folder. The
    child imports this very optiland (PYTHONPATH), not whichever an environment would pick, and dies with the app
    (parent-death signal on Linux; its solver child dies with it, optiland.mip.solver)."""
    import optiland

    package_root = str(Path(optiland.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160", "PYTHONPATH": path}
    with open(folder / "log.txt", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", _SHIM, str(os.getpid()), *args], cwd=folder, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    (folder / "pid").write_text(str(proc.pid), encoding="ascii")
    return proc


def run_on_worker(args: list[str], folder: str, cancel_event: str) -> int:
    """On a Dask worker: the job's command as a child process, stopped (its process group killed) as soon as the
    app sets the Dask Event `cancel_event`. Returns the command's exit code. The job's folder must be on a file
    system the worker shares with the app (as for `optiland sweep --dask`)."""
    from distributed import Event

    proc = _popen(args, Path(folder))
    event = Event(cancel_event)
    while proc.poll() is None:
        if event.wait(timeout=0.2):
            _kill_group(proc)
            return -15
    return int(proc.returncode)


class _DaskJob:
    """A job whose command runs on a Dask worker (`run_on_worker`); `poll()` and `returncode` as Popen's."""

    def __init__(self, client: Any, job_id: str, args: list[str], folder: Path) -> None:
        from distributed import Event

        self.cancel_event = f"optiland-cancel-{job_id}"
        self.event = Event(self.cancel_event, client=client)
        self.future = client.submit(run_on_worker, args, str(folder), self.cancel_event, pure=False,
                                    key=f"optiland-job-{job_id}")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self.future.done():
            try:
                self.returncode = int(self.future.result())
            except Exception:  # noqa: BLE001 (a lost worker or a task error: the job failed)
                self.returncode = 1
        return self.returncode

    def stop(self) -> None:
        """Ask the worker to kill the command's process group; wait for it (at most 2 s)."""
        self.event.set()
        deadline = time.monotonic() + 2.0
        while not self.future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.future.done():
            self.future.cancel()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL after 1 s to whatever is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group: HiGHS's child too, even if the command has exited
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        pass


def _last_error(log: Path) -> str:
    """The command's error message (the lines from the last 'error:')."""
    if not log.is_file():
        return ""
    text = _ANSI.sub("", log.read_text(encoding="utf-8", errors="replace"))
    at = text.rfind("error:")
    if at < 0:
        return ""
    return " ".join(text[at + len("error:"):].split())[:2000]
