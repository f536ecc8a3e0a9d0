"""Training under torchrun on CPU (gloo): processes and "machines" that train the weights one
process would, ranks that stop and agree together, and a killed worker whose group restarts and
resumes from last.pt."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import cli

from charrnn.checkpoint import load_checkpoint
from charrnn.distributed import Group, device_for, from_environment, rows_of, uneven_rows_of
from charrnn.errors import ConfigError, DeviceError
from charrnn.plan import plan_run

# A tiny GRU on CPU, dropout off (ranks draw their own masks), one thread everywhere.
TINY = [
    "--layers", "1", "--hidden", "16", "--embedding", "8", "--dropout", "0",
    "--batch-size", "8", "--seq-len", "16", "--sample-chars", "0", "--device", "cpu",
    "--threads", "1",
]  # fmt: skip
LAUNCH_TIMEOUT_S = 90


def torchrun(*launcher: str, train: list[str | Path]) -> subprocess.Popen:
    """`torchrun LAUNCHER -m charrnn train TRAIN` in a child process, its output captured."""
    command = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "charrnn"]
    command += ["train", *map(str, train)]
    return launch(command)


def launch(command: list[str]) -> subprocess.Popen:
    """A child in its own session, so a test that gives up on it can stop its workers too."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(job: subprocess.Popen) -> str:
    """Wait for the job; its stderr. A job that fails or hangs fails the test."""
    try:
        _, stderr = job.communicate(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)  # torchrun and the workers that hold its pipes
        _, stderr = job.communicate()
        pytest.fail(f"torchrun did not finish in {LAUNCH_TIMEOUT_S} s:\n{stderr}")
    assert job.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    return stderr


def assert_close_runs(a: Path, b: Path) -> None:
    """Two runs' last.pt: the same weights and carried state, to float tolerance."""
    first, second = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert first.info["step"] == second.info["step"]
    torch.testing.assert_close(
        first.model.state_dict(), second.model.state_dict(), rtol=1e-4, atol=1e-5
    )
    carried = [s.training_state["carried_state"] for s in (first, second)]
    torch.testing.assert_close(carried[0], carried[1], rtol=1e-4, atol=1e-5)
    averages = [s.training_state.get("average") for s in (first, second)]  # under --ema
    torch.testing.assert_close(averages[0], averages[1], rtol=1e-4, atol=1e-5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- across processes and machines ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_torchrun_processes_train_the_weights_one_process_would(tmp_path, tiny_corpus, processes):
    steps = ["--max-steps", "6", "--eval-every", "3", "--ema", "0.9"]
    single = cli("train", tiny_corpus, "--out", tmp_path / "one", *steps, *TINY)
    assert single.exit_code == 0, single.output

    job = torchrun(
        "--standalone",
        "--nproc-per-node",
        str(processes),
        train=[tiny_corpus, "--out", tmp_path / "ddp", *steps, *TINY],
    )
    stderr = finish(job)

    assert_close_runs(tmp_path / "one", tmp_path / "ddp")
    # The ranks validate the average (--ema) together: the same val losses, the same best.pt.
    best = [load_checkpoint(tmp_path / run / "best.pt") for run in ("one", "ddp")]
    assert best[0].info["val_loss"] == pytest.approx(best[1].info["val_loss"], rel=1e-5)
    torch.testing.assert_close(best[0].model.state_dict(), best[1].model.state_dict())
    assert load_checkpoint(tmp_path / "ddp" / "last.pt").training_state["average"]["updates"] == 6
    # Rank 0 alone reports: one start line, one summary.
    assert stderr.count("training on cpu") == 1 and stderr.count("done at step 6") == 1


@pytest.mark.slow
def test_two_torchrun_machines_train_the_weights_one_process_would(tmp_path, tiny_corpus):
    steps = ["--max-steps", "6", "--eval-every", "3"]
    single = cli("train", tiny_corpus, "--out", tmp_path / "one", *steps, *TINY)
    assert single.exit_code == 0, single.output

    # Two launchers, as on two machines, meeting at a c10d rendezvous on a local port.
    endpoint = f"127.0.0.1:{free_port()}"
    launcher = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d"]
    launcher += ["--rdzv-endpoint", endpoint, "--rdzv-id", "charrnn-test"]
    train = [tiny_corpus, "--out", tmp_path / "ddp", *steps, *TINY]
    machines = [torchrun(*launcher, train=train) for _ in range(2)]
    outputs = [finish(machine) for machine in machines]

    assert_close_runs(tmp_path / "one", tmp_path / "ddp")
    assert sum(output.count("training on cpu") for output in outputs) == 1


@pytest.mark.slow
def test_max_time_stops_every_rank_at_the_same_step(tmp_path, tiny_corpus):
    job = torchrun(
        "--standalone",
        "--nproc-per-node",
        "2",
        train=[tiny_corpus, "--out", tmp_path / "run", "--max-time", "3", *TINY],
    )
    stderr = finish(job)  # ranks that stopped at different steps would hang or fail

    assert "reached --max-time" in stderr
    saved = load_checkpoint(tmp_path / "run" / "last.pt")
    assert 0 < saved.info["step"] < 100_000


@pytest.mark.slow
def test_a_run_of_two_processes_resumes_in_one_and_ends_where_one_process_would(
    tmp_path, tiny_corpus
):
    straight = cli("train", tiny_corpus, "--out", tmp_path / "one", "--max-steps", "8", *TINY)
    assert straight.exit_code == 0, straight.output

    job = torchrun(
        "--standalone",
        "--nproc-per-node",
        "2",
        train=[tiny_corpus, "--out", tmp_path / "split", "--max-steps", "4", *TINY],
    )
    finish(job)
    # The whole batch's carried state was gathered into last.pt: one process takes all its rows.
    resumed = cli("train", "--resume", tmp_path / "split", "--max-steps", "8", *TINY)

    assert resumed.exit_code == 0, resumed.output
    assert "resuming at step 4" in resumed.stderr
    assert_close_runs(tmp_path / "one", tmp_path / "split")


AGREE_SCRIPT = """
import sys, torch
from pathlib import Path
from charrnn.distributed import from_environment
from charrnn.ranks import RankState
group = from_environment()
ranks = RankState(group, torch.device("cpu"))
ranks.collective.start()
# A NaN loss on rank 1 only, and a stop asked on rank 1 only.
loss = ranks.mean(float("nan") if group.rank == 1 else 1.0, 1)
stop, late = ranks.agree([group.rank == 1, False])
Path(sys.argv[1], f"rank{group.rank}").write_text(f"loss {loss} stop {stop} late {late}")
ranks.collective.close(clean=True)
"""


@pytest.mark.slow
def test_a_nan_or_a_stop_on_one_rank_is_seen_by_every_rank(tmp_path):
    script = tmp_path / "agree.py"
    script.write_text(AGREE_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", str(script), str(tmp_path)]

    finish(launch(command))

    for rank in (0, 1):  # each rank saw rank 1's NaN and rank 1's stop
        assert (tmp_path / f"rank{rank}").read_text() == "loss nan stop True late False"


# --- a killed worker: torchrun restarts the group, which resumes ------------------------------


@pytest.mark.slow
def test_a_killed_worker_restarts_its_group_which_resumes_from_last_pt(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    steps = ["--max-steps", "300", "--eval-every", "100"]
    job = torchrun(
        "--standalone",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "1",
        train=[tiny_corpus, "--out", out, "--resume", "auto", "--save-every", "0", *steps, *TINY],
    )
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    while not (out / "last.pt").exists():
        if job.poll() is not None or time.monotonic() > deadline:
            finish(job)
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.05)
    os.kill(int((out / ".lock").read_text()), signal.SIGKILL)  # rank 0, mid-run
    stderr = finish(job)

    assert "resuming at step" in stderr  # the restarted group found last.pt
    single = cli("train", tiny_corpus, "--out", tmp_path / "one", *steps, *TINY)
    assert single.exit_code == 0, single.output
    assert_close_runs(tmp_path / "one", out)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        '{"step": 100',
        '{"step": 200',
        '{"step": 300',
    ]


# --- the pieces ------------------------------------------------------------------------------------


def test_the_group_comes_from_torchruns_environment():
    assert from_environment({}) is None
    assert from_environment({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == Group(1, 2, 1)
    with pytest.raises(ConfigError, match="RANK 2 is outside WORLD_SIZE 2"):
        from_environment({"RANK": "2", "WORLD_SIZE": "2"})


def test_each_rank_trains_on_its_own_gpu_and_a_missing_one_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    cuda = torch.device("cuda")

    assert device_for(cuda, Group(3, 4, 1)) == torch.device("cuda", 1)
    assert device_for(torch.device("cuda", 0), Group(3, 4, 1)) == torch.device("cuda", 0)
    assert device_for(torch.device("cpu"), Group(3, 4, 1)) == torch.device("cpu")
    with pytest.raises(DeviceError, match=r"rank 2 would train on cuda:2, but this machine has 2"):
        device_for(cuda, Group(2, 4, 2))


def test_each_rank_owns_an_equal_contiguous_share_of_the_batch_rows():
    shares = [rows_of(8, Group(rank, 2, rank), "--batch-size") for rank in range(2)]

    assert shares == [slice(0, 4), slice(4, 8)]
    with pytest.raises(ConfigError, match=r"--batch-size \(9\) must divide evenly among the 2"):
        rows_of(9, Group(0, 2, 0), "--batch-size")
    covered = [range(7)[uneven_rows_of(7, Group(rank, 3, rank))] for rank in range(3)]
    assert [i for share in covered for i in share] == list(range(7))


@pytest.mark.slow
def test_resume_auto_resumes_a_run_directory_with_last_pt_else_starts_one(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    options = {"device": "cpu", "max_steps": 4, "eval_every": 2, "sample_chars": 0}

    assert plan_run([tiny_corpus], {}, options, out=out, resume="auto").resume is None
    first = cli("train", tiny_corpus, "--out", out, "--resume", "auto", "--max-steps", "4", *TINY)
    assert first.exit_code == 0, first.output
    planned = plan_run([tiny_corpus], {}, options, out=out, resume="auto")
    assert planned.resume is not None and planned.resume.path == out / "last.pt"

    again = cli("train", tiny_corpus, "--out", out, "--resume", "auto", "--max-steps", "8", *TINY)

    assert again.exit_code == 0, again.output
    assert "resuming at step 4" in again.stderr
    assert load_checkpoint(out / "last.pt").info["step"] == 8


@pytest.mark.gpu
def test_torchrun_on_cuda_with_nccl_trains_the_weights_one_process_would(tmp_path, tiny_corpus):
    # One process per GPU, up to two (world size 1 on a single GPU). fp32, but cuDNN may use
    # TF32 and other kernels for another batch size, hence a looser tolerance than on CPU.
    processes = min(torch.cuda.device_count(), 2)
    on_cuda = [arg if arg != "cpu" else "cuda" for arg in TINY] + ["--precision", "fp32"]
    steps = ["--max-steps", "6", "--eval-every", "3"]
    single = cli("train", tiny_corpus, "--out", tmp_path / "one", *steps, *on_cuda)
    assert single.exit_code == 0, single.output

    job = torchrun(
        "--standalone",
        "--nproc-per-node",
        str(processes),
        train=[tiny_corpus, "--out", tmp_path / "ddp", *steps, *on_cuda],
    )
    stderr = finish(job)

    assert "training on cuda" in stderr
    first, second = (load_checkpoint(tmp_path / run / "last.pt") for run in ("one", "ddp"))
    assert first.info["step"] == second.info["step"] == 6
    torch.testing.assert_close(
        first.model.state_dict(), second.model.state_dict(), rtol=1e-2, atol=1e-3
    )
