"""The first minutes with the CLI: help, version, start-up, no warnings, the peers' habits."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from importlib.metadata import version

import pytest
import typer
from conftest import cli, make_checkpoint, run_charrnn

from charrnn import plan as plan_module
from charrnn import threads
from charrnn.checkpoint import load_checkpoint
from charrnn.config import ModelConfig, SampleConfig, ScoreConfig, TrainConfig, flag
from charrnn.plan import DEMO_MAX_TIME_S, plan_run
from charrnn.resources import default_checkpoint_path

COMMANDS = ["train", "sample", "score", "info", "serve", "plot", "runs"]


def test_help_and_version_do_not_import_torch():
    # torch takes seconds to import; help must not wait for it (nor for the optional extras).
    probe = (
        "import sys\n"
        "from charrnn.cli import app\n"
        f"for args in (['--help'], ['--version'], *([c, '--help'] for c in {COMMANDS!r})):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'numpy', 'matplotlib', 'tensorboard', 'fastapi', 'uvicorn')\n"
        "print(any(name in sys.modules for name in heavy), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "False"


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_dash_h_is_help(command):
    short, long = cli(*command, "-h"), cli(*command, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout and "Usage:" in short.stdout


def test_version_comes_from_the_package_metadata():
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"charrnn {version('charrnn')}\n"


def test_help_lists_the_choices_of_choice_options():
    train_help = cli("train", "--help").stdout
    for choices in ("<lstm|gru|rnn>", "<random|stateful>", "<auto|fp32|bf16>"):
        assert choices in train_help
    assert "<auto|fp32|fp16|bf16|int8>" in cli("sample", "--help").stdout
    assert "<error|skip>" in cli("sample", "--help").stdout


@pytest.mark.slow
def test_commands_print_no_warning(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    for args in (["--help"], ["sample", "-c", checkpoint, "-n", "20", "--seed", "1"]):
        done = run_charrnn(*args)
        assert done.returncode == 0, done.stderr
        assert not re.search(r"(?i)\w*warning:", done.stderr), done.stderr


def test_a_positional_checkpoint_samples_like_dash_c(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    common = ["-n", "40", "--seed", "3", "--device", "cpu", "-q"]
    positional = cli("sample", checkpoint, *common)
    option = cli("sample", "-c", checkpoint, *common)
    assert positional.exit_code == option.exit_code == 0
    assert positional.stdout == option.stdout and len(positional.stdout) >= 40


def test_two_different_checkpoints_are_a_usage_error(tmp_path):
    first, second = make_checkpoint(tmp_path / "a.pt"), make_checkpoint(tmp_path / "b.pt")
    result = cli("sample", first, "-c", second)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: two checkpoints given ({first} and -c {second}); give one"
    ]


def test_an_abort_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    # Typer 0.2x keeps Abort outside its copy of click's exceptions: catching it by the wrong
    # name turned every unexpected exception into an AttributeError traceback.
    from charrnn import cli as cli_module

    def abort(loaded):
        raise typer.Abort()

    monkeypatch.setattr(cli_module, "checkpoint_rows", abort)
    result = cli("info", make_checkpoint(tmp_path / "tiny.pt"))
    assert result.exit_code == 130  # click's Abort is what Ctrl-C at a prompt raises
    assert result.stderr.splitlines() == ["error: interrupted"]


def test_info_without_an_argument_describes_the_shipped_model():
    result = cli("info")
    assert result.exit_code == 0, result.stderr
    shipped = load_checkpoint(default_checkpoint_path())
    assert "shakespeare.pt" in result.stdout
    assert shipped.model_config.describe() in result.stdout


@pytest.mark.parametrize("what", ["run_dir", "checkpoint"])
def test_score_given_a_checkpoint_as_its_text_says_to_use_dash_c(tmp_path, what):
    run = tmp_path / "run"
    checkpoint = make_checkpoint(run / "best.pt")
    target = run if what == "run_dir" else checkpoint
    result = cli("score", target)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert f"charrnn score TEXT_FILE -c {target}" in line


def test_no_corpus_is_a_short_announced_demo_run(monkeypatch):
    monkeypatch.setattr(plan_module, "choose_threads", lambda *a: threads.ThreadChoice(1, "1"))
    plan = plan_run(None, train_options={"device": "cpu"})
    assert plan.train_config.max_time == DEMO_MAX_TIME_S
    assert plan.corpus.name == "shakespeare"
    (note,) = plan.notes
    assert "2-minute demo run on the shipped Shakespeare text" in note
    assert "--max-time" in note


def test_no_corpus_keeps_a_limit_the_user_gave(monkeypatch):
    monkeypatch.setattr(plan_module, "choose_threads", lambda *a: threads.ThreadChoice(1, "1"))
    plan = plan_run(None, train_options={"device": "cpu", "max_steps": 30})
    assert plan.train_config.max_time is None and plan.train_config.max_steps == 30
    assert "30-step demo run" in plan.notes[0]


def test_the_cli_and_the_api_plan_the_same_run(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setattr(plan_module, "choose_threads", lambda *a: threads.ThreadChoice(1, "1"))
    out = tmp_path / "run"
    result = cli("train", tiny_corpus, "--out", out, "--device", "cpu", "--max-steps", "1", "-q")
    assert result.exit_code == 0, result.output
    planned = plan_run([tiny_corpus], train_options={"device": "cpu", "max_steps": 1})
    trained = load_checkpoint(out / "last.pt")
    assert trained.model_config == planned.model_config
    assert trained.train_config == planned.train_config


# -- threads --------------------------------------------------------------------------------


def fake_cpu_times(monkeypatch, *probes: list[float]) -> None:
    """/proc/stat readings 100 jiffies apart, each core idle for the given share in each probe
    (the last probe's shares repeat)."""

    def readings():
        idle = [0] * len(probes[0])
        total = 0
        for shares in (*probes, *([probes[-1]] * 100)):
            yield [(i, total) for i in idle]
            total += 100
            idle = [i + int(100 * share) for i, share in zip(idle, shares, strict=True)]
            yield [(i, total) for i in idle]

    stream = readings()
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(stream))
    monkeypatch.setattr(threads, "usable_cores", lambda: len(probes[0]))


def test_a_busy_core_gets_no_thread(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    fake_cpu_times(monkeypatch, [0.98, 0.02])  # busy in every probe
    choice = threads.choose_threads(None, default=2, probe_seconds=0)
    assert choice.count == 1
    assert "1 of 2 cores busy" in choice.reason and "--threads" in choice.reason


def test_a_core_busy_in_one_probe_only_is_free(monkeypatch):
    """A blip (a shell starting beside the run) must not halve a long run's threads."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    fake_cpu_times(monkeypatch, [0.98, 0.02], [0.95, 0.97])
    assert threads.choose_threads(None, default=2, probe_seconds=0).count == 2
    fake_cpu_times(monkeypatch, [0.0, 0.1], [0.0, 0.1], [0.99, 0.02])  # free in the last only
    assert threads.free_cores(probe_seconds=0) == 1.0
    fake_cpu_times(monkeypatch, [0.0, 0.1], [0.0, 0.1], [0.0, 0.1], [0.99, 0.99])  # three probes
    assert threads.free_cores(probe_seconds=0) == 0.0


def test_free_cores_get_all_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    fake_cpu_times(monkeypatch, [0.97, 0.99])
    assert threads.choose_threads(None, default=2, probe_seconds=0).count == 2


def test_threads_option_and_omp_num_threads_win(monkeypatch):
    fake_cpu_times(monkeypatch, [0.0, 0.0])
    assert threads.choose_threads(3, default=2, probe_seconds=0).count == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    choice = threads.choose_threads(None, default=2, probe_seconds=0)
    assert choice.count == 2 and "OMP_NUM_THREADS" in choice.reason


@pytest.mark.slow
def test_train_says_how_many_threads_and_why(tmp_path, tiny_corpus):
    done = run_charrnn(
        "train", tiny_corpus, "--out", tmp_path / "run", "--device", "cpu", "--max-steps", "2",
        "--hidden", "8", "--layers", "1", "--threads", "1", env={"OMP_NUM_THREADS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cpu threads: 1 thread (--threads)" in done.stderr


def test_real_probe_counts_at_most_the_usable_cores():
    free = threads.free_cores(probe_seconds=0.05)
    assert free is not None and 0 <= free <= threads.usable_cores() + 0.5


# Config fields that are not options: the vocabulary comes from the corpus, the LR floor is fixed.
NOT_OPTIONS = {"vocab_size", "min_lr_ratio", "chunk_len", "warmup"}


@pytest.mark.parametrize(
    ("command", "configs"),
    [("train", (ModelConfig, TrainConfig)), ("sample", (SampleConfig,)), ("score", (ScoreConfig,))],
)
def test_each_config_field_is_set_by_the_parameter_of_its_name_under_its_flag(command, configs):
    # The walk from a flag to a field is direct: one table (config.flag), one name.
    from charrnn.cli import app

    click_command = typer.main.get_command(app).commands[command]
    flags = {param.name: param.opts for param in click_command.params}
    for config in configs:
        for field in dataclasses.fields(config):
            if field.name in NOT_OPTIONS:
                continue
            assert field.name in flags, f"{command} has no parameter for {field.name}"
            assert flag(field.name) in flags[field.name], (command, field.name)
