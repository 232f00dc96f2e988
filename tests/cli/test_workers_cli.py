"""`perfcast worker start` / `perfcast workers`: the advertised resources, and the hint without Ray."""
from __future__ import annotations

import json
import sys

import pytest

from _cli_errors import invoke, one_error_line
from engine.cli.main import main
from hardware.detect import local_cpu_id


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rv = main(list(argv))
        code = rv if isinstance(rv, int) else 0  # perfcast's errors come back as the exit code
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a machine without the ray extra: `import ray` raises ImportError."""
    monkeypatch.setitem(sys.modules, "ray", None)


@pytest.mark.parametrize("argv", [["workers"], ["worker", "start", "--address", "127.0.0.1:6379"],
                                  ["benchmark", "--model", "gpt2", "--executor", "ray"],
                                  ["run", "cpu-quick", "--executor", "ray", "--no-compare"]])
def test_without_ray_one_line_install_hint_and_exit_2(capsys: pytest.CaptureFixture[str], no_ray: None,
                                                      argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "pip install 'perfcast[ray]'" in lines[0]


def test_ray_executor_without_ray_raises_the_hint(no_ray: None) -> None:
    """Every way of asking for the Ray executor: the class, the loop's factory, the optimiser's."""
    from engine.errors import NotAvailableError
    from engine.optimize.executors import make_executor as optimize_executor
    from experiments.executors import make_executor
    from experiments.ray_executor import RayExecutor

    for make in (RayExecutor, lambda: make_executor("ray"), lambda: optimize_executor("ray")):
        with pytest.raises(NotAvailableError, match=r"pip install 'perfcast\[ray\]'"):
            make()


def test_worker_start_dry_run_advertises_local_hardware_and_runtimes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "worker", "start", "--address", "10.0.0.5:6379", "--num-cpus", "2", "--dry-run",
                         "--json", "--", "--temp-dir", "/tmp/x")
    assert code == 0, err
    d = json.loads(out)
    res = d["resources"]
    assert res[f"hw:{local_cpu_id()}"] == 1.0
    assert res["rt:torch"] > 0  # torch is installed here
    assert f"ad:torch-cpu/{local_cpu_id()}" in res
    assert not any(k.startswith("hw:gpu-") for k in res)  # no GPU on this machine: never offered
    cmd = d["command"]
    assert cmd[1:4] == ["start", "--address", "10.0.0.5:6379"]
    assert json.loads(cmd[cmd.index("--resources") + 1]) == res
    assert cmd[cmd.index("--num-cpus") + 1] == "2"
    assert cmd[-2:] == ["--temp-dir", "/tmp/x"]


def test_worker_start_rejects_an_address_without_port(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "worker", "start", "--address", "headnode", "--dry-run")
    assert code == 2
    assert "HOST:PORT" in err


def test_workers_with_an_unreachable_head_fails_fast_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    from experiments.ray_local import free_port

    code, _, err = run(capsys, "workers", "--address", f"127.0.0.1:{free_port()}")
    assert code == 2
    assert "cannot reach the Ray head" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("address", ["notanaddress", "host:port", "10.0.0.5:99999"])
def test_workers_bad_address_is_one_line_without_ray(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # checked before Ray is needed
    one_error_line(invoke("workers", "--address", address), f"'{address}'", "HOST:PORT", "auto")


def test_workers_bad_ray_address_env_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("RAY_ADDRESS", "nohost")
    one_error_line(invoke("workers"), "RAY_ADDRESS", "'nohost'")


def test_worker_start_with_an_unreachable_head_fails_fast_in_one_line(capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit: `perfcast worker start --address HEAD:6379` (the README's placeholder) ran `ray start`,
    which retried the unresolvable head for over ten minutes; `run --executor ray` said in one line
    that it cannot reach it. The worker says the same, before `ray start` runs."""
    pytest.importorskip("ray")
    import subprocess

    from experiments.ray_local import free_port

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("`ray start` ran"))
    code, _, err = run(capsys, "worker", "start", "--address", f"127.0.0.1:{free_port()}")
    assert code == 2
    assert "cannot reach the Ray head" in err and len(err.strip().splitlines()) == 1


def test_run_on_an_unreachable_ray_head_leaves_no_new_store(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Audit: `perfcast run cpu-quick --executor ray --address HEAD:6379 --db lab.duckdb` created and
    seeded lab.duckdb, then said it cannot reach the head; now it says so first."""
    pytest.importorskip("ray")
    from experiments.ray_local import free_port

    db = tmp_path / "lab.duckdb"
    code, _, err = run(capsys, "run", "cpu-quick", "--executor", "ray", "--address", f"127.0.0.1:{free_port()}",
                       "--db", str(db), "--no-compare")
    assert code == 2 and "cannot reach the Ray head" in err
    assert not db.exists() and "created a new store" not in err
