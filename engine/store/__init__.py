"""DuckDB benchmark store (see :mod:`engine.store.store`)."""
from engine.store.store import Store, api_store

__all__ = ["Store", "api_store"]
