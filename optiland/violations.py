"""A broken rule, as the checker and the transition's year-by-year check report it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Violation:
    """One constraint a plan breaks.

    `family` is the constraint family (see FAMILIES), `key` what it is about (a parcel or village id, a
    township, an option.variant, ``total``), `message` a sentence naming the culprit, `amount` by how much.
    """

    family: str
    key: str
    message: str
    amount: float

    def __str__(self) -> str:
        return f"{self.family} [{self.key}]: {self.message}"


FEATURE_TARGET_TOLERANCE = 1e-9
"""A feature target is missed when the amount held falls short of it by more than this share of max(1, |target|).

One tolerance for `optiland check` (family ``feature_target``) and Marxan's score (``targets_missed``): a plan the
score counts as missing a target fails the check. It is tight (a Marxan solution 1,655 short of a 1e9 target
misses), yet above the round-off of summing the amounts of a plan whose rows the solver met."""
