"""A plan in array form, as every backend and strategy returns it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Solution:
    """A plan in array form: the chosen allowed row per parcel, and the village integers."""

    x: np.ndarray
    herd: np.ndarray
    posts: np.ndarray
    segments: dict[tuple[int, str, int], float] = field(default_factory=dict)
    slacks: dict[tuple[str, Any], float] = field(default_factory=dict)

    def chosen_rows(self) -> np.ndarray:
        """Allowed-row positions with x = 1."""
        return np.flatnonzero(self.x > 0.5)
