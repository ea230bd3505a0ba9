"""The service index's reference (optiland.pipeline.reference): the parcels' potential, closed form, or pinned."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optiland.errors import InputError
from optiland.io.scenario import load_scenario
from optiland.model.backend import make_backend
from optiland.pipeline.reference import potential, reference
from optiland.pipeline.run import solve_prepared, solver_options
from tests.bruteforce import prepare_tiny
from tests.test_golden_lp import CONSTRAINTS, OVERRIDES, PARCELS, VILLAGES

WEIGHTS = {"carbon": 0.4, "soil": 0.3, "water": 0.2, "habitat": 0.1}


def _tiny(weights: dict[str, float] = WEIGHTS, pinned: dict[str, float] | None = None,
          constraints: dict | None = None):  # type: ignore[no-untyped-def]
    prepared = prepare_tiny(PARCELS, VILLAGES, "ecosystem_services", constraints or CONSTRAINTS, OVERRIDES, weights)
    if pinned is not None:
        prepared.problem.scenario = prepared.scenario.with_(**{"objective.reference": pinned})
    return prepared


def test_potential_of_the_golden_instance_checked_by_hand() -> None:
    # the golden instance's allowed rows (small catalog): per parcel the best gain of any allowed row, keep = 0.
    # carbon: P0 zenia 1.40, P1 (red line, no keep) zenia 1.40, P2 zenia 1.44, P3 closure 1.08 -> 5.32
    # soil: P0 closure 4.6667, P1 closure 5.3333, P2 closure 6.4, P3 closure 20.4 -> 36.8
    # water: 6.0 + 2.0 + 4.8 + 6.75 = 19.55; habitat: 6.0 + 2.0 + 3.6 + 7.2 = 18.8
    problem = _tiny().problem
    assert potential(problem) == pytest.approx({"carbon": 5.32, "soil": 36.8, "water": 19.55, "habitat": 18.8},
                                               rel=1e-12)


def test_objective_coefficient_is_weight_times_gain_over_potential() -> None:
    """The index's coefficient on x[a] is sum_s w_s g_{a,s} / P_s, on both backends (the golden LP files hold
    only the income objective and the families' rows, which the reference does not change)."""
    prepared = _tiny()
    problem = prepared.problem
    scale = potential(problem)
    expected = sum(w * problem.allowed[f"gain_{s}"].to_numpy() / scale[s] for s, w in WEIGHTS.items())
    for name in ("pyomo", "matrix"):
        backend = make_backend(name, problem)
        backend.build(problem)
        backend.es_scale = reference(problem).values
        backend.set_objective({"ecosystem_services": 1.0}, "max", scale=backend.es_scale, weights=WEIGHTS)
        lp = backend.matrix()
        columns = [lp.col_names.index(f"x[{a}]") for a in range(len(problem.allowed))]
        assert lp.c[columns] == pytest.approx(expected, rel=1e-12, abs=1e-15), name


def test_index_is_at_most_one_and_the_reference_is_recorded() -> None:
    prepared = _tiny()
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60))
    assert outcome.reference is not None and outcome.reference.kind == "potential"
    assert outcome.es_scale == outcome.reference.values == potential(prepared.problem)
    assert 0 < outcome.result.objective <= sum(WEIGHTS.values()) + 1e-12
    record = outcome.reference.record()
    assert record["kind"] == "potential" and record["pinned"] == [] and record["values"] == outcome.es_scale


def test_the_same_reference_whatever_the_constraints() -> None:
    """Targets and limits do not move the scale: a sweep's runs compare."""
    loose = _tiny(constraints={})
    tight = _tiny()
    assert reference(loose.problem).values == reference(tight.problem).values


def test_pinned_references() -> None:
    some = reference(_tiny(pinned={"carbon": 2.0}).problem)
    assert some.kind == "mixed" and some.values["carbon"] == 2.0 and some.pinned == ["carbon"]
    assert some.values["soil"] == pytest.approx(36.8, rel=1e-12)
    every = reference(_tiny(pinned={"carbon": 2.0, "soil": 3.0, "water": 4.0, "habitat": 5.0}).problem)
    assert every.kind == "pinned" and every.values == {"carbon": 2.0, "soil": 3.0, "water": 4.0, "habitat": 5.0}
    prepared = _tiny(weights={"carbon": 1.0}, pinned={"carbon": 2.0})
    prepared.scenario = prepared.problem.scenario
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60))
    gain = float(np.dot(outcome.solution.x, prepared.problem.allowed["gain_carbon"].to_numpy()))
    assert outcome.result.objective == pytest.approx(gain / 2.0, rel=1e-9)


def test_unknown_pinned_service_names_the_nearest() -> None:
    with pytest.raises(InputError) as caught:
        reference(_tiny(pinned={"carbn": 2.0}).problem)
    text = str(caught.value)
    assert "objective.reference.carbn" in text and "did you mean 'carbon'" in text


@pytest.mark.parametrize("value", [0.0, -1.0, math.inf, math.nan])
def test_pinned_reference_must_be_positive_and_finite(tmp_path, value: float) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "scenario.toml"
    text = {0.0: "0.0", -1.0: "-1.0", math.inf: "inf", math.nan: "nan"}[value]
    path.write_text("[parcels]\npath = 'p.gpkg'\n[villages]\npath = 'v.csv'\n[objective.reference]\n"
                    f"carbon = {text}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    assert "objective.reference" in str(caught.value) and "positive finite" in str(caught.value)


def test_constrained_best_gain_is_an_lp_bound_between_the_optimum_and_the_potential() -> None:
    from tests.bruteforce import scan

    prepared = _tiny()
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60),
                             constrained_reference=True)
    bounds = outcome.reference.constrained_lp_bound
    assert bounds is not None and set(bounds) == set(WEIGHTS)
    every = scan(prepared.problem)
    for service in WEIGHTS:
        best = every.optimum(service, "max")  # G*_s by enumeration, under every constraint
        assert best - 1e-9 <= bounds[service] <= outcome.reference.values[service] + 1e-9, service
    assert outcome.es_scale == potential(prepared.problem)  # the figure does not rescale the index
    assert "constrained_lp_bound" in outcome.reference.record()
