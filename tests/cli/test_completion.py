"""Tab completion of model and hardware names (click's shell completion, bash/zsh/fish)."""
from click.shell_completion import ShellComplete

from engine.cli.main import cli


def _complete(args: list[str], incomplete: str) -> list[str]:
    return [c.value for c in ShellComplete(cli, {}, "perfcast", "_PERFCAST_COMPLETE").get_completions(args, incomplete)]


def test_model_and_hardware_names_complete_also_inside_a_comma_list() -> None:
    assert _complete(["predict", "--model"], "bert-b") == ["bert-base-uncased"]
    assert _complete(["benchmark", "--model"], "dist") == ["distilbert-base-uncased"]
    assert set(_complete(["compare-hardware", "--hardware"], "cpu,h1")) >= {"cpu,h100-sxm", "cpu,h100-pcie"}
    assert _complete(["models", "show"], "whis") == ["whisper-tiny"]
    assert _complete(["predict", "--hardware"], "cu") == ["cuda"]
