r"""The vectorised backend: the model of optiland.model.formulation built directly as a scipy.sparse matrix.

:class:`MatrixBackend` implements the Backend protocol (optiland.model.backend) without Pyomo. It creates the same
columns
and rows, with the same coefficients, bounds and names, as the Pyomo formulation compiled by
``optiland.model.backend.compile_model`` (tests/test_matrix.py proves it family by family); the order of rows and
columns
may differ. The mathematics lives in optiland.model.formulation, one function per family: each block below names the
function it mirrors and only says how it is laid out.

How it stays vectorised. Every family's rows are keyed by parcel, village, township, a (township, option) group, a
variant or a (village, variant) pair. For each allowed row a and family, at most one entry lies in the block's
x-columns: row ``key[a]``, coefficient ``coef[a]`` (dropped when 0, as ``formulation._lin`` drops it). The entries are
put in row order with one permutation per key (allowed rows grouped by parcel are expanded into village and township
order without sorting them); the few entries in the village and segment columns (herd, posts, z, option_area) are
merged in behind them. Nothing loops over parcels or allowed rows in Python.

Names follow Pyomo's (``pyomo.core.base.component_namer.index_repr``) and the compiler's sense suffix, e.g.
``income_floor[3]>=``, ``diversity[0,'fruit.orah']<=``, ``x[17]``, ``z[2,'fruit.orah',1]``; names of the per-parcel
rows and the x columns are formatted only when read.

Also built here: the elastic model of the infeasibility diagnosis (``build(problem, elastic=True)``), targets changed
in place (``update``: row bounds, and the share and cap coefficients of transfer_share and diversity), bounds on
named expressions (``set_bound``) and the block of the Pareto adapter (``front_lp``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyomo.core.base.component_namer import index_repr

from optiland.mip.solver import INF, MatrixLP, SolveResult, SolverOptions, Status, highs_version, solve_lp
from optiland.model.formulation import structure_key
from optiland.model.problem import PlanningProblem
from optiland.model.solution import Solution

COLGEN_COLUMNS = 20_000
"""From this many columns, the matrix backend's strategy "auto" is column generation (optiland.mip.colgen: the LP
over the few attractive variants per parcel, its Lagrangian bound over every column tightened by the villages'
integer bound, a plan by repair and the MIP over the generated columns). The demo's index MIP (77,141 columns):
the LP relaxation, repair and full MIP took 143 s at 0.01% (five MIPs), column generation proves the gap in about a
second (benchmarks/township.py)."""


class Names(Sequence[str]):
    """Row or column names in blocks: ``prefix[i]suffix`` for i in range(count) (formatted when read), or a list."""

    def __init__(self) -> None:
        self._blocks: list[tuple[int, Callable[[int], str]]] = []
        self._ends: list[int] = []

    def add_range(self, prefix: str, count: int, suffix: str = "") -> None:
        """Names prefix[0]suffix ... prefix[count-1]suffix."""
        self._append(count, lambda i: f"{prefix}[{i}]{suffix}")

    def add_list(self, names: Sequence[str]) -> None:
        """Explicit names."""
        names = list(names)
        self._append(len(names), names.__getitem__)

    def _append(self, count: int, get: Callable[[int], str]) -> None:
        if count:
            self._blocks.append((count, get))
            self._ends.append((self._ends[-1] if self._ends else 0) + count)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        block = int(np.searchsorted(self._ends, i, side="right"))
        start = self._ends[block - 1] if block else 0
        return self._blocks[block][1](i - start)

    def __iter__(self) -> Iterator[str]:
        for count, get in self._blocks:
            for i in range(count):
                yield get(i)

    def extended(self, names: Sequence[str]) -> Names:
        """A copy with more names at the end."""
        out = Names()
        out._blocks, out._ends = list(self._blocks), list(self._ends)
        out.add_list(names)
        return out


Part = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Entries (row, column, value) of a block, sorted by row; within a row in the order they are to appear."""


def _merge(n_rows: int, n_cols: int, parts: Sequence[Part]) -> sp.csr_matrix:
    """One CSR block from parts each sorted by row; a row holds the entries of part 0, then part 1, ... ."""
    counts = [np.bincount(rows, minlength=n_rows) for rows, _, _ in parts]
    total = np.sum(counts, axis=0) if counts else np.zeros(n_rows, dtype=np.int64)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(total, out=indptr[1:])
    index_dtype = np.int32 if max(indptr[-1], n_cols) < 2**31 else np.int64
    indices = np.empty(int(indptr[-1]), dtype=index_dtype)
    data = np.empty(int(indptr[-1]), dtype=float)
    filled = indptr[:-1].copy()
    for (rows, cols, values), count in zip(parts, counts, strict=True):
        if not len(rows):
            continue
        first = np.zeros(n_rows, dtype=np.int64)
        np.cumsum(count[:-1], out=first[1:])
        position = filled[rows] + (np.arange(len(rows), dtype=np.int64) - first[rows])
        indices[position] = cols
        data[position] = values
        filled += count
    if not np.array_equal(filled, indptr[1:]):
        raise AssertionError("a block's parts do not fill its rows")
    return sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=(n_rows, n_cols))


def _stack(blocks: list[sp.csr_matrix], n_cols: int) -> sp.csr_matrix:
    """Stack CSR blocks (emptied as they are copied, so the peak is about one matrix plus the largest block)."""
    nnz = sum(b.nnz for b in blocks)
    n_rows = sum(b.shape[0] for b in blocks)
    index_dtype = np.int32 if max(nnz, n_cols) < 2**31 else np.int64
    indptr = np.empty(n_rows + 1, dtype=index_dtype)
    indptr[0] = 0
    indices = np.empty(nnz, dtype=index_dtype)
    data = np.empty(nnz, dtype=float)
    row = at = 0
    while blocks:
        b = blocks.pop(0)
        indices[at:at + b.nnz] = b.indices
        data[at:at + b.nnz] = b.data
        indptr[row + 1:row + 1 + b.shape[0]] = b.indptr[1:] + at
        row += b.shape[0]
        at += b.nnz
        del b
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))


def _grouped_order(parcel: np.ndarray, parcel_key: np.ndarray) -> np.ndarray:
    """Allowed rows ordered by a per-parcel key (stable), for rows grouped by parcel in ascending order: the parcels
    are sorted, then each parcel's run of rows is expanded in place (no sort over the allowed rows)."""
    n = len(parcel_key)
    count = np.bincount(parcel, minlength=n)
    start = np.zeros(n, dtype=np.int64)
    np.cumsum(count[:-1], out=start[1:])
    by_key = np.argsort(parcel_key, kind="stable")
    runs = count[by_key]
    offset = np.zeros(len(by_key), dtype=np.int64)
    np.cumsum(runs[:-1], out=offset[1:])
    return np.repeat(start[by_key] - offset, runs) + np.arange(len(parcel), dtype=np.int64)


def _xpart(key: np.ndarray | None, coef: np.ndarray, order: np.ndarray | None = None) -> Part:
    """Entries (key[a], a, coef[a]) of the allowed rows with coef != 0 and key >= 0, sorted by key (stably).

    key None: one row (0). `order`: all allowed rows sorted by key (stably), when known; else the entries are
    sorted here."""
    if key is None:
        cols = np.flatnonzero(coef)
        return np.zeros(len(cols), dtype=np.int64), cols, coef[cols]
    if order is not None:
        cols = order[(coef[order] != 0) & (key[order] >= 0)]
    else:
        cols = np.flatnonzero((coef != 0) & (key >= 0))
        cols = cols[np.argsort(key[cols], kind="stable")]
    return key[cols].astype(np.int64), cols, coef[cols]


def _part(rows: Sequence[int] | np.ndarray, cols: Sequence[int] | np.ndarray,
          values: Sequence[float] | np.ndarray | float, keep_zeros: bool = False) -> Part:
    """Explicit entries sorted by row (stable); zero values dropped unless `keep_zeros` (a coefficient that a
    target sets, kept in the pattern so that update() can change it in place)."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    values = np.broadcast_to(np.asarray(values, dtype=float), rows.shape)
    keep = np.ones(len(values), dtype=bool) if keep_zeros else values != 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order], values[order]


@dataclass
class _Block:
    """A family's rows: matrix, bounds and names (lower/upper are per-row arrays)."""

    family: str
    A: sp.csr_matrix
    lower: np.ndarray
    upper: np.ndarray
    names: list[str] | tuple[str, int, str]


@dataclass
class _Bound:
    """A named-expression bound added by set_bound: its row(s)."""

    row: sp.csr_matrix
    constant: float
    lower: float | None
    upper: float | None


_BUILD_ONLY = ("village", "township", "option_code", "pair_code", "priced", "area", "_order_v", "_order_t",
               "_order_p")


class MatrixBackend:
    """The land-use model as scipy.sparse matrices, solved by optiland.mip.solver.solve_lp (HiGHS through highspy);
    with `elastic`, the model optiland.pipeline.diagnose solves to explain an infeasible scenario."""

    name = "matrix"

    def __init__(self) -> None:
        self.problem: PlanningProblem | None = None
        self.build_seconds = 0.0
        self.matrix_seconds = 0.0
        self.es_scale: dict[str, float] = {}
        self.last_lp: MatrixLP | None = None
        self.reused = 0
        self.elastic = False
        self.slack_keys: list[tuple[str, Any]] = []
        self._structure: tuple[Any, ...] | None = None
        self._A: sp.csr_matrix | None = None
        self._x: np.ndarray | None = None
        self._bounds: dict[str, _Bound] = {}
        self._trivial: dict[str, bool] = {}
        self._objective: tuple[np.ndarray, float, str] | None = None
        self._full: tuple[tuple[Any, ...], sp.csr_matrix, Names] | None = None

    # -- build ----------------------------------------------------------------------------------------------

    @property
    def built(self) -> bool:
        """Whether build() has run."""
        return self._A is not None

    def build(self, problem: PlanningProblem, elastic: bool = False) -> None:
        """Build the columns and rows of formulation.build_model as one CSR matrix (no objective yet); with
        `elastic`, its elastic version (slacks on formulation.ELASTIC_FAMILIES)."""
        if problem.needs_reference_backend:  # spatial families or parcels in no village: Pyomo backend only
            raise ValueError("the matrix backend does not build spatial families or parcels outside villages")
        start = time.perf_counter()
        self.problem = problem
        self._bounds, self._trivial, self._objective, self._full, self._structure = {}, {}, None, None, None
        self.elastic, self.slack_keys = elastic, []
        self._columns(problem)
        blocks = self._rows(problem)
        self._layout(blocks)
        if elastic:
            self._add_slacks(problem)
        for name in _BUILD_ONLY:  # per allowed row, needed only while building
            setattr(self, name, None)
        self.build_seconds = time.perf_counter() - start

    def _columns(self, p: PlanningProblem) -> None:
        """Columns of formulation.variables: x (allowed rows), herd and posts (villages), z (price-step segments);
        option_area (formulation.diversity) is added by the diversity block's layout here too."""
        a = p.allowed
        self.n_x = n_x = len(a)
        self.n_v = n_v = len(p.villages)
        self.n_t = len(p.townships)
        parcel = a["parcel"].to_numpy()
        self._by_parcel = bool(np.all(parcel[1:] >= parcel[:-1]))
        self.village = a["village"].to_numpy().astype(np.int64)
        town_of_village = p.villages["township_idx"].to_numpy().astype(np.int64)
        self.township = town_of_village[self.village]
        parcel_village = p.parcels["village_idx"].to_numpy().astype(np.int64)
        if self._by_parcel:
            self._order_v = _grouped_order(parcel, parcel_village)
            self._order_t = _grouped_order(parcel, town_of_village[parcel_village])
        else:
            self._order_v = np.argsort(self.village, kind="stable")
            self._order_t = np.argsort(self.township, kind="stable")
        self._order_p = np.arange(n_x) if self._by_parcel else np.argsort(parcel, kind="stable")
        option_code, options = pd.factorize(a["option"])
        variant_code, variants = pd.factorize(a["variant"])
        pair_code, pair_index = pd.factorize(option_code.astype(np.int64) * max(len(variants), 1) + variant_code)
        self.options = np.asarray(options, dtype=object)
        self.option_code = option_code.astype(np.int64)
        self.pair_code = pair_code.astype(np.int64)
        first = np.zeros(len(pair_index), dtype=np.int64)
        first[pair_code[::-1]] = np.arange(len(pair_code))[::-1]
        self.pair_names = [f"{o}.{v}" for o, v in zip(options[option_code[first]], variants[variant_code[first]],
                                                      strict=True)]
        self.pair_of_name = {g: i for i, g in enumerate(self.pair_names)}
        harvest = a["harvest"].to_numpy().astype(bool)
        priced_pair = np.zeros(len(self.pair_names), dtype=bool)
        segments: list[tuple[int, str, int]] = []
        for (option, variant), steps in p.price_steps.items():
            g = f"{option}.{variant}"
            if g not in self.pair_of_name:
                continue
            code = self.pair_of_name[g]
            priced_pair[code] = True
            present = np.unique(self.village[self.pair_code == code])
            segments += [(int(v), g, k) for v in present for k in range(len(steps) + 1)]
        self.priced = priced_pair[self.pair_code] & harvest
        self.segments = segments
        self.col_herd = n_x
        self.col_posts = n_x + n_v
        self.col_z = n_x + 2 * n_v
        self.n_cols = self.col_z + len(segments)
        self.option_area: list[tuple[int, str]] = []  # filled by _diversity

    def _rows(self, p: PlanningProblem) -> list[_Block]:
        """The row blocks in the order formulation.build_model declares them (the order Pyomo's compiler keeps)."""
        a = p.allowed
        params = p.params
        self.targets: dict[tuple[str, Any], float] = {}
        self.nonland = (p.villages["nonland_income_per_capita"] * p.villages["population"]).to_numpy(dtype=float)
        livestock, rangers = params["livestock"], params["rangers"]
        self.cattle = float(livestock["net_income_per_head"])
        self.wage = float(rangers["wage_per_post"])
        self.herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
        self.income_x = a["income"].to_numpy(dtype=float) * ~self.priced
        self.comp = a["compensation"].to_numpy(dtype=float)
        self.cost = a["cost"].to_numpy(dtype=float)
        self.area = a["area"].to_numpy(dtype=float)
        per_mu = {f"{o}.{v}": float(p.catalog.variants.loc[(o, v), "net_income_per_mu"]) for o, v in p.price_steps}
        factors = {f"{o}.{v}": [1.0] + [f for _, f in steps] for (o, v), steps in p.price_steps.items()}
        self.z_income = np.array([factors[g][k] * per_mu[g] for _, g, k in self.segments], dtype=float)
        self.z_village = np.array([v for v, _, _ in self.segments], dtype=np.int64)
        blocks = [self._one_use(p), self._income_floor(p), self._no_worse_off(p)]
        blocks += self._transfer(p)
        blocks += [self._carrying_capacity(p), *self._ranger_posts(p), self._labour(p)]
        blocks += self._budget(p)
        blocks += self._diversity(p)
        blocks += self._area_limits(p)
        blocks += self._forest_cover(p)
        blocks += self._market(p)
        blocks += self._objective_bounds(p)
        return [b for b in blocks if b.A.shape[0]]

    def _village_cols(self, column: int, values: float | np.ndarray, villages: np.ndarray | None = None) -> Part:
        villages = np.arange(self.n_v) if villages is None else villages
        return _part(np.arange(len(villages)), column + villages, values)

    def _z_part(self, values: np.ndarray, rows: np.ndarray | None = None) -> Part:
        rows = self.z_village if rows is None else rows
        return _part(rows, self.col_z + np.arange(len(self.segments)), values)

    def _one_use(self, p: PlanningProblem) -> _Block:
        """formulation.one_use."""
        n = p.n_parcels
        part = _xpart(p.allowed["parcel"].to_numpy().astype(np.int64), np.ones(self.n_x), self._order_p)
        A = _merge(n, self.n_cols, [part])
        return _Block("one_use", A, np.ones(n), np.ones(n), ("one_use", n, "=="))

    def _income_floor(self, p: PlanningProblem) -> _Block:
        """formulation.income_floor (with formulation.expressions: village_income)."""
        A = _merge(self.n_v, self.n_cols, [
            _xpart(self.village, self.income_x + self.comp, self._order_v),
            self._village_cols(self.col_herd, self.cattle), self._village_cols(self.col_posts, self.wage),
            self._z_part(self.z_income)])
        need = p.floors_total().astype(float)
        for v in range(self.n_v):
            self.targets[("income_floor", v)] = float(need[v])
        return _Block("income_floor", A, need - self.nonland, np.full(self.n_v, INF),
                      [f"income_floor[{v}]>=" for v in range(self.n_v)])

    def _no_worse_off(self, p: PlanningProblem) -> _Block:
        """formulation.no_worse_off: the income rows of income_floor, for the villages with the rule on."""
        before = p.no_worse_off_total()
        keys = np.flatnonzero(np.isfinite(before))
        row_of = np.full(self.n_v, -1, dtype=np.int64)
        row_of[keys] = np.arange(len(keys))
        self.no_worse_off_row = row_of
        z_rows = row_of[self.z_village]
        z_in = np.flatnonzero(z_rows >= 0)
        A = _merge(len(keys), self.n_cols, [
            _xpart(row_of[self.village], self.income_x + self.comp, self._order_v),
            _part(np.arange(len(keys)), self.col_herd + keys, self.cattle),
            _part(np.arange(len(keys)), self.col_posts + keys, self.wage),
            _part(z_rows[z_in], self.col_z + z_in, self.z_income[z_in])])
        for v in keys:
            self.targets[("no_worse_off", int(v))] = float(before[v])
        return _Block("no_worse_off", A, before[keys] - self.nonland[keys], np.full(len(keys), INF),
                      [f"no_worse_off[{v}]>=" for v in keys])

    def _transfer(self, p: PlanningProblem) -> list[_Block]:
        """formulation.transfer_budget (and transfer_share)."""
        params = p.params
        blocks = []
        if params.get("transfer_budget") is not None:
            budget = float(params["transfer_budget"])
            self.targets[("transfer_budget", 0)] = budget
            A = _merge(1, self.n_cols, [_xpart(None, self.comp),
                                        _part(np.zeros(self.n_v), self.col_posts + np.arange(self.n_v), self.wage)])
            blocks.append(_Block("transfer_budget", A, np.array([-INF]), np.array([budget]), ["transfer_budget<="]))
        target_of = self._targets_of(p)
        shares = np.array([target_of.get(("transfer_share", v), np.nan) for v in range(self.n_v)], dtype=float)
        capped = np.flatnonzero(np.isfinite(shares))
        if len(capped):
            for v in capped:
                self.targets[("transfer_share", int(v))] = float(shares[v])
            self.share_row = np.full(self.n_v, -1, dtype=np.int64)
            self.share_row[capped] = np.arange(len(capped))
            self._share_parts = self._transfer_share_parts(capped)
            A = self._transfer_share_matrix(shares[capped])
            blocks.append(_Block("transfer_share", A, np.full(len(capped), -INF), shares[capped] * self.nonland[capped],
                                 [f"transfer_share[{v}]<=" for v in capped]))
        return blocks

    def _transfer_share_parts(self, capped: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(transfers, village income) of the capped villages as two matrices on one sparsity pattern (their union),
        so that new shares only recombine their data: row r (village capped[r]) holds comp - share x income."""
        row_of = np.full(self.n_v, -1, dtype=np.int64)
        row_of[capped] = np.arange(len(capped))
        both = np.where((self.income_x != 0) | (self.comp != 0), 1.0, 0.0)
        rows, cols, _ = _xpart(row_of[self.village], both, self._order_v)
        n = len(capped)
        z_rows = row_of[self.z_village]
        z_in = np.flatnonzero(z_rows >= 0)

        def build(x: np.ndarray, herd: float, posts: float, z: np.ndarray) -> sp.csr_matrix:
            return _merge(n, self.n_cols, [
                (rows, cols, x[cols]), _part(np.arange(n), self.col_herd + capped, herd, keep_zeros=True),
                _part(np.arange(n), self.col_posts + capped, posts, keep_zeros=True),
                _part(z_rows[z_in], self.col_z + z_in, z[z_in], keep_zeros=True)])

        transfers = build(self.comp, 0.0, self.wage, np.zeros(len(self.segments)))
        income = build(self.income_x + self.comp, self.cattle, self.wage, self.z_income)
        return transfers, income

    def _transfer_share_matrix(self, shares: np.ndarray) -> sp.csr_matrix:
        """Rows comp - share x income of the capped villages (`shares` one per row)."""
        transfers, income = self._share_parts
        per_entry = np.repeat(np.asarray(shares, dtype=float), np.diff(transfers.indptr))
        return sp.csr_matrix((transfers.data - per_entry * income.data, transfers.indices, transfers.indptr),
                             shape=transfers.shape)

    def _per_village_cap(self, family: str, column: int, coef_col: float, area: np.ndarray,
                         factor: float = 1.0) -> _Block:
        """Rows ``coef_col * y_v - factor * sum area x <= 0``, or ``y_v == 0`` in a village with no such area."""
        has = np.bincount(self.village, weights=(area != 0).astype(float), minlength=self.n_v) > 0
        A = _merge(self.n_v, self.n_cols, [_xpart(self.village, -(factor * area), self._order_v),
                                           self._village_cols(column, np.where(has, coef_col, 1.0))])
        upper = np.zeros(self.n_v)
        lower = np.where(has, -INF, 0.0)
        names = [f"{family}[{v}]{'<=' if has[v] else '=='}" for v in range(self.n_v)]
        return _Block(family, A, lower, upper, names)

    def _carrying_capacity(self, p: PlanningProblem) -> _Block:
        """formulation.carrying_capacity."""
        kappa = float(p.params["livestock"]["head_per_mu"])
        return self._per_village_cap("carrying_capacity", self.col_herd, 1.0,
                                     p.allowed["livestock_area"].to_numpy(dtype=float), kappa)

    def _ranger_posts(self, p: PlanningProblem) -> list[_Block]:
        """formulation.ranger_posts (ranger_posts and ranger_households)."""
        rangers = p.params["rangers"]
        mu = float(rangers["mu_per_post"])
        posts = self._per_village_cap("ranger_posts", self.col_posts, mu,
                                      p.allowed["ranger_area"].to_numpy(dtype=float))
        per_household = float(rangers.get("max_posts_per_household", 1))
        households = p.villages["households"].to_numpy()
        limit = np.array([per_household * float(h) for h in households])
        A = _merge(self.n_v, self.n_cols, [self._village_cols(self.col_posts, 1.0)])
        return [posts, _Block("ranger_households", A, np.full(self.n_v, -INF), limit,
                              [f"ranger_households[{v}]<=" for v in range(self.n_v)])]

    def _labour(self, p: PlanningProblem) -> _Block:
        """formulation.labour."""
        per_head = float(p.params["livestock"]["labour_days_per_head"])
        A = _merge(self.n_v, self.n_cols, [_xpart(self.village, p.allowed["labour"].to_numpy(dtype=float),
                                                  self._order_v), self._village_cols(self.col_herd, per_head)])
        return _Block("labour", A, np.full(self.n_v, -INF), p.villages["labour_days"].to_numpy(dtype=float),
                      [f"labour[{v}]<=" for v in range(self.n_v)])

    def _budget(self, p: PlanningProblem) -> list[_Block]:
        """formulation.budget (budget and township_budget)."""
        blocks = []
        if p.params.get("budget") is not None:
            limit = float(p.params["budget"])
            self.targets[("budget", 0)] = limit
            A = _merge(1, self.n_cols, [_xpart(None, self.cost),
                                        _part(np.zeros(self.n_v), self.col_herd + np.arange(self.n_v),
                                              self.herd_cost)])
            blocks.append(_Block("budget", A, np.array([-INF]), np.array([limit]), ["budget<="]))
        per_township = p.params.get("township_budgets") or {}
        if per_township:
            names = list(p.townships["township"])
            index = [names.index(t) for t in per_township]
            row_of = np.full(self.n_t, -1, dtype=np.int64)
            row_of[index] = np.arange(len(index))
            town_of_village = p.villages["township_idx"].to_numpy().astype(np.int64)
            herd_rows = row_of[town_of_village]
            has = herd_rows >= 0
            A = _merge(len(index), self.n_cols, [
                _xpart(row_of[self.township], self.cost, self._order_t),
                _part(herd_rows[has], self.col_herd + np.flatnonzero(has), self.herd_cost)])
            limits = np.array([float(v) for v in per_township.values()])
            for t, value in zip(index, limits, strict=True):
                self.targets[("township_budget", t)] = float(value)
            blocks.append(_Block("township_budget", A, np.full(len(index), -INF), limits,
                                 [f"township_budget[{t}]<=" for t in index]))
        return blocks

    def _diversity(self, p: PlanningProblem) -> list[_Block]:
        """formulation.diversity: option_area columns, option_area_def and diversity rows."""
        cap = p.params.get("diversity_cap")
        if cap is None:
            return []
        cap = float(cap)
        self.targets[("diversity_cap", 0)] = cap
        capped = p.allowed["diversity_capped"].to_numpy().astype(bool)
        n_opt, n_pair = len(self.options), len(self.pair_names)
        # groups (township, option) and (township, variant) present among capped rows, in Pyomo's index order
        group_key = np.unique(self.township[capped] * n_opt + self.option_code[capped])
        groups = sorted((int(k // n_opt), str(self.options[k % n_opt])) for k in group_key)
        pair_key = np.unique(self.township[capped] * n_pair + self.pair_code[capped])
        pairs = sorted((int(k // n_pair), self.pair_names[k % n_pair]) for k in pair_key)
        option_of = {str(o): i for i, o in enumerate(self.options)}
        group_of = np.full(self.n_t * n_opt, -1, dtype=np.int64)
        group_of[[t * n_opt + option_of[o] for t, o in groups]] = np.arange(len(groups))
        pair_of = np.full(self.n_t * n_pair, -1, dtype=np.int64)
        pair_of[[t * n_pair + self.pair_of_name[g] for t, g in pairs]] = np.arange(len(pairs))
        self.option_area = groups
        self.col_option_area = self.n_cols
        self.n_cols += len(groups)
        ncols = self.n_cols
        group_row = group_of[self.township * n_opt + self.option_code]
        definition = _merge(len(groups), ncols, [
            _xpart(group_row, -self.area),
            _part(np.arange(len(groups)), self.col_option_area + np.arange(len(groups)), 1.0)])
        pair_row = pair_of[self.township * n_pair + self.pair_code]
        area_col = [self.col_option_area + group_of[t * n_opt + option_of[g.split(".")[0]]] for t, g in pairs]
        diversity = _merge(len(pairs), ncols, [_xpart(pair_row, self.area),
                                               _part(np.arange(len(pairs)), area_col, -cap, keep_zeros=True)])
        return [
            _Block("option_area_def", definition, np.zeros(len(groups)), np.zeros(len(groups)),
                   [f"option_area_def{index_repr((t, o))}==" for t, o in groups]),
            _Block("diversity", diversity, np.full(len(pairs), -INF), np.zeros(len(pairs)),
                   [f"diversity{index_repr((t, g))}<=" for t, g in pairs])]

    def _area_limits(self, p: PlanningProblem) -> list[_Block]:
        """formulation.area_limits: one row per area_min / area_max key (a handful); a limit on nothing is a
        constant (kept as a trivial constraint, feasible or not)."""
        from optiland.model.formulation import area_rows, target_values

        blocks = []
        self.area_limit_rows: dict[tuple[str, str], int] = {}
        for family, sense in (("area_min", ">="), ("area_max", "<=")):
            keys = [key for (f, key) in target_values(p) if f == family]
            rows, lower, upper, names = [], [], [], []
            for key in keys:
                value = float(target_values(p)[(family, key)])
                self.targets[(family, key)] = value
                area, villages = area_rows(p, key)
                if not area.any() and not len(villages):
                    self._trivial[f"{family}{index_repr(key)}"] = 0.0 >= value if family == "area_min" else (
                        0.0 <= value)
                    continue
                self.area_limit_rows[(family, key)] = len(rows)
                rows.append(_merge(1, self.n_cols, [_xpart(None, area),
                                                    _part(np.zeros(len(villages)), self.col_herd + villages, 1.0)]))
                lower.append(value if family == "area_min" else -INF)
                upper.append(INF if family == "area_min" else value)
                names.append(f"{family}{index_repr(key)}{sense}")
            if rows:
                blocks.append(_Block(family, sp.vstack(rows, format="csr"), np.array(lower), np.array(upper), names))
        return blocks

    def _forest_cover(self, p: PlanningProblem) -> list[_Block]:
        """formulation.forest_cover; a township with no forest-type option is a constant (kept as a trivial
        constraint, feasible or not)."""
        share = p.params.get("forest_cover_min")
        if share is None:
            return []
        forest_area = self.area * p.allowed["forest"].to_numpy().astype(bool)
        has = np.bincount(self.township, weights=(forest_area != 0).astype(float), minlength=self.n_t) > 0
        total = p.townships["area_mu"].to_numpy()
        need = np.array([float(share) * float(total[t]) for t in range(self.n_t)])
        rows = np.flatnonzero(has)
        row_of = np.full(self.n_t, -1, dtype=np.int64)
        row_of[rows] = np.arange(len(rows))
        for t in range(self.n_t):
            self.targets[("forest_cover", t)] = float(need[t])
            if not has[t]:
                self._trivial[f"forest_cover[{t}]"] = 0.0 >= need[t]
        A = _merge(len(rows), self.n_cols, [_xpart(row_of[self.township], forest_area, self._order_t)])
        return [_Block("forest_cover", A, need[rows], np.full(len(rows), INF),
                       [f"forest_cover[{t}]>=" for t in rows])]

    def _market(self, p: PlanningProblem) -> list[_Block]:
        """formulation.market: market rows, price_step_link and price_step_width."""
        caps = {f"{o}.{v}": float(cap) for (o, v), cap in p.market.items() if f"{o}.{v}" in self.pair_of_name}
        row_of = np.full(len(self.pair_names), -1, dtype=np.int64)
        row_of[[self.pair_of_name[g] for g in caps]] = np.arange(len(caps))
        for g, cap in caps.items():
            self.targets[("market", g)] = cap
        blocks = [_Block("market", _merge(len(caps), self.n_cols, [_xpart(row_of[self.pair_code], self.area)]),
                         np.full(len(caps), -INF), np.array(list(caps.values()), dtype=float),
                         [f"market{index_repr(g)}<=" for g in caps])]
        if not self.segments:
            return blocks
        links = sorted({(v, g) for v, g, _ in self.segments})
        link_of = {key: i for i, key in enumerate(links)}
        n_pair = len(self.pair_names)
        link_row = np.full(self.n_v * n_pair, -1, dtype=np.int64)
        link_row[[v * n_pair + self.pair_of_name[g] for v, g in links]] = np.arange(len(links))
        harvested = self.area * self.priced
        segment_rows = np.array([link_of[(v, g)] for v, g, _ in self.segments], dtype=np.int64)
        link = _merge(len(links), self.n_cols, [
            _xpart(link_row[self.village * n_pair + self.pair_code], -harvested),
            self._z_part(np.ones(len(self.segments)), segment_rows)])
        widths = {}
        for (option, variant), steps in p.price_steps.items():
            starts = [0.0] + [s for s, _ in steps]
            for k in range(len(steps)):
                widths[(f"{option}.{variant}", k)] = starts[k + 1] - starts[k]
        present = sorted({(g, k) for _, g, k in self.segments if (g, k) in widths})
        width_of = {key: i for i, key in enumerate(present)}
        seg = [(i, width_of[(g, k)]) for i, (_, g, k) in enumerate(self.segments) if (g, k) in width_of]
        width = _merge(len(present), self.n_cols, [_part([r for _, r in seg], [self.col_z + i for i, _ in seg], 1.0)])
        blocks += [_Block("price_step_link", link, np.zeros(len(links)), np.zeros(len(links)),
                          [f"price_step_link{index_repr(key)}==" for key in links]),
                   _Block("price_step_width", width, np.full(len(present), -INF),
                          np.array([float(widths[key]) for key in present]),
                          [f"price_step_width{index_repr(key)}<=" for key in present])]
        return blocks

    def _objective_bounds(self, p: PlanningProblem) -> list[_Block]:
        """The scenario's bounds as formulation.build_model adds them (objective_bound[1], [2], ...); the bound on
        ecosystem_services waits for the scales (set_bound)."""
        rows, lower, upper, names = [], [], [], []
        index = 0
        for name, (low, high) in (p.params.get("bounds") or {}).items():
            if name == "ecosystem_services":
                continue
            coef, constant = self.expression(name)
            for value, sense in ((low, ">="), (high, "<=")):
                if value is None:
                    continue
                index += 1
                label = f"objective_bound[{index}]"
                if not coef.any():
                    self._trivial[label] = constant >= value if sense == ">=" else constant <= value
                    continue
                rows.append(sp.csr_matrix(coef.reshape(1, -1)))
                lower.append(float(value) - constant if sense == ">=" else -INF)
                upper.append(float(value) - constant if sense == "<=" else INF)
                names.append(f"{label}{sense}")
        if not rows:
            return []
        return [_Block("objective_bound", sp.vstack(rows, format="csr"), np.array(lower), np.array(upper), names)]

    def _layout(self, blocks: list[_Block]) -> None:
        """Stack the blocks (widened to the final column count) and keep where each family's rows are."""
        self.ranges: dict[str, tuple[int, int]] = {}
        self.row_names = Names()
        lowers, uppers = [], []
        start = 0
        for b in blocks:
            self.ranges[b.family] = (start, start + b.A.shape[0])
            start += b.A.shape[0]
            if b.A.shape[1] != self.n_cols:
                b.A = sp.csr_matrix((b.A.data, b.A.indices, b.A.indptr), shape=(b.A.shape[0], self.n_cols))
            lowers.append(b.lower)
            uppers.append(b.upper)
            if isinstance(b.names, tuple):
                self.row_names.add_range(*b.names)
            else:
                self.row_names.add_list(b.names)
        self.row_lower = np.concatenate(lowers).astype(float)
        self.row_upper = np.concatenate(uppers).astype(float)
        matrices = []
        while blocks:  # let each block go once it is copied
            matrices.append(blocks.pop(0).A)
        self._A = _stack(matrices, self.n_cols)
        self.col_lower = np.zeros(self.n_cols)
        self.col_upper = np.full(self.n_cols, INF)
        self.col_upper[:self.n_x] = 1.0
        self.integer = np.zeros(self.n_cols, dtype=bool)
        self.integer[:self.col_z] = True
        names = Names()
        names.add_range("x", self.n_x)
        names.add_range("herd", self.n_v)
        names.add_range("posts", self.n_v)
        names.add_list([f"z{index_repr(s)}" for s in self.segments])
        names.add_list([f"option_area{index_repr(g)}" for g in self.option_area])
        self.col_names = names

    def _add_slacks(self, p: PlanningProblem) -> None:
        """The elastic model of formulation.build_model(elastic=True): a slack column per formulation._elastic_keys
        key, +1 in its income_floor or forest_cover row (a shortfall), -1 in its transfer_budget, labour, budget,
        township_budget or market row (an excess); a township with no forest-type option gets a forest_cover row
        of its slack alone. A slack whose row does not exist stays a column (it is in the elastic objective)."""
        from optiland.model.formulation import _elastic_keys

        assert self._A is not None
        keys = _elastic_keys(p)
        index = {self.row_names[i]: i for family, (first, last) in self.ranges.items() if family != "one_use"
                 for i in range(first, last)}
        sign = {"income_floor": (1.0, ">="), "no_worse_off": (1.0, ">="), "forest_cover": (1.0, ">="),
                "area_min": (1.0, ">="), "area_max": (-1.0, "<="),
                "transfer_budget": (-1.0, "<="),
                "labour": (-1.0, "<="), "budget": (-1.0, "<="), "township_budget": (-1.0, "<="),
                "market": (-1.0, "<=")}
        self.col_slack = self.n_cols
        rows, cols, values = [], [], []
        new_names, new_lower, new_upper = [], [], []
        n_rows = self._A.shape[0]
        for j, (family, key) in enumerate(keys):
            coef, side = sign[family]
            label = family if family in ("transfer_budget", "budget") else f"{family}{index_repr(key)}"
            row = index.get(f"{label}{side}")
            if row is None and family in ("forest_cover", "area_min", "area_max") and label in self._trivial:
                row = n_rows + len(new_names)  # a constant row: its slack alone
                new_names.append(f"{label}{side}")
                value = self.targets[(family, key)]
                new_lower.append(value if side == ">=" else -INF)
                new_upper.append(value if side == "<=" else INF)
                del self._trivial[label]
            if row is not None:
                rows.append(row)
                cols.append(self.col_slack + j)
                values.append(coef)
        self.slack_keys = keys
        self.n_cols += len(keys)
        shape = (n_rows + len(new_names), self.n_cols)
        wide = sp.csr_matrix((self._A.data, self._A.indices, self._A.indptr), shape=(n_rows, self.n_cols))
        slacks = sp.csr_matrix((values, (rows, cols)), shape=shape)
        self._A = (sp.vstack([wide, sp.csr_matrix((len(new_names), self.n_cols))], format="csr") + slacks).tocsr()
        self._A.sort_indices()
        self.row_names = self.row_names.extended(new_names)
        self.row_lower = np.concatenate([self.row_lower, new_lower])
        self.row_upper = np.concatenate([self.row_upper, new_upper])
        self.col_lower = np.concatenate([self.col_lower, np.zeros(len(keys))])
        self.col_upper = np.concatenate([self.col_upper, np.full(len(keys), INF)])
        self.integer = np.concatenate([self.integer, np.zeros(len(keys), dtype=bool)])
        self.col_names = self.col_names.extended([f"slack{index_repr(k)}" for k in keys])

    def set_elastic_objective(self, weights: dict[tuple[str, Any], float]) -> None:
        """Minimise the weighted sum of elastic slacks (to explain an infeasible scenario)."""
        if not self.elastic:
            raise RuntimeError("build(problem, elastic=True) first")
        c = np.zeros(self.n_cols)
        for j, key in enumerate(self.slack_keys):
            c[self.col_slack + j] = float(weights[key])
        self._objective = (c, 0.0, "min")

    # -- named expressions, objective and bounds ------------------------------------------------------------

    def expression(self, name: str, weights: dict[str, float] | None = None,
                   scale: dict[str, float] | None = None) -> tuple[np.ndarray, float]:
        """formulation.objective_expression as (coefficient per column, constant)."""
        p = self.problem
        if p is None:
            raise RuntimeError("build() first")
        coef = np.zeros(self.n_cols)
        constant = 0.0
        if name == "income":
            coef[:self.n_x] = self.income_x + self.comp
            coef[self.col_herd:self.col_herd + self.n_v] = self.cattle
            coef[self.col_posts:self.col_posts + self.n_v] = self.wage
            coef[self.col_z:self.col_z + len(self.segments)] = self.z_income
            for value in self.nonland:
                constant += float(value)
        elif name == "cost":
            coef[:self.n_x] = self.cost
            coef[self.col_herd:self.col_herd + self.n_v] = self.herd_cost
        elif name in p.services:
            coef[:self.n_x] = p.allowed[f"gain_{name}"].to_numpy(dtype=float)
        elif name == "ecosystem_services":
            weights, scale = weights or {}, scale or {}
            for s, w in weights.items():
                if w and scale.get(s):
                    coef[:self.n_x] += float(w) / float(scale[s]) * p.allowed[f"gain_{s}"].to_numpy(dtype=float)
        else:
            raise KeyError(f"unknown objective {name!r}")
        return coef, constant

    def _problem(self) -> PlanningProblem:
        if self.problem is None or self._A is None:
            raise RuntimeError("build() first")
        return self.problem

    def set_objective(self, terms: dict[str, float], sense: str, scale: dict[str, float] | None = None,
                      weights: dict[str, float] | None = None) -> None:
        """Objective = sum_k terms[k] x expression k, as a coefficient vector and offset."""
        c = np.zeros(self.n_cols)
        offset = 0.0
        for name, factor in terms.items():
            coef, constant = self.expression(name, weights, scale)
            c += float(factor) * coef
            offset += float(factor) * constant
        self._objective = (c, offset, "max" if sense == "max" else "min")

    def set_bound(self, name: str, lower: float | None, upper: float | None) -> None:
        """Bound a named expression (rows ``bound_<name>``); replaces an earlier bound on the same name."""
        p = self._problem()
        self._bounds.pop(name, None)
        self._trivial.pop(f"bound_{name}", None)
        if lower is None and upper is None:
            return
        coef, constant = self.expression(name, p.params.get("weights"), self.es_scale)
        if not coef.any():
            self._trivial[f"bound_{name}"] = ((lower is None or constant >= lower)
                                              and (upper is None or constant <= upper))
            return
        self._bounds[name] = _Bound(sp.csr_matrix(coef.reshape(1, -1)), constant, lower, upper)

    def update(self, problem: PlanningProblem) -> bool:
        """Take another problem's targets (formulation.target_values) when only they differ: row bounds change,
        and the coefficients that carry a target (the share in transfer_share, the cap in diversity); bounds set
        by set_bound are dropped. False (nothing changed) when the structure differs."""
        if self._A is None or self.problem is None or self.elastic:
            return False
        if self._structure is None:
            self._structure = structure_key(self.problem)
        if structure_key(problem) != self._structure:
            return False
        other = MatrixBackend._targets_of(problem)
        for (family, key), value in other.items():
            self._set_target(family, key, value)
        self.targets = other
        self.problem = problem
        self._bounds.clear()
        self._trivial = {k: v for k, v in self._trivial.items() if not k.startswith("bound_")}
        self._full = None
        self.reused += 1
        return True

    @staticmethod
    def _targets_of(problem: PlanningProblem) -> dict[tuple[str, Any], float]:
        from optiland.model.formulation import target_values

        return target_values(problem)

    def _set_target(self, family: str, key: Any, value: float) -> None:
        start, _ = self.ranges.get(family, (0, 0))
        A = self._A
        assert A is not None
        if family == "income_floor":
            self.row_lower[start + key] = value - self.nonland[key]
        elif family == "no_worse_off":
            self.row_lower[start + self.no_worse_off_row[key]] = value - self.nonland[key]
        elif family in ("transfer_budget", "budget"):
            self.row_upper[start] = value
        elif family == "township_budget":
            names = [self.row_names[i] for i in range(*self.ranges[family])]
            self.row_upper[start + names.index(f"township_budget[{key}]<=")] = value
        elif family == "forest_cover":
            names = [self.row_names[i] for i in range(*self.ranges.get(family, (0, 0)))]
            if f"forest_cover[{key}]>=" in names:
                self.row_lower[start + names.index(f"forest_cover[{key}]>=")] = value
            else:
                self._trivial[f"forest_cover[{key}]"] = 0.0 >= value
        elif family == "market":
            names = [self.row_names[i] for i in range(*self.ranges[family])]
            self.row_upper[start + names.index(f"market{index_repr(key)}<=")] = value
        elif family in ("area_min", "area_max"):
            row = self.area_limit_rows.get((family, key))
            if row is None:
                self._trivial[f"{family}{index_repr(key)}"] = 0.0 >= value if family == "area_min" else 0.0 <= value
            elif family == "area_min":
                self.row_lower[start + row] = value
            else:
                self.row_upper[start + row] = value
        elif family == "transfer_share":
            row = int(self.share_row[key])
            transfers, income = self._share_parts
            lo, hi = transfers.indptr[row], transfers.indptr[row + 1]
            A.data[A.indptr[start + row]:A.indptr[start + row + 1]] = transfers.data[lo:hi] - value * income.data[lo:hi]
            self.row_upper[start + row] = value * self.nonland[key]
        elif family == "diversity_cap":
            first, last = self.ranges["diversity"]
            A.data[A.indptr[first + 1:last + 1] - 1] = -value  # the option_area entry ends each diversity row

    # -- matrix, solve, solution ----------------------------------------------------------------------------

    def matrix(self) -> MatrixLP:
        """The current model (structural rows, then bound_<name> rows) in HiGHS's row-bounded form."""
        start = time.perf_counter()
        self._problem()
        if self._objective is None:
            raise RuntimeError("set_objective() first")
        c, offset, sense = self._objective
        A, names = self._A, self.row_names
        lower, upper = self.row_lower, self.row_upper
        if self._bounds:
            extra_rows, extra_lower, extra_upper, extra_names = [], [], [], []
            for name, b in self._bounds.items():
                low = None if b.lower is None else float(b.lower) - b.constant
                high = None if b.upper is None else float(b.upper) - b.constant
                sides: list[tuple[str, float, float]] = []
                if low is not None and b.lower == b.upper:
                    sides.append(("==", low, low))
                else:  # a range is two rows, upper first (as Pyomo's compiler writes it)
                    if high is not None:
                        sides.append(("<=", -INF, high))
                    if low is not None:
                        sides.append((">=", low, INF))
                for side, lo, hi in sides:
                    extra_rows.append(b.row)
                    extra_lower.append(lo)
                    extra_upper.append(hi)
                    extra_names.append(f"bound_{name}{side}")
            key = tuple((name, id(b.row)) for name, b in self._bounds.items()) + tuple(extra_names)
            if self._full is None or self._full[0] != key:
                self._full = (key, sp.vstack([A, *extra_rows], format="csr"), names.extended(extra_names))
            A, names = self._full[1], self._full[2]
            lower = np.concatenate([lower, extra_lower])
            upper = np.concatenate([upper, extra_upper])
        lp = MatrixLP(c=c, A=A, row_lower=lower.copy(), row_upper=upper.copy(), col_lower=self.col_lower.copy(),
                      col_upper=self.col_upper.copy(), integer=self.integer, sense=sense, offset=offset,
                      col_names=self.col_names, row_names=names)  # type: ignore[arg-type]
        self.matrix_seconds += time.perf_counter() - start
        return lp

    def infeasible_constant(self) -> str | None:
        """The name of a constraint without variables that cannot hold, if any."""
        for name, holds in self._trivial.items():
            if not holds:
                return name
        return None

    def solve(self, options: SolverOptions, columns: np.ndarray | None = None,
              start: np.ndarray | None = None) -> SolveResult:
        """Hand the matrix to optiland.mip.solver.solve_lp (`columns`: where column generation starts, besides its
        own picks; `start`: a plan of this model's columns to begin from, used if feasible)."""
        bad = self.infeasible_constant()
        if bad is not None:
            return SolveResult(Status.INFEASIBLE, None, None, None, None, 0.0,
                               f"model contains a trivially infeasible constraint, '{bad}'",
                               solver_version=highs_version())
        lp = self.matrix()
        self.last_lp = lp
        if options.strategy == "auto" and not self.elastic and len(lp.c) >= COLGEN_COLUMNS and lp.integer.any():
            options = replace(options, strategy="colgen")
        villages = self.column_villages() if options.strategy == "colgen" else None  # colgen's integer bound
        result = solve_lp(lp, options, columns=columns, villages=villages, start=start)
        self._x = None if result.x is None else np.asarray(result.x, dtype=float)
        return result

    def solution(self, result: SolveResult | None) -> Solution:
        """The plan of a result (or of the last solve when `result` is None)."""
        x = self._x if result is None or result.x is None else np.asarray(result.x, dtype=float)
        return self.solution_of(x)

    def column_villages(self) -> np.ndarray:
        """The village of each column: its allowed row's for a parcel column, -1 for every other column (the blocks
        of colgen.integer_bound)."""
        villages = np.full(len(self.col_lower), -1, dtype=np.int64)  # elastic slack columns included
        villages[:self.n_x] = self.problem.allowed["village"].to_numpy()
        return villages

    def solution_of(self, x: np.ndarray | None) -> Solution:
        """A plan from a column vector (its first columns are this model's; None: all zero)."""
        if x is None:
            x = np.zeros(self.n_cols)
        z = x[self.col_z:self.col_z + len(self.segments)]
        slacks = x[self.col_slack:self.col_slack + len(self.slack_keys)] if self.elastic else []
        return Solution(x=np.rint(x[:self.n_x]), herd=np.rint(x[self.col_herd:self.col_herd + self.n_v]),
                        posts=np.rint(x[self.col_posts:self.col_posts + self.n_v]),
                        segments={s: float(value) for s, value in zip(self.segments, z, strict=True)},
                        slacks={k: float(value) for k, value in zip(self.slack_keys, slacks, strict=True)})

    # -- Pareto -----------------------------------------------------------------------------------------------

    def front_lp(self, objectives: dict[str, str], weights: dict[str, float] | None = None,
                 scale: dict[str, float] | None = None) -> tuple[MatrixLP, dict[str, dict[str, int]]]:
        """The model with the block optiland.analysis.pareto.PyomoFrontModel adds (``_pareto``): per objective k a free
        column f_k, a slack s_k >= 0, a row ``f_k - expression_k == constant_k`` and a row ``sigma_k f_k - s_k == 0``
        (sigma = -1 for a minimised objective). Returns the LP (objective zero) and the positions of f, s, define and
        eps per objective."""
        base = self.matrix() if self._objective is not None else None
        if base is None:
            self.set_objective({}, "max")
            base = self.matrix()
        names = list(objectives)
        n0, m0, p = base.A.shape[1], base.A.shape[0], len(names)
        rows, lower, upper, row_names = [], [], [], []
        for i, k in enumerate(names):
            coef, constant = self.expression(k, weights, scale)
            extra = np.zeros(2 * p)
            extra[i] = 1.0
            rows.append(sp.hstack([sp.csr_matrix(-coef.reshape(1, -1)), sp.csr_matrix(extra.reshape(1, -1))]))
            lower.append(constant)
            upper.append(constant)
            row_names.append(f"_pareto.define{index_repr(k)}==")
        for i, k in enumerate(names):
            extra = np.zeros(2 * p)
            extra[i] = 1.0 if objectives[k] == "max" else -1.0
            extra[p + i] = -1.0
            rows.append(sp.hstack([sp.csr_matrix((1, n0)), sp.csr_matrix(extra.reshape(1, -1))]))
            lower.append(0.0)
            upper.append(0.0)
            row_names.append(f"_pareto.eps{index_repr(k)}==")
        A = sp.vstack([sp.hstack([base.A, sp.csr_matrix((m0, 2 * p))], format="csr"), *rows], format="csr")
        A.eliminate_zeros()
        col_names = self.col_names.extended([f"_pareto.f{index_repr(k)}" for k in names]
                                            + [f"_pareto.s{index_repr(k)}" for k in names])
        row_name_seq = base.row_names.extended(row_names) if isinstance(base.row_names, Names) else [
            *base.row_names, *row_names]
        c = np.zeros(n0 + 2 * p)
        c[n0:n0 + p] = 1.0  # the block's own objective, max sum_k f_k (the adapter sets its own)
        lp = MatrixLP(c=c, A=A, row_lower=np.concatenate([base.row_lower, lower]),
                      row_upper=np.concatenate([base.row_upper, upper]),
                      col_lower=np.concatenate([base.col_lower, np.full(p, -INF), np.zeros(p)]),
                      col_upper=np.concatenate([base.col_upper, np.full(2 * p, INF)]),
                      integer=np.concatenate([base.integer, np.zeros(2 * p, dtype=bool)]), sense="max",
                      col_names=col_names, row_names=row_name_seq)  # type: ignore[arg-type]
        positions = {"f": {k: n0 + i for i, k in enumerate(names)}, "s": {k: n0 + p + i for i, k in enumerate(names)},
                     "define": {k: m0 + i for i, k in enumerate(names)},
                     "eps": {k: m0 + p + i for i, k in enumerate(names)}}
        return lp, positions
