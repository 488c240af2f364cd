"""Run folders under concurrency and faults: one writer at a time, nothing mixed, nothing
torn, and a full disk that costs nothing already written."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lstmcli.model import checkpoint as checkpoint_module
from lstmcli.model.checkpoint import load_checkpoint
from lstmcli.run.lock import LOCK_FILE, run_folder_lock

from .conftest import tiny_config
from .helpers import run as cli

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def write_config(tmp_path: Path, csv: Path, **training: object) -> Path:
    config = tiny_config(csv)
    config["training"].update(training)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstmcli", "train", *args],
        capture_output=True, text=True, env=ENV, timeout=240,
    )  # fmt: skip


@pytest.mark.slow
def test_two_writers_racing_for_one_folder(tmp_path: Path, csv_path: Path) -> None:
    path = write_config(tmp_path, csv_path, epochs=40)
    run = tmp_path / "runs" / "x"
    command = [sys.executable, "-m", "lstmcli", "train", "-c", str(path), "-o", str(run), "-q"]
    racers = [
        subprocess.Popen(
            [*command, "--set", f"training.seed={seed}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )  # fmt: skip
        for seed in (1, 2)
    ]
    outcomes = [(p.communicate(timeout=240), p.returncode) for p in racers]
    codes = sorted(code for _, code in outcomes)
    assert codes == [0, 1], outcomes
    (winner_out, _), _ = next(o for o in outcomes if o[1] == 0)
    (_, loser_err), _ = next(o for o in outcomes if o[1] == 1)
    assert winner_out.strip() == str(run)
    lines = loser_err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: run folder {run} ")
    assert "is being written by " in lines[0] or "already exists" in lines[0]
    seed = next(s for s, (_, code) in zip((1, 2), outcomes, strict=True) if code == 0)
    # Every file of the folder comes from the winner.
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["seed"] == seed
    assert load_checkpoint(run).config.training.seed == seed
    assert load_checkpoint(run, "last.pt").config.training.seed == seed
    assert not (run / LOCK_FILE).exists() and not list(run.glob(".*.tmp"))


def test_a_held_lock_names_its_holder_and_nothing_is_written(
    tmp_path: Path, csv_path: Path
) -> None:
    path = write_config(tmp_path, csv_path)
    run = tmp_path / "run"
    with run_folder_lock(run):
        result = cli("train", "-c", str(path), "-o", str(run))
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(
            f"Error: run folder {run} is being written by pid {os.getpid()} on "
            f"{socket.gethostname()} (started 20"
        )
        assert lines[0].endswith("); wait for it, or use another -o")
        assert [p.name for p in run.iterdir()] == [LOCK_FILE]
    assert not run.exists()  # the lock's own folder, empty, is gone with it


@pytest.mark.slow
def test_a_lock_left_by_a_killed_writer_is_taken_over(tmp_path: Path, csv_path: Path) -> None:
    path = write_config(tmp_path, csv_path, epochs=2000, checkpoint_every=1, patience=None)
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "lstmcli", "train", "-c", str(path), "-o", str(run), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == process.pid
    done = load_checkpoint(run, "last.pt").train_state["epoch"]
    resumed = train("--resume", str(run), "--set", f"training.epochs={done + 2}")
    assert resumed.returncode == 0, resumed.stderr
    assert f"took over the lock of pid {process.pid} on {socket.gethostname()}" in resumed.stderr
    assert not (run / LOCK_FILE).exists()


def _full_disk_at(name: str, monkeypatch: pytest.MonkeyPatch, after: int = 0) -> None:
    """The `after`+1-th write of a file named `name` fails like a full disk, part-way."""
    calls = {"n": 0}
    real_write_text, real_open = Path.write_text, open

    def full(target: str) -> bool:
        if f".{name}." not in target:
            return False
        calls["n"] += 1
        return calls["n"] > after

    def write_text(self: Path, text: str, *args: object, **kwargs: object) -> int:
        if full(self.name):
            real_write_text(self, text[: len(text) // 2], *args, **kwargs)  # a torn file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, text, *args, **kwargs)

    class FullFile:
        def __init__(self, file: object) -> None:
            self.file = file

        def write(self, data: bytes) -> int:
            self.file.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, attribute: str) -> object:
            return getattr(self.file, attribute)

        def __enter__(self) -> FullFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

    def fake_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        opened = real_open(file, mode, *args, **kwargs)
        return FullFile(opened) if "w" in mode and full(Path(str(file)).name) else opened

    monkeypatch.setattr(Path, "write_text", write_text)
    monkeypatch.setattr(checkpoint_module, "open", fake_open, raising=False)


@pytest.mark.parametrize(
    "name",
    ["model.pt", "last.pt", "config.yaml", "history.csv", "metrics.json", "test_predictions.csv"],
)
def test_a_full_disk_keeps_every_previous_file(
    tmp_path: Path, csv_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = write_config(tmp_path, csv_path)
    run = tmp_path / "run"
    assert cli("train", "-c", str(path), "-o", str(run), "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    _full_disk_at(name, monkeypatch)
    again = ["train", "-c", str(path), "-o", str(run), "--overwrite", "-q", "--set",
             "training.seed=3"]  # fmt: skip
    result = cli(*again)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot write {run / name}: No space left on device"
    ]
    assert (run / name).read_bytes() == before[name]  # the previous version, whole
    assert not list(run.glob(".*.tmp")) and not (run / LOCK_FILE).exists()


def test_a_full_disk_during_training_leaves_a_resumable_run(
    tmp_path: Path, csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, csv_path, epochs=6, checkpoint_every=1)
    run = tmp_path / "run"
    _full_disk_at("last.pt", monkeypatch, after=2)  # the third save of last.pt fails
    result = cli("train", "-c", str(path), "-o", str(run), "-q")
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert load_checkpoint(run, "last.pt").train_state["epoch"] == 2  # the last good one
    monkeypatch.undo()
    resumed = cli("train", "--resume", str(run), "-q")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 6


def test_predict_output_on_a_full_disk_keeps_the_old_file(
    tmp_path: Path, csv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, csv_path)
    run = tmp_path / "run"
    assert cli("train", "-c", str(path), "-o", str(run), "-q").exit_code == 0
    out = tmp_path / "forecast.csv"
    out.write_text("old\n")
    _full_disk_at("forecast.csv", monkeypatch)
    result = cli("predict", str(run), str(csv_path), "-o", str(out), "-q")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: cannot write {out}: No space left on device"
    assert out.read_text() == "old\n" and not list(tmp_path.glob(".*.tmp"))
