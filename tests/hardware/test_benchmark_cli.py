from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli


def test_benchmark_json_and_save(tmp_path: Path) -> None:
    db = tmp_path / "b.duckdb"
    r = CliRunner().invoke(cli, ["benchmark", "--model", "distilbert-base-uncased", "--hardware", "cpu",
                                 "--batch-sizes", "1,2", "--seq-lengths", "8", "--iterations", "2", "--warmup", "1",
                                 "--min-time", "0", "--threads", "1", "--save", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["config"]["batch_size"] for row in rows] == [1, 2]
    assert all(row["status"] == "ok" and row["saved"] for row in rows)
    from engine.store import Store

    df = Store(db).measurements(where="source = 'measured'")
    assert len(df) == 2 and (df["latency_median_ms"] > 0).all()


def _exit_code(argv: list[str]) -> int:
    from engine.cli.main import main

    try:
        return int(main(argv) or 0)
    except SystemExit as e:
        return int(e.code or 0)


def test_unavailable_hardware_is_one_line_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert _exit_code(["benchmark", "--model", "gpt2", "--hardware", "qnn"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not available on this machine" in err


def test_unknown_model_suggests(capsys) -> None:  # type: ignore[no-untyped-def]
    assert _exit_code(["benchmark", "--model", "gtp2"]) == 2
    assert "did you mean 'gpt2'" in capsys.readouterr().err


def test_several_runtimes_in_one_command(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """`--runtime onnxruntime,openvino` benchmarks every configuration on each runtime's adapter
    (the adapters are stand-ins here: what is checked is which adapters the command asks for)."""
    import hardware.registry
    from engine.records import Measurement

    asked: list[tuple[str, object]] = []

    class Stub:
        def __init__(self, runtime: str) -> None:
            self.name, self.runtime = f"stub-{runtime}", runtime

        def available(self) -> tuple[bool, str]:
            return True, ""

        def hardware_id(self) -> str:
            return "cpu-stub"

        def run(self, spec):  # type: ignore[no-untyped-def]
            return Measurement.from_samples(spec.config, [1.0, 1.1], adapter=self.name)

    def resolve(h: str, runtime: object = None) -> Stub:
        asked.append((h, runtime))
        return Stub(str(runtime))

    monkeypatch.setattr(hardware.registry, "resolve", resolve)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "distilbert-base-uncased", "--hardware", "cpu",
                                 "--runtime", "onnxruntime,openvino", "--precision", "fp32,int8", "--json"])
    assert r.exit_code == 0, r.output
    assert asked == [("cpu", "onnxruntime"), ("cpu", "openvino")]
    rows = json.loads(r.stdout)
    assert sorted((row["config"]["runtime"], row["config"]["precision"]) for row in rows) == [
        ("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
    assert _exit_code(["benchmark", "--model", "gpt2", "--runtime", "torch,onnx"]) == 2
    assert "invalid runtime 'onnx'" in capsys.readouterr().err


class _StubAdapter:
    """An adapter stand-in (which configurations the command starts, and the exit status)."""

    def __init__(self, runtime: str, fail: bool = False) -> None:
        self.name, self.runtime, self.platform, self.fail, self.ran = f"stub-{runtime}", runtime, "cpu", fail, []

    def available(self) -> tuple[bool, str]:
        return True, ""

    def hardware_id(self) -> str:
        return "cpu-stub"

    def run(self, spec):  # type: ignore[no-untyped-def]
        from engine.records import Measurement

        self.ran.append(spec.config)
        if self.fail:
            return Measurement.failed(spec.config, "failed", "RuntimeError: boom")
        return Measurement.from_samples(spec.config, [1.0, 1.1], adapter=self.name)


def test_benchmark_refuses_known_refusals_up_front_and_fails_when_every_run_fails(monkeypatch) -> None:
    """Audit: `benchmark --hardware openvino --precision int8 --mode training` started a child that
    failed (openvino measures inference only) and exited 0."""
    import hardware.registry

    stubs: dict[str, _StubAdapter] = {}
    monkeypatch.setattr(hardware.registry, "resolve",
                        lambda h, r=None: stubs.setdefault(str(r), _StubAdapter(str(r), fail=bool(stubs.get("fail")))))
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "openvino", "--precision", "int8",
                                 "--mode", "training"])
    assert r.exit_code == 2 and "invalid configuration 'stub-openvino int8/training'" in r.output
    assert not stubs["openvino"].ran  # nothing was started
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "onnxruntime", "--precision",
                                 "fp32,fp16"])
    assert r.exit_code == 0 and "left out 1 configuration that the adapter refuses: stub-onnxruntime fp16" in \
        " ".join(r.output.split())
    assert [c.precision for c in stubs["onnxruntime"].ran] == ["fp32"]
    stubs.clear()
    stubs["torch"] = _StubAdapter("torch", fail=True)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch"])
    assert r.exit_code == 1 and "boom" in r.output  # the table shows the failure; the status says it


def test_benchmarking_a_catalog_device_says_it_is_known_but_not_here() -> None:
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--hardware", "h100-sxm"])
    assert r.exit_code == 2 and "'h100-sxm' is a catalog device (cuda)" in r.output and "unknown" not in r.output
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--hardware", "h100-sxmm"])
    assert r.exit_code == 2 and "unknown hardware 'h100-sxmm'" in r.output


def test_benchmark_takes_this_machines_own_cpu_id() -> None:
    from hardware.detect import local_cpu_id
    from hardware.registry import resolve

    assert resolve(local_cpu_id()).name == resolve("cpu").name


def test_a_precision_far_below_fp32_on_its_cpu_is_named_before_any_run(capsys) -> None:
    """Audit: the README's first benchmark command ran bf16 on a CPU without bf16 kernels (0.98
    GFLOP/s), minutes per pass, without a word."""
    from engine.cli.benchmark_cmd import _slow_precision_caution
    from engine.config import Config

    _slow_precision_caution([(None, Config("gpt2", hw, 1, 128, "bf16")) for hw in
                             ("cpu-amd-epyc-avx2-2c", "cpu-amd-epyc-2c", "cpu-amd-epyc-avx2-2c")])
    err = capsys.readouterr().err
    assert err.count("caution:") == 1 and "bf16 on cpu-amd-epyc-avx2-2c runs at 0.98 GFLOP/s" in err


class _FailsAt(_StubAdapter):
    """A stub whose runs at one precision fail: a grid with one bad cell among good ones."""

    def __init__(self, runtime: str, bad: str) -> None:
        super().__init__(runtime)
        self.bad = bad

    def run(self, spec):  # type: ignore[no-untyped-def]
        from engine.records import Measurement

        self.ran.append(spec.config)
        if spec.config.precision == self.bad:
            return Measurement.failed(spec.config, "oom", "MemoryError: over the limit")
        return Measurement.from_samples(spec.config, [1.0, 1.1], adapter=self.name)


def test_one_failed_run_among_good_ones_exits_1_after_every_run_is_stored_and_shown(monkeypatch,
                                                                                   tmp_path: Path) -> None:
    """Before, a partial failure exited 0 (only an all-failed command exited 1): a script running a
    grid could not tell that one of its runs was an oom."""
    import hardware.registry
    from engine.store import Store

    stub = _FailsAt("torch", bad="bf16")
    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: stub)
    db = tmp_path / "b.duckdb"
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--precision", "fp32,bf16,int8",
                                 "--save", "--db", str(db), "--json"])
    assert r.exit_code == 1, r.output
    rows = json.loads(r.stdout)  # the JSON is whole: the exit comes after it
    assert [(row["config"]["precision"], row["status"], row["saved"]) for row in rows] == [
        ("fp32", "ok", True), ("bf16", "oom", True), ("int8", "ok", True)]
    df = Store(db, seed=False).measurements(where="source = 'measured'")
    assert sorted(df["precision"]) == ["fp32", "int8"]  # successes; the failed run is stored as a failure
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--precision", "fp32,bf16"])
    assert r.exit_code == 1 and "MemoryError: over the limit" in r.output and "Measurements" in r.output
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--precision", "fp32,int8"])
    assert r.exit_code == 0, r.output


def test_ray_benchmark_exits_1_when_any_run_failed(monkeypatch) -> None:
    """`--executor ray` shows the results and then exits as the local executor does (before, it
    exited 0 even when every run had failed)."""
    import experiments.ray_benchmark
    from engine.config import Config
    from engine.records import Measurement
    from experiments.ray_benchmark import RemoteAdapter

    target = RemoteAdapter("torch-cpu", "torch", "cpu-stub")
    ok = Measurement.from_samples(Config("gpt2", "cpu-stub", 1, 128), [1.0, 1.1], adapter="torch-cpu")
    bad = Measurement.failed(Config("gpt2", "cpu-stub", 2, 128), "timeout", "killed after 600 s")
    landed: list[list] = [[(target, ok, None), (target, bad, None)], [(target, ok, None)]]
    monkeypatch.setattr(experiments.ray_benchmark, "benchmark_on_ray", lambda *a, **k: landed[0])
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--executor", "ray", "--batch-sizes", "1,2", "--json"])
    assert r.exit_code == 1, r.output
    assert [row["status"] for row in json.loads(r.stdout)] == ["ok", "timeout"]
    landed.pop(0)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--executor", "ray", "--json"])
    assert r.exit_code == 0, r.output

    def none_ran(*a, skipped=None, **k):  # a configuration no live worker could run: not measured, not stored
        skipped["gpt2|cpu-stub|b2"] = "no live worker has cpu-stub"
        return landed[0]

    monkeypatch.setattr(experiments.ray_benchmark, "benchmark_on_ray", none_ran)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--executor", "ray", "--batch-sizes", "1,2", "--json"])
    assert r.exit_code == 1, r.output
    assert [row["status"] for row in json.loads(r.stdout)] == ["ok"]


def test_torch_int8_on_a_model_it_barely_quantizes_is_cautioned_once_per_model(monkeypatch) -> None:
    """torch's dynamic quantization rewrites only nn.Linear: resnet50's "int8" is 0.1% int8 and the
    rest fp32, and nothing said so. gpt2 (98% in Linear layers) and onnxruntime (whose quantizer
    rewrites Conv too) are not cautioned; the JSON on stdout stays whole."""
    import hardware.registry

    stubs: dict[str, _StubAdapter] = {}
    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: stubs.setdefault(str(r), _StubAdapter(str(r))))
    r = CliRunner().invoke(cli, ["benchmark", "--model", "resnet50,gpt2", "--runtime", "torch", "--batch-sizes", "1,2",
                                 "--precision", "fp32,int8", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 8
    err = " ".join(r.stderr.split())
    assert err.count("caution:") == 1, err
    assert ("caution: int8 on resnet50 runs 0.1% of its FLOPs in int8 (torch's dynamic quantization rewrites only "
            "Linear layers); the rest runs in fp32") in err
    r = CliRunner().invoke(cli, ["benchmark", "--model", "resnet50", "--runtime", "onnxruntime", "--precision", "int8"])
    assert r.exit_code == 0 and "caution: int8" not in r.output


def test_the_int8_caution_never_fails_a_benchmark(monkeypatch) -> None:
    import engine.descriptors
    import hardware.registry

    def broken(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("no counts here")

    monkeypatch.setattr(engine.descriptors, "describe", broken)
    stub = _StubAdapter("torch")
    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: stub)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "resnet50", "--runtime", "torch", "--precision", "int8"])
    assert r.exit_code == 0 and "caution: int8" not in r.output and len(stub.ran) == 1


def test_ray_benchmark_leaves_out_refused_configurations_before_sending_any(monkeypatch) -> None:
    """`--executor ray` applies the local branch's up-front refusals over every runtime at once: an
    onnxruntime fp16 run is never sent to a worker (before, it failed there and was stored as a failed
    run), torch fp16 and both runtimes' fp32 are sent in one map, and a product that the adapters
    refuse entirely is the one-line error, exit 2, with nothing sent."""
    import experiments.ray_executor
    from engine.records import Measurement
    from experiments.ray_cluster import NodeInfo

    sent: list[list] = []

    class FakeExecutor:
        def __init__(self, address=None) -> None:
            self.skipped: dict[str, str] = {}

        def nodes(self, refresh: bool = False) -> list:
            return [NodeInfo("n1", "h", "ip", True, True, hardware=["cpu-stub"],
                             adapters={"torch-cpu": "cpu-stub", "onnxruntime": "cpu-stub"})]

        def map(self, specs, on_result=None) -> None:
            sent.append([s.config for s in specs])
            for s in specs:
                on_result(type("R", (), {"measurement": Measurement.from_samples(s.config, [1.0, 1.1], adapter="x"),
                                         "config": s.config, "node_id": "n1" * 4})())

    monkeypatch.setattr(experiments.ray_executor, "RayExecutor", FakeExecutor)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--executor", "ray", "--runtime", "torch,onnxruntime",
                                 "--precision", "fp32,fp16", "--json"])
    assert r.exit_code == 0, r.output
    assert len(sent) == 1
    assert sorted((c.runtime, c.precision) for c in sent[0]) == [("onnxruntime", "fp32"), ("torch", "fp16"), ("torch", "fp32")]
    assert "left out 1 configuration that the adapter refuses: onnxruntime fp16/inference" in " ".join(r.stderr.split())
    assert len(json.loads(r.stdout)) == 3
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--executor", "ray", "--runtime", "onnxruntime",
                                 "--precision", "fp16"])
    assert r.exit_code == 2 and "onnxruntime on CPU has no fp16 kernels" in r.output, r.output
    assert len(sent) == 1


def test_more_threads_than_the_cpu_has_cores_is_refused_before_any_run(monkeypatch) -> None:
    """`--threads 999` on a 2-core machine ran and stored a t999 run that every fit reads as t2 (the
    roofline caps threads at the cores); predict and a loop's search space refuse it, and so does
    benchmark now, in one line before any child starts."""
    import hardware.registry
    from engine.models.features import entry_cores
    from engine.catalog import resolve_hardware

    stubs: dict[str, _StubAdapter] = {}
    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: stubs.setdefault(str(r), _StubAdapter(str(r))))
    monkeypatch.setattr(_StubAdapter, "hardware_id", lambda self: "cpu-amd-epyc-2c")  # a catalog CPU of 2 cores
    assert entry_cores(resolve_hardware("cpu-amd-epyc-2c")) == 2
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--threads", "1,999"])
    assert r.exit_code == 2, r.output
    assert "invalid threads 999" in r.output and "0 to 2" in r.output
    assert not stubs["torch"].ran
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--threads", "1,2"])
    assert r.exit_code == 0, r.output
    assert [c.threads for c in stubs["torch"].ran] == [1, 2]


def test_threads_on_a_gpu_are_refused_before_any_run(monkeypatch) -> None:
    """`--threads 4` on a CUDA device ran and stored a t4 run identical to t0 (threads are CPU
    intra-op threads); it is one line naming the device, exit 2, before any child starts."""
    import hardware.registry

    stubs: dict[str, _StubAdapter] = {}
    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: stubs.setdefault(str(r), _StubAdapter(str(r))))
    monkeypatch.setattr(_StubAdapter, "hardware_id", lambda self: "a10")  # a catalog CUDA device
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--threads", "4"])
    assert r.exit_code == 2, r.output
    assert "invalid threads 4; valid: 0 on a10, a cuda device" in r.output and "CPU devices only" in r.output
    assert not stubs["torch"].ran
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch"])
    assert r.exit_code == 0, r.output
    assert [c.threads for c in stubs["torch"].ran] == [0]


def test_runs_timed_on_a_busy_machine_get_one_caution_with_a_count(monkeypatch) -> None:
    """Audit: a grid on a loaded machine printed one caution per busy run, the same advice down the
    screen; it is one line per command with a count, naming the runs (on stderr with --json)."""
    import hardware.registry
    from engine.records import Measurement

    class Busy(_StubAdapter):
        def hardware_id(self) -> str:
            return "cpu-amd-epyc-2c"

        def run(self, spec):  # type: ignore[no-untyped-def]
            self.ran.append(spec.config)  # batch 1 quiet; 2 and 4 while 1.9 other cores were busy
            load = 0.0 if spec.config.batch_size == 1 else 1.9
            return Measurement.from_samples(spec.config, [1.0, 1.1], adapter=self.name, foreign_cpu_cores=load)

    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: Busy(str(r)))
    for extra in ([], ["--json"]):
        r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--batch-sizes", "1,2,4",
                                     *extra])
        assert r.exit_code == 0, r.output
        err = " ".join(r.stderr.split()) if extra else " ".join(r.stdout.split())
        assert err.count("caution:") == 1, err
        assert "machine busy: 2 of 3 runs were timed while other processes kept 1.90 CPU cores busy" in err
        assert "gpt2|cpu-amd-epyc-2c|b2|" in err and "gpt2|cpu-amd-epyc-2c|b4|" in err
        assert "|b1|" not in err.split("caution:")[1]


class _CtrlC(_StubAdapter):
    """A stub whose ``at``-th run receives ``times`` Ctrl-Cs while it runs (SIGINT to this process,
    as a terminal sends it to perfcast)."""

    def __init__(self, runtime: str, at: int, times: int) -> None:
        super().__init__(runtime)
        self.at, self.times = at, times

    def run(self, spec):  # type: ignore[no-untyped-def]
        import signal
        import time

        if len(self.ran) + 1 == self.at:
            for _ in range(self.times):
                signal.raise_signal(signal.SIGINT)  # to this (the main) thread
                time.sleep(0.05)  # the handler runs in this (main) thread
        return super().run(spec)


def test_ctrl_c_lets_the_run_in_flight_land_shows_what_was_measured_and_exits_130(monkeypatch, tmp_path: Path) -> None:
    """Audit (2026-12-08): Ctrl-C during `benchmark --save` printed only "Aborted.": the runs measured
    without --save were never shown, and nothing said which runs the store held."""
    import hardware.registry
    from engine.store import Store

    stub = _CtrlC("torch", at=1, times=1)
    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: stub)
    db = tmp_path / "b.duckdb"
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--precision", "fp32,bf16,int8",
                                 "--save", "--db", str(db)])
    out = " ".join(r.output.split())
    assert r.exit_code == 130, r.output
    assert "the benchmark in flight will finish and be stored" in out and "Measurements (saved)" in out
    assert "interrupted: 1 of 3 configurations measured and stored; 2 not started" in out
    assert [c.precision for c in stub.ran] == ["fp32"]  # nothing started after the first Ctrl-C
    assert list(Store(db, seed=False).measurements(where="source = 'measured'")["precision"]) == ["fp32"]


def test_a_second_ctrl_c_stops_the_run_in_flight_and_keeps_what_landed(monkeypatch, tmp_path: Path) -> None:
    import hardware.registry
    from engine.store import Store

    stub = _CtrlC("torch", at=2, times=2)
    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: stub)
    db = tmp_path / "b.duckdb"
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--precision", "fp32,bf16,int8",
                                 "--save", "--db", str(db), "--json"])
    assert r.exit_code == 130, r.output
    assert [row["config"]["precision"] for row in json.loads(r.stdout)] == ["fp32"]  # stdout stays one document
    err = " ".join(r.stderr.split())
    assert "interrupted: 1 of 3 configurations measured and stored" in err
    assert "gpt2|cpu-stub|b1|s128|bf16|inference|torch|t0 was stopped in flight, not stored; 1 not started" in err
    assert list(Store(db, seed=False).measurements(where="source = 'measured'")["precision"]) == ["fp32"]


def test_ctrl_c_before_any_run_landed_prints_no_empty_table(monkeypatch) -> None:
    import hardware.registry

    stub = _CtrlC("torch", at=1, times=2)
    monkeypatch.setattr(hardware.registry, "resolve", lambda h, r=None: stub)
    r = CliRunner().invoke(cli, ["benchmark", "--model", "gpt2", "--runtime", "torch", "--precision", "fp32,bf16"])
    out = " ".join(r.output.split())
    assert r.exit_code == 130 and "Measurements" not in out, r.output
    assert "interrupted: 0 of 2 configurations measured; gpt2|cpu-stub|b1|s128|fp32|inference|torch|t0 was " \
           "stopped in flight; 1 not started" in out
