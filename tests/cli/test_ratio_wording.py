"""The replay summary says 'more' when a strategy needs more than random, never '0.75× fewer'."""
from engine.cli.run_cmd import _times


def test_ratio_wording() -> None:
    assert _times(1.27, "benchmarks") == "1.27× fewer benchmarks"
    assert _times(1.0, "benchmarks") == "as many benchmarks"
    assert _times(0.75, "benchmark-seconds") == "1.33× more benchmark-seconds"
