"""Small in-memory instances for tests and examples (no files needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from optiland.io.inputs import M2_PER_MU, Inputs
from optiland.io.scenario import Scenario

SMALL_CATALOG = Path(__file__).resolve().parent.parent / "tests" / "data" / "catalog-small"


def make_inputs(parcels: pd.DataFrame, villages: pd.DataFrame, crs: str = "EPSG:4545") -> Inputs:
    """Inputs from plain tables; parcels need `area_mu` and get square geometries laid in a row."""
    parcels = parcels.copy()
    side = np.sqrt(parcels["area_mu"].to_numpy(dtype=float) * M2_PER_MU)
    x0 = 500000.0 + np.concatenate([[0.0], np.cumsum(side)[:-1]])
    parcels["geometry"] = shapely.box(x0, 2745000.0, x0 + side, 2745000.0 + side)
    frame = gpd.GeoDataFrame(parcels, geometry="geometry", crs=crs)
    return Inputs(parcels=frame, villages=villages.reset_index(drop=True), crs_note="test", hashes={})


def make_scenario(catalog: Path = SMALL_CATALOG, **sections: Any) -> Scenario:
    """A scenario pointing at placeholder files (for in-memory inputs) with the given sections."""
    data: dict[str, Any] = {"parcels": {"path": "parcels.gpkg"}, "villages": {"path": "villages.csv"},
                            "catalog": {"path": str(catalog)}}
    data.update(sections)
    return Scenario.model_validate(data)
