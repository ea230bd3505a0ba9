"""Uploads: a parcel layer and a villages table, checked before they become an instance.

Each file arrives as the raw body of one request and is streamed into a fresh folder under the project's
``uploads/`` with a fixed name (``parcels.<ext>``, ``villages.csv``); the client's file name only chooses the
extension among the known ones. The size is capped while streaming (and by Content-Length before); a zipped
Shapefile is opened in memory and refused if any member is absolute, climbs with ``..``, is a link, is not a
Shapefile part, or unpacks larger than the cap; its parts are written under fixed names. The instance is then
read through `optiland validate`'s code (optiland.run.prepare), and every problem is returned by file, parcel,
column and value.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any

from optiland.app import toml
from optiland.app._engine import InputError, Issue

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""The largest file accepted (and the largest a zip may unpack to)."""
PARCEL_FORMATS = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".parquet": "parquet",
                  ".geoparquet": "parquet", ".zip": "zip"}
SHAPEFILE_PARTS = {".shp", ".shx", ".dbf", ".prj", ".cpg"}
MAX_ZIP_MEMBERS = 50
MAGIC = {"gpkg": b"SQLite format 3\x00", "parquet": b"PAR1", "zip": b"PK\x03\x04"}


class UploadError(Exception):
    """An upload refused; `status` is the HTTP status, `problems` what is wrong."""

    def __init__(self, status: int, problems: list[Issue]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.status = status
        self.problems = problems


def new_upload(uploads: Path) -> Path:
    """A fresh folder for one upload."""
    uploads.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="up-", dir=uploads))


def parcel_format(filename: str) -> str:
    """The format of a parcel layer from its name's extension, or an UploadError listing the known ones."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix not in PARCEL_FORMATS:
        raise UploadError(415, [Issue("not a parcel layer format this app reads (GeoPackage .gpkg, GeoJSON "
                                      ".geojson, GeoParquet .parquet, a zipped Shapefile .zip)", file=filename,
                                      value=suffix or "(no extension)")])
    return PARCEL_FORMATS[suffix]


async def receive(body: AsyncIterator[bytes], target: Path, declared: int | None,
                  limit: int = MAX_UPLOAD_BYTES) -> int:
    """Stream a request body into `target`, refusing it (413) once it passes `limit` bytes."""
    if declared is not None and declared > limit:
        raise UploadError(413, [Issue(f"the file is {declared:,} bytes; the limit is {limit:,}",
                                      file=target.name)])
    size = 0
    with open(target, "wb") as handle:
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                handle.close()
                target.unlink(missing_ok=True)
                raise UploadError(413, [Issue(f"the file is larger than the limit of {limit:,} bytes",
                                              file=target.name)])
            handle.write(chunk)
    if size == 0:
        target.unlink(missing_ok=True)
        raise UploadError(400, [Issue("the file is empty", file=target.name)])
    return size


def check_magic(path: Path, kind: str, shown: str) -> None:
    """The file starts as its format does (GeoPackage, Parquet, zip) or parses as JSON text (GeoJSON)."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if kind in MAGIC and not head.startswith(MAGIC[kind]):
        raise UploadError(415, [Issue(f"the file is not a {kind} file (its first bytes do not match)", file=shown)])
    if kind == "geojson" and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise UploadError(415, [Issue("the file is not GeoJSON (it does not start with '{')", file=shown)])


def unpack_shapefile(archive: Path, folder: Path, shown: str, limit: int = MAX_UPLOAD_BYTES) -> Path:
    """Unpack a zipped Shapefile's parts under fixed names (parcels.shp, ...); refuse anything else."""
    problems: list[Issue] = []
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise UploadError(415, [Issue("not a readable zip file", file=shown)]) from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise UploadError(400, [Issue(f"the zip has {len(members)} members; at most {MAX_ZIP_MEMBERS}",
                                          file=shown)])
        parts: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in members:
            name = info.filename
            path = PurePosixPath(name.replace("\\", "/"))
            mode = info.external_attr >> 16
            if name.startswith(("/", "\\")) or path.is_absolute() or ".." in path.parts or ":" in name:
                problems.append(Issue("a path outside the archive's folder is not allowed", file=shown, row=name))
                continue
            if stat.S_ISLNK(mode):
                problems.append(Issue("a symbolic link is not allowed", file=shown, row=name))
                continue
            if info.is_dir() or path.name.startswith(".") or path.parts[0] == "__MACOSX":
                continue
            suffix = path.suffix.lower()
            if suffix not in SHAPEFILE_PARTS:
                continue  # read-me files and the like are left out, never written
            if suffix in parts:
                problems.append(Issue(f"more than one {suffix} file: upload one Shapefile per zip", file=shown,
                                      row=name))
                continue
            parts[suffix] = info
            total += info.file_size
        if total > limit:
            problems.append(Issue(f"the Shapefile unpacks to {total:,} bytes; the limit is {limit:,}", file=shown))
        for needed in (".shp", ".shx", ".dbf"):
            if needed not in parts and not problems:
                problems.append(Issue(f"the zip has no {needed} file (a Shapefile needs .shp, .shx and .dbf)",
                                      file=shown))
        if problems:
            raise UploadError(400, problems)
        for suffix, info in parts.items():
            with zf.open(info) as source, open(folder / f"parcels{suffix}", "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    return folder / "parcels.shp"


def write_scenario(folder: Path, parcels_file: str, region: str, encoding: str | None,
                   columns: dict[str, str] | None) -> Path:
    """The uploaded instance's scenario.toml (paths relative to the upload folder)."""
    data: dict[str, Any] = {"parcels": {"path": parcels_file, "id_column": "parcel_id"},
                            "villages": {"path": "villages.csv"},
                            "catalog": {"region": region}}
    if encoding:
        data["parcels"]["encoding"] = encoding
    if columns:
        data["parcels"]["columns"] = columns
    path = folder / "scenario.toml"
    path.write_text(toml.dumps(data), encoding="utf-8")
    return path


def problems_of(exc: Exception) -> list[dict[str, Any]]:
    """An engine error as rows: message, file, id, column, value."""
    if isinstance(exc, InputError):
        return [{"message": p.message, "file": Path(p.file).name if p.file else None,
                 "row": None if p.row is None else str(p.row), "column": p.column,
                 "value": None if p.value is None else str(p.value)} for p in exc.problems]
    if isinstance(exc, UploadError):
        return [{"message": p.message, "file": p.file, "row": p.row, "column": p.column,
                 "value": None if p.value is None else str(p.value)} for p in exc.problems]
    return [{"message": str(exc), "file": None, "row": None, "column": None, "value": None}]
