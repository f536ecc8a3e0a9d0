"""The README tells the truth: its options exist, every option is documented, its primes fit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command

from charrnn.cli import app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
CORPUS = REPO / "corpora" / "shakespeare.txt"


def command_options(name: str) -> set[str]:
    command = get_command(app).commands[name]
    return {opt for param in command.params for opt in param.opts if opt.startswith("--")}


@pytest.mark.parametrize("command", ["train", "sample", "score", "serve", "plot", "runs"])
def test_every_option_is_in_the_readme(command):
    missing = [opt for opt in command_options(command) - {"--help"} if f"`{opt}" not in README]
    assert not missing, f"charrnn {command} options missing from README.md: {missing}"


def torchrun_options() -> set[str]:
    from torch.distributed.run import get_args_parser

    return {opt for action in get_args_parser()._actions for opt in action.option_strings}


def test_every_option_the_readme_names_exists():
    known = set().union(*(command_options(c) for c in get_command(app).commands))
    known |= {opt for param in get_command(app).params for opt in param.opts}  # --version, ...
    known |= {"--help", "--index-url", "--logdir"}  # pip's, in the install note; tensorboard's
    known |= {"--lenght"}  # the typo that "Help, completion and errors" shows being answered
    ours = [line for line in README.splitlines() if "benchmarks/" not in line]
    pattern = r"(?<![\w-])(--[a-z][a-z0-9-]+)"
    named = set(re.findall(pattern, "\n".join(line for line in ours if "torchrun" not in line)))
    assert named <= known, f"README.md names options charrnn does not have: {named - known}"
    # A line about torchrun may also name torchrun's own options (checked against torchrun's).
    launched = set(re.findall(pattern, "\n".join(line for line in ours if "torchrun" in line)))
    unknown = launched - known - torchrun_options()
    assert not unknown, f"README.md names options neither charrnn nor torchrun has: {unknown}"


def test_readme_primes_are_speaker_lines_of_the_shipped_corpus():
    # The corpus writes a speaker as a line "NAME." (Gutenberg style), not "NAME:".
    corpus = CORPUS.read_text(encoding="utf-8")
    primes = re.findall(r"(?:--prime|-p) \$'([^']*)'", README)
    primes += re.findall(r'prime="([^"]*)"', README)
    assert primes
    for prime in primes:
        prime = prime.replace("\\n", "\n")
        assert "\n" + prime in corpus, prime


@pytest.mark.slow
def test_the_quick_start_sample_is_what_the_shipped_model_draws():
    """The first screen's sample is regenerated with each shipped model: `charrnn sample` with
    the command and seed the README gives prints exactly that text."""
    from conftest import cli

    found = re.search(r"`charrnn sample --seed (\d+) -n (\d+)` with the shipped model.*?```\n(.*?)```", README, re.S)  # fmt: skip
    assert found, "the Quick start sample is missing"
    seed, length, shown = found.groups()
    result = cli("sample", "--seed", seed, "-n", length)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip("\n") == shown.strip("\n")
