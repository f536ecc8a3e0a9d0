"""charrnn train --tensorboard [DIR]: the metrics also as TensorBoard event files."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import cli

from charrnn.cli_options import fill_optional_values

TINY = ["--device", "cpu", "--hidden", "16", "--layers", "1", "--seq-len", "16",
        "--batch-size", "4", "--sample-chars", "0", "--threads", "1", "-q"]  # fmt: skip


def scalars(log_dir):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    ).EventAccumulator(str(log_dir))
    accumulator.Reload()
    return {tag: accumulator.Scalars(tag) for tag in accumulator.Tags()["scalars"]}


def test_bare_tensorboard_writes_the_runs_metrics_into_the_run_directory(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    result = cli("train", tiny_corpus, "--out", out, "--max-steps", "4", "--eval-every", "2",
                 *TINY, "--tensorboard")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"tensorboard: {out / 'tensorboard'}" in result.stderr
    logged = scalars(out / "tensorboard")
    assert {"loss/train", "loss/val", "loss/best_val", "lr", "chars_per_second"} <= set(logged)
    assert [e.step for e in logged["loss/train"]] == [1, 2, 3, 4]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(e.step, e.value) for e in logged["loss/val"]] == [
        (m["step"], pytest.approx(m["val_loss"], rel=1e-6)) for m in metrics
    ]


def test_tensorboard_dir_is_taken_before_other_options(tmp_path, tiny_corpus):
    board = tmp_path / "boards" / "first"
    result = cli("train", tiny_corpus, "--tensorboard", board, "--out", tmp_path / "run",
                 "--max-steps", "2", *TINY)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [e.step for e in scalars(board)["loss/train"]] == [1, 2]
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_a_new_run_with_force_hides_the_old_runs_curves(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    common = [tiny_corpus, "--out", out, *TINY, "--tensorboard"]
    assert cli("train", *common, "--max-steps", "4").exit_code == 0
    assert cli("train", *common, "--max-steps", "2", "--force").exit_code == 0
    assert [e.step for e in scalars(out / "tensorboard")["loss/train"]] == [1, 2]


def test_a_resumed_run_continues_the_same_curves(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    common = [tiny_corpus, *TINY, "--tensorboard"]
    assert cli("train", *common[:1], "--out", out, "--max-steps", "2", *common[1:]).exit_code == 0
    resumed = cli("train", *common[:1], "--resume", out, "--max-steps", "4", *common[1:])
    assert resumed.exit_code == 0, resumed.stderr
    assert [e.step for e in scalars(out / "tensorboard")["loss/train"]] == [1, 2, 3, 4]


def test_without_tensorboard_installed_it_is_one_line_naming_the_extra(
    tmp_path, tiny_corpus, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    out = tmp_path / "run"
    result = cli("train", tiny_corpus, "--out", out, "--max-steps", "2", *TINY, "--tensorboard")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: --tensorboard needs the tensorboard package, an optional extra: "
        "pip install 'charrnn[tensorboard]'"
    ]
    assert not out.exists()  # refused before training


@pytest.mark.parametrize(
    ("args", "filled"),
    [
        (["--tensorboard"], ["--tensorboard="]),
        (["--tensorboard", "-q"], ["--tensorboard=", "-q"]),
        (["--tensorboard", "tb", "-q"], ["--tensorboard", "tb", "-q"]),
        (["--novelty", "-"], ["--novelty", "-"]),
        (["--", "--novelty"], ["--", "--novelty"]),
    ],
)
def test_an_option_with_an_optional_value_given_bare_gets_an_empty_one(args, filled):
    assert fill_optional_values(args) == filled
