"""DuckDB benchmark store (see :mod:`engine.store.store`)."""
from engine.store.store import Store

__all__ = ["Store"]
