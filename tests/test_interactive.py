"""charrnn sample --interactive, driven through a pseudo-terminal: keystrokes in, screen out."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest
from conftest import cli, make_checkpoint

from charrnn.config import SampleConfig
from charrnn.interactive import Session, unescape

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[=>]")
PROMPT = re.compile(r"(^|\n)(\x1b\[[0-9;?]*[a-zA-Z])*> ")


class Terminal:
    """`charrnn sample --interactive` on an 80x24 pseudo-terminal."""

    def __init__(self, *args):
        env = {**os.environ, "TERM": "xterm", "OMP_NUM_THREADS": "1", "COLUMNS": "80"}
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "charrnn", "sample", "--interactive", *map(str, args)],
            cwd=REPO,
            env=env,
            encoding="utf-8",
            dimensions=(24, 80),
            timeout=60,
        )

    def until_prompt(self) -> str:
        """What the screen shows up to the next prompt, without colours, newlines as \\n."""
        self.child.expect(PROMPT)
        return ANSI.sub("", self.child.before).replace("\r\n", "\n")

    def type(self, line: str) -> str:
        """Type a line and Enter; what follows it up to the next prompt."""
        self.child.send(line + "\r")
        return self.until_prompt()

    def quit_with_ctrl_d(self) -> int:
        self.child.sendcontrol("d")
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus


def sampled(checkpoint, *args):
    """What `charrnn sample` writes for the same settings (the reference): prime and text."""
    done = cli("sample", "-c", checkpoint, "-q", *args)
    assert done.exit_code == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_prime_is_continued_as_sample_would_and_commands_change_the_settings(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    term = Terminal("-c", checkpoint, "-n", "40", "--seed", "3")
    banner = term.until_prompt()
    assert "now: temperature 0.8, length 40, top-k off, top-p off, seed 3" in banner
    screen = term.type("To be")
    # The screen: the typed line, then the prime again and its continuation, as sample writes it.
    assert "To be\n" + sampled(checkpoint, "-n", "40", "--seed", "3", "-p", "To be") in screen
    assert "40 chars, seed 3" in screen
    assert "temperature 0.5" in term.type(":t 0.5")
    assert "length 25" in term.type(":n 25")
    assert "top-k 5" in term.type(":k 5")
    assert "top-p 0.9" in term.type(":p 0.9")
    screen = term.type("Or to")
    expected = sampled(checkpoint, "-n", "25", "--seed", "3", "-p", "Or to", "-t", "0.5",
                       "--top-k", "5", "--top-p", "0.9")  # fmt: skip
    assert expected.startswith("Or to") and expected in screen and "25 chars, seed 3" in screen
    assert "error: --temperature must be a positive number" in term.type(":t 0")
    help_screen = term.type(":help")
    assert ":seed 3" in help_screen and "Ctrl-C stops a continuation" in help_screen
    assert "now: temperature 0.5, length 25, top-k 5, top-p 0.9, seed 3" in help_screen
    assert term.quit_with_ctrl_d() == 0


@pytest.mark.slow
def test_ctrl_c_stops_a_continuation_and_returns_to_the_prompt(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    term = Terminal("-c", checkpoint, "-n", "5000000", "--seed", "1")
    term.until_prompt()
    term.child.send("To be\r")
    term.child.expect("To be.{200}", timeout=30)  # it is streaming
    time.sleep(0.2)
    started = time.monotonic()
    term.child.sendintr()
    screen = term.until_prompt()
    assert time.monotonic() - started < 10  # not the 5 million characters
    assert "stopped (seed 1)" in screen
    term.child.sendintr()  # at the prompt: a fresh prompt, still running
    term.until_prompt()
    assert "length 12" in term.type(":n 12")
    screen = term.type("")  # an empty prime: from nothing
    assert "12 chars, seed 1" in screen
    assert term.quit_with_ctrl_d() == 0


@pytest.mark.slow
def test_up_arrow_recalls_the_last_line(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    term = Terminal("-c", checkpoint, "-n", "10", "--seed", "5")
    term.until_prompt()
    term.type(":t 1.5")
    term.type(":t 0.7")
    term.child.send("\x1b[A\x1b[A\r")  # up, up, Enter: the :t 1.5 again
    assert "temperature 1.5" in term.until_prompt()
    assert term.quit_with_ctrl_d() == 0


@pytest.mark.slow
def test_ctrl_d_at_once_exits_cleanly(tmp_path):
    term = Terminal("-c", make_checkpoint(tmp_path / "tiny.pt"))
    term.until_prompt()
    assert term.quit_with_ctrl_d() == 0


@pytest.mark.slow
def test_a_prime_given_with_the_option_is_continued_first(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    term = Terminal("-c", checkpoint, "-n", "15", "--seed", "2", "-p", "Or to")
    screen = term.until_prompt()
    assert sampled(checkpoint, "-n", "15", "--seed", "2", "-p", "Or to") in screen
    assert term.quit_with_ctrl_d() == 0


@pytest.mark.slow
def test_a_prime_the_model_cannot_read_is_an_error_and_the_prompt_stays(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    term = Terminal("-c", checkpoint, "-n", "10")
    term.until_prompt()
    assert "never saw: '#'" in term.type("#hash")
    assert "10 chars" in term.type("To")
    assert term.quit_with_ctrl_d() == 0


def test_interactive_without_a_terminal_is_a_usage_error(tmp_path):
    result = cli("sample", "-c", make_checkpoint(tmp_path / "tiny.pt"), "--interactive")
    assert result.exit_code == 2
    assert "--interactive needs a terminal on stdin" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json"], "--interactive writes for a person; drop --json"),
        (["--num-samples", "2"], "--interactive makes one continuation at a time"),
        (["--beam", "2"], "--beam and --interactive do not go together"),
    ],
)
def test_interactive_refuses_options_it_cannot_honour(tmp_path, args, message):
    result = cli("sample", "-c", make_checkpoint(tmp_path / "tiny.pt"), "-i", *args)
    assert result.exit_code == 2 and message in result.stderr


# -- the session's rules, without a terminal --


def test_commands_are_checked_as_sampling_checks_options():
    session = Session(SampleConfig())
    assert session.handle(":k off").message == "top-k off"
    assert session.handle(":seed random").message == "seed random"
    bad = session.handle(":n lots")
    assert bad.failed and bad.message == ":n takes a whole number, not 'lots'"
    assert session.handle(":p 2").failed
    assert session.handle(":what").failed
    assert session.handle(":q").quit
    assert session.handle("ROMEO.\\n").prime == "ROMEO.\n"


def test_unescape_reads_backslash_n_t_and_backslash():
    assert unescape(r"a\nb\tc\\n\x") == "a\nb\tc\\n\\x"
