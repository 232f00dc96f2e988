from __future__ import annotations

from engine.models.cache import load_or_fit, model_dir
from engine.records import Measurement
from engine.store import Store
from engine.models.features import configs_from_frame


def _save(store, df):
    for c, row in zip(configs_from_frame(df), df.itertuples()):
        store.save_measurement(Measurement.from_samples(c, row.samples_ms, memory_peak_mib=row.memory_peak_mib))


def test_fitted_model_reused_until_data_change(tmp_path, featurizer, train_df, new_hw_df):
    store = Store(tmp_path / "db.duckdb", seed=False)
    _save(store, train_df.iloc[:40])
    first = load_or_fit("roofline", store, featurizer=featurizer)
    assert model_dir("roofline", store.data_hash()).exists()
    again = load_or_fit("roofline", store, featurizer=featurizer)
    assert again.params == first.params  # loaded, not refitted
    _save(store, new_hw_df.iloc[:10])
    third = load_or_fit("roofline", store, featurizer=featurizer)
    assert third.n_train == 50


def test_keeping_a_failed_fit_is_no_part_of_the_cache_key():
    """Audit H: a fit kept with ``train --allow-bad-diagnostics`` was cached under that option, so
    compare-hardware, matrix and suggest (no such flag) fitted again and failed; suggest also refitted
    what train had cached, whose key held allow_bad_diagnostics=False."""
    from engine.models.cache import model_dir

    base = model_dir("hierarchical", "abc", {})
    assert model_dir("hierarchical", "abc", {"allow_bad_diagnostics": True}) == base
    assert model_dir("hierarchical", "abc", {"allow_bad_diagnostics": False}) == base
    assert model_dir("hierarchical", "abc", {"num_samples": 100}) != base  # an option that changes the fit
