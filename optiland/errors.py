"""Errors that name the culprit: file, parcel or village id, column and value."""

from __future__ import annotations

from dataclasses import dataclass, field


class OptilandError(Exception):
    """Base of every error optiland raises on purpose (the CLI prints it and exits non-zero)."""


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
            where.append(f"value {self.value!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


@dataclass
class InputError(OptilandError):
    """Invalid input; carries every problem found, not only the first."""

    problems: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = self.problems[:50]
        lines = [f"{len(self.problems)} input problem(s):"] + [f"  - {p}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more")
        return "\n".join(lines)


def input_error(message: str, **where: object) -> InputError:
    """Shorthand for an InputError with one problem."""
    return InputError([Issue(message, **where)])  # type: ignore[arg-type]


class InfeasibleError(OptilandError):
    """The scenario has no feasible plan; `diagnosis` explains which targets cannot be met and by how much."""

    def __init__(self, diagnosis: str, shortfalls: object = None) -> None:
        super().__init__(diagnosis)
        self.diagnosis = diagnosis
        self.shortfalls = shortfalls
