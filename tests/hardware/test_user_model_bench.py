"""A user model (PERFCAST_MODELS) benchmarks in the isolated child, also on a machine whose
benchmark forkserver started before the user's catalog was known (a Ray worker's situation)."""
from engine.catalog import get_model, models, user_catalog_env
from engine.config import Config
from hardware.base import BenchmarkSpec
from hardware.detect import local_cpu_id
from hardware.isolation import run_isolated

TINY = """models:
  tiny-bert-test:
    family: text_embedding
    hf_config: BertConfig
    hf_model: BertModel
    arch: {vocab_size: 1000, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2,
           intermediate_size: 64, max_position_embeddings: 64}
"""


def _spec(model: str) -> BenchmarkSpec:
    return BenchmarkSpec(Config(model, local_cpu_id(), 1, 8, threads=1), iterations=2, warmup=1, min_time_s=0.0,
                         max_time_s=5.0, time_limit_s=120.0)


def test_a_user_model_benchmarks_in_a_child_of_an_older_forkserver() -> None:
    # the forkserver (and the catalog it cached) exists before the user's catalog does
    assert run_isolated("torch-cpu", _spec("distilbert-base-uncased")).ok
    with user_catalog_env({"PERFCAST_MODELS": TINY}):
        assert get_model("tiny-bert-test").arch["hidden_size"] == 32
        m = run_isolated("torch-cpu", _spec("tiny-bert-test"))
    assert m.ok, m.error
    assert m.latency.median_ms > 0
    assert "tiny-bert-test" not in models()  # the block leaves the catalogs as they were
