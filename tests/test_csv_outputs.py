"""CSV formula injection: every CSV optiland writes for Excel protects text that a spreadsheet would run as a
formula (a leading apostrophe, OWASP), never numbers; optiland's own readers give the text back as it was."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from optiland.cli import app
from optiland.io.tables import FORMULA_START, read_results_csv, read_table, write_csv
from tests.conftest import TINY_PARCELS, TINY_VILLAGES, write_instance

HOSTILE = ['=HYPERLINK("http://x","click")', "-P01", "@risk", "+cmd", "\tTAB", "'quoted", "''=2", "plain", "-5"]
ROOT = Path(__file__).resolve().parents[1]


def _unprotected(path: Path) -> list[str]:
    """Cells of a CSV that a spreadsheet would run as a formula (not a plain number)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    risky = []
    for cell in cells:
        if cell.startswith(FORMULA_START):
            try:
                float(cell)
            except ValueError:
                risky.append(cell)
    return risky


def test_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": HOSTILE, "value": np.arange(len(HOSTILE)) - 3.5,
                          "mixed": [None, -2, "=1+1", 3.0, "x", "-", "", "@", "+"]})
    path = tmp_path / "t.csv"
    write_csv(frame, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert _unprotected(path) == []
    text = raw.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and ",-3.5," in text and "\n-5," in text  # numbers never protected
    back = read_results_csv(path, dtype={"id": str, "mixed": str}, keep_default_na=False)
    assert back["id"].tolist() == HOSTILE
    assert back["value"].tolist() == frame["value"].tolist()
    assert back["mixed"].tolist() == ["", "-2", "=1+1", "3.0", "x", "-", "", "@", "+"]
    lines = read_table(path, "table", ("id",))  # the reader of a planner's tables restores them too
    assert lines["id"].tolist() == [h.strip() for h in HOSTILE]


def test_results_folder_protected_and_checked(tmp_path: Path) -> None:
    """A solve (in folders named in Chinese with spaces) whose parcel and village ids a spreadsheet would run:
    villages.csv and townships.csv protect them, `optiland check` still matches every id (the '-' ids included),
    and the tables read back as named."""
    parcels = TINY_PARCELS.copy()
    parcels["parcel_id"] = ['=HYPERLINK("http://x")', "-P01", "@risk", "+P3", "P4", "-5"]
    villages = TINY_VILLAGES.copy()
    villages["village"] = ["=V1()", "-V2"]
    villages["township"] = ["@镇", "@镇"]
    parcels["village"] = ["=V1()"] * 3 + ["-V2"] * 3
    scenario = write_instance(tmp_path / "规划 数据", parcels=parcels, villages=villages)
    out = tmp_path / "结果 文件夹"  # a results folder named in Chinese, with a space
    result = CliRunner().invoke(app, ["solve", str(scenario), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("villages.csv", "townships.csv"):
        assert _unprotected(out / name) == [], name
    assert "'=V1()" in (out / "villages.csv").read_text(encoding="utf-8-sig")
    back = read_results_csv(out / "villages.csv", dtype={"village": str, "township": str})
    assert back["village"].tolist() == ["=V1()", "-V2"] and set(back["township"]) == {"@镇"}
    result = CliRunner().invoke(app, ["check", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("villages.csv", "townships.csv"):  # opened in Excel on Chinese Windows and saved again
        text = (out / name).read_text(encoding="utf-8-sig")
        (out / name).write_bytes(text.replace("\n", "\r\n").encode("gbk"))
    result = CliRunner().invoke(app, ["check", str(out)])
    assert result.exit_code == 0, result.output


def test_every_csv_write_goes_through_write_csv() -> None:
    """No module writes a CSV with DataFrame.to_csv but optiland.io.tables (write_csv) and the writers of input
    tables for optiland itself (an instance generated, a Marxan import) whose readers do not restore."""
    allowed = {"io/tables.py", "analysis/generate.py", "analysis/marxan.py"}
    offenders = []
    for path in sorted((ROOT / "optiland").rglob("*.py")):
        name = path.relative_to(ROOT / "optiland").as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "to_csv" and name not in allowed:
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
