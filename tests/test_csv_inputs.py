"""The CSV tables a scenario names besides the parcel layer (locks, features, boundaries, parcel costs, price
scenarios, conversions), as planners save them from Excel on Chinese Windows: each case read correctly or refused
naming the file, line, column and value (optiland.io.tables.read_table, the one reader of them all)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from optiland.analysis.transition_problem import read_scenarios
from optiland.cli import app
from optiland.errors import InputError
from optiland.io.catalog import read_conversions
from optiland.model.adjacency import read_boundary_table
from optiland.model.spatial import read_features, read_locks, read_parcel_costs
from tests.conftest import TINY_SCENARIO, write_instance

IDS = np.array(["P0", "P1", "P2", "地块3"])
OPTIONS = ["keep", "closure", "fruit"]
FEATURES = "parcel_id,feature,amount\r\nP0,bird,5\r\nP1,bird,1200\r\n地块3,兰花,2.5\r\n"
"""The table every 'read correctly' case must read as: P0 bird 5, P1 bird 1,200, 地块3 orchid 2.5."""


def _write(folder: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path = folder / "features.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def _expected_features(names: list[str], matrix: np.ndarray) -> None:
    assert names == ["bird", "兰花"]
    assert matrix.tolist() == [[5.0, 0.0], [1200.0, 0.0], [0.0, 0.0], [0.0, 2.5]]


@pytest.mark.parametrize(("case", "content"), [
    ("utf-8 with BOM, CRLF", b"\xef\xbb\xbf" + FEATURES.encode()),
    ("GBK (Excel 'CSV' on Chinese Windows)", FEATURES.encode("gbk")),
    ("GB18030", FEATURES.encode("gb18030")),
    ("UTF-16 with BOM (Excel 'Unicode text' renamed)", FEATURES.replace(",", ",").encode("utf-16")),
    ("trailing empty lines and Excel's empty rows", FEATURES + "\r\n,,\r\n\r\n,,,\r\n"),
    ("header repeated (two exports pasted)", FEATURES + "parcel_id,feature,amount\r\n"),
    ("thousands separator", FEATURES.replace("1200", '"1,200"')),
    ("full-width digits and spaces", FEATURES.replace("1200", "１２００").replace("P0,", "\u3000P0\u3000,")),
    ("Excel's trailing empty columns", FEATURES.replace("\r\n", ",,\r\n")),
])
def test_features_read_correctly(tmp_path: Path, case: str, content: bytes | str) -> None:
    names, matrix = read_features(_write(tmp_path, content), IDS)
    _expected_features(names, matrix)


@pytest.mark.parametrize(("case", "content", "needles"), [
    ("Excel's #N/A", FEATURES.replace("1200", "#N/A"), ["line 3", "'amount'", "#N/A", "Excel error"]),
    ("Excel's #DIV/0!", FEATURES.replace("2.5", "#DIV/0!"), ["line 4", "'amount'", "#DIV/0!", "Excel error"]),
    ("an id Excel broke", FEATURES.replace("P1,", "#REF!,"), ["line 3", "'parcel_id'", "#REF!"]),
    ("same parcel and feature twice", FEATURES + "P0,bird,5\r\n", ["line 5", "line 2", "P0 / bird"]),
    ("unknown parcel id", FEATURES + "P9,bird,1\r\n", ["line 5", "'parcel_id'", "P9", "not in the parcel layer"]),
    ("too many fields (an unquoted thousands separator)", FEATURES.replace("1200", "1,200"),
     ["line 3", "4 fields", "3 in the header", "P1,bird,1,200"]),
    ("too few fields", FEATURES + "P2,bird\r\n", ["line 5", "2 fields"]),
    ("empty file", "", ["features.csv", "empty file", "parcel_id, feature, amount"]),
    ("header only", "parcel_id,feature,amount\r\n", ["features.csv", "no rows"]),
    ("a decimal comma", FEATURES.replace("2.5", '"2,5"'), ["line 4", "'amount'", "2,5", "not a number"]),
    ("infinite", FEATURES.replace("2.5", "inf"), ["line 4", "'amount'", "inf", "finite"]),
    ("a column misnamed", FEATURES.replace("amount", "amont"), ["'amount'", "did you mean 'amont'"]),
    ("neither UTF-8 nor GB18030", b"parcel_id,feature,amount\nP0,bird,5\n\xff\xfe,x,1\n",
     ["features.csv", "CSV UTF-8"]),
])
def test_features_refused_naming_the_culprit(tmp_path: Path, case: str, content: str | bytes,
                                             needles: list[str]) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(InputError) as caught:
        read_features(path, IDS)
    text = str(caught.value)
    for needle in [str(path)] + needles:
        assert needle in text, (case, text)


def test_locks(tmp_path: Path) -> None:
    path = tmp_path / "locks.csv"
    path.write_bytes("parcel_id,option,lock\r\n地块3,closure,in\r\nP0,fruit,OUT\r\n地块3,closure,in\r\n\r\n"
                     .encode("gbk"))
    locks = read_locks(path, IDS, OPTIONS)  # GBK read; the identical repeat means the same: kept once
    assert locks[["parcel_id", "option", "locked_in", "line"]].values.tolist() == [
        ["地块3", "closure", True, 2], ["P0", "fruit", False, 3]]
    path.write_text("parcel_id,option,lock\nP0,fruit,in\nP1,keep,out\nP0,fruit,out\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:  # in and out: which one?
        read_locks(path, IDS, OPTIONS)
    assert "line 4" in str(caught.value) and "line 2" in str(caught.value) and "'lock'" in str(caught.value)
    path.write_text("parcel_id,option,lock\n", encoding="utf-8")
    assert len(read_locks(path, IDS, OPTIONS)) == 0  # a header alone locks nothing (what a Marxan import writes)


def test_parcel_costs(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_bytes(b"\xef\xbb\xbfparcel_id,option,cost\r\nP1,fruit,\"12,500.5\"\r\n")
    assert read_parcel_costs(path, IDS, OPTIONS)["cost"].tolist() == [12500.5]
    path.write_text("parcel_id,option,cost\nP1,fruit,3\nP2,fruit,4\nP1,fruit,3\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:  # added twice or a copy? the planner says
        read_parcel_costs(path, IDS, OPTIONS)
    assert "line 4" in str(caught.value) and "line 2" in str(caught.value) and "P1 / fruit" in str(caught.value)


def test_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "bound.csv"
    path.write_bytes("id1,id2,boundary\r\nP0,P1,\"1,000\"\r\n地块3,地块3,#N/A\r\n".encode("gbk"))
    with pytest.raises(InputError) as caught:
        read_boundary_table(path)
    assert "line 3" in str(caught.value) and "'boundary'" in str(caught.value) and "#N/A" in str(caught.value)
    path.write_bytes("id1,id2,boundary\r\nP0,P1,\"1,000\"\r\n地块3,地块3,４\r\n\r\n".encode("gbk"))
    table = read_boundary_table(path)
    assert table.values.tolist() == [["P0", "P1", 1000.0], ["地块3", "地块3", 4.0]]
    path.write_text("id1\tid2\tboundary\n1\t2\t5\n")  # Marxan's bound.dat, tab separated
    assert read_boundary_table(path)["boundary"].tolist() == [5.0]


def test_price_scenarios(tmp_path: Path) -> None:
    products = ["fruit", "livestock"]
    path = tmp_path / "prices.csv"
    path.write_bytes("scenario,product,factor,probability,year\r\n低价,fruit,0.5,0.25,\r\n低价,livestock,0.7,0.25,2\r\n"
                     "基准,fruit,1.0,0.75,\r\n".encode("gbk"))
    prices = read_scenarios(path, products, 3)
    assert prices.names == ["低价", "基准"] and prices.probability.tolist() == [0.25, 0.75]
    assert prices.factor[0, 1].tolist() == [1.0, 0.7, 1.0]
    path.write_text("scenario,product,factor,probability\nlow,fruit,0.5,0.5\nlow,fruit,0.6,0.5\nhigh,fruit,1.2,0.5\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_scenarios(path, products, 3)
    assert "line 3" in str(caught.value) and "line 2" in str(caught.value) and "'factor'" in str(caught.value)
    path.write_text("scenario,product,factor,probability\nlow,fruit,#VALUE!,0.5\nhigh,fruit,1.2,0.5\n")
    with pytest.raises(InputError, match="line 2.*'factor'.*#VALUE!.*Excel error"):
        read_scenarios(path, products, 3)
    path.write_text("scenario,product,factor,probability\nlow,fruit,0.5,0.4\nlow,livestock,0.5,0.6\nhigh,fruit,1,0.6\n")
    with pytest.raises(InputError, match="line 3.*'probability'"):  # one scenario, two probabilities
        read_scenarios(path, products, 3)


def test_conversions_in_gbk(tmp_path: Path) -> None:
    path = tmp_path / "conversions.csv"
    path.write_bytes("rule,current_use,to,allowed,description\r\n坡耕地,0103,closure,true,退耕\r\n\r\n".encode("gbk"))
    assert read_conversions(path)[["rule", "description"]].values.tolist() == [["坡耕地", "退耕"]]


def test_cli_reads_excel_tables_in_a_chinese_folder_with_spaces(tmp_path: Path) -> None:
    """End to end: a scenario in a folder named in Chinese with spaces, its lock and feature tables saved by Excel
    in GBK; validate accepts it; a #N/A refuses it with exit 2 naming the file, line, column and value, and solve
    writes nothing."""
    sections = '[spatial]\nlocks = "锁定 地块.csv"\n\n[features]\npath = "物种 分布.csv"\ntargets = { "鸟类" = 1 }\n\n'
    scenario = TINY_SCENARIO.replace("[solver]", sections + "[solver]")
    path = write_instance(tmp_path / "规划 数据" / "方案 一", scenario=scenario)
    (path.parent / "锁定 地块.csv").write_bytes("parcel_id,option,lock\r\nP0,closure,in\r\n".encode("gbk"))
    features = path.parent / "物种 分布.csv"
    features.write_bytes("parcel_id,feature,amount\r\nP0,鸟类,3\r\nP1,鸟类,\"1,200\"\r\n".encode("gbk"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    features.write_bytes("parcel_id,feature,amount\r\nP0,鸟类,3\r\nP1,鸟类,#N/A\r\n".encode("gbk"))
    out = tmp_path / "结果 文件夹"
    for command in (["validate", str(path)], ["solve", str(path), "--out", str(out)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        for needle in ("物种 分布.csv", "line 3", "amount", "#N/A"):
            assert needle in text, text
    assert not out.exists()


def test_village_table_as_excel_saves_it(tmp_path: Path) -> None:
    """The village table goes through the same reader: GBK and UTF-16 undeclared, "1,200" and full-width figures,
    blank rows read; an Excel error refused naming the line and the planner's own column name."""
    from optiland.io.inputs import read_villages
    from optiland.io.scenario import load_scenario

    path = write_instance(tmp_path / "i", scenario=TINY_SCENARIO.replace(
        'path = "villages.csv"', 'path = "villages.csv"\ncolumns = { population = "人口（人）" }'))
    text = ("village,township,人口（人）,households,labour_days,nonland_income_per_capita\r\n"
            '下荣村,T1,10,3,800,"2,000"\r\n,,,,,\r\nV2,T1,８,3,600,2500\r\n\r\n')
    for encoding in ("gbk", "utf-16", "utf-8-sig"):
        (path.parent / "villages.csv").write_bytes(text.encode(encoding))
        villages = read_villages(load_scenario(path))
        assert villages["village"].tolist() == ["下荣村", "V2"], encoding
        assert villages["population"].tolist() == [10.0, 8.0]
        assert villages["nonland_income_per_capita"].tolist() == [2000.0, 2500.0]
    (path.parent / "villages.csv").write_bytes(text.replace("８", "#N/A").encode("gbk"))
    with pytest.raises(InputError) as caught:
        read_villages(load_scenario(path))
    assert "line 4" in str(caught.value) and "人口（人）" in str(caught.value) and "#N/A" in str(caught.value)
    (path.parent / "villages.csv").write_bytes(text.replace("下荣村", "V2").encode("gbk"))
    with pytest.raises(InputError, match=r"V2.*duplicate village id \(line 2 and line 4\)"):
        read_villages(load_scenario(path))


def test_catalog_tables_saved_by_excel(tmp_path: Path) -> None:
    """A catalog folder a planner edited in Excel: GBK with CRLF and blank rows reads as the UTF-8 original; a
    figure written "1,200" reads as 1200; an Excel error is refused naming the file, line, column and value (pandas
    read '#N/A' as a missing figure)."""
    import shutil

    import pandas as pd

    from optiland.io.catalog import load_catalog
    from optiland.testing import SMALL_CATALOG

    original = load_catalog(SMALL_CATALOG)
    folder = tmp_path / "目录 副本"
    shutil.copytree(SMALL_CATALOG, folder)
    for name in ("options.csv", "variants.csv", "current_uses.csv"):
        text = (folder / name).read_text(encoding="utf-8-sig")
        (folder / name).write_bytes(text.replace("\n", "\r\n").encode("gb18030") + b"\r\n,,,\r\n")
    copy = load_catalog(folder)
    for name in ("options", "variants", "current_uses"):
        pd.testing.assert_frame_equal(getattr(copy, name), getattr(original, name))
    lines = (folder / "variants.csv").read_bytes().decode("gb18030").split("\r\n")
    assert lines[1].startswith("closure,closure,hill closure,封山育林,,,50,")
    lines[1] = lines[1].replace(",,,50,", ',,,"1,250",')  # Excel's thousands separator
    (folder / "variants.csv").write_bytes("\r\n".join(lines).encode("gb18030"))
    assert load_catalog(folder).variants["establishment_cost_per_mu"].iloc[0] == 1250
    lines[1] = lines[1].replace(',,,"1,250",', ",,,#N/A,")
    (folder / "variants.csv").write_bytes("\r\n".join(lines).encode("gb18030"))
    with pytest.raises(InputError) as caught:
        load_catalog(folder)
    for needle in ("variants.csv", "line 2", "establishment_cost_per_mu", "#N/A", "Excel error"):
        assert needle in str(caught.value)


def test_scenario_and_catalog_saved_by_notepad(tmp_path: Path) -> None:
    """A scenario TOML (and a catalog.toml) saved by Notepad on Chinese Windows: UTF-8 with a byte-order mark, or
    GBK ("ANSI"); before, the first was "not valid TOML" at line 1 and the second a traceback."""
    import shutil

    from optiland.io.catalog import load_catalog
    from optiland.io.scenario import load_scenario
    from optiland.testing import SMALL_CATALOG

    path = write_instance(tmp_path / "i", scenario='name = "下荣 方案"\n' + TINY_SCENARIO)
    text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
    for raw in (b"\xef\xbb\xbf" + text.encode("utf-8"), text.encode("gbk")):
        path.write_bytes(raw)
        assert load_scenario(path).name == "下荣 方案"
    folder = tmp_path / "catalog"
    shutil.copytree(SMALL_CATALOG, folder)
    meta = (folder / "catalog.toml").read_text(encoding="utf-8")
    (folder / "catalog.toml").write_bytes(b"\xef\xbb\xbf" + meta.encode("utf-8"))
    assert load_catalog(folder).region == load_catalog(SMALL_CATALOG).region


def test_paths_written_on_windows(tmp_path: Path) -> None:
    """A path with backslashes, or a name whose case differs from the file's (Windows ignores case, Linux does
    not): the message says which."""
    from optiland.io.scenario import load_scenario
    from optiland.pipeline.run import prepare

    scenario = TINY_SCENARIO.replace("[solver]", '[spatial]\nlocks = \'数据\\锁定.csv\'\n\n[solver]')
    path = write_instance(tmp_path / "i", scenario=scenario)
    with pytest.raises(InputError, match=r"forward slashes \('.*/i/数据/锁定.csv'\)"):
        prepare(path)
    (path.parent / "Locks.CSV").write_text("parcel_id,option,lock\n", encoding="utf-8")
    path.write_text(TINY_SCENARIO.replace("[solver]", '[spatial]\nlocks = "locks.csv"\n\n[solver]'), encoding="utf-8")
    with pytest.raises(InputError, match="the folder has 'Locks.CSV'"):
        prepare(path)
    with pytest.raises(InputError, match="the folder has 'scenario.toml'"):
        load_scenario(path.parent / "Scenario.toml")


def test_catalog_row_listed_twice(tmp_path: Path) -> None:
    """A catalog option or variant listed twice (a row copied in Excel) was accepted, one of the two silently
    winning; now both lines are named."""
    import shutil

    from optiland.io.catalog import load_catalog
    from optiland.testing import SMALL_CATALOG

    folder = tmp_path / "catalog"
    shutil.copytree(SMALL_CATALOG, folder)
    lines = (folder / "variants.csv").read_text(encoding="utf-8-sig").splitlines()
    (folder / "variants.csv").write_text("\n".join(lines + [lines[2].replace(",800,", ",900,")]) + "\n",
                                         encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_catalog(folder)
    text = str(caught.value)
    for needle in ("variants.csv", f"line {len(lines) + 1}", "already listed on line 3", "afforestation / zenia"):
        assert needle in text, text
