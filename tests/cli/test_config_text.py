"""The one-phrase configuration text that narrow tables (suggest, optimize) print."""
import engine.cli.common as common
from engine.cli.common import config_text
from engine.config import Config


def test_config_text_from_config_and_from_json_item_agree(monkeypatch) -> None:
    monkeypatch.setattr(common, "_local_cpu", lambda: "cpu-amd-epyc-2c")
    c = Config(model="gpt2", hardware="cpu-amd-epyc-2c", batch_size=8, seq_len=128, precision="int8",
               runtime="onnxruntime", threads=2)
    item = {"model_name": "gpt2", "hardware": c.hardware, "batch_size": 8, "seq_len": 128, "precision": "int8",
            "mode": "inference", "runtime": "onnxruntime", "threads": 2}
    assert config_text(c) == "cpu onnxruntime int8 b8 s128 t2"
    assert config_text(item) == config_text(c)
    # another CPU keeps its id: optimize over several CPUs printed "cpu" for each
    assert config_text(Config("gpt2", "cpu-intel-xeon-amx-2c", runtime="onnxruntime")).startswith("cpu-intel-xeon")


def test_config_text_names_training_and_leaves_out_defaults() -> None:
    c = Config(model="resnet50", hardware="t4", batch_size=32, seq_len=0, precision="fp16", mode="training",
               runtime="torch", threads=0)
    assert config_text(c) == "t4 torch fp16 b32 training"
