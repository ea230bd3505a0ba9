"""`optiland app`: a map-first web application on the engine (FastAPI JSON API, MapLibre page, jobs).

It imports only lower layers and adds no rule of its own: validation, explain, solve, fronts and check are the
engine's (the solves and fronts run the `optiland` command itself in child processes). See optiland.app.server
for the API and its security rules, optiland.app.project for the project folder, optiland.app.jobs for jobs.
"""

from __future__ import annotations

import secrets
import threading
import webbrowser
from pathlib import Path

LOCAL = ("127.0.0.1", "localhost", "::1")


def default_project() -> Path:
    """The project folder when none is given: ~/.local/share/optiland/app."""
    return Path.home() / ".local" / "share" / "optiland" / "app"


def demo_scenario() -> Path:
    """The shipped demo's scenario file."""
    from optiland._paths import data_dir

    return data_dir("instances") / "huanjiang-demo" / "scenario.toml"


def serve(target: Path | None = None, *, host: str = "127.0.0.1", port: int = 8787, token: str | None = None,
          project: Path | None = None, open_browser: bool = True, slots: int = 1, dask: str | None = None,
          say: object = print) -> None:
    """Open `target` (a scenario file, or a folder holding scenario.toml; default the demo) and serve the app
    until interrupted. Any host but a local one needs a token: one is generated and printed if none is given."""
    import uvicorn

    from optiland.app.server import create_app, make_state

    if host not in LOCAL and not token:
        token = secrets.token_urlsafe(24)
    scenario = demo_scenario() if target is None else Path(target)
    if scenario.is_dir():
        scenario = scenario / "scenario.toml"
    client = cluster = None
    if dask:  # jobs on a Dask cluster: a LocalCluster ("local") or a scheduler's address
        from distributed import Client, LocalCluster

        if dask == "local":
            cluster = LocalCluster(n_workers=slots, threads_per_worker=1, processes=True, dashboard_address=":0")
            client = Client(cluster)
        else:
            client = Client(dask)
    state = make_state(project or default_project(), token=token, slots=slots, client=client)
    try:
        instance = state.open(scenario, default=True)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
        say(f"optiland app: {instance.meta['name']} ({instance.meta['parcels']:,} parcels); project folder "  # type: ignore[operator]
            f"{state.root}")
        say(f"open {url}  (Ctrl+C stops the app)")  # type: ignore[operator]
        if open_browser:
            threading.Timer(1.0, lambda: webbrowser.open(url)).start()
        uvicorn.run(create_app(state), host=host, port=port, log_level="warning")
    finally:
        state.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
