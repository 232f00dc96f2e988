"""Fixtures for adapter tests: the local hardware id and one ONNX cache shared by the session.

Exporting a model to ONNX costs ~10-20 s, so the ONNX Runtime and OpenVINO tests share one
export per session (or ``PERFCAST_TEST_CACHE`` when set) instead of one per test.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(os.environ.get("PERFCAST_TEST_CACHE") or tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture
def shared_cache(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERFCAST_CACHE", str(onnx_cache))
    return onnx_cache


@pytest.fixture(scope="session")
def cpu_id() -> str:
    from hardware.detect import local_cpu_id

    return local_cpu_id()
