"""The app end to end in a real browser (Playwright with Debian's /usr/bin/chromium, WebGL by SwiftShader) against a
uvicorn server on 127.0.0.1: the demo's map, a solve recolouring the map (read back with queryRenderedFeatures), a
hand edit into a broken rule named on the page, the exported plan checked by `optiland check`'s code, two plans
compared, a front point picked. Screenshots of each view go to test-artifacts/app/ (README, "The app")."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from optiland.analysis.generate import generate_instance  # noqa: E402
from optiland.app import demo_scenario  # noqa: E402
from optiland.app.server import create_app, make_state  # noqa: E402
from optiland.check import check_outdir  # noqa: E402
from optiland.model.problem import explain  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "app"
ARGS = ["--no-sandbox", "--disable-gpu", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
        "--disable-background-networking", "--disable-dev-shm-usage"]
HANG = 300_000  # ms: ceilings against hangs (a solve on a busy machine), never what decides a result

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tiny = tmp_path_factory.mktemp("inst") / "tiny"
    tiny.mkdir()
    generate_instance(60, 2, 4, 3, tiny)
    state = make_state(tmp_path_factory.mktemp("project"), slots=2)
    demo = state.open(demo_scenario(), default=True)
    small = state.open(tiny / "scenario.toml")
    port = _free_port()
    config = uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield {"url": f"http://127.0.0.1:{port}/", "state": state, "demo": demo, "tiny": small, "tiny_dir": tiny}
    srv.should_exit = True
    thread.join(timeout=10)
    state.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


def _page(browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    page.set_default_timeout(HANG)
    page.goto(url)
    page.wait_for_selector("body[data-map-ready='1']")
    return page


def _rendered(page: Page, key: str, where: str = "state") -> dict[int, object]:
    """Feature id -> feature state (or tile property) `key` of every parcel drawn on the map."""
    pairs = page.evaluate(f"""() => window.__optiland.map.queryRenderedFeatures({{layers: ['parcels-fill']}})
        .map((f) => [f.id, f.{where}['{key}'] === undefined ? null : f.{where}['{key}']])""")
    return {int(i): v for i, v in pairs}


def _solve(page: Page, floor: float) -> str:
    page.click("#tabs button[data-tab='scenario']")
    page.fill("#f-income_floor", str(floor))
    before = page.evaluate("() => document.body.dataset.planShown || ''")
    page.click("#solve")
    page.wait_for_function(f"() => (document.body.dataset.planShown || '') !== '{before}'")
    return page.evaluate("() => document.body.dataset.planShown")


def _click_parcel(page: Page, lon: float, lat: float) -> bool:
    """Click the map at a place; False if an overlay (legend, controls) covers it there."""
    point = page.evaluate(f"() => window.__optiland.map.project([{lon}, {lat}])")
    box = page.locator("#map canvas").bounding_box()
    x, y = box["x"] + point["x"], box["y"] + point["y"]
    if page.evaluate(f"() => document.elementFromPoint({x}, {y})?.tagName") != "CANVAS":
        return False
    page.mouse.click(x, y)
    return True


def test_demo_map_zh(server: dict, browser) -> None:
    """The shipped demo opens on its map of current uses, with legend, scale and north arrow, in Chinese."""
    demo = server["demo"]
    page = _page(browser, server["url"] + f"?lang=zh&instance={demo.key}")
    drawn = _rendered(page, "u", "properties")
    assert len(drawn) >= 1000 and set(drawn) <= set(range(demo.meta["parcels"]))
    codes = json.loads((demo.folder / "parcels.json").read_text(encoding="utf-8"))["land_use"]
    assert all(drawn[i] == codes[i] for i in drawn)  # each drawn parcel coloured by its own current use
    legend = page.inner_text("#legend")
    assert "现状用地" in legend and "生态保护红线" in legend
    assert page.locator(".maplibregl-ctrl-scale").count() == 1 and page.locator("#north svg").count() == 1
    page.screenshot(path=str(ARTIFACTS / "demo-current-use.png"))
    page.select_option("#view", "suit")
    page.wait_for_function("() => window.__optiland.suit !== null")
    suit = page.evaluate("() => window.__optiland.suit")
    assert suit["option"] and len(suit["codes"]) == demo.meta["parcels"]
    assert any(r in page.inner_text("#legend") for r in suit["reasons"])
    page.screenshot(path=str(ARTIFACTS / "demo-suitability.png"))
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_solve_edit_export_compare_front(server: dict, browser, tmp_path: Path) -> None:
    state, tiny = server["state"], server["tiny"]
    page = _page(browser, server["url"] + f"?lang=en&instance={tiny.key}")

    # change a floor, solve: the map recolours with the plan, tables carry villages.csv's figures
    first = _solve(page, 3900)
    out = state.runner.folder(first) / "out"
    plan = pd.read_csv(out / "villages.csv", encoding="utf-8-sig", dtype={"village": str})
    assert set(plan["floor"]) == {3900}
    codes = page.evaluate(f"() => window.__optiland.plans['{first}'].codes")
    drawn = _rendered(page, "p")
    assert len(drawn) == tiny.meta["parcels"] and all(drawn[i] == codes[i] for i in drawn)
    kinds = tiny.meta["kinds"]
    table = gpd.read_file(out / "plan.gpkg", layer="parcels")
    ids = json.loads((tiny.folder / "parcels.json").read_text(encoding="utf-8"))["parcel_id"]
    chosen = dict(zip(table["parcel_id"], zip(table["option"], table["variant"], strict=True), strict=True))
    assert all((kinds[codes[i]]["option"], kinds[codes[i]]["variant"]) == chosen[pid] for i, pid in enumerate(ids))
    for row in plan.itertuples(index=False):
        cell = page.locator(f"#village-table td[data-village='{row.village}'][data-field='income_per_capita_after']")
        assert float(cell.get_attribute("data-value")) == pytest.approx(row.income_per_capita_after, abs=1e-9)
    page.screenshot(path=str(ARTIFACTS / "plan.png"))

    # click a parcel, put it into a use its site rules forbid: the broken rule is named
    prepared = tiny.prepared()
    geometry = gpd.read_file(server["tiny_dir"] / "parcels.gpkg").set_index("parcel_id").to_crs(4326).geometry
    for pid in ids:
        options = explain((prepared.catalog, prepared.problem.parcels), pid)
        forbidden = options[~options["allowed"]]
        spot = geometry[pid].representative_point()
        if len(forbidden) and _click_parcel(page, spot.x, spot.y):
            bad = forbidden.iloc[0]
            break
    else:
        raise AssertionError("no parcel with a forbidden option could be clicked")
    page.wait_for_selector(f"#parcel-title[data-parcel='{pid}']")
    row = page.locator(f"#explain-table tr[data-option='{bad.option}'][data-variant='{bad.variant}']")
    assert row.get_attribute("data-allowed") == "0" and bad.why.split(";")[0] in row.inner_text()
    row.locator("button").click()
    page.wait_for_selector("#violations")
    named = page.locator(f"#violations li[data-key='{pid}']")
    assert named.count() >= 1 and bad.why.split(";")[0] in named.first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "edit-broken-rule.png"))
    page.click("#clear-edits")

    # export the plan folder and check it as `optiland check` does
    page.click("#tabs button[data-tab='plan']")
    with page.expect_download() as download:
        page.click("#export")
    zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).extractall(tmp_path)
    assert check_outdir(tmp_path / "plan") == []

    # a second plan, then compare the two: the difference map and table
    second = _solve(page, 4400)
    assert second != first
    page.click("#tabs button[data-tab='compare']")
    page.select_option("#compare-a", first)
    page.select_option("#compare-b", second)
    page.click("#compare-go")
    page.wait_for_selector("#compare-changed")
    codes_b = page.evaluate(f"() => window.__optiland.plans['{second}'].codes")
    changed = sum(a != b for a, b in zip(codes, codes_b, strict=True))
    assert int(page.get_attribute("#compare-changed", "data-value")) == changed
    page.wait_for_timeout(300)
    flags = _rendered(page, "d")
    assert all(flags[i] == int(codes[i] != codes_b[i]) for i in flags)
    assert page.locator("#compare-villages tr[data-village]").count() == len(plan)
    page.screenshot(path=str(ARTIFACTS / "compare.png"))

    # the ES-income front: pick a point (the map switches from the page's cache), then make it the working plan
    page.click("#tabs button[data-tab='front']")
    page.fill("#front-points", "3")
    page.fill("#front-time", "30")
    page.click("#front-go")
    page.wait_for_selector("#front-svg circle")
    knee = page.evaluate("() => window.__optiland.front.knee")
    page.click(f"#front-svg circle[data-point='{knee}']")
    page.wait_for_function(f"() => document.body.dataset.frontShown === '{knee}'")
    point_codes = page.evaluate(f"() => window.__optiland.front.codes['{knee}']")
    drawn = _rendered(page, "p")
    assert all(drawn[i] == point_codes[i] for i in drawn)
    page.screenshot(path=str(ARTIFACTS / "front.png"))
    ordered = page.evaluate("() => window.__optiland.front.points.slice().sort((a, b) => a.income - b.income)"
                            ".map((p) => p.point ?? p.plan_id)")
    page.locator("#front-slider").fill("0")  # dragged to the lowest-income end: the map follows
    page.wait_for_function(f"() => document.body.dataset.frontShown === '{ordered[0]}'")
    page.locator("#front-slider").fill(str(ordered.index(knee)))
    page.wait_for_function(f"() => document.body.dataset.frontShown === '{knee}'")
    before = page.evaluate("() => document.body.dataset.planShown || ''")
    page.click("#front-pick")
    page.wait_for_function(f"() => (document.body.dataset.planShown || '') !== '{before}'")
    picked = page.evaluate("() => document.body.dataset.planShown")
    assert page.evaluate(f"() => window.__optiland.plans['{picked}'].codes") == point_codes
    assert not page.errors  # type: ignore[attr-defined]
    page.close()


def test_upload_problems_listed_then_opened(server: dict, browser, tmp_path: Path) -> None:
    """An uploaded layer with a bad value is refused with the parcel, column and value in the page; fixed, it opens."""
    layer = gpd.read_file(server["tiny_dir"] / "parcels.gpkg")
    bad_id = layer.loc[5, "parcel_id"]
    layer.loc[5, "slope_deg"] = 95.0
    (tmp_path / "bad.geojson").write_text(layer.to_json(), encoding="utf-8")
    villages = server["tiny_dir"] / "villages.csv"
    page = _page(browser, server["url"] + f"?lang=en&instance={server['tiny'].key}")
    page.click("#tabs button[data-tab='open']")
    page.set_input_files("#up-parcels", str(tmp_path / "bad.geojson"))
    page.set_input_files("#up-villages", str(villages))
    page.click("#up-go")
    page.wait_for_selector("#up-problems tr:nth-child(2)")
    rows = page.locator("#up-problems tr").all_inner_texts()
    assert any(bad_id in r and "slope_deg" in r and "95" in r for r in rows), rows
    layer.loc[5, "slope_deg"] = 12.0
    (tmp_path / "good.geojson").write_text(layer.to_json(), encoding="utf-8")
    page.set_input_files("#up-parcels", str(tmp_path / "good.geojson"))
    before = page.evaluate("() => window.__optiland.key")
    page.click("#up-go")
    page.wait_for_function(f"() => window.__optiland.key !== '{before}' && document.body.dataset.mapReady === '1'")
    assert page.evaluate("() => window.__optiland.meta.parcels") == len(layer)
    page.screenshot(path=str(ARTIFACTS / "upload.png"))
    assert not page.errors  # type: ignore[attr-defined]
    page.close()
