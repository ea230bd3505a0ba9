"""The app's performance figures (issue 24): tiles built once, first map, switching plans, page memory, and the
demo from `optiland app` to a solved plan on the map. Headless Debian chromium (SwiftShader WebGL: software
rendering, slower than a GPU). Appends one row per figure to benchmarks/results/app.csv.

    python benchmarks/app.py [--parcels 100000] [--demo] [--note "machine shared with ..."]

Plan switching is measured with two plans drawn at random over the instance's kinds, the map coloured by plan
(feature state set for each parcel whose option changed, as the page's `showCodes` does, then the map's next
idle), since what is timed is the repaint, not the plans. The first two runs' rows (2026-12-02, 09:42 and 09:50 UTC)
timed it with the map still coloured by current use (the plan's feature state then drew nothing): they understate it.
"""

from __future__ import annotations

import argparse
import csv
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from optiland.analysis.generate import generate_instance
from optiland.app.server import create_app, make_state

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "app.csv"
ARGS = ["--no-sandbox", "--disable-gpu", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
        "--disable-background-networking", "--disable-dev-shm-usage"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(rows: list[dict], figure: str, value: float, unit: str, parcels: int, note: str) -> None:
    row = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "figure": figure, "value": round(value, 3),
           "unit": unit, "parcels": parcels, "note": note}
    rows.append(row)
    print(f"{figure}: {value:,.3f} {unit} ({parcels:,} parcels)", flush=True)


def large(parcels: int, note: str, rows: list[dict]) -> None:
    folder = ROOT / "instances" / f"app-{parcels}"
    if not (folder / "scenario.toml").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        generate_instance(parcels, max(1, parcels // 10_000), max(4, parcels // 250), 11, folder)
        print(f"generated in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as project:
        state = make_state(Path(project))
        start = time.perf_counter()
        instance = state.open(folder / "scenario.toml")
        record(rows, "open instance (validate, copy, tiles, attributes, outlines)", time.perf_counter() - start, "s",
               parcels, note)
        record(rows, "tiles written (GDAL PMTiles driver)", instance.meta["tiles"]["seconds"], "s", parcels, note)
        record(rows, "tiles file", instance.meta["tiles"]["bytes"] / 1e6, "MB", parcels, note)
        port = _port()
        server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
                for visit in ("first visit", "second visit"):
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    page.set_default_timeout(600_000)
                    start = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{port}/?lang=en&instance={instance.key}")
                    page.wait_for_selector("body[data-map-ready='1']")
                    record(rows, f"first map, tiles cached ({visit})", time.perf_counter() - start, "s", parcels,
                           note)
                    if visit == "second visit":
                        break
                    page.close()
                kinds = len(instance.meta["kinds"])
                page.select_option("#view", "plan")  # the map coloured by the plan's feature state
                page.wait_for_timeout(500)
                times = page.evaluate(f"""async () => {{
                    const S = window.__optiland; const n = S.parcels.parcel_id.length; const out = [];
                    let seed = 7; const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
                    const plans = [0, 1].map(() => Array.from({{length: n}}, () => Math.floor(rnd() * {kinds})));
                    for (let k = 0; k < 6; k++) {{
                        S.current = null; S.frontPoint = null;
                        await new Promise((resolve) => {{
                            window.__optiland.map.once('idle', resolve);
                            const codes = plans[k % 2];
                            performance.mark('plan-switch-start');
                            const start = performance.now();
                            // the page's own path: feature state for changed parcels, then the map's next idle
                            for (let i = 0; i < n; i++) {{ if ((S.shown.p || [])[i] !== codes[i]) {{
                                const f = {{source: 'parcels', sourceLayer: 'parcels', id: i}};
                                S.map.setFeatureState(f, {{p: codes[i]}});
                                if (!S.shown.p) S.shown.p = new Int32Array(n).fill(-2);
                                S.shown.p[i] = codes[i]; }} }}
                            S.view = 'plan'; S.map.triggerRepaint();
                            window.__optiland.map.once('idle', () => {{ out.push(performance.now() - start); }});
                        }});
                        await new Promise((r) => setTimeout(r, 50));
                    }}
                    return out;
                }}""")
                times = [t for t in times if t is not None]
                later = sorted(times[1:])
                record(rows, "plan switch repaint (median of 5 after the first)", later[len(later) // 2], "ms",
                       parcels, note)
                session = page.context.new_cdp_session(page)
                session.send("Performance.enable")
                metrics = {m["name"]: m["value"] for m in session.send("Performance.getMetrics")["metrics"]}
                record(rows, "page JS heap used", metrics.get("JSHeapUsedSize", 0) / 1e6, "MB", parcels, note)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            state.close()


def demo(note: str, rows: list[dict]) -> None:
    """`optiland app` (a fresh project folder) to a solved plan of the demo on the map."""
    with tempfile.TemporaryDirectory() as project:
        port = _port()
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "optiland", "app", "--no-browser", "--port", str(port),
                                 "--project", project], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.set_default_timeout(900_000)
                while True:
                    try:
                        page.goto(f"http://127.0.0.1:{port}/?lang=en")
                        break
                    except Exception:  # noqa: BLE001 (the server is still opening the demo)
                        time.sleep(0.2)
                page.wait_for_selector("body[data-map-ready='1']")
                record(rows, "demo: optiland app to its map (tiles built)", time.perf_counter() - start, "s", 3000,
                       note)
                page.click("#solve")
                page.wait_for_function("() => (document.body.dataset.planShown || '') !== ''")
                record(rows, "demo: optiland app to a solved plan on the map", time.perf_counter() - start, "s", 3000,
                       note)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=100_000)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    rows: list[dict] = []
    try:
        if args.parcels:
            large(args.parcels, args.note, rows)
        if args.demo:
            demo(args.note, rows)
    finally:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        new = not RESULTS.exists()
        with open(RESULTS, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["date", "figure", "value", "unit", "parcels", "note"],
                                    lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
