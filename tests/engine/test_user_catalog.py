"""Own architectures and devices (PERFCAST_MODELS / PERFCAST_HARDWARE) join the shipped catalogs."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from engine import catalog
from engine.errors import InvalidValueError, UnknownNameError

MODELS = """models:
  my-bert-6l:
    family: text_embedding
    hf_config: BertConfig
    hf_model: BertModel
    arch: {vocab_size: 30522, hidden_size: 512, num_hidden_layers: 6, num_attention_heads: 8,
           intermediate_size: 2048, max_position_embeddings: 512}
"""
HARDWARE = """hardware:
  l40s:
    name: NVIDIA L40S
    kind: cuda
    peak_tflops: {fp32: 91.6, bf16: 362}
    memory_bandwidth_gbs: 864
    memory_gib: 48
"""


@pytest.fixture(autouse=True)
def _fresh_catalogs() -> Iterator[None]:
    """The catalogs are cached per process: read them again under each test's environment."""
    catalog.refresh_catalogs()
    yield
    catalog.refresh_catalogs()


def _own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: str = MODELS, hardware: str = HARDWARE) -> Path:
    (tmp_path / "models.yaml").write_text(models)
    (tmp_path / "hardware.yaml").write_text(hardware)
    monkeypatch.setenv("PERFCAST_MODELS", str(tmp_path / "models.yaml"))
    monkeypatch.setenv("PERFCAST_HARDWARE", str(tmp_path / "hardware.yaml"))
    return tmp_path


def test_own_entries_join_the_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = set(catalog.models())
    _own(tmp_path, monkeypatch)
    catalog.refresh_catalogs()
    m = catalog.get_model("my-bert-6l")
    assert m.origin == str(tmp_path / "models.yaml") and m.arch["num_hidden_layers"] == 6
    assert set(catalog.models()) == shipped | {"my-bert-6l"}
    assert catalog.get_model("gpt2").origin == "shipped"
    hw = catalog.resolve_hardware("l40s")
    assert hw.kind == "cuda" and hw.peak_flops("bf16") == 362e12 and hw.peak_tflops["int8"] is None
    assert hw.name == "NVIDIA L40S" and hw.origin.endswith("hardware.yaml")


def test_a_user_model_is_counted_and_predicted_on_a_user_device(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cli.main import cli
    from engine.config import Config
    from engine.descriptors import describe

    _own(tmp_path, monkeypatch)
    small = describe(Config("my-bert-6l", "descriptor", 1, 128))
    base = describe(Config("bert-base-uncased", "descriptor", 1, 128))
    # 6 layers of width 512 against 12 of width 768: fewer parameters and FLOPs, counted, not typed in
    assert 25e6 < small.params < 45e6 and small.flops < base.flops / 3
    res = CliRunner().invoke(cli, ["predict", "--model", "my-bert-6l", "--hardware", "l40s", "--batch-size", "8",
                                   "--predictor", "roofline", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rec = out["predictions"][0] if "predictions" in out else out
    assert rec["metrics"]["latency_ms"]["median"] > 0


@pytest.mark.parametrize("models,hardware,needle", [
    (MODELS.replace("family: text_embedding", "family: text"), HARDWARE,
     "invalid family 'text' of model 'my-bert-6l'"),
    (MODELS.replace("family:", "famly:"), HARDWARE, "invalid key 'famly'"),
    (MODELS.replace("my-bert-6l", "gpt2"), HARDWARE, "invalid model name 'gpt2'"),
    (MODELS.replace("    hf_model: BertModel\n", ""), HARDWARE, "(missing: hf_model)"),
    (MODELS.replace("hf_config: BertConfig", "hf_config: Bert Config"), HARDWARE, "invalid hf_config 'Bert Config'"),
    ("models: [1, 2\n", HARDWARE, "(line 2"),
    ("model:\n  x: {}\n", HARDWARE, "top-level 'models:' mapping"),
    (MODELS, HARDWARE.replace("kind: cuda", "kind: gpu"), "invalid kind 'gpu' of hardware 'l40s'"),
    (MODELS, HARDWARE.replace("memory_bandwidth_gbs: 864", "memory_bandwidth_gbs: 0"),
     "invalid memory_bandwidth_gbs 0"),
    (MODELS, HARDWARE.replace("peak_tflops: {fp32: 91.6, bf16: 362}", "peak_tflops: {tf32: 183}"),
     "invalid peak_tflops"),
    (MODELS, HARDWARE.replace("bf16: 362", "bf16: -362"), "invalid peak_tflops"),  # predictions were nan
    # a negative price ranked the device cheapest; text was a traceback in recommend-hardware
    (MODELS + "    published_params: lots\n", HARDWARE, "invalid published_params 'lots'"),  # a traceback
    (MODELS + "    max_seq_len: -3\n", HARDWARE, "invalid max_seq_len -3"),  # was "invalid seq_len -3"
    (MODELS, HARDWARE + "    price_per_hour_usd: -1.5\n", "invalid price_per_hour_usd -1.5"),
    (MODELS, HARDWARE + "    price_per_hour_usd: cheap\n", "invalid price_per_hour_usd 'cheap'"),
    (MODELS, HARDWARE + "    tdp_w: 0\n", "invalid tdp_w 0"),
    (MODELS, HARDWARE.replace("name: NVIDIA L40S", "name: [NVIDIA, L40S]"), "invalid name ['NVIDIA', 'L40S']"),
    # names other commands would misread: a Rich closing tag (`models list` and `predict` died on a
    # MarkupError traceback), a comma (split out of --models lists), a bar (out of configuration keys),
    # and a platform name (`--hardware cpu` means the platform, so that device could never be asked for)
    (MODELS.replace("my-bert-6l:", "'my-bert[/x]':"), HARDWARE, "invalid model name 'my-bert[/x]'"),
    (MODELS.replace("my-bert-6l:", "'my,bert':"), HARDWARE, "invalid model name 'my,bert'"),
    (MODELS, HARDWARE.replace("l40s:", "'l40s|a':"), "invalid hardware id 'l40s|a'"),
    (MODELS, HARDWARE.replace("l40s:", "cpu:"), "invalid hardware id 'cpu'"),
])
def test_a_bad_user_catalog_is_one_line_naming_the_value_and_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: str, hardware: str, needle: str) -> None:
    _own(tmp_path, monkeypatch, models, hardware)
    with pytest.raises(InvalidValueError) as e:
        catalog.models()
        catalog.catalog_hardware()
    msg = str(e.value)
    assert needle in msg and "\n" not in msg and "valid:" in msg, msg
    assert "models.yaml" in msg or "hardware.yaml" in msg, msg


def test_a_missing_file_and_an_unknown_class_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.workloads import build_model

    monkeypatch.setenv("PERFCAST_MODELS", str(tmp_path / "nope.yaml"))
    with pytest.raises(InvalidValueError, match="invalid PERFCAST_MODELS file .*nope.yaml"):
        catalog.models()
    _own(tmp_path, monkeypatch, MODELS.replace("hf_model: BertModel", "hf_model: BertModell"))
    catalog.refresh_catalogs()
    with pytest.raises(InvalidValueError, match="invalid hf_model 'BertModell' of model 'my-bert-6l'"):
        build_model("my-bert-6l", device="meta")


def test_an_unknown_name_hints_at_own_models_only_without_a_close_match() -> None:
    with pytest.raises(UnknownNameError) as e:
        catalog.get_model("our-ranker-v3")
    assert "PERFCAST_MODELS" in str(e.value)
    with pytest.raises(UnknownNameError) as e:
        catalog.get_model("bert-base-uncase")
    assert "did you mean 'bert-base-uncased'" in str(e.value) and "PERFCAST_MODELS" not in str(e.value)


def test_runs_of_a_model_no_longer_defined_are_left_out_of_fits_not_fatal(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from engine.models.cache import model_dir
    from engine.models.targets import targets_from_measurements
    from experiments.replay import load_dataset

    data = load_dataset()
    data = data[data.status == "ok"].head(20)
    gone = data.head(1).assign(model="my-bert-6l", config_key="my-bert-6l|x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tg = targets_from_measurements(pd.concat([data, gone], ignore_index=True), catalog_models_only=True)
    assert len(tg) == 20 and "my-bert-6l" not in set(tg.frame["model"])
    assert any("PERFCAST_MODELS" in str(w.message) and "my-bert-6l" in str(w.message) for w in caught)
    # the product's predictors (catalog featuriser) do this in their fit; a predictor on the
    # synthetic world (its own model names) does not
    from engine.models.roofline import RooflinePredictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert RooflinePredictor().fit(pd.concat([data, gone], ignore_index=True)).n_train == 20
    # with the file set, the run counts, and the fit is cached apart from the one without it
    without = model_dir("gp", "h", {})
    _own(tmp_path, monkeypatch)
    catalog.refresh_catalogs()
    assert len(targets_from_measurements(pd.concat([data, gone], ignore_index=True), catalog_models_only=True)) == 21
    assert model_dir("gp", "h", {}) != without


def test_a_misspelt_arch_key_is_named_not_silently_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transformers config keeps any keyword as an attribute, so ``hidden_sizee`` built a model of
    the default width (57.5M parameters instead of 35.1M) without a word."""
    from engine.workloads import build_model

    _own(tmp_path, monkeypatch, MODELS.replace("hidden_size: 512", "hidden_sizee: 512"))
    with pytest.raises(InvalidValueError, match="invalid arch key 'hidden_sizee' of model 'my-bert-6l'.*"
                                                "did you mean 'hidden_size'"):
        build_model("my-bert-6l", device="meta")


def test_a_device_name_with_brackets_prints_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A display name is free text ("NVIDIA L40S [/rack3]"): predict and hardware list --sources
    print it as written instead of a Rich MarkupError traceback."""
    from engine.cli.main import cli

    _own(tmp_path, monkeypatch, hardware=HARDWARE.replace("name: NVIDIA L40S", "name: 'NVIDIA L40S [/rack3]'"))
    res = CliRunner().invoke(cli, ["predict", "--model", "gpt2", "--hardware", "l40s", "--predictor", "roofline"])
    assert res.exit_code == 0, res.output
    assert "l40s (NVIDIA L40S [/rack3])" in res.stdout
    res = CliRunner().invoke(cli, ["hardware", "list", "--sources", "--no-detect", "--kind", "cuda"])
    assert res.exit_code == 0, res.output
    assert "NVIDIA L40S [/rack3]" in res.stdout


@pytest.mark.parametrize("models, needle", [
    (MODELS.replace("num_attention_heads: 8", "num_attention_heads: 7"),
     "invalid architecture 'BertModel(BertConfig)' of model 'my-bert-6l'"),  # 512 is no multiple of 7
    (MODELS.replace("hf_model: BertModel", "hf_model: GPT2Model"),
     "invalid architecture 'GPT2Model(BertConfig)' of model 'my-bert-6l'"),  # a class of another config
    (MODELS.replace("family: text_embedding", "family: vision"),  # built, but given pixels: its forward fails
     "one whose forward takes the inputs of a vision model"),
])
def test_an_arch_transformers_cannot_build_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        models: str, needle: str) -> None:
    """Audit: `models list` and `predict` printed a transformers traceback for a user entry whose
    config was accepted but whose model could not be built."""
    from engine.cli.main import cli

    _own(tmp_path, monkeypatch, models)
    for argv in (["models", "list"], ["predict", "--model", "my-bert-6l", "--hardware", "t4", "--predictor",
                                      "roofline"]):
        res = CliRunner().invoke(cli, argv)
        assert res.exit_code == 2, res.output
        assert needle in res.output and "models.yaml" in res.output and "Traceback" not in res.output, res.output
