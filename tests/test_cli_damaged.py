"""Damaged checkpoints through the CLI: info, sample and train --resume refuse them in one line."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import cli, make_run

from charrnn.checkpoint import load_checkpoint


@pytest.fixture
def last_pt(tmp_path, tiny_corpus):
    return make_run(tmp_path / "run", tiny_corpus)


def damage(path, mutate):
    payload = torch.load(path, weights_only=True)
    mutate(payload)
    torch.save(payload, path)
    return path


def optimizer(payload):
    return payload["training"]["optimizer"]


# Each crashed with a traceback before the checkpoint schema (most only on --resume).
DAMAGE = {
    "version a string": lambda p: p.update(version="1"),
    "model_config None": lambda p: p.update(model_config=None),
    "info a list": lambda p: p.update(info=[1, 2]),
    "best val loss a string": lambda p: p["info"].update(best_val_loss="x"),
    "corpus a number": lambda p: p["info"].update(corpus=5),
    "one param group": lambda p: optimizer(p)["param_groups"].pop(),
    "a moment reshaped": lambda p: optimizer(p)["state"][0].update(exp_avg=torch.zeros(3)),
    "betas a string": lambda p: optimizer(p)["param_groups"][0].update(betas="x"),
    "rng of floats": lambda p: p["training"].update(rng_cpu=torch.zeros(5056)),
    "rng too short": lambda p: p["training"].update(rng_cpu=torch.zeros(9, dtype=torch.uint8)),
    "no rng_data": lambda p: p["training"].pop("rng_data"),
    "step a string": lambda p: p["training"].update(step="x"),
    "no optimizer": lambda p: p["training"].pop("optimizer"),
    "elapsed a string": lambda p: p["training"].update(elapsed_s="x"),
    "a NaN weight": lambda p: p["model"]["head.weight"].fill_(float("nan")),
}


def one_error_line(result, path) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path} "), result.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("kind", DAMAGE, ids=list(DAMAGE))
def test_info_sample_and_resume_refuse_a_damaged_checkpoint_in_one_line(
    tmp_path, tiny_corpus, last_pt, kind
):
    path = damage(last_pt, DAMAGE[kind])
    info = cli("info", path)
    sample = cli("sample", "-c", path, "-n", "5", "--seed", "1", "-q")
    resume = cli("train", tiny_corpus, "--resume", path, "--max-steps", "4", "-q")

    for result in (info, sample, resume):
        line = one_error_line(result, path)
        assert re.search(r"is a damaged charrnn checkpoint \(.+\)$|has non-finite weights", line)
    assert info.stdout == sample.stdout == ""


def test_resume_refuses_a_carried_state_for_another_number_of_streams(tiny_corpus, last_pt):
    # The shapes agree with each other, so the file loads; the corpus makes 4 streams, not 3.
    path = damage(
        last_pt,
        lambda p: p["training"].update(carried_state=[torch.zeros(2, 3, 16)] * 2),
    )
    assert load_checkpoint(path).training_state is not None

    resume = cli("train", tiny_corpus, "--resume", path, "--max-steps", "4", "-q")
    assert one_error_line(resume, path).endswith(
        "is a damaged charrnn checkpoint (training.carried_state holds 3 streams, "
        "the corpus makes 4)"
    )


def test_a_bf16_carried_state_resumes(tiny_corpus, last_pt):
    path = damage(
        last_pt,
        lambda p: p["training"].update(
            carried_state=[t.bfloat16() for t in p["training"]["carried_state"]]
        ),
    )
    resume = cli("train", tiny_corpus, "--resume", path, "--max-steps", "4", "-q")
    assert resume.exit_code == 0, resume.output


def test_info_shows_control_characters_in_names_as_pictures(last_pt):
    path = damage(last_pt, lambda p: p["info"].update(corpus=["a\nb\x1b[2J.txt"]))
    result = cli("info", path)

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert re.search(r"^corpus\s+a\u240ab\u241b\[2J\.txt$", result.stdout, re.M)
