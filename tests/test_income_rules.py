"""The balance rule and the catalog figures behind the industries: the balanced plan is the enumerated optimum of the
index under income >= today + share x (most income - today); understory grass feeds livestock_feed of a mu of open
forage; the herd's purchase financed by microcredit stays out of the budget; market_share scales the county market."""

from __future__ import annotations

import csv
import dataclasses
import re

import numpy as np
import pytest

from optiland._paths import models_dir
from optiland.io.catalog import load_catalog
from optiland.model.problem import build_problem
from optiland.pipeline.run import BALANCE_GAP
from optiland.testing import make_inputs
from tests.bruteforce import optimal_plan, prepare_tiny, scan, solve_exact
from tests.test_bruteforce import ALL_ACTIVE, OVERRIDES, TWO, TWO_VILLAGES
from tests.test_conversions import LAYER, VILLAGES, _prepare

KARST = models_dir() / "karst-southwest"


@pytest.mark.parametrize("share", [0.5, 0.9])
def test_balanced_plan_matches_enumeration(share: float) -> None:
    constraints = {**ALL_ACTIVE, "bounds": {}, "no_worse_off": True}
    prepared = prepare_tiny(TWO, TWO_VILLAGES, "ecosystem_services", constraints, OVERRIDES)
    prepared = dataclasses.replace(prepared, scenario=prepared.scenario.with_(**{"objective.income_gain_share": share}))
    prepared = dataclasses.replace(prepared, problem=build_problem(prepared.scenario, prepared.catalog,
                                                                  prepared.inputs))
    problem = prepared.problem
    assert problem.params["income_gain_share"] == share
    most = scan(problem).optimum("income", "max")
    today = float(problem.villages["income_before"].sum())
    outcome = solve_exact(prepared)
    note = next(n for n in outcome.notes if n.startswith("balance:"))
    found = re.search(r"at least ([\d,]+) yuan/yr = today ([\d,]+) \+ (\d+)% of the gain to the most income, ([\d,]+)",
                      note)
    assert found, note
    need, said_today, said_share, best = (float(g.replace(",", "")) for g in found.groups())
    assert said_today == pytest.approx(today, abs=0.5) and said_share == round(100 * share)
    assert (1 - BALANCE_GAP) * most - 0.5 <= best <= most + 0.5  # the most income, within the rule's gap
    assert need == pytest.approx(today + share * (best - today), abs=1.0)
    bounded = dataclasses.replace(problem, params={**problem.params, "bounds": {"income": (need, None)}})
    best, _ = optimal_plan(bounded, outcome.es_scale)
    assert best is not None
    assert outcome.result.objective == pytest.approx(best.value, rel=1e-6, abs=1e-9)
    unbalanced = optimal_plan(problem, outcome.es_scale)[0]
    assert unbalanced is not None and unbalanced.value >= best.value - 1e-9  # the rule costs index, never adds


def test_understory_grass_feeds_three_quarters_of_open_forage() -> None:
    rows = {(r["option"], r["variant"]): r for r in csv.DictReader((KARST / "variants.csv").open(encoding="utf-8"))}
    feed = float(rows[("understory_forage", "understory_forage")]["livestock_feed"])
    assert feed == 0.75  # seed 001: 132,000 head on 176,000 mu of understory grass, at 1.0 head per mu of open forage
    a = _prepare().problem.allowed
    under = a[a["option"] == "understory_forage"]
    open_ = a[a["option"] == "forage"]
    assert len(under) and len(open_)
    np.testing.assert_allclose(under["livestock_area"], feed * under["area"])
    np.testing.assert_allclose(open_["livestock_area"], open_["area"])


def test_cattle_purchase_on_credit_and_market_share() -> None:
    catalog = load_catalog(KARST)
    assert catalog.livestock["credit_financed_share"] == 1.0
    prepared = _prepare(constraints={"market_share": 0.25})
    livestock = prepared.problem.params["livestock"]
    assert livestock["purchase_cost_per_head"] == 0.0 and livestock["shed_cost_per_head"] > 0
    assert catalog.livestock["purchase_cost_per_head"] > 0  # the catalog keeps its figure
    caps = catalog.market["max_area_mu"]
    for (option, variant), cap in prepared.problem.market.items():
        assert cap == pytest.approx(0.25 * caps[(option, variant)])
    own = _prepare(constraints={"market_share": 0.25, "market": {"fruit.orah": 77}}).problem.market
    assert own[("fruit", "orah")] == 77  # the scenario's own limits are not scaled


def test_balance_rule_off() -> None:
    inputs = make_inputs(LAYER, VILLAGES)
    prepared = _prepare("ecosystem_services")
    assert prepared.problem.params["income_gain_share"] == 0.75  # the karst catalog's default
    off = prepared.scenario.with_(**{"objective.income_gain_share": 0})
    assert build_problem(off, prepared.catalog, inputs).params["income_gain_share"] is None
    income = prepared.scenario.with_(**{"objective.maximise": "income"})
    assert build_problem(income, prepared.catalog, inputs).params["income_gain_share"] is None


def test_checker_reads_feed_credit_market_share_and_area_limits() -> None:
    """The independent checker (optiland.check) applies livestock_feed, credit_financed_share, market_share and the
    area limits as the model does: the solved plan passes; a herd above 0.75 head per mu of understory grass, a
    broken area limit and a market cap scaled by market_share are caught."""
    from optiland.check import check, check_plan
    from optiland.pipeline.results import make_plan
    from optiland.pipeline.run import solve_prepared, solver_options

    constraints = {"market_share": 0.5, "areas": {"understory_forage": {"min": 10}}}
    prepared = _prepare("income", constraints=constraints)
    outcome = solve_prepared(prepared, solver_options(prepared.scenario, mip_rel_gap=0, time_limit=60))
    plan = make_plan(outcome)
    assert check(plan, prepared) == []
    parcels, villages = plan.parcels.copy(), plan.villages.copy()
    grass = parcels["option"] == "understory_forage"
    assert grass.any() and villages["herd"].sum() > 0
    area = parcels.loc[grass].groupby("village")["area_mu"].sum()
    village = area.index[0]
    most = int(np.floor(0.75 * area[village] + 1e-9))
    villages.loc[villages["village"] == village, "herd"] = most + 1
    found = [v for v in check_plan(prepared, parcels, villages) if v.family == "carrying_capacity"]
    assert [v.key for v in found] == [village] and found[0].amount == pytest.approx(most + 1 - 0.75 * area[village])
    tight = _prepare("income", constraints={**constraints, "areas": {"understory_forage": {"min": 1e5}},
                                            "township_areas": {"T1": {"herd": {"max": 0}}}})
    families = {v.family: v for v in check_plan(tight, plan.parcels, plan.villages)}
    assert "1e5" not in families["area_min"].message and "below its minimum of 100,000" in families["area_min"].message
    assert "above its maximum of 0" in families["area_max"].message
