"""benchmarks/calibration.py's arithmetic against hand computations: the mean of a fruit age profile over an area
planted evenly, the planting span that turns a mature yield into a county average, and the people reached by an
option (households = area / mu per household, capped at the village's households)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SPEC = importlib.util.spec_from_file_location("bench_calibration",
                                              Path(__file__).parents[1] / "benchmarks" / "calibration.py")
assert SPEC is not None and SPEC.loader is not None
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)
# the karst catalog's fruit income profile: nothing before age 3, 30% at 3, 60% at 4, full from 5
FRUIT = np.array([[0, 0.0], [3, 0.3], [4, 0.6], [5, 1.0]])


@pytest.mark.parametrize(("years", "expected"), [
    (3.0, 0.0),                      # ages 0, 1, 2: no fruit
    (4.0, 0.3 / 4),                  # ages 0-3
    (5.0, 0.9 / 5),                  # ages 0-4
    (8.0, 3.9 / 8),                  # ages 0-7
    (3.5, 0.5 * 0.3 / 3.5),          # half a year of age-3 trees
    (0.0, 0.0)])
def test_mean_factor_by_hand(years: float, expected: float) -> None:
    assert bench.mean_factor(FRUIT, years) == pytest.approx(expected, abs=1e-12)


def test_planting_years_inverts_the_mean() -> None:
    # between 3 and 4 years the mean is 0.3 (T - 3) / T, so a target t gives T = 0.9 / (0.3 - t); the seed's
    # 7,200 t on 68,000 mu over a mature 1,500 kg/mu is t = 0.0706
    target = 7200 * 1000 / 68000 / 1500
    assert bench.planting_years(FRUIT, target) == pytest.approx(0.9 / (0.3 - target), rel=1e-9)
    span = bench.planting_years(FRUIT, 0.5)  # past age 5: 3.9 / 8 = 0.4875 at 8 years, (3.9 + 1) / 9 at 9
    assert 8 < span < 9 and bench.mean_factor(FRUIT, span) == pytest.approx(0.5, rel=1e-9)
    assert np.isnan(bench.planting_years(FRUIT, 1.0)) and np.isnan(bench.planting_years(FRUIT, 0.0))


def test_people_reached_are_capped_at_the_village() -> None:
    parcels = pd.DataFrame({"village": ["A", "A", "B", "C"], "option": ["herbs", "herbs", "herbs", "keep"],
                            "area_mu": [20.0, 10.0, 6.0, 50.0]})
    villages = pd.DataFrame({"village": ["A", "B", "C"], "population": [40, 30, 10], "households": [10, 10, 2]})
    income = pd.Series({"A": 3000.0, "B": 900.0})
    before = pd.Series([100.0, 100.0, 60.0, 500.0])
    gained, earned, people = bench._reached(parcels, villages, "herbs", income, 2.0, before)
    # A: 30 mu / 2 = 15 households, capped at its 10, all 40 people; B: 6 / 2 = 3 households x 3 people = 9
    assert people == pytest.approx(49.0)
    assert earned == pytest.approx(3900.0) and gained == pytest.approx(3900.0 - 260.0)
