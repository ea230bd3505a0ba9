r"""The land-use MIP, written once in Pyomo: one function per constraint family, named for what it means.

Notation. :math:`a \in A` allowed (parcel, option, variant) rows (`problem.allowed`); :math:`A_p`, :math:`A_v`,
:math:`A_t` the rows of parcel p, village v, township t. :math:`x_a \in \{0, 1\}` chooses row a. Per village v:
:math:`h_v \in \mathbb{Z}_+` head of cattle (livestock), :math:`r_v \in \mathbb{Z}_+` ranger posts. Coefficients of
a row are totals over the parcel's area: income :math:`I_a`, compensation :math:`C_a`, establishment cost :math:`K_a`,
labour :math:`L_a`, area :math:`S_a`, service gain :math:`G_{s,a}` (chosen level minus current level, times area).

The red-line, suitability and farmland families are encoded in the allowed set itself (see optiland.model.problem): a
forbidden (parcel, option, variant) is never created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyomo.environ as pyo

from optiland.model.problem import PlanningProblem, village_sum

SERVICE_OBJECTIVES = ("carbon", "soil", "water", "habitat")


def _groups(keys: np.ndarray, size: int) -> list[np.ndarray]:
    """Row positions grouped by an integer key in [0, size)."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(size + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(size)]


def _lin(m: pyo.ConcreteModel, rows: np.ndarray, coef: np.ndarray) -> Any:
    """sum_a coef_a x_a over `rows`, skipping zero coefficients."""
    return pyo.quicksum(float(coef[a]) * m.x[int(a)] for a in rows if coef[a] != 0.0)


def variables(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Decision variables: :math:`x_a` binary per allowed row; :math:`h_v`, :math:`r_v` integer per village; and
    :math:`z_{v,g,k} \ge 0`, the area of priced variant g in village v sold in price step k."""
    m.A = pyo.RangeSet(0, len(p.allowed) - 1)
    m.V = pyo.RangeSet(0, len(p.villages) - 1)
    m.x = pyo.Var(m.A, domain=pyo.Binary)
    m.herd = pyo.Var(m.V, domain=pyo.NonNegativeIntegers)
    m.posts = pyo.Var(m.V, domain=pyo.NonNegativeIntegers)
    allowed = p.allowed
    m._rows_village = _groups(allowed["village"].to_numpy(), len(p.villages))
    m._rows_parcel = _groups(allowed["parcel"].to_numpy(), p.n_parcels)
    township_of_row = np.append(p.villages["township_idx"].to_numpy(), -1)[allowed["village"].to_numpy()]
    m._township_of_row = township_of_row
    m._rows_township = _groups(township_of_row, len(p.townships))
    pairs = list(zip(allowed["option"], allowed["variant"], strict=True))
    m._pair = np.array([f"{o}.{v}" for o, v in pairs], dtype=object)
    priced = np.zeros(len(allowed), dtype=bool)
    segments = []
    for (option, variant), steps in p.price_steps.items():
        rows = (allowed["option"].to_numpy() == option) & (allowed["variant"].to_numpy() == variant)
        priced |= rows & allowed["harvest"].to_numpy()
        for v in np.unique(allowed["village"].to_numpy()[rows]):
            for k in range(len(steps) + 1):
                segments.append((int(v), f"{option}.{variant}", k))
    m._priced = priced
    m.Z = pyo.Set(initialize=segments, dimen=3, ordered=True)
    m.z = pyo.Var(m.Z, domain=pyo.NonNegativeReals)


def expressions(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Named expressions the constraints and objectives share.

    .. math::
        \mathrm{land}_v = \sum_{a \in A_v, a \notin P} I_a x_a + \sum_{g,k} f_{g,k}\, i_g\, z_{v,g,k}, \quad
        \mathrm{cattle}_v = \pi h_v, \quad \mathrm{comp}_v = \sum_{a \in A_v} C_a x_a, \quad
        \mathrm{wages}_v = w r_v

    .. math::
        \mathrm{income}_v = N_v + \mathrm{land}_v + \mathrm{cattle}_v + \mathrm{comp}_v + \mathrm{wages}_v

    with :math:`N_v` the village's non-land income (per capita times population), :math:`P` the rows of variants
    with price steps, :math:`i_g` their net income per mu and :math:`f_{g,k}` the income factor of step k.
    """
    a = p.allowed
    income = a["income"].to_numpy() * ~m._priced
    comp = a["compensation"].to_numpy()
    livestock = p.params["livestock"]
    wage = float(p.params["rangers"]["wage_per_post"])
    nonland = (p.villages["nonland_income_per_capita"] * p.villages["population"]).to_numpy()
    per_mu = {f"{o}.{v}": float(p.catalog.variants.loc[(o, v), "net_income_per_mu"]) for o, v in p.price_steps}
    factors = {f"{o}.{v}": [1.0] + [f for _, f in steps] for (o, v), steps in p.price_steps.items()}

    def land(m: pyo.ConcreteModel, v: int) -> Any:
        priced = pyo.quicksum(factors[g][k] * per_mu[g] * m.z[vv, g, k] for (vv, g, k) in m.Z if vv == v)
        return _lin(m, m._rows_village[v], income) + priced

    m.land_income = pyo.Expression(m.V, rule=land)
    m.cattle_income = pyo.Expression(m.V, rule=lambda m, v: float(livestock["net_income_per_head"]) * m.herd[v])
    m.compensation = pyo.Expression(m.V, rule=lambda m, v: _lin(m, m._rows_village[v], comp))
    m.wages = pyo.Expression(m.V, rule=lambda m, v: wage * m.posts[v])
    m.village_income = pyo.Expression(
        m.V, rule=lambda m, v: float(nonland[v]) + m.land_income[v] + m.cattle_income[v] + m.compensation[v]
        + m.wages[v])
    herd_cost = float(livestock["purchase_cost_per_head"]) + float(livestock["shed_cost_per_head"])
    cost = a["cost"].to_numpy()
    m.total_income = pyo.Expression(expr=pyo.quicksum(m.village_income[v] for v in m.V))
    m.total_cost = pyo.Expression(expr=_lin(m, np.arange(len(a)), cost)
                                  + herd_cost * pyo.quicksum(m.herd[v] for v in m.V))
    m.S = pyo.Set(initialize=p.services, ordered=True)
    m.gain = pyo.Expression(m.S, rule=lambda m, s: _lin(m, np.arange(len(a)), a[f"gain_{s}"].to_numpy()))


def one_use(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Each parcel gets exactly one allowed (option, variant): :math:`\sum_{a \in A_p} x_a = 1 \;\forall p`."""
    m.one_use = pyo.Constraint(pyo.RangeSet(0, p.n_parcels - 1),
                               rule=lambda m, i: pyo.quicksum(m.x[int(a)] for a in m._rows_parcel[i]) == 1)


def income_floor(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Every village reaches its per-capita income floor:
    :math:`\mathrm{income}_v \ge F_v\, \mathrm{pop}_v` (in the elastic model used to explain infeasibility,
    :math:`\mathrm{income}_v + s_v \ge F_v\, \mathrm{pop}_v` with a shortfall :math:`s_v \ge 0`).

    :math:`F_v` defaults to 4,000 yuan per capita per year (2020 rural line; catalog ``defaults.income_floor``, an
    assumption the scenario overrides, per village too); population is the registered resident population.
    """
    m.income_floor = pyo.Constraint(
        m.V, rule=lambda m, v: m.village_income[v] + _slack(m, "income_floor", v) >= m.target["income_floor", v])


def no_worse_off(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""No village is worse off than today: :math:`\mathrm{income}_v \ge (1 + g_v)\, B_v` for every village v
    with the rule on, where :math:`B_v = N_v + \sum_{p \in v} I^{\mathrm{current}}_p` is its income today
    (non-land income plus the current uses' land income, ``current_uses.income_per_mu`` times area) and
    :math:`g_v` its growth target (0: no worse off; scenario ``income_growth``, per village or township). Per
    capita the same, population being fixed. In the elastic model
    :math:`\mathrm{income}_v + s_v \ge (1 + g_v) B_v`.

    Source: seed 003 (consolidating poverty alleviation: no relapse, incomes that keep rising) and the catalog's
    ``defaults.no_worse_off`` (issue 21: a plan a county bureau signs leaves no village worse off)."""
    keys = [v for v in range(len(p.villages)) if ("no_worse_off", v) in m.target]
    m.no_worse_off = pyo.Constraint(
        keys, rule=lambda m, v: m.village_income[v] + _slack(m, "no_worse_off", v) >= m.target["no_worse_off", v])


def transfer_budget(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Compensation and ranger wages come from one yearly ecological-compensation budget B:
    :math:`\sum_v (\mathrm{comp}_v + \mathrm{wages}_v) \le B`; optionally each village's transfers are at most a
    share :math:`\sigma_v` of its income, :math:`\mathrm{comp}_v + \mathrm{wages}_v \le \sigma_v\,\mathrm{income}_v`
    (scenario ``max_transfer_share``, per village or township ``village_transfer_shares``)
    (seed 003: incomes that hinge on transfers relapse when they stop)."""
    if ("transfer_budget", 0) in m.target:
        m.transfer_budget = pyo.Constraint(
            expr=pyo.quicksum(m.compensation[v] + m.wages[v] for v in m.V) - _slack(m, "transfer_budget", 0)
            <= m.target["transfer_budget", 0])
    capped = [v for v in range(len(p.villages)) if ("transfer_share", v) in m.target]
    if capped:
        m.transfer_share = pyo.Constraint(
            capped, rule=lambda m, v: m.compensation[v] + m.wages[v]
            <= m.target["transfer_share", v] * m.village_income[v])


def carrying_capacity(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""The herd is fed by forage grass: :math:`h_v \le \kappa \sum_{a \in A_v} S^{\mathrm{forage}}_a x_a`
    (:math:`S^{\mathrm{forage}}_a` the area of a livestock option times its variant's ``livestock_feed``, the share of
    a mu of open forage it feeds: 0.75 for understory grass in the karst catalog, seed 001), with
    :math:`\kappa` head per mu (catalog ``livestock.head_per_mu``: a stated assumption between seed 001's 0.75 and
    the 1.5 reported for Huanjiang by Farmers' Daily, 2024-11-23)."""
    kappa = float(p.params["livestock"]["head_per_mu"])
    area = p.allowed["livestock_area"].to_numpy()
    m.carrying_capacity = pyo.Constraint(
        m.V, rule=lambda m, v: m.herd[v] <= kappa * _lin(m, m._rows_village[v], area)
        if area[m._rows_village[v]].any() else m.herd[v] == 0)


def ranger_posts(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Ranger posts guard closed hills: :math:`\mu\, r_v \le \sum_{a \in A_v} S^{\mathrm{closure}}_a x_a` (one post
    per :math:`\mu` mu, catalog ``rangers.mu_per_post``), and at most :math:`\rho` posts per household
    (:math:`r_v \le \rho H_v`); wages are paid from the transfer budget (seed 002: 10,000 yuan a year)."""
    mu = float(p.params["rangers"]["mu_per_post"])
    per_household = float(p.params["rangers"].get("max_posts_per_household", 1))
    area = p.allowed["ranger_area"].to_numpy()
    households = p.villages["households"].to_numpy()
    m.ranger_posts = pyo.Constraint(m.V, rule=lambda m, v: mu * m.posts[v] <= _lin(m, m._rows_village[v], area)
                                    if area[m._rows_village[v]].any() else m.posts[v] == 0)
    m.ranger_households = pyo.Constraint(m.V, rule=lambda m, v: m.posts[v] <= per_household * float(households[v]))


def labour(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Labour used stays within labour available, per village:
    :math:`\sum_{a \in A_v} L_a x_a + \lambda h_v \le \mathrm{labour}_v` (days/yr; per-mu figures from the
    catalog, :math:`\lambda` = ``livestock.labour_days_per_head``)."""
    days = p.allowed["labour"].to_numpy()
    per_head = float(p.params["livestock"]["labour_days_per_head"])
    available = p.villages["labour_days"].to_numpy()
    m.labour = pyo.Constraint(m.V, rule=lambda m, v: _lin(m, m._rows_village[v], days) + per_head * m.herd[v]
                              - _slack(m, "labour", v) <= float(available[v]))


def budget(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Establishment spending within the budget: :math:`\sum_a K_a x_a + (c^{\mathrm{buy}} + c^{\mathrm{shed}})
    \sum_v h_v \le B^{\mathrm{est}}` for the scenario, and per township t where the scenario gives one."""
    if ("budget", 0) in m.target:
        m.budget = pyo.Constraint(expr=m.total_cost - _slack(m, "budget", 0) <= m.target["budget", 0])
    per_township = p.params.get("township_budgets") or {}
    if per_township:
        names = list(p.townships["township"])
        cost = p.allowed["cost"].to_numpy()
        herd_cost = float(p.params["livestock"]["purchase_cost_per_head"]) + float(
            p.params["livestock"]["shed_cost_per_head"])
        town_of_village = p.villages["township_idx"].to_numpy()
        index = [names.index(t) for t in per_township]

        def rule(m: pyo.ConcreteModel, t: int) -> Any:
            herd = pyo.quicksum(m.herd[v] for v in m.V if town_of_village[v] == t)
            return (_lin(m, m._rows_township[t], cost) + herd_cost * herd - _slack(m, "township_budget", t)
                    <= m.target["township_budget", t])

        m.township_budget = pyo.Constraint(index, rule=rule)


def diversity(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""No single variety or species dominates a township: for options o with ``diversity_capped`` and each of
    their variants g, :math:`\sum_{a \in A_t \cap g} S_a x_a \le \delta\, U_{t,o}` where
    :math:`U_{t,o} = \sum_{a \in A_t \cap o} S_a x_a` is the option's area in the township, a continuous variable
    defined once (``option_area``) so that each x appears in one diversity row, not in one per sibling variant
    (seeds: avoid large single-species fruit or timber plantations)."""
    if ("diversity_cap", 0) not in m.target:
        return
    a = p.allowed
    capped = a["diversity_capped"].to_numpy()
    area = a["area"].to_numpy()
    options = a["option"].to_numpy()
    index, groups = [], []
    for t, rows in enumerate(m._rows_township):
        rows = rows[capped[rows]]
        for option in sorted(set(options[rows])):
            groups.append((t, option))
        for pair in sorted(set(m._pair[rows])):
            index.append((t, pair))
    m.option_area_index = pyo.Set(initialize=groups, dimen=2, ordered=True)
    m.option_area = pyo.Var(m.option_area_index, domain=pyo.NonNegativeReals)

    def define(m: pyo.ConcreteModel, t: int, option: str) -> Any:
        rows = m._rows_township[t]
        return m.option_area[t, option] == _lin(m, rows[options[rows] == option], area)

    def rule(m: pyo.ConcreteModel, t: int, pair: str) -> Any:
        rows = m._rows_township[t]
        own = rows[m._pair[rows] == pair]
        return _lin(m, own, area) <= m.target["diversity_cap", 0] * m.option_area[t, pair.split(".")[0]]

    m.option_area_def = pyo.Constraint(m.option_area_index, rule=define)
    m.diversity = pyo.Constraint(pyo.Set(initialize=index, dimen=2, ordered=True), rule=rule)


def area_rows(p: PlanningProblem, key: str) -> tuple[np.ndarray, np.ndarray]:
    """For an area limit ``"<scope>:<name>"``: the allowed rows it sums (area coefficient, 0 elsewhere) and the
    villages whose herds it sums (empty unless name is ``herd``)."""
    scope, name = key.split(":", 1)
    a = p.allowed
    township = np.append(p.villages["township_idx"].to_numpy(), -1)[a["village"].to_numpy()]
    names = list(p.townships["township"])
    in_scope = np.ones(len(a), dtype=bool) if scope == "*" else township == names.index(scope)
    town_of_village = p.villages["township_idx"].to_numpy()
    if name == "herd":
        villages = np.arange(len(p.villages)) if scope == "*" else np.flatnonzero(
            town_of_village == names.index(scope))
        return np.zeros(len(a)), villages
    option, _, variant = name.partition(".")
    match = a["option"].to_numpy() == option
    if variant:
        match &= a["variant"].to_numpy() == variant
    return np.where(match & in_scope, a["area"].to_numpy(dtype=float), 0.0), np.zeros(0, dtype=np.int64)


def area_limits(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Demonstration bases and market plans: the area of an option or variant g (or the herd), over the plan or in
    township t, between the scenario's bounds, ``area_min``: :math:`\sum_{a \in g (\cap A_t)} S_a x_a \ge L_g`
    and ``area_max``: :math:`\le U_g`; for the herd :math:`\sum_{v (\in t)} h_v`. In the elastic model a shortfall
    or excess slack. Source: seed 001 (demonstration bases of 500 mu of grass, 66 mu of a medicinal herb; "12 township
    industrial plans")."""
    def expression(key: str) -> Any:
        area, villages = area_rows(p, key)
        return _lin(m, np.flatnonzero(area), area) + pyo.quicksum(m.herd[int(v)] for v in villages)

    def rule(m: pyo.ConcreteModel, key: str, family: str) -> Any:
        expr = expression(key)
        need = m.target[family, key]
        if family == "area_min":
            expr = expr + _slack(m, family, key)
            if isinstance(expr, (int, float)):
                return pyo.Constraint.Feasible if expr >= pyo.value(need) else pyo.Constraint.Infeasible
            return expr >= need
        expr = expr - _slack(m, family, key)
        if isinstance(expr, (int, float)):
            return pyo.Constraint.Feasible if expr <= pyo.value(need) else pyo.Constraint.Infeasible
        return expr <= need

    for family in ("area_min", "area_max"):
        keys = [key for (f, key) in target_values(p) if f == family]
        setattr(m, family, pyo.Constraint(keys, rule=lambda m, key, family=family: rule(m, key, family)))


def forest_cover(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Forest-type uses cover at least a share :math:`\phi` of each township's area:
    :math:`\sum_{a \in A_t,\ \mathrm{forest}(a)} S_a x_a \ge \phi\, S_t`."""
    if p.params.get("forest_cover_min") is None:
        return
    forest_area = p.allowed["area"].to_numpy() * p.allowed["forest"].to_numpy()

    def rule(m: pyo.ConcreteModel, t: int) -> Any:
        covered = _lin(m, m._rows_township[t], forest_area) + _slack(m, "forest_cover", t)
        need = m.target["forest_cover", t]
        if isinstance(covered, (int, float)):  # no forest-type use allowed in the township: a constant, not a row
            return pyo.Constraint.Feasible if covered >= pyo.value(need) else pyo.Constraint.Infeasible
        return covered >= need

    m.forest_cover = pyo.Constraint(pyo.RangeSet(0, len(p.townships) - 1), rule=rule)


def market(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""The market takes at most :math:`M_g` mu of variant g: :math:`\sum_{a \in g} S_a x_a \le M_g`; and where the
    price falls in steps beyond thresholds :math:`T_{g,1} < T_{g,2} < \dots`, the harvested area is split into
    steps: :math:`\sum_k z_{v,g,k} = \sum_{a \in A_v \cap g} S_a x_a` and
    :math:`\sum_v z_{v,g,k} \le T_{g,k+1} - T_{g,k}` (step 0 starts at 0), each step earning :math:`f_{g,k}` times
    the net income (catalog ``price_steps.csv``: "yield up, income not"). The plan shares the market's revenue
    among villages (a cooperative sharing rule)."""
    area = p.allowed["area"].to_numpy()
    caps = {f"{o}.{v}": cap for (o, v), cap in p.market.items() if (m._pair == f"{o}.{v}").any()}
    m.market = pyo.Constraint(list(caps), rule=lambda m, g: _lin(m, np.flatnonzero(m._pair == g), area)
                              - _slack(m, "market", g) <= m.target["market", g])
    if not len(m.Z):
        return
    harvested = area * m._priced

    def link(m: pyo.ConcreteModel, v: int, g: str) -> Any:
        rows = m._rows_village[v]
        rows = rows[m._pair[rows] == g]
        return pyo.quicksum(m.z[v, g, k] for (vv, gg, k) in m.Z if vv == v and gg == g) == _lin(m, rows, harvested)

    m.price_step_link = pyo.Constraint(sorted({(v, g) for (v, g, _) in m.Z}), rule=link)
    widths = {}
    for (option, variant), steps in p.price_steps.items():
        starts = [0.0] + [s for s, _ in steps]
        for k in range(len(steps)):
            widths[(f"{option}.{variant}", k)] = starts[k + 1] - starts[k]
    present = {(g, k) for (_, g, k) in m.Z if (g, k) in widths}
    m.price_step_width = pyo.Constraint(
        sorted(present), rule=lambda m, g, k: pyo.quicksum(m.z[v, gg, kk] for (v, gg, kk) in m.Z
                                                          if gg == g and kk == k) <= float(widths[(g, k)]))


def _parcel_group_rows(p: PlanningProblem) -> tuple[np.ndarray, np.ndarray, int]:
    """Group position of every allowed row, the (parcel, group) possibility matrix, and the number of groups."""
    spatial = p.spatial
    assert spatial is not None
    group = spatial.group_index(p.allowed["option"].to_numpy())
    k = len(spatial.groups) - 1
    can = np.zeros((p.n_parcels, k), dtype=bool)
    can[p.allowed["parcel"].to_numpy(), group] = True
    return group, can, k


def boundary_penalty(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Boundary penalty between option groups (Marxan's BLM x boundary; prioritizr's boundary penalty), exact.

    :math:`g_{i,k} = \sum_{a \in A_i,\ \mathrm{group}(a) = k} x_a` is 1 when parcel i is in group k (no variable).
    A shared boundary e = (i, j) of length :math:`b_e` costs :math:`\beta\, b_e\, w_{k(i), k(j)}`, an outer edge
    of length :math:`o_i` costs :math:`\beta\, o_i\, w_{k(i), \mathrm{outside}}` (:math:`\beta` the
    ``[spatial] boundary_penalty``, w the group weights of optiland.model.spatial). With :math:`K_i` the groups
    parcel i can
    take (after site rules and locks):

    - :math:`|K_i| = 1` or :math:`|K_j| = 1`: the penalty is linear in the other parcel's :math:`g`, e.g.
      :math:`\beta b_e \sum_l w_{k_i, l}\, g_{j,l}`; no variable, no row. Outer edges are linear too.
    - otherwise one variable :math:`s_e \ge 0` (``boundary_split``) with, for every pair
      :math:`(k, l) \in K_i \times K_j` with :math:`w_{kl} > 0`, the row ``boundary_pair[e,k,l]``:
      :math:`s_e \ge w_{kl}\,(g_{i,k} + g_{j,l} - 1)`. At integer x exactly one pair has
      :math:`g_{i,k} + g_{j,l} - 1 = 1` and every other is at most 0, so the least feasible :math:`s_e` is
      :math:`w_{k(i),k(j)}`; the objective minimises the penalty (adds it to a cost, subtracts it from a gain), so it
      takes that value: the linearisation is exact.
    - when w is uniform (:math:`w_{kl} = w` between groups, 0 within one), fewer rows suffice,
      ``boundary_diff[e,k]``: :math:`s_e \ge w\,(g_{i,k} - g_{j,k})` for :math:`k \in K_i` (1 exactly when
      i is in k and j is not).

    :math:`\mathrm{penalty} = \beta \sum_e b_e s_e + \sum_a c_a x_a`, the linear terms gathered per row a.
    Added: one continuous variable per shared boundary whose two parcels can each take two or more groups.
    """
    spatial = p.spatial
    if spatial is None or not spatial.penalised:
        return
    group, can, k = _parcel_group_rows(p)
    parcel = p.allowed["parcel"].to_numpy()
    w, beta = spatial.weights, spatial.blm
    single = can.sum(axis=1) == 1
    only = can.argmax(axis=1)
    i, j, b = spatial.edge_left, spatial.edge_right, spatial.edge_length
    per_group = beta * spatial.outer_length[:, None] * w[:k, k][None, :]
    left_fixed = single[i]
    np.add.at(per_group, j[left_fixed], beta * b[left_fixed, None] * w[only[i[left_fixed]], :k])
    right_fixed = ~single[i] & single[j]
    np.add.at(per_group, i[right_fixed], beta * b[right_fixed, None] * w[:k, only[j[right_fixed]]].T)
    linear = per_group[parcel, group]

    inner = w[:k, :k]
    off = inner[~np.eye(k, dtype=bool)]
    uniform = not np.diag(inner).any() and (off.size == 0 or np.all(off == off[0]))
    free = np.flatnonzero(~single[i] & ~single[j])
    index: list[tuple[int, ...]] = []
    for e in free:
        ki, kj = np.flatnonzero(can[i[e]]), np.flatnonzero(can[j[e]])
        if uniform:
            index += [(int(e), int(g)) for g in ki if off.size and off[0] > 0]
        else:
            index += [(int(e), int(g), int(h)) for g in ki for h in kj if inner[g, h] > 0]
    edges = sorted({key[0] for key in index})
    rows: dict[tuple[int, int], list[int]] = {}
    for a, key in enumerate(zip(parcel.tolist(), group.tolist(), strict=True)):
        rows.setdefault(key, []).append(a)

    def g(parcel_i: int, k_: int) -> Any:
        return pyo.quicksum(m.x[a] for a in rows.get((int(parcel_i), int(k_)), []))

    m.boundary_edges = pyo.Set(initialize=edges, ordered=True)
    m.boundary_split = pyo.Var(m.boundary_edges, domain=pyo.NonNegativeReals)
    if uniform:
        m.boundary_diff = pyo.Constraint(pyo.Set(initialize=index, dimen=2, ordered=True), rule=lambda m, e, kk: (
            m.boundary_split[e] >= float(off[0]) * (g(i[e], kk) - g(j[e], kk))))
    else:
        m.boundary_pair = pyo.Constraint(pyo.Set(initialize=index, dimen=3, ordered=True), rule=lambda m, e, kk, ll: (
            m.boundary_split[e] >= float(inner[kk, ll]) * (g(i[e], kk) + g(j[e], ll) - 1)))
    m.boundary_penalty = pyo.Expression(expr=pyo.quicksum(beta * float(b[e]) * m.boundary_split[e] for e in edges)
                                        + _lin(m, np.arange(len(linear)), linear))
    m._boundary_size = {"shared_boundaries": int(len(b)), "outer_edges": int((spatial.outer_length > 0).sum()),
                        "added_variables": len(edges), "added_rows": len(index),
                        "linear_boundaries": int(left_fixed.sum() + right_fixed.sum())}


def feature_targets(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""Every feature reaches its target: :math:`\sum_a A_{f,a} x_a \ge T_f`, where :math:`A_{f,a}` is the amount
    of feature f on row a's parcel when row a's option is credited with it (``[features] credited``; default every
    option but keeping the current use), else 0; :math:`T_f` is absolute or a share of the feature's total amount over
    all parcels (``[features] targets``, ``relative_targets``; prioritizr's absolute and relative targets). In the
    elastic model (optiland.pipeline.diagnose), :math:`\sum_a A_{f,a} x_a + s_f \ge T_f` with a shortfall :math:`s_f \ge
    0`."""
    if p.spatial is None or not p.spatial.targets:
        return
    amounts = p.spatial.row_amounts(p.allowed)
    names = p.spatial.features

    def rule(m: pyo.ConcreteModel, feature: str) -> Any:
        earned = _lin(m, np.arange(len(p.allowed)), amounts[names.index(feature)])
        earned = earned + _slack(m, "feature_target", feature) if getattr(m, "_elastic", False) else earned
        need = m.target["feature_target", feature]
        if isinstance(earned, (int, float)):  # no credited amount anywhere: a constant, not a row
            return pyo.Constraint.Feasible if earned >= pyo.value(need) else pyo.Constraint.Infeasible
        return earned >= need

    m.feature_target = pyo.Constraint(list(p.spatial.targets), rule=rule)


def neighbourhood_caps(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    r"""No large single-species stand: within radius r of every centre c of a hexagonal grid, the area of one capped
    variant (or option) g is at most :math:`M`: :math:`\sum_{a \in A_g,\ \mathrm{parcel}(a) \in N_c} S_a x_a \le M`,
    :math:`N_c` the parcels whose centroid lies within r of c (``[[spatial.neighbourhood_caps]]``; the seeds' "no large
    contiguous single-species plantation").

    The rows are added lazily (`add_neighbourhood_caps`): the solve pipeline solves without them, adds the rows of the
    (cell, group) pairs the plan breaks and solves again until none is broken. The rows not added hold for the final
    plan, which is optimal for a relaxation of the full model, hence optimal for it. This family only makes the
    (empty) row list.
    """
    if p.spatial is None or not p.spatial.caps:
        return
    m.neighbourhood_cap = pyo.ConstraintList()
    m._cap_keys = set()


def add_neighbourhood_caps(m: pyo.ConcreteModel, p: PlanningProblem, broken: list[tuple[int, int, int]]) -> int:
    """Add the rows of broken (cap, cell, group) triples (see `neighbourhood_caps`); returns how many were new."""
    spatial = p.spatial
    assert spatial is not None
    area = p.allowed["area"].to_numpy()
    parcel = p.allowed["parcel"].to_numpy()
    added = 0
    for k, cell, group in broken:
        if (k, cell, group) in m._cap_keys:
            continue
        cap = spatial.caps[k]
        groups, _ = cap.groups_of_rows(p.allowed)
        members = cap.parcel[cap.cell == cell]
        rows = np.flatnonzero((groups == group) & np.isin(parcel, members))
        m.neighbourhood_cap.add(_lin(m, rows, area) <= cap.max_area)
        m._cap_keys.add((k, cell, group))
        added += 1
    return added


FAMILIES: dict[str, Callable[[pyo.ConcreteModel, PlanningProblem], None]] = {
    "one_use": one_use,
    "income_floor": income_floor,
    "no_worse_off": no_worse_off,
    "transfer_budget": transfer_budget,
    "carrying_capacity": carrying_capacity,
    "ranger_posts": ranger_posts,
    "labour": labour,
    "budget": budget,
    "diversity": diversity,
    "area_limits": area_limits,
    "forest_cover": forest_cover,
    "market": market,
    "boundary_penalty": boundary_penalty,
    "feature_targets": feature_targets,
    "neighbourhood_caps": neighbourhood_caps,
}
"""Constraint families in build order; red_line, suitability and farmland live in the allowed set."""

ELASTIC_FAMILIES = ("income_floor", "no_worse_off", "transfer_budget", "labour", "budget", "township_budget",
                    "forest_cover", "market", "area_min", "area_max",
                    "feature_target")
"""Families that get a nonnegative slack in the elastic model used to explain infeasibility."""


def _slack(m: pyo.ConcreteModel, family: str, key: Any) -> Any:
    """The elastic slack of (family, key), or 0 when the model is not elastic."""
    if not getattr(m, "_elastic", False):
        return 0
    m._slack_keys.append((family, key))
    return m.slack[family, key]


def objective_expression(m: pyo.ConcreteModel, name: str, weights: dict[str, float] | None = None,
                         scale: dict[str, float] | None = None) -> Any:
    r"""A named objective as an expression: ``income`` (total), ``cost`` (total establishment), a service gain
    :math:`G_s`, or ``ecosystem_services``, the index :math:`\sum_s w_s G_s / R_s` (optiland.pipeline.reference)."""
    if name == "income":
        return m.total_income
    if name == "cost":
        return m.total_cost
    if name in m.S:
        return m.gain[name]
    if name == "boundary_penalty":
        return m.boundary_penalty if hasattr(m, "boundary_penalty") else 0.0
    if name == "ecosystem_services":
        weights = weights or {}
        scale = scale or {}
        return pyo.quicksum(float(w) / float(scale[s]) * m.gain[s] for s, w in weights.items()
                            if w and scale.get(s))
    raise KeyError(f"unknown objective {name!r}")


def target_values(p: PlanningProblem) -> dict[tuple[str, Any], float]:
    """The scenario's targets and limits, the model's mutable data: a sweep that changes only these re-solves the
    built model with new values (`update_targets`) instead of rebuilding it."""
    params = p.params
    need = p.floors_total()
    values: dict[tuple[str, Any], float] = {("income_floor", v): float(need[v]) for v in range(len(p.villages))}
    before = p.no_worse_off_total()
    values.update({("no_worse_off", v): float(before[v]) for v in range(len(p.villages)) if np.isfinite(before[v])})
    for key in ("transfer_budget", "budget", "diversity_cap"):
        if params.get(key) is not None:
            values[(key, 0)] = float(params[key])
    shares = p.villages["transfer_share"].to_numpy(dtype=float) if "transfer_share" in p.villages.columns else (
        np.full(len(p.villages), np.nan if params.get("max_transfer_share") is None
                else float(params["max_transfer_share"])))
    values.update({("transfer_share", v): float(shares[v]) for v in range(len(p.villages)) if np.isfinite(shares[v])})
    names = list(p.townships["township"])
    for township, limit in (params.get("township_budgets") or {}).items():
        values[("township_budget", names.index(township))] = float(limit)
    if params.get("forest_cover_min") is not None:
        total = p.townships["area_mu"].to_numpy()
        for t in range(len(names)):
            values[("forest_cover", t)] = float(params["forest_cover_min"]) * float(total[t])
    pairs = set(p.allowed[["option", "variant"]].drop_duplicates().itertuples(index=False, name=None))
    for (option, variant), cap in p.market.items():
        if (option, variant) in pairs:
            values[("market", f"{option}.{variant}")] = float(cap)
    for feature, target in (p.spatial.targets if p.spatial is not None else {}).items():
        values[("feature_target", feature)] = float(target)
    for key, (low, high) in (params.get("area_limits") or {}).items():
        if low is not None:
            values[("area_min", key)] = float(low)
        if high is not None:
            values[("area_max", key)] = float(high)
    return values


def structure_key(p: PlanningProblem) -> tuple[Any, ...]:
    """What the built model depends on besides its targets: same key, same model up to `target_values`."""
    forest = p.allowed["area"].to_numpy() * p.allowed["forest"].to_numpy()
    township = np.append(p.villages["township_idx"].to_numpy(), -1)[p.allowed["village"].to_numpy()]
    has_forest = village_sum(township, forest, len(p.townships)) > 0
    spatial = None
    if p.spatial is not None:  # the penalty, weights and boundaries are built into the model, not mutable targets
        spatial = (p.spatial.blm, p.spatial.weights.tobytes(), p.spatial.edge_length.tobytes(),
                   p.spatial.outer_length.tobytes(), tuple(p.spatial.targets), p.allowed["cost"].to_numpy().tobytes(),
                   tuple((c.per, c.max_area, tuple(c.options), len(c.cell)) for c in p.spatial.caps))
    return (p.catalog.version, len(p.allowed), p.n_parcels, tuple(p.villages["village"]), tuple(sorted(
        target_values(p), key=repr)), tuple(has_forest), repr(sorted((p.params.get("bounds") or {}).items())),
        spatial)


def update_targets(m: pyo.ConcreteModel, p: PlanningProblem) -> None:
    """Give a built model another problem's targets (same structure_key)."""
    for key, value in target_values(p).items():
        m.target[key] = value


def build_model(p: PlanningProblem, elastic: bool = False) -> pyo.ConcreteModel:
    """Build the whole model (no objective yet). With `elastic`, the families in ELASTIC_FAMILIES get slacks."""
    m = pyo.ConcreteModel(name="optiland")
    targets = target_values(p)
    m.target_index = pyo.Set(initialize=list(targets), dimen=2, ordered=True)
    m.target = pyo.Param(m.target_index, initialize=targets, mutable=True, within=pyo.Reals)
    m._elastic = elastic
    m._slack_keys = []
    if elastic:
        m.slack_index = pyo.Set(dimen=2, initialize=_elastic_keys(p))
        m.slack = pyo.Var(m.slack_index, domain=pyo.NonNegativeReals)
    variables(m, p)
    expressions(m, p)
    for family in FAMILIES.values():
        family(m, p)
    bounds = p.params.get("bounds") or {}
    if bounds:
        m.objective_bound = pyo.ConstraintList()
        for name, (lower, upper) in bounds.items():
            if name == "ecosystem_services":
                continue  # needs the index reference R_s; the solve pipeline adds it once known
            expr = objective_expression(m, name)
            if lower is not None:
                m.objective_bound.add(expr >= float(lower))
            if upper is not None:
                m.objective_bound.add(expr <= float(upper))
    return m


def _elastic_keys(p: PlanningProblem) -> list[tuple[str, Any]]:
    keys: list[tuple[str, Any]] = []
    keys += [("income_floor", v) for v in range(len(p.villages))]
    before = p.no_worse_off_total()
    keys += [("no_worse_off", v) for v in range(len(p.villages)) if np.isfinite(before[v])]
    keys += [("labour", v) for v in range(len(p.villages))]
    keys += [("transfer_budget", 0), ("budget", 0)]
    names = list(p.townships["township"])
    keys += [("township_budget", names.index(t)) for t in (p.params.get("township_budgets") or {})]
    keys += [("forest_cover", t) for t in range(len(p.townships))]
    keys += [("market", f"{o}.{v}") for (o, v) in p.market]
    keys += [("feature_target", f) for f in (p.spatial.targets if p.spatial is not None else {})]
    keys += [key for key in target_values(p) if key[0] in ("area_min", "area_max")]
    return keys
