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
