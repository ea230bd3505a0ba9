"""calibrate-blm: Cohon's anchors and penalty, and the sweep, against an enumeration of every plan of a tiny grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from optiland.analysis.calibrate import calibrate
from optiland.cli import app
from optiland.testing import SMALL_CATALOG
from tests.test_spatial import GROUPS, MIXED, enumerate_plans, grid_inputs, penalty_by_hand, prepare_grid


def _write_instance(folder: Path) -> Path:
    inputs = grid_inputs(MIXED, 3)
    inputs.parcels.to_file(folder / "parcels.gpkg", layer="parcels", driver="GPKG", engine="pyogrio")
    inputs.villages.to_csv(folder / "villages.csv", index=False)
    groups = ", ".join(f'{k} = "{v}"' for k, v in GROUPS.items())
    (folder / "scenario.toml").write_text(
        f'[parcels]\npath = "parcels.gpkg"\n[villages]\npath = "villages.csv"\n[catalog]\npath = "{SMALL_CATALOG}"\n'
        f'[objective]\nmaximise = "carbon"\n[constraints]\nincome_floor = 0\n'
        f'[spatial]\nboundary_penalty = 0\ngroups = {{ {groups} }}\n', encoding="utf-8")
    return folder / "scenario.toml"


def _enumerated() -> tuple[np.ndarray, np.ndarray]:
    prepared = prepare_grid(MIXED, 3, {"maximise": "carbon"}, spatial={"boundary_penalty": 1.0, "groups": GROUPS})
    plans, options = enumerate_plans(prepared)
    carbon = prepared.problem.allowed["gain_carbon"].to_numpy()[plans].sum(axis=1)
    return carbon, penalty_by_hand(options, 3, 1.0, GROUPS)


def test_cohon_anchors_penalty_and_sweep_equal_enumeration(tmp_path: Path) -> None:
    scenario = _write_instance(tmp_path)
    result = calibrate(scenario, weights=[0.0, 0.001, 0.004, 0.01], mip_rel_gap=0)
    carbon, boundary = _enumerated()
    best = carbon.max()
    tie = carbon >= best - 1e-9
    anchor_a = (best, boundary[tie].min())
    least = boundary.min()
    compact = boundary <= least + 1e-9
    anchor_b = (carbon[compact].max(), least)
    assert (result.anchor_objective.objective, result.anchor_objective.boundary) == pytest.approx(anchor_a)
    assert (result.anchor_boundary.objective, result.anchor_boundary.boundary) == pytest.approx(anchor_b)
    assert anchor_a[1] > anchor_b[1]
    assert result.blm == pytest.approx((anchor_a[0] - anchor_b[0]) / (anchor_a[1] - anchor_b[1]))
    for point in result.sweep:
        value = carbon - point.weight * boundary
        assert point.objective - point.weight * point.boundary == pytest.approx(value.max(), abs=1e-9)
    assert [p.boundary for p in result.sweep] == sorted((p.boundary for p in result.sweep), reverse=True)


def test_cli_writes_calibration_sweep_and_plot(tmp_path: Path) -> None:
    scenario = _write_instance(tmp_path)
    result = CliRunner().invoke(app, ["calibrate-blm", str(scenario), "--out", str(tmp_path / "cal"), "--points", "3"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    sweep = pd.read_csv(tmp_path / "cal" / "sweep.csv")
    assert len(sweep) == 4 and sweep["weight"].iloc[0] == 0
    assert sweep["weight"].iloc[1:].to_numpy() == pytest.approx(data["blm"] * np.array([0.1, 1.0, 10.0]))
    assert (tmp_path / "cal" / "sweep.png").stat().st_size > 1000
    result = CliRunner().invoke(app, ["calibrate-blm", str(scenario), "--out", str(tmp_path / "bad"),
                                      "--weights", "1,x"])
    assert result.exit_code == 2 and not (tmp_path / "bad").exists()
