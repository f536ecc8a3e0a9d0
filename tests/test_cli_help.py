"""The CLI teaches itself: examples in every --help, shell completion, typos answered with the
nearest option or command."""

from __future__ import annotations

import pytest
from conftest import cli
from typer.main import get_command
from typer.testing import CliRunner

from charrnn.cli import app

COMMANDS = sorted(get_command(app).commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_commands_help_shows_an_example(command):
    result = cli(command, "--help")
    assert result.exit_code == 0
    text = result.stdout
    assert "Example" in text
    examples = text.split("Example", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert examples and all(
        line.strip().startswith(("charrnn " + command, "echo")) for line in examples
    )
    assert any(f"charrnn {command}" in line for line in examples)


def test_the_top_help_lists_every_command_and_completion():
    text = cli("--help").stdout
    for command in ("train", "sample", "score", "info", "plot", "runs"):
        assert f"  {command} " in text
    assert "--install-completion" in text and "--show-completion" in text


def complete(words: str) -> list[str]:
    """What bash completion offers after `words` (the last one being typed)."""
    env = {
        "_CHARRNN_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    result = CliRunner().invoke(app, [], env=env, prog_name="charrnn")
    assert result.exit_code == 0, result.output
    return result.stdout.split()


def test_completion_offers_commands_and_options():
    assert complete("charrnn sa") == ["sample"]
    assert set(complete("charrnn p")) == {"plot"}
    assert complete("charrnn sample --len") == ["--length"]
    assert "--tensorboard" in complete("charrnn train --t")
    assert set(complete("charrnn plot --against ")) == {"both", "step", "time"}


def test_show_completion_prints_a_script_for_the_shell():
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="charrnn")
    assert result.exit_code == 0
    assert "_CHARRNN_COMPLETE=complete_bash" in result.stdout


def test_a_mistyped_option_suggests_the_nearest_in_one_line(lstm_checkpoint):
    result = cli("sample", "-c", lstm_checkpoint, "--lenght", "20")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: No such option: --lenght")
    assert "--length" in line and "charrnn sample -h for help" in line


def test_a_mistyped_command_suggests_the_nearest_in_one_line():
    result = cli("sampel")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "No such command 'sampel'" in line and "Did you mean 'sample'?" in line
