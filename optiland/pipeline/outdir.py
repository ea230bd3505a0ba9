"""Output folders that never destroy what optiland did not write, swapped into place whole.

Every folder optiland writes holds a marker file, ``.optiland`` (JSON: kind, version, time, and the size of every file
written). ``--out`` may name a folder that does not exist, an empty folder, or a folder holding that marker and only
the files it lists (unchanged in size), optiland subfolders with their own marker (``report/``) and optiland's
caches. Anything else (an instance's own folder, a folder with a notes file, a results folder the user edited) is
refused before any work is done, naming the foreign entries and ``--force``.

A write goes to a fresh sibling folder ``.NAME.optiland-new-PID-XXXX``; the marker is written last, so a folder with
a marker is complete. The new folder then takes the place of the old in one step: on Linux renameat2 with
RENAME_EXCHANGE swaps the two (at every instant ``--out`` holds the old or the new folder), and the old one is deleted
afterwards. Where the system has no exchange, the old folder is first renamed to ``.NAME.optiland-old-PID-XXXX`` and
the new one renamed into place; a process killed between the two renames leaves ``--out`` missing for a moment, and
the next optiland writer (or `recover`) puts back the complete new folder, or else the old one. Temporary folders of
processes that are no longer running are removed (stale); modes follow the umask (no 0700 from mkdtemp).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyogrio.errors import DataLayerError, DataSourceError

from optiland.errors import OptilandError

MARKER = ".optiland"
CACHES = frozenset({".optiland-cache"})
SHOWN = 5
LEGACY_AGE = 3600.0  # seconds: a temporary folder of the earlier scheme (no pid in its name) older than this is stale
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutDirError(OptilandError):
    """An output folder optiland may not write or replace (the command exits 2, as for bad input)."""


class WriteError(OptilandError):
    """Writing the outputs failed (a full disk, a file-size limit); the folder at OUT is as it was."""

    exit_code = 1


_FORCED: ContextVar[frozenset[Path]] = ContextVar("optiland_forced_out", default=frozenset())


def allow_replacing(*paths: str | Path) -> None:
    """Let this command's writers replace these folders whatever they hold (the command's --force); replaces the
    set given before, so each command states its own."""
    _FORCED.set(frozenset(Path(os.path.abspath(Path(p).expanduser())) for p in paths))


# ---------------------------------------------------------------------------------------------------------- marker


def _listing(folder: Path) -> dict[str, int]:
    """Every file under `folder` (relative POSIX path -> size), the marker excepted."""
    sizes: dict[str, int] = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if relative != MARKER:
                sizes[relative] = path.lstat().st_size
    return sizes


def write_marker(folder: Path, kind: str, live: tuple[str, ...] = ()) -> None:
    """Mark `folder` as optiland's: its kind and every file in it with its size. `live`: top-level names a growing
    folder (a sweep's) may hold whatever their content."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("optiland")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        release = "unknown"
    record: dict[str, Any] = {"optiland": release, "kind": kind,
                              "created": datetime.now(UTC).isoformat(timespec="seconds"),
                              "files": {} if live else _listing(folder)}
    if live:
        record["live"] = list(live)
    path = folder / MARKER
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of an optiland folder, or None."""
    try:
        record = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("files"), dict) else None


def foreign_entries(folder: Path) -> list[str]:
    """What in `folder` optiland did not write: relative paths, ' (changed)' after a file whose size changed."""
    entries = sorted(os.listdir(folder))
    record = read_marker(folder) if entries else None
    if record is None:
        return [name + ("/" if (folder / name).is_dir() else "") for name in entries]
    live = set(record.get("live", ()))
    files: dict[str, int] = record["files"]
    listed = {f.split("/", 1)[0] for f in files}
    foreign: list[str] = []
    for name in entries:
        path = folder / name
        real_dir = path.is_dir() and not path.is_symlink()
        if name == MARKER or name in CACHES or name in live:
            continue
        if name in listed and real_dir:
            for relative, size in _listing(path).items():
                key = f"{name}/{relative}"
                if key not in files:
                    foreign.append(key)
                elif files[key] != size:
                    foreign.append(f"{key} (changed)")
        elif name in listed:
            if files.get(name) != path.lstat().st_size:
                foreign.append(f"{name} (changed)")
        elif real_dir and read_marker(path) is not None:  # an optiland folder inside (a solve's report/)
            foreign += [f"{name}/{inner}" for inner in foreign_entries(path)]
        else:
            foreign.append(name + ("/" if real_dir else ""))
    return foreign


# ------------------------------------------------------------------------------------------------ swap and recovery

_TEMP = re.compile(r"^\.(?P<name>.+)\.optiland-(?P<role>new|old)-(?P<pid>\d+)-[0-9a-f]+$")
_LEGACY_TMP = re.compile(r"^\.(?P<name>.+)\.tmp-[A-Za-z0-9_]+$")
_LEGACY_OLD = re.compile(r"^\.(?P<name>.+)\.old-(?P<pid>\d+)$")


def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc before 2.28, musl without it
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def _rename2(source: Path, target: Path, flags: int) -> None:
    """renameat2(2); OSError with the errno on failure, NotImplementedError where the system or file system lacks
    the flag."""
    if _RENAMEAT2 is None:
        raise NotImplementedError("renameat2")
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        raise NotImplementedError(f"renameat2 flag {flags}: {os.strerror(code)}")
    raise OSError(code, os.strerror(code), str(source), None, str(target))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _temp_name(out: Path, role: str) -> Path:
    return out.parent / f".{out.name}.optiland-{role}-{os.getpid()}-{secrets.token_hex(4)}"


def _temporaries(out: Path) -> list[tuple[Path, str, int | None]]:
    """Temporary folders beside `out` that belong to it: (path, 'new' | 'old' | 'legacy-new' | 'legacy-old', pid)."""
    found = []
    try:
        names = os.listdir(out.parent)
    except OSError:
        return []
    for name in names:
        for pattern, role in ((_TEMP, None), (_LEGACY_OLD, "legacy-old"), (_LEGACY_TMP, "legacy-new")):
            match = pattern.match(name)
            if match and match.group("name") == out.name:
                pid = match.groupdict().get("pid")
                found.append((out.parent / name, role or match.group("role"), int(pid) if pid else None))
                break
    return found


def recover(out_dir: str | Path) -> str | None:
    """Finish or undo a swap a killed process left half done, and remove stale temporary folders beside OUT.

    When OUT is missing and a dead writer left a complete new folder (its marker written), that folder is moved into
    place; else its old folder is put back. Returns what was done, or None."""
    out = Path(os.path.abspath(out_dir))
    done = None
    stale = [(p, role, pid) for p, role, pid in _temporaries(out)
             if (pid is not None and not _alive(pid))
             or (role == "legacy-new" and time.time() - p.lstat().st_mtime > LEGACY_AGE)]
    if not os.path.lexists(out):
        complete = [p for p, role, _ in stale if role in ("new", "legacy-new") and read_marker(p) is not None]
        olds = [p for p, role, _ in stale if role in ("old", "legacy-old")]
        for candidate, label in ((sorted(complete, key=lambda p: p.stat().st_mtime), "the complete new folder"),
                                 (sorted(olds, key=lambda p: p.stat().st_mtime), "the previous folder")):
            if candidate:
                try:
                    os.rename(candidate[-1], out)
                except OSError:
                    continue
                done = f"{out}: a swap interrupted by a killed process was finished ({label} put in place)"
                break
    for path, _, _ in stale:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
    return done


def _swap(new: Path, out: Path) -> Path | None:
    """Put `new` at `out`; returns where the old folder now is (to delete after), or None if there was none."""
    for _ in range(100):  # concurrent writers: each try sees the other's folder in place, never a missing one
        try:
            _rename2(new, out, _RENAME_NOREPLACE)
            return None
        except FileExistsError:
            try:
                _rename2(new, out, _RENAME_EXCHANGE)
                return new  # `new` now names the old folder
            except FileNotFoundError:  # removed in between: try the no-replace rename again
                continue
        except NotImplementedError:
            return _swap_by_renames(new, out)
    raise OutDirError(f"{out}: could not put the new folder in place (other writers kept replacing it)")


def _swap_by_renames(new: Path, out: Path) -> Path | None:
    """The fallback without renameat2: the old folder aside, then the new one in; `recover` mends a kill between."""
    for _ in range(100):
        old = None
        if os.path.lexists(out):
            old = _temp_name(out, "old")
            try:
                os.rename(out, old)
            except FileNotFoundError:
                continue
        try:
            os.rename(new, out)
            return old
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                if old is not None:
                    os.rename(old, out)
                raise
            # another writer put its folder in place between our renames: ours goes in next round
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    raise OutDirError(f"{out}: could not put the new folder in place (other writers kept replacing it)")


# ------------------------------------------------------------------------------------------------------ public API


def check_out(out_dir: str | Path, *, force: bool = False, what: str = "--out") -> Path:
    """Refuse, before any work, an output folder optiland may not write or replace; returns its absolute path.

    Refused: a path under a file, a file, a folder whose parent cannot be written, and (unless `force`) a folder
    holding anything optiland did not write. Also finishes a swap a killed process left half done."""
    out = Path(os.path.abspath(Path(out_dir).expanduser()))
    force = force or out in _FORCED.get()
    if out.parent.is_dir():
        recover(out)
    for parent in [out, *out.parents]:
        if os.path.lexists(parent):
            break
    else:  # pragma: no cover - the root exists
        parent = Path("/")
    if parent != out:
        if not parent.is_dir():
            raise OutDirError(f"{what} {out_dir}: {parent} is a file, so no folder can be made under it")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutDirError(f"{what} {out_dir}: cannot create folders in {parent} (permission denied)")
        return out
    for _ in range(20):  # another writer may swap the folder while it is looked at: look again
        try:
            before = os.lstat(out)
        except FileNotFoundError:  # another writer is between its two renames (systems without rename-exchange)
            return out
        if stat.S_ISLNK(before.st_mode):
            raise OutDirError(f"{what} {out_dir} is a symbolic link; name the folder itself")
        if not stat.S_ISDIR(before.st_mode):
            raise OutDirError(f"{what} {out_dir} is a file; {what} names a folder")
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise OutDirError(f"{what} {out_dir}: cannot replace it, {out.parent} is not writable")
        if force:
            return out
        try:
            foreign = foreign_entries(out)
            after = os.lstat(out)
        except FileNotFoundError:
            continue
        if (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev):
            break
    else:
        raise OutDirError(f"{what} {out_dir}: other writers keep replacing it; try again")
    if foreign:
        shown = ", ".join(foreign[:SHOWN]) + (f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else "")
        reason = ("is not an optiland output folder" if read_marker(out) is None
                  else "holds files optiland did not write")
        raise OutDirError(f"{what} {out_dir} {reason} ({shown}); writing there would delete them. Choose a "
                          f"new or empty folder, or add --force to replace it anyway")
    return out


def write_atomically(out_dir: str | Path, write: Callable[[Path], None], *, kind: str = "results",
                     force: bool = False, commit: Callable[[], None] | None = None) -> Path:
    """Run `write(folder)` into a fresh folder beside OUT, mark it, then swap it in for OUT in one step.

    On any failure (or interruption) before the swap, OUT is as it was. `commit`, if given, runs after the swap
    (e.g. a database transaction's commit): if it fails, the swap is undone, so both writes happen or neither.
    `check_out` is applied first (a folder holding what optiland did not write is refused unless `force`)."""
    out = check_out(out_dir, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = _temp_name(out, "new")
    os.mkdir(new)  # mode 0777 less the umask, like any folder the user makes
    try:
        write(new)
        write_marker(new, kind)
        old = _swap(new, out)
    except (OSError, DataSourceError, DataLayerError) as exc:  # a full disk or a size limit (GDAL's own errors)
        shutil.rmtree(new, ignore_errors=True)
        reason = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
        where = getattr(exc, "filename", None)
        raise WriteError(f"writing {out_dir} failed, nothing there changed: {reason}"
                         + (f" ({where})" if where else "") + _space_hint(out)) from exc
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if commit is not None:
        try:
            commit()
        except BaseException:
            _undo(out, old)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def _space_hint(out: Path) -> str:
    try:
        free = shutil.disk_usage(out.parent).free
    except OSError:
        return ""
    return f"; {free / 1e6:,.0f} MB free on that disk" if free < 1e9 else ""


def _undo(out: Path, old: Path | None) -> None:
    """Put the previous folder back after a failed commit (or remove the new one if there was none)."""
    if old is None:
        shutil.rmtree(out, ignore_errors=True)
        return
    try:
        _rename2(old, out, _RENAME_EXCHANGE)
        shutil.rmtree(old, ignore_errors=True)
    except NotImplementedError:
        aside = _temp_name(out, "new")
        os.rename(out, aside)
        os.rename(old, out)
        shutil.rmtree(aside, ignore_errors=True)


def claim_folder(out_dir: str | Path, kind: str, live: tuple[str, ...], *, force: bool = False) -> Path:
    """A folder written in place as work goes on (a sweep's runs/): checked as `check_out`, created if needed and
    marked, its `live` top-level entries allowed whatever their content."""
    out = check_out(out_dir, force=force)
    out.mkdir(parents=True, exist_ok=True)
    record = read_marker(out)
    if record is None or record.get("kind") != kind or set(record.get("live", ())) != set(live):
        write_marker(out, kind, live)
    return out
