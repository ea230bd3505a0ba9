"""Locate the data folders (`models/`, `solvers/`) in a source checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder `name` ("models" or "solvers"): beside the package in a checkout, inside it when installed."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"optiland data folder {name!r} not found beside or inside {_PACKAGE}")


def models_dir() -> Path:
    """Folder of the region catalogs."""
    return data_dir("models")


def solvers_dir() -> Path:
    """Folder of the solver presets."""
    return data_dir("solvers")
