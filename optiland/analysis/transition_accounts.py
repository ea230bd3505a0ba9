"""The transition plan read back, its yearly accounts recomputed with numpy, and every yearly row checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyomo.environ as pyo

from optiland.analysis.transition_problem import CURRENT, LIVESTOCK, TransitionProblem
from optiland.model.backend import Solution
from optiland.model.problem import fill_steps, price_schedule
from optiland.violations import Violation


# --------------------------------------------------------------------------------------------------- the plan
@dataclass
class TransitionPlan:
    """The years of a plan, as arrays: the core plan at maturity and its phasing."""

    core: Solution
    establish: np.ndarray
    """(groups, H) mu established per year."""
    herd_bought: np.ndarray
    """(villages, H)"""
    posts_staffed: np.ndarray
    """(villages, H)"""
    subsidy: np.ndarray
    """(villages, H)"""
    step_area: dict[tuple[int, str, int, int], float] = field(default_factory=dict)


def read_plan(m: pyo.ConcreteModel, tp: TransitionProblem, core: Solution) -> TransitionPlan:
    """The transition plan of the last solve, read from the Pyomo variables."""
    n_v, H = len(tp.problem.villages), tp.horizon

    def grid(var: Any, rows: int) -> np.ndarray:
        return np.array([[pyo.value(var[i, t], exception=False) or 0.0 for t in range(H)] for i in range(rows)],
                        dtype=float).reshape(rows, H)

    subsidy = grid(m.subsidy, n_v) if hasattr(m, "subsidy") else np.zeros((n_v, H))
    established = grid(m.established, len(tp.groups))
    return TransitionPlan(core=core, establish=np.maximum(np.diff(established, axis=1, prepend=0.0), 0.0),
                          herd_bought=np.maximum(grid(m.herd_bought, n_v), 0.0),
                          posts_staffed=np.maximum(grid(m.posts_staffed, n_v), 0.0), subsidy=np.maximum(subsidy, 0.0),
                          step_area={k: float(pyo.value(m.step_area[k], exception=False) or 0.0) for k in m.ZY})


def immediate_plan(tp: TransitionProblem, core: Solution) -> TransitionPlan:
    """The steady-state plan as most plans are carried out: every conversion and the whole herd in year 1, every
    post staffed as soon as the hills are closed (for comparing with a phased plan)."""
    n_v, H = len(tp.problem.villages), tp.horizon
    final = final_areas(tp, core.x)
    establish = np.zeros((len(tp.groups), H))
    establish[:, 0] = final
    herd = np.zeros((n_v, H))
    herd[:, 0] = core.herd
    posts = np.repeat(np.asarray(core.posts, dtype=float)[:, None], H, axis=1)
    return TransitionPlan(core=core, establish=establish, herd_bought=herd, posts_staffed=posts,
                          subsidy=np.zeros((n_v, H)))


def final_areas(tp: TransitionProblem, x: np.ndarray) -> np.ndarray:
    """A_q(x) per group."""
    area = tp.problem.allowed["area"].to_numpy(dtype=float)
    chosen = (np.asarray(x) > 0.5) & (tp.row_group >= 0)
    return np.bincount(tp.row_group[chosen], weights=area[chosen], minlength=len(tp.groups))


# --------------------------------------------------------------------------------------------------- accounts
@dataclass
class YearlyAccounts:
    """Every yearly quantity of a transition plan, recomputed from the plan with numpy (independently of the
    Pyomo model), so that a plan can be checked against every transition family."""

    income: np.ndarray
    """(villages, H, scenarios) yuan"""
    expected_income: np.ndarray
    """(villages, H)"""
    need: np.ndarray
    """(villages,) floor x population"""
    parts: dict[str, np.ndarray]
    """(villages, H) at average prices: nonland, current, each option, livestock, compensation, wages, subsidy"""
    labour: np.ndarray
    """(villages, H) days"""
    cost: np.ndarray
    """(H,) establishment spending"""
    transfers: np.ndarray
    """(H,) compensation + wages"""
    herd: np.ndarray
    """(villages, H) head"""
    feed: np.ndarray
    """(villages, H) head the grass established so far can feed"""
    guarded: np.ndarray
    """(villages, H) mu closed so far"""


def _convolve(establish: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """out[q, t] = sum_{tau <= t} profile[q, t - tau] establish[q, tau]."""
    H = establish.shape[1]
    out = np.zeros_like(establish)
    for tau in range(H):
        out[:, tau:] += establish[:, [tau]] * profile[:, :H - tau]
    return out


def _step_income(tp: TransitionProblem, bearing: np.ndarray) -> np.ndarray:
    """(groups, H) income of price-stepped groups: the plan's step areas if given are used by `accounts`; this is
    the market's proportional rule (every village gets the county's average step factor) for a plan without them."""
    p = tp.problem
    g = tp.groups
    out = np.zeros_like(bearing)
    for option, variant in p.price_steps:
        mine = np.flatnonzero(g["priced"].to_numpy() & (g["option"].to_numpy() == option)
                              & (g["variant"].to_numpy() == variant))
        if not len(mine):
            continue
        rates, widths = price_schedule(p, option, variant)
        total = bearing[mine].sum(axis=0)
        revenue = fill_steps(total, rates, widths, best=True)  # the steps fill from the best-paying one
        out[mine] = bearing[mine] * np.divide(revenue, total, out=np.zeros_like(total), where=total > 0)
    return out


def accounts(tp: TransitionProblem, plan: TransitionPlan) -> YearlyAccounts:
    """Recompute every yearly quantity of a plan."""
    p = tp.problem
    g = tp.groups
    H, n_v = tp.horizon, len(p.villages)
    a = p.allowed
    x = np.asarray(plan.core.x) > 0.5
    keep = (tp.row_group < 0) & x
    village_of_group = g["village"].to_numpy()
    E = plan.establish
    done = np.cumsum(E, axis=1)
    final = final_areas(tp, plan.core.x)
    waiting = final[:, None] - done

    def per_village(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n_v, values.shape[1]))
        np.add.at(out, village_of_group, values)
        return out

    def kept(column: str) -> np.ndarray:
        return np.bincount(a["village"].to_numpy()[keep], weights=a[column].to_numpy()[keep], minlength=n_v)

    bearing = _convolve(E, tp.profile["income"])
    option_income = g["income"].to_numpy()[:, None] * bearing
    if not plan.step_area:  # a plan without its step areas: the market's proportional rule
        option_income = option_income + _step_income(tp, bearing)
    products = tp.prices.products
    product_income = np.zeros((n_v, len(products), H))
    product = g["product"].to_numpy()
    for k in range(len(products) - 2):
        product_income[:, k, :] = per_village(option_income * (product == k)[:, None])
    if plan.step_area:
        rates = {f"{o}.{v}": price_schedule(p, o, v)[0] for o, v in p.price_steps}
        for (v, gg, j, t), area in plan.step_area.items():
            product_income[v, products.index(gg.split(".")[0]), t] += rates[gg][j] * area
    livestock = p.params["livestock"]
    herd = np.cumsum(plan.herd_bought, axis=1)
    bought_income = np.zeros((n_v, H))
    for tau in range(H):
        bought_income[:, tau:] += plan.herd_bought[:, [tau]] * tp.livestock_profile[None, :H - tau]
    product_income[:, products.index(LIVESTOCK), :] = float(livestock["net_income_per_head"]) * bought_income
    current = kept("income")[:, None] + per_village(g["current_income"].to_numpy()[:, None] * waiting)
    product_income[:, products.index(CURRENT), :] = current
    compensation = per_village(g["compensation"].to_numpy()[:, None] * _convolve(E, tp.profile["compensation"]))
    wage = float(p.params["rangers"]["wage_per_post"])
    wages = wage * plan.posts_staffed
    nonland = (p.villages["nonland_income_per_capita"] * p.villages["population"]).to_numpy()
    base = nonland[:, None] + compensation + wages + plan.subsidy
    income = base[:, :, None] + np.einsum("skt,vkt->vts", tp.prices.factor, product_income)
    expected = base + np.einsum("kt,vkt->vt", tp.prices.mean, product_income)
    parts = {"nonland": np.repeat(nonland[:, None], H, axis=1), "compensation": compensation, "wages": wages,
             "subsidy": plan.subsidy}
    for k, name in enumerate(products):
        parts[name] = tp.prices.mean[k][None, :] * product_income[:, k, :]
    labour = (kept("labour")[:, None] + per_village(g["current_labour"].to_numpy()[:, None] * waiting)
              + per_village(g["labour"].to_numpy()[:, None] * _convolve(E, tp.profile["labour"]))
              + float(livestock["labour_days_per_head"]) * herd)
    herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
    cost = (g["cost"].to_numpy()[:, None] * _convolve(E, tp.profile["cost"])).sum(axis=0) + herd_cost * (
        plan.herd_bought.sum(axis=0))
    kappa = float(livestock["head_per_mu"])
    feed = kappa * per_village(g["feeds_herd"].to_numpy()[:, None] * bearing)
    guarded = per_village(g["ranger"].to_numpy()[:, None] * done)
    return YearlyAccounts(income=income, expected_income=expected, need=p.floors_total(), parts=parts, labour=labour,
                          cost=cost, transfers=(compensation + wages).sum(axis=0), herd=herd, feed=feed,
                          guarded=guarded)


def _broken(family: str, where: str, amount: float, unit: str) -> Violation:
    """A broken transition row, as optiland.check reports any broken row: family, key, message, amount."""
    return Violation(family, where, f"{where}: off by {amount:,.2f} {unit}", float(amount))


def check_plan(tp: TransitionProblem, plan: TransitionPlan, tol: float = 1e-6) -> list[Violation]:
    """Every transition family the plan breaks (empty: it keeps them all), from `accounts`."""
    acc = accounts(tp, plan)
    p = tp.problem
    names = list(p.villages["village"])
    out: list[Violation] = []

    def slack(value: float, scale: float) -> bool:
        return value > tol * max(1.0, abs(scale))

    final = final_areas(tp, plan.core.x)
    done = plan.establish.sum(axis=1)
    for q in np.flatnonzero(np.abs(done - final) > tol * np.maximum(1.0, final)):
        row = tp.groups.iloc[q]
        out.append(_broken("phase_complete", f"{names[row.village]} {row.option}.{row.variant}",
                             float(done[q] - final[q]), "mu"))
    herd_gap = plan.herd_bought.sum(axis=1) - np.asarray(plan.core.herd, dtype=float)
    out += [_broken("herd_complete", names[v], float(herd_gap[v]), "head")
            for v in np.flatnonzero(np.abs(herd_gap) > tol * 10)]
    H = tp.horizon
    for v in range(len(names)):
        for t in range(H):
            where = f"{names[v]} year {t + 1}"
            if slack(acc.need[v] - acc.expected_income[v, t], acc.need[v]):
                out.append(_broken("average_floor", where, float(acc.need[v] - acc.expected_income[v, t]), "yuan"))
            if slack(acc.labour[v, t] - float(p.villages["labour_days"].iloc[v]), acc.labour[v, t]):
                out.append(_broken("yearly_labour", where,
                                     float(acc.labour[v, t] - p.villages["labour_days"].iloc[v]), "days"))
            if slack(acc.herd[v, t] - acc.feed[v, t], acc.herd[v, t]):
                out.append(_broken("herd_feed", where, float(acc.herd[v, t] - acc.feed[v, t]), "head"))
            mu = float(p.params["rangers"]["mu_per_post"])
            if slack(mu * plan.posts_staffed[v, t] - acc.guarded[v, t], acc.guarded[v, t]):
                out.append(_broken("posts_area", where, float(mu * plan.posts_staffed[v, t] - acc.guarded[v, t]),
                                     "mu"))
            if slack(plan.posts_staffed[v, t] - float(plan.core.posts[v]), 1.0):
                out.append(_broken("posts_cap", where, float(plan.posts_staffed[v, t] - plan.core.posts[v]),
                                     "posts"))
    out += _risk_violations(tp, acc, names, slack)
    if tp.yearly_budget is not None:
        for t in np.flatnonzero([slack(c - b, b) for c, b in zip(acc.cost, tp.yearly_budget, strict=True)]):
            out.append(_broken("yearly_budget", f"year {t + 1}", float(acc.cost[t] - tp.yearly_budget[t]), "yuan"))
    limit = p.params.get("transfer_budget")
    if limit is not None:
        for t in np.flatnonzero([slack(value - limit, limit) for value in acc.transfers]):
            out.append(_broken("transfer_budget_year", f"year {t + 1}", float(acc.transfers[t] - limit), "yuan"))
    if slack(plan.subsidy.sum() - tp.config.subsidy_budget, tp.config.subsidy_budget):
        out.append(_broken("subsidy_budget", "horizon", float(plan.subsidy.sum() - tp.config.subsidy_budget),
                             "yuan"))
    if tp.phasing is not None:
        option = tp.groups["option"].to_numpy()
        village = tp.groups["village"].to_numpy()
        cumulative = np.cumsum(plan.establish, axis=1)
        for v, o in sorted(set(zip(village, option, strict=True))):
            own = (village == v) & (option == o)
            for t in range(H):
                excess = cumulative[own, t].sum() - tp.phasing[t] * final[own].sum()
                if slack(excess, final[own].sum()):
                    out.append(_broken("phasing_cap", f"{names[v]} {o} year {t + 1}", float(excess), "mu"))
    return out


def shortfall(acc: YearlyAccounts) -> np.ndarray:
    """(villages, H, scenarios) yuan below the floor (0 where above)."""
    return np.maximum(acc.need[:, None, None] - acc.income, 0.0)


def cvar(values: np.ndarray, probability: np.ndarray, alpha: float) -> float:
    """CVaR_alpha of a discrete loss: the mean of the worst 1 - alpha of the probability mass."""
    order = np.argsort(values)[::-1]
    mass, total, tail = 0.0, 0.0, 1.0 - alpha
    for i in order:
        take = min(float(probability[i]), tail - mass)
        if take <= 0:
            break
        total += take * float(values[i])
        mass += take
    return total / tail


def _risk_violations(tp: TransitionProblem, acc: YearlyAccounts, names: list[str], slack: Any) -> list[Violation]:
    risk = tp.risk
    out: list[Violation] = []
    gap = shortfall(acc)
    population = tp.problem.villages["population"].to_numpy(dtype=float)
    for v in range(len(names)):
        limit = risk.max_shortfall * population[v]
        for t in range(tp.horizon):
            where = f"{names[v]} year {t + 1}"
            if risk.measure == "robust":
                worst = int(np.argmax(gap[v, t]))
                if slack(gap[v, t, worst], acc.need[v]):
                    out.append(_broken("robust_floor", f"{where} scenario {tp.prices.names[worst]}",
                                         float(gap[v, t, worst]), "yuan"))
            elif risk.measure == "icc":
                expected = float(tp.prices.probability @ gap[v, t])
                if slack(expected - limit, acc.need[v]):
                    out.append(_broken("icc_floor", where, expected - limit, "yuan"))
            elif risk.measure == "cvar":
                value = cvar(gap[v, t], tp.prices.probability, risk.alpha)
                if slack(value - limit, acc.need[v]):
                    out.append(_broken("cvar_floor", where, value - limit, "yuan"))
    return out
