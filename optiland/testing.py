"""Small in-memory instances for tests and examples (no files needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from optiland.io.inputs import Inputs
from optiland.io.scenario import Scenario

SMALL_CATALOG = Path(__file__).resolve().parent.parent / "tests" / "data" / "catalog-small"


def make_inputs(parcels: pd.DataFrame, villages: pd.DataFrame, crs: str = "EPSG:4545") -> Inputs:
    """Inputs from plain tables; parcels need `area_mu` and get square geometries laid in a row."""
    parcels = parcels.copy()
    # 15 mu to the hectare, written here and not taken from optiland.io.inputs, so that a test reading these
    # squares back checks the reader's conversion instead of repeating it
    side = np.sqrt(parcels["area_mu"].to_numpy(dtype=float) * 10000.0 / 15.0)
    x0 = 500000.0 + np.concatenate([[0.0], np.cumsum(side)[:-1]])
    parcels["geometry"] = shapely.box(x0, 2745000.0, x0 + side, 2745000.0 + side)
    frame = gpd.GeoDataFrame(parcels, geometry="geometry", crs=crs)
    return Inputs(parcels=frame, villages=villages.reset_index(drop=True), crs_note="test", hashes={})


def make_scenario(catalog: Path | dict[str, Any] = SMALL_CATALOG, **sections: Any) -> Scenario:
    """A scenario pointing at placeholder files (for in-memory inputs) with the given sections; `catalog` is a
    catalog folder or a whole ``[catalog]`` section (path, overrides, ...)."""
    section = dict(catalog) if isinstance(catalog, dict) else {"path": str(catalog)}
    data: dict[str, Any] = {"parcels": {"path": "parcels.gpkg"}, "villages": {"path": "villages.csv"},
                            "catalog": section}
    data.update(sections)
    return Scenario.model_validate(data)
