"""The replay summary says 'more' when a strategy needs more than random, never '0.75× fewer', and names
a resample that never reached the target instead of printing 0."""
from engine.cli.run_cmd import _times


def test_ratio_wording() -> None:
    assert _times(1.27, "benchmarks") == "1.27× fewer benchmarks"
    assert _times(1.0, "benchmarks") == "as many benchmarks"
    assert _times(0.75, "benchmark-seconds") == "1.33× more benchmark-seconds"


def test_a_resample_that_never_reached_the_target_is_named_not_zero() -> None:
    """Audit: "90% interval over seeds 0.00–1.00": 0 is a resample that never reached random's error."""
    from engine.cli.run_cmd import _ratio_end

    assert _ratio_end(0.0) == "never reached" and _ratio_end(1.5) == "1.50"
