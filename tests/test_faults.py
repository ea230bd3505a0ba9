"""Faults: output folders under kills, concurrent writers, a full disk and foreign files; no orphan processes.

Each test here failed on the code before issue 23's fixes (the docstrings say how)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optiland.cli import app
from optiland.pipeline import outdir
from optiland.pipeline.outdir import MARKER, OutDirError, check_out, recover, write_atomically

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _solve(scenario: Path, out: Path, *options: str) -> object:
    return runner.invoke(app, ["solve", str(scenario), "--out", str(out), *options])


def _text(result: object) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def _writer(tag: str):  # noqa: ANN202 - a test helper
    def write(folder: Path) -> None:
        (folder / "a.txt").write_text(tag)
        (folder / "sub").mkdir()
        (folder / "sub" / "b.txt").write_text(tag * 3)
    return write


# ------------------------------------------------------------------------------------------- --out and its owner


def test_solve_refuses_the_instance_folder(tiny_scenario: Path) -> None:
    """Before: `solve self/scenario.toml --out self` exited 0 and left only the four result files."""
    folder = tiny_scenario.parent
    (folder / "notes.txt").write_text("my notes")
    before = sorted(os.listdir(folder))
    result = _solve(tiny_scenario, folder)
    assert result.exit_code == 2, _text(result)
    assert "--force" in _text(result) and "not an optiland output folder" in _text(result)
    assert sorted(os.listdir(folder)) == before
    assert (folder / "notes.txt").read_text() == "my notes"


def test_resolve_keeps_what_the_user_added(tiny_scenario: Path, tmp_path: Path) -> None:
    """Before: solving again into a results folder deleted a notes file and a user's report/ folder in it."""
    out = tmp_path / "out"
    assert _solve(tiny_scenario, out).exit_code == 0
    assert (out / MARKER).is_file()
    assert _solve(tiny_scenario, out).exit_code == 0  # its own earlier results are replaced
    (out / "report").mkdir()
    (out / "report" / "mine.md").write_text("by hand")
    result = _solve(tiny_scenario, out)
    assert result.exit_code == 2 and "report/" in _text(result) and "--force" in _text(result)
    assert (out / "report" / "mine.md").read_text() == "by hand"
    (out / "villages.csv").write_text("edited")
    result = _solve(tiny_scenario, out)
    assert result.exit_code == 2 and "villages.csv (changed)" in _text(result)
    result = _solve(tiny_scenario, out, "--force")
    assert result.exit_code == 0, _text(result)
    assert not (out / "report").exists() and (out / "villages.csv").read_text() != "edited"


def test_report_inside_results_is_optilands(tiny_scenario: Path, tmp_path: Path) -> None:
    """A report optiland wrote into a results folder is its own: solving again replaces the folder with it."""
    out = tmp_path / "out"
    assert _solve(tiny_scenario, out, "--report", "--lang", "en").exit_code == 0
    assert outdir.foreign_entries(out) == []
    assert (out / "report-en" / "index.html").is_file()  # English: report-en/, beside the Chinese report/
    assert _solve(tiny_scenario, out).exit_code == 0
    assert not (out / "report-en").exists()


@pytest.mark.parametrize("under", [False, True])
def test_out_a_file_or_under_a_file(tiny_scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    under: bool) -> None:
    """Before: `--out afile.txt` hid the file as `.afile.txt.old-PID`; `--out afile.txt/x` solved, then died in a
    traceback. Now both are refused before anything is read or solved."""
    afile = tmp_path / "afile.txt"
    afile.write_text("keep")
    import optiland.pipeline.run as run

    def no_solving(*args: object, **kwargs: object) -> None:
        raise AssertionError("prepared though --out cannot be written")

    monkeypatch.setattr(run, "prepare", no_solving)
    result = _solve(tiny_scenario, afile / "x" if under else afile)
    assert result.exit_code == 2, _text(result)
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert "is a file" in _text(result)
    assert afile.read_text() == "keep" and sorted(os.listdir(tmp_path)) == ["afile.txt", "tiny"]


def test_every_writer_refuses_a_foreign_folder(tiny_scenario: Path, tmp_path: Path) -> None:
    """pareto, transition, zone, generate, import and report go through the same check."""
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    commands = [
        ["pareto", str(tiny_scenario), "--out", str(foreign), "--points", "2"],
        ["transition", str(tiny_scenario), "--out", str(foreign)],
        ["calibrate-blm", str(tiny_scenario), "--out", str(foreign)],
        ["zone", str(tmp_path), "--out", str(foreign)],
        ["generate", "--parcels", "10", "--out", str(foreign)],
        ["import", "marxan", str(tmp_path / "input.dat"), "--out", str(foreign)],
    ]
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "--force" in _text(result), (command, _text(result))
    report = tmp_path / "plan" / "report"
    report.mkdir(parents=True)
    (report / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["report", str(tmp_path / "plan")])
    assert result.exit_code == 2 and "--force" in _text(result), _text(result)
    assert (foreign / "keep.txt").read_text() == "mine" and (report / "keep.txt").read_text() == "mine"


# -------------------------------------------------------------------------------------------------- the swap


def test_modes_follow_the_umask(tmp_path: Path) -> None:
    """Before: result folders were made by mkdtemp, mode 0700 whatever the umask."""
    old = os.umask(0o027)
    try:
        out = write_atomically(tmp_path / "out", _writer("x"))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o750
    assert (out / "a.txt").stat().st_mode & 0o777 == 0o640


def test_stale_temporaries_are_cleaned(tmp_path: Path) -> None:
    """Before: `.out.tmp-*` folders of killed writers stayed for ever."""
    write_atomically(tmp_path / "out", _writer("x"))
    dead = _dead_pid()
    for name in (f".out.optiland-new-{dead}-abcd", f".out.optiland-old-{dead}-abcd", ".out.tmp-x1y2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("stale")
    legacy = tmp_path / ".out.tmp-x1y2"
    os.utime(legacy, (time.time() - 2 * outdir.LEGACY_AGE,) * 2)
    live = tmp_path / f".out.optiland-new-{os.getppid()}-abcd"  # a running process's: kept
    live.mkdir()
    write_atomically(tmp_path / "out", _writer("x"))
    assert sorted(os.listdir(tmp_path)) == sorted(["out", live.name])


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from optiland.pipeline import outdir
    out, phase = Path(sys.argv[1]), sys.argv[2]
    if phase.startswith("fallback"):
        outdir._RENAMEAT2 = None
    real_rename, real_rmtree = os.rename, outdir.shutil.rmtree
    calls = []
    def rename(a, b):
        real_rename(a, b)
        calls.append(b)
        if phase == "fallback-between" and len(calls) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    def rmtree(path, **kw):
        if phase.endswith("after-swap"):
            os.kill(os.getpid(), signal.SIGKILL)
        real_rmtree(path, **kw)
    os.rename = rename
    outdir.shutil.rmtree = rmtree
    def write(folder):
        (folder / "a.txt").write_text("new")
        if phase == "writing":
            os.kill(os.getpid(), signal.SIGKILL)
    outdir.write_atomically(out, write)
""")


@pytest.mark.parametrize("phase", ["writing", "after-swap", "fallback-between", "fallback-after-swap"])
def test_killed_writer_leaves_old_or_new(tmp_path: Path, phase: str) -> None:
    """A writer killed at each phase leaves the old or the new folder at --out (a kill between the fallback's two
    renames is mended by the next run), and its temporary folders are cleaned by the next run. Before: a kill
    between the two renames left neither, for good."""
    out = tmp_path / "out"
    write_atomically(out, _writer("old"))
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out), phase], cwd=ROOT)
    assert done.returncode == -signal.SIGKILL
    if phase == "fallback-between":
        assert not out.exists()
    else:
        assert (out / "a.txt").read_text() in ("old", "new")
    assert (out / "a.txt").exists() or recover(out) is not None
    expected = "old" if phase == "writing" else "new"
    check_out(out)
    assert (out / "a.txt").read_text() == expected
    assert os.listdir(tmp_path) == ["out"] and outdir.foreign_entries(out) == []


@pytest.mark.parametrize("fallback", [False, True])
def test_concurrent_writers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallback: bool) -> None:
    """Four writers replacing one folder 25 times each, a reader watching: every write succeeds and (with
    rename-exchange) the reader never finds --out missing or incomplete. Before: ENOTEMPTY about once in 300."""
    if fallback:
        monkeypatch.setattr(outdir, "_RENAMEAT2", None)
    out = tmp_path / "out"
    write_atomically(out, _writer("start"))
    errors: list[BaseException] = []
    missing = []
    stop = threading.Event()

    def read(folder: int, name: str) -> str:
        handle = os.open(name, os.O_RDONLY, dir_fd=folder)
        try:
            return os.read(handle, 1000).decode()
        finally:
            os.close(handle)

    def watch() -> None:
        while not stop.is_set():
            try:
                folder = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                missing.append("missing")
                continue
            try:  # one folder's files: never a mix of two writers'
                if read(folder, "sub/b.txt") != read(folder, "a.txt") * 3:
                    missing.append("mixed")
            except FileNotFoundError:  # the folder was swapped out and is being deleted
                pass
            finally:
                os.close(folder)

    def write(worker: int) -> None:
        try:
            for i in range(25):
                write_atomically(out, _writer(f"{worker}-{i}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    assert not errors, errors
    assert os.listdir(tmp_path) == ["out"] and outdir.foreign_entries(out) == []
    if not fallback:
        assert "mixed" not in missing
        assert outdir._RENAMEAT2 is None or not missing, f"{len(missing)} reads found --out missing"


FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    from optiland.cli import app
    app(["solve", sys.argv[1], "--out", sys.argv[2]])
""")


def test_full_disk_changes_nothing(tiny_scenario: Path, tmp_path: Path) -> None:
    """A file-size limit (as a full disk) while writing: exit 1 with a message, the old results untouched, no
    temporary folder left. Before: a traceback."""
    out = tmp_path / "out"
    assert _solve(tiny_scenario, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(tiny_scenario), str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stderr + done.stdout
    assert "Traceback" not in done.stderr and "nothing there changed" in done.stderr + done.stdout
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(os.listdir(tmp_path)) == ["out", "tiny"]


def test_check_out_messages(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutDirError, match="is a file"):
        check_out(tmp_path / "f")
    with pytest.raises(OutDirError, match="so no folder can be made"):
        check_out(tmp_path / "f" / "g" / "h")
    (tmp_path / "empty").mkdir()
    assert check_out(tmp_path / "empty") == tmp_path / "empty"


# ------------------------------------------------------------------------------------------------------ orphans

HARD_SOLVE = textwrap.dedent("""
    import sys
    import numpy as np
    import scipy.sparse as sp
    from optiland.mip import solver
    solver.IN_PROCESS_COLUMNS = 0  # always the forked child with its watchdog
    rng = np.random.default_rng(1)
    a = rng.integers(0, 100, size=(5, 50)).astype(float)  # a market-split instance: HiGHS works on it for hours
    rhs = np.floor(a.sum(axis=1) / 2)
    lp = solver.MatrixLP(c=np.zeros(50), A=sp.csr_matrix(a), row_lower=rhs, row_upper=rhs, col_lower=np.zeros(50),
                         col_upper=np.ones(50), integer=np.ones(50, dtype=bool))
    solver.solve_lp(lp, solver.SolverOptions(time_limit=600, strategy="mip", presolve="off"))
""")

POOL = textwrap.dedent("""
    import time
    from optiland.pipeline import decompose
    decompose.run_task = time.sleep  # each township task sleeps instead of solving
    decompose._run_all([600.0, 600.0], workers=2, dask_address=None)
""")


def _children_left(script: str, sig: int, expected: int, *args: str,
                   ready: Callable[[], bool] = lambda: True) -> list[object]:
    """Start `script` in a process, wait until it has `expected` descendants (and `ready()`), kill it with `sig`;
    the descendants still alive (not zombies) 5 s later."""
    psutil = pytest.importorskip("psutil")
    parent = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT)
    try:
        watched = psutil.Process(parent.pid)
        deadline = time.monotonic() + 120  # a ceiling against hangs, not what the test measures
        children: list[psutil.Process] = []
        while time.monotonic() < deadline and (len(children) < expected or not ready()):
            children = watched.children(recursive=True)
            time.sleep(0.05)
        assert len(children) >= expected, f"the script started {len(children)} processes"
        time.sleep(0.5)  # the child is past its start and into its work
        os.kill(parent.pid, sig)
        parent.wait(timeout=60)
        end = time.monotonic() + 5
        left = children
        while True:
            left = [c for c in left if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
            if not left or time.monotonic() > end:
                break
            time.sleep(0.05)
        for child in left:
            child.kill()
        return left
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_solver_child_dies_with_its_parent(sig: int) -> None:
    """Before: after SIGKILL or SIGTERM of the solving process, its HiGHS child ran on for ever (re-parented to
    init, ignoring its time limit)."""
    assert _children_left(HARD_SOLVE, sig, 1) == []


def test_township_workers_die_with_their_parent() -> None:
    """Before: SIGKILL of a decomposed solve (or a sweep) left its pool workers running."""
    assert _children_left(POOL, signal.SIGKILL, 2) == []


SWEEP_POOL = textwrap.dedent("""
    import runpy, sys
    from optiland.analysis import sweep_run
    sweep_run.execute = runpy.run_path  # each run is a script that says it started, then sleeps
    list(sweep_run._run_processes([sys.argv[1]] * 2, 2, {"mp_context": "spawn"}))
""")
SLEEPER = textwrap.dedent("""
    import os, pathlib, sys, time
    pathlib.Path(os.path.dirname(__file__), f"{os.getpid()}.ready").touch()
    time.sleep(600)
""")


def test_sweep_workers_die_with_their_parent(tmp_path: Path) -> None:
    """Before: SIGKILL of `optiland sweep` left 2 pool workers of ~360 MB running."""
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    left = _children_left(SWEEP_POOL, signal.SIGKILL, 2, str(tmp_path / "sleeper.py"),
                          ready=lambda: len(list(tmp_path.glob("*.ready"))) >= 2)
    assert left == []


# ------------------------------------------------------------------------------------------------ resumed sweeps


def test_resumed_sweep_refuses_changed_inputs(tiny_scenario: Path, tmp_path: Path) -> None:
    """Before: a sweep killed after 3 runs, villages.csv edited, then resumed: rc 0, 'resumed 3', no warning."""
    import optiland.analysis.sweep as sw
    from optiland.errors import OptilandError

    floor = "constraints.income_floor"
    design = sw.one_at_a_time({floor: 3000}, {floor: [3100, 3200, 3300, 3400]})
    out = tmp_path / "sweep"
    finished: list[str] = []

    def kill_after_three(frame: object) -> None:
        finished.append("run")
        if len(finished) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sw.sweep(tiny_scenario, design, executor="serial", out_dir=out, progress=False, on_run=kill_after_three)
    assert len(list((out / "runs").glob("*.parquet"))) == 3 and (out / MARKER).is_file()
    villages = tiny_scenario.parent / "villages.csv"
    villages.write_text(villages.read_text().replace("2000.0", "2100.0"))
    with pytest.raises(OptilandError, match=r"villages\.path changed since they were solved"):
        sw.sweep(tiny_scenario, design, executor="serial", out_dir=out, progress=False)
    catalog_copy = tmp_path / "catalog"
    import shutil

    from optiland.testing import SMALL_CATALOG

    shutil.copytree(SMALL_CATALOG, catalog_copy)
    text = tiny_scenario.read_text().replace(SMALL_CATALOG.as_posix(), catalog_copy.as_posix())
    villages.write_text(villages.read_text().replace("2100.0", "2000.0"))
    tiny_scenario.write_text(text)
    with pytest.raises(OptilandError, match="another sweep"):  # the scenario itself changed: another sweep
        sw.sweep(tiny_scenario, design, executor="serial", out_dir=out, progress=False)


def test_sweep_folder_refuses_foreign_files(tiny_scenario: Path, tmp_path: Path) -> None:
    import optiland.analysis.sweep as sw
    from optiland.errors import OptilandError

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    design = sw.one_at_a_time({"constraints.income_floor": 3000}, {"constraints.income_floor": [3100]})
    with pytest.raises(OptilandError, match="notes.txt"):
        sw.sweep(tiny_scenario, design, executor="serial", out_dir=out, progress=False)
    assert sorted(os.listdir(out)) == ["notes.txt"]


# ------------------------------------------------------------------------------------------ input text in outputs


def test_report_escapes_names_from_the_input(tmp_path: Path) -> None:
    """Before: a village named <script>...</script> was raw in the Markdown report (HTML was escaped)."""
    from tests.conftest import TINY_PARCELS, TINY_VILLAGES, write_instance

    evil = "<script>alert(1)</script>"
    villages = TINY_VILLAGES.assign(village=[evil, "V2"], township=["T1 <b>x</b>", "T1 <b>x</b>"])
    parcels = TINY_PARCELS.assign(village=TINY_PARCELS["village"].replace("V1", evil))
    scenario = write_instance(tmp_path / "i", parcels=parcels, villages=villages)
    out = tmp_path / "out"
    result = _solve(scenario, out, "--report", "--lang", "en")
    assert result.exit_code == 0, _text(result)
    pages = list((out / "report-en").glob("*.md")) + list((out / "report-en").glob("*.html"))
    assert pages
    assert any("&lt;script&gt;" in p.read_text(encoding="utf-8") for p in pages)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<b>x</b>" not in text, page.name


def test_catalog_formulas_are_bounded() -> None:
    """Before: a catalog formula `9**9**9` ran for over 20 s (a Python integer of 370 million digits)."""
    import numpy as np

    from optiland.io.expressions import MAX_LENGTH, ExpressionError, evaluate

    names = {"x": np.arange(3.0)}
    for text, match in (("9**9**9", "exponent above"), ("x ** 1000", "exponent above"), ('"ab" * 99', "text"),
                        ("1+" * MAX_LENGTH + "1", "characters"), ("(" * 500 + "1" + ")" * 500, "terms|parse")):
        with pytest.raises(ExpressionError, match=match):
            evaluate(text, names, {}, "catalog.toml generate.draws")
    assert np.allclose(evaluate("x ** 2 + 2 ** 0.5", names, {}, "here"), np.arange(3.0) ** 2 + 2 ** 0.5)


def test_password_redaction_and_prefix() -> None:
    """Before: `?password=P&sslmode=disable` redacted to `?password=***` (the sslmode swallowed); a 55-character
    --prefix silently truncated table names."""
    from optiland.io.dburl import redact, without_password

    assert redact("postgresql://ana@db/x?password=P&sslmode=disable") == \
        "postgresql://ana@db/x?password=***&sslmode=disable"
    assert redact("postgresql://ana:s3cret@db/x?sslmode=disable&password=P") == \
        "postgresql://ana:***@db/x?sslmode=disable&password=***"
    assert redact("host=db password='a b' dbname=x") == "host=db password=*** dbname=x"
    saved = os.environ.get("PGPASSWORD")
    try:
        assert without_password("postgresql://ana@db/x?password=P%40&sslmode=disable") == \
            "postgresql://ana@db/x?sslmode=disable"
        assert os.environ["PGPASSWORD"] == "P@"
    finally:
        if saved is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = saved


def test_generate_bad_counts_is_a_message(tmp_path: Path) -> None:
    """Before: `generate --parcels 10` died in a traceback (ValueError)."""
    result = runner.invoke(app, ["generate", "--parcels", "10", "--out", str(tmp_path / "g")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "need at least" in _text(result) and not (tmp_path / "g").exists()


KILLED_SOLVE = textwrap.dedent("""
    import os, pathlib, sys, time
    from optiland.mip import solver
    from optiland.io import inputs
    scenario, out, phase, ready = sys.argv[1:5]

    def stall():  # the phase has begun: say so, then take "for ever"
        pathlib.Path(ready, str(os.getpid())).touch()
        time.sleep(600)

    if phase == "read":
        real_read = inputs.read_parcels
        inputs.read_parcels = lambda *a, **k: (stall(), real_read(*a, **k))[1]
    elif phase == "solve":
        solver.IN_PROCESS_COLUMNS = 0  # the watched child, as on a real instance
        real_child = solver._child
        solver._child = lambda *a, **k: (stall(), real_child(*a, **k))[1]
    elif phase == "write":
        from optiland.pipeline import results
        real_write = results.Plan._write_into
        results.Plan._write_into = lambda self, folder: (real_write(self, folder), stall())
    from optiland.cli import app
    app(["solve", scenario, "--out", out])
""")


@pytest.mark.parametrize("phase", ["read", "solve", "write"])
def test_solve_killed_at_each_phase(tiny_scenario: Path, tmp_path: Path, phase: str) -> None:
    """`optiland solve` killed by SIGKILL while reading, while its HiGHS child solves, and while writing: the
    previous results stay whole at --out, no process is left behind, and the next run cleans up and succeeds."""
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "out"
    assert _solve(tiny_scenario, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    ready = tmp_path / "ready"
    ready.mkdir()
    process = subprocess.Popen([sys.executable, "-c", KILLED_SOLVE, str(tiny_scenario), str(out), phase,
                                str(ready)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120  # a ceiling against hangs
        while time.monotonic() < deadline and not any(ready.iterdir()):
            time.sleep(0.05)
        assert any(ready.iterdir()), f"the {phase} phase never began"
        family = psutil.Process(process.pid).children(recursive=True)
        process.kill()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    end = time.monotonic() + 5
    while time.monotonic() < end and any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in family):
        time.sleep(0.05)
    assert not [c for c in family if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert _solve(tiny_scenario, out).exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["out", "ready", "tiny"]
