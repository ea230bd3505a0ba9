"""Errors that name the culprit: file, parcel or village id, column and value."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
"""A plan proven within the gap asked for (status optimal), or a plan whose gap is stated (feasible)."""
EXIT_FAILED = 1
"""`check` found violations; a sweep run failed; an unexpected error."""
EXIT_INPUT = 2
"""Bad input: nothing solved, nothing written."""
EXIT_INFEASIBLE = 3
"""Proven infeasible: no plan exists; the diagnosis says which targets cannot be met and by how much."""
EXIT_TIME_LIMIT = 4
"""The time limit came with a plan: written with its status time_limit, bound and gap."""
EXIT_NO_PLAN = 5
"""The time limit came before any plan: nothing written, nothing known about feasibility."""
EXIT_INTERRUPTED = 130
"""Interrupted (SIGINT): a plan found by then is written with status interrupted, else nothing."""


class OptilandError(Exception):
    """Base of every error optiland raises on purpose (the CLI prints it and exits non-zero)."""

    exit_code = EXIT_INPUT


@dataclass
class Issue:
    """One thing wrong with the input."""

    message: str
    file: str | None = None
    row: str | None = None
    column: str | None = None
    value: object = None

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"id {self.row}")
        if self.column:
            where.append(f"column {self.column!r}")
        if self.value is not None:
            where.append(f"value {plain(self.value)!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


def plain(value: object) -> object:
    """A value as the planner wrote it: numpy scalars as Python numbers (-5.0, not np.float64(-5.0))."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


SHOWN = 20
"""Problems of one kind described one by one; the rest are counted (`Problems.more`)."""


class Problems(list):  # type: ignore[type-arg]
    """Issues found so far, plus how many more of the same kinds were counted but not described."""

    def __init__(self) -> None:
        super().__init__()
        self.more = 0

    def each(self, positions: object, make: object, limit: int = SHOWN) -> None:
        """One Issue (`make(position)`) for each of the first `limit` positions; the rest are counted."""
        positions = list(positions)  # type: ignore[call-overload]
        self.extend(make(p) for p in positions[:limit])  # type: ignore[operator]
        self.more += max(len(positions) - limit, 0)


@dataclass
class InputError(OptilandError):
    """Invalid input; carries every problem found, not only the first: the true count, the first 20 described."""

    problems: list[Issue] = field(default_factory=list)
    more: int = 0
    """Problems counted beyond those described."""

    def __post_init__(self) -> None:
        self.more += getattr(self.problems, "more", 0)
        super().__init__(str(self))

    def __str__(self) -> str:
        total = len(self.problems) + self.more
        shown = self.problems[:SHOWN]
        lines = [f"{total} input problem(s):"] + [f"  - {p}" for p in shown]
        if total > len(shown):
            lines.append(f"  ... and {total - len(shown)} more")
        return "\n".join(lines)


def input_error(message: str, **where: object) -> InputError:
    """Shorthand for an InputError with one problem."""
    return InputError([Issue(message, **where)])  # type: ignore[arg-type]


class InfeasibleError(OptilandError):
    """The scenario has no feasible plan (proven); `diagnosis` explains which targets cannot be met and by how much."""

    exit_code = EXIT_INFEASIBLE

    def __init__(self, diagnosis: str, shortfalls: object = None) -> None:
        super().__init__(diagnosis)
        self.diagnosis = diagnosis
        self.shortfalls = shortfalls


class NoPlanError(OptilandError):
    """A limit (time, or a HiGHS work limit) came before any plan was found: nothing is known about feasibility."""

    exit_code = EXIT_NO_PLAN


class Interrupted(OptilandError):
    """Interrupted (SIGINT) before any plan was found."""

    exit_code = EXIT_INTERRUPTED


class SolverError(OptilandError):
    """The solver failed (it crashed, or ended without a result): nothing is known about the scenario."""

    exit_code = EXIT_FAILED
