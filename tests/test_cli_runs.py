"""charrnn runs: the runs under a directory and their state; a missing checkpoint names them."""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import cli, make_checkpoint, make_run, write
from rich.console import Console

from charrnn.config import ModelConfig, TrainConfig
from charrnn.data import read_corpus
from charrnn.output_runs import _ago, runs_table
from charrnn.run_dir import RunDirectory
from charrnn.runs import RunRecord, _ended, list_runs
from charrnn.training import train


def interrupted_run(out_dir, corpus):
    """A tiny run stopped (as by Ctrl-C) after its first step."""
    polls = iter([False, True])
    model = ModelConfig(vocab_size=1, cell="gru", num_layers=1, hidden_size=16, embedding_size=8)
    config = TrainConfig(seq_len=16, batch_size=4, max_steps=50, eval_every=50, device="cpu")
    train(read_corpus([corpus]), model, config, out_dir, should_stop=lambda: next(polls))


def rows(stdout):
    header, *lines = stdout.splitlines()
    names = header.split("\t")
    return {line.split("\t")[0]: dict(zip(names, line.split("\t"), strict=True)) for line in lines}


def test_runs_lists_finished_and_interrupted_runs_when_piped(tmp_path, tiny_corpus):
    make_run(tmp_path / "runs" / "done", tiny_corpus, steps=2)
    interrupted_run(tmp_path / "runs" / "stopped", tiny_corpus)
    result = cli("runs", tmp_path / "runs")
    assert result.exit_code == 0, result.stderr
    table = rows(result.stdout)
    done, stopped = (
        table[str(tmp_path / "runs" / "done")],
        table[str(tmp_path / "runs" / "stopped")],
    )
    assert done["state"] == "finished (--max-steps)"
    assert done["model"] == "LSTM 2x16" and done["steps"] == "2" and done["corpus"] == "tiny.txt"
    assert float(done["best_val_loss"]) > 0
    assert stopped["state"] == "interrupted (stopped)" and stopped["steps"] == "1"
    assert stopped["model"] == "GRU 1x16" and stopped["best_val_loss"] == "-"


def test_a_run_holding_its_lock_is_running_with_its_pid(tmp_path, tiny_corpus):
    make_run(tmp_path / "runs" / "busy", tiny_corpus, steps=2)
    with RunDirectory(tmp_path / "runs" / "busy") as held:
        held.claim(resume_from=tmp_path / "runs" / "busy" / "last.pt")
        result = cli("runs", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["state"] == "running" and record["why"] == f"PID {os.getpid()}"
    # Once released, the same run is finished again.
    (again,) = list_runs(tmp_path / "runs")
    assert again.state == "finished"


def test_runs_json_holds_every_field(tmp_path, tiny_corpus):
    make_run(tmp_path / "runs" / "done", tiny_corpus, steps=2)
    result = cli("runs", tmp_path / "runs", "--json")
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert set(record) == {
        "run", "corpus", "model", "parameters", "steps", "best_val_loss", "state", "why",
        "saved_at",
    }  # fmt: skip
    assert record["parameters"] > 0 and record["saved_at"].startswith("20")


def test_runs_newest_first_and_a_metrics_only_run_is_listed(tmp_path, tiny_corpus):
    make_run(tmp_path / "runs" / "older", tiny_corpus, steps=2)
    write(tmp_path / "runs" / "fresh" / "metrics.jsonl", '{"step": 5, "val_loss": 2.5}\n')
    records = list_runs(tmp_path / "runs")
    assert [r.name for r in records] == ["fresh", "older"]
    assert records[0].steps == 5 and records[0].best_val_loss == 2.5 and records[0].model is None


def test_no_runs_is_a_note_and_exit_0(tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("runs", tmp_path / "empty")
    assert result.exit_code == 0 and result.stdout == ""
    assert "no runs under" in result.stderr


def test_a_runs_directory_that_is_not_there_is_one_line(tmp_path):
    result = cli("runs", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'nowhere'} is not there; give the directory that holds your runs"
    ]


def test_runs_saved_before_stop_reasons_are_judged_by_their_history():
    limits = {"max_steps": 100, "patience": 3, "max_time": None}
    assert _ended({}, limits, 100, [], None) == ("finished", "--max-steps")
    assert _ended({}, limits, 40, [], {"evals_since_best": 3}) == ("finished", "--patience")
    assert _ended({}, limits, 40, [], {"evals_since_best": 1})[0] == "interrupted"


def test_a_missing_checkpoint_names_the_runs_that_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_checkpoint(tmp_path / "runs" / "sonnets" / "best.pt")
    make_checkpoint(tmp_path / "runs" / "notes" / "best.pt")
    result = cli("sample", "-c", "runs/sonets", "-n", "5")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: checkpoint not found: runs/sonets; did you mean runs/sonnets?")
    assert "runs/notes" in line and "charrnn runs" in line


def test_a_missing_checkpoint_with_no_runs_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("score", "-c", "nothing.pt", input="hello\n")
    assert result.exit_code == 1
    assert "no runs found under runs/ (charrnn train makes one)" in result.stderr


def test_the_terminal_table_fits_80_columns_and_keeps_names_whole(tmp_path, tiny_corpus):
    make_run(tmp_path / "runs" / "sonnets-gru-2x256", tiny_corpus, steps=2)
    interrupted_run(tmp_path / "runs" / "plays", tiny_corpus)
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(runs_table(list_runs(tmp_path / "runs")))
    lines = console.file.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "sonnets-gru-2x256" in text and "tiny.txt" in text and "LSTM 2x16" in text
    assert "finished" in text and "interrupted" in text and "just now" in text


def test_when_reads_as_time_ago_then_as_a_date():
    saved = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    record = RunRecord(Path("r"), None, None, None, None, None, "finished", "", saved)
    ago = [_ago(record, saved + delta) for delta in (
        timedelta(seconds=5), timedelta(minutes=5), timedelta(hours=3), timedelta(days=2),
        timedelta(days=30),
    )]  # fmt: skip
    assert ago[:4] == ["just now", "5 min ago", "3 h ago", "2 days ago"]
    assert ago[4] == saved.astimezone().strftime("%Y-%m-%d")


def test_no_runs_directory_here_is_a_note_not_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("runs")
    assert result.exit_code == 0 and result.stdout == ""
    assert "no runs under runs (charrnn train makes one)" in result.stderr
