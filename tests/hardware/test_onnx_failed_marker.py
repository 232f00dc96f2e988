"""A failed ONNX export leaves a marker so the next run does not pay for it again, except when the
machine failed (a full disk, memory): then the next try may work, and a marker would fail every
later run of the model (seen in session 22 after the disk filled for a minute)."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

import hardware.onnx_export as ox


@pytest.mark.parametrize("exc, marked", [
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (RuntimeError("protobuf write failed: No space left on device"), False),
    (MemoryError(), False),
    (ValueError("an op the exporter does not know"), True),
])
def test_only_a_failure_of_the_export_itself_is_remembered(tmp_path: Path, monkeypatch, exc, marked) -> None:
    monkeypatch.setenv("PERFCAST_CACHE", str(tmp_path))

    def boom(entry, path):
        raise exc

    monkeypatch.setattr(ox, "_export_fp32", boom)
    with pytest.raises(type(exc)):
        ox.ensure_onnx("distilbert-base-uncased", "fp32")
    marker = ox.onnx_path("distilbert-base-uncased", "fp32").with_suffix(".failed")
    assert marker.exists() == marked
