"""Shared boundaries between parcels, from their geometry or from a boundary table, cached beside the instance.

A boundary table has one row per pair of parcels that share a boundary of positive length, ``id1 < id2`` in parcel
order, and one row per parcel with an outer edge (boundary shared with no parcel), ``id1 == id2``: the layout of
Marxan's bound.dat. Lengths are in the layer's projected units (metres for CGCS2000 Gauss-Kruger).

From geometry the computation is vectorised with shapely 2 and numpy: the boundary rings are cut into segments, a
segment two parcels have with the same end points is shared whole (found by sorting), and the segments left over are
intersected with each other through an STRtree (``shapely.intersection`` in chunks, to bound memory); a parcel's
outer edge is its perimeter minus its shared lengths. (``method="rings"`` intersects the rings of every pair of
parcels whose envelopes meet instead: slower, and right for overlapping polygons too.) Parcels that touch only at a
corner share length 0 and are dropped. Vertices need not match: a T-junction (a vertex of one parcel on the edge of
another) is found too, as long as the coordinates lie on the line within floating-point precision (see `grid_size`
to snap them).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from optiland.errors import InputError, Issue
from optiland.io.tables import line, numbers, read_table

COLUMNS = ("id1", "id2", "boundary")
CHUNK = 250_000
"""Candidate pairs intersected at once (bounds the memory of the intermediate geometries)."""
CACHE_DIR = ".optiland-cache"


def _ring_pairs(geometry: np.ndarray, rings: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared length of every pair of polygons whose envelopes meet: intersection of their boundary rings."""
    left, right = shapely.STRtree(geometry).query(geometry)
    keep = left < right
    left, right = left[keep], right[keep]
    shared = np.empty(len(left))
    for start in range(0, len(left), chunk):
        part = slice(start, start + chunk)
        shared[part] = shapely.length(shapely.intersection(rings[left[part]], rings[right[part]]))
    return left, right, shared


def _segment_pairs(rings: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared lengths from the rings' segments: a segment that two parcels have with the same end points (either
    way round) is shared whole, found by sorting; the segments left over (outer edges, T-junctions, vertices that
    differ) are intersected with each other geometrically (STRtree of segments), as `_ring_pairs` would."""
    single = np.flatnonzero(shapely.get_type_id(rings) == 1)  # one ring (a LineString): no part to split off
    multi = np.setdiff1d(np.arange(len(rings)), single)
    parts, part_of = shapely.get_parts(rings[multi], return_index=True)
    coords = []
    parcel_of_point = []
    for lines, owner in ((rings[single], single), (parts, multi[part_of])):
        xy, index = shapely.get_coordinates(lines, return_index=True)
        same = index[:-1] == index[1:]  # consecutive points of one line make a segment
        coords.append(np.hstack([xy[:-1][same], xy[1:][same]]))
        parcel_of_point.append(owner[index[:-1][same]])
        del xy, index, same
    segments = np.concatenate(coords)
    parcel = np.concatenate(parcel_of_point)
    del coords, parcel_of_point
    swap = (segments[:, 0] > segments[:, 2]) | ((segments[:, 0] == segments[:, 2]) & (segments[:, 1] > segments[:, 3]))
    segments[swap] = segments[swap][:, [2, 3, 0, 1]]
    length = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    real = length > 0
    segments, parcel, length = segments[real], parcel[real], length[real]
    a, b = segments[:, :2], segments[:, 2:]
    keys = np.ascontiguousarray(segments).view(np.dtype((np.void, 32))).ravel()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    group = np.cumsum(first) - 1
    count = np.bincount(group)[group]
    pair = (count == 2) & first
    lo, hi = order[pair], order[np.flatnonzero(pair) + 1]
    distinct = parcel[lo] != parcel[hi]
    left = np.minimum(parcel[lo], parcel[hi])[distinct]
    right = np.maximum(parcel[lo], parcel[hi])[distinct]
    shared = length[lo][distinct]
    rest = order[count != 2]
    if len(rest):
        lines = shapely.linestrings(np.stack([a[rest], b[rest]], axis=1))
        u, v = shapely.STRtree(lines).query(lines)
        keep = (u < v) & (parcel[rest][u] != parcel[rest][v])
        u, v = u[keep], v[keep]
        extra = np.empty(len(u))
        for begin in range(0, len(u), chunk):
            part = slice(begin, begin + chunk)
            extra[part] = shapely.length(shapely.intersection(lines[u[part]], lines[v[part]]))
        pu, pv = parcel[rest][u], parcel[rest][v]
        left = np.concatenate([left, np.minimum(pu, pv)])
        right = np.concatenate([right, np.maximum(pu, pv)])
        shared = np.concatenate([shared, extra])
    return left, right, shared


def boundary_indices(geometry: np.ndarray, *, tolerance: float = 1e-6, grid_size: float = 0.0,
                     chunk: int = CHUNK, method: str = "segments") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared boundaries of polygons as arrays (left, right, length) of parcel positions, left <= right.

    Rows with left < right are shared boundaries longer than `tolerance`; rows with left == right are outer edges
    longer than `tolerance` (perimeter minus shared length). `grid_size` > 0 snaps coordinates to that grid first
    (shapely.set_precision), for layers whose neighbours' vertices differ by rounding. `method` "segments" (default:
    matching segments by sorting, geometry only for what is left; for polygons that do not overlap) or "rings"
    (intersect the boundary rings of every pair of polygons whose envelopes meet); both give the same table for a
    tessellation (tests/test_spatial.py).
    """
    geometry = np.asarray(geometry, dtype=object)
    n = len(geometry)
    if grid_size > 0:
        geometry = shapely.set_precision(geometry, grid_size)
    rings = shapely.boundary(geometry)
    if method == "rings":
        left, right, shared = _ring_pairs(geometry, rings, chunk)
    elif method == "segments":
        left, right, shared = _segment_pairs(rings, chunk)
    else:
        raise ValueError(f"unknown method {method!r}: segments or rings")
    code = left.astype(np.int64) * n + right
    codes, inverse = np.unique(code, return_inverse=True)
    shared = np.bincount(inverse, shared, minlength=len(codes))
    left, right = codes // n, codes % n
    touching = shared > tolerance
    left, right, shared = left[touching], right[touching], shared[touching]
    perimeter = shapely.length(rings)
    inner = np.bincount(left, shared, minlength=n) + np.bincount(right, shared, minlength=n)
    outer = perimeter - inner
    edge = np.flatnonzero(outer > max(tolerance, 0.0) + 1e-9 * perimeter.max(initial=0.0))
    return (np.concatenate([left, edge]), np.concatenate([right, edge]), np.concatenate([shared, outer[edge]]))


def boundary_table(ids: np.ndarray | pd.Series, geometry: np.ndarray, **options: float) -> pd.DataFrame:
    """The boundary table (id1, id2, boundary) of a parcel layer, ids as given (see `boundary_indices`)."""
    ids = np.asarray(ids)
    left, right, length = boundary_indices(geometry, **options)  # type: ignore[arg-type]
    return pd.DataFrame({"id1": ids[left], "id2": ids[right], "boundary": length})


def cache_path(parcel_file: Path, parcel_hash: str) -> Path:
    """Where the boundary table of a parcel file with this content hash is cached: beside the file."""
    return parcel_file.parent / CACHE_DIR / f"{parcel_file.name}.boundaries-{parcel_hash[:16]}.parquet"


def cached_boundary_table(parcel_file: Path, parcel_hash: str, ids: np.ndarray | pd.Series,
                          geometry: np.ndarray) -> tuple[pd.DataFrame, str]:
    """The boundary table from the cache if the parcel file is unchanged, else computed and cached.

    Returns the table and a note (cache hit, written, or not writable). The cache is keyed by the parcel file's
    sha256, so an edited layer never reads a stale table; it is written to a temporary file and renamed into
    place, so a reader never sees half a table.
    """
    path = cache_path(parcel_file, parcel_hash)
    if path.is_file():
        return pd.read_parquet(path), f"boundaries from cache {path}"
    table = boundary_table(ids, geometry)
    try:
        path.parent.mkdir(exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".boundaries-", suffix=".parquet", dir=path.parent)
        os.close(handle)
        table.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        note = f"boundaries computed and cached in {path}"
    except OSError as exc:  # a read-only instance folder: compute every time
        note = f"boundaries computed (not cached: {exc})"
    return table, note


def read_boundary_table(path: Path) -> pd.DataFrame:
    """Read a boundary table (CSV, Marxan bound.dat with tab, comma or space separators, or parquet)."""
    if path.suffix.lower() == ".parquet":
        if not path.is_file():
            raise InputError([Issue("boundary table not found", file=str(path))])
        table = pd.read_parquet(path)
        table.columns = [str(c).strip() for c in table.columns]
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise InputError([Issue(f"missing column (a boundary table has {', '.join(COLUMNS)})", file=str(path),
                                    column=c) for c in missing])
        table = table[list(COLUMNS)].astype(str).reset_index(drop=True)
    else:  # Excel's encodings, blank lines and error cells handled (optiland.io.tables)
        table = read_table(path, "boundary table", COLUMNS, separators=("\t", ",", ";", " "),
                           empty_ok=True)[list(COLUMNS)]
    problems: list[Issue] = []
    length = numbers(table, "boundary", str(path), problems, minimum=0.0)
    if problems:
        raise InputError(problems)
    table = table.copy()
    table["boundary"] = length.astype(float)
    table["id1"] = table["id1"].astype(str).str.strip()
    table["id2"] = table["id2"].astype(str).str.strip()
    return table


def boundary_arrays(table: pd.DataFrame, ids: np.ndarray | pd.Series,
                    file: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A boundary table as parcel positions: shared edges (left < right, lengths summed over repeated or reversed
    pairs) and the outer-edge length per parcel. Unknown ids are errors naming the line, column and id."""
    position = pd.Series(np.arange(len(ids)), index=pd.Index(np.asarray(ids).astype(str)))
    if not position.index.is_unique:
        raise InputError([Issue("duplicate parcel id", file=file, column="id")])
    problems = []
    sides = []
    for column in ("id1", "id2"):
        found = position.reindex(table[column].to_numpy()).to_numpy()
        for i in np.flatnonzero(np.isnan(found))[:20]:
            problems.append(Issue("unknown parcel id in the boundary table", file=file, row=line(table, i),
                                  column=column, value=table[column].iloc[i]))
        sides.append(found)
    if problems:
        raise InputError(problems)
    a, b = (side.astype(np.int64) for side in sides)
    length = table["boundary"].to_numpy(dtype=float)
    outer = np.bincount(a[a == b], length[a == b], minlength=len(ids))
    lo, hi, pair_len = np.minimum(a, b)[a != b], np.maximum(a, b)[a != b], length[a != b]
    pairs = pd.DataFrame({"lo": lo, "hi": hi, "len": pair_len}).groupby(["lo", "hi"], sort=True)["len"].sum()
    keep = pairs.to_numpy() > 0
    return (pairs.index.get_level_values(0).to_numpy()[keep], pairs.index.get_level_values(1).to_numpy()[keep],
            pairs.to_numpy()[keep], outer)
