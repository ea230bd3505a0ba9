r"""The scale of the ecosystem-service index: each service's reference gain, computed exactly, with no solve.

The index is :math:`\sum_s w_s G_s / R_s`. By default :math:`R_s = P_s`, the parcels' potential for service s:

.. math:: P_s = \sum_p \max_{(o, v) \text{ allowed on } p} g_{p,o,v,s}

where :math:`g_{p,o,v,s}` is the gain of choosing option o, variant v on parcel p (gain per mu x area, as in
model.problem: keeping the current use gains 0 where it is allowed). Every plan chooses one allowed row per parcel,
so :math:`G_s \le P_s` and, with weights summing to 1, the index is at most 1 for any plan under any constraints.
:math:`P_s` depends only on the parcels and the catalog: identical inputs give identical references, and runs that
change only targets and limits (sweeps, front points) share one scale. A scenario may pin references instead
(``[objective.reference]``, per service) so that a study keeps one scale across parcel or catalog edits too.
Potentials add up over parcels, so a county's is the sum of its townships' (pipeline.decompose).

The constrained best gain :math:`G_s^*` (the most of s reachable alone under the scenario's constraints) is no longer
the index's scale; `constrained_bounds` gives an upper bound of it from LP relaxations, as a figure to report.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optiland.errors import InputError, Issue
from optiland.model.problem import PlanningProblem

FLOOR = 1e-9
"""A service whose reference is not above this cannot be normalised and is left out of the index (with a note)."""


@dataclass
class Reference:
    """The index's scale: `values` per service in the index, how each was set, and the potentials."""

    values: dict[str, float]
    kind: str
    """"potential" (every value is the parcels' potential), "pinned" (every value given by the scenario) or
    "mixed"."""
    pinned: list[str] = field(default_factory=list)
    potential: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    constrained_lp_bound: dict[str, float] | None = None
    """Optional report figure: per service, an LP upper bound of its best gain under the constraints."""

    def record(self) -> dict[str, Any]:
        """Plain data for run.json ("reference")."""
        out: dict[str, Any] = {"kind": self.kind, "values": dict(self.values), "pinned": list(self.pinned),
                               "potential": dict(self.potential)}
        if self.constrained_lp_bound is not None:
            out["constrained_lp_bound"] = dict(self.constrained_lp_bound)
        return out


def kind_of(values: dict[str, float], pinned: list[str] | set[str] | dict[str, float]) -> str:
    """"potential", "pinned" or "mixed": how the references `values` were set, given the pinned services."""
    given = [s for s in values if s in pinned]
    return "pinned" if given and len(given) == len(values) else "mixed" if given else "potential"


def potential(problem: PlanningProblem) -> dict[str, float]:
    """P_s per service: the sum over parcels of the best gain of any allowed (option, variant) of the parcel."""
    allowed = problem.allowed
    parcel = allowed["parcel"].to_numpy()
    out: dict[str, float] = {}
    if not len(parcel):
        return {s: 0.0 for s in problem.services}
    ordered = bool(np.all(parcel[1:] >= parcel[:-1]))
    order = None if ordered else np.argsort(parcel, kind="stable")
    sorted_parcel = parcel if order is None else parcel[order]
    starts = np.flatnonzero(np.r_[True, sorted_parcel[1:] != sorted_parcel[:-1]])
    for service in problem.services:
        gain = allowed[f"gain_{service}"].to_numpy(dtype=float)
        if order is not None:
            gain = gain[order]
        # a sum of per-parcel maxima in parcel order: the same floating-point sum for the same inputs
        out[service] = float(np.maximum.reduceat(gain, starts).sum())
    return out


def reference(problem: PlanningProblem, pinned: dict[str, float] | None = None,
              potentials: dict[str, float] | None = None) -> Reference:
    """The index's reference per weighted service: the pinned value where the scenario gives one, else the potential
    (`potentials` if given: a county's, summed over its townships). A pinned name that is not a service of the
    catalog is an InputError naming the nearest one."""
    if pinned is None:
        pinned = dict(problem.scenario.objective.reference) if problem.scenario is not None else {}
    services = list(problem.services)
    unknown = [name for name in pinned if name not in services]
    if unknown:
        problems = []
        for name in unknown:
            close = difflib.get_close_matches(name, services, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(Issue(f"unknown ecosystem service{hint}; known: {', '.join(services)}",
                                  column=f"objective.reference.{name}", value=name))
        raise InputError(problems)
    pots = potential(problem) if potentials is None else dict(potentials)
    values: dict[str, float] = {}
    notes: list[str] = []
    used_pins: list[str] = []
    for service, weight in problem.params["weights"].items():
        if not weight:
            continue
        if service in pinned:
            values[service] = float(pinned[service])
            used_pins.append(service)
            continue
        value = pots.get(service, 0.0)
        if value <= FLOOR:
            notes.append(f"{service}: no allowed use of any parcel gains (potential {value:.4g}); left out of the "
                         "index")
            continue
        values[service] = value
    kind = kind_of(values, used_pins)
    text = ", ".join(f"{s} {v:.6g}" + (" (pinned)" if s in used_pins else "") for s, v in values.items())
    notes.insert(0, f"index reference ({kind}): {text or 'none'}; the index is sum_s w_s G_s / R_s"
                 + (", at most 1 for any plan" if kind == "potential" else ""))
    return Reference(values=values, kind=kind, pinned=used_pins, potential=pots, notes=notes)


def constrained_bounds(backend: Any, problem: PlanningProblem, options: Any) -> dict[str, float]:
    """Per weighted service, the LP relaxation's optimum of its gain alone under every constraint: an upper bound of
    the constrained best gain G*_s (a report figure; never a MIP, never the index's scale). A service whose LP does
    not end optimal (time limit, infeasible) is left out."""
    from optiland.mip.solver import MatrixLP, Status, solve_lp

    out: dict[str, float] = {}
    for service, weight in problem.params["weights"].items():
        if not weight:
            continue
        backend.set_objective({service: 1.0}, "max")
        lp = backend.matrix()
        relaxed = MatrixLP(**{**lp.__dict__, "integer": np.zeros_like(lp.integer)})
        result = solve_lp(relaxed, options)
        if result.status == Status.OPTIMAL and result.objective is not None:
            out[service] = float(result.objective)
    return out
