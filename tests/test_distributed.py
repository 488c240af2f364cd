"""Training under torchrun (CPU, gloo, 2 processes): the same model as one process, one
writer, clean failures and a resumable Ctrl-C. Few and small: each launch starts two torch
processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.run.distributed import Distributed
from lstmcli.run.loop import _share

from .conftest import seasonal_frame, tiny_config

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}


def lstmcli(*args: str, processes: int = 1, timeout: float = 240) -> subprocess.CompletedProcess:
    launcher = TORCHRUN if processes == 2 else [sys.executable]
    return subprocess.run(
        [*launcher, "-m", "lstmcli", *args], capture_output=True, text=True, env=ENV,
        timeout=timeout,
    )  # fmt: skip


def config_file(tmp_path: Path, **training: object) -> Path:
    csv = tmp_path / "series.csv"
    seasonal_frame(200).to_csv(csv, index=False)
    config = tiny_config(csv)
    # 131 training windows in batches of 20: the last batch holds 11, split 6 and 5.
    config["training"].update({"epochs": 4, "batch_size": 20, "threads": 1, **training})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_each_rank_takes_its_share_of_every_batch() -> None:
    positions = torch.arange(11)
    shares = [_share(positions, Distributed(r, 2, r, 2)) for r in range(2)]
    assert [s.tolist() for s, _ in shares] == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9]]
    assert sum(w for _, w in shares) == pytest.approx(1.0)  # the weights of one mean
    lone = [_share(torch.arange(1), Distributed(r, 2, r, 2)) for r in range(2)]
    assert lone[1][1] == 0.0  # a rank without windows adds nothing to the gradient


@pytest.mark.slow
def test_two_processes_train_the_model_one_process_trains(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    one = lstmcli("train", "-c", str(path), "-o", str(tmp_path / "one"), "-q")
    two = lstmcli("train", "-c", str(path), "-o", str(tmp_path / "two"), "-q", processes=2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert two.stdout.splitlines() == [str(tmp_path / "two")]  # rank 0 alone prints
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )  # the same files, written once, no leftovers
    # Float32 sums in another order (two halves, then across ranks) differ in the last bits;
    # over 28 Adam steps that stays far below 1e-4 of the weights' size.
    a, b = (load_checkpoint(tmp_path / name).state_dict for name in ("one", "two"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    ma, mb = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("one", "two"))
    assert mb["model"]["rmse"] == pytest.approx(ma["model"]["rmse"], rel=1e-4)
    assert mb["best_epoch"] == ma["best_epoch"] and mb["epochs_run"] == ma["epochs_run"]
    # The model loads and predicts like any other.
    csv = str(tmp_path / "series.csv")
    pa, pb = (lstmcli("predict", str(tmp_path / n), csv, "-q") for n in ("one", "two"))
    assert pb.returncode == 0, pb.stderr
    va, vb = (np.loadtxt(p.stdout.splitlines()[1:], delimiter=",", usecols=1) for p in (pa, pb))
    np.testing.assert_allclose(va, vb, rtol=1e-4)


@pytest.mark.slow
def test_an_ensemble_under_two_processes_resumes_like_one(tmp_path: Path) -> None:
    """Each member is trained by both processes (its share of every batch), so Ctrl-C under
    --nproc leaves every member's state in last.pt and one process continues it: the result
    is the uninterrupted one-process ensemble, up to the order of float32 sums."""
    path = config_file(tmp_path, ensemble=2, epochs=30, checkpoint_every=1, patience=None)
    one = lstmcli("train", "-c", str(path), "-o", str(tmp_path / "one"), "-q")
    assert one.returncode == 0, one.stderr
    run = tmp_path / "two"
    process = subprocess.Popen(
        [sys.executable, "-m", "lstmcli", "train", "-c", str(path), "-o", str(run), "-q",
         "--nproc", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if len(load_checkpoint(run, "last.pt").train_state.get("members", [])) == 2:
                break
        except Exception:  # noqa: BLE001 - not written yet
            pass
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    resumed = lstmcli("train", "--resume", str(run), "-q")
    assert resumed.returncode == 0, resumed.stderr
    a, b = (load_checkpoint(tmp_path / name) for name in ("one", "two"))
    assert b.spec.members == 2
    for key in a.state_dict:
        torch.testing.assert_close(a.state_dict[key], b.state_dict[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_bad_data_file_fails_on_every_rank_at_once(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    (tmp_path / "series.csv").write_text("date,y,x\n2000-01-01,1,oops\n")
    started = time.perf_counter()
    result = lstmcli("train", "-c", str(path), "-o", str(tmp_path / "run"), processes=2)
    assert result.returncode != 0
    assert time.perf_counter() - started < 60  # no rank waits on the other
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1  # from rank 0 only
    assert not (tmp_path / "run").exists()
    # A bad config, the same on every rank: one line, through --nproc without torchrun's noise.
    path.write_text("training: {epohcs: 3}\n")
    bad = lstmcli("train", "-c", str(path), "--nproc", "2")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"Error: {path}: training.epohcs: unknown key; did you mean 'epochs'?"
    ]


@pytest.mark.slow
def test_ctrl_c_under_torchrun_leaves_a_resumable_run(tmp_path: Path) -> None:
    path = config_file(tmp_path, epochs=400, checkpoint_every=1, patience=None)
    run = tmp_path / "run"
    process = subprocess.Popen(  # --nproc: lstmcli becomes torchrun, which gets the SIGINT
        [sys.executable, "-m", "lstmcli", "train", "-c", str(path), "-o", str(run), "-q",
         "--nproc", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err  # as one process exits, torchrun's noise left out
    assert "Traceback" not in err and "Interrupted after" in err
    last = load_checkpoint(run, "last.pt")
    done = last.train_state["epoch"]
    assert 0 < done < 400
    # Continue with one process: the global batch makes the state independent of the count.
    resumed = lstmcli("train", "--resume", str(run), "--set", f"training.epochs={done + 2}", "-q")
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == done + 2


def test_check_shows_the_distributed_environment(tmp_path: Path, monkeypatch) -> None:
    from .helpers import run

    path = config_file(tmp_path)
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0",
                        "LOCAL_WORLD_SIZE": "2"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    result = run("check", "-c", str(path))
    assert result.exit_code == 0, result.output
    assert "rank 0 of 2 (torchrun; 2 on this machine), backend gloo" in result.output
