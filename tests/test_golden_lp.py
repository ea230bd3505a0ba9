"""The model's rows, family by family, against hand-checked golden LP files (tests/golden/, see its README.md).

A 4-parcel, 2-village instance on the small catalog with every constraint family active is written as an LP file by
Pyomo (symbolic labels) after setting the income objective; the rows of each family are compared with
tests/golden/<family>.lp. Regenerate with ``OPTILAND_UPDATE_GOLDEN=1 pytest tests/test_golden_lp.py``, then read
every changed file and check it by hand against optiland/model/formulation.py before committing it.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from optiland.model.backend import PyomoBackend
from tests.bruteforce import parcels_table, prepare_tiny, villages_table

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("OPTILAND_UPDATE_GOLDEN") == "1"
FAMILIES = ("one_use", "income_floor", "transfer_budget", "transfer_share", "carrying_capacity", "ranger_posts",
            "ranger_households", "labour", "budget", "township_budget", "option_area_def", "diversity",
            "forest_cover", "market", "price_step_link", "price_step_width", "objective_bound")

# V1 (township T1): P0 dry cropland, flat and barely rocky (every option); P1 red-line shrub forest (closure and
# trees only). V2 (township T2): P2 grassland (every option); P3 extreme bare rock (keep or closure).
PARCELS = parcels_table([
    ("P0", "V1", "0103", 10, 10, 10),
    ("P1", "V1", "0305", 40, 60, 20, True, True),
    ("P2", "V2", "0404", 20, 25, 12),
    ("P3", "V2", "1206", 40, 95, 9),
])
VILLAGES = villages_table([("V1", "T1", 5, 2, 1500, 2000), ("V2", "T2", 4, 2, 1200, 2500)])
OVERRIDES = {"livestock.head_per_mu": 0.2, "rangers.mu_per_post": 10}
CONSTRAINTS = {"income_floor": 4000, "village_floors": {"V2": 4500}, "transfer_budget": 20000,
               "max_transfer_share": 0.6, "budget": 80000, "township_budgets": {"T1": 50000}, "diversity_cap": 0.7,
               "forest_cover_min": 0.3, "market": {"herbs.paris": 15},
               "bounds": {"income": [60000, None], "cost": [None, 75000]}}

_LABEL = re.compile(r"^[cr]_[elu]_(?P<name>[A-Za-z_]+?)(?:\((?P<index>.*)\))?_:$")


def family_blocks(lp_text: str) -> dict[str, str]:
    """The constraint rows of an LP file grouped by component name, comment lines stripped, in file order."""
    lines = [line.rstrip() for line in lp_text.splitlines() if not line.lstrip().startswith("\\*")]
    start, end = lines.index("s.t."), lines.index("bounds")
    blocks: dict[str, list[str]] = {}
    row: list[str] = []
    for line in lines[start + 1:end] + [""]:
        if line:
            row.append(line)
            continue
        if row:
            match = _LABEL.match(row[0])
            assert match, f"unexpected row label {row[0]!r}"
            blocks.setdefault(match["name"], []).append("\n".join(row))
            row = []
    return {name: "\n\n".join(rows) + "\n" for name, rows in blocks.items()}


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    prepared = prepare_tiny(PARCELS, VILLAGES, "income", CONSTRAINTS, OVERRIDES)
    backend = PyomoBackend()
    backend.build(prepared.problem)
    backend.set_objective({"income": 1.0}, "max")
    path = tmp_path_factory.mktemp("lp") / "model.lp"
    backend.model.write(str(path), io_options={"symbolic_solver_labels": True})
    return family_blocks(path.read_text(encoding="utf-8"))


def test_every_family_has_rows_and_a_golden_file(blocks: dict[str, str]) -> None:
    assert sorted(blocks) == sorted(FAMILIES)  # a new family needs a golden file (and a hand check)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_rows_match_golden(blocks: dict[str, str], family: str) -> None:
    path = GOLDEN / f"{family}.lp"
    text = blocks[family]
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run OPTILAND_UPDATE_GOLDEN=1 pytest tests/test_golden_lp.py"
    golden = path.read_text(encoding="utf-8")
    diff = "\n".join(difflib.unified_diff(golden.splitlines(), text.splitlines(), "golden", "model", lineterm=""))
    assert text == golden, f"the {family} rows changed:\n{diff}"
