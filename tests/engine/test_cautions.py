"""Cautions that travel with an answer (predict, compare-hardware, matrix, optimize, the Python API):
no adapter runs the configuration, the device lists no peak for the precision, no run vouches for it."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli
from engine.config import Config


def test_a_prediction_for_a_configuration_no_adapter_runs_says_so() -> None:
    from engine.predict import ResolvedHardware, unrunnable_caution

    h100 = ResolvedHardware("h100-sxm", "h100-sxm", "H100", "cuda")
    cpu = ResolvedHardware("cpu", "cpu-amd-epyc-2c", "EPYC", "cpu")
    assert "no perfcast adapter runs openvino" in unrunnable_caution(Config("gpt2", "h100-sxm", runtime="openvino"),
                                                                     h100)
    assert "torch int8" in unrunnable_caution(Config("gpt2", "h100-sxm", precision="int8"), h100)
    assert unrunnable_caution(Config("gpt2", "cpu-amd-epyc-2c", precision="int8"), cpu) is None
    assert unrunnable_caution(Config("gpt2", "h100-sxm", precision="fp16"), h100) is None


def test_optimize_cautions_for_devices_the_store_cannot_vouch_for(tmp_path) -> None:
    import json

    from engine.cli.main import cli

    db = str(tmp_path / "o.duckdb")
    cuda = CliRunner().invoke(cli, ["optimize", "--model", "bert-base-uncased", "--hardware", "cuda", "--json",
                                    "--db", db])
    assert cuda.exit_code == 0, cuda.output
    assert any("no cuda device has been measured" in w for w in json.loads(cuda.stdout)["warnings"])
    shipped = CliRunner().invoke(cli, ["optimize", "--model", "bert-base-uncased", "--hardware", "cpu-amd-epyc-2c",
                                       "--json", "--db", db])
    assert shipped.exit_code == 0 and json.loads(shipped.stdout)["warnings"] == []  # measured: nothing to say


def test_a_precision_the_accelerator_lists_no_peak_for_is_flagged() -> None:
    from engine.predict import borrowed_peak_caution

    assert "t4 lists no bf16 peak" in borrowed_peak_caution(Config("gpt2", "t4", precision="bf16"))
    assert "its fp32 peak" in borrowed_peak_caution(Config("gpt2", "t4", precision="bf16"))
    assert borrowed_peak_caution(Config("gpt2", "t4", precision="fp16")) is None
    assert borrowed_peak_caution(Config("gpt2", "cpu-amd-epyc-2c", precision="fp16")) is None  # CPUs: by design


def test_predict_cautions_where_no_adapter_measures_the_device_at_all() -> None:
    """WebNN on a WebNN laptop and QNN on a Hexagon NPU are real deployments (ranked, predicted) that
    no perfcast adapter measures (qnn is detection-only): predict now says so."""
    from engine.optimize.spec import adapter_measures, runtime_runs_on
    from engine.predict import ResolvedHardware, unrunnable_caution

    webnn = ResolvedHardware("webnn-laptop", "webnn-laptop", "WebNN laptop", "webnn")
    assert runtime_runs_on("webnn", "webnn") and not adapter_measures("webnn", "webnn", "fp32", "inference")
    assert "no perfcast adapter runs webnn" in unrunnable_caution(Config("gpt2", "webnn-laptop", runtime="webnn"),
                                                                  webnn)
    assert not adapter_measures("qnn", "qnn", "int8", "inference")
    assert adapter_measures("cpu", "openvino", "int8", "inference") and adapter_measures("cuda", "torch", "fp16",
                                                                                        "inference")


def test_compare_hardware_cautions_for_rows_no_adapter_runs_and_borrowed_peaks(tmp_path: Path) -> None:
    db = str(tmp_path / "c.duckdb")
    r = CliRunner().invoke(cli, ["compare-hardware", "--model", "bert-base-uncased", "--hardware", "t4,v100-16gb",
                                 "--precision", "bf16", "--predictor", "roofline", "--json", "--db", db])
    assert r.exit_code == 0, r.output
    warnings = {p["config"]["hardware"]: p["warnings"] for p in json.loads(r.stdout)["predictions"]}
    assert any("t4 lists no bf16 peak" in w for w in warnings["t4"])
    assert any("v100-16gb lists no bf16 peak" in w for w in warnings["v100-16gb"])
    r = CliRunner().invoke(cli, ["compare-hardware", "--model", "bert-base-uncased", "--hardware", "cpu,t4",
                                 "--runtime", "openvino", "--predictor", "roofline", "--db", db])
    assert r.exit_code == 0 and "no perfcast adapter runs openvino fp32 inference on t4" in r.output.replace("\n", " ")


def test_optimize_deployment_returns_predicts_cautions_in_the_python_api(tmp_path: Path) -> None:
    from engine.optimize.optimizer import optimize_deployment

    r = optimize_deployment("bert-base-uncased", "throughput", None, {"hardware": ["t4"], "batch_size": [1, 8],
                                                                       "precision": ["fp16", "bf16"]},
                            db=str(tmp_path / "o.duckdb"), predictor=_roofline(tmp_path))
    assert any("no cuda device has been measured" in w for w in r.warnings)
    assert any("t4 lists no bf16 peak" in w for w in r.warnings) == any(
        a.config.precision == "bf16" for a in (r.best, *r.alternatives))
    assert r.to_dict()["warnings"] == r.warnings


def _roofline(tmp_path: Path):
    from engine.models.roofline import RooflinePredictor
    from engine.store import Store

    return RooflinePredictor().fit(Store(tmp_path / "o.duckdb").measurements())


def test_compare_hardware_text_names_devices_without_runs(tmp_path: Path) -> None:
    r = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["compare-hardware", "--model", "gpt2", "--hardware",
                                                       "cpu-amd-epyc-2c,cpu-intel-xeon-amx-2c", "--predictor",
                                                       "roofline", "--db", str(tmp_path / "c.duckdb")])
    assert r.exit_code == 0 and "cpu-intel-xeon-amx-2c has no measurements in the store" in r.output


def test_matrix_carries_predicts_cautions(tmp_path: Path) -> None:
    """Audit: matrix never warned, in any format, even for never-measured CUDA rows."""
    import json

    out = tmp_path / "m.json"
    r = CliRunner().invoke(cli, ["matrix", "--models", "bert-base-uncased", "--hardware", "cpu-amd-epyc-2c,t4",
                                 "--batch-sizes", "1", "--output", str(out), "--db", str(tmp_path / "s.duckdb"),
                                 "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    written = json.loads(out.read_text())
    assert any("no cuda device has been measured" in w for w in summary["warnings"])
    assert written["warnings"] == summary["warnings"]
    text = CliRunner().invoke(cli, ["matrix", "--models", "bert-base-uncased", "--hardware", "t4", "--output",
                                    str(tmp_path / "m.csv"), "--db", str(tmp_path / "s.duckdb")])
    assert "caution: no cuda device has been measured" in " ".join(text.output.split())


def test_the_python_api_answer_carries_the_cautions_the_cli_prints(tmp_path: Path) -> None:
    from engine.predict import PerformancePredictor
    from engine.store import Store

    pp = PerformancePredictor(Store(tmp_path / "s.duckdb"))
    p = pp.predict(model_name="bert-base-uncased", hardware="h100-sxm", batch_size=8)
    assert any("no cuda device has been measured" in w for w in p.warnings)
    assert pp.predict(model_name="bert-base-uncased", hardware="cpu-amd-epyc-2c", batch_size=8).warnings == []


def test_a_model_far_larger_than_any_measured_one_is_cautioned(tmp_path: Path) -> None:
    """Audit: llama-7b (19x gpt2-medium, the largest shipped model) answered x/÷1.4 with no word."""
    from engine.predict import PerformancePredictor

    pp = PerformancePredictor(tmp_path / "s.duckdb", predictor="roofline")
    big = pp.predict("llama-7b", "cpu-amd-epyc-2c", 1, precision="bf16")
    assert any("llama-7b has 6.7B parameters, 19x the largest model with runs here (gpt2-medium, 355M)" in w
               for w in big.warnings)
    for model in ("opt-1.3b", "gpt2-medium", "bert-base-uncased"):  # under 4x, or measured
        assert not any("parameters" in w for w in pp.predict(model, "cpu-amd-epyc-2c").warnings), model


def test_a_gp_too_small_to_calibrate_says_so_on_every_answer(tmp_path: Path) -> None:
    """Audit: a 6-run store answered with uncalibrated intervals (loo_coverage90 None), no word."""
    import pandas as pd

    from engine.predict import PerformancePredictor
    from engine.store import Store
    from engine.store.seed import shipped_dataset_path
    from engine.store.transfer import import_measurements

    df = pd.read_parquet(shipped_dataset_path())
    df[df.status == "ok"].sample(6, random_state=1).to_parquet(tmp_path / "six.parquet")
    store = Store(tmp_path / "six.duckdb", seed=False)
    import_measurements(store, tmp_path / "six.parquet")
    p = PerformancePredictor(store).predict("gpt2", "cpu-amd-epyc-2c", 1)
    assert any("fitted on 6 runs, too few (under 10) to calibrate" in w for w in p.warnings)
    full = PerformancePredictor(tmp_path / "full.duckdb").predict("gpt2", "cpu-amd-epyc-2c", 1)
    assert not any("calibrate" in w for w in full.warnings)


def test_a_gp_without_memory_runs_says_why_memory_is_missing(tmp_path: Path) -> None:
    """Audit: on a store whose runs record no peak memory (a latency-only CSV) the GP has no memory
    output, and predict's table lost its memory row and P(fits) without a word."""
    import pandas as pd

    from engine.predict import PerformancePredictor
    from engine.store import Store
    from engine.store.seed import shipped_dataset_path
    from engine.store.transfer import import_measurements

    df = pd.read_parquet(shipped_dataset_path())
    six = df[df.status == "ok"].sample(6, random_state=1)
    answers = {}
    # other run ids: the fit cache is keyed by run ids and latencies (Store.data_hash), not memory
    bare_runs = six.assign(memory_peak_mib=float("nan"), memory_avg_mib=float("nan"), run_id=six.run_id + "-nomem")
    for name, runs in (("with", six), ("without", bare_runs)):
        runs.to_parquet(tmp_path / f"{name}.parquet")
        store = Store(tmp_path / f"{name}.duckdb", seed=False)
        import_measurements(store, tmp_path / f"{name}.parquet")
        answers[name] = PerformancePredictor(store).predict("gpt2", "cpu-amd-epyc-2c", 1)
    bare = answers["without"]
    assert "memory_mib" not in bare.metrics and bare.prob_fits_memory() is None
    assert any("memory is not predicted" in w and "its 6 runs hold fewer" in w for w in bare.warnings), bare.warnings
    assert "memory_mib" in answers["with"].metrics
    assert not any("memory is not predicted" in w for w in answers["with"].warnings)
    # compare-hardware sorted and plotted by a metric it did not have: a KeyError traceback
    res = CliRunner().invoke(cli, ["compare-hardware", "--model", "gpt2", "--hardware", "cpu-amd-epyc-2c,t4",
                                   "--metric", "memory", "--db", str(tmp_path / "without.duckdb")])
    assert res.exit_code == 2, res.output
    assert "invalid --metric 'memory'; valid: one the gp fit answers here: latency, p90, throughput" in res.output
    assert "Traceback" not in res.output


def test_a_software_path_no_device_of_its_kind_has_run_is_cautioned(tmp_path: Path) -> None:
    """Audit: torch fp16 on a CPU (no such run anywhere in the shipped data) was answered without a
    word; a measured path and a device kind never measured (its own caution) get no such line."""
    from engine.predict import PerformancePredictor

    pp = PerformancePredictor(tmp_path / "s.duckdb", predictor="roofline")
    fp16 = pp.predict("bert-base-uncased", "cpu-amd-epyc-2c", 1, precision="fp16")
    assert any("no cpu run of torch fp16 inference is in the store" in w for w in fp16.warnings)
    for p in (pp.predict("bert-base-uncased", "cpu-amd-epyc-2c", 1),
              pp.predict("bert-base-uncased", "t4", 1, precision="fp16")):
        assert not any("software path has never been measured" in w for w in p.warnings), p.warnings
    r = CliRunner().invoke(cli, ["compare-hardware", "--model", "gpt2", "--hardware", "cpu-amd-epyc-2c",
                                 "--precision", "fp16", "--predictor", "roofline", "--db", str(tmp_path / "s.duckdb"),
                                 "--json"])
    assert r.exit_code == 0 and "no cpu run of torch fp16 inference" in r.stdout


def test_cpu_peaks_measured_on_a_busy_machine_are_cautioned(monkeypatch) -> None:
    """Peaks this machine measured while oversubscribed read low (audit P: every answer 4.6x slow):
    the answers say so, unless a better figure (the catalog's, an earlier measurement) is in use."""
    from dataclasses import replace

    from engine import catalog
    from engine.predict import busy_peak_caution

    base = catalog.catalog_hardware()["cpu-amd-epyc-2c"]
    measured = {"loadavg_1m_before": 6.3, "matmul_gflops": {"fp32": 36.0}}
    busy = replace(base, id="cpu-local-2c", detected=True, peak_tflops={**base.peak_tflops, "fp32": 0.036},
                   details={**base.details, "usable_cores": 2, "measured": measured,
                            "spec_estimate_tflops": {"fp32": 0.27}})
    monkeypatch.setattr(catalog, "resolve_hardware", lambda hid, store=None: busy)
    why = busy_peak_caution("cpu-local-2c")
    assert why and "load 6.3 on 2 cores" in why and "hardware detect --refresh" in why
    lifted = replace(busy, peak_tflops={**busy.peak_tflops, "fp32": 0.4})  # a better figure is in use
    monkeypatch.setattr(catalog, "resolve_hardware", lambda hid, store=None: lifted)
    assert busy_peak_caution("cpu-local-2c") is None
    idle = replace(busy, details={**busy.details, "measured": {**measured, "loadavg_1m_before": 1.5}})
    monkeypatch.setattr(catalog, "resolve_hardware", lambda hid, store=None: idle)
    assert busy_peak_caution("cpu-local-2c") is None  # not oversubscribed
    near = replace(busy, peak_tflops={**busy.peak_tflops, "fp32": 0.2},
                   details={**busy.details, "measured": {**measured, "matmul_gflops": {"fp32": 200.0}}})
    monkeypatch.setattr(catalog, "resolve_hardware", lambda hid, store=None: near)
    assert busy_peak_caution("cpu-local-2c") is None  # busy, but within 2x of the spec estimate


def test_a_device_without_an_fp32_peak_is_cautioned_for_fp32() -> None:
    """A Snapdragon NPU lists no fp32 peak: fp32 is priced at the first peak it lists, and says so."""
    from engine.config import Config
    from engine.predict import borrowed_peak_caution

    why = borrowed_peak_caution(Config("bert-base-uncased", "snapdragon-8g3-npu", precision="fp32",
                                       runtime="qnn"))
    assert why and "lists no fp32 peak" in why


def test_int8_on_a_model_torch_barely_quantizes_is_cautioned(tmp_path: Path) -> None:
    """torch's dynamic quantization rewrites only nn.Linear: an int8 resnet50 runs 0.1% of its
    FLOPs in int8. Only torch is cautioned (ONNX Runtime's quantizer rewrites Conv as well), and
    only below half the FLOPs (whisper-tiny, 65%, and gpt2, 98%, are not)."""
    from engine.predict import int8_share_caution

    w = int8_share_caution(Config("resnet50", "cpu-amd-epyc-2c", precision="int8"))
    assert w == ("int8 on resnet50 runs 0.1% of its FLOPs in int8 (torch's dynamic quantization rewrites only "
                 "Linear layers); the rest runs in fp32")
    for cfg in (Config("resnet50", "cpu-amd-epyc-2c", precision="int8", runtime="onnxruntime"),
                Config("resnet50", "cpu-amd-epyc-2c", precision="int8", runtime="openvino"),
                Config("resnet50", "cpu-amd-epyc-2c", precision="fp32"),
                Config("whisper-tiny", "cpu-amd-epyc-2c", precision="int8"),
                Config("gpt2", "cpu-amd-epyc-2c", precision="int8")):
        assert int8_share_caution(cfg) is None, cfg
    # predict --json carries it in its warnings, once; the table prints it with the other cautions
    argv = ["predict", "--model", "resnet50", "--hardware", "cpu-amd-epyc-2c", "--precision", "int8",
            "--predictor", "roofline", "--db", str(tmp_path / "s.duckdb")]
    r = CliRunner().invoke(cli, [*argv, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["warnings"].count(w) == 1
    r = CliRunner().invoke(cli, argv)
    assert r.exit_code == 0 and "caution: int8 on resnet50 runs 0.1% of its FLOPs in int8" in " ".join(r.output.split())
    r = CliRunner().invoke(cli, ["predict", "--model", "gpt2", *argv[3:], "--json"])
    assert r.exit_code == 0 and not any("int8 on" in x for x in json.loads(r.stdout)["warnings"])


def test_the_int8_caution_never_fails_an_answer(monkeypatch) -> None:
    import engine.descriptors
    from engine.predict import int8_share_caution

    def broken(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("no counts here")

    monkeypatch.setattr(engine.descriptors, "describe", broken)
    assert int8_share_caution(Config("resnet50", "cpu-amd-epyc-2c", precision="int8")) is None


def test_the_unmeasured_kind_caution_quotes_the_readme_figures() -> None:
    """Audit: the caution said one GPU run cut the error "from 17% to 10%" after the README's
    bench/cross_hardware.py figures had been re-measured at 16.7% to 8.4%."""
    import re

    from engine.predict import PerformancePredictor, ResolvedHardware

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    before, after = re.search(r"one run cut the median error on a left-out GPU from ([\d.]+%) to ([\d.]+%)",
                              readme).groups()
    pp = PerformancePredictor()
    text = pp.extrapolation_warning(ResolvedHardware("t4", "t4", "NVIDIA T4", "cuda"))
    assert f"from {before} to {after} on public data" in text, text


def test_a_path_no_adapter_runs_is_not_sent_to_a_benchmark(tmp_path: Path) -> None:
    """Audit: qnn on a CPU was cautioned "no perfcast adapter runs qnn ..." and, in the next line,
    "A run of it (perfcast benchmark ... --save) checks it"."""
    from engine.predict import PerformancePredictor, ResolvedHardware

    pp = PerformancePredictor(tmp_path / "s.duckdb", predictor="roofline")
    cpu = ResolvedHardware("cpu-amd-epyc-2c", "cpu-amd-epyc-2c", "EPYC", "cpu")
    qnn = pp.new_path_caution(Config("gpt2", "cpu-amd-epyc-2c", runtime="qnn"), cpu)
    assert qnn is not None and "never been measured" in qnn and "perfcast benchmark" not in qnn
    fp16 = pp.new_path_caution(Config("gpt2", "cpu-amd-epyc-2c", precision="fp16"), cpu)  # runnable: the run helps
    assert fp16 is not None and "perfcast benchmark ... --precision fp16 --save" in fp16
