"""Load the shipped dataset (real measurements made with perfcast's adapters) into a new DB."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from engine.store.store import Store

SHIPPED_FILE = "shipped_measurements.parquet"


def shipped_dataset_path() -> Optional[Path]:
    p = resources.files("engine") / "data" / SHIPPED_FILE
    path = Path(str(p))
    return path if path.exists() else None


def seed_shipped(store: "Store") -> int:
    """Import the shipped measurements; 0 when the package has none (e.g. during development)."""
    from engine.store.transfer import import_measurements

    path = shipped_dataset_path()
    if path is None:
        return 0
    return import_measurements(store, path, source="shipped")
