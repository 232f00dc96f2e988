"""Shared fixtures: every test gets its own DuckDB file and cache dir, never the user's."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_paths(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path_factory.mktemp("perfcast")
    monkeypatch.setenv("PERFCAST_DB", str(base / "default.duckdb"))
    monkeypatch.setenv("PERFCAST_CACHE", os.environ.get("PERFCAST_TEST_CACHE", str(base / "cache")))
