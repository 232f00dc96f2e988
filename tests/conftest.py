"""Shared fixtures: every test gets its own DuckDB file and cache dir, never the user's."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_paths(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path_factory.mktemp("perfcast")
    monkeypatch.setenv("PERFCAST_DB", str(base / "default.duckdb"))
    monkeypatch.setenv("PERFCAST_CACHE", os.environ.get("PERFCAST_TEST_CACHE", str(base / "cache")))
    # a developer's own catalog files must not change what the tests see
    monkeypatch.delenv("PERFCAST_MODELS", raising=False)
    monkeypatch.delenv("PERFCAST_HARDWARE", raising=False)


@pytest.fixture(autouse=True)
def _ctrl_c_raises() -> "object":
    """Ctrl-C raises KeyboardInterrupt in every test, as in a terminal. A shell without job control
    starts a background command (``pytest ... &``, ``nohup``) with SIGINT ignored, and Python then
    keeps SIG_IGN: the tests that send a real SIGINT (engine.interrupts, optimize's and a loop's
    interrupted records, benchmark's and an export's Ctrl-C) passed in a terminal and failed in
    such a run ("DID NOT RAISE KeyboardInterrupt"), session 33."""
    import signal

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def resolve_calls(monkeypatch: pytest.MonkeyPatch) -> "object":
    """How often each hardware name is resolved (``engine.predict.resolve``, a read of the store's
    hardware table each): a Counter filled as the test runs."""
    from collections import Counter

    import engine.predict as predict_module

    calls: Counter[str] = Counter()
    real = predict_module.resolve

    def counted(name: str, store=None):  # type: ignore[no-untyped-def]
        calls[name] += 1
        return real(name, store)

    monkeypatch.setattr(predict_module, "resolve", counted)
    return calls


SYNTHETIC_HARDWARE = ["cpu-syn-2c", "cpu-syn-16c", "gpu-syn-a"]


@pytest.fixture(scope="module")
def syn():  # type: ignore[no-untyped-def]
    """bench/synthetic.py's roofline-shaped world: (featurizer, candidate configs, measure fn)."""
    from bench.synthetic import random_configs, synthetic_featurizer, synthetic_measurements

    fz = synthetic_featurizer()
    configs = list(dict.fromkeys(random_configs(260, SYNTHETIC_HARDWARE, seed=5)))
    return fz, configs, synthetic_measurements


@pytest.fixture(scope="module")
def fitted_gp(syn):  # type: ignore[no-untyped-def]
    """A small GP fitted on 40 synthetic configurations, and the remaining ones as a pool."""
    from engine.models.gp import GPPredictor

    fz, configs, measure = syn
    train = configs[:40]
    return GPPredictor(featurizer=fz, maxiter=15, calibrate=False).fit(measure(train, seed=1)), configs[40:]


@pytest.fixture()
def other_process():  # type: ignore[no-untyped-def]
    """A live process other than this one, as an experiment's owner stamp (engine.store.owner)."""
    import subprocess
    import sys

    import psutil

    from engine.store.owner import owner_stamp

    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield {"host": owner_stamp()["host"], "pid": p.pid, "started": psutil.Process(p.pid).create_time()}
    finally:
        p.kill()
        p.wait()
