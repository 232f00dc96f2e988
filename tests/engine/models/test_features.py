from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.config import Config
from engine.models.features import FEATURE_NAMES, configs_from_frame


def test_feature_matrix_shape_and_physics(featurizer, train_df):
    ff = featurizer(train_df)
    assert ff.X.shape == (len(train_df), len(FEATURE_NAMES))
    assert np.isfinite(ff.X).all()
    # roofline times are FLOPs / peak and bytes / bandwidth, in ms
    np.testing.assert_allclose(ff.phys["t_compute_ms"], ff.phys["flops"] / ff.phys["peak"] * 1e3)
    # one-hot blocks sum to one
    prec = [i for i, n in enumerate(ff.names) if n.startswith("precision=")]
    assert np.all(ff.X[:, prec].sum(1) == 1)


def test_cpu_peak_scales_with_threads(featurizer):
    one = Config("syn-bert-m", "cpu-syn-16c", 4, 128, "fp32", "inference", "torch", 1)
    ff = featurizer([one, one.with_(threads=8), one.with_(threads=0), one.with_(hardware="gpu-syn-a", threads=0)])
    peak = ff.phys["peak"]
    assert peak[1] == 8 * peak[0] and peak[2] == 16 * peak[0]
    assert ff.phys["threads_used"].tolist()[:3] == [1, 8, 16]


def test_vectorised_equals_rowwise(featurizer, train_df):
    configs = configs_from_frame(train_df)
    whole = featurizer(configs).X
    rows = np.vstack([featurizer([c]).X for c in configs[:20]])
    np.testing.assert_allclose(whole[:20], rows)


def test_factorize_rows_matches_pandas_multiindex() -> None:
    """The fast mixed-radix factorisation gives the same grouping and first-appearance order."""
    import pandas as pd

    from engine.models.features import _factorize_rows

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.choice(["x", "y", "z"], 500), "b": rng.integers(0, 7, 500),
                       "c": rng.choice(["fp32", "int8"], 500)})
    codes, uniq = _factorize_rows(df, ["a", "b", "c"])
    ref_codes, ref_uniq = pd.MultiIndex.from_frame(df).factorize()
    np.testing.assert_array_equal(codes, ref_codes)
    assert list(uniq.itertuples(index=False, name=None)) == list(ref_uniq)


def test_int8_runs_only_linear_flops_at_the_int8_peak() -> None:
    """Dynamic quantization leaves convolutions in fp32: resnet50's int8 pass is no faster on paper,
    a text transformer's is nearly the int8/fp32 peak ratio faster (catalog descriptors, seeded)."""
    from engine.models.features import Featurizer

    hw = "cpu-amd-epyc-2c"
    resnet = Config("resnet50", hw, 4, 0, "fp32", "inference", "torch", 2)
    bert = Config("bert-base-uncased", hw, 4, 64, "fp32", "inference", "torch", 2)
    ff = Featurizer()([resnet, resnet.with_(precision="int8"), bert, bert.with_(precision="int8")])
    t = ff.phys["t_compute_ms"]
    facts = Featurizer().hardware(hw)
    speedup = facts.peak("int8") / facts.peak("fp32")
    assert speedup > 3
    assert t[1] / t[0] > 0.99  # only the 2048x1000 classifier head is a Linear
    assert 1 / speedup < t[3] / t[2] < 1.1 / speedup
    assert ff.phys["linear_flops"][0] < 0.001 * ff.phys["flops"][0]


def test_openvino_int8_runs_its_matmuls_at_the_fp32_peak() -> None:
    """OpenVINO compiles the dynamically quantized graph at the f32 hint, so an openvino/int8 pass
    is priced like openvino/fp32's, while onnxruntime/int8 (the same graph) keeps the int8 peak."""
    from engine.models.features import Featurizer, linear_precision
    from hardware.openvino_adapter import HINTS

    assert HINTS["int8"] == "f32", "the rule below follows the adapter's hint for int8"
    assert linear_precision("openvino", "int8") == "fp32"
    assert linear_precision("onnxruntime", "int8") == "int8"
    assert linear_precision("openvino", "bf16") == "bf16"
    hw = "cpu-amd-epyc-2c"
    ov32 = Config("bert-base-uncased", hw, 4, 64, "fp32", "inference", "openvino", 2)
    rows = [ov32, ov32.with_(precision="int8"), ov32.with_(precision="int8", runtime="onnxruntime")]
    ff = Featurizer()(rows)
    t, peak = ff.phys["t_compute_ms"], ff.phys["peak"]
    assert peak[1] == peak[0] and peak[2] > 3 * peak[0]
    np.testing.assert_allclose(t[1], ff.phys["flops"][1] / peak[0] * 1e3)
    assert t[2] < t[1] / 3


def test_onnxruntime_int8_runs_a_tied_lm_head_at_the_fp32_peak() -> None:
    """ONNX Runtime's int8 graph dequantizes gpt2's tied LM head for an fp32 MatMul: that head is
    priced at the fp32 peak there, and at the int8 peak with torch's dynamic quantization."""
    from engine.models.features import Featurizer, tied_head_precision

    assert tied_head_precision("onnxruntime", "int8") == "fp32"
    assert tied_head_precision("torch", "int8") == "int8"
    assert tied_head_precision("openvino", "int8") == "fp32"
    assert tied_head_precision("onnxruntime", "fp16") == "fp16"
    hw = "cpu-amd-epyc-2c"
    gpt2 = Config("gpt2", hw, 4, 64, "int8", "inference", "torch", 2)
    bert = Config("bert-base-uncased", hw, 4, 64, "int8", "inference", "torch", 2)
    f = Featurizer()
    ff = f([gpt2, gpt2.with_(runtime="onnxruntime"), bert, bert.with_(runtime="onnxruntime")])
    t, tied = ff.phys["t_compute_ms"], ff.phys["tied_head_flops"]
    facts = f.hardware(hw)
    p8, p32 = facts.peak("int8"), facts.peak("fp32")
    assert tied[0] == tied[1] == 2 * 768 * 50257 * 64 * 4 and tied[2] == 0.0
    np.testing.assert_allclose(t[1] - t[0], tied[0] * (1 / p32 - 1 / p8) * 1e3, rtol=1e-9)
    assert t[3] == t[2]  # no tied head: both runtimes price BERT alike


def test_an_injected_world_keeps_its_own_int8_physics(featurizer) -> None:
    """bench/synthetic.py's truth runs int8 at the int8 peak on every runtime: its featuriser must
    price it so (the real OpenVINO rule would put a bias into that world's prior mean)."""
    c = Config("syn-bert-m", "cpu-syn-16c", 4, 128, "int8", "inference", "openvino", 0)
    ff = featurizer([c, c.with_(runtime="torch")])
    assert ff.phys["peak"][0] == ff.phys["peak"][1]


def test_openvino_bf16_runs_as_fp32_on_a_cpu_without_a_bf16_kernel() -> None:
    """OpenVINO runs the bf16 hint in f32 on a CPU without native bf16 (an AVX2 EPYC reported f32 for
    it), so there an openvino/bf16 pass is described and priced as openvino/fp32's, while torch/bf16
    keeps the (slow) bf16 peak; on a CPU with bf16 (the shipped Zen 4) nothing changes."""
    from dataclasses import replace

    from engine.catalog import catalog_hardware
    from engine.models.features import Featurizer, HardwareFacts, executed_precision

    zen4 = catalog_hardware()["cpu-amd-epyc-2c"]
    zen3 = replace(zen4, id="cpu-amd-epyc-avx2-2c",
                   peak_tflops={"fp32": 0.15, "fp16": 0.0007, "bf16": 0.0013, "int8": 0.3})
    entries = {e.id: e for e in (zen4, zen3)}
    f = Featurizer(resolve_hardware=lambda h: entries[h])
    assert executed_precision("openvino", "bf16", f.hardware(zen3.id)) == "fp32"
    assert executed_precision("openvino", "bf16", f.hardware(zen4.id)) == "bf16"
    assert executed_precision("torch", "bf16", f.hardware(zen3.id)) == "bf16"
    assert executed_precision("openvino", "int8", HardwareFacts("x", "cpu", {"fp32": 2.0, "bf16": 1.0}, 1.0, None, 1)) \
        == "int8"
    ov = Config("bert-base-uncased", zen3.id, 4, 64, "fp32", "inference", "openvino", 2)
    rows = [ov, ov.with_(precision="bf16"), ov.with_(precision="bf16", runtime="torch"),
            ov.with_(hardware=zen4.id), ov.with_(hardware=zen4.id, precision="bf16")]
    ff = f(rows)
    t, nbytes = ff.phys["t_compute_ms"], ff.phys["bytes"]
    assert t[1] == t[0] and nbytes[1] == nbytes[0]
    assert t[2] > 50 * t[0]
    assert t[4] < t[3] / 2 and nbytes[4] < nbytes[3]
    # the GP still sees the precision asked for
    col = list(ff.names).index("precision=bf16")
    assert ff.X[1, col] == 1.0 and ff.X[0, col] == 0.0


def test_an_exported_graph_keeps_no_kv_cache_in_its_memory_floor() -> None:
    """The ONNX export runs with ``use_cache=False``: its floor is weights and logits, torch's adds
    the KV cache the forward returns; a world without floors keeps its weights as the floor."""
    from engine.descriptors import describe_many
    from engine.models.features import Featurizer

    torch_run = Config("gpt2", "cpu-amd-epyc-2c", 4, 256, "fp32", "inference", "torch", 2)
    ff = Featurizer()([torch_run, torch_run.with_(runtime="onnxruntime")])
    kv = float(describe_many([torch_run])["kv_cache_bytes"].iat[0])
    assert kv > 0 and ff.phys["floor_bytes"][0] - ff.phys["floor_bytes"][1] == kv
    assert ff.phys["floor_bytes"][1] > ff.phys["weight_bytes"][1]


def test_a_world_without_floors_keeps_the_weights_as_its_floor(featurizer, train_df) -> None:
    from engine.models.assemble import memory_floor_mib

    ff = featurizer(train_df)
    assert np.array_equal(ff.phys["floor_bytes"], ff.phys["weight_bytes"])
    assert np.allclose(memory_floor_mib(ff.phys), ff.phys["weight_bytes"] / 2**20)


def test_every_measured_run_holds_at_least_its_memory_floor() -> None:
    """The floor must be certain: a measured run below it would make the truncated posterior wrong.
    Every run of the shipped dataset and of both bench/data CPUs measured at least 1.19x it (the
    closest: gpt2-medium fp32 at batch 1, whose floor holds its build's untied head)."""
    import pandas as pd

    from engine.models.assemble import memory_floor_mib
    from engine.models.features import Featurizer
    from engine.store.seed import shipped_dataset_path

    root = Path(__file__).resolve().parents[3]
    files = [shipped_dataset_path(), *sorted((root / "bench" / "data").glob("*.parquet"))]
    assert len(files) >= 3 and files[0] is not None
    featurizer = Featurizer()
    for f in files:
        df = pd.read_parquet(f)
        df = df[(df["status"] == "ok") & df["memory_peak_mib"].notna()]
        ratio = df["memory_peak_mib"].to_numpy() / memory_floor_mib(featurizer(df).phys)
        assert len(df) > 100 and ratio.min() > 1.15, f
