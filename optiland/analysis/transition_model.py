"""The transition model: one function per constraint family with its formula (README, "Transition years and price
risk"), the elastic years, and the objectives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from optiland.analysis.transition_problem import CURRENT, LIVESTOCK, TransitionProblem
from optiland.mip.solver import SolveResult, SolverOptions
from optiland.model.backend import PyomoBackend
from optiland.model.formulation import objective_expression
from optiland.model.problem import price_schedule


# --------------------------------------------------------------------------------------------------- the model
def increments(factor: np.ndarray) -> np.ndarray:
    r"""A profile as steps: :math:`\Delta\rho(a) = \rho(a) - \rho(a-1)`, :math:`\rho(-1) = 0`."""
    return np.diff(factor, axis=1, prepend=0.0)


def _age_terms(m: pyo.ConcreteModel, groups: np.ndarray, by_age: np.ndarray, t: int) -> list[Any]:
    """Sum over groups q and ages a <= t of by_age[q, a] D[q, t - a], as a term list (zeros skipped)."""
    terms = []
    for q in groups:
        row = by_age[q]
        for age in np.flatnonzero(row[:t + 1]):
            terms.append(float(row[age]) * m.established[int(q), t - int(age)])
    return terms


def _terms(m: pyo.ConcreteModel, groups: np.ndarray, per_mu: np.ndarray, factor: np.ndarray, t: int) -> list[Any]:
    r"""The convolution :math:`\sum_q \sum_{\tau \le t} c_q \rho_q(t-\tau) E_{q,\tau}` over `groups`, written
    with the cumulative areas as :math:`\sum_q \sum_{a \le t} c_q \Delta\rho_q(a) D_{q,t-a}`: one term per
    step of the profile instead of one per year (a flat profile is the single term :math:`c_q D_{q,t}`)."""
    return _age_terms(m, groups, per_mu[:, None] * increments(factor), t)


def _final_area(m: pyo.ConcreteModel, tp: TransitionProblem) -> list[Any]:
    """A_q(x) = sum_{a in q} S_a x_a for each group."""
    area = tp.problem.allowed["area"].to_numpy(dtype=float)
    order = np.argsort(tp.row_group, kind="stable")
    bounds = np.searchsorted(tp.row_group[order], np.arange(len(tp.groups) + 1))
    return [pyo.quicksum(float(area[a]) * m.x[int(a)] for a in order[bounds[q]:bounds[q + 1]])
            for q in range(len(tp.groups))]


def phasing_variables(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Years, phasing areas and the yearly village quantities.

    :math:`D_{q,t} \ge 0` mu of group q established by the end of year t (cumulative: the area established in
    year :math:`\tau` is :math:`E_{q,\tau} = D_{q,\tau} - D_{q,\tau-1}`, :math:`D_{q,-1} = 0`; cumulative
    variables turn every convolution with a profile into one term per step of the profile);
    :math:`b_{v,t} \ge 0` head of cattle
    bought; :math:`r_{v,t} \ge 0` ranger posts staffed (continuous: planning quantities in the transition; the
    mature herd and posts :math:`h_v, r_v` stay integers as in the core); :math:`\sigma_{v,t} \ge 0` transition
    subsidy (only when the scenario gives a subsidy budget); :math:`z_{v,g,k,t} \ge 0` the income-bearing area of
    a priced variant sold in price step k; and the accounting variables of the floor rows."""
    p = tp.problem
    H = tp.horizon
    m.Y = pyo.RangeSet(0, H - 1)
    m.G = pyo.RangeSet(0, len(tp.groups) - 1)
    m.established = pyo.Var(m.G, m.Y, domain=pyo.NonNegativeReals)
    m.herd_bought = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    m.posts_staffed = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    if tp.config.subsidy_budget > 0:
        m.subsidy = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    m.P = pyo.RangeSet(0, len(tp.prices.products) - 1)
    m.product_income = pyo.Var(m.V, m.P, m.Y, domain=pyo.Reals)
    m.compensation_paid = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    steps = []
    for (option, variant), pair_steps in p.price_steps.items():
        for v in sorted(set(tp.groups.loc[tp.groups["priced"] & (tp.groups["option"] == option)
                                          & (tp.groups["variant"] == variant), "village"])):
            for k in range(len(pair_steps) + 1):
                for t in range(H):
                    steps.append((int(v), f"{option}.{variant}", k, t))
    m.ZY = pyo.Set(initialize=steps, dimen=4, ordered=True)
    m.step_area = pyo.Var(m.ZY, domain=pyo.NonNegativeReals)
    m.S_scen = pyo.RangeSet(0, len(tp.prices.names) - 1)
    m._groups_of_village = [np.flatnonzero(tp.groups["village"].to_numpy() == v) for v in range(len(p.villages))]


def phase_complete(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Every conversion of the plan happens within the horizon, once (``phase_complete``):
    :math:`D_{q,H} = A_q(x)`, and land once converted stays converted (``phase_order``): :math:`D_{q,t-1} \le
    D_{q,t}`; the herd reaches the plan's size (``herd_complete``): :math:`\sum_t b_{v,t} = h_v`. The yearly rows
    then read a group's final area as :math:`D_{q,H}`, not as the sum over its parcels again."""
    final = _final_area(m, tp)
    last = tp.horizon - 1
    m.phase_complete = pyo.Constraint(m.G, rule=lambda m, q: m.established[q, last] == final[q])
    m.phase_order = pyo.Constraint(m.G, pyo.RangeSet(1, last) if last else pyo.Set(initialize=[]),
                                   rule=lambda m, q, t: m.established[q, t - 1] <= m.established[q, t])
    m.herd_complete = pyo.Constraint(m.V, rule=lambda m, v: pyo.quicksum(m.herd_bought[v, t] for t in m.Y)
                                     == m.herd[v])
    m._final_area = final


def phasing_cap(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Conversions follow the scenario's phasing ("demonstration in year one, promotion in year two, full coverage
    in year three"): for each village v and option o,
    :math:`\sum_{q \in (v,o)} \sum_{\tau \le t} E_{q,\tau} \le \phi_t \sum_{q \in (v,o)} A_q(x)`."""
    if tp.phasing is None:
        return
    village, option = tp.groups["village"].to_numpy(), tp.groups["option"].to_numpy()
    index = [(int(v), str(o), t) for v, o in sorted(set(zip(village, option, strict=True)))
             for t in range(tp.horizon) if tp.phasing[t] < 1.0]

    def rule(m: pyo.ConcreteModel, v: int, o: str, t: int) -> Any:
        own = np.flatnonzero((village == v) & (option == o))
        done = pyo.quicksum(m.established[int(q), t] for q in own)
        return done <= float(tp.phasing[t]) * pyo.quicksum(m.established[int(q), tp.horizon - 1] for q in own)

    m.phasing_cap = pyo.Constraint(pyo.Set(initialize=index, dimen=3, ordered=True), rule=rule)


def yearly_herd_and_posts(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""The herd each year is fed by the grass established so far (``herd_feed``):
    :math:`\sum_{\tau \le t} b_{v,\tau} \le \kappa \sum_{q \in F_v} \sum_{\tau \le t} \rho_q(t-\tau) E_{q,\tau}`
    with :math:`\rho` forage's income profile (the grass yield by age); posts guard the hills closed so far
    (``posts_area``): :math:`\mu\, r_{v,t} \le \sum_{q \in R_v} \sum_{\tau \le t} E_{q,\tau}`, and at most the
    plan's posts (``posts_cap``): :math:`r_{v,t} \le r_v`."""
    p = tp.problem
    kappa = float(p.params["livestock"]["head_per_mu"])
    mu = float(p.params["rangers"]["mu_per_post"])
    forage = tp.groups["feeds_herd"].to_numpy()
    ranger = tp.groups["ranger"].to_numpy()
    ones = np.ones((len(tp.groups), tp.horizon))

    def feed(m: pyo.ConcreteModel, v: int, t: int) -> Any:
        own = m._groups_of_village[v]
        grass = _terms(m, own[forage[own]], np.full(len(tp.groups), kappa), tp.profile["income"], t)
        herd = pyo.quicksum(m.herd_bought[v, tau] for tau in range(t + 1))
        return herd <= pyo.quicksum(grass) if grass else herd == 0

    def guarded(m: pyo.ConcreteModel, v: int, t: int) -> Any:
        own = m._groups_of_village[v]
        closed = _terms(m, own[ranger[own]], np.ones(len(tp.groups)), ones, t)
        return mu * m.posts_staffed[v, t] <= pyo.quicksum(closed) if closed else m.posts_staffed[v, t] == 0

    m.herd_feed = pyo.Constraint(m.V, m.Y, rule=feed)
    m.posts_area = pyo.Constraint(m.V, m.Y, rule=guarded)
    m.posts_cap = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: m.posts_staffed[v, t] <= m.posts[v])


def yearly_budget(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Establishment spending each year within the yearly budget :math:`B_t`:
    :math:`\sum_q \sum_{\tau \le t} K_q\, c_q(t-\tau) E_{q,\tau} + (c^{\mathrm{buy}} + c^{\mathrm{shed}})
    \sum_v b_{v,t} \le B_t` (:math:`K_q` the catalog's establishment cost per mu, :math:`c_q` its spread over the
    first years, ``profiles.csv`` item cost; the core's total ``budget`` keeps holding over all years)."""
    if tp.yearly_budget is None:
        return
    livestock = tp.problem.params["livestock"]
    herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
    cost = tp.groups["cost"].to_numpy()
    every = np.arange(len(tp.groups))
    m.yearly_budget = pyo.Constraint(m.Y, rule=lambda m, t: pyo.quicksum(_terms(m, every, cost, tp.profile["cost"], t))
                                     + herd_cost * pyo.quicksum(m.herd_bought[v, t] for v in m.V)
                                     - _year_slack(m, "yearly_budget", t) <= float(tp.yearly_budget[t]))


def yearly_labour(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Labour each year within the village's labour days: the rows kept, the land not yet converted at its
    current use's days, the land converted at the option's days by age, and the herd:
    :math:`\sum_{a \in K_v} L_a x_a + \sum_{q \in v} \big[l^{\mathrm{cur}}_q (A_q(x) - \sum_{\tau \le t}
    E_{q,\tau}) + \sum_{\tau \le t} l_q \lambda_q(t-\tau) E_{q,\tau}\big] + \lambda_h \sum_{\tau \le t} b_{v,\tau}
    \le \mathrm{labour}_v`."""
    p = tp.problem
    days = p.allowed["labour"].to_numpy()
    keep = tp.row_group < 0
    per_head = float(p.params["livestock"]["labour_days_per_head"])
    available = p.villages["labour_days"].to_numpy()
    current = tp.groups["current_labour"].to_numpy()
    labour = tp.groups["labour"].to_numpy()
    by_age = labour[:, None] * increments(tp.profile["labour"])  # the option's days by age, less the current use's
    by_age[:, 0] -= current

    def rule(m: pyo.ConcreteModel, v: int, t: int) -> Any:
        rows = m._rows_village[v]
        rows = rows[keep[rows]]
        own = m._groups_of_village[v]
        kept = pyo.quicksum(float(days[a]) * m.x[int(a)] for a in rows if days[a])
        waiting = pyo.quicksum(float(current[q]) * m.established[int(q), tp.horizon - 1] for q in own if current[q])
        converted = pyo.quicksum(_age_terms(m, own, by_age, t))
        herd = per_head * pyo.quicksum(m.herd_bought[v, tau] for tau in range(t + 1))
        return (kept + waiting + converted + herd - _year_slack(m, "yearly_labour", (v, t)) <= float(available[v]))

    m.yearly_labour = pyo.Constraint(m.V, m.Y, rule=rule)


def yearly_income(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""Each village's income by product and year, at catalog prices (``product_income``):
    :math:`I_{v,k,t} = \sum_{q \in (v,k)} \sum_{\tau \le t} i_q \rho_q(t-\tau) E_{q,\tau}
    + \sum_{g \in k, j} f_{g,j}\, i_g\, z_{v,g,j,t}` for an option k (the price-stepped variants g sell their
    income-bearing area :math:`\sum_j z_{v,g,j,t} = \sum_{q \in (v,g)} \sum_{\tau \le t} \rho_q(t-\tau)
    E_{q,\tau}` in steps of county-wide width, as in the core's ``market``); the herd
    :math:`I_{v,\mathrm{livestock},t} = \pi \sum_{\tau \le t} \eta(t-\tau) b_{v,\tau}`; the current uses still
    in place :math:`I_{v,\mathrm{current},t} = \sum_{a \in K_v} I_a x_a + \sum_{q \in v} c_q (A_q(x) -
    \sum_{\tau \le t} E_{q,\tau})`; compensation paid
    :math:`C_{v,t} = \sum_{q \in v} \sum_{\tau \le t} \mathrm{comp}_q\, \gamma_q(t-\tau) E_{q,\tau}`.
    The village's income in scenario :math:`\omega`:

    .. math:: Y_{v,t,\omega} = N_v + \sum_k f_{k,\omega,t} I_{v,k,t} + C_{v,t} + w\, r_{v,t} + \sigma_{v,t}

    Ranger wages (:math:`w`, seed 002), compensation and subsidy do not depend on prices. The core's yearly
    ``transfer_budget`` holds in every year: :math:`\sum_v C_{v,t} + w\, r_{v,t} \le B^{\mathrm{transfer}}`;
    the ``subsidy_budget`` over the horizon: :math:`\sum_{v,t} \sigma_{v,t} \le S`."""
    p = tp.problem
    g = tp.groups
    products = tp.prices.products
    live_k, current_k = products.index(LIVESTOCK), products.index(CURRENT)
    income_rows = p.allowed["income"].to_numpy()
    keep = tp.row_group < 0
    income = g["income"].to_numpy()
    current = g["current_income"].to_numpy()
    comp = g["compensation"].to_numpy()
    product = g["product"].to_numpy()
    per_head = float(p.params["livestock"]["net_income_per_head"])
    ones = np.ones((len(g), tp.horizon))
    schedule = {f"{o}.{v}": price_schedule(p, o, v) for o, v in p.price_steps}  # (yuan per mu, width) per step
    pair = (g["option"] + "." + g["variant"]).to_numpy()
    priced = g["priced"].to_numpy()
    step_keys: dict[tuple[int, str, int], list[int]] = {}
    for (v, gg, k, t) in m.ZY:
        step_keys.setdefault((v, gg, t), []).append(k)

    def define(m: pyo.ConcreteModel, v: int, k: int, t: int) -> Any:
        own = m._groups_of_village[v]
        if k == live_k:
            value = per_head * pyo.quicksum(float(tp.livestock_profile[t - tau]) * m.herd_bought[v, tau]
                                            for tau in range(t + 1))
        elif k == current_k:
            rows = m._rows_village[v]
            rows = rows[keep[rows]]
            value = (pyo.quicksum(float(income_rows[a]) * m.x[int(a)] for a in rows if income_rows[a])
                     + pyo.quicksum(float(current[q]) * m.established[int(q), tp.horizon - 1]
                                    for q in own if current[q])
                     - pyo.quicksum(_terms(m, own, current, ones, t)))
        else:
            mine = own[product[own] == k]
            value = pyo.quicksum(_terms(m, mine, income, tp.profile["income"], t))
            for gg in sorted(set(pair[mine[priced[mine]]])):
                value += pyo.quicksum(schedule[gg][0][j] * m.step_area[v, gg, j, t] for j in step_keys[(v, gg, t)])
        return m.product_income[v, k, t] == value

    m.product_income_def = pyo.Constraint(m.V, m.P, m.Y, rule=define)
    m.compensation_def = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: m.compensation_paid[v, t] == pyo.quicksum(
        _terms(m, m._groups_of_village[v], comp, tp.profile["compensation"], t)))

    def link(m: pyo.ConcreteModel, v: int, gg: str, t: int) -> Any:
        own = m._groups_of_village[v]
        mine = own[(pair[own] == gg) & priced[own]]
        bearing = _terms(m, mine, np.ones(len(g)), tp.profile["income"], t)
        return pyo.quicksum(m.step_area[v, gg, j, t] for j in step_keys[(v, gg, t)]) == pyo.quicksum(bearing)

    m.price_step_link_year = pyo.Constraint(sorted(step_keys), rule=link)
    sold: dict[tuple[str, int, int], list[int]] = {}  # the villages selling in each (variant, bounded step, year)
    for (v, gg, k, t) in m.ZY:
        if np.isfinite(schedule[gg][1][k]):
            sold.setdefault((gg, k, t), []).append(v)
    m.price_step_width_year = pyo.Constraint(
        sorted(sold), rule=lambda m, gg, k, t: pyo.quicksum(m.step_area[v, gg, k, t] for v in sold[(gg, k, t)])
        <= float(schedule[gg][1][k]))

    nonland = (p.villages["nonland_income_per_capita"] * p.villages["population"]).to_numpy()
    wage = float(p.params["rangers"]["wage_per_post"])
    factor = tp.prices.factor
    subsidy = hasattr(m, "subsidy")

    def scenario_income(m: pyo.ConcreteModel, v: int, t: int, s: int) -> Any:
        return (float(nonland[v]) + pyo.quicksum(float(factor[s, k, t]) * m.product_income[v, k, t] for k in m.P)
                + m.compensation_paid[v, t] + wage * m.posts_staffed[v, t] + (m.subsidy[v, t] if subsidy else 0))

    m.income_year = pyo.Expression(m.V, m.Y, m.S_scen, rule=scenario_income)
    mean = tp.prices.mean
    m.expected_income_year = pyo.Expression(m.V, m.Y, rule=lambda m, v, t: float(nonland[v]) + pyo.quicksum(
        float(mean[k, t]) * m.product_income[v, k, t] for k in m.P) + m.compensation_paid[v, t]
        + wage * m.posts_staffed[v, t] + (m.subsidy[v, t] if subsidy else 0))
    if p.params.get("transfer_budget") is not None:
        limit = float(p.params["transfer_budget"])
        m.transfer_budget_year = pyo.Constraint(m.Y, rule=lambda m, t: pyo.quicksum(
            m.compensation_paid[v, t] + wage * m.posts_staffed[v, t] for v in m.V) <= limit)
    if subsidy:
        m.subsidy_budget = pyo.Constraint(expr=pyo.quicksum(m.subsidy[v, t] for v in m.V for t in m.Y)
                                          <= float(tp.config.subsidy_budget))


def income_floor_years(m: pyo.ConcreteModel, tp: TransitionProblem) -> None:
    r"""The floor in every year. Always at average prices (``average_floor``):
    :math:`\sum_\omega p_\omega Y_{v,t,\omega} \ge F_v\, \mathrm{pop}_v`; and by the scenario's risk measure, with
    the shortfall :math:`s_{v,t,\omega} \ge F_v \mathrm{pop}_v - Y_{v,t,\omega}`, :math:`s \ge 0`:

    - ``robust_floor``: :math:`Y_{v,t,\omega} \ge F_v\, \mathrm{pop}_v` for every scenario;
    - ``cvar_floor``: :math:`\eta_{v,t} + \frac{1}{1-\alpha} \sum_\omega p_\omega u_{v,t,\omega} \le \bar s\,
      \mathrm{pop}_v` with :math:`u_{v,t,\omega} \ge s_{v,t,\omega} - \eta_{v,t}`, :math:`u, \eta \ge 0`
      (Rockafellar and Uryasev 2000: the mean shortfall in the worst :math:`1-\alpha` of the scenarios);
    - ``icc_floor``: :math:`\sum_\omega p_\omega s_{v,t,\omega} \le \bar s\, \mathrm{pop}_v` (integrated chance
      constraint, Klein Haneveld 1986: the expected shortfall),

    :math:`\bar s` the scenario's ``max_shortfall`` in yuan per capita. The floor :math:`F_v` is the core's."""
    p = tp.problem
    need = p.floors_total()
    population = p.villages["population"].to_numpy(dtype=float)
    risk = tp.risk
    m.average_floor = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: m.expected_income_year[v, t]
                                     + _year_slack(m, "average_floor", (v, t)) >= float(need[v]))
    if risk.measure == "robust":
        m.robust_floor = pyo.Constraint(m.V, m.Y, m.S_scen, rule=lambda m, v, t, s: m.income_year[v, t, s]
                                        + _year_slack(m, "robust_floor", (v, t)) >= float(need[v]))
        return
    if risk.measure not in ("cvar", "icc"):
        return
    m.shortfall = pyo.Var(m.V, m.Y, m.S_scen, domain=pyo.NonNegativeReals)
    m.shortfall_def = pyo.Constraint(m.V, m.Y, m.S_scen, rule=lambda m, v, t, s: m.shortfall[v, t, s]
                                     >= float(need[v]) - m.income_year[v, t, s])
    probability = tp.prices.probability
    limit = float(risk.max_shortfall)
    if risk.measure == "icc":
        m.icc_floor = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: pyo.quicksum(
            float(probability[s]) * m.shortfall[v, t, s] for s in m.S_scen)
            - _year_slack(m, "icc_floor", (v, t)) <= limit * float(population[v]))
        return
    m.var_level = pyo.Var(m.V, m.Y, domain=pyo.NonNegativeReals)
    m.tail_excess = pyo.Var(m.V, m.Y, m.S_scen, domain=pyo.NonNegativeReals)
    m.tail_excess_def = pyo.Constraint(m.V, m.Y, m.S_scen, rule=lambda m, v, t, s: m.tail_excess[v, t, s]
                                       >= m.shortfall[v, t, s] - m.var_level[v, t])
    alpha = float(risk.alpha)
    m.cvar_floor = pyo.Constraint(m.V, m.Y, rule=lambda m, v, t: m.var_level[v, t] + pyo.quicksum(
        float(probability[s]) * m.tail_excess[v, t, s] for s in m.S_scen) / (1 - alpha)
        - _year_slack(m, "cvar_floor", (v, t)) <= limit * float(population[v]))


FAMILIES = {
    "phasing_variables": phasing_variables,
    "phase_complete": phase_complete,
    "phasing_cap": phasing_cap,
    "yearly_herd_and_posts": yearly_herd_and_posts,
    "yearly_budget": yearly_budget,
    "yearly_labour": yearly_labour,
    "yearly_income": yearly_income,
    "income_floor_years": income_floor_years,
}
"""The transition families in build order, added to the core model."""

ELASTIC_YEAR_FAMILIES = ("average_floor", "robust_floor", "cvar_floor", "icc_floor", "yearly_budget", "yearly_labour")


def _year_slack(m: pyo.ConcreteModel, family: str, key: Any) -> Any:
    """A nonnegative slack on (family, key) in the elastic model that explains an infeasible transition; else 0."""
    if not getattr(m, "_elastic_years", False):
        return 0
    if not hasattr(m, "year_slack"):
        m.year_slack = pyo.Var(pyo.Any, dense=False, domain=pyo.NonNegativeReals)
    where = "|".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
    return m.year_slack[f"{family}|{where}"]


def add_transition(m: pyo.ConcreteModel, tp: TransitionProblem, elastic: bool = False) -> None:
    """Add the transition families to a built core model."""
    m._elastic_years = elastic
    for family in FAMILIES.values():
        family(m, tp)


def cumulated_index(m: pyo.ConcreteModel, tp: TransitionProblem, scales: dict[str, float]) -> Any:
    r"""The mean yearly service index over the horizon, :math:`\frac{1}{H} \sum_s \frac{w_s}{G^*_s} \sum_t
    \sum_q \bar g_{q,s} \sum_{\tau \le t} \varsigma_q(t-\tau) E_{q,\tau}` (:math:`\bar g` the group's
    area-weighted mean gain per mu, :math:`\varsigma` its ``services`` profile)."""
    every = np.arange(len(tp.groups))
    total = 0
    for service, weight in tp.problem.params["weights"].items():
        if not weight or not scales.get(service):
            continue
        gain = tp.groups[f"gain_{service}"].to_numpy()
        # summed over the years the steps telescope: D[q, s] counts the profile's factor at age H - 1 - s
        tail = tp.profile["services"][:, ::-1]
        terms = [float(gain[q] * tail[q, s]) * m.established[int(q), s] for q in every for s in range(tp.horizon)
                 if gain[q] * tail[q, s] != 0.0]
        total += float(weight) / float(scales[service]) / tp.horizon * pyo.quicksum(terms)
    return total


def transition_objective(m: pyo.ConcreteModel, tp: TransitionProblem, scales: dict[str, float]) -> tuple[Any, str]:
    r"""The objective over the horizon: ``end`` the scenario's core objective at maturity (its phasing then
    polished by :func:`polish_phasing`); ``cumulated`` :func:`cumulated_index`; ``discounted_income``
    :math:`\sum_t (1+d)^{-(t-1)} \sum_v \mathrm{E}_\omega Y_{v,t,\omega}`."""
    p = tp.problem
    kind = tp.config.objective
    if kind == "end":
        return objective_expression(m, p.params["objective"], p.params.get("weights"), scales), p.params["sense"]
    if kind == "discounted_income":
        return discounted_income(m, tp), "max"
    return cumulated_index(m, tp, scales), "max"


def discounted_income(m: pyo.ConcreteModel, tp: TransitionProblem) -> Any:
    r"""The villages' expected incomes over the horizon, discounted: :math:`\sum_t (1+d)^{-(t-1)} \sum_v
    \mathrm{E}_\omega Y_{v,t,\omega}`."""
    rate = float(tp.config.discount_rate)
    return pyo.quicksum((1 + rate) ** (-t) * m.expected_income_year[v, t] for v in m.V for t in m.Y)


def polish_phasing(backend: PyomoBackend, tp: TransitionProblem, scales: dict[str, float],
                   options: SolverOptions) -> SolveResult:
    """With the plan at maturity fixed (x, herd, posts), the phasing that brings the gains earliest: maximise the
    cumulated service index (or, without one, the discounted income) over the phasing alone, an LP. The ``end``
    objective cannot tell two phasings apart, and a MIP stopped at its gap leaves the years wherever its search
    left them (on the demo: 9,500 mu closed in the last year with no reason); this second, lexicographic stage
    gives the years a meaning and makes them reproducible. The variables are unfixed afterwards."""
    m = backend._model()
    fixed = [var for var in (*m.x.values(), *m.herd.values(), *m.posts.values()) if not var.fixed]
    for var in fixed:
        var.fix(round(pyo.value(var, exception=False) or 0.0))
    m.del_component("objective")
    m.objective = pyo.Objective(expr=cumulated_index(m, tp, scales) if scales else discounted_income(m, tp),
                                sense=pyo.maximize)
    backend._compiled = None
    try:
        return backend.solve(options)
    finally:
        for var in fixed:
            var.unfix()
