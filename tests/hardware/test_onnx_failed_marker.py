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


def test_a_killed_writers_temporary_file_is_removed_by_the_next_writer(tmp_path: Path) -> None:
    """An export child killed at its time limit (SIGKILL) left its 0-byte temporary file for good
    (audit M7). The next writer removes a sibling whose process on this host is gone and that has
    not been touched for a minute; a live writer's file, a fresh one and another host's stay."""
    import os
    import socket
    import subprocess
    import sys
    import time

    path = tmp_path / "gpt2.fp32.onnx"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    here = socket.gethostname().split(".")[0]
    old = time.time() - 2 * ox.STALE_TMP_S
    killed = tmp_path / f"gpt2.fp32.{dead}@{here}.abc123.tmp.onnx"
    fresh = tmp_path / f"gpt2.fp32.{dead}@{here}.def456.tmp.onnx"
    live = tmp_path / f"gpt2.fp32.{os.getppid()}@{here}.ghi789.tmp.onnx"  # another process, running
    other_model = tmp_path / f"gpt2-medium.fp32.{dead}@{here}.jkl012.tmp.onnx"
    other_host = tmp_path / f"gpt2.fp32.{dead}@{here}x.mno345.tmp.onnx"  # its pids mean nothing here
    for f in (killed, fresh, live, other_model, other_host):
        f.write_bytes(b"")
    for f in (killed, live, other_model, other_host):
        os.utime(f, (old, old))
    with ox._atomic(path) as tmp:
        assert f".{os.getpid()}@{here}." in tmp.name
        tmp.write_bytes(b"graph")
    assert path.read_bytes() == b"graph"
    assert not killed.exists() and fresh.exists() and live.exists() and other_model.exists()
    assert sorted(p.name for p in tmp_path.glob("*.tmp.onnx")) == sorted(
        f.name for f in (fresh, live, other_model, other_host))


def test_a_remembered_failure_says_how_to_retry_on_its_first_line(tmp_path: Path, monkeypatch) -> None:
    """`benchmark`'s table shows a failure's first line; an exporter's error spans lines, and the
    marker's "(delete ... to retry)" came after it, so the table never said how to try again."""
    monkeypatch.setenv("PERFCAST_CACHE", str(tmp_path))
    marker = ox.onnx_path("distilbert-base-uncased", "fp32").with_suffix(".failed")
    marker.write_text("TorchExportError: Failed to export the model\nan op the exporter does not know\n")
    with pytest.raises(RuntimeError) as e:
        ox.ensure_onnx("distilbert-base-uncased", "fp32")
    first = str(e.value).splitlines()[0]
    assert f"(delete {marker} to retry)" in first and "failed before" in first
