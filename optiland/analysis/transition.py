r"""The transition years and price risk: a plan that keeps every village above its floor on the way to maturity, and
when prices fall.

The core model (optiland.model.formulation) plans the steady state at maturity: one year, average prices. This module
adds
a horizon of years :math:`t = 1..H` to it. The core plan :math:`x` stays the plan at maturity (every core family
keeps holding for it); the years add *when* each conversion happens and what every village earns meanwhile.

**Phasing by groups, not by parcel and year.** A binary per parcel and year would multiply the core's binaries by
H. Instead the converted allowed rows are grouped by (village, option, variant, harvest, current-use income and
labour per mu): inside a group every money figure per mu is the same, so only the *area* established each year
matters, :math:`E_{q,\tau} \ge 0` (mu of group q established in year :math:`\tau`; the model's columns are the
cumulative :math:`D_{q,t} = \sum_{\tau \le t} E_{q,\tau}`), and the group's final area
:math:`A_q(x) = \sum_{a \in q} S_a x_a` is linear in the plan. Every yearly quantity is then linear: a figure per
mu times a profile factor by age :math:`t - \tau` (catalog ``profiles.csv``) summed over the years established.
On the demo (3,000 parcels, 12 villages) that is 4,188 groups: 41,880 continuous columns for 10 years
against 985,000 binaries per parcel and year. Which parcels of a group go first is not decided (they are
interchangeable in every money figure); ``results`` assigns years to parcels in parcel order for the map.
Ecosystem services differ between parcels of a group (the soil gain's slope factor), so the *cumulated* service
objective uses each group's area-weighted mean gain per mu; the end-of-horizon services are the core's, exact.

**Price and yield risk.** A scenario set :math:`\omega \in \Omega` with probabilities :math:`p_\omega` multiplies
the net income of each product (an option, ``livestock`` for the herd, ``current`` for the current uses kept) by a
factor :math:`f_{k,\omega,t}` (from a table, or sampled around the catalog's ``price_risk.csv``). The floor holds
at average prices in every year (``average_floor``) and, by the scenario's risk measure, ``robust_floor`` (every
scenario), ``cvar_floor`` (conditional value at risk of the shortfall) or ``icc_floor`` (integrated chance
constraint: expected shortfall).

Money per year is undiscounted yuan of the catalog's price year.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyomo.environ as pyo

from optiland.analysis.transition_accounts import TransitionPlan, YearlyAccounts, accounts, read_plan
from optiland.analysis.transition_model import add_transition, polish_phasing, transition_objective
from optiland.analysis.transition_problem import TransitionProblem
from optiland.errors import InfeasibleError
from optiland.mip.solver import SolveResult, SolverOptions, Status
from optiland.model.backend import PyomoBackend


# --------------------------------------------------------------------------------------------------- solving
@dataclass
class TransitionOutcome:
    """A solved transition: the plan, its accounts, the solver's account, sizes and times."""

    tp: TransitionProblem
    plan: TransitionPlan
    accounts: YearlyAccounts
    result: SolveResult
    objective_name: str
    es_scale: dict[str, float]
    model_size: dict[str, int]
    times: dict[str, float]
    notes: list[str] = field(default_factory=list)


def _explain(tp: TransitionProblem, scales: dict[str, float], options: SolverOptions) -> InfeasibleError:
    """Solve the elastic model (slacks on the yearly floors, budgets and labour) and name what falls short."""
    from optiland.model.formulation import build_model

    m = build_model(tp.problem)
    add_transition(m, tp, elastic=True)
    need = tp.problem.floors_total()
    if not hasattr(m, "year_slack"):
        return InfeasibleError("the transition has no plan (no yearly row can be relaxed to find why)")
    scale = {"average_floor": 1.0, "robust_floor": 1.0, "cvar_floor": 1.0, "icc_floor": 1.0, "yearly_budget": 1.0,
             "yearly_labour": 100.0}
    m.objective = pyo.Objective(expr=pyo.quicksum(scale[str(k).split("|")[0]] * m.year_slack[k] for k in m.year_slack),
                                sense=pyo.minimize)
    backend = PyomoBackend()
    backend.model, backend.problem = m, tp.problem
    result = backend.solve(options)
    if result.status == Status.TIME_LIMIT and result.x is None:
        return InfeasibleError("the transition has no plan; the time limit ran out before the elastic model could "
                               "show which village and year fall short (give more time)")
    if not result.status.has_plan:
        return InfeasibleError("the transition has no plan, and relaxing its yearly floors, budgets and labour does "
                               "not find one either: the steady-state constraints themselves conflict (run "
                               f"`optiland solve` for their diagnosis); solver: {result.message}")
    names = list(tp.problem.villages["village"])
    lines = []
    for key in m.year_slack:
        value = float(pyo.value(m.year_slack[key]) or 0.0)
        if value <= 1e-6:
            continue
        family, *where = str(key).split("|")
        if len(where) == 2:
            v, t = int(where[0]), int(where[1])
            text = f"{family}: village {names[v]}, year {t + 1}: short by {value:,.0f}"
            if family != "yearly_labour":
                text += f" yuan ({value / float(tp.problem.villages['population'].iloc[v]):,.0f} per capita; " \
                        f"needs {need[v]:,.0f})"
            else:
                text += " labour days"
        else:
            text = f"{family}: year {int(where[0]) + 1}: over by {value:,.0f} yuan"
        lines.append((value, text))
    lines.sort(reverse=True)
    body = "\n".join(f"  - {t}" for _, t in lines[:30]) or "  (no yearly row needed relaxing)"
    more = f"\n  ... and {len(lines) - 30} more" if len(lines) > 30 else ""
    return InfeasibleError("no transition plan keeps every yearly row; the least relaxation that would:\n"
                           + body + more)


def solve_transition(tp: TransitionProblem, options: SolverOptions, scales: dict[str, float] | None = None
                     ) -> TransitionOutcome:
    """Build the core model with the transition families, take the service index's reference as the core pipeline
    does (the parcels' potential, or the scenario's pinned values), solve, and recompute the accounts of the plan."""
    from optiland.pipeline.run import _Clock, index_reference

    p = tp.problem
    clock = _Clock(options)
    start = time.perf_counter()
    backend = PyomoBackend()
    backend.build(p)
    build_core = backend.build_seconds
    notes: list[str] = []
    uses_index = p.params["objective"] == "ecosystem_services" or tp.config.objective == "cumulated"
    if scales is None:
        scales = {}
        if uses_index:
            ref = index_reference(p)
            scales, notes = ref.values, list(ref.notes)
    solve_scales = time.perf_counter() - start - build_core
    m = backend._model()
    start_build = time.perf_counter()
    add_transition(m, tp)
    expr, sense = transition_objective(m, tp, scales)
    if hasattr(m, "objective"):
        m.del_component("objective")
    m.objective = pyo.Objective(expr=expr, sense=pyo.maximize if sense == "max" else pyo.minimize)
    backend._compiled = None
    build_years = time.perf_counter() - start_build
    solve_start = time.perf_counter()
    result = backend.solve(clock.options_now())
    if result.status == Status.INFEASIBLE:
        raise _explain(tp, scales, clock.options_now())
    if not result.status.has_plan or result.x is None:
        from optiland.pipeline.run import no_plan

        raise no_plan(result, "for the transition")
    core = backend.solution(result)
    lp = backend.last_lp
    assert lp is not None
    n_cols, n_rows, nnz = lp.shape
    plan = read_plan(m, tp, core)
    polish_seconds = 0.0
    if tp.config.objective == "end":
        polish_start = time.perf_counter()
        polished = polish_phasing(backend, tp, scales, clock.options_now())
        polish_seconds = time.perf_counter() - polish_start
        if polished.status.has_plan and polished.x is not None:
            plan = read_plan(m, tp, core)
            polish_name = "cumulated index" if scales else "discounted income"
            notes.append(f"phasing polished with the plan at maturity fixed: {polish_name} "
                         f"{polished.objective:.6g} ({polished.status.value})")
        else:
            notes.append(f"phasing not polished ({polished.message}); the years are those of the first solve")
    return TransitionOutcome(
        tp=tp, plan=plan, accounts=accounts(tp, plan), result=result,
        objective_name=tp.config.objective if tp.config.objective != "end" else p.params["objective"],
        es_scale=scales,
        model_size={"variables": n_cols, "binaries": int(lp.integer.sum()), "constraints": n_rows, "nonzeros": nnz,
                    "groups": len(tp.groups), "years": tp.horizon, "scenarios": len(tp.prices.names),
                    "allowed_rows": len(p.allowed), "parcels": p.n_parcels},
        times={"build_core": build_core, "scales": solve_scales, "build_years": build_years,
               "matrix": backend.matrix_seconds, "solve": time.perf_counter() - solve_start - polish_seconds,
               "polish": polish_seconds},
        notes=notes)
